"""stop_gradient and stop_recording let the gradient through: both are no-ops for the tape."""
import contextlib

from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


class LeakyTape(TapeWrapper):
    def stop_recording(self):
        return contextlib.nullcontext()


class Adapter(PlantedAdapter):
    bug = "stop_gradient and stop_recording do not cut the gradient"

    def stop_gradient(self, x):
        return x

    def tape(self, persistent=False, watch_accessed_variables=True):
        return LeakyTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables))
