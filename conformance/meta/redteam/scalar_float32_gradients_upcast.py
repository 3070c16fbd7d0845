"""Gradients of float32 scalar sources come back as float64 (a Python-float fast path); arrays are right."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


class UpcastingTape(TapeWrapper):
    def __init__(self, context, base):
        super().__init__(context)
        self.base = base

    def gradient(self, target, sources, **options):
        result = self.inner.gradient(target, sources, **options)
        single = not isinstance(sources, (list, tuple))
        out = []
        for g in ([result] if single else result):
            if g is not None:
                value = np.asarray(self.base.to_numpy(g))
                if value.ndim == 0 and value.dtype == np.float32:
                    g = self.base.constant(value.astype(np.float64), "float64")
            out.append(g)
        return out[0] if single else out


class Adapter(PlantedAdapter):
    bug = "float32 scalar gradients returned as float64"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return UpcastingTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables), self.base)
