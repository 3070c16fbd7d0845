"""Gradient tapes: first derivatives of recorded computations (identities GT-SUMSQ, GT-INTERMEDIATE, GT-OPS, GT-MATVEC, GT-SOURCES)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from conformance import numdiff
from conformance.harness import make, reference_gradients, reference_value, sum_to_shape, tape_gradients, to_numpy
from conformance.reference import REFERENCE
from conformance.strategies import DOMAINS, Domain, arrays, broadcastable_shapes, float_dtypes, matmul_shapes, shapes
from conformance.tolerances import assert_close
from conformance.tutorial_functions import quadratic, square, squared_sum, twice_gram


# GT-SUMSQ-01 ------------------------------------------------------------------


@pytest.mark.identity("GT-SUMSQ-01")
@given(dtype=float_dtypes(), x=arrays(shapes()))
def test_squared_sum_gradient_is_twice_the_sum(impl, dtype, x):
    value, (grad,) = tape_gradients(impl, squared_sum, [x], dtype)
    assert_close(value, reference_value(squared_sum, x), dtype, "z = (sum x)^2")
    assert_close(grad, reference_gradients(squared_sum, [x])[0], dtype, "dz/dx vs finite differences")
    assert_close(grad, np.full(x.shape, 2 * x.sum()), dtype, "dz/dx vs 2·sum(x)")


@pytest.mark.identity("GT-SUMSQ-01")
def test_squared_sum_tutorial_example(impl):
    x = impl.constant(np.ones((2, 2)), "float32")
    with impl.tape() as tape:
        tape.watch(x)
        y = impl.reduce_sum(x)
        z = impl.multiply(y, y)
    assert_close(to_numpy(impl, y), 4.0, "float32", "y")
    assert_close(to_numpy(impl, z), 16.0, "float32", "z")
    assert_close(to_numpy(impl, tape.gradient(z, x)), np.full((2, 2), 8.0), "float32", "dz/dx")


# GT-INTERMEDIATE-01 -----------------------------------------------------------


@pytest.mark.identity("GT-INTERMEDIATE-01")
@given(dtype=float_dtypes(), x=arrays(shapes()))
def test_gradient_with_respect_to_an_intermediate_is_twice_it(impl, dtype, x):
    xt = make(impl, x, dtype)
    with impl.tape() as tape:
        tape.watch(xt)
        y = impl.reduce_sum(xt)
        z = square(impl, y)
    dz_dy = to_numpy(impl, tape.gradient(z, y))
    y_value = to_numpy(impl, y)
    assert_close(dz_dy, reference_gradients(square, [y_value])[0], dtype, "dz/dy vs finite differences")
    assert_close(dz_dy, 2 * y_value, dtype, "dz/dy vs 2y")


@pytest.mark.identity("GT-INTERMEDIATE-01")
def test_intermediate_gradient_tutorial_example(impl):
    x = impl.constant(np.ones((2, 2)), "float32")
    with impl.tape() as tape:
        tape.watch(x)
        y = impl.reduce_sum(x)
        z = impl.multiply(y, y)
    assert_close(to_numpy(impl, tape.gradient(z, y)), 8.0, "float32", "dz/dy")


# GT-OPS-01 ----------------------------------------------------------------------
# Every op the identities use: the vector-Jacobian product of a random
# cotangent w (w·op(args) summed) against finite differences.

UNARY = {
    "negative": "default",
    "square": "default",
    "sqrt": "sqrt",
    "exp": "exp",
    "log": "log",
    "sin": "default",
    "cos": "default",
    "tanh": "tanh",
    "abs": "default",
    "transpose": "default",
    "reduce_sum": "default",
    "reduce_mean": "default",
    "norm": "default",
}
BINARY = {
    "add": ("default", "default"),
    "subtract": ("default", "default"),
    "multiply": ("default", "default"),
    "divide": ("default", "divisor"),
    "pow": ("pow_base", "pow_exponent"),
}
#: Reductions along one axis (the reference honours ``axis`` as NumPy does).
AXIS_REDUCTIONS = {
    "reduce_sum(axis=0)": lambda ops, x: ops.reduce_sum(x, axis=0),
    "reduce_mean(axis=-1)": lambda ops, x: ops.reduce_mean(x, axis=-1),
}
WEIGHTS = Domain(-2.0, 2.0)


def apply(ops, op, *args):
    """``op`` of the vocabulary (or an axis reduction) applied on ``ops``."""
    if op in AXIS_REDUCTIONS:
        return AXIS_REDUCTIONS[op](ops, *args)
    return getattr(ops, op)(*args)


@st.composite
def op_arguments(draw, op):
    """Arguments for ``op``: broadcastable shapes for binary ops, matching ones for matmul (N-D:
    broadcasting batch axes)."""
    if op == "matmul":  # matrices, and stacks of them with broadcasting batch axes
        shape_a, shape_b = draw(matmul_shapes())
        return [draw(arrays(shape_a)), draw(arrays(shape_b))]
    if op in BINARY:
        shape_a, shape_b = draw(broadcastable_shapes(2))
        domain_a, domain_b = BINARY[op]
        return [draw(arrays(shape_a, domain_a)), draw(arrays(shape_b, domain_b))]
    if op in AXIS_REDUCTIONS:
        return [draw(arrays(shapes(min_dims=1)))]
    return [draw(arrays(shapes(), UNARY[op]))]


def weighted(op):
    def f(ops, w, *args):
        return ops.reduce_sum(ops.multiply(w, apply(ops, op, *args)))

    return f


@pytest.mark.identity("GT-OPS-01")
@pytest.mark.parametrize("op", [*UNARY, *AXIS_REDUCTIONS, *BINARY, "matmul"])
@given(data=st.data(), dtype=float_dtypes())
def test_op_gradient_matches_finite_differences(impl, op, data, dtype):
    args = data.draw(op_arguments(op), label="args")
    radius = max(float(numdiff.stencil_radius(a).max()) for a in args)
    if op == "abs":  # kink at 0
        assume(np.all(np.abs(args[0]) > radius))
    if op == "norm":  # kink at the origin
        assume(np.linalg.norm(args[0]) > 4 * radius)
    out_shape = np.shape(apply(REFERENCE, op, *args))
    w = data.draw(arrays(out_shape, WEIGHTS), label="cotangent w")

    f = weighted(op)
    tensors = [make(impl, a, dtype) for a in args]
    w_tensor = make(impl, w, dtype)
    with impl.tape() as tape:
        tape.watch(tensors)
        value = f(impl, w_tensor, *tensors)
    grads = tape.gradient(value, tensors)
    expected = numdiff.partial_gradients(lambda *a: f(REFERENCE, w, *a), *args)
    assert_close(to_numpy(impl, value), f(REFERENCE, w, *args), dtype, f"sum(w·{op})")
    for i, (grad, want) in enumerate(zip(grads, expected)):
        assert_close(to_numpy(impl, grad), want, dtype, f"d sum(w·{op}) / d arg{i}")


# GT-MATVEC-01 -----------------------------------------------------------------


@pytest.mark.identity("GT-MATVEC-01")
@given(
    dtype=float_dtypes(),
    x=st.tuples(st.integers(1, 6), st.sampled_from([1, 1, 2, 3])).flatmap(arrays),  # columns, and matrices
)
def test_gradient_of_twice_gram_is_four_x(impl, dtype, x):
    value, (grad,) = tape_gradients(impl, twice_gram, [x], dtype)
    assert_close(value, reference_value(twice_gram, x), dtype, "y = 2·xᵀx")
    assert_close(grad, reference_gradients(twice_gram, [x])[0], dtype, "dy/dx vs finite differences")
    # Σ over the entries of 2xᵀx: 4·x·1 (ones k×k), i.e. 4x for a column
    row_sums = np.broadcast_to(x.sum(axis=1, keepdims=True), x.shape)
    assert_close(grad, 4 * row_sums, dtype, "dy/dx vs 4·x·1", scale=4 * np.abs(x).sum(axis=1, keepdims=True))


@pytest.mark.identity("GT-MATVEC-01")
def test_twice_gram_tutorial_example(impl):
    x = impl.constant(np.arange(4.0).reshape(4, 1), "float32")
    with impl.tape() as tape:
        tape.watch(x)
        y = twice_gram(impl, x)
    assert_close(to_numpy(impl, tape.gradient(y, x)), [[0.0], [4.0], [8.0], [12.0]], "float32", "dy/dx")


# GT-SOURCES-01 ----------------------------------------------------------------


@pytest.mark.identity("GT-SOURCES-01")
@given(dtype=float_dtypes(), data=st.data())
def test_gradients_with_respect_to_a_list_of_watched_sources(impl, dtype, data):
    shapes_ = data.draw(broadcastable_shapes(4), label="shapes of x, a, b, c")
    x, a, b, c = (data.draw(arrays(s), label=name) for s, name in zip(shapes_, "xabc"))
    value, grads = tape_gradients(impl, quadratic, [x, a, b, c], dtype)
    y_shape = np.broadcast_shapes(*shapes_)
    assert_close(value, reference_value(quadratic, x, a, b, c), dtype, "y")
    for name, grad, want in zip("xabc", grads, reference_gradients(quadratic, [x, a, b, c])):
        assert_close(grad, want, dtype, f"dy/d{name} vs finite differences")
    closed_forms = [2 * a * x + b, x**2, x, np.ones(())]
    for name, grad, form, shape in zip("xabc", grads, closed_forms, shapes_):
        want = sum_to_shape(np.broadcast_to(form, y_shape), shape)
        assert_close(grad, want, dtype, f"dy/d{name} vs its closed form")


@pytest.mark.identity("GT-SOURCES-01")
@pytest.mark.requires("variables")
def test_watched_constants_tutorial_example(impl):
    x = impl.variable(0.0, "float32")
    a, b, c = (impl.constant(v, "float32") for v in (1.0, -2.0, 1.0))
    with impl.tape() as tape:
        tape.watch([a, b, c])
        y = quadratic(impl, x, a, b, c)
    grads = tape.gradient(y, [x, a, b, c])
    # dy/dx = 2ax + b, dy/da = x², dy/db = x, dy/dc = 1 at x = 0
    for name, grad, want in zip("xabc", grads, [-2.0, 0.0, 0.0, 1.0]):
        assert_close(to_numpy(impl, grad), want, "float32", f"dy/d{name}")
