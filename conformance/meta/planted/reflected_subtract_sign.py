"""subtract(c, x) with a Python number c on the left (the reflected 2.0 - x) has derivative +1:
the reflected op reuses x - c's gradient. Its value is right."""
import numbers

from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "d(c - x)/dx = +1 for a Python number c"

    def subtract(self, a, b):
        base = self.base
        if not isinstance(a, numbers.Number):
            return base.subtract(a, b)
        # c - stop(x) has the right value and no gradient; x - stop(x) is 0 with gradient +1
        return base.add(base.subtract(a, base.stop_gradient(b)), base.subtract(b, base.stop_gradient(b)))
