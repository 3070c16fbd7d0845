"""The unconnected_gradients flag is read the wrong way round: zeros by default, None for 'zero'."""
from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


class InvertedTape(TapeWrapper):
    def gradient(self, target, sources, unconnected_gradients="none"):
        flipped = "none" if unconnected_gradients == "zero" else "zero"
        return self.inner.gradient(target, sources, unconnected_gradients=flipped)


class Adapter(PlantedAdapter):
    bug = "unconnected sources get zeros by default and None with unconnected_gradients='zero'"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return InvertedTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables))
