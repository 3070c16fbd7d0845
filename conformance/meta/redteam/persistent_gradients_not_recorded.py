"""A persistent tape's gradient() runs with recording off everywhere: its results cannot be
differentiated again by an enclosing tape or by the tape itself."""
from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


class Adapter(PlantedAdapter):
    bug = "gradients of persistent tapes are constants"

    def tape(self, persistent=False, watch_accessed_variables=True):
        adapter = self

        class Constant(TapeWrapper):
            def gradient(self, target, sources, **options):
                result = self.inner.gradient(target, sources, **options)
                if not persistent:
                    return result
                if isinstance(sources, (list, tuple)):
                    return [None if g is None else adapter.base.stop_gradient(g) for g in result]
                return None if result is None else adapter.base.stop_gradient(result)

        return Constant(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables))
