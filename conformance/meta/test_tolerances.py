"""The SGD-update oracle (tolerances.assert_sgd_step): it accepts every correct float evaluation
of x − lr·g and rejects wrong update rules. Not an identity: a check of the suite itself."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.strategies import Domain, arrays, floats, learning_rates, shapes
from conformance import numdiff
from conformance.tolerances import assert_close, assert_sgd_step, exact_sgd_step

DTYPES = st.sampled_from(["float32", "float64"])


def xg():
    return shapes().flatmap(lambda s: st.tuples(arrays(s), arrays(s)))


def one_rounding(x, lr, g, dtype):
    """x − lr·g rounded once (what a fused multiply-add gives)."""
    exact = exact_sgd_step(x, lr, g, dtype)
    return np.array([float(e) for e in exact.flat]).reshape(exact.shape).astype(dtype)


def two_roundings(x, lr, g, dtype):
    t = np.dtype(dtype)
    return np.asarray(x, t) - t.type(lr) * np.asarray(g, t)


@given(dtype=DTYPES, xg=xg(), lr=learning_rates())
def test_fused_and_unfused_evaluations_are_accepted(dtype, xg, lr):
    x, g = xg
    assert_sgd_step(one_rounding(x, lr, g, dtype), x, lr, g, dtype)
    assert_sgd_step(two_roundings(x, lr, g, dtype), x, lr, g, dtype)


def test_cancellation_where_one_and_two_roundings_differ_by_ulps():
    # torch (one rounding) and NumPy (two) disagree by 3 ulps here; both are correct.
    x, lr, a = 8.787508964538574, 0.4554346799850464, float(np.float32(1.32095528))
    g = 2 * a * x
    fused, unfused = one_rounding(x, lr, g, "float64"), two_roundings(x, lr, g, "float64")
    assert abs(float(fused) - float(unfused)) >= 2 * np.spacing(abs(float(unfused)))
    assert_sgd_step(fused, x, lr, g, "float64")
    assert_sgd_step(unfused, x, lr, g, "float64")


def test_flushed_subnormals_are_accepted():
    tiny = np.finfo(np.float32).tiny
    assert_sgd_step(np.float32(0.0), np.float32(tiny / 2), 0.5, 0.0, "float32")  # x flushed
    assert_sgd_step(np.float32(0.0), 0.0, 0.5, np.float32(tiny), "float32")  # lr·g flushed


@given(
    dtype=DTYPES,
    x=floats(Domain(0.5, 10.0, symmetric=True)),
    g=floats(Domain(0.5, 10.0, symmetric=True)),
    lr=floats(Domain(2.0**-6, 0.5)),  # large enough that a 0.1% change is many ulps
)
def test_wrong_update_rules_are_rejected(dtype, x, g, lr):
    t = np.dtype(dtype)
    wrong = {
        "weight decay 0.001": two_roundings(x, lr, g + 0.001 * x, dtype),
        "old learning rate": two_roundings(x, lr * 1.001, g, dtype),
        "x + lr·g": two_roundings(x, -lr, g, dtype),
        "lr·g lost": np.asarray(x, t),
    }
    for name, value in wrong.items():
        with pytest.raises(AssertionError):
            assert_sgd_step(value, x, lr, g, dtype, what=name)


def test_nan_is_rejected():
    with pytest.raises(AssertionError):
        assert_sgd_step(np.float32(np.nan), 1.0, 0.5, 1.0, "float32")


def test_exact_value_is_rational():
    (value,) = exact_sgd_step([1.0], 0.1, [3.0], "float32").flat
    assert value == Fraction(1) - Fraction(float(np.float32(0.1))) * 3


# assert_close: per-entry tolerances ------------------------------------------------


def largest_entry_rule(actual, expected, dtype):
    """The rule assert_close had before: the absolute term scaled by the LARGEST expected entry."""
    rtol = atol = {"float32": 1e-4, "float64": 1e-7}[dtype]
    expected = np.asarray(expected, np.float64)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    error = np.abs(np.asarray(actual, np.float64) - expected)
    return bool(np.all(error <= atol * scale + rtol * np.abs(expected)))


def float32_gradient_of_x_to_the_fourth(x):
    """4x³ evaluated in float32: what a correct float32 implementation returns."""
    x = np.asarray(x, np.float32)
    return (np.float32(4) * x * x * x).astype(np.float64)


SMALL_ENTRY_BUGS = {
    # x = [0.3, 10]: 4x³ = [0.108, 4000]; each bug touches only the small entry
    "small entry zeroed": ([0.3, 10.0], lambda g: np.array([0.0, g[1]])),
    "small entry doubled": ([0.3, 10.0], lambda g: np.array([2 * g[0], g[1]])),
    "small entry 1% off": ([0.3, 10.0], lambda g: np.array([1.01 * g[0], g[1]])),
    # 4x³ = [2e-5, 2e5]: the small entry's sign flipped
    "tiny entry's sign flipped": ([float(np.cbrt(5e-6)), float(np.cbrt(5e4))], lambda g: np.array([-g[0], g[1]])),
}


@pytest.mark.parametrize("bug", list(SMALL_ENTRY_BUGS))
def test_a_wrong_small_entry_next_to_a_large_one_is_rejected(bug):
    x, corrupt = SMALL_ENTRY_BUGS[bug]
    x = np.asarray(x, np.float32).astype(np.float64)
    exact = 4 * x**3
    right = float32_gradient_of_x_to_the_fourth(x)
    wrong = corrupt(right)
    assert largest_entry_rule(wrong, exact, "float32"), "the old rule should let this through (else this shows nothing)"
    assert_close(right, exact, "float32", "correct float32 4x³")
    with pytest.raises(AssertionError):
        assert_close(wrong, exact, "float32", bug)


@pytest.mark.parametrize("bug", list(SMALL_ENTRY_BUGS))
def test_the_same_bugs_against_a_finite_difference_reference(bug):
    x, corrupt = SMALL_ENTRY_BUGS[bug]
    x = np.asarray(x, np.float32).astype(np.float64)
    reference = numdiff.gradient(lambda v: np.sum(v**4), x)  # carries its error estimate
    assert_close(float32_gradient_of_x_to_the_fourth(x), reference, "float32", "correct float32 4x³ vs FD")
    with pytest.raises(AssertionError):
        assert_close(corrupt(float32_gradient_of_x_to_the_fourth(x)), reference, "float32", bug)


def test_scale_admits_the_rounding_of_cancelled_terms_only_where_given():
    # a·x + b with a·x ≈ −b ≈ 2000: float32 rounding leaves 5e-5 on an exact value of 2e-4
    a, x, b = np.float32(200.0), np.float32(9.999999), np.float32(-2000.0)
    computed = float(a * x + b)
    exact = float(a) * float(x) + float(b)
    assert abs(computed - exact) > 1e-5, "the example must round visibly"
    with pytest.raises(AssertionError):
        assert_close(computed, exact, "float32", "cancelled entry without scale")
    assert_close(computed, exact, "float32", "cancelled entry", scale=abs(float(a) * float(x)) + abs(float(b)))
