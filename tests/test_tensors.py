"""Tensors and Variables: construction, dtypes, immutability, the scalar path's float32
rounding, Variable mutation, creation helpers, random tensors, operators, comparisons,
numpy interop (recorded functions, refusing ones that would detach), shape/dtype/repr."""
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualad as dd
from helpers import EXACT, SETTINGS, arrays, floats, npy, t64


# ---- construction and dtypes --------------------------------------------------------------

@pytest.mark.parametrize("value,dtype", [
    (1.5, "float32"), ([1.0, 2.0], "float32"), ([[1.5]], "float32"), (3, "int32"),
    ([1, 2], "int32"), (True, "bool"), ([True, False], "bool"),
    (np.arange(3.0), "float64"), (np.arange(3, dtype=np.float32), "float32"),
    (np.arange(3), "int64"), (np.float32(1.5), "float32"), (np.int64(2), "int64"),
    (range(4), "int32"),
])
def test_constant_dtypes_python_numbers_32_bit_numpy_kept(value, dtype):
    t = dd.constant(value)
    assert t.dtype == np.dtype(dtype) and t.dtype.name == dtype
    np.testing.assert_array_equal(np.asarray(t), np.asarray(value, dtype=dtype))


def test_numpy_float64_scalar_keeps_float64():
    assert dd.constant(np.float64(0.1)).dtype == dd.float64
    assert dd.convert_to_tensor(np.float64(0.1)).numpy() == np.float64(0.1)
    assert dd.Variable(np.float64(1.0)).dtype == dd.float64


def test_python_floats_become_float32_and_keep_the_tensor_dtype_in_ops():
    assert dd.constant(0.1).numpy() == np.float32(0.1)
    assert dd.constant(0.1).numpy().dtype == np.float32
    x64 = t64([1.0, 2.0])
    for y in (x64 + 0.1, 0.1 * x64, x64 / 3.0, 2.0 ** x64, x64 - 1):
        assert y.dtype == dd.float64
    np.testing.assert_array_equal(npy(x64 + 0.1), np.array([1.0, 2.0]) + 0.1)


