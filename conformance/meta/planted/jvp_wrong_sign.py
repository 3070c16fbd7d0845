"""Forward mode pushes tangents with the wrong sign: jvp returns −J·v (its primal output is right)."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "jvp returns -J·v"

    def jvp(self, f, primals, tangents):
        out, tangent_out = self.base.jvp(f, primals, tangents)
        return out, self.base.negative(tangent_out)
