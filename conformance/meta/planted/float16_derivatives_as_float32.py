"""Derivatives of float16 computations come back as float32 (computed in float32, as a half-precision
kernel often is, and never rounded back): tape gradients, jvp tangents and vjp cotangents."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


def widen(adapter, tensor):
    if tensor is None:
        return None
    values = np.asarray(adapter.base.to_numpy(tensor))
    return adapter.base.constant(values.astype(np.float32), "float32") if values.dtype == np.float16 else tensor


class WideningTape(TapeWrapper):
    def __init__(self, context, adapter):
        super().__init__(context)
        self.adapter = adapter

    def gradient(self, target, sources, **options):
        grads = self.inner.gradient(target, sources, **options)
        if isinstance(grads, (list, tuple)):
            return [widen(self.adapter, g) for g in grads]
        return widen(self.adapter, grads)


class Adapter(PlantedAdapter):
    bug = "float16 derivatives are returned as float32"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return WideningTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables), self)

    def jvp(self, f, primals, tangents):
        out, tangent = self.base.jvp(f, primals, tangents)
        return out, widen(self, tangent)

    def vjp(self, f, primals, cotangent):
        out, grads = self.base.vjp(f, primals, cotangent)
        return out, [widen(self, g) for g in grads]
