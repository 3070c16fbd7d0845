"""unconnected_gradients='zero' gives a scalar 0 of the right dtype instead of zeros of the source's shape."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


class ScalarZeroTape(TapeWrapper):
    def __init__(self, context, base):
        super().__init__(context)
        self.base = base

    def gradient(self, target, sources, unconnected_gradients="none"):
        result = self.inner.gradient(target, sources)
        if unconnected_gradients != "zero":
            return result
        single = not isinstance(sources, (list, tuple))
        pairs = zip([sources] if single else sources, [result] if single else result)
        out = [g if g is not None else self.base.constant(np.zeros((), self.base.to_numpy(s).dtype), self.base.to_numpy(s).dtype.name)
               for s, g in pairs]
        return out[0] if single else out


class Adapter(PlantedAdapter):
    bug = "unconnected_gradients='zero' gives a scalar zero"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return ScalarZeroTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables), self.base)
