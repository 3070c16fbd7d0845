"""The SGD-update oracle (tolerances.assert_sgd_step): it accepts every correct float evaluation
of x − lr·g and rejects wrong update rules. Not an identity: a check of the suite itself."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.strategies import Domain, arrays, floats, learning_rates, shapes
from conformance.tolerances import assert_sgd_step, exact_sgd_step

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