def test_constant_with_dtype_and_shape():
    t = dd.constant(2.0, shape=(2, 3))
    assert t.shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(t), np.full((2, 3), 2.0, np.float32))
    t = dd.constant([1, 2, 3, 4], dtype=dd.float64, shape=(2, 2))
    assert t.dtype == dd.float64
    np.testing.assert_array_equal(np.asarray(t), [[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="cannot make a tensor of shape"):
        dd.constant([1, 2, 3], shape=(2, 2))


def test_tensors_are_immutable():
    source = np.array([1.0, 2.0])
    t = dd.constant(source)
    source[0] = 99.0  # the constant copied its input
    assert float(t[0]) == 1.0
    view = np.asarray(t)
    with pytest.raises(ValueError, match="read-only"):
        view[0] = 5.0
    copy = t.numpy()
    copy[0] = 7.0  # numpy() is a fresh array
    assert float(t[0]) == 1.0
    with pytest.raises(TypeError, match="does not support item assignment"):
        t[0] = 5.0
    with pytest.raises(TypeError, match="dualad.constant"):
        dd.Tensor([1.0])
    with pytest.raises(AttributeError, match="not writable"):
        t.shape = (1, 2)


def test_scalar_numpy_is_a_numpy_scalar_of_the_dtype():
    for dtype in (np.float32, np.float64):
        s = dd.constant(dtype(1.25), dtype=dtype).numpy()
        assert type(s) is dtype and s == 1.25
    assert type(dd.constant(3).numpy()) is np.int32


@SETTINGS
@given(start=floats(-1, 1), step=floats(-1, 1), n=st.integers(1, 300))
def test_float32_scalar_path_rounds_after_every_op_like_numpy(start, step, n):
    """Scalars run on C doubles; float32 values are rounded to float32 after each op, so a
    float32 scalar computation equals the same computation in numpy float32, bit for bit."""
    a, b = np.float32(start), np.float32(step)
    ta, tb = dd.constant(a), dd.constant(b)
    for _ in range(n):
        a = a * np.float32(1.0009765625) + b  # exactly representable factor
        ta = ta * 1.0009765625 + tb
    assert ta.numpy() == a
    # and the same chain on (1,)-shaped tensors (the numpy path) agrees bit for bit
    arr = dd.constant(np.array([start], np.float32))
    for _ in range(n):
        arr = arr * 1.0009765625 + tb
    assert np.asarray(arr)[0] == a


@SETTINGS
@given(x=floats(-3, 3), y=floats(0.5, 3))
def test_scalar_and_array_paths_agree_on_composite_values(x, y):
    for dtype in (np.float32, np.float64):
        s = [dd.constant(np.array(v, dtype)) for v in (x, y)]  # 0-d: the scalar path
        a = [dd.constant(np.array([v], dtype)) for v in (x, y)]
        f = lambda u, w: dd.tanh(u) * dd.log(w) + dd.exp(-u * u) / w - u ** 2  # noqa: E731
        np.testing.assert_allclose(np.asarray(f(*s)), np.asarray(f(*a))[0],
                                   rtol=1e-12 if dtype == np.float64 else 2e-6, atol=1e-6)


# ---- integers and bools are not differentiable ------------------------------------------

def test_integer_and_bool_results_are_not_recorded():
    x = dd.constant([1.5, 2.5])
    with dd.GradientTape() as tape:
        tape.watch(x)
        i = dd.cast(x, dd.int32)
        b = x > 2.0
        y = dd.cast(i, dd.float32) + dd.cast(b, dd.float32)
    assert i.dtype == dd.int32 and b.dtype == dd.bool
    assert tape.gradient(y, x) is None


def test_integer_arithmetic_works_and_stays_integer():
    i = dd.constant([1, 2, 3])
    assert (i * 2 + 1).dtype == dd.int32
    np.testing.assert_array_equal(np.asarray(i * 2 + 1), [3, 5, 7])
    with pytest.raises(TypeError, match="cannot combine a int32 tensor with the float"):
        i * 1.5  # no silent int -> float promotion
    with pytest.raises(TypeError, match="expected a float tensor"):
        dd.sin(i)


# ---- Variables -----------------------------------------------------------------------------

def test_variable_basics():
    v = dd.Variable([1.0, 2.0], name="w")
    assert v.trainable and v.name == "w" and v.shape == (2,) and v.dtype == dd.float32
    assert isinstance(v, dd.Tensor)
    assert dd.Variable(1.0).name == "Variable"
    assert not dd.Variable(1.0, trainable=False).trainable
    assert dd.Variable(1.0, dtype=dd.float64).dtype == dd.float64
    assert dd.Variable(dd.constant([1, 2]), dtype=dd.float32).dtype == dd.float32
    out = v.numpy()
    out[0] = 100.0
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])


def test_variable_assign_add_sub():
    v = dd.Variable([1.0, 2.0])
    assert v.assign([3.0, 4.0]) is v
    np.testing.assert_array_equal(v.numpy(), [3.0, 4.0])
    assert v.assign_add([1.0, 1.0]) is v
    np.testing.assert_array_equal(v.numpy(), [4.0, 5.0])
    assert v.assign_sub(dd.constant([0.5, 0.5])) is v
    np.testing.assert_array_equal(v.numpy(), [3.5, 4.5])
    assert v.assign([0.0, 0.0], read_value=False) is None
    np.testing.assert_array_equal(v.numpy(), [0.0, 0.0])
    s = dd.Variable(1.0)
    for _ in range(3):
        s.assign_add(0.5)
    assert s.numpy() == np.float32(2.5)


@SETTINGS
@given(x0=floats(-2, 2), d=floats(-2, 2), n=st.integers(1, 50))
def test_variable_float32_updates_round_like_numpy(x0, d, n):
    v = dd.Variable(x0)
    ref = np.float32(x0)
    for _ in range(n):
        v.assign_sub(0.01 * dd.constant(d))
        ref = ref - np.float32(0.01) * np.float32(d)
    assert v.numpy() == ref


def test_reads_recorded_before_an_assign_keep_their_value():
    v = dd.Variable(2.0)
    with dd.GradientTape() as tape:
        y = v * v  # reads 2
        v.assign(10.0)
        z = y + v  # reads 10
    assert float(y) == 4.0 and float(z) == 14.0
    assert float(tape.gradient(z, v)) == 2 * 2.0 + 1.0


def test_ops_on_variables_give_tensors_and_read_value_is_recorded():
    v = dd.Variable(3.0)
    assert type(v + 1.0) is dd.Tensor
    with dd.GradientTape() as tape:
        r = v.read_value()
        y = r * r
    assert type(r) is dd.Tensor and float(tape.gradient(y, v)) == 6.0


