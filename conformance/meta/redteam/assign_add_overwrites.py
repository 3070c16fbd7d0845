"""assign_add assigns the value (x ← value) instead of adding it (x ← x + value)."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "assign_add assigns instead of adding"

    def assign_add(self, variable, value):
        current = np.asarray(self.base.to_numpy(variable))
        self.base.assign_sub(variable, self.base.constant(current, current.dtype.name))
        self.base.assign_add(variable, value)
