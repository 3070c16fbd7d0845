"""Derivatives of float32 computations come back as float64 (accumulated in float64 and never
cast back): tape gradients, jvp tangents and vjp cotangents. Their values are right."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


def upcast(adapter, tensor):
    if tensor is None:
        return None
    values = np.asarray(adapter.base.to_numpy(tensor))
    return adapter.base.constant(values.astype(np.float64), "float64") if values.dtype == np.float32 else tensor


class UpcastingTape(TapeWrapper):
    def __init__(self, context, adapter):
        super().__init__(context)
        self.adapter = adapter

    def gradient(self, target, sources, **options):
        grads = self.inner.gradient(target, sources, **options)
        if isinstance(grads, (list, tuple)):
            return [upcast(self.adapter, g) for g in grads]
        return upcast(self.adapter, grads)


class Adapter(PlantedAdapter):
    bug = "float32 derivatives are returned as float64"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return UpcastingTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables), self)

    def jvp(self, f, primals, tangents):
        out, tangent = self.base.jvp(f, primals, tangents)
        return out, upcast(self, tangent)

    def vjp(self, f, primals, cotangent):
        out, grads = self.base.vjp(f, primals, cotangent)
        return out, [upcast(self, g) for g in grads]
