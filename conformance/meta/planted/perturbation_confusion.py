"""Nested jvps share one tangent slot: an inner jvp's result also carries the derivative along
every enclosing jvp's tangent (untagged dual numbers), so d/dx [x · d/dy (x + y)] comes out 2.
Built on the base library's forward accumulator, so the base must be dualad or TensorFlow."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "perturbation confusion between nested jvps"

    def __init__(self):
        super().__init__()
        self._active = []

    def jvp(self, f, primals, tangents):
        base = self.base
        with base._forward_accumulator(list(primals), list(tangents)) as accumulator:
            self._active.append(accumulator)
            try:
                out = f(*primals)
            finally:
                self._active.pop()
            tangent = accumulator.jvp(out)
        for enclosing in self._active:
            leaked = enclosing.jvp(out)
            if leaked is not None:
                tangent = base.add(tangent, leaked)
        return out, tangent
