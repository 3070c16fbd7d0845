"""A persistent tape stops recording once its first gradient() has been taken: ops computed in
its context afterwards are constants for it."""
from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


class ClosingTape(TapeWrapper):
    def __init__(self, context, persistent):
        super().__init__(context)
        self.persistent = persistent
        self.paused = None
        self.open = False

    def __enter__(self):
        self.open = True
        return super().__enter__()

    def gradient(self, target, sources, **options):
        result = self.inner.gradient(target, sources, **options)
        if self.persistent and self.open and self.paused is None:
            self.paused = self.inner.stop_recording()
            self.paused.__enter__()
        return result

    def __exit__(self, *exc_info):
        if self.paused is not None:
            self.paused.__exit__(None, None, None)
        self.open = False
        return super().__exit__(*exc_info)


class Adapter(PlantedAdapter):
    bug = "persistent tapes stop recording after the first gradient"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return ClosingTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables), persistent)
