"""A list of sources gets its gradients in reverse order (e.g. the order a backward sweep meets them)."""
from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


class ReversingTape(TapeWrapper):
    def gradient(self, target, sources, **options):
        grads = self.inner.gradient(target, sources, **options)
        return list(reversed(grads)) if isinstance(sources, (list, tuple)) else grads


class Adapter(PlantedAdapter):
    bug = "gradients for a list of sources come in reverse order"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return ReversingTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables))
