"""What forward mode adds: jvp = J·v, vjp = uᵀJ, forward-over-reverse H·v, symmetric Hessians (FWD-*)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import numdiff
from conformance.harness import make, to_numpy
from conformance.reference import REFERENCE
from conformance.strategies import Domain, arrays, broadcastable_shapes, float_dtypes, shapes
from conformance.tolerances import assert_close

WEIGHTS = Domain(-1.5, 1.5)
POINTS = Domain(-3.0, 3.0)


def layer(ops, x, w1, w2):
    """R^(n×k) → R^(p×k): w2 · tanh(sin(w1 · x)) (k = 1: a column vector)."""
    return ops.matmul(w2, ops.tanh(ops.sin(ops.matmul(w1, x))))


def energy(ops, x, w1):
    """R^(n×k) → R: sum(h·h) + sum(exp(x/2)), h = sin(w1 · x)."""
    h = ops.sin(ops.matmul(w1, x))
    return ops.add(ops.reduce_sum(ops.multiply(h, h)), ops.reduce_sum(ops.exp(ops.multiply(0.5, x))))


@st.composite
def problems(draw):
    """A point x (n×k: a column or a matrix), weights w1 (m×n), w2 (p×m), a tangent v like x and
    a cotangent u like layer(x)."""
    n, m, p = (draw(st.integers(1, 4), label=label) for label in "nmp")
    k = draw(st.sampled_from([1, 2]), label="columns of x")
    return {
        "x": draw(arrays((n, k), POINTS), label="x"),
        "w1": draw(arrays((m, n), WEIGHTS), label="w1"),
        "w2": draw(arrays((p, m), WEIGHTS), label="w2"),
        "v": draw(arrays((n, k), WEIGHTS), label="v"),
        "u": draw(arrays((p, k), WEIGHTS), label="u"),
    }


def reference_layer_jacobian(problem):
    """∂layer/∂x with shape (p, k, n, k)."""
    return numdiff.jacobian(lambda x: layer(REFERENCE, x, problem["w1"], problem["w2"]), problem["x"])


def reference_energy_hessian(problem):
    """∇² energy with shape (n, k, n, k)."""
    return numdiff.hessian(lambda x: energy(REFERENCE, x, problem["w1"]), problem["x"])


@pytest.mark.identity("FWD-JVP-01")
@pytest.mark.requires("jvp")
@given(dtype=float_dtypes(), problem=problems())
def test_jvp_is_jacobian_times_tangent(impl, dtype, problem):
    w1, w2 = make(impl, problem["w1"], dtype), make(impl, problem["w2"], dtype)
    out, jvp = impl.jvp(lambda x: layer(impl, x, w1, w2), [make(impl, problem["x"], dtype)], [make(impl, problem["v"], dtype)])
    expected = np.tensordot(reference_layer_jacobian(problem), problem["v"], axes=2)
    assert_close(to_numpy(impl, out), layer(REFERENCE, problem["x"], problem["w1"], problem["w2"]), dtype, "f(x)")
    assert_close(to_numpy(impl, jvp), expected, dtype, "jvp vs J·v")


@pytest.mark.identity("FWD-VJP-01")
@pytest.mark.requires("vjp")
@given(dtype=float_dtypes(), problem=problems())
def test_vjp_is_cotangent_times_jacobian(impl, dtype, problem):
    w1, w2 = make(impl, problem["w1"], dtype), make(impl, problem["w2"], dtype)
    out, (vjp,) = impl.vjp(lambda x: layer(impl, x, w1, w2), [make(impl, problem["x"], dtype)], make(impl, problem["u"], dtype))
    expected = np.tensordot(problem["u"], reference_layer_jacobian(problem), axes=2)
    assert_close(to_numpy(impl, out), layer(REFERENCE, problem["x"], problem["w1"], problem["w2"]), dtype, "f(x)")
    assert_close(to_numpy(impl, vjp), expected, dtype, "vjp vs uᵀJ")


@pytest.mark.identity("FWD-HVP-01")
@pytest.mark.requires("hvp")
@given(dtype=float_dtypes(), problem=problems())
def test_forward_over_reverse_hvp_is_hessian_times_vector(impl, dtype, problem):
    w1 = make(impl, problem["w1"], dtype)
    hvp = impl.hvp(lambda x: energy(impl, x, w1), make(impl, problem["x"], dtype), make(impl, problem["v"], dtype))
    expected = np.tensordot(reference_energy_hessian(problem), problem["v"], axes=2)
    assert_close(to_numpy(impl, hvp), expected, dtype, "hvp vs H·v")


@pytest.mark.identity("FWD-HESS-01")
@pytest.mark.requires("hessian")
@given(dtype=float_dtypes(), problem=problems())
def test_hessian_is_symmetric_and_matches_finite_differences(impl, dtype, problem):
    w1 = make(impl, problem["w1"], dtype)
    hessian = to_numpy(impl, impl.hessian(lambda x: energy(impl, x, w1), make(impl, problem["x"], dtype)))
    n = problem["x"].size
    assert hessian is not None and hessian.size == n * n, f"Hessian of shape {np.shape(hessian)}, expected (n,k,n,k)"
    square = hessian.reshape(n, n)
    assert_close(square, square.T, dtype, "H vs Hᵀ")
    assert_close(hessian, reference_energy_hessian(problem), dtype, "H vs finite differences")


# FWD-JVP-02 -------------------------------------------------------------------


def two_argument_map(ops, x, y):
    """sin(x)·y + x² (broadcasting x and y)."""
    return ops.add(ops.multiply(ops.sin(x), y), ops.square(x))


@pytest.mark.identity("FWD-JVP-02")
@pytest.mark.requires("jvp")
@given(dtype=float_dtypes(), data=st.data())
def test_jvp_of_several_primals_sums_each_tangent_contribution(impl, dtype, data):
    shape_x, shape_y = data.draw(broadcastable_shapes(2), label="shapes of x and y")
    if data.draw(st.booleans(), label="x and y of one shape"):  # only the order tells u and v apart
        shape_y = shape_x
    x, u = data.draw(arrays(shape_x, POINTS), label="x"), data.draw(arrays(shape_x, WEIGHTS), label="u")
    y, v = data.draw(arrays(shape_y, POINTS), label="y"), data.draw(arrays(shape_y, WEIGHTS), label="v")
    out, tangent = impl.jvp(
        lambda a, b: two_argument_map(impl, a, b),
        [make(impl, x, dtype), make(impl, y, dtype)],
        [make(impl, u, dtype), make(impl, v, dtype)],
    )
    expected = numdiff.directional_derivative(lambda a, b: two_argument_map(REFERENCE, a, b), [x, y], [u, v])
    assert_close(to_numpy(impl, out), two_argument_map(REFERENCE, x, y), dtype, "f(x, y)")
    assert_close(to_numpy(impl, tangent), expected, dtype, "jvp vs ∂f/∂x·u + ∂f/∂y·v")
    assert_close(to_numpy(impl, tangent), np.cos(x) * u * y + np.sin(x) * v + 2 * x * u, dtype, "jvp vs its closed form")


# FWD-NEST-01 ------------------------------------------------------------------


@pytest.mark.identity("FWD-NEST-01")
@pytest.mark.requires("jvp")
@given(dtype=float_dtypes(), xy=shapes().flatmap(lambda s: st.tuples(arrays(s, POINTS), arrays(s, POINTS))))
def test_nested_jvps_do_not_confuse_their_perturbations(impl, dtype, xy):
    x, y = xy
    xt, yt, ones = make(impl, x, dtype), make(impl, y, dtype), make(impl, np.ones_like(x), dtype)

    def derivative_of(f, at):
        """df/dt at ``at``, elementwise: the adapter's jvp with tangent 1."""
        return impl.jvp(f, [at], [ones])[1]

    # d/dx [x · d/dy (x + y)] = d/dx [x · 1] = 1: an inner jvp that also sees the outer
    # perturbation of x gets d/dy (x + y) = 2 and the answer 2.
    first = derivative_of(lambda a: impl.multiply(a, derivative_of(lambda b: impl.add(a, b), yt)), xt)
    assert_close(to_numpy(impl, first), np.ones_like(x), dtype, "d/dx [x · d/dy (x + y)]")
    # d/dx [x · d/dy (x · y)] = d/dx [x²] = 2x
    second = derivative_of(lambda a: impl.multiply(a, derivative_of(lambda b: impl.multiply(a, b), yt)), xt)
    assert_close(to_numpy(impl, second), 2 * x, dtype, "d/dx [x · d/dy (x·y)]")
    # d/dx [sin(x) · d/dy (x·y²)] = d/dx [2xy·sin(x)] = 2y·(sin x + x cos x)
    third = derivative_of(
        lambda a: impl.multiply(impl.sin(a), derivative_of(lambda b: impl.multiply(a, impl.square(b)), yt)),
        xt,
    )
    assert_close(to_numpy(impl, third), 2 * y * (np.sin(x) + x * np.cos(x)), dtype, "d/dx [sin x · d/dy (x·y²)]")


