"""Variable.assign_sub adds its value (a sign lost in the in-place update)."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "assign_sub(v, d) adds d"

    def assign_sub(self, variable, value):
        self.base.assign_add(variable, value)
