"""multiply and pow have the right first derivatives, but those derivatives are constants:
every second derivative through them drops its product-rule (or power-rule) term."""
import numbers

from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "second derivatives of multiply and pow are dropped"

    def multiply(self, a, b):
        m, s = self.base.multiply, self.stop
        # = a·b exactly; d/da = stop(b), d/db = stop(a): constants
        return self.base.subtract(self.base.add(m(s(a), b), m(a, s(b))), m(s(a), s(b)))

    def pow(self, x, p):
        b, s = self.base, self.stop
        p_minus_one = p - 1 if isinstance(p, numbers.Number) else b.subtract(p, 1)
        slope = s(b.multiply(p, b.pow(x, p_minus_one)))
        # = x^p exactly (x - stop(x) is 0); d/dx = stop(p·x^(p-1)): a constant
        return b.add(s(b.pow(x, p)), b.multiply(slope, b.subtract(x, s(x))))
