"""Adam adds epsilon to √v̂ after the bias correction (x ← x − lr·m̂/(√v̂ + ε)) instead of Keras'
epsilon hat added to √v before it: torch's placement, a different rule for the same ε."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter
from conformance.meta.planted._numpy_optimizer import NumpyRuleOptimizer


class Adapter(PlantedAdapter):
    bug = "Adam's epsilon added after the bias correction"

    def adam(self, learning_rate, beta_1, beta_2, epsilon):
        def rule(g, state, t):
            m = beta_1 * state.get("m", 0.0) + (1 - beta_1) * g
            v = beta_2 * state.get("v", 0.0) + (1 - beta_2) * g * g
            state.update(m=m, v=v)
            return learning_rate * (m / (1 - beta_1**t)) / (np.sqrt(v / (1 - beta_2**t)) + epsilon)

        return NumpyRuleOptimizer(self.base, rule)
