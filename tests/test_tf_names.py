"""TensorFlow's names and call signatures, so that code written for `import tensorflow as tf`
runs with `import dualad as tf`: op names with TF keyword arguments, dtype constants,
dualad.random, and dualad.print's formatting (as tf.print)."""
import io

import numpy as np
import pytest

import dualad as tf


NAMES = [
    "GradientTape", "Variable", "Tensor", "constant", "convert_to_tensor", "cast", "reduce_sum",
    "reduce_mean", "reduce_max", "reduce_min", "reduce_logsumexp", "multiply", "add", "subtract",
    "divide", "pow", "square", "sqrt", "exp", "log", "sin", "cos", "tanh", "sigmoid", "matmul",
    "transpose", "reshape", "expand_dims", "squeeze", "concat", "stack", "norm", "where",
    "maximum", "minimum", "clip_by_value", "stop_gradient", "ones", "zeros", "ones_like",
    "zeros_like", "print", "float32", "float64", "int32", "int64", "bool", "random",
]


@pytest.mark.parametrize("name", NAMES)
def test_tensorflow_names_exist(name):
    assert hasattr(tf, name)


def test_ops_accept_tensorflow_keyword_arguments():
    x = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    assert tf.reduce_sum(input_tensor=x, axis=1, keepdims=True, name="s").shape == (2, 1)
    np.testing.assert_array_equal(tf.reduce_sum(x, axis=0).numpy(), [4.0, 6.0])
    np.testing.assert_array_equal(tf.multiply(x, 2.0, name="m").numpy(), [[2, 4], [6, 8]])
    np.testing.assert_array_equal(tf.pow(x, 2).numpy(), [[1, 4], [9, 16]])
    np.testing.assert_array_equal(tf.matmul(x, x, transpose_a=True).numpy(),
                                  np.array([[1, 2], [3, 4]]).T @ [[1, 2], [3, 4]])
    np.testing.assert_array_equal(tf.matmul(x, x, transpose_b=True).numpy(),
                                  np.array([[1, 2], [3, 4]]) @ np.array([[1, 2], [3, 4]]).T)
    np.testing.assert_array_equal(tf.transpose(x, perm=[1, 0]).numpy(), [[1, 3], [2, 4]])
    np.testing.assert_array_equal(tf.transpose(a=x).numpy(), [[1, 3], [2, 4]])
    assert tf.reshape(tensor=x, shape=[4]).shape == (4,)
    assert tf.reshape(x, (-1, 1)).shape == (4, 1)
    assert tf.norm(x).numpy() == np.float32(np.sqrt(30.0))
    np.testing.assert_allclose(tf.norm(tensor=x, ord=1, axis=1).numpy(), [3.0, 7.0])
    np.testing.assert_allclose(tf.norm(x, ord=np.inf).numpy(), 4.0)
    assert tf.cast(x, tf.int32).dtype == tf.int32
    assert tf.cast(x, dtype="float64").dtype == tf.float64
    assert tf.convert_to_tensor([1.0], dtype=tf.float64).dtype == tf.float64
    assert tf.expand_dims(x, axis=0).shape == (1, 2, 2)
    assert tf.concat([x, x], axis=0).shape == (4, 2) and tf.stack([x, x], axis=2).shape == (2, 2, 2)


def test_dtype_constants_compare_with_numpy_and_names():
    assert tf.float32 == np.float32 and tf.float32 == "float32" and tf.float32 == tf.as_dtype("float32")
    assert tf.float64 != tf.float32
    assert tf.float32.name == "float32" and tf.int32.name == "int32" and tf.bool.name == "bool"
    assert tf.float32.is_floating and not tf.int32.is_floating and tf.int64.is_integer
    assert tf.constant(1.0).dtype == tf.float32 and tf.constant(1.0).dtype is tf.float32
    assert tf.constant(1).dtype is tf.int32
    assert len({tf.float32, tf.as_dtype(np.float32), tf.float64}) == 2
    assert repr(tf.float32) == "dualad.float32"


def test_random_normal_with_dtype_and_seed():
    a = tf.random.normal((1, 1), dtype=tf.float32, seed=5)
    b = tf.random.normal((1, 1), dtype=tf.float32, seed=5)
    assert a.shape == (1, 1) and a.dtype == tf.float32
    assert a.numpy()[0, 0] == b.numpy()[0, 0]
    assert tf.random.normal([3], seed=1, dtype=tf.float64).dtype == tf.float64


def test_python_floats_become_float32_as_documented():
    assert tf.constant(0.1).dtype == tf.float32 and tf.Variable(0.1).dtype == tf.float32
    assert tf.convert_to_tensor(2.5).dtype == tf.float32
    assert "float32" in tf.__doc__ and "Python floats" in tf.__doc__


# ---- dualad.print ----------------------------------------------------------------------------