# ---- convert_to_tensor, creation helpers -------------------------------------------------

def test_convert_to_tensor():
    t = dd.constant([1.0])
    assert dd.convert_to_tensor(t) is t
    v = dd.Variable(1.0)
    assert dd.convert_to_tensor(v) is v
    assert dd.convert_to_tensor(2.0).dtype == dd.float32
    assert dd.convert_to_tensor([1, 2], dtype=dd.float64).dtype == dd.float64
    with pytest.raises(TypeError, match="float64"):
        dd.convert_to_tensor(t, dtype=dd.float64)
    with pytest.raises(TypeError, match="cannot convert str"):
        dd.convert_to_tensor("text")


def test_convert_to_tensor_of_a_list_holding_tensors_is_recorded():
    x = dd.constant(2.0)
    with dd.GradientTape() as tape:
        tape.watch(x)
        packed = dd.convert_to_tensor([[x, 1.0], [x * x, 3.0]])
        y = dd.reduce_sum(packed)
    assert packed.shape == (2, 2) and packed.dtype == dd.float32
    np.testing.assert_array_equal(np.asarray(packed), [[2.0, 1.0], [4.0, 3.0]])
    assert float(tape.gradient(y, x)) == 1.0 + 4.0


@pytest.mark.parametrize("shape", [(), 3, (2, 3), [1, 2]])
@pytest.mark.parametrize("dtype", [None, dd.float64, dd.int32, dd.bool])
def test_ones_zeros_and_likes(shape, dtype):
    expected_shape = (shape,) if isinstance(shape, int) else tuple(shape)
    expected_dtype = np.float32 if dtype is None else dtype.np
    for make, fill in ((dd.ones, 1), (dd.zeros, 0)):
        t = make(shape, dtype) if dtype is not None else make(shape)
        assert t.shape == expected_shape and t.dtype == expected_dtype
        np.testing.assert_array_equal(np.asarray(t), np.full(expected_shape, fill, expected_dtype))
    ref = dd.constant(np.full(expected_shape, 7, dtype=expected_dtype))
    for make, fill in ((dd.ones_like, 1), (dd.zeros_like, 0)):
        t = make(ref)
        assert t.shape == expected_shape and t.dtype == ref.dtype
        np.testing.assert_array_equal(np.asarray(t), np.full(expected_shape, fill, expected_dtype))
        assert make(ref, dtype=dd.float64).dtype == dd.float64
    assert dd.fill((2,), 3.0).dtype == dd.float32
    np.testing.assert_array_equal(np.asarray(dd.fill((2,), 3.0)), [3.0, 3.0])


# ---- random -----------------------------------------------------------------------------------

@pytest.mark.parametrize("sample", [
    lambda seed, dtype: dd.random.normal((3, 4), dtype=dtype, seed=seed),
    lambda seed, dtype: dd.random.normal([5], mean=2.0, stddev=0.5, dtype=dtype, seed=seed),
    lambda seed, dtype: dd.random.uniform((2, 2), dtype=dtype, seed=seed),
    lambda seed, dtype: dd.random.uniform(6, minval=-1.0, maxval=3.0, dtype=dtype, seed=seed),
], ids=["normal", "normal_mean_std", "uniform", "uniform_range"])
@pytest.mark.parametrize("dtype", [dd.float32, dd.float64])
def test_random_same_seed_same_values(sample, dtype):
    a, b, c = sample(7, dtype), sample(7, dtype), sample(8, dtype)
    assert a.dtype == dtype
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_random_distributions_and_ranges():
    n = 20000
    x = np.asarray(dd.random.normal((n,), mean=1.5, stddev=2.0, dtype=dd.float64, seed=0))
    assert x.shape == (n,)
    assert abs(x.mean() - 1.5) < 5 * 2.0 / np.sqrt(n)
    assert abs(x.std() - 2.0) < 0.05
    u = np.asarray(dd.random.uniform((n,), minval=-1.0, maxval=3.0, seed=1))
    assert u.dtype == np.float32 and u.min() >= -1.0 and u.max() < 3.0
    assert abs(u.mean() - 1.0) < 5 * 4 / np.sqrt(12 * n)
    with pytest.raises(ValueError, match="must exceed minval"):
        dd.random.uniform((2,), minval=1.0, maxval=1.0)
    with pytest.raises(TypeError, match="need a float dtype"):
        dd.random.normal((2,), dtype=dd.int32)


