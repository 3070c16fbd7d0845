"""The finite-difference reference against closed forms: it must be far more accurate than the tolerances."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import numdiff
from conformance.strategies import Domain, arrays, shapes
from conformance.tolerances import TOLERANCES

# The reference's own error must be a small part of the tightest tolerance.
REFERENCE_RTOL = TOLERANCES["float64"].rtol / 10


def assert_accurate(actual, expected):
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=REFERENCE_RTOL, atol=REFERENCE_RTOL * scale)


@given(x=arrays(shapes(), Domain(-3.0, 3.0)))
def test_gradient_of_elementwise_functions(x):
    assert_accurate(numdiff.gradient(lambda v: np.sum(np.sin(v)), x), np.cos(x))
    assert_accurate(numdiff.gradient(lambda v: np.sum(np.exp(v)), x), np.exp(x))
    assert_accurate(numdiff.gradient(lambda v: np.sum(v**3), x), 3 * x**2)


@given(x=arrays(shapes(), Domain(-100.0, 100.0)))
def test_step_scales_with_large_points(x):
    assert_accurate(numdiff.gradient(lambda v: np.sum(np.sin(v / 10) * v), x), np.cos(x / 10) * x / 10 + np.sin(x / 10))


@given(data=st.data(), n=st.integers(1, 4), m=st.integers(1, 4))
def test_jacobian_of_a_linear_map_is_its_matrix(data, n, m):
    w = data.draw(arrays((m, n)))
    x = data.draw(arrays((n, 1)))
    jacobian = numdiff.jacobian(lambda v: w @ v, x)
    assert jacobian.shape == (m, 1, n, 1)
    assert_accurate(jacobian.reshape(m, n), w)


@given(data=st.data(), n=st.integers(1, 4))
def test_hessian_of_a_quadratic_form_is_the_symmetric_part(data, n):
    a = data.draw(arrays((n, n)))
    x = data.draw(arrays((n,)))
    assert_accurate(numdiff.hessian(lambda v: 0.5 * v @ a @ v, x), (a + a.T) / 2)


@given(x=arrays((3,), Domain(-3.0, 3.0)))
def test_hessian_of_a_non_polynomial(x):
    # f = sin(x0)·exp(x1) + x2·x0²
    def f(v):
        return np.sin(v[0]) * np.exp(v[1]) + v[2] * v[0] ** 2

    s, c, e = np.sin(x[0]), np.cos(x[0]), np.exp(x[1])
    expected = np.array(
        [
            [-s * e + 2 * x[2], c * e, 2 * x[0]],
            [c * e, s * e, 0.0],
            [2 * x[0], 0.0, 0.0],
        ]
    )
    assert_accurate(numdiff.hessian(f, x), expected)


def test_partial_gradients_of_a_product():
    x, y = np.array([1.5, -2.0]), np.array([0.5, 3.0])
    gx, gy = numdiff.partial_gradients(lambda a, b: np.sum(a * b), x, y)
    assert_accurate(gx, y)
    assert_accurate(gy, x)


@settings(max_examples=50)
@given(x=st.floats(-1e6, 1e6, allow_nan=False))
def test_stencil_radius_is_a_power_of_two_covering_the_base_step(x):
    radius = float(numdiff.stencil_radius(x))
    assert radius >= numdiff.BASE_STEP * max(1.0, abs(x))
    assert radius < 2 * numdiff.BASE_STEP * max(1.0, abs(x))
    assert np.log2(radius) == np.round(np.log2(radius))


def test_a_kink_inside_the_stencil_spoils_the_reference():
    """Why tests exclude points near kinks with assume: there the reference is wrong."""
    radius = float(numdiff.stencil_radius(0.0))
    for x in [radius / 8, radius / 2, radius * 0.9]:
        error = abs(numdiff.gradient(lambda v: np.sum(np.abs(v)), np.array(x)) - 1.0)
        assert error > 10 * TOLERANCES["float64"].rtol, f"at {x}: error {error}"


@given(data=st.data(), shape=shapes())
def test_central_difference_of_a_quadratic_along_a_direction(data, shape):
    """The shared stencil (the unit tests use it at a fixed step) is exact for quadratics but
    for rounding: d/dt sum((x + t·v)²) = 2 x·v."""
    x, v = data.draw(arrays(shape)), data.draw(arrays(shape))
    derivative = numdiff.central_difference(lambda a: np.sum(a * a), [x], [v], 1e-3)
    assert_accurate(derivative, 2 * np.sum(x * v))
    assert numdiff.unit((2, 3), (1, 2)).tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]


@given(x=arrays(shapes(min_dims=1), Domain(-10.0, 10.0)))
def test_error_estimates_cover_the_actual_error_of_each_entry(x):
    # what assert_close adds per entry: FD_SAFETY times the estimate, on top of the float64 floor
    from conformance.tolerances import FD_SAFETY

    floor = TOLERANCES["float64"].floor
    for f, exact in [
        (lambda v: np.sum(np.sin(v) ** 3), 3 * np.sin(x) ** 2 * np.cos(x)),
        (lambda v: np.sum(v**4), 4 * x**3),
        (lambda v: np.sum(np.exp(v / 4) * v), np.exp(x / 4) * (1 + x / 4)),
    ]:
        estimate = numdiff.gradient(f, x)
        assert estimate.error is not None and estimate.error.shape == x.shape
        assert np.all(np.abs(estimate - exact) <= FD_SAFETY * estimate.error + floor)
    hessian = numdiff.hessian(lambda v: np.sum(np.sin(v) ** 3), x)
    s, c = np.sin(x).ravel(), np.cos(x).ravel()
    exact = np.diag(6 * s * c * c - 3 * s**3).reshape(x.shape + x.shape)
    assert np.all(np.abs(hessian - exact) <= FD_SAFETY * hessian.error + floor)
