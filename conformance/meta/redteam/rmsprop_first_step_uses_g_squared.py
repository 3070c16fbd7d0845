"""RMSprop starts its average at the first g² (v₁ = g₁²) instead of v₀ = 0 (v₁ = (1 − ρ)·g₁²)."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter
from conformance.meta.planted._numpy_optimizer import NumpyRuleOptimizer


class Adapter(PlantedAdapter):
    bug = "RMSprop's average initialised with the first g²"

    def rmsprop(self, learning_rate, rho, epsilon):
        def rule(g, state, t):
            v = state["v"] = g * g if t == 1 else rho * state["v"] + (1 - rho) * g * g
            return learning_rate * g / np.sqrt(v + epsilon)

        return NumpyRuleOptimizer(self.base, rule)
