"""Gradients through Python loops and branches that depend on the inputs (GT-FLOW-01, GT-FLOW-02)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import numdiff
from conformance.harness import make, reference_gradients, reference_value, to_numpy
from conformance.strategies import Domain, arrays, float_dtypes, shapes
from conformance.tolerances import assert_close
from conformance.tutorial_functions import double_until_large, power_in_a_loop

# GT-FLOW-01 -------------------------------------------------------------------


def multiplications(y: int) -> int:
    """How many times power_in_a_loop multiplies x in: k = #{i < y : 1 < i < 5}."""
    return min(max(y - 2, 0), 3)


@pytest.mark.identity("GT-FLOW-01")
@given(dtype=float_dtypes(), x=arrays(shapes()), y=st.integers(3, 9))
def test_gradient_through_loop_and_branch_is_k_x_to_k_minus_1(impl, dtype, x, y):
    # y >= 3 so that x is multiplied in at least once (else f is the constant 1.0)
    k = multiplications(y)

    def f(ops, x):
        return power_in_a_loop(ops, x, y)

    xt = make(impl, x, dtype)
    with impl.tape() as tape:
        tape.watch(xt)
        out = f(impl, xt)
    grad = to_numpy(impl, tape.gradient(out, xt))
    assert_close(to_numpy(impl, out), reference_value(f, x), dtype, f"f(x, {y})")
    assert_close(grad, reference_gradients(f, [x])[0], dtype, f"df/dx for y={y} vs finite differences")
    assert_close(grad, k * x ** (k - 1), dtype, f"df/dx for y={y} vs k·x^(k-1), k={k}")


@pytest.mark.identity("GT-FLOW-01")
@pytest.mark.parametrize("y, gradient, value", [(6, 12.0, 8.0), (7, 12.0, 8.0), (5, 12.0, 8.0), (4, 4.0, 4.0)])
def test_loop_and_branch_tutorial_example(impl, y, gradient, value):
    x = impl.constant(2.0, "float32")
    with impl.tape() as tape:
        tape.watch(x)
        out = power_in_a_loop(impl, x, y)
    assert_close(to_numpy(impl, out), value, "float32", f"f(2, {y})")
    assert_close(to_numpy(impl, tape.gradient(out, x)), gradient, "float32", f"grad(2, {y})")


# GT-FLOW-02 -------------------------------------------------------------------


# The loop stops when ‖2^j·a‖ first reaches 1000: the branch changes where
# ‖a‖ = 1000/2^m. The if changes where sum(a) = 0.
NORM_BOUNDARIES = [1000.0 / 2**m for m in range(1, 40)]
ROUNDING_MARGIN = 1e-4  # relative: float32 norms and sums may land either side closer than this
NONZERO = Domain(0.5, 10.0, symmetric=True)  # the identity divides by a


@pytest.mark.identity("GT-FLOW-02")
@given(dtype=float_dtypes(), a=arrays(shapes(), NONZERO))
def test_gradient_through_while_and_if_equals_c_over_a(impl, dtype, a):
    at = make(impl, a, dtype)
    with impl.tape() as tape:
        tape.watch(at)
        c = double_until_large(impl, at)
    grad = to_numpy(impl, tape.gradient(c, at))
    c_value = to_numpy(impl, c)
    # The closed form holds on either side of a boundary: checked for every example.
    assert_close(grad, c_value / a, dtype, "dc/da vs c/a")
    # The float64 reference may take the other side of a boundary than the computation in
    # dtype, and finite differences must not straddle one: those checks only away from them.
    radius = float(numdiff.stencil_radius(a).max())  # how far finite differences move a coordinate
    norm = float(np.linalg.norm(a))
    clear_of_the_loop = all(abs(norm - edge) > radius + ROUNDING_MARGIN * norm for edge in NORM_BOUNDARIES)
    clear_of_the_branch = abs(a.sum()) > radius + ROUNDING_MARGIN * np.abs(a).sum()
    if clear_of_the_loop and clear_of_the_branch:
        assert_close(c_value, reference_value(double_until_large, a), dtype, "c = f(a)")
        assert_close(grad, reference_gradients(double_until_large, [a])[0], dtype, "dc/da vs finite differences")
