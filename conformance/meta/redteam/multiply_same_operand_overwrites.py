"""multiply(x, x) stores its two operand gradients into one slot instead of accumulating: the
gradient of x·x is x instead of 2x."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "multiply(x, x) gradient overwritten, not accumulated"

    def multiply(self, x, y):
        if x is y:
            return self.base.multiply(x, self.stop(y))
        return self.base.multiply(x, y)
