"""What forward mode adds: jvp = J·v, vjp = uᵀJ, forward-over-reverse H·v, symmetric Hessians (FWD-*)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import numdiff
from conformance.harness import make, to_numpy
from conformance.reference import REFERENCE
from conformance.strategies import Domain, arrays, float_dtypes
from conformance.tolerances import assert_close

WEIGHTS = Domain(-1.5, 1.5)
POINTS = Domain(-3.0, 3.0)


def layer(ops, x, w1, w2):
    """R^(n×1) → R^(p×1): w2 · tanh(sin(w1 · x))."""
    return ops.matmul(w2, ops.tanh(ops.sin(ops.matmul(w1, x))))


def energy(ops, x, w1):
    """R^(n×1) → R: sum(h·h) + sum(exp(x/2)), h = sin(w1 · x)."""
    h = ops.sin(ops.matmul(w1, x))
    return ops.add(ops.reduce_sum(ops.multiply(h, h)), ops.reduce_sum(ops.exp(ops.multiply(0.5, x))))


@st.composite
def problems(draw):
    """A point x (n×1), weights w1 (m×n), w2 (p×m), a tangent v like x and a cotangent u like layer(x)."""
    n, m, p = (draw(st.integers(1, 4), label=label) for label in "nmp")
    return {
        "x": draw(arrays((n, 1), POINTS), label="x"),
        "w1": draw(arrays((m, n), WEIGHTS), label="w1"),
        "w2": draw(arrays((p, m), WEIGHTS), label="w2"),
        "v": draw(arrays((n, 1), WEIGHTS), label="v"),
        "u": draw(arrays((p, 1), WEIGHTS), label="u"),
    }


def reference_layer_jacobian(problem):
    """∂layer/∂x with shape (p, 1, n, 1)."""
    return numdiff.jacobian(lambda x: layer(REFERENCE, x, problem["w1"], problem["w2"]), problem["x"])


def reference_energy_hessian(problem):
    """∇² energy with shape (n, 1, n, 1)."""
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
    assert hessian is not None and hessian.size == n * n, f"Hessian of shape {np.shape(hessian)}, expected (n,1,n,1)"
    square = hessian.reshape(n, n)
    assert_close(square, square.T, dtype, "H vs Hᵀ")
    assert_close(hessian, reference_energy_hessian(problem), dtype, "H vs finite differences")
