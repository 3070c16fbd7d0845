"""Conventions at kinks (documented in the rules.py docstring and the README), in reverse and
forward mode, on the scalar C path (shape ()) and the numpy path (shape (1,) or larger), in
float32 and float64:

  relu'(0) = 0, abs'(0) = 0, the gradient of norm at 0 is 0 (finite), maximum/minimum ties
  (and clip_by_value at its bounds) send the gradient to the first argument, tied maxima and
  minima of reduce_max/reduce_min share it equally, d(x**y)/dy is 0 (not NaN) where x = 0,
  d(x**0)/dx is NaN at x = 0 (as in TensorFlow), and the double-where idiom keeps NaN out of
  gradients.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualad as dd
from helpers import SETTINGS, floats, npy

DTYPES = ["float32", "float64"]
SHAPES = [(), (1,), (3,)]  # () is the C scalar path


def const(v, shape, dtype):
    return dd.constant(np.full(shape, v, dtype=dtype))


def grads(fn, xs):
    """Reverse-mode gradients of sum(fn(*xs)) (raw sweep: the C path for scalars)."""
    with dd.GradientTape() as tape:
        tape.watch(xs)
        y = fn(*xs)
    return tape.gradient(y, xs)


def nested_grads(fn, xs):
    """The same gradients computed while an outer tape records (the rule path, not C)."""
    with dd.GradientTape() as outer:
        outer.watch(xs)
        g = grads(fn, xs)
    return g


def jvps(fn, xs):
    """Forward-mode tangent of fn along each input separately (unit tangent)."""
    out = []
    for k in range(len(xs)):
        with dd.ForwardAccumulator(xs[k], dd.ones_like(xs[k])) as acc:
            y = fn(*xs)
        out.append(acc.jvp(y, unconnected_gradients="zero"))
    return out


def all_modes(fn, values, shape, dtype):
    """[reverse, reverse-recorded, forward] derivative of fn w.r.t. each input, as arrays."""
    results = []
    for mode in (grads, nested_grads, jvps):
        xs = [const(v, shape, dtype) for v in values]
        results.append([npy(g) for g in mode(fn, xs)])
    return results


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fn", [dd.relu, dd.abs, lambda x: abs(x)], ids=["relu", "abs", "abs_builtin"])
def test_relu_and_abs_have_zero_derivative_at_zero(fn, shape, dtype):
    for mode in all_modes(fn, [0.0], shape, dtype):
        np.testing.assert_array_equal(mode[0], np.zeros(shape))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_relu_and_abs_derivatives_away_from_zero(shape, dtype):
    for v, relu_d, abs_d in ((2.0, 1.0, 1.0), (-2.0, 0.0, -1.0)):
        for mode in all_modes(dd.relu, [v], shape, dtype):
            np.testing.assert_array_equal(mode[0], np.full(shape, relu_d))
        for mode in all_modes(dd.abs, [v], shape, dtype):
            np.testing.assert_array_equal(mode[0], np.full(shape, abs_d))


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_and_abs_second_derivative_at_zero_is_zero(dtype):
    for fn in (dd.relu, dd.abs):
        x = const(0.0, (2,), dtype)
        with dd.GradientTape() as outer:
            outer.watch(x)
            with dd.GradientTape() as inner:
                inner.watch(x)
                y = fn(x)
            g = inner.gradient(y, x)
        h = outer.gradient(g, x, unconnected_gradients="zero")
        np.testing.assert_array_equal(npy(h), [0.0, 0.0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (-1, True), ((0, 1), False)])
def test_norm_gradient_at_zero_is_zero_and_finite(axis, keepdims, dtype):
    x = dd.constant(np.zeros((2, 3), dtype=dtype))
    with dd.GradientTape() as tape:
        tape.watch(x)
        n = dd.norm(x, axis=axis, keepdims=keepdims)
    g = npy(tape.gradient(n, x))
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g, np.zeros((2, 3)))
    with dd.ForwardAccumulator(x, dd.ones_like(x)) as acc:
        n = dd.norm(x, axis=axis, keepdims=keepdims)
    np.testing.assert_array_equal(npy(acc.jvp(n)), np.zeros(n.shape))


def test_norm_gradient_with_one_zero_row_is_zero_there_and_unit_elsewhere():
    x = dd.constant(np.array([[0.0, 0.0], [3.0, 4.0]]))
    with dd.GradientTape() as tape:
        tape.watch(x)
        n = dd.norm(x, axis=1)
    np.testing.assert_allclose(npy(tape.gradient(n, x)), [[0.0, 0.0], [0.6, 0.8]], rtol=1e-15)


def test_norm_second_derivative_at_zero_is_zero():
    x = dd.constant(np.zeros(3))
    with dd.GradientTape() as outer:
        outer.watch(x)
        with dd.GradientTape() as inner:
            inner.watch(x)
            n = dd.norm(x)
        g = inner.gradient(n, x)
        s = dd.reduce_sum(g)
    h = outer.gradient(s, x, unconnected_gradients="zero")
    # norm'(0) = 0 is taken on a branch that does not depend on x: its derivative is 0 too
    np.testing.assert_array_equal(npy(h), np.zeros(3))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fn", [dd.maximum, dd.minimum])
def test_maximum_minimum_ties_go_to_the_first_argument(fn, shape, dtype):
    for mode in all_modes(fn, [1.5, 1.5], shape, dtype):
        np.testing.assert_array_equal(mode[0], np.ones(shape))
        np.testing.assert_array_equal(mode[1], np.zeros(shape))


@SETTINGS
@given(v=floats(-3, 3), dtype=st.sampled_from(DTYPES), shape=st.sampled_from(SHAPES))
def test_maximum_minimum_ties_property(v, dtype, shape):
    for fn in (dd.maximum, dd.minimum):
        for mode in all_modes(fn, [v, v], shape, dtype):
            np.testing.assert_array_equal(mode[0], np.ones(shape))
            np.testing.assert_array_equal(mode[1], np.zeros(shape))


def test_maximum_ties_with_broadcasting():
    a = dd.constant(np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 0.0]]))
    b = dd.constant(np.array([2.0, 2.0, 2.0]))
    with dd.GradientTape() as tape:
        tape.watch([a, b])
        y = dd.reduce_sum(dd.maximum(a, b))
    ga, gb = tape.gradient(y, [a, b])
    np.testing.assert_array_equal(npy(ga), [[0, 1, 1], [1, 1, 0]])
    np.testing.assert_array_equal(npy(gb), [1, 0, 1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bound", [-0.5, 0.7])
def test_clip_by_value_at_its_bounds_passes_the_gradient_to_t(bound, shape, dtype):
    fn = lambda t: dd.clip_by_value(t, -0.5, 0.7)  # noqa: E731
    bound = np.dtype(dtype).type(bound)
    for mode in all_modes(fn, [bound], shape, dtype):
        np.testing.assert_array_equal(mode[0], np.ones(shape))
    for outside in (-0.9, 1.1):
        for mode in all_modes(fn, [outside], shape, dtype):
            np.testing.assert_array_equal(mode[0], np.zeros(shape))


SQUARE_AT_A_TIE = {  # x² against 2.25 at x = 1.5: a tie (or a bound) with a curved argument
    "maximum(x², c)": (lambda x, c: dd.maximum(x * x, c), 2.0),   # first argument: (x²)'' = 2
    "minimum(x², c)": (lambda x, c: dd.minimum(x * x, c), 2.0),
    "maximum(c, x²)": (lambda x, c: dd.maximum(c, x * x), 0.0),   # first argument: c'' = 0
    "clip(x², 0, c)": (lambda x, c: dd.clip_by_value(x * x, 0.0, c), 2.0),   # t at its bound
    "clip(x², c, 9)": (lambda x, c: dd.clip_by_value(x * x, c, 9.0), 2.0),
    "reduce_max(x², c)": (lambda x, c: dd.reduce_max(dd.stack([x * x, c]), axis=0), 1.0),  # shared
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", sorted(SQUARE_AT_A_TIE))
def test_second_derivative_at_a_tie_is_that_of_the_branch_the_gradient_took(name, shape, dtype):
    """The defined value, not just a finite one: the second derivative at a tie or a bound is
    the derivative of the first derivative's choice (reverse-over-reverse and
    forward-over-reverse agree)."""
    fn, expected = SQUARE_AT_A_TIE[name]
    x, c = const(1.5, shape, dtype), const(2.25, shape, dtype)
    first = lambda x: dd.grad(lambda x: dd.reduce_sum(fn(x, c)))(x)  # noqa: E731
    with dd.GradientTape() as outer:
        outer.watch(x)
        g = first(x)
    reverse = outer.gradient(g, x, unconnected_gradients="zero")
    with dd.ForwardAccumulator(x, dd.ones_like(x)) as acc:
        g = first(x)
    forward = acc.jvp(g, unconnected_gradients="zero")
    for h in (reverse, forward):
        assert h.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(npy(h), np.full(shape, expected), err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduce,pick", [(dd.reduce_max, np.max), (dd.reduce_min, np.min)])
def test_reduce_max_min_ties_share_equally(reduce, pick, dtype):
    x = np.array([[1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 0.0, 5.0, -1.0]], dtype=dtype)
    hit = (x == pick(x, axis=1, keepdims=True)).astype(float)
    expected_rows = hit / hit.sum(axis=1, keepdims=True)
    hit_all = (x == pick(x)).astype(float)
    for axis, expected in ((1, expected_rows), (None, hit_all / hit_all.sum())):
        t = dd.constant(x)
        with dd.GradientTape() as tape:
            tape.watch(t)
            y = dd.reduce_sum(reduce(t, axis=axis))
        g = npy(tape.gradient(y, t))
        np.testing.assert_allclose(g, expected, rtol=1e-7)
        with dd.ForwardAccumulator(t, dd.ones_like(t)) as acc:
            y = reduce(t, axis=axis)
        # the tangent of a tied extremum is the mean of the tied tangents (1 here)
        np.testing.assert_allclose(npy(acc.jvp(y)), np.ones(y.shape), rtol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("base", [0.0, -2.0])
def test_pow_derivative_in_exponent_is_zero_not_nan_where_base_nonpositive(base, shape, dtype):
    # d(x**y)/dy = log(x) * x**y is taken as 0 where x <= 0
    for mode in all_modes(dd.pow, [base, 2.0], shape, dtype):
        assert np.all(np.isfinite(mode[1])), mode
        np.testing.assert_array_equal(mode[1], np.zeros(shape))
        np.testing.assert_array_equal(mode[0], np.full(shape, 2.0 * base))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_pow_derivative_in_base_of_x_to_the_zero_at_zero_is_nan(shape, dtype):
    # documented choice (TensorFlow's): d(x**0)/dx = 0 * x**-1 = 0 * inf = NaN at x = 0;
    # JAX and PyTorch special-case it to 0
    for mode in all_modes(dd.pow, [0.0, 0.0], shape, dtype):
        assert np.all(np.isnan(mode[0])), mode
        np.testing.assert_array_equal(mode[1], np.zeros(shape))


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_second_derivative_in_exponent_at_zero_base_is_zero(dtype):
    x, y = dd.constant(np.zeros(2, dtype)), dd.constant(np.full(2, 3.0, dtype))
    with dd.GradientTape() as outer:
        outer.watch([x, y])
        with dd.GradientTape() as inner:
            inner.watch([x, y])
            z = dd.reduce_sum(dd.pow(x, y))
        gy = inner.gradient(z, y)
    hx, hy = outer.gradient(gy, [x, y], unconnected_gradients="zero")
    # d(x**y)/dy is the constant 0 where x <= 0 (README), so both its derivatives are 0
    for h in (hx, hy):
        assert h.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(npy(h), np.zeros(2))


@pytest.mark.parametrize("dtype", DTYPES)
def test_double_where_idiom_gives_finite_gradient_and_naive_where_gives_nan(dtype):
    x = dd.constant(np.array([0.0, 4.0, -1.0], dtype=dtype))
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        safe = dd.where(x > 0, dd.sqrt(dd.where(x > 0, x, 1.0)), 0.0)
        naive = dd.where(x > 0, dd.sqrt(x), 0.0)
    g_safe = npy(tape.gradient(safe, x))
    np.testing.assert_array_equal(g_safe, [0.0, 0.25, 0.0])
    # documented: the untaken branch's infinite/NaN derivative still poisons the naive form
    g_naive = npy(tape.gradient(naive, x))
    assert np.isnan(g_naive[0]) and g_naive[1] == 0.25
    with dd.ForwardAccumulator(x, dd.ones_like(x)) as acc:
        safe = dd.where(x > 0, dd.sqrt(dd.where(x > 0, x, 1.0)), 0.0)
    np.testing.assert_array_equal(npy(acc.jvp(safe)), [0.0, 0.25, 0.0])


def test_rules_docstring_documents_the_conventions():
    doc = dd.rules.__doc__
    for phrase in ("relu'(0) = 0", "abs'(0) = 0", "norm'(0) = 0", "first argument",
                   "share the gradient equally", "d(x**0)/dx is NaN at x = 0"):
        assert phrase in doc.replace("\n", " "), phrase