def test_random_set_seed_makes_unseeded_draws_reproducible():
    dd.random.set_seed(123)
    a = np.asarray(dd.random.normal((4,)))
    b = np.asarray(dd.random.normal((4,)))
    dd.random.set_seed(123)
    np.testing.assert_array_equal(np.asarray(dd.random.normal((4,))), a)
    np.testing.assert_array_equal(np.asarray(dd.random.normal((4,))), b)
    assert not np.array_equal(a, b)


# ---- operators ----------------------------------------------------------------------------

@SETTINGS
@given(data=st.data())
def test_operators_match_numpy(data):
    a = data.draw(arrays((2, 3)), label="a")
    b = data.draw(arrays((3,), st.floats(0.5, 2)), label="b")
    m = data.draw(arrays((3, 2)), label="m")
    k = data.draw(floats(0.5, 2), label="k")
    ta, tb, tm = t64(a), t64(b), t64(m)
    pairs = [
        (ta + tb, a + b), (ta - tb, a - b), (ta * tb, a * b), (ta / tb, a / b),
        (tb ** ta, b ** a), (ta @ tm, a @ m), (-ta, -a), (+ta, a), (abs(ta), np.abs(a)),
        (ta + k, a + k), (k + ta, k + a), (k - ta, k - a), (ta - k, a - k), (k * ta, k * a),
        (k / tb, k / b), (tb ** k, b ** k), (k ** ta, k ** a), (m.T @ ta.T, m.T @ a.T),
        (ta @ m, a @ m), (a @ tm, a @ m), (ta + b, a + b), (b - ta, b - a),
    ]
    for got, expected in pairs:
        assert isinstance(got, dd.Tensor) and got.dtype == dd.float64
        np.testing.assert_allclose(npy(got), expected, **EXACT)


def test_comparisons_return_bool_tensors():
    a, b = dd.constant([1.0, 2.0, 3.0]), dd.constant([3.0, 2.0, 1.0])
    for got, expected in ((a < b, [True, False, False]), (a <= b, [True, True, False]),
                          (a > b, [False, False, True]), (a >= b, [False, True, True]),
                          (a == b, [False, True, False]), (a != b, [True, False, True]),
                          (a > 1.5, [False, True, True])):
        assert got.dtype == dd.bool
        np.testing.assert_array_equal(np.asarray(got), expected)
    assert (dd.constant(1.0) == None) is False  # noqa: E711
    assert bool(dd.constant(2.0) > 1.0) and not bool(dd.constant(0.5) > 1.0)
    assert bool(dd.constant([2.0]) > 1.0)
    with pytest.raises(ValueError, match="ambiguous"):
        bool(a > 0.0)


# ---- numpy interop -------------------------------------------------------------------------

def test_numpy_asarray_gives_the_values():
    t = dd.constant([[1.0, 2.0]])
    a = np.asarray(t)
    assert a.dtype == np.float32 and a.shape == (1, 2)
    np.testing.assert_array_equal(a, [[1.0, 2.0]])
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert np.array(t).flags.writeable  # np.array copies


@SETTINGS
@given(x=arrays((3,)))
def test_numpy_functions_on_watched_tensors_are_recorded(x):
    tx = t64(x)
    w = np.array([[1.0], [2.0], [3.0]])
    with dd.GradientTape() as tape:
        tape.watch(tx)
        y = np.sum(np.sin(tx) * np.exp(tx)) + np.mean(np.square(tx)) + np.max(tx) \
            + np.sum(np.matmul(tx, w)) + np.sum(np.tanh(tx) @ w)
    assert isinstance(y, dd.Tensor)
    expected = (np.cos(x) + np.sin(x)) * np.exp(x) + 2 * x / 3 + (x == x.max()) / np.sum(
        x == x.max()) + w[:, 0] + (1 - np.tanh(x) ** 2) * w[:, 0]
    np.testing.assert_allclose(npy(tape.gradient(y, tx)), expected, **EXACT)


