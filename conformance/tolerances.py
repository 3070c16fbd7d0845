"""Every numerical tolerance of the suite, per dtype, in one place.

An implementation's derivative, computed in ``dtype``, is compared with the
float64 reference (finite differences, or the identity's closed form) entry by
entry:

    |actual − expected| <= rtol·|expected| + atol·scale + floor + FD_SAFETY·fd_error

Every term is per entry. ``scale`` is the magnitude of the terms an entry is
computed from, where they can cancel (``Σ a·x`` near 0 with large a·x): a test
that knows it passes it; by default it is |expected|, so the check is
relative to each entry, and a small entry next to a large one is checked to
its own size, not the large one's. ``floor`` is a fixed absolute floor per
dtype, a few dozen ulps at 1 in float32 and the reference's rounding noise in
float64. ``fd_error`` is the finite-difference reference's own error estimate
for that entry (``numdiff.Estimate.error``, taken from ``expected`` when it
is one). The float32 bounds are about 800 ulps of each entry: room for
rounding through a dozen ops, yet ten times tighter than a 0.1% error in one
derivative; ``meta/test_tolerances.py`` shows entry-sized bugs that a
tolerance scaled by the largest entry let through.

Optimizer updates are checked far tighter, against the exact rational value
of ``x - lr·g`` (x, lr and g as stored in the variable's dtype): a correct
library evaluates it with one multiplication and one subtraction, either
fused into one FMA or rounded twice, so it may be off by one rounding of the
result plus one rounding of the product lr·g (the second term matters when
x and lr·g nearly cancel: torch's CPU kernel rounds once, Keras twice, and
the two then differ by several ulps of the result). Results within
``2·tiny`` (twice the smallest normal number) of exact are also accepted:
TensorFlow's CPU kernels flush subnormal inputs and results to zero by
design (its ``denormal_test``), which is a property of the float
environment, not of the update rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float  # times ``scale``
    floor: float  # absolute


TOLERANCES = {
    "float16": Tolerance(rtol=2e-2, atol=2e-2, floor=1e-3),
    "float32": Tolerance(rtol=1e-4, atol=1e-4, floor=1e-5),
    "float64": Tolerance(rtol=1e-7, atol=1e-7, floor=1e-9),
}
FD_SAFETY = 10  # the finite-difference error estimate is a heuristic: trust it to a factor of 10

UPDATE_ULPS = 1


def assert_close(actual, expected, dtype: str, what: str = "value", *, scale=None, fd_error=None) -> None:
    """Assert ``actual`` (computed in ``dtype``) matches the float64 ``expected``, entry by entry.

    ``scale``: per-entry magnitude of the terms behind each entry (broadcast to its shape),
    where they may cancel; ``fd_error``: the reference's per-entry error estimate (default: that
    of ``expected`` if it is a ``numdiff.Estimate``). See the module docstring.
    """
    assert actual is not None, f"{what}: got None, expected {np.asarray(expected)!r}"
    if fd_error is None:
        fd_error = getattr(expected, "error", None)
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape}, expected {expected.shape}"
    )
    tol = TOLERANCES[dtype]
    magnitude = np.abs(expected)
    if scale is not None:
        magnitude = np.maximum(magnitude, np.broadcast_to(np.abs(np.asarray(scale, np.float64)), expected.shape))
    bound = tol.rtol * np.abs(expected) + tol.atol * magnitude + tol.floor
    if fd_error is not None:
        bound = bound + FD_SAFETY * np.broadcast_to(np.asarray(fd_error, np.float64), expected.shape)
    error = np.abs(actual - expected)
    bad = ~(error <= bound)  # also catches NaN
    assert not bad.any(), (
        f"{what} differs beyond the {dtype} tolerance at {int(bad.sum())} of {bad.size} entries "
        f"(per entry: rtol={tol.rtol}·|expected| + atol={tol.atol}·scale + floor={tol.floor} + FD error):\n"
        f"  actual   = {actual!r}\n  expected = {expected!r}\n"
        f"  worst error/bound {float(np.max(np.where(np.isnan(error), np.inf, error / bound))):.3g}"
    )


def exact_sgd_step(x, learning_rate, gradient, dtype: str) -> np.ndarray:
    """The exact value of x − lr·g (object array of Fractions), with x, lr, g as stored in ``dtype``."""
    np_dtype = np.dtype(dtype)
    rate = Fraction(float(np_dtype.type(learning_rate)))
    x, gradient = np.broadcast_arrays(np.asarray(x, np_dtype), np.asarray(gradient, np_dtype))
    exact = np.empty(x.shape, dtype=object)
    for index in np.ndindex(x.shape):
        exact[index] = Fraction(float(x[index])) - rate * Fraction(float(gradient[index]))
    return exact


def assert_sgd_step(actual, x, learning_rate, gradient, dtype: str, what: str = "x after the step", ulps: int = UPDATE_ULPS) -> None:
    """Assert ``actual`` is x − lr·g to the rounding error of a correct evaluation in ``dtype``.

    Bound per element: ``ulps`` ulp of the result + ½ ulp of lr·g (fused or
    unfused evaluation) + 2·tiny (subnormals flushed to zero); see the module
    docstring.
    """
    np_dtype = np.dtype(dtype)
    assert actual is not None, f"{what}: got None"
    actual = np.asarray(actual, dtype=np_dtype)
    exact = exact_sgd_step(x, learning_rate, gradient, dtype)
    assert actual.shape == exact.shape, f"{what}: shape {actual.shape}, expected {exact.shape}"
    rate = np_dtype.type(learning_rate)
    rounded = np.array([float(e) for e in exact.flat], dtype=np.float64).reshape(exact.shape).astype(np_dtype)
    product = np.abs(rate * np.asarray(gradient, np_dtype))
    bound = (
        ulps * np.spacing(np.abs(rounded)).astype(np.float64)
        + 0.5 * np.spacing(product).astype(np.float64)
        + 2 * float(np.finfo(np_dtype).tiny)
    )
    error = np.empty(exact.shape, dtype=np.float64)
    for index in np.ndindex(exact.shape):
        value = float(actual[index])
        error[index] = float(abs(Fraction(value) - exact[index])) if np.isfinite(value) else np.inf
    bad = ~(error <= bound)
    assert not bad.any(), (
        f"{what} is not x - lr·g in {dtype} (allowed: {ulps} ulp of the result + ½ ulp of lr·g + 2·tiny):\n"
        f"  actual   = {actual!r}\n  expected = {rounded!r}\n"
        f"  worst error {float(np.max(error)):.3g}, bound there {float(bound.flat[int(np.argmax(error / bound))]):.3g}"
    )
