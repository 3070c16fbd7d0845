"""Public functions that had no test of their own: values against numpy (or a closed form /
finite differences for gradients), dtypes and shapes, with real assertions.

sign, argmin/argmax, reduce_all/reduce_any, logical_*, the function forms of the comparisons,
the aliases clip/truediv/logsumexp, dualad.nn, int8/int16/uint8 arithmetic, the gradients of
norm(ord=inf) and norm(ord='fro'), value_and_grad(has_aux=True)'s gradient, float16 under
check_numerics, and float32 + float64 refusing to promote."""
import numpy as np
import pytest

import dualad as dd
from conformance import numdiff

X = np.array([[1.5, -2.0, 0.0, -0.0], [3.0, -0.5, -7.0, 2.25]])
Y = np.array([[1.5, 2.0, -1.0, 0.0], [-3.0, -0.5, 4.0, 2.5]])


def same(tensor, expected):
    """tensor holds expected's values, dtype and shape."""
    got = np.asarray(tensor)
    expected = np.asarray(expected)
    assert got.dtype == expected.dtype and got.shape == expected.shape, (got, expected)
    np.testing.assert_array_equal(got, expected)


def test_sign_against_numpy_keeps_the_sign_of_zero_and_nan():
    values = np.array([-2.5, -0.0, 0.0, 4.0, np.nan])
    got = np.asarray(dd.sign(dd.constant(values)))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, np.sign(values))
    same(dd.sign(dd.constant(np.array([-3, 0, 5], np.int32))), np.array([-1, 0, 1], np.int32))
    # its derivative is zero everywhere (TensorFlow's choice; the step's is a Dirac)
    x = dd.constant(values[:4])
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.sign(x)
    same(tape.gradient(y, x, unconnected_gradients="zero"), np.zeros(4))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_argmin_and_argmax_against_numpy(axis):
    same(dd.argmin(dd.constant(X), axis=axis), np.argmin(X, axis=axis).astype(np.int64))
    same(dd.argmax(dd.constant(X), axis=axis), np.argmax(X, axis=axis).astype(np.int64))


def test_argmin_default_axis_is_zero_and_ties_take_the_first():
    same(dd.argmin(dd.constant(X)), np.argmin(X, axis=0).astype(np.int64))
    same(dd.argmin(dd.constant(np.array([2.0, 1.0, 1.0, 5.0]))), np.int64(1))


AXIS_TAKERS = {
    "argmin": lambda t, axis: dd.argmin(t, axis=axis),
    "argmax": lambda t, axis: dd.argmax(t, axis=axis),
    "reduce_sum": lambda t, axis: dd.reduce_sum(t, axis=axis),
    "reduce_max": lambda t, axis: dd.reduce_max(t, axis=axis),
    "reduce_mean": lambda t, axis: dd.reduce_mean(t, axis=axis),
    "reduce_all": lambda t, axis: dd.reduce_all(t > 0.0, axis=axis),
    "reduce_logsumexp": lambda t, axis: dd.reduce_logsumexp(t, axis=axis),
    "norm": lambda t, axis: dd.norm(t, axis=axis),
    "concat": lambda t, axis: dd.concat([t, t], axis=axis),
    "expand_dims": lambda t, axis: dd.expand_dims(t, axis),
    "gather": lambda t, axis: dd.gather(t, [1, 0], axis=axis),
    "boolean_mask": lambda t, axis: dd.boolean_mask(t, [True, False, True, True], axis=axis),
    "one_hot": lambda t, axis: dd.one_hot([[1, 0]], 3, axis=axis),
    "linspace": lambda t, axis: dd.linspace(t[0, :2], t[1, :2], 3, axis=axis),
}


@pytest.mark.parametrize("bad_axis", [0.9, 1.5, "1", np.float64(1.0), (0, 1.0)],
                         ids=["0.9", "1.5", "str", "np.float64", "tuple with a float"])
@pytest.mark.parametrize("name", sorted(AXIS_TAKERS))
def test_a_non_integer_axis_is_a_type_error_not_truncated(name, bad_axis):
    # axis=0.9 was silently axis 0 (int() truncates), "1" axis 1; numpy refuses both
    with pytest.raises(TypeError, match="axis must be an integer"):
        AXIS_TAKERS[name](dd.constant(X), bad_axis)


@pytest.mark.parametrize("name", sorted(AXIS_TAKERS))
def test_integer_axes_of_every_integer_kind_still_work(name):
    t = dd.constant(X)
    expected = np.asarray(AXIS_TAKERS[name](t, 1))
    for axis in (np.int64(1), np.int8(1), np.uint8(1), np.array(1), dd.constant(1)):
        np.testing.assert_array_equal(np.asarray(AXIS_TAKERS[name](t, axis)), expected)


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduce_all_and_reduce_any_against_numpy(axis, keepdims):
    b = X > 0
    same(dd.reduce_all(dd.constant(b), axis=axis, keepdims=keepdims),
         np.all(b, axis=axis, keepdims=keepdims))
    same(dd.reduce_any(dd.constant(b), axis=axis, keepdims=keepdims),
         np.any(b, axis=axis, keepdims=keepdims))


