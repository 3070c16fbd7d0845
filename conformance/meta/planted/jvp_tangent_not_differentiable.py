"""A jvp's tangent output is a constant: nothing records how it depends on the primals, so
forward-over-forward and reverse-over-forward second derivatives vanish (or are None)."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "jvp tangents are not differentiable"

    def jvp(self, f, primals, tangents):
        out, tangent = self.base.jvp(f, primals, tangents)
        return out, self.base.stop_gradient(tangent)
