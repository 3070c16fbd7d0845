"""SGD adds a little weight decay: x ← x − lr·(g + 0.001·x)."""
from conformance.meta.planted._base import PlantedAdapter


class DecayingSGD:
    def __init__(self, adapter, native):
        self.adapter, self.native = adapter, native

    def _decayed(self, g, v):
        b = self.adapter.base
        return b.add(g, b.multiply(b.stop_gradient(v), 0.001))

    def apply_gradients(self, grads_and_vars):
        self.native.apply_gradients([(self._decayed(g, v), v) for g, v in grads_and_vars])

    def minimize(self, loss_fn, var_list):
        b = self.adapter.base
        with b.tape() as tape:
            loss = loss_fn()
        self.apply_gradients(zip(tape.gradient(loss, list(var_list)), var_list))

    def set_learning_rate(self, learning_rate):
        self.native.set_learning_rate(learning_rate)


class Adapter(PlantedAdapter):
    bug = "SGD applies weight decay 0.001"

    def sgd(self, learning_rate):
        return DecayingSGD(self, self.base.sgd(learning_rate))
