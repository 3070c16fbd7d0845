"""Derivatives of float32 computations come back as float64 (accumulated in float64 and never
cast back): tape gradients, jvp tangents and vjp cotangents. Their values are right."""
from conformance.meta.planted._base import DerivativeDtypeAdapter


class Adapter(DerivativeDtypeAdapter):
    bug = "float32 derivatives are returned as float64"
    source_dtype, result_dtype = "float32", "float64"