def test_logical_ops_against_numpy_with_broadcasting():
    a, b = X > 0, (Y > 0)[1]  # (2, 4) with (4,)
    same(dd.logical_and(dd.constant(a), dd.constant(b)), np.logical_and(a, b))
    same(dd.logical_or(dd.constant(a), dd.constant(b)), np.logical_or(a, b))
    same(dd.logical_not(dd.constant(a)), np.logical_not(a))


@pytest.mark.parametrize("values", [np.array([0.5, 0.0, -0.0, np.nan]), np.array([2, 0, -1], np.int32),
                                    np.array([0, 7], np.uint8)], ids=["float", "int32", "uint8"])
def test_logical_ops_take_non_bool_tensors_by_truth_value_as_numpy(values):
    # logical_and/or always did; logical_not refused a non-bool Tensor (a TypeError from its
    # conversion) though its docstring says other values are converted, and a list of ints was
    t = dd.constant(values)
    same(dd.logical_not(t), np.logical_not(values))
    same(dd.logical_not(values.tolist()), np.logical_not(values))
    same(dd.logical_and(t, t), np.logical_and(values, values))
    same(dd.logical_or(t, dd.zeros_like(t)), np.logical_or(values, 0))


COMPARISONS = {"equal": np.equal, "not_equal": np.not_equal, "less": np.less,
               "less_equal": np.less_equal, "greater": np.greater,
               "greater_equal": np.greater_equal}


@pytest.mark.parametrize("name", sorted(COMPARISONS))
def test_comparison_functions_against_numpy(name):
    fn = getattr(dd, name)
    same(fn(dd.constant(X), dd.constant(Y)), COMPARISONS[name](X, Y))
    same(fn(dd.constant(X), 0.0), COMPARISONS[name](X, 0.0))  # -0.0 == 0.0
    nan = np.array([np.nan, 1.0])
    same(fn(dd.constant(nan), dd.constant(nan)), COMPARISONS[name](nan, nan))


def test_aliases_are_the_functions_they_name():
    assert dd.clip is dd.clip_by_value
    assert dd.truediv is dd.divide
    assert dd.logsumexp is dd.reduce_logsumexp


def test_alias_values_against_numpy():
    t = dd.constant(X)
    same(dd.clip(t, -1.0, 2.0), np.clip(X, -1.0, 2.0))
    same(dd.truediv(t, dd.constant(Y + 10.0)), X / (Y + 10.0))
    np.testing.assert_allclose(np.asarray(dd.logsumexp(t, axis=1)),
                               np.log(np.sum(np.exp(X), axis=1)), rtol=1e-14)


def test_dualad_nn_functions_against_numpy():
    t = dd.constant(X)
    # these five here; the losses and other activations: tests/test_tf_names.py
    assert {"log_softmax", "relu", "sigmoid", "softmax", "tanh"} <= set(dd.nn.__all__)
    same(dd.nn.relu(t), np.maximum(X, 0.0))
    np.testing.assert_allclose(np.asarray(dd.nn.sigmoid(t)), 1 / (1 + np.exp(-X)), rtol=1e-15)
    np.testing.assert_allclose(np.asarray(dd.nn.tanh(t)), np.tanh(X), rtol=1e-15)
    e = np.exp(X - X.max(axis=-1, keepdims=True))
    softmax = e / e.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(dd.nn.softmax(t)), softmax, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(dd.nn.log_softmax(t)), np.log(softmax), rtol=1e-14,
                               atol=1e-14)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint8])
def test_small_integer_arithmetic_keeps_the_dtype_and_wraps_as_numpy(dtype):
    info = np.iinfo(dtype)
    a = np.array([info.max, info.min, 7, 100], dtype)
    b = np.array([1, 1, 3, 3], dtype)
    ta, tb = dd.constant(a), dd.constant(b)
    with np.errstate(over="ignore"):
        same(ta + tb, a + b)
        same(ta - tb, a - b)
        same(ta * tb, a * b)
    same(dd.maximum(ta, tb), np.maximum(a, b))
    same(dd.reduce_max(ta), a.max())
    same(dd.less(ta, tb), a < b)
    assert (ta + tb).dtype == np.dtype(dtype)


