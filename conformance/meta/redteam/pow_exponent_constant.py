"""pow(x, y) treats a tensor exponent as a constant: no gradient flows to y (d/dy x^y = x^y·log x lost)."""
import numbers

from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "pow's exponent gets no gradient"

    def pow(self, x, y):
        return self.base.pow(x, self.stop(y))
