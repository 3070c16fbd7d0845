"""gradient(y, [x, x]) answers the first occurrence of a repeated source and None for the others
(a dict from source to position)."""
from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


class DedupTape(TapeWrapper):
    def gradient(self, target, sources, **options):
        if not isinstance(sources, (list, tuple)):
            return self.inner.gradient(target, sources, **options)
        seen, out = [], []
        result = self.inner.gradient(target, list(sources), **options)
        for s, g in zip(sources, result):
            out.append(None if any(s is t for t in seen) else g)
            seen.append(s)
        return out


class Adapter(PlantedAdapter):
    bug = "a source listed twice gets None the second time"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return DedupTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables))