@pytest.mark.parametrize("call", [
    lambda t: np.cumsum(t), lambda t: np.sort(t), lambda t: np.exp(t, out=np.empty(2)),
    lambda t: np.add.reduce(t), lambda t: np.prod(t), lambda t: np.linalg.det(t * t[:, None]),
], ids=["cumsum", "sort", "ufunc_out", "ufunc_reduce", "prod", "det"])
def test_unsupported_numpy_function_on_a_watched_tensor_raises(call):
    x = dd.constant([3.0, 1.0])
    with dd.GradientTape() as tape:
        tape.watch(x)
        with pytest.raises(TypeError, match="not differentiable"):
            call(x)
    # on a tensor no tape follows, numpy just computes
    np.asarray(call(dd.constant([3.0, 1.0])))


def test_unsupported_numpy_function_on_a_tensor_with_a_tangent_raises():
    x = dd.constant([3.0, 1.0])
    with dd.ForwardAccumulator(x, dd.ones_like(x)):
        with pytest.raises(TypeError, match="not differentiable by dualad"):
            np.cumsum(x)


# ---- inspection --------------------------------------------------------------------------

def test_shape_dtype_ndim_size_len_iter():
    t = dd.constant(np.zeros((2, 3, 4), np.float64))
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.size == 24 and len(t) == 2
    assert t.dtype == dd.float64 and t.dtype == np.float64 and t.dtype.is_floating
    assert [s.shape for s in t] == [(3, 4), (3, 4)]
    s = dd.constant(1.0)
    assert s.shape == () and s.ndim == 0 and s.size == 1
    with pytest.raises(TypeError, match=r"len\(\) of a scalar"):
        len(s)
    np.testing.assert_array_equal(np.asarray(dd.shape(t)), [2, 3, 4])
    assert int(dd.size(t)) == 24 and int(dd.rank(t)) == 3


def test_repr_like_tensorflow():
    t = dd.constant([[1.0, 2.0], [3.0, 4.0]])
    r = repr(t)
    assert r.startswith("<dualad.Tensor shape=(2, 2) dtype=float32 numpy=")
    assert re.fullmatch(r"<dualad\.Tensor shape=\(2, 2\) dtype=float32 numpy=array\(\[\[1\., 2\.\],\s+"
                        r"\[3\., 4\.\]\], dtype=float32\)>", r), r
    assert repr(dd.constant(1.5)) == "<dualad.Tensor shape=() dtype=float32 numpy=1.5>"
    assert repr(dd.constant(2.0, dtype=dd.float64)) == \
        "<dualad.Tensor shape=() dtype=float64 numpy=2.0>"
    assert repr(dd.Variable(0.5, name="x")) == \
        "<dualad.Variable 'x:0' shape=() dtype=float32 numpy=0.5>"
    assert repr(dd.constant([1, 2])) == \
        "<dualad.Tensor shape=(2,) dtype=int32 numpy=array([1, 2], dtype=int32)>"


def test_repr_of_integer_and_bool_scalars():
    assert repr(dd.constant(2)) == "<dualad.Tensor shape=() dtype=int32 numpy=2>"
    assert repr(dd.constant(True)) == "<dualad.Tensor shape=() dtype=bool numpy=True>"


def test_tensorshape_concatenation_with_tuples_keeps_its_checks():
    # plain tuples of ints join a shape without conversion; anything else is still checked
    shape = dd.zeros((2, 3)).shape
    for joined in ((4,) + shape, shape + (4,)):
        assert type(joined) is dd.TensorShape
    assert (4,) + shape == (4, 2, 3) and shape + (4,) == (2, 3, 4)
    assert type(((np.int64(4),) + shape)[0]) is int
    with pytest.raises(ValueError, match=">= 0"):
        (-1,) + shape
    with pytest.raises(ValueError, match=">= 0"):
        shape + (-1,)
    with pytest.raises(TypeError, match="int or None"):
        (True,) + shape
    with pytest.raises(TypeError, match="int or None"):
        shape + (2.5,)


def test_tensors_and_variables_hash_by_identity():
    # the hash is computed in C now; it must stay id() (dict keys, watched-variable sets)
    tensor, variable = dd.constant(1.5), dd.Variable(np.ones(3))
    same_value = dd.constant(1.5)
    assert hash(tensor) == id(tensor) and hash(variable) == id(variable)
    table = {tensor: "tensor", variable: "variable", same_value: "other"}
    assert (table[tensor], table[variable], table[same_value]) == ("tensor", "variable", "other")
    assert variable.ref() in {variable} and same_value not in {tensor}