@pytest.mark.parametrize("args,expected", [
    (("y =", tf.constant(0.0)), "y = 0"),
    ((tf.constant(np.float32(0.999998569)),), "0.999998569"),
    (((tf.constant(-2.0), tf.constant(1.0)),), "(-2, 1)"),
    (((tf.constant(0.0), tf.constant(0.0)),), "(0, 0)"),
    ((tf.constant(0.1),), "0.1"),
    ((tf.constant(1.0) / 3.0,), "0.333333343"),
    ((tf.constant(0.1, dtype=tf.float64),), "0.1"),
    ((tf.constant(1.0, dtype=tf.float64) / 3.0,), "0.33333333333333331"),
    ((tf.constant(123456.7),), "123456.703"),
    ((tf.constant(1e6),), "1e+06"),
    ((tf.constant([1.5, 2.0]),), "[1.5 2]"),
    ((tf.constant([[1, 2], [3, 4]]),), "[[1 2]\n [3 4]]"),
    ((tf.constant(7),), "7"),
    (([tf.constant(1.0), 2, "s"],), "[1, 2, s]"),
    (({"a": tf.constant(2.5)},), "{'a': 2.5}"),
    (("y =", tf.constant(0.0), "; x =", tf.Variable(np.float32(0.999998569))),
     "y = 0 ; x = 0.999998569"),
])
def test_print_formats_like_tf_print(capsys, args, expected):
    tf.print(*args)
    assert capsys.readouterr().out == expected + "\n"


def test_print_sep_end_and_output_stream(capsys):
    stream = io.StringIO()
    tf.print("a", tf.constant(1.0), sep="|", end="!", output_stream=stream)
    assert stream.getvalue() == "a|1!"
    assert capsys.readouterr().out == ""


# ---- shapes: TensorShape ---------------------------------------------------------------------

def test_shape_is_a_tensorshape_usable_as_a_tuple():
    x = tf.zeros((2, 3))
    s = x.shape
    assert isinstance(s, tf.TensorShape) and isinstance(s, tuple)
    assert s == (2, 3) and s == [2, 3] and [2, 3] == s and s != [3, 2] and s != (2, 3, 1)
    assert not (s != [2, 3]) and not (s == [2, 4])
    assert s.as_list() == [2, 3] and s.rank == 2 and s.ndims == 2 and s.num_elements() == 6
    assert s.is_fully_defined() and s.dims == [2, 3]
    assert len(s) == 2 and list(s) == [2, 3] and s[0] == 2 and s[-1] == 3
    assert np.zeros(s).shape == (2, 3) and np.zeros(s).shape == s
    assert tf.reshape(x, [-1, s[1:].num_elements()]).shape == (2, 3)
    assert hash(s) == hash((2, 3)) and {s: 1}[(2, 3)] == 1
    assert x.get_shape() == s and x.ndim == 2
    assert str(s) == "(2, 3)" and repr(s) == "TensorShape([2, 3])"
    assert tf.constant(1.0).shape == () and tf.constant(1.0).shape.rank == 0
    assert tf.constant(1.0).shape.num_elements() == 1


def test_tensorshape_slices_and_concatenations_are_shapes():
    s = tf.zeros((2, 3, 4)).shape
    assert type(s[1:]) is tf.TensorShape and s[1:] == [3, 4] and s[::-1] == (4, 3, 2)
    assert type(s + (5,)) is tf.TensorShape and s + (5,) == (2, 3, 4, 5)
    assert type((1,) + s) is tf.TensorShape and (1,) + s == (1, 2, 3, 4)
    assert s.concatenate([7]) == (2, 3, 4, 7)


def test_tensorshape_compatibility_with_unknown_dimensions():
    s = tf.zeros((2, 3)).shape
    assert s.is_compatible_with([None, 3]) and s.is_compatible_with(tf.TensorShape([2, None]))
    assert not s.is_compatible_with([2, 4]) and not s.is_compatible_with([2, 3, 1])
    partial = tf.TensorShape([None, 3])
    assert not partial.is_fully_defined() and partial.num_elements() is None
    assert partial.as_list() == [None, 3] and partial.merge_with(s) == (2, 3)
    with pytest.raises(ValueError, match="incompatible"):
        partial.assert_is_compatible_with([2, 4])
    assert s.with_rank(2) is s
    with pytest.raises(ValueError, match="rank 3"):
        s.with_rank(3)


@pytest.mark.parametrize("dims,error", [
    (None, ValueError), (3, TypeError), ("ab", TypeError), ([2, -1], ValueError),
    ([2.5], TypeError), ([True], TypeError),
])
def test_tensorshape_rejects_bad_dimensions(dims, error):
    with pytest.raises(error, match="dimension|unknown rank|TensorShape"):
        tf.TensorShape(dims)


def test_tensorshape_pickles_and_variables_have_shapes():
    import pickle
    s = tf.zeros((2, 3)).shape
    back = pickle.loads(pickle.dumps(s))
    assert type(back) is tf.TensorShape and back == s
    v = tf.Variable(np.zeros((4, 1), np.float32))
    assert v.shape == [4, 1] and v.shape.as_list() == [4, 1] and v.get_shape().rank == 2


def test_shape_of_an_uninitialized_tensor_is_an_error_not_a_crash():
    t = tf.Tensor.__new__(tf.Tensor)
    with pytest.raises(ValueError, match="uninitialized"):
        t.ndim
    with pytest.raises(ValueError, match="uninitialized"):
        t.shape
