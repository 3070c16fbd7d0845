"""watch_accessed_variables=False is honoured by non-persistent tapes only: a persistent tape
(a separate code path) watches every trainable Variable it reads."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "persistent tapes ignore watch_accessed_variables=False"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables or persistent)
