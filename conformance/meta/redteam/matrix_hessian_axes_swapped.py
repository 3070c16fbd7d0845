"""hessian of a function of a matrix (p, q) lays each half out as (q, p): the axes of both
halves reversed, right for vectors."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "matrix Hessian with each half's axes reversed"

    def hessian(self, f, x):
        h = self.base.hessian(f, x)
        value = np.asarray(self.base.to_numpy(h))
        if value.ndim != 4:
            return h
        return self.base.constant(np.ascontiguousarray(value.transpose(1, 0, 3, 2)), value.dtype.name)
