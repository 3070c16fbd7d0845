"""Derivatives of float16 computations come back as float32 (computed in float32, as a half-precision
kernel often is, and never rounded back): tape gradients, jvp tangents and vjp cotangents."""
from conformance.meta.planted._base import DerivativeDtypeAdapter


class Adapter(DerivativeDtypeAdapter):
    bug = "float16 derivatives are returned as float32"
    source_dtype, result_dtype = "float16", "float32"
