"""jvp pairs tangents with primals by shape (a dict keyed by shape): two primals of the same shape
get each other's tangents."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "jvp swaps the tangents of equal-shaped primals"

    def jvp(self, f, primals, tangents):
        primals, tangents = list(primals), list(tangents)
        shapes = [np.shape(self.base.to_numpy(p)) for p in primals]
        if len(primals) == 2 and shapes[0] == shapes[1]:
            tangents = tangents[::-1]
        return self.base.jvp(f, primals, tangents)
