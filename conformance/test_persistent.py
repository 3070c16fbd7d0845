"""Persistent tapes (identities GT-PERSIST-01, GT-PERSIST-02, GT-INCONTEXT-01)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.harness import make, reference_gradients, reference_second_gradient, to_numpy
from conformance.strategies import arrays, float_dtypes, shapes
from conformance.tolerances import assert_close
from conformance.tutorial_functions import fourth_power, square


def record_square_and_fourth_power(impl, x, persistent):
    """y = x·x, z = y·y on a tape watching x, as in the tutorial."""
    tape_context = impl.tape(persistent=persistent)
    with tape_context as tape:
        tape.watch(x)
        y = square(impl, x)
        z = square(impl, y)
    return tape, y, z


@pytest.mark.identity("GT-PERSIST-01")
@given(dtype=float_dtypes(), x=arrays(shapes()))
def test_persistent_tape_gives_several_gradients(impl, dtype, x):
    xt = make(impl, x, dtype)
    tape, y, z = record_square_and_fourth_power(impl, xt, persistent=True)
    dz_dx = to_numpy(impl, tape.gradient(z, xt))
    dy_dx = to_numpy(impl, tape.gradient(y, xt))
    dz_dx_again = to_numpy(impl, tape.gradient(z, xt))
    expected_dz = reference_gradients(fourth_power, [x])[0]
    assert_close(dz_dx, expected_dz, dtype, "dz/dx vs finite differences")
    assert_close(dz_dx, 4 * x**3, dtype, "dz/dx vs 4x³")
    assert_close(dy_dx, reference_gradients(square, [x])[0], dtype, "dy/dx vs finite differences")
    assert_close(dy_dx, 2 * x, dtype, "dy/dx vs 2x")
    assert_close(dz_dx_again, expected_dz, dtype, "dz/dx asked a second time")


@pytest.mark.identity("GT-PERSIST-01")
def test_persistent_tape_tutorial_example(impl):
    x = impl.constant(3.0, "float32")
    tape, y, z = record_square_and_fourth_power(impl, x, persistent=True)
    assert_close(to_numpy(impl, tape.gradient(z, x)), 108.0, "float32", "dz/dx at 3")
    assert_close(to_numpy(impl, tape.gradient(y, x)), 6.0, "float32", "dy/dx at 3")


@pytest.mark.identity("GT-PERSIST-02")
@pytest.mark.requires("persistent_tape_error")
@given(dtype=float_dtypes(), x=arrays(shapes()), second_target=st.sampled_from(["y", "z"]))
def test_non_persistent_tape_refuses_a_second_gradient(impl, dtype, x, second_target):
    xt = make(impl, x, dtype)
    tape, y, z = record_square_and_fourth_power(impl, xt, persistent=False)
    assert_close(to_numpy(impl, tape.gradient(z, xt)), 4 * x**3, dtype, "first gradient")
    with pytest.raises(RuntimeError):
        tape.gradient({"y": y, "z": z}[second_target], xt)


# GT-INCONTEXT-01 -------------------------------------------------------------
# A gradient taken inside a persistent tape's context is recorded on that
# tape, so it can be differentiated again.


@pytest.mark.identity("GT-INCONTEXT-01")
@pytest.mark.requires("nested_tapes")
@given(dtype=float_dtypes(), x=arrays(shapes()))
def test_gradient_inside_persistent_context_is_differentiable(impl, dtype, x):
    xt = make(impl, x, dtype)
    with impl.tape(persistent=True) as tape:
        tape.watch(xt)
        y = square(impl, xt)
        z = square(impl, y)
        dz_dx = tape.gradient(z, xt)
        dy_dx = tape.gradient(y, xt)
    d2z_dx2 = to_numpy(impl, tape.gradient(dz_dx, xt))
    # the second gradient is recorded too: the tape keeps recording after its first gradient()
    d2y_dx2 = tape.gradient(dy_dx, xt)
    assert d2y_dx2 is not None, "dy/dx, taken in context after dz/dx, was not recorded: d(dy/dx)/dx is None"
    assert_close(to_numpy(impl, d2y_dx2), np.full(np.shape(x), 2.0), dtype, "d(dy/dx)/dx vs 2")
    assert_close(to_numpy(impl, dz_dx), 4 * x**3, dtype, "dz/dx taken in context vs 4x³")
    assert_close(to_numpy(impl, dy_dx), 2 * x, dtype, "dy/dx taken in context vs 2x")
    want = reference_second_gradient(fourth_power, x)
    assert_close(d2z_dx2, want, dtype, "d(dz/dx)/dx vs finite differences")
    assert_close(d2z_dx2, 12 * x**2, dtype, "d(dz/dx)/dx vs 12x²")


@pytest.mark.identity("GT-INCONTEXT-01")
@pytest.mark.requires("nested_tapes")
def test_gradient_inside_persistent_context_tutorial_example(impl):
    x = impl.constant(np.arange(4.0).reshape(4, 1), "float32")
    with impl.tape(persistent=True) as tape:
        tape.watch(x)
        y = square(impl, x)
        z = square(impl, y)
        dz_dx = tape.gradient(z, x)
        dy_dx = tape.gradient(y, x)
    assert_close(to_numpy(impl, dz_dx), [[0.0], [4.0], [32.0], [108.0]], "float32", "dz/dx")
    assert_close(to_numpy(impl, dy_dx), [[0.0], [2.0], [4.0], [6.0]], "float32", "dy/dx")
