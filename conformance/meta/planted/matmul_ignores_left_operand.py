"""matmul's gradient flows only to its right operand."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "matmul passes no gradient to its left operand"

    def matmul(self, a, b):
        return self.base.matmul(self.base.stop_gradient(a), b)