# FWD-SECOND-01 ----------------------------------------------------------------


@pytest.mark.identity("FWD-SECOND-01")
@pytest.mark.requires("jvp")
@given(dtype=float_dtypes(), problem=problems())
def test_forward_over_forward_is_the_second_directional_derivative(impl, dtype, problem):
    w1 = make(impl, problem["w1"], dtype)
    x, v = make(impl, problem["x"], dtype), make(impl, problem["v"], dtype)

    def directional(point):
        return impl.jvp(lambda p: energy(impl, p, w1), [point], [v])[1]

    _, second = impl.jvp(directional, [x], [v])
    hessian = reference_energy_hessian(problem)
    expected = np.tensordot(problem["v"], np.tensordot(hessian, problem["v"], axes=2), axes=2)
    assert_close(to_numpy(impl, second), expected, dtype, "vᵀHv by forward over forward")


@pytest.mark.identity("FWD-SECOND-01")
@pytest.mark.requires("jvp", "reverse_over_forward")
@given(dtype=float_dtypes(), problem=problems())
def test_reverse_over_forward_is_hessian_times_vector(impl, dtype, problem):
    w1 = make(impl, problem["w1"], dtype)
    x, v = make(impl, problem["x"], dtype), make(impl, problem["v"], dtype)
    with impl.tape() as tape:
        tape.watch(x)
        _, directional = impl.jvp(lambda p: energy(impl, p, w1), [x], [v])
    hvp = tape.gradient(directional, x)
    expected = np.tensordot(reference_energy_hessian(problem), problem["v"], axes=2)
    assert_close(to_numpy(impl, hvp), expected, dtype, "gradient of the jvp vs H·v")


