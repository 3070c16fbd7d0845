"""vjp returns uᵀJ literally as a row: the transpose of the source's shape (right values, wrong layout)."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "vjp results are transposed"

    def vjp(self, f, primals, cotangent):
        out, grads = self.base.vjp(f, primals, cotangent)
        return out, [self.base.transpose(g) for g in grads]
