"""Nested tapes give second derivatives (GT-NESTED-01, GT-NESTED-02)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from conformance.harness import make, reference_gradients, reference_second_gradient, to_numpy
from conformance.strategies import arrays, float_dtypes, shapes
from conformance.tolerances import assert_close
from conformance.tutorial_functions import cube, quadratic


def nested_tape_derivatives(impl, f, x):
    """First and second derivative of f at the watched tensor x, as the tutorial nests tapes."""
    with impl.tape() as outer:
        outer.watch(x)
        with impl.tape() as inner:
            inner.watch(x)
            y = f(x)
        # taken inside outer's context, so outer records it
        dy_dx = inner.gradient(y, x)
    d2y_dx2 = outer.gradient(dy_dx, x)
    return to_numpy(impl, dy_dx), to_numpy(impl, d2y_dx2)


@pytest.mark.identity("GT-NESTED-01")
@pytest.mark.requires("nested_tapes")
@given(dtype=float_dtypes(), x=arrays(shapes()))
def test_nested_tapes_give_derivatives_of_cube(impl, dtype, x):
    first, second = nested_tape_derivatives(impl, lambda v: cube(impl, v), make(impl, x, dtype))
    assert_close(first, reference_gradients(cube, [x])[0], dtype, "dy/dx vs finite differences")
    assert_close(first, 3 * x**2, dtype, "dy/dx vs 3x²")
    assert_close(second, reference_second_gradient(cube, x), dtype, "d²y/dx² vs finite differences")
    assert_close(second, 6 * x, dtype, "d²y/dx² vs 6x")


@pytest.mark.identity("GT-NESTED-01")
@pytest.mark.requires("nested_tapes", "variables")
def test_nested_tapes_tutorial_example(impl):
    x = impl.variable(1.0, "float32")  # watched automatically by both tapes
    with impl.tape() as outer:
        with impl.tape() as inner:
            y = cube(impl, x)
        dy_dx = inner.gradient(y, x)
    d2y_dx2 = outer.gradient(dy_dx, x)
    assert_close(to_numpy(impl, dy_dx), 3.0, "float32", "dy/dx at 1")
    assert_close(to_numpy(impl, d2y_dx2), 6.0, "float32", "d²y/dx² at 1")


@pytest.mark.identity("GT-NESTED-02")
@pytest.mark.requires("nested_tapes")
@given(dtype=float_dtypes(), x=arrays(shapes()), abc=arrays((3,)))
def test_second_derivative_of_quadratic_is_twice_a(impl, dtype, x, abc):
    a, b, c = abc

    def f(ops, v):
        return quadratic(ops, v, float(a), float(b), float(c))

    a_t, b_t, c_t = (make(impl, v, dtype) for v in abc)
    first, second = nested_tape_derivatives(impl, lambda v: quadratic(impl, v, a_t, b_t, c_t), make(impl, x, dtype))
    assert_close(first, reference_gradients(f, [x])[0], dtype, "dy/dx vs finite differences")
    assert_close(first, 2 * a * x + b, dtype, "dy/dx vs 2ax + b")
    assert_close(second, reference_second_gradient(f, x), dtype, "d²y/dx² vs finite differences")
    assert_close(second, np.full(x.shape, 2 * a), dtype, "d²y/dx² vs 2a")


@pytest.mark.identity("GT-NESTED-02")
@pytest.mark.requires("nested_tapes", "variables")
def test_second_derivative_of_quadratic_tutorial_example(impl):
    x = impl.variable(0.0, "float32")
    a, b, c = (impl.constant(v, "float32") for v in (1.0, -2.0, 1.0))
    with impl.tape() as tape2:
        with impl.tape() as tape1:
            y = quadratic(impl, x, a, b, c)
        dy_dx = tape1.gradient(y, x)
    assert_close(to_numpy(impl, tape2.gradient(dy_dx, x)), 2.0, "float32", "d²y/dx²")
