"""A non-persistent tape keeps its record, so a second gradient() call does not raise."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "non-persistent tapes behave as persistent"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return self.base.tape(persistent=True, watch_accessed_variables=watch_accessed_variables)
