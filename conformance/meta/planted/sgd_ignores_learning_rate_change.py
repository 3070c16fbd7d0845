"""SGD keeps the learning rate it was created with."""
from conformance.meta.planted._base import PlantedAdapter


class FixedRateSGD:
    def __init__(self, native):
        self.native = native

    def apply_gradients(self, grads_and_vars):
        self.native.apply_gradients(grads_and_vars)

    def minimize(self, loss_fn, var_list):
        self.native.minimize(loss_fn, var_list)

    def set_learning_rate(self, learning_rate):
        pass  # the bug


class Adapter(PlantedAdapter):
    bug = "SGD ignores learning-rate changes"

    def sgd(self, learning_rate):
        return FixedRateSGD(self.base.sgd(learning_rate))
