"""sin's derivative is 0.1% too large: 1.001·cos(x). Its value is exact."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "d sin(x)/dx = 1.001 cos(x)"

    def sin(self, x):
        b = self.base
        s = b.sin(x)
        # s - stop(s) is exactly 0 but has derivative cos(x)
        return b.add(s, b.multiply(0.001, b.subtract(s, b.stop_gradient(s))))
