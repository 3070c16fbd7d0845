"""Tapes never watch trainable Variables automatically."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "trainable Variables are not watched automatically"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return self.base.tape(persistent=persistent, watch_accessed_variables=False)
