"""RMSprop divides by √v + ε instead of Keras' √(v + ε)."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter
from conformance.meta.planted._numpy_optimizer import NumpyRuleOptimizer


class Adapter(PlantedAdapter):
    bug = "RMSprop's epsilon outside the square root"

    def rmsprop(self, learning_rate, rho, epsilon):
        def rule(g, state, t):
            v = state["v"] = rho * state.get("v", 0.0) + (1 - rho) * g * g
            return learning_rate * g / (np.sqrt(v) + epsilon)

        return NumpyRuleOptimizer(self.base, rule)
