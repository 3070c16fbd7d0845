"""Python numbers as operands, reflected operands and operators (GT-OPER-01); the dtype of every
derivative and update (GT-DTYPE-01)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conformance import numdiff
from conformance.harness import make, to_numpy
from conformance.reference import REFERENCE
from conformance.strategies import Domain, arrays, as_dtype, float_dtypes, floats, half_and_float_dtypes, representable, shapes
from conformance.tolerances import assert_close

#: Each form with a Python number c on either side, through the named ops. x is in
#: [0.5, 3] so that c / x, x ** c and c ** x are smooth.
NAMED_FORMS = {
    "c + x": lambda ops, x, c: ops.add(c, x),
    "x + c": lambda ops, x, c: ops.add(x, c),
    "c - x": lambda ops, x, c: ops.subtract(c, x),
    "x - c": lambda ops, x, c: ops.subtract(x, c),
    "c * x": lambda ops, x, c: ops.multiply(c, x),
    "c / x": lambda ops, x, c: ops.divide(c, x),
    "x / c": lambda ops, x, c: ops.divide(x, c),
    "c ** x": lambda ops, x, c: ops.pow(c, x),
    "x ** c": lambda ops, x, c: ops.pow(x, c),
}
#: The same forms as Python operators (NumPy arrays, the reference, have them too).
OPERATOR_FORMS = {
    "c + x": lambda ops, x, c: c + x,
    "x + c": lambda ops, x, c: x + c,
    "c - x": lambda ops, x, c: c - x,
    "x - c": lambda ops, x, c: x - c,
    "c * x": lambda ops, x, c: c * x,
    "x * c": lambda ops, x, c: x * c,
    "c / x": lambda ops, x, c: c / x,
    "x / c": lambda ops, x, c: x / c,
    "c ** x": lambda ops, x, c: c**x,
    "x ** c": lambda ops, x, c: x**c,
    "-x": lambda ops, x, c: -x,
    "x * x - c * x": lambda ops, x, c: x * x - c * x,
}
POSITIVE = Domain(0.5, 3.0)
NUMBERS = Domain(0.5, 2.5)


def check_forms(impl, forms, x, c, dtype, how):
    for name, form in forms.items():
        xt = make(impl, x, dtype)
        with impl.tape() as tape:
            tape.watch(xt)
            y = impl.reduce_sum(form(impl, xt, c))
        value = to_numpy(impl, y)
        grad = to_numpy(impl, tape.gradient(y, xt))
        expected = numdiff.gradient(lambda v: np.sum(form(REFERENCE, v, c)), x)
        assert_close(value, np.sum(form(REFERENCE, x, c)), dtype, f"{how} {name}: value")
        assert_close(grad, expected, dtype, f"{how} {name}: d/dx vs finite differences")
        assert grad.dtype == np.dtype(dtype), f"{how} {name}: {grad.dtype} gradient for {dtype} x"


@pytest.mark.identity("GT-OPER-01")
@given(dtype=float_dtypes(), x=arrays(shapes(), POSITIVE), c=floats(NUMBERS))
def test_python_numbers_on_either_side_of_an_op(impl, dtype, x, c):
    check_forms(impl, NAMED_FORMS, x, c, dtype, "named op")


@pytest.mark.identity("GT-OPER-01")
@pytest.mark.requires("operators")
@given(dtype=float_dtypes(), x=arrays(shapes(), POSITIVE), c=floats(NUMBERS))
def test_operators_and_reflected_operators(impl, dtype, x, c):
    check_forms(impl, OPERATOR_FORMS, x, c, dtype, "operator")


# GT-DTYPE-01 ------------------------------------------------------------------


def dtype_of(impl, tensor):
    return np.asarray(impl.to_numpy(tensor)).dtype


def wave(ops, t):
    """sin(t)·exp(t/2): its derivative exp(t/2)(cos t + ½ sin t) changes sign in [0.5, 3]."""
    return ops.multiply(ops.sin(t), ops.exp(ops.multiply(0.5, t)))


def wave_derivative(x):
    """The closed-form derivative of ``wave``, and the magnitude of its terms (they cancel near 2.03)."""
    e = np.exp(x / 2)
    return e * (np.cos(x) + 0.5 * np.sin(x)), e * (np.abs(np.cos(x)) + 0.5 * np.abs(np.sin(x)))


@pytest.mark.identity("GT-DTYPE-01")
@given(dtype=half_and_float_dtypes(), xv=shapes().flatmap(lambda s: st.tuples(arrays(s, POSITIVE), arrays(s))))
@example(dtype="float32", xv=(np.array(1.5), np.array(0.5)))  # a 0-d float32 point, always
def test_derivatives_keep_the_dtype_of_the_computation(impl, dtype, xv):
    check_derivatives_in(impl, dtype, *xv)


@pytest.mark.identity("GT-DTYPE-01")
@pytest.mark.requires("float16")
def test_half_precision_derivatives_stay_half(impl):
    # float16 at a point where the derivative nearly cancels (2.03), whatever the draws gave
    check_derivatives_in(impl, "float16", np.array([[0.5, 2.03125], [3.0, 1.25]]), np.array([[1.0, -2.0], [0.25, 7.5]]))


def check_derivatives_in(impl, dtype, x, v):
    """Value, tape gradient, jvp tangent and vjp of Σ wave(x) in ``dtype``: their dtype, and their
    values against the float64 closed form and finite differences at ``dtype``'s tolerance."""
    # float16 points are the drawn ones rounded to float16, so the float64 reference sees them too
    x, v = (representable(a, dtype) for a in (x, v))
    want = np.dtype(dtype)
    xt = make(impl, x, dtype)
    slope, slope_scale = wave_derivative(x)

    def f(t):
        return wave(impl, t)

    with impl.tape() as tape:
        tape.watch(xt)
        y = impl.reduce_sum(f(xt))
    assert dtype_of(impl, y) == want, f"value of a {dtype} computation is {dtype_of(impl, y)}"
    assert_close(to_numpy(impl, y), np.sum(wave(REFERENCE, x)), dtype, f"Σ sin(x)·exp(x/2) in {dtype}")
    grad = tape.gradient(y, xt)
    assert dtype_of(impl, grad) == want, f"tape gradient is {dtype_of(impl, grad)} for {dtype} x"
    reference = numdiff.gradient(lambda p: np.sum(wave(REFERENCE, p)), x)
    assert_close(to_numpy(impl, grad), reference, dtype, "tape gradient vs finite differences", scale=slope_scale)
    assert_close(to_numpy(impl, grad), slope, dtype, "tape gradient vs its closed form", scale=slope_scale)
    tangent_in = make(impl, v, dtype)
    if impl.supports("jvp"):
        _, tangent = impl.jvp(f, [xt], [tangent_in])
        assert dtype_of(impl, tangent) == want, f"jvp tangent is {dtype_of(impl, tangent)} for {dtype} x"
        assert_close(to_numpy(impl, tangent), slope * v, dtype, "jvp tangent vs f'(x)·v", scale=slope_scale * np.abs(v))
    if impl.supports("vjp"):
        _, (cotangent,) = impl.vjp(f, [xt], tangent_in)
        assert dtype_of(impl, cotangent) == want, f"vjp is {dtype_of(impl, cotangent)} for {dtype} x"
        assert_close(to_numpy(impl, cotangent), slope * v, dtype, "vjp vs v·f'(x)", scale=slope_scale * np.abs(v))


@pytest.mark.identity("GT-DTYPE-01")
@pytest.mark.requires("variables", "sgd")
@given(dtype=float_dtypes(), x=arrays(shapes()), learning_rate=floats(Domain(2.0**-6, 0.5)))
def test_optimizer_updates_keep_the_variables_dtype(impl, dtype, x, learning_rate):
    variable = impl.variable(as_dtype(x, dtype), dtype)
    optimizer = impl.sgd(learning_rate)
    for _ in range(2):
        with impl.tape() as tape:
            y = impl.reduce_sum(impl.multiply(variable, variable))
        grad = tape.gradient(y, variable)
        assert dtype_of(impl, grad) == np.dtype(dtype), f"gradient of a {dtype} Variable is {dtype_of(impl, grad)}"
        optimizer.apply_gradients([(grad, variable)])
        assert dtype_of(impl, variable) == np.dtype(dtype), f"{dtype} Variable became {dtype_of(impl, variable)}"
    # two steps of x ← x − lr·2x
    expected = x * (1 - 2 * float(np.dtype(dtype).type(learning_rate))) ** 2
    assert_close(to_numpy(impl, variable), expected, dtype, "x after two steps")
