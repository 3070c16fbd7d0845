"""The optimizer updates only the first (gradient, variable) pair of apply_gradients and the
first variable of minimize's var_list (a loop that returns after one iteration)."""
from conformance.meta.planted._base import PlantedAdapter


class FirstOnly:
    def __init__(self, native):
        self.native = native

    def apply_gradients(self, grads_and_vars):
        self.native.apply_gradients(list(grads_and_vars)[:1])

    def minimize(self, loss_fn, var_list):
        self.native.minimize(loss_fn, list(var_list)[:1])

    def set_learning_rate(self, learning_rate):
        self.native.set_learning_rate(learning_rate)


class Adapter(PlantedAdapter):
    bug = "apply_gradients and minimize update only the first variable"

    def sgd(self, learning_rate, momentum=0.0):
        return FirstOnly(self.base.sgd(learning_rate, momentum=momentum))
