"""vjp normalises the cotangent to unit length before pulling it back."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "vjp uses the cotangent's direction only"

    def vjp(self, f, primals, cotangent):
        u = np.asarray(self.base.to_numpy(cotangent))
        norm = float(np.linalg.norm(u)) or 1.0
        return self.base.vjp(f, primals, self.base.constant((u / norm).astype(u.dtype), u.dtype.name))
