"""Traced/compiled functions containing tapes (GT-FUNC-01, GT-FUNC-02)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from conformance.harness import make, to_numpy
from conformance.strategies import Domain, arrays, as_dtype, float_dtypes, floats, learning_rates, shapes
from conformance.tolerances import assert_close
from conformance.tutorial_functions import double_until_large, quadratic


def slope_and_value(impl):
    """The tutorial's traced f: (dy/dx, y) for y = a·x² + b·x + c, from a tape inside."""

    def f(x, a, b, c):
        with impl.tape() as tape:
            tape.watch(x)
            y = quadratic(impl, x, a, b, c)
        return tape.gradient(y, x), y

    return f


@pytest.mark.identity("GT-FUNC-01")
@pytest.mark.requires("function")
@given(
    dtype=float_dtypes(),
    points=shapes().flatmap(lambda s: st.tuples(arrays(s), arrays(s))),
    abc=arrays((3,)),
)
def test_traced_function_with_a_tape_matches_eager(impl, dtype, points, abc):
    # The traced function is called at two points: a trace must not replay stale values.
    assume(not np.array_equal(*points))
    eager = slope_and_value(impl)
    traced = impl.function(slope_and_value(impl))
    a, b, c = abc
    coefficients = [make(impl, v, dtype) for v in abc]
    for x in points:
        args = [make(impl, x, dtype), *coefficients]
        for label, (slope, value) in [("eager", eager(*args)), ("traced", traced(*args))]:
            assert_close(to_numpy(impl, slope), 2 * a * x + b, dtype, f"{label} dy/dx vs 2ax + b")
            assert_close(to_numpy(impl, value), a * x**2 + b * x + c, dtype, f"{label} y")


@pytest.mark.identity("GT-FUNC-01")
@pytest.mark.requires("function")
@given(dtype=float_dtypes(), x=arrays(shapes()), coefficient_sets=st.lists(arrays((3,)), min_size=2, max_size=4))
def test_traced_function_takes_python_numbers_of_each_call(impl, dtype, x, coefficient_sets):
    # a, b, c passed as Python floats: each call's numbers are used, the tensor x keeping its
    # shape (a trace keyed by tensor shapes alone replays the first call's numbers).
    assume(len({tuple(abc) for abc in coefficient_sets}) > 1)
    traced = impl.function(slope_and_value(impl))
    xt = make(impl, x, dtype)
    x64 = as_dtype(x, dtype).astype(np.float64)
    for i, abc in enumerate(coefficient_sets):
        a, b, c = (float(np.dtype(dtype).type(v)) for v in abc)
        slope, value = traced(xt, a, b, c)
        assert_close(to_numpy(impl, slope), 2 * a * x64 + b, dtype, f"call {i}: traced dy/dx vs 2ax + b")
        assert_close(to_numpy(impl, value), a * x64**2 + b * x64 + c, dtype, f"call {i}: traced y")


@pytest.mark.identity("GT-FUNC-01")
@pytest.mark.requires("function")
def test_traced_function_tutorial_example(impl):
    def f(x):
        a, b, c = (impl.constant(v, "float32") for v in (1.0, -2.0, 1.0))
        return slope_and_value(impl)(x, a, b, c)

    traced = impl.function(f)
    for x, expected in [(0.0, (-2.0, 1.0)), (1.0, (0.0, 0.0))]:
        slope, value = traced(impl.constant(x, "float32"))
        assert_close([to_numpy(impl, slope), to_numpy(impl, value)], expected, "float32", f"f({x})")


# GT-FUNC-02 -------------------------------------------------------------------


def sgd_run(impl, x0, abc, learning_rate, steps, dtype, traced):
    """Minimise a·x² + b·x + c from x0 with SGD apply_gradients; the step eager or traced."""
    x = impl.variable(as_dtype(x0, dtype), dtype)
    a, b, c = (make(impl, v, dtype) for v in abc)
    optimizer = impl.sgd(learning_rate)

    def step():
        with impl.tape() as tape:
            y = quadratic(impl, x, a, b, c)
        optimizer.apply_gradients([(tape.gradient(y, x), x)])
        return y

    step = impl.function(step) if traced else step
    for _ in range(steps):
        step()
    return to_numpy(impl, x)