@pytest.mark.parametrize("name", ["int8", "int16", "uint8"])
def test_small_integer_dtype_constants_make_and_cast_to_that_dtype(name):
    dtype = getattr(dd, name)
    assert dtype == np.dtype(name) and dtype.name == name and dtype.is_integer
    same(dd.constant([1, 2, 100], dtype=dtype), np.array([1, 2, 100], name))
    # in-range float values truncate toward zero, as numpy's astype
    floats = np.array([1.7, 0.2, 99.9, 7.0])
    same(dd.cast(dd.constant(floats), dtype), floats.astype(name))
    same(dd.zeros([2], dtype=dtype), np.zeros(2, name))


def test_small_integer_and_float_do_not_mix_silently():
    with pytest.raises(TypeError, match="different dtypes"):
        dd.constant(np.array([1], np.int8)) + dd.constant(np.array([1.0]))


@pytest.mark.parametrize("make", [lambda: np.float32(1.5), lambda: np.ones(3, np.float32)],
                         ids=["scalar", "array"])
def test_float32_plus_float64_is_a_type_error_naming_both(make):
    with pytest.raises(TypeError, match="float32 and float64.*dualad.cast"):
        dd.constant(make()) + dd.constant(np.float64(2.0))
    with pytest.raises(TypeError, match="different dtypes"):
        dd.multiply(dd.constant(np.float64(2.0)), dd.constant(make()))


def _gradient(f, x):
    t = dd.constant(x)
    with dd.GradientTape() as tape:
        tape.watch(t)
        y = f(t)
    return np.asarray(y), np.asarray(tape.gradient(y, t))


def test_gradient_of_the_infinity_norm_is_the_sign_at_the_largest_entry():
    x = np.array([1.0, -3.0, 2.0])
    value, grad = _gradient(lambda t: dd.norm(t, ord=np.inf), x)
    assert value == 3.0
    same(grad, np.array([0.0, -1.0, 0.0]))
    np.testing.assert_allclose(grad, numdiff.gradient(lambda v: np.max(np.abs(v)), x), rtol=1e-9)


def test_gradient_of_the_infinity_norm_along_an_axis_against_finite_differences():
    x = np.array([[1.0, -3.0, 2.0], [0.5, 0.25, -0.75]])
    value, grad = _gradient(lambda t: dd.reduce_sum(dd.norm(t, ord=np.inf, axis=1)), x)
    assert value == 3.75
    same(grad, np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]))
    np.testing.assert_allclose(
        grad, numdiff.gradient(lambda v: np.sum(np.max(np.abs(v), axis=1)), x), rtol=1e-9)


def test_gradient_of_the_frobenius_norm_is_x_over_the_norm():
    x = np.array([[1.0, -3.0], [2.0, 0.5]])
    value, grad = _gradient(lambda t: dd.norm(t, ord="fro", axis=(0, 1)), x)
    np.testing.assert_allclose(value, np.linalg.norm(x, "fro"), rtol=1e-15)
    np.testing.assert_allclose(grad, x / np.linalg.norm(x, "fro"), rtol=1e-14)
    np.testing.assert_allclose(grad, numdiff.gradient(lambda v: np.linalg.norm(v, "fro"), x),
                               rtol=1e-9)


def test_value_and_grad_with_aux_returns_the_right_gradient_and_aux_untouched():
    aux = object()

    def f(x):
        return dd.reduce_sum(dd.sin(x) * x), aux

    x = np.array([0.3, -1.2, 2.0])
    (value, got_aux), grad = dd.value_and_grad(f, has_aux=True)(dd.constant(x))
    assert got_aux is aux
    np.testing.assert_allclose(float(value), np.sum(np.sin(x) * x), rtol=1e-15)
    np.testing.assert_allclose(np.asarray(grad), np.cos(x) * x + np.sin(x), rtol=1e-14)


@pytest.fixture
def checking():
    dd.debugging.enable_check_numerics()
    yield
    dd.debugging.disable_check_numerics()


@pytest.mark.parametrize("value", [np.float16(300.0), np.full(2, 300.0, np.float16)],
                         ids=["scalar", "array"])
def test_float16_overflow_is_caught_by_check_numerics(checking, value):
    t = dd.constant(value)
    same(t * dd.constant(np.float16(2.0)), np.asarray(value) * np.float16(2.0))  # finite: fine
    with pytest.raises(FloatingPointError, match="op 'multiply' produced infinity"):
        t * t  # 90000 > float16's max, 65504


def test_float16_gradient_overflow_is_caught_by_check_numerics(checking):
    x = dd.constant(np.float16(200.0))
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = x * x  # 40000: finite
    # the cotangent 1000 · x = 200000 is past float16's max
    with pytest.raises(FloatingPointError, match="infinity"):
        tape.gradient(y, x, output_gradients=dd.constant(np.float16(1000.0)))
