"""SGD caches each variable's first gradient and steps by it every time after."""
from conformance.meta.planted._base import PlantedAdapter
from conformance.meta.planted._numpy_optimizer import NumpyRuleOptimizer


class Adapter(PlantedAdapter):
    bug = "SGD ignores the gradient change of later steps"

    def sgd(self, learning_rate, momentum=0.0):
        if momentum:
            return self.base.sgd(learning_rate, momentum=momentum)

        def rule(g, state, t):
            state.setdefault("g", g)
            return learning_rate * state["g"]

        return NumpyRuleOptimizer(self.base, rule)