# FWD-WATCH-01 -----------------------------------------------------------------


def scaled_wave(ops, x, v):
    """v·sin(x) + v²·x: v enters twice, so a tangent given to v would change both terms."""
    return ops.add(ops.multiply(v, ops.sin(x)), ops.multiply(ops.square(v), x))


@pytest.mark.identity("FWD-WATCH-01")
@pytest.mark.requires("variables", "jvp")
@given(
    dtype=float_dtypes(),
    data=st.data(),
    shapes_=broadcastable_shapes(2),
)
def test_jvp_perturbs_only_its_primals_not_the_variables_it_reads(impl, dtype, data, shapes_):
    # Unlike a tape, forward mode watches nothing by itself: a trainable Variable read inside f is a
    # constant, so jvp(f, [x], [u]) = (v·cos x + v²)·u.
    x_shape, v_shape = shapes_
    x = data.draw(arrays(x_shape, POINTS), label="x")
    v = data.draw(arrays(v_shape, WEIGHTS), label="variable v")
    u = data.draw(arrays(x_shape, WEIGHTS), label="tangent u")  # a tangent has its primal's shape
    variable = impl.variable(v.astype(dtype), dtype)
    out, tangent = impl.jvp(lambda t: scaled_wave(impl, t, variable), [make(impl, x, dtype)], [make(impl, u, dtype)])
    assert_close(to_numpy(impl, out), scaled_wave(REFERENCE, x, v), dtype, "f(x)")
    along_x = numdiff.directional_derivative(lambda p: scaled_wave(REFERENCE, p, v), [x], [u])
    closed_form = (v * np.cos(x) + v * v) * u
    scale = (np.abs(v * np.cos(x)) + v * v) * np.abs(u)
    assert_close(to_numpy(impl, tangent), along_x, dtype, "jvp vs finite differences along x only", scale=scale)
    assert_close(to_numpy(impl, tangent), closed_form, dtype, "jvp vs (v·cos x + v²)·u", scale=scale)
