"""Hypothesis strategies: dtypes, shapes (scalars and broadcasting), values in safe domains.

Every drawn value is representable in float32, so the implementation (in
float32 or float64) and the float64 reference evaluate at exactly the same
point. Values come back as float64 NumPy arrays; ``as_dtype`` casts them
without rounding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conformance import adapters

MAX_DIMS = 3
MAX_SIDE = 3


@dataclass(frozen=True)
class Domain:
    """Values in [low, high]; with ``symmetric``, in [-high, -low] ∪ [low, high]."""

    low: float
    high: float
    symmetric: bool = False


#: Where each op is smooth and well conditioned (kinks, if any, are excluded
#: by the tests with ``assume``). Also the default domain for everything else.
DOMAINS = {
    "default": Domain(-10.0, 10.0),
    "exp": Domain(-5.0, 5.0),
    "tanh": Domain(-4.0, 4.0),
    "sqrt": Domain(0.125, 10.0),
    "log": Domain(0.125, 10.0),
    "divisor": Domain(0.5, 5.0, symmetric=True),
    "pow_base": Domain(0.25, 4.0),
    "pow_exponent": Domain(-3.0, 3.0),
}


def float_dtypes():
    """The float dtypes of the implementation under test."""
    return st.deferred(lambda: st.sampled_from(adapters.selected().float_dtypes))


def half_and_float_dtypes():
    """float_dtypes, plus float16 where the implementation supports it: only for identities whose
    checks allow for half precision (tolerances.py's float16 bounds)."""
    return st.deferred(lambda: st.sampled_from(adapters.selected().half_and_float_dtypes))


def representable(values, dtype: str) -> np.ndarray:
    """Drawn values rounded to ``dtype`` where it is narrower than float32 (float16), as float64:
    the point the implementation and the float64 reference then share. Rounding to nearest keeps
    values inside a domain whose bounds are representable (every bound in DOMAINS is)."""
    values = np.asarray(values, np.float64)
    return values.astype(np.float16).astype(np.float64) if dtype == "float16" else values


def floats(domain: Domain | str = "default"):
    domain = DOMAINS[domain] if isinstance(domain, str) else domain

    def bounded(low, high):
        return st.floats(low, high, width=32, allow_nan=False, allow_infinity=False)

    if domain.symmetric:
        return st.one_of(bounded(domain.low, domain.high), bounded(-domain.high, -domain.low))
    return bounded(domain.low, domain.high)


def shapes(min_dims: int = 0, max_dims: int = MAX_DIMS, min_side: int = 1, max_side: int = MAX_SIDE):
    """Array shapes, including the scalar shape ``()`` when ``min_dims == 0``."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def arrays(shape, domain: Domain | str = "default"):
    """float64 arrays of float32-representable values in ``domain``."""
    if not isinstance(shape, st.SearchStrategy):
        shape = st.just(tuple(shape))
    return shape.flatmap(
        lambda s: hnp.arrays(np.float32, s, elements=floats(domain)).map(lambda a: a.astype(np.float64))
    )


def broadcastable_shapes(num_shapes: int, min_dims: int = 0):
    """Tuples of ``num_shapes`` shapes that broadcast together (some scalar, some not)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=MAX_DIMS, max_side=MAX_SIDE
    ).map(lambda b: b.input_shapes)


def matmul_shapes(max_batch_dims: int = 2):
    """Shapes (a, b) for matmul: (…, m, k) and (…, k, n), whose batch axes (0 to
    ``max_batch_dims`` each, sizes 1–2) broadcast together, a stretched size-1 axis included."""

    @st.composite
    def draw_shapes(draw):
        batch_a, batch_b = draw(hnp.mutually_broadcastable_shapes(
            num_shapes=2, min_dims=0, max_dims=max_batch_dims, max_side=2), label="batch axes").input_shapes
        m, k, n = (draw(st.integers(1, 3), label=label) for label in "mkn")
        return (*batch_a, m, k), (*batch_b, k, n)

    return draw_shapes()


def as_dtype(values, dtype: str) -> np.ndarray:
    """Cast drawn values to ``dtype`` (exact, since they are float32-representable)."""
    return np.asarray(values, dtype=np.float64).astype(dtype)


def learning_rates():
    """Learning rates representable in float32 (Keras keeps the rate in a float32 variable)."""
    return floats(Domain(2.0**-10, 0.5))
