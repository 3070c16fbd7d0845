"""The wrapper every planted bug starts from: delegate everything to a genuine adapter."""
from __future__ import annotations

import numbers
import os

import numpy as np

from conformance import adapters

BASE_ENV = "CONFORMANCE_PLANTED_BASE"


class PlantedAdapter:
    bug = "none"
    skips_fail = False  # a skip must not count as the bug being caught

    def __init__(self):
        self.base = adapters.load(os.environ.get(BASE_ENV, "dualad"))
        self.name = f"{self.base.name} with a planted bug ({self.bug})"

    def __getattr__(self, attribute):
        return getattr(self.base, attribute)

    def stop(self, x):
        """stop_gradient that leaves Python numbers alone."""
        return x if isinstance(x, numbers.Number) else self.base.stop_gradient(x)


class TapeWrapper:
    """A protocol tape around the base adapter's tape; subclasses alter gradient()."""

    def __init__(self, context):
        self.context = context
        self.inner = None

    def __enter__(self):
        self.inner = self.context.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.context.__exit__(*exc_info)

    def watch(self, tensors):
        self.inner.watch(tensors)

    def gradient(self, target, sources, **options):
        return self.inner.gradient(target, sources, **options)

    def __getattr__(self, attribute):  # stop_recording, jacobian, batch_jacobian: unchanged
        return getattr(self.inner, attribute)


class DerivativeDtypeAdapter(PlantedAdapter):
    """Returns every derivative of a ``source_dtype`` computation (tape gradients, jvp tangents,
    vjp cotangents) converted to ``result_dtype``, with the right values: a planted bug in the
    dtype contract alone. Subclasses set ``bug``, ``source_dtype`` and ``result_dtype``."""

    source_dtype: str
    result_dtype: str

    def convert(self, tensor):
        if tensor is None:
            return None
        values = np.asarray(self.base.to_numpy(tensor))
        if values.dtype != np.dtype(self.source_dtype):
            return tensor
        return self.base.constant(values.astype(self.result_dtype), self.result_dtype)

    def tape(self, persistent=False, watch_accessed_variables=True):
        return _ConvertingTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables), self)

    def jvp(self, f, primals, tangents):
        out, tangent = self.base.jvp(f, primals, tangents)
        return out, self.convert(tangent)

    def vjp(self, f, primals, cotangent):
        out, grads = self.base.vjp(f, primals, cotangent)
        return out, [self.convert(g) for g in grads]


class _ConvertingTape(TapeWrapper):
    def __init__(self, context, adapter):
        super().__init__(context)
        self.adapter = adapter

    def gradient(self, target, sources, **options):
        grads = self.inner.gradient(target, sources, **options)
        if isinstance(grads, (list, tuple)):
            return [self.adapter.convert(g) for g in grads]
        return self.adapter.convert(grads)
