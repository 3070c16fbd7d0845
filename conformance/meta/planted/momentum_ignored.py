"""SGD drops its momentum argument: every step is plain x ← x − lr·g."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "SGD momentum is ignored"

    def sgd(self, learning_rate, momentum=0.0):
        return self.base.sgd(learning_rate)