# The dtype is a pytest parameter rather than a draw so that each dtype is
# always checked and is its own test node: a deviation in one dtype only
# (torch.compile and 0-d float64 Variables) is then reported deterministically.
@pytest.mark.identity("GT-FUNC-02")
@pytest.mark.requires("function_with_state", "variables", "sgd")
@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.requires("float64"))])
@given(
    x0=floats(),
    a=floats(Domain(0.5, 2.0)),
    b=floats(),
    learning_rate=learning_rates(),
    steps=st.integers(1, 20),
)
def test_traced_training_step_follows_the_eager_trajectory(impl, dtype, x0, a, b, learning_rate, steps):
    abc = np.array([a, b, 1.0])
    eager = sgd_run(impl, x0, abc, learning_rate, steps, dtype, traced=False)
    traced = sgd_run(impl, x0, abc, learning_rate, steps, dtype, traced=True)
    assert_close(traced, eager, dtype, f"x after {steps} traced steps vs eager")


@pytest.mark.identity("GT-FUNC-02")
@pytest.mark.requires("function_with_state", "variables", "sgd")
def test_traced_training_tutorial_example(impl):
    x = sgd_run(impl, 0.0, np.array([1.0, -2.0, 1.0]), 0.01, 1000, "float32", traced=True)
    assert_close(x, 0.999998569, "float32", "x after 1000 traced steps")


# GT-FUNC-03 -------------------------------------------------------------------


def doubled_value_and_gradient(impl):
    """a ↦ (Σc, ∂Σc/∂a) for the D2L while/if function c = double_until_large(a), from a tape inside."""

    def f(a):
        with impl.tape() as tape:
            tape.watch(a)
            total = impl.reduce_sum(double_until_large(impl, a))
        return total, tape.gradient(total, a)

    return f


@st.composite
def inputs_across_branches(draw):
    """3–5 arrays of one shape, scaled by 2^k so that the doubling loop runs a different number of
    times, with either sign of the sum (the two branches)."""
    shape = draw(shapes(), label="shape")
    calls = []
    for i in range(draw(st.integers(3, 5), label="calls")):
        a = draw(arrays(shape, Domain(0.25, 10.0, symmetric=True)), label=f"a{i}")
        calls.append(a * 2.0 ** draw(st.integers(-6, 6), label=f"scale{i}"))
    return calls


@pytest.mark.identity("GT-FUNC-03")
@pytest.mark.requires("function", "function_control_flow")
@given(dtype=float_dtypes(), calls=inputs_across_branches())
def test_traced_function_follows_branches_and_loop_counts_of_each_call(impl, dtype, calls):
    eager = doubled_value_and_gradient(impl)
    traced = impl.function(doubled_value_and_gradient(impl))
    for i, a in enumerate(calls):
        tensor = make(impl, a, dtype)
        eager_total, eager_grad = (to_numpy(impl, t) for t in eager(tensor))
        traced_total, traced_grad = (to_numpy(impl, t) for t in traced(make(impl, a, dtype)))
        # c = s·a, so ∂Σc/∂a = s in every element, with s = Σc/Σa (closed form, no differences)
        scale = eager_grad.flat[0]
        assert_close(eager_grad, np.full(a.shape, scale), dtype, f"call {i}: eager ∂Σc/∂a is one scale")
        a64 = as_dtype(a, dtype).astype(np.float64)
        # Σc cancels when Σa does: its rounding error is relative to Σ|c|, not to Σc
        assert_close(eager_total, scale * a64.sum(), dtype, f"call {i}: eager Σc = s·Σa",
                     scale=abs(scale) * np.abs(a64).sum())
        assert_close(traced_total, eager_total, dtype, f"call {i}: traced Σc vs eager")
        assert_close(traced_grad, eager_grad, dtype, f"call {i}: traced ∂Σc/∂a vs eager")
