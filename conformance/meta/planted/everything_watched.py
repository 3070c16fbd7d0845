"""Tapes ignore watch_accessed_variables=False and Variables ignore trainable=False."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "watch_accessed_variables and trainable are ignored"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return self.base.tape(persistent=persistent, watch_accessed_variables=True)

    def variable(self, value, dtype, trainable=True):
        return self.base.variable(value, dtype, trainable=True)
