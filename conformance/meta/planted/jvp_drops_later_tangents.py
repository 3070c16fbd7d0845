"""jvp of several primals uses only the first primal's tangent (the others are treated as zero)."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "jvp ignores the tangents of every primal but the first"

    def jvp(self, f, primals, tangents):
        primals, tangents = list(primals), list(tangents)
        zeros = [self.base.multiply(t, 0.0) for t in tangents[1:]]
        return self.base.jvp(f, primals, tangents[:1] + zeros)
