"""Every numerical tolerance of the suite, per dtype, in one place.

An implementation's derivative, computed in ``dtype``, is compared with the
float64 reference (finite differences, or the identity's closed form) as

    |actual - expected| <= atol · max(1, max|expected|) + rtol · |expected|

The absolute term is scaled by the largest expected entry because float
rounding errors scale with the magnitudes in the computation, not with each
(possibly cancelled-to-zero) entry. The float32 bounds are about 800 ulps:
room for rounding through a dozen ops, yet ten times tighter than a 0.1%
error in one derivative. The float64 bounds leave room for the reference's
own error (about 1e-9 of the largest entry for Hessians, by differences of
differences).

Optimizer updates are checked far tighter, in ulps of the variable's dtype:
``x - lr·g`` is one multiplication and one subtraction, so the result may be
off by one rounding from the exact formula (for instance when the library
fuses them into one FMA).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


TOLERANCES = {
    "float32": Tolerance(rtol=1e-4, atol=1e-4),
    "float64": Tolerance(rtol=1e-7, atol=1e-7),
}

UPDATE_ULPS = 1


def assert_close(actual, expected, dtype: str, what: str = "value") -> None:
    """Assert ``actual`` (computed in ``dtype``) matches the float64 ``expected``."""
    assert actual is not None, f"{what}: got None, expected {np.asarray(expected)!r}"
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape}, expected {expected.shape}"
    )
    tol = TOLERANCES[dtype]
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    bound = tol.atol * scale + tol.rtol * np.abs(expected)
    error = np.abs(actual - expected)
    bad = ~(error <= bound)  # also catches NaN
    assert not bad.any(), (
        f"{what} differs beyond the {dtype} tolerance (rtol={tol.rtol}, atol={tol.atol}·{scale:.3g}):\n"
        f"  actual   = {actual!r}\n  expected = {expected!r}\n"
        f"  worst error {float(np.max(np.where(np.isnan(error), np.inf, error))):.3g}"
    )


def assert_within_ulps(actual, expected, dtype: str, what: str = "value", ulps: int = UPDATE_ULPS) -> None:
    """Assert ``actual`` is within ``ulps`` units in the last place of ``expected`` in ``dtype``."""
    np_dtype = np.dtype(dtype)
    actual = np.asarray(actual, dtype=np_dtype)
    expected = np.asarray(expected, dtype=np_dtype)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    spacing = np.spacing(np.abs(expected))
    error = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    bad = ~(error <= ulps * spacing.astype(np.float64))
    assert not bad.any(), (
        f"{what} is more than {ulps} ulp from x - lr·g in {dtype}:\n"
        f"  actual   = {actual!r}\n  expected = {expected!r}"
    )
