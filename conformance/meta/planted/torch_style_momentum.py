"""SGD momentum kept as torch does (b ← m·b + g, x ← x − lr·b) under Keras' API: the same
trajectory at a constant learning rate, but after set_learning_rate the old velocity is
rescaled by the new rate instead of carried as it is."""
from conformance.meta.planted._base import PlantedAdapter
from conformance.meta.planted._numpy_optimizer import NumpyRuleOptimizer


class Adapter(PlantedAdapter):
    bug = "momentum buffer scaled by the current learning rate (torch's form)"

    def sgd(self, learning_rate, momentum=0.0):
        if not momentum:
            return self.base.sgd(learning_rate)
        rate = [learning_rate]

        def rule(g, state, t):
            state["b"] = momentum * state.get("b", 0.0) + g
            return rate[0] * state["b"]

        optimizer = NumpyRuleOptimizer(self.base, rule)
        optimizer.set_learning_rate = lambda value: rate.__setitem__(0, value)
        return optimizer
