"""A persistent tape answers its first gradient() call, then returns None."""
from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


class ForgetfulTape(TapeWrapper):
    calls = 0

    def gradient(self, target, sources):
        self.calls += 1
        if self.calls == 1:
            return self.inner.gradient(target, sources)
        return [None] * len(sources) if isinstance(sources, (list, tuple)) else None


class Adapter(PlantedAdapter):
    bug = "persistent tapes forget after the first gradient"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return ForgetfulTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables))
