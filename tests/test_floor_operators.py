"""The //, % and divmod operators on Tensors: numpy's floor semantics (the remainder takes the
divisor's sign), the operand conversion and dtype rules of +, and the gradient of %."""
import re

import numpy as np
import pytest

import dualad as dd
from helpers import EXACT, FD, fd_grad, npy, t64

INTS = np.array([7, -7, 5, 0, -1], dtype=np.int32)
FLOATS = np.array([5.5, -7.25, 0.5, -0.125], dtype=np.float64)


@pytest.mark.parametrize("values", [INTS, FLOATS], ids=["int32", "float64"])
@pytest.mark.parametrize("scalar", [3, -2])
def test_operators_match_numpy_both_ways(values, scalar):
    t = dd.constant(values)
    np.testing.assert_array_equal(np.asarray(t // scalar), values // scalar)
    np.testing.assert_array_equal(np.asarray(t % scalar), values % scalar)
    q, r = divmod(t, scalar)
    np.testing.assert_array_equal(np.asarray(q), values // scalar)
    np.testing.assert_array_equal(np.asarray(r), values % scalar)
    nonzero = values[values != 0]
    u = dd.constant(nonzero)
    np.testing.assert_array_equal(np.asarray(scalar // u), scalar // nonzero)
    np.testing.assert_array_equal(np.asarray(scalar % u), scalar % nonzero)
    q, r = divmod(scalar, u)
    np.testing.assert_array_equal(np.asarray(q), scalar // nonzero)
    np.testing.assert_array_equal(np.asarray(r), scalar % nonzero)


def test_tensor_operands_broadcast():
    a, b = np.array([[7], [-9]], dtype=np.int64), np.array([2, -4, 5], dtype=np.int64)
    np.testing.assert_array_equal(np.asarray(dd.constant(a) // dd.constant(b)), a // b)
    np.testing.assert_array_equal(np.asarray(dd.constant(a) % dd.constant(b)), a % b)


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64"])
@pytest.mark.parametrize("other", [2, 2.0, np.int8(2), [1, 2, 3]], ids=repr)
def test_dtype_and_conversion_follow_addition(dtype, other):
    t = dd.constant(np.array([4, 5, 6], dtype=dtype))
    for op in (lambda a, b: a // b, lambda a, b: a % b, lambda a, b: divmod(a, b)[1]):
        try:
            expected = (t + other).dtype
        except (TypeError, ValueError) as e:
            # the same error and message as +'s, under the op's own name
            with pytest.raises(type(e), match=re.escape(str(e).removeprefix("add: "))):
                op(t, other)
            continue
        assert op(t, other).dtype == expected
        assert op(other, t).dtype == (other + t).dtype


def test_mixed_tensor_dtypes_raise_like_addition():
    a, b = dd.constant(np.array([1, 2], dtype=np.int32)), dd.constant(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="different dtypes"):
        a + b
    for op in (lambda: a // b, lambda: a % b, lambda: divmod(a, b), lambda: b % a):
        with pytest.raises(TypeError, match="different dtypes"):
            op()


def test_integer_division_by_zero_raises():
    t = dd.constant(INTS)
    for op in (lambda: t // 0, lambda: t % 0, lambda: divmod(t, 0), lambda: 5 // t, lambda: 5 % t):
        with pytest.raises(ZeroDivisionError, match="integer division by zero"):
            op()


def test_unsupported_operand_raises_type_error():
    t = dd.constant(FLOATS)
    with pytest.raises(TypeError, match="unsupported operand of type str"):
        t // "3"
    with pytest.raises(TypeError, match="unsupported operand of type str"):
        "3" // t  # ("3" % t is str formatting: Python asks str first)


X = np.array([5.5, -7.25, 0.8, 3.2])  # away from the jumps of x % y and 3 % x
Y = np.array([2.0, 1.5, -0.5, -1.3])


def test_mod_gradient_matches_finite_differences():
    x, y = t64(X), t64(Y)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch([x, y])
        total = dd.reduce_sum(x % y)
        q, r2 = divmod(x, y)
        s = 3.0 % x
    gx, gy = tape.gradient(total, [x, y])
    expected = fd_grad(lambda a, b: np.sum(a % b), [X, Y])
    np.testing.assert_allclose(npy(gx), expected[0], **FD)
    np.testing.assert_allclose(npy(gy), expected[1], **FD)
    np.testing.assert_allclose(npy(gy), -np.floor(X / Y), **EXACT)
    np.testing.assert_allclose(npy(tape.gradient(r2, y)), -np.floor(X / Y), **EXACT)
    np.testing.assert_allclose(npy(tape.gradient(s, x)),
                               fd_grad(lambda a: np.sum(3.0 % a), [X])[0], **FD)
    assert tape.gradient(q, x) is None  # floor division is not differentiable, as in TensorFlow


def test_mod_forward_mode_agrees_with_reverse():
    f = lambda a: (a % 1.5) * a
    forward = npy(dd.jacfwd(f)(t64(X)))
    np.testing.assert_allclose(forward, npy(dd.jacrev(f)(t64(X))), **EXACT)
    # closed form away from the jumps: d/da [(a mod 1.5) · a] = a + a mod 1.5, elementwise
    np.testing.assert_allclose(forward, np.diag(X + np.mod(X, 1.5)), **EXACT)


def test_operators_inside_a_traced_function():
    @dd.function
    def f(a):
        q, r = divmod(a, 4)
        return q * 10 + r + (a // 3) - (7 % a)

    t = dd.constant(np.array([9, -5, 13], dtype=np.int32))
    a = np.array([9, -5, 13])
    for _ in range(2):  # trace, then replay
        np.testing.assert_array_equal(np.asarray(f(t)), (a // 4) * 10 + a % 4 + a // 3 - 7 % a)


def test_variables_and_numpy_left_operands():
    v = dd.Variable([5.0, -3.0])
    with dd.GradientTape() as tape:
        total = dd.reduce_sum(v % 2.0 + v // 2.0)
    np.testing.assert_array_equal(np.asarray(tape.gradient(total, v)), [1.0, 1.0])
    t = dd.constant(np.array([2, -3], dtype=np.int32))
    a = np.array([7, 8], dtype=np.int32)
    for got, expected in ((a // t, a // np.array([2, -3])), (a % t, a % np.array([2, -3]))):
        assert isinstance(got, dd.Tensor) and got.dtype == dd.int32
        np.testing.assert_array_equal(np.asarray(got), expected)
