"""Adam advances its step count once per (gradient, variable) pair instead of once per
apply_gradients call: with several variables the bias correction runs ahead."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter
from conformance.meta.planted._numpy_optimizer import NumpyRuleOptimizer


class Adapter(PlantedAdapter):
    bug = "Adam's step count advanced per variable"

    def adam(self, learning_rate, beta_1, beta_2, epsilon):
        counter = [0]

        def rule(g, state, t):
            counter[0] += 1
            t = counter[0]
            m = state["m"] = state.get("m", 0.0) + (g - state.get("m", 0.0)) * (1 - beta_1)
            v = state["v"] = state.get("v", 0.0) + (g * g - state.get("v", 0.0)) * (1 - beta_2)
            return learning_rate * np.sqrt(1 - beta_2**t) / (1 - beta_1**t) * m / (np.sqrt(v) + epsilon)

        return NumpyRuleOptimizer(self.base, rule)
