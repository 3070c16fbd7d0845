"""What a tape returns besides values: cut gradients, unconnected sources, the order and layout of
results (GT-STOP-01, GT-UNCONN-01, GT-STRUCT-01, GT-JAC-01, FWD-HESS-02)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conformance import numdiff
from conformance.harness import make, to_numpy
from conformance.reference import REFERENCE
from conformance.strategies import Domain, arrays, float_dtypes, matmul_shapes, shapes
from conformance.tolerances import assert_close

COEFFICIENTS = Domain(0.5, 3.0, symmetric=True)


# GT-STOP-01 -------------------------------------------------------------------


@pytest.mark.identity("GT-STOP-01")
@given(dtype=float_dtypes(), x=arrays(shapes()))
def test_stop_gradient_cuts_the_gradient(impl, dtype, x):
    # y = Σ x·stop(x) + Σ stop(x²): the stopped factors are constants, so dy/dx = x, not 2x + 2x.
    xt = make(impl, x, dtype)
    with impl.tape() as tape:
        tape.watch(xt)
        y = impl.add(
            impl.reduce_sum(impl.multiply(xt, impl.stop_gradient(xt))),
            impl.reduce_sum(impl.stop_gradient(impl.square(xt))),
        )
    assert_close(to_numpy(impl, tape.gradient(y, xt)), x, dtype, "d/dx [Σ x·stop(x) + Σ stop(x²)]")


@pytest.mark.identity("GT-STOP-01")
@pytest.mark.requires("stop_recording")
@given(dtype=float_dtypes(), x=arrays(shapes()))
def test_stop_recording_cuts_the_gradient(impl, dtype, x):
    # ops computed inside stop_recording() are constants for the tape: d/dx [Σ x² + Σ sin(x)] = 2x.
    xt = make(impl, x, dtype)
    with impl.tape() as tape:
        tape.watch(xt)
        recorded = impl.reduce_sum(impl.square(xt))
        with tape.stop_recording():
            unrecorded = impl.reduce_sum(impl.sin(xt))
        y = impl.add(recorded, unrecorded)
    assert_close(to_numpy(impl, tape.gradient(y, xt)), 2 * x, dtype, "d/dx [Σ x² + Σ sin(x) unrecorded]")


# GT-UNCONN-01 -----------------------------------------------------------------


@st.composite
def connection_patterns(draw):
    """Sources (1..4, any shapes), and for each: used, used only through stop_gradient, or unused."""
    n = draw(st.integers(1, 4), label="number of sources")
    values = [draw(arrays(shapes()), label=f"source {i}") for i in range(n)]
    uses = draw(st.lists(st.sampled_from(["used", "stopped", "unused"]), min_size=n, max_size=n), label="uses")
    return values, uses


def connected_target(ops, tensors, uses, offset):
    """offset + Σ over sources: Σ s² if used, Σ stop(s)² if stopped, nothing if unused."""
    total = ops.reduce_sum(ops.square(offset))
    for tensor, use in zip(tensors, uses):
        if use == "used":
            total = ops.add(total, ops.reduce_sum(ops.square(tensor)))
        elif use == "stopped":
            total = ops.add(total, ops.reduce_sum(ops.square(ops.stop_gradient(tensor))))
    return total


@pytest.mark.identity("GT-UNCONN-01")
@given(dtype=float_dtypes(), pattern=connection_patterns(), offset=arrays(shapes()))
def test_unconnected_sources_get_none_even_when_watched(impl, dtype, pattern, offset):
    values, uses = pattern
    tensors = [make(impl, v, dtype) for v in values]
    with impl.tape() as tape:
        tape.watch(tensors)  # every source watched explicitly
        y = connected_target(impl, tensors, uses, make(impl, offset, dtype))
    grads = tape.gradient(y, tensors)
    assert isinstance(grads, list) and len(grads) == len(tensors), f"got {grads!r} for {len(tensors)} sources"
    for i, (grad, value, use) in enumerate(zip(grads, values, uses)):
        if use == "used":
            assert_close(to_numpy(impl, grad), 2 * value, dtype, f"gradient of used source {i}")
        else:
            assert grad is None, f"source {i} ({use}) of {uses}: got {to_numpy(impl, grad)!r}, expected None"


@pytest.mark.identity("GT-UNCONN-01")
@pytest.mark.requires("unconnected_zero")
@given(dtype=float_dtypes(), pattern=connection_patterns(), offset=arrays(shapes()))
def test_unconnected_sources_get_zeros_when_asked(impl, dtype, pattern, offset):
    values, uses = pattern
    tensors = [make(impl, v, dtype) for v in values]
    with impl.tape() as tape:
        tape.watch(tensors)
        y = connected_target(impl, tensors, uses, make(impl, offset, dtype))
    grads = tape.gradient(y, tensors, unconnected_gradients="zero")
    for i, (grad, value, use) in enumerate(zip(grads, values, uses)):
        expected = 2 * value if use == "used" else np.zeros_like(value)
        got = to_numpy(impl, grad)
        assert got is not None, f"source {i} ({use}) of {uses}: got None with unconnected_gradients='zero'"
        assert got.dtype == np.dtype(dtype), f"source {i}: {got.dtype} gradient for a {dtype} source"
        assert_close(got, expected, dtype, f"gradient of {use} source {i}")


# GT-STRUCT-01 -----------------------------------------------------------------


@pytest.mark.identity("GT-STRUCT-01")
@given(
    dtype=float_dtypes(),
    data=st.data(),
    n=st.integers(2, 4),
    shape=shapes(),
)
def test_gradients_come_in_the_order_of_the_sources(impl, dtype, data, n, shape):
    # Equal shapes, so only the order tells the gradients apart; the sources are used in another
    # order than they are listed, each with its own coefficient: y = Σ_j c_j Σ s_j².
    values = [data.draw(arrays(shape), label=f"s{j}") for j in range(n)]
    coefficients = [data.draw(st.floats(0.5, 3.0, width=32), label=f"c{j}") for j in range(n)]
    use_order = data.draw(st.permutations(range(n)).filter(lambda p: list(p) != list(range(n))), label="use order")
    tensors = [make(impl, v, dtype) for v in values]
    with impl.tape() as tape:
        tape.watch(tensors)
        y = None
        for j in use_order:
            term = impl.multiply(coefficients[j], impl.reduce_sum(impl.square(tensors[j])))
            y = term if y is None else impl.add(y, term)
    grads = tape.gradient(y, tensors)
    assert isinstance(grads, (list, tuple)) and len(grads) == n, f"got {grads!r} for a list of {n} sources"
    for j, grad in enumerate(grads):
        assert_close(to_numpy(impl, grad), 2 * coefficients[j] * values[j], dtype, f"gradient {j} (listed order)")
    with impl.tape() as tape:
        tape.watch(tensors[0])
        y = impl.reduce_sum(impl.square(tensors[0]))
    single = tape.gradient(y, tensors[0])
    assert not isinstance(single, (list, tuple)), "a single source (not a list) must give a single gradient"
    assert_close(to_numpy(impl, single), 2 * values[0], dtype, "gradient for one source")

@pytest.mark.identity("GT-STRUCT-01")
@given(dtype=float_dtypes(), data=st.data(), shape=shapes())
def test_a_source_listed_twice_gets_its_gradient_at_each_place(impl, dtype, data, shape):
    # gradient(y, [s0, s1, s0, ...]): a repeated source is answered at every place it is listed,
    # not only the first (a mapping from source to one position loses the others).
    values = [data.draw(arrays(shape), label=f"s{j}") for j in range(2)]
    coefficients = [data.draw(st.floats(0.5, 3.0, width=32), label=f"c{j}") for j in range(2)]
    listed = data.draw(st.lists(st.sampled_from([0, 1]), min_size=3, max_size=5)
                       .filter(lambda l: len(set(l)) == 2 and len(l) > len(set(l))), label="listed sources")
    tensors = [make(impl, v, dtype) for v in values]
    with impl.tape() as tape:
        tape.watch(tensors)
        y = impl.add(impl.multiply(coefficients[0], impl.reduce_sum(impl.square(tensors[0]))),
                     impl.multiply(coefficients[1], impl.reduce_sum(impl.square(tensors[1]))))
    grads = tape.gradient(y, [tensors[j] for j in listed])
    assert isinstance(grads, (list, tuple)) and len(grads) == len(listed), f"got {grads!r} for {len(listed)} sources"
    for place, (j, grad) in enumerate(zip(listed, grads)):
        assert grad is not None, f"source s{j} listed at place {place} of {listed} got None"
        assert_close(to_numpy(impl, grad), 2 * coefficients[j] * values[j], dtype, f"gradient of s{j} at place {place}")


# GT-JAC-01 --------------------------------------------------------------------


def matrix_map(ops, x, a):
    """(p, q) → (m, q): a · sin(x); output entry (i, k) depends on column k of x only."""
    return ops.matmul(a, ops.sin(x))


def row_map(ops, x, w):
    """(b, n) → (b, m), rows independent: tanh(x · w)."""
    return ops.tanh(ops.matmul(x, w))


@st.composite
def matrix_problems(draw):
    m, p, q = (draw(st.integers(1, 3), label=label) for label in "mpq")
    return draw(arrays((p, q)), label="x"), draw(arrays((m, p), COEFFICIENTS), label="a")


@st.composite
def batched_matrix_problems(draw):
    """x (…, p, q) and a (…, m, p) whose batch axes broadcast (none, either or both batched)."""
    shape_a, shape_x = draw(matmul_shapes(), label="shapes of a and x")
    return draw(arrays(shape_x), label="x"), draw(arrays(shape_a, COEFFICIENTS), label="a")


@pytest.mark.identity("GT-JAC-01")
@pytest.mark.requires("tape_jacobian")
@given(dtype=float_dtypes(), problem=batched_matrix_problems())
@example(dtype="float32", problem=(np.arange(6.0).reshape(1, 2, 3) / 4, np.array([[[1.0, 2.0]], [[-0.5, 3.0]]])))
def test_jacobian_layout_is_target_axes_then_source_axes(impl, dtype, problem):
    # x (…, p, q), y = a·sin(x) (…, m, q) with the batch axes broadcast: shape y.shape + x.shape
    x, a = problem
    xt = make(impl, x, dtype)
    with impl.tape() as tape:
        tape.watch(xt)
        y = matrix_map(impl, xt, make(impl, a, dtype))
    jacobian = to_numpy(impl, tape.jacobian(y, xt))
    expected = numdiff.jacobian(lambda v: matrix_map(REFERENCE, v, a), x)  # y.shape + x.shape
    assert_close(jacobian, expected, dtype, "jacobian (y axes, then x axes)")


@pytest.mark.identity("GT-JAC-01")
@pytest.mark.requires("tape_jacobian")
@given(
    dtype=float_dtypes(),
    sizes=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    data=st.data(),
)
def test_batch_jacobian_is_the_per_row_jacobian(impl, dtype, sizes, data):
    b, n, m = sizes
    x = data.draw(arrays((b, n), Domain(-2.0, 2.0)), label="x")
    w = data.draw(arrays((n, m), Domain(-1.0, 1.0)), label="w")
    xt = make(impl, x, dtype)
    with impl.tape() as tape:
        tape.watch(xt)
        y = row_map(impl, xt, make(impl, w, dtype))
    batch = to_numpy(impl, tape.batch_jacobian(y, xt))
    full = numdiff.jacobian(lambda v: row_map(REFERENCE, v, w), x)  # (b, m, b, n)
    expected = np.stack([full[i, :, i, :] for i in range(b)])  # (b, m, n)
    assert_close(batch, expected, dtype, "batch_jacobian (b, m, n)")


# FWD-HESS-02 ------------------------------------------------------------------


def matrix_energy(ops, x, a):
    """(p, q) → R: Σ (a · sin(x))² + Σ x³/10: a Hessian that couples entries of a column."""
    h = ops.matmul(a, ops.sin(x))
    return ops.add(ops.reduce_sum(ops.multiply(h, h)), ops.reduce_sum(ops.multiply(0.1, ops.pow(x, 3))))


@pytest.mark.identity("FWD-HESS-02")
@pytest.mark.requires("hessian")
@given(dtype=float_dtypes(), problem=matrix_problems())
def test_hessian_of_a_matrix_input_has_its_axes_twice(impl, dtype, problem):
    x, a = problem
    a_tensor = make(impl, a, dtype)
    hessian = to_numpy(impl, impl.hessian(lambda v: matrix_energy(impl, v, a_tensor), make(impl, x, dtype)))
    expected = numdiff.hessian(lambda v: matrix_energy(REFERENCE, v, a), x)  # (p, q, p, q)
    assert_close(hessian, expected, dtype, "hessian (p, q, p, q)")
