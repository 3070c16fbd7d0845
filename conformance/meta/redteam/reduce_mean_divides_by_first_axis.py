"""reduce_mean over all elements has the right value, but its gradient divides by the length of
the first axis instead of the element count (1/shape[0] per element)."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter
from conformance.meta.redteam._grad_trick import value_of_gradient_of


class Adapter(PlantedAdapter):
    bug = "reduce_mean's gradient divided by the first axis' length"

    def reduce_mean(self, x, axis=None):
        mean = self.base.reduce_mean(x, axis=axis)
        shape = np.shape(self.base.to_numpy(x))
        if axis is not None or len(shape) < 2:
            return mean
        return value_of_gradient_of(self.base, mean, self.base.divide(self.base.reduce_sum(x), float(shape[0])))
