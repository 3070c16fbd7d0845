"""The Hessian's mixed partials above the diagonal are 1% too large, so H ≠ Hᵀ."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "Hessian entries above the diagonal are 1% too large"

    def hessian(self, f, x):
        h = np.asarray(self.base.to_numpy(self.base.hessian(f, x)))
        n = int(np.sqrt(h.size))
        square = h.reshape(n, n).copy()
        square[np.triu_indices(n, 1)] *= 1.01
        return self.base.constant(square.reshape(h.shape), h.dtype.name)
