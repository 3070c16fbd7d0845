"""TensorFlow's names and call signatures, so that code written for `import tensorflow as tf`
runs with `import dualad as tf`: op names with TF keyword arguments, dtype constants,
dualad.random, and dualad.print's formatting (as tf.print)."""
import functools
import io

import numpy as np
import pytest

import dualad as tf
from helpers import fd_grad
from isolated import assert_runs_cleanly, run_isolated


NAMES = [
    "GradientTape", "Variable", "Tensor", "constant", "convert_to_tensor", "cast", "reduce_sum",
    "reduce_mean", "reduce_max", "reduce_min", "reduce_logsumexp", "multiply", "add", "subtract",
    "divide", "pow", "square", "sqrt", "exp", "log", "sin", "cos", "tanh", "sigmoid", "matmul",
    "transpose", "reshape", "expand_dims", "squeeze", "concat", "stack", "norm", "where",
    "maximum", "minimum", "clip_by_value", "stop_gradient", "ones", "zeros", "ones_like",
    "zeros_like", "print", "float32", "float64", "int32", "int64", "bool", "random",
    "einsum", "gather", "gather_nd", "one_hot", "tile", "reduce_prod", "cumsum", "cumprod", "eye",
    "linspace", "fill", "floordiv", "floormod", "sign", "floor", "ceil", "round", "reciprocal",
    "rsqrt", "atan2", "erf", "segment_sum", "unsorted_segment_sum", "boolean_mask", "pad",
    "slice", "split", "unstack", "broadcast_to", "is_tensor", "newaxis", "TensorShape",
    "UnconnectedGradients", "custom_gradient", "math", "linalg", "nn", "autodiff",
]


@pytest.mark.parametrize("name", NAMES)
def test_each_tensorflow_name_does_what_its_name_says(name):
    _check_what_it_does(tf, "", name)


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


# ---- namespaces: tf.math, tf.linalg, tf.nn, tf.autodiff ----------------------------------------

NAMESPACES = {
    "math": ["log", "log1p", "exp", "sigmoid", "reduce_sum", "reduce_mean", "reduce_max",
             "reduce_min", "reduce_logsumexp", "square", "squared_difference", "abs", "sqrt",
             "pow", "maximum", "minimum", "softplus", "reduce_variance", "reduce_std",
             "reduce_prod", "cumsum", "cumprod", "atan2", "erf", "floor", "ceil", "round",
             "floordiv", "floormod", "mod", "sign", "reciprocal", "rsqrt", "segment_sum",
             "unsorted_segment_sum", "reduce_euclidean_norm", "log_sigmoid"],
    "linalg": ["matmul", "matvec", "norm", "transpose", "trace", "diag_part", "diag", "eye",
               "einsum", "adjoint", "matrix_transpose"],
    "nn": ["relu", "sigmoid", "softmax", "log_softmax", "tanh", "softplus", "elu", "l2_loss",
           "sigmoid_cross_entropy_with_logits", "softmax_cross_entropy_with_logits",
           "sparse_softmax_cross_entropy_with_logits"],
    "autodiff": ["GradientTape", "ForwardAccumulator"],
}


@pytest.mark.parametrize("namespace,name", [(ns, n) for ns, names in NAMESPACES.items()
                                            for n in names])
def test_each_namespace_name_does_what_its_name_says(namespace, name):
    _check_what_it_does(getattr(tf, namespace), namespace, name)


@pytest.mark.parametrize("namespace", ["math", "linalg", "nn"])
def test_namespace_table_exports_every_name_and_only_callables(namespace):
    module = getattr(tf, namespace)
    assert sorted(module._NAMES) == module.__all__
    assert all(getattr(module, n) is f and callable(f) for n, f in module._NAMES.items())


def test_math_names_are_the_dualad_ops():
    assert tf.math.log is tf.log and tf.math.reduce_sum is tf.reduce_sum
    assert tf.autodiff.GradientTape is tf.GradientTape
    x, y = tf.constant([1.0, 4.0]), tf.constant([3.0, 1.0])
    np.testing.assert_array_equal(tf.math.squared_difference(x, y).numpy(), [4.0, 9.0])
    np.testing.assert_allclose(tf.math.rsqrt(y).numpy(), [3 ** -0.5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(tf.math.reduce_variance(x).numpy(), 2.25)
    np.testing.assert_allclose(tf.math.reduce_std(x, axis=0).numpy(), 1.5)



_A = np.array([[1.5, -2.5, 0.5], [-0.5, 2.0, 3.0]])
_B = np.array([[0.5, 1.0], [-1.0, 2.0], [1.5, -0.5]])
_SEGMENTS = np.array([0, 0, 1], dtype=np.int32)

# TensorFlow call (its names and keyword arguments, through the namespace TF has it in) ->
# the same result computed with numpy
NEW_OP_CALLS = {
    "einsum": (lambda: tf.einsum("ij,jk->ik", _A, _B), lambda: _A @ _B),
    "linalg.einsum": (lambda: tf.linalg.einsum("ij->j", _A), lambda: _A.sum(axis=0)),
    "gather": (lambda: tf.gather(params=_A, indices=[2, 0, 2], axis=1), lambda: _A[:, [2, 0, 2]]),
    "gather_nd": (lambda: tf.gather_nd(params=_A, indices=[[1, 2], [0, 0]]),
                  lambda: _A[[1, 0], [2, 0]]),
    "one_hot": (lambda: tf.one_hot(indices=[2, 0], depth=3, on_value=5.0, off_value=-1.0),
                lambda: np.where(np.eye(3)[[2, 0]] == 1, 5.0, -1.0)),
    "tile": (lambda: tf.tile(input=_A, multiples=[2, 1]), lambda: np.tile(_A, (2, 1))),
    "math.reduce_prod": (lambda: tf.math.reduce_prod(input_tensor=_A, axis=1, keepdims=True),
                         lambda: np.prod(_A, axis=1, keepdims=True)),
    "math.cumsum": (lambda: tf.math.cumsum(x=_A, axis=1, exclusive=True),
                    lambda: np.cumsum(_A, axis=1) - _A),
    "math.cumprod": (lambda: tf.math.cumprod(x=_A, axis=0, reverse=True),
                     lambda: np.cumprod(_A[::-1], axis=0)[::-1]),
    "linalg.eye": (lambda: tf.linalg.eye(num_rows=2, num_columns=3), lambda: np.eye(2, 3)),
    "linspace": (lambda: tf.linspace(start=0.0, stop=1.0, num=5), lambda: np.linspace(0, 1, 5)),
    "fill": (lambda: tf.fill(dims=[2, 3], value=7.0), lambda: np.full((2, 3), 7.0)),
    "math.floordiv": (lambda: tf.math.floordiv(x=_A, y=-0.75), lambda: np.floor_divide(_A, -0.75)),
    "math.floormod": (lambda: tf.math.floormod(x=_A, y=-0.75), lambda: np.mod(_A, -0.75)),
    "math.mod": (lambda: tf.math.mod(_A, 0.75), lambda: np.mod(_A, 0.75)),
    "math.sign": (lambda: tf.math.sign(x=_A - 0.5), lambda: np.sign(_A - 0.5)),
    "math.floor": (lambda: tf.math.floor(x=_A), lambda: np.floor(_A)),
    "math.ceil": (lambda: tf.math.ceil(x=_A), lambda: np.ceil(_A)),
    "math.round": (lambda: tf.math.round(x=_A), lambda: np.round(_A)),   # half to even, both
    "math.reciprocal": (lambda: tf.math.reciprocal(x=_A), lambda: 1 / _A),
    "math.rsqrt": (lambda: tf.math.rsqrt(x=np.abs(_A)), lambda: np.abs(_A) ** -0.5),
    "math.atan2": (lambda: tf.math.atan2(y=_A, x=_A[::-1]), lambda: np.arctan2(_A, _A[::-1])),
    "math.erf": (lambda: tf.math.erf(x=np.array([-1.0, 0.0, 0.5])),
                 lambda: np.array([-0.8427007929497149, 0.0, 0.5204998778130465])),
    "math.segment_sum": (lambda: tf.math.segment_sum(data=_B, segment_ids=_SEGMENTS),
                         lambda: np.stack([_B[0] + _B[1], _B[2]])),
    "math.unsorted_segment_sum": (
        lambda: tf.math.unsorted_segment_sum(data=_B, segment_ids=[2, 0, 2], num_segments=4),
        lambda: np.stack([_B[1], np.zeros(2), _B[0] + _B[2], np.zeros(2)])),
    "boolean_mask": (lambda: tf.boolean_mask(tensor=_A, mask=[True, False, True], axis=1),
                     lambda: _A[:, [0, 2]]),
    "pad": (lambda: tf.pad(tensor=_A, paddings=[[1, 0], [0, 2]], constant_values=9.0),
            lambda: np.pad(_A, [(1, 0), (0, 2)], constant_values=9.0)),
    "slice": (lambda: tf.slice(_A, begin=[0, 1], size=[2, -1]), lambda: _A[0:2, 1:]),
    "split": (lambda: tf.stack(tf.split(value=_A, num_or_size_splits=[1, 2], axis=1)[1:]),
              lambda: _A[None, :, 1:]),
    "unstack": (lambda: tf.unstack(value=_A, axis=1)[2], lambda: _A[:, 2]),
    "broadcast_to": (lambda: tf.broadcast_to(input=_A[0], shape=[4, 3]),
                     lambda: np.broadcast_to(_A[0], (4, 3))),
    "newaxis": (lambda: tf.constant(_A)[:, tf.newaxis], lambda: _A[:, np.newaxis]),
}


@pytest.mark.parametrize("name", sorted(NEW_OP_CALLS))
def test_new_ops_under_tensorflow_names_match_numpy(name):
    call, expected = NEW_OP_CALLS[name]
    result = call()
    assert tf.is_tensor(result) and not tf.is_tensor(expected())
    np.testing.assert_allclose(result.numpy(), expected(), rtol=1e-12, atol=1e-15)
    assert result.shape == np.shape(expected())


# ---- what each name in NAMES and NAMESPACES computes (not only that it exists) ----------------
# name (or "namespace.name") -> (use, expected): use(the object found under that name) gives a
# result compared with expected, a numpy computation of the same thing (values, shape, dtype).
# A name without an entry here is found in NEW_OP_CALLS, where it must be the same object.

_M = np.array([[0.5, -1.25, 2.0], [1.5, 0.25, -0.75]])   # float64, (2, 3)
_POS = np.abs(_M) + 0.5


def _gradient_by(tape_class):
    x = tf.constant(np.array([1.0, 2.0]))
    with tape_class() as tape:
        tape.watch(x)
        y = x ** 3
    return tape.gradient(y, x)


def _jvp_by(accumulator_class):
    x = tf.constant(np.array([1.0, 2.0]))
    with accumulator_class(x, tf.constant(np.array([1.0, -1.0]))) as acc:
        y = x ** 3
    return acc.jvp(y)


def _variable_after_assign_add(variable_class):
    v = variable_class(_M)
    v.assign_add(_M)
    return [v.trainable, np.asarray(v)]


def _gradient_through(stop_gradient):
    x = tf.constant(_M)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(stop_gradient(x) * x)  # d/dx = the stopped factor only: _M, not 2·_M
    return tape.gradient(y, x)


def _unconnected_gradient(enum):
    x, unused = tf.constant(_M), tf.constant(_M)
    with tf.GradientTape() as tape:
        tape.watch([x, unused])
        y = tf.reduce_sum(x)
    return tape.gradient(y, unused, unconnected_gradients=enum.ZERO)


def _custom_gradient_of(decorator):
    @decorator
    def tripled_gradient(x):
        return tf.identity(x), lambda dy: 3.0 * dy

    return _gradient_through(lambda x: tf.stop_gradient(x) + tripled_gradient(x) - x)


def _printed(print_fn):
    stream = io.StringIO()
    print_fn("v", tf.constant(np.array([1.5, -2.0])), output_stream=stream)
    return stream.getvalue()


def _uniform_draws(random):
    u = random.uniform([2000], seed=3).numpy()
    return [u.dtype == np.float32, u.min() >= 0.0, u.max() < 1.0, abs(u.mean() - 0.5) < 0.03]


def _log_sigmoid(x):
    return -np.log1p(np.exp(-x))


WHAT_EACH_NAME_DOES = {
    "GradientTape": (_gradient_by, 3 * np.array([1.0, 4.0])),
    "autodiff.GradientTape": (_gradient_by, 3 * np.array([1.0, 4.0])),
    "autodiff.ForwardAccumulator": (_jvp_by, np.array([3.0, -12.0])),
    "Variable": (_variable_after_assign_add, [True, 2 * _M]),
    "Tensor": (lambda T: [isinstance(tf.constant(_M), T), isinstance(_M, T)], [True, False]),
    "is_tensor": (lambda f: [f(tf.constant(_M)), f(_M), f(tf.Variable(_M))], [True, False, True]),
    "TensorShape": (lambda S: [isinstance(tf.constant(_M).shape, S), S([2, 3]) == (2, 3)],
                    [True, True]),
    "UnconnectedGradients": (_unconnected_gradient, np.zeros_like(_M)),
    "custom_gradient": (_custom_gradient_of, 3 * _M),
    "stop_gradient": (_gradient_through, _M),
    "print": (_printed, "v [1.5 -2]\n"),
    "random": (_uniform_draws, [True] * 4),
    "newaxis": (lambda na: tf.constant(_M)[:, na], _M[:, None]),
    "math": (lambda m: m.log(_POS), np.log(_POS)),
    "linalg": (lambda m: m.trace(_M[:, :2]), np.trace(_M[:, :2])),
    "nn": (lambda m: m.relu(_M), np.maximum(_M, 0.0)),
    "autodiff": (lambda m: _jvp_by(m.ForwardAccumulator), np.array([3.0, -12.0])),
    "float32": (lambda d: tf.zeros([2], dtype=d), np.zeros(2, np.float32)),
    "float64": (lambda d: tf.zeros([2], dtype=d), np.zeros(2, np.float64)),
    "int32": (lambda d: tf.zeros([2], dtype=d), np.zeros(2, np.int32)),
    "int64": (lambda d: tf.zeros([2], dtype=d), np.zeros(2, np.int64)),
    "bool": (lambda d: tf.zeros([2], dtype=d), np.zeros(2, np.bool_)),
    "constant": (lambda f: f(_M), _M),
    "convert_to_tensor": (lambda f: f([[1, 2]], dtype=tf.float64), np.array([[1.0, 2.0]])),
    "cast": (lambda f: f(_M, tf.int32), _M.astype(np.int32)),   # toward zero, as numpy
    "reduce_sum": (lambda f: f(_M, axis=1), _M.sum(axis=1)),
    "reduce_mean": (lambda f: f(_M, axis=0), _M.mean(axis=0)),
    "reduce_max": (lambda f: f(_M, axis=1), _M.max(axis=1)),
    "reduce_min": (lambda f: f(_M, axis=0, keepdims=True), _M.min(axis=0, keepdims=True)),
    "reduce_logsumexp": (lambda f: f(_M, axis=1), np.log(np.exp(_M).sum(axis=1))),
    "reduce_prod": (lambda f: f(_M, axis=0), _M.prod(axis=0)),
    "multiply": (lambda f: f(_M, _M[1]), _M * _M[1]),
    "add": (lambda f: f(_M, _M[:, :1]), _M + _M[:, :1]),
    "subtract": (lambda f: f(_M, _M[1]), _M - _M[1]),
    "divide": (lambda f: f(_M, _POS), _M / _POS),
    "pow": (lambda f: f(_POS, _M), _POS ** _M),
    "square": (lambda f: f(_M), _M ** 2),
    "sqrt": (lambda f: f(_POS), np.sqrt(_POS)),
    "exp": (lambda f: f(_M), np.exp(_M)),
    "log": (lambda f: f(_POS), np.log(_POS)),
    "log1p": (lambda f: f(_POS), np.log1p(_POS)),
    "abs": (lambda f: f(_M), np.abs(_M)),
    "sin": (lambda f: f(_M), np.sin(_M)),
    "cos": (lambda f: f(_M), np.cos(_M)),
    "tanh": (lambda f: f(_M), np.tanh(_M)),
    "sigmoid": (lambda f: f(_M), 1 / (1 + np.exp(-_M))),
    "matmul": (lambda f: f(_M, _M.T), _M @ _M.T),
    "linalg.matmul": (lambda f: f(_M, _M, transpose_b=True), _M @ _M.T),
    "linalg.matvec": (lambda f: f(_M, _M[0]), _M @ _M[0]),
    "transpose": (lambda f: f(_M), _M.T),
    "linalg.transpose": (lambda f: f(_M[None]), _M.T[None]),
    "linalg.matrix_transpose": (lambda f: f(_M[None]), _M.T[None]),
    "linalg.adjoint": (lambda f: f(_M[None]), _M.T[None]),   # real: the transpose
    "linalg.trace": (lambda f: f(np.stack([_M[:, :2], _M[:, 1:]])),
                     np.array([np.trace(_M[:, :2]), np.trace(_M[:, 1:])])),
    "linalg.diag_part": (lambda f: f(_M[:, :2]), np.diagonal(_M[:, :2])),
    "linalg.diag": (lambda f: f(_M[0]), np.diag(_M[0])),
    "reshape": (lambda f: f(_M, [3, 2]), _M.reshape(3, 2)),
    "expand_dims": (lambda f: f(_M, 1), _M[:, None, :]),
    "squeeze": (lambda f: f(_M[:, None, :, None], axis=3), _M[:, None, :]),
    "concat": (lambda f: f([_M, _POS], axis=1), np.concatenate([_M, _POS], axis=1)),
    "stack": (lambda f: f([_M, _POS], axis=1), np.stack([_M, _POS], axis=1)),
    "norm": (lambda f: f(_M), np.sqrt(np.sum(_M ** 2))),
    "math.reduce_euclidean_norm": (lambda f: f(_M, axis=1), np.sqrt(np.sum(_M ** 2, axis=1))),
    "where": (lambda f: f(_M > 0, _M, -2 * _M), np.where(_M > 0, _M, -2 * _M)),
    "maximum": (lambda f: f(_M, _M[::-1]), np.maximum(_M, _M[::-1])),
    "minimum": (lambda f: f(_M, _M[::-1]), np.minimum(_M, _M[::-1])),
    "clip_by_value": (lambda f: f(_M, -1.0, 1.0), np.clip(_M, -1.0, 1.0)),
    "ones": (lambda f: f([2, 3]), np.ones((2, 3), np.float32)),
    "zeros": (lambda f: f([2, 3], dtype=tf.int32), np.zeros((2, 3), np.int32)),
    "ones_like": (lambda f: f(_M), np.ones_like(_M)),
    "zeros_like": (lambda f: f(_M), np.zeros_like(_M)),
    "eye": (lambda f: f(2, 3, dtype=tf.float64), np.eye(2, 3)),
    "math.squared_difference": (lambda f: f(_M, _M[::-1]), (_M - _M[::-1]) ** 2),
    "math.softplus": (lambda f: f(_M), np.log1p(np.exp(_M))),
    "nn.softplus": (lambda f: f(_M), np.log1p(np.exp(_M))),
    "nn.elu": (lambda f: f(_M), np.where(_M > 0, _M, np.expm1(_M))),
    "nn.l2_loss": (lambda f: f(_M), np.sum(_M ** 2) / 2),
    "math.log_sigmoid": (lambda f: f(_M), _log_sigmoid(_M)),
    "math.reduce_variance": (lambda f: f(_M, axis=1), _M.var(axis=1)),
    "math.reduce_std": (lambda f: f(_M, axis=0), _M.std(axis=0)),
    "nn.softmax": (lambda f: f(_M), np.exp(_M) / np.exp(_M).sum(axis=-1, keepdims=True)),
    "nn.log_softmax": (lambda f: f(_M), _M - np.log(np.exp(_M).sum(axis=-1, keepdims=True))),
    "nn.relu": (lambda f: f(_M), np.maximum(_M, 0.0)),
    "nn.sigmoid_cross_entropy_with_logits": (
        lambda f: f(labels=_POS / 3, logits=_M),
        -_POS / 3 * _log_sigmoid(_M) - (1 - _POS / 3) * _log_sigmoid(-_M)),
    "nn.softmax_cross_entropy_with_logits": (
        lambda f: f(labels=[[0.25, 0.75, 0.0], [1.0, 0.0, 0.0]], logits=_M),
        -(np.array([[0.25, 0.75, 0.0], [1.0, 0.0, 0.0]])
          * (_M - np.log(np.exp(_M).sum(axis=-1, keepdims=True)))).sum(axis=-1)),
    "nn.sparse_softmax_cross_entropy_with_logits": (
        lambda f: f(labels=np.array([2, 0], np.int32), logits=_M),
        -(_M - np.log(np.exp(_M).sum(axis=-1, keepdims=True)))[[0, 1], [2, 0]]),
}


def _as_numpy(result):
    if tf.is_tensor(result) or isinstance(result, tf.Variable):
        return np.asarray(result)
    if isinstance(result, list):
        return [_as_numpy(r) for r in result]
    return result


def _check_what_it_does(module, namespace, name):
    obj = getattr(module, name)
    qualified = f"{namespace}.{name}" if namespace else name
    key = qualified if qualified in WHAT_EACH_NAME_DOES else name
    if key in WHAT_EACH_NAME_DOES:
        use, expected = WHAT_EACH_NAME_DOES[key]
        got = _as_numpy(use(obj))
        pairs = zip(got, expected) if isinstance(expected, list) else [(got, expected)]
        for g, e in pairs:
            if isinstance(e, np.ndarray) or isinstance(e, np.generic):
                g = np.asarray(g)
                assert g.dtype == e.dtype and g.shape == e.shape, (qualified, g, e)
                np.testing.assert_allclose(g, e, rtol=1e-13, atol=1e-15, err_msg=qualified)
            else:
                assert g == e, (qualified, g, e)
        return
    # checked by the NEW_OP_CALLS table, under this name or another one for the same object
    calls = [n for n in NEW_OP_CALLS
             if functools.reduce(getattr, n.split("."), tf) is obj]
    assert calls, f"{qualified}: nothing checks what it computes"
    test_new_ops_under_tensorflow_names_match_numpy(calls[0])

def test_linalg_works_on_the_last_two_axes():
    a = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    assert tf.linalg.transpose(tf.constant(a)).shape == (2, 4, 3)
    np.testing.assert_array_equal(tf.linalg.transpose(tf.constant(a)).numpy(),
                                  np.swapaxes(a, -1, -2))
    np.testing.assert_array_equal(tf.linalg.diag_part(tf.constant(a)).numpy(),
                                  np.diagonal(a, axis1=-2, axis2=-1))
    np.testing.assert_array_equal(tf.linalg.trace(tf.constant(a)).numpy(),
                                  np.trace(a, axis1=-2, axis2=-1))
    v = np.array([1.0, -2.0, 0.5, 3.0])
    np.testing.assert_allclose(tf.linalg.matvec(tf.constant(a), tf.constant(v)).numpy(), a @ v)
    np.testing.assert_allclose(
        tf.linalg.matvec(tf.constant(a), tf.constant(v[:3]), transpose_a=True).numpy(),
        np.swapaxes(a, -1, -2) @ v[:3])
    np.testing.assert_array_equal(tf.linalg.diag(tf.constant(v)).numpy(), np.diag(v))
    np.testing.assert_allclose(
        tf.linalg.matmul(tf.constant(a), tf.constant(a), adjoint_b=True).numpy(),
        a @ np.swapaxes(a, -1, -2))
    with pytest.raises(ValueError, match="not both"):
        tf.linalg.matmul(tf.constant(a), tf.constant(a), transpose_b=True, adjoint_b=True)
    assert tf.linalg.eye(2, 3, batch_shape=[4], dtype=tf.float64).shape == (4, 2, 3)
    np.testing.assert_array_equal(tf.eye(3).numpy(), np.eye(3))


def test_linalg_diagonals_are_picked_not_masked():
    # a product with the identity would give inf * 0 = nan off (or on) the diagonal
    m = tf.constant([[1.0, np.inf], [-np.inf, 2.0]])
    np.testing.assert_array_equal(tf.linalg.diag_part(m).numpy(), [1.0, 2.0])
    assert tf.linalg.trace(m).numpy() == 3.0
    d = tf.linalg.diag(tf.constant([np.inf, 1.0])).numpy()
    np.testing.assert_array_equal(d, [[np.inf, 0.0], [0.0, 1.0]])


def test_linalg_gradients_match_finite_differences():
    a = np.random.default_rng(0).normal(size=(3, 3))
    v = np.array([0.5, -1.0, 2.0])

    def f(a_, v_):
        return (tf.linalg.trace(a_) * tf.reduce_sum(tf.linalg.matvec(a_, v_))
                + tf.reduce_sum(tf.linalg.diag(v_) * a_))
    _check_gradients(f, [a, v])


# ---- tf.nn activations and losses: values, stability, gradients -------------------------------

def _check_gradients(f, values, rtol=1e-6, atol=1e-8):
    """dualad's reverse and forward derivatives of the scalar f against finite differences."""
    xs = [tf.constant(np.asarray(v, dtype=np.float64)) for v in values]
    with tf.GradientTape() as tape:
        tape.watch(xs)
        y = f(*xs)
    grads = tape.gradient(y, xs)
    expected = fd_grad(lambda *a: np.asarray(f(*[tf.constant(v) for v in a])), values)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g.numpy(), e, rtol=rtol, atol=atol)
    directions = [np.ones_like(np.asarray(v, dtype=np.float64)) for v in values]
    with tf.autodiff.ForwardAccumulator(xs, [tf.constant(d) for d in directions]) as acc:
        y = f(*xs)
    np.testing.assert_allclose(acc.jvp(y).numpy(),
                               sum(np.sum(g * d) for g, d in zip(expected, directions)),
                               rtol=rtol, atol=atol)


LOGITS = np.array([[2.0, -1.0, 0.3], [-0.7, 0.2, 1.5], [0.0, -3.0, 4.0]])
PROBS = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
CLASSES = np.array([0, 2, 1], dtype=np.int32)


def _log_softmax_np(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def test_nn_losses_match_their_definitions():
    sig = 1 / (1 + np.exp(-LOGITS))
    np.testing.assert_allclose(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=PROBS, logits=LOGITS).numpy(),
        -PROBS * np.log(sig) - (1 - PROBS) * np.log(1 - sig), rtol=1e-12)
    np.testing.assert_allclose(
        tf.nn.softmax_cross_entropy_with_logits(labels=PROBS, logits=LOGITS).numpy(),
        -(PROBS * _log_softmax_np(LOGITS)).sum(axis=-1), rtol=1e-12)
    np.testing.assert_allclose(
        tf.nn.softmax_cross_entropy_with_logits(labels=PROBS.T, logits=LOGITS.T, axis=0).numpy(),
        -(PROBS * _log_softmax_np(LOGITS)).sum(axis=-1), rtol=1e-12)
    np.testing.assert_allclose(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=CLASSES, logits=LOGITS).numpy(),
        -_log_softmax_np(LOGITS)[np.arange(3), CLASSES], rtol=1e-12)
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(tf.nn.softplus(x).numpy(), np.log1p(np.exp(x)), rtol=1e-12)
    np.testing.assert_allclose(tf.nn.elu(x).numpy(), np.where(x > 0, x, np.expm1(x)),
                               rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(tf.nn.l2_loss(x).numpy(), np.sum(x ** 2) / 2)
    np.testing.assert_allclose(tf.math.log_sigmoid(x).numpy(), -np.log1p(np.exp(-x)), rtol=1e-12)


@pytest.mark.parametrize("loss", ["sigmoid", "softmax", "sparse"])
def test_nn_loss_gradients_match_finite_differences(loss):
    if loss == "sigmoid":
        f = lambda z, x: tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x))
    elif loss == "softmax":
        f = lambda z, x: tf.reduce_sum(
            tf.nn.softmax_cross_entropy_with_logits(labels=z, logits=x) * [1.0, 2.0, 3.0])
    else:
        f = lambda z, x: tf.reduce_sum(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=CLASSES, logits=x) * z[0])
    _check_gradients(f, [PROBS, LOGITS])


@pytest.mark.parametrize("name", ["softplus", "elu", "relu6", "leaky_relu", "silu", "l2_loss"])
def test_nn_activation_gradients_match_finite_differences(name):
    fn = getattr(tf.nn, name)
    x = np.array([-2.3, -0.4, 0.3, 1.7, 7.5])     # away from the kinks
    _check_gradients(lambda t: tf.reduce_sum(fn(t) * [1.0, -2.0, 0.5, 3.0, 1.5]), [x])


def test_losses_stay_finite_and_keep_their_gradient_at_extreme_logits():
    logits = tf.constant([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    labels = tf.constant([1.0, 0.0, 0.5, 1.0, 0.0])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    grad = tape.gradient(loss, logits).numpy()
    np.testing.assert_allclose(loss.numpy(), [1000.0, 0.0, np.log(2.0), 0.0, 1000.0], atol=1e-6)
    # d/dx = sigmoid(x) - z; at 0 that is 0.5 - z (a relu/abs formulation would lose the 0.5)
    np.testing.assert_allclose(grad, [-1.0, 0.0, 0.0, 0.0, 1.0], atol=1e-6)
    with tf.GradientTape() as tape:
        x = tf.constant([-1000.0, 0.0, 1000.0])
        tape.watch(x)
        y = tf.nn.softplus(x)
    np.testing.assert_array_equal(y.numpy(), [0.0, np.float32(np.log(2.0)), 1000.0])
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [0.0, 0.5, 1.0])
    big = tf.constant([[1000.0, -1000.0, 0.0]])
    with tf.GradientTape() as tape:
        tape.watch(big)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=[1], logits=big)
    assert ce.numpy() == [2000.0]
    np.testing.assert_allclose(tape.gradient(ce, big).numpy(), [[1.0, -1.0, 0.0]], atol=1e-6)


@pytest.mark.parametrize("labels,error,match", [
    ([0, 3], ValueError, r"in \[0, 3\)"),
    ([-1, 0], ValueError, r"in \[0, 3\)"),
    ([0.0, 1.0], TypeError, "integer"),
    ([0, 1, 2], ValueError, "shape"),
])
def test_sparse_softmax_cross_entropy_rejects_bad_labels(labels, error, match):
    # an out-of-range class would select no logit: a loss of 0, silently
    with pytest.raises(error, match=match):
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=np.zeros((2, 3)))


def test_losses_reject_mismatched_shapes_and_missing_arguments():
    with pytest.raises(ValueError, match="same shape"):
        tf.nn.sigmoid_cross_entropy_with_logits(labels=[1.0], logits=[1.0, 2.0])
    with pytest.raises(ValueError, match="same shape"):
        tf.nn.softmax_cross_entropy_with_logits(labels=[[1.0, 0.0]], logits=[1.0, 2.0])
    with pytest.raises(ValueError, match="labels= and logits="):
        tf.nn.softmax_cross_entropy_with_logits(logits=[1.0, 2.0])


def test_sparse_loss_in_a_compiled_function_checks_labels_on_every_call():
    loss = tf.function(lambda labels, logits: tf.reduce_sum(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)))
    logits = tf.constant(LOGITS)
    expected = -_log_softmax_np(LOGITS)[np.arange(3), CLASSES].sum()
    np.testing.assert_allclose(loss(tf.constant(CLASSES), logits).numpy(), expected)
    np.testing.assert_allclose(loss(tf.constant(CLASSES), logits).numpy(), expected)
    with pytest.raises(ValueError, match="labels must be in"):
        loss(tf.constant(np.array([0, 5, 1], dtype=np.int32)), logits)


# ---- UnconnectedGradients ----------------------------------------------------------------------

def test_unconnected_gradients_enum_everywhere_the_strings_are():
    x, unused = tf.constant([1.0, 2.0]), tf.constant(3.0)
    zero, none = tf.UnconnectedGradients.ZERO, tf.UnconnectedGradients.NONE
    assert zero == "zero" and none == "none" and str(zero) == "zero"
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, unused])
        y = x * 2.0
        s = tf.reduce_sum(y)
    assert tape.gradient(s, unused, unconnected_gradients=none) is None
    assert tape.gradient(s, [x, unused], unconnected_gradients=zero)[1].numpy() == 0.0
    assert tape.jacobian(y, unused, unconnected_gradients=zero).shape == (2,)
    assert tape.jacobian(y, unused, unconnected_gradients=none) is None
    assert tape.batch_jacobian(y[:, None], tf.constant([[1.0], [2.0]]),
                               unconnected_gradients=zero).shape == (2, 1, 1)
    with tf.autodiff.ForwardAccumulator(x, tf.constant([1.0, 0.0])) as acc:
        z = unused * 2.0
    assert acc.jvp(z, unconnected_gradients=none) is None
    assert acc.jvp(z, unconnected_gradients=zero).numpy() == 0.0


class _ForeignEnum:      # another library's enum member (TensorFlow's own), by its value
    value = "zero"


@pytest.mark.parametrize("mode,accepted", [
    ("zero", True), (tf.UnconnectedGradients.ZERO, True), (_ForeignEnum(), True),
    (None, False), ("ZERO", False), ("zeros", False), (0, False),
])
def test_unconnected_gradients_values(mode, accepted):
    x, unused = tf.constant(1.0), tf.constant(2.0)
    with tf.GradientTape() as tape:
        tape.watch([x, unused])
        y = x * 3.0
    if accepted:
        assert tape.gradient(y, [x, unused], unconnected_gradients=mode)[1].numpy() == 0.0
    else:
        # None used to pass as 'none' (its str() lowercased): now a clear error, as in TF
        with pytest.raises(ValueError, match="unconnected_gradients must be"):
            tape.gradient(y, [x, unused], unconnected_gradients=mode)


# ---- missing TensorFlow names ------------------------------------------------------------------

@pytest.mark.parametrize("name,hint", [
    ("keras", "dualad.optimizers"), ("Module", "not supported"), ("train", "dualad.optimizers"),
    ("while_loop", "Python loop"), ("gradients", "GradientTape"),
])
def test_missing_tensorflow_names_say_what_to_use(name, hint):
    with pytest.raises(AttributeError, match=hint):
        getattr(tf, name)
    assert not hasattr(tf, name)


def test_a_typo_gets_pythons_own_suggestion():
    proc = run_isolated("import dualad\ndualad.reduce_summ")
    assert proc.returncode == 1
    assert "has no attribute 'reduce_summ'. Did you mean: 'reduce_sum'?" in proc.stderr


# ---- a TensorFlow program, unchanged ----------------------------------------------------------

TF_PROGRAM = '''
import numpy as np
import dualad as tf

rng = np.random.default_rng(0)
features = tf.constant(rng.normal(size=(32, 4)).astype(np.float32))
labels = tf.constant(rng.integers(0, 3, size=32).astype(np.int32))
w = tf.Variable(tf.random.normal([features.shape[-1], 3], seed=1) * 0.1)
b = tf.Variable(tf.zeros([3]))
unused = tf.Variable(tf.zeros([2]))
opt = tf.optimizers.SGD(learning_rate=0.5)   # tf.keras.optimizers.SGD in TensorFlow

assert w.shape.as_list() == [4, 3] and w.shape.rank == 2 and w.get_shape() == [4, 3]
assert features.shape[1:].num_elements() == 4 and features.shape.is_compatible_with([None, 4])
losses = []
for step in range(60):
    with tf.GradientTape() as tape:
        logits = tf.nn.bias_add(tf.linalg.matmul(features, w), b)
        loss = tf.math.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits)) + 1e-3 * tf.nn.l2_loss(w)
    grads = tape.gradient(loss, [w, b, unused],
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
    assert grads[2].shape == unused.shape
    opt.apply_gradients(zip(grads[:2], [w, b]))
    losses.append(float(loss))
predicted = tf.cast(tf.math.argmax(logits, axis=1), tf.int32)
accuracy = tf.math.reduce_mean(tf.cast(tf.math.equal(predicted, labels), tf.float32))
assert losses[-1] < losses[0] * 0.9, losses
assert 0.0 <= float(accuracy) <= 1.0
y = tf.constant(rng.normal(size=(32, 1)).astype(np.float32))
binary = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(y > 0, tf.float32),
                                                 logits=tf.linalg.matvec(features, w[:, 0])[:, None])
assert binary.shape == (32, 1) and np.all(np.isfinite(binary.numpy()))
with tf.autodiff.ForwardAccumulator(w, tf.ones_like(w)) as acc:
    out = tf.math.reduce_sum(tf.math.square(tf.linalg.matmul(features, w)))
assert acc.jvp(out).shape == ()
print("ok", losses[0], losses[-1])
'''


def test_tensorflow_program_runs_unchanged():
    proc = assert_runs_cleanly(TF_PROGRAM)
    assert proc.stdout.startswith("ok")


def test_shapes_stay_right_across_cache_collisions_and_threads():
    import threading
    shapes = [(a, b) for a in range(1, 40) for b in range(1, 12)]     # more than the cache slots
    tensors = [tf.zeros(s) for s in shapes]
    failures = []

    def read(offset):
        for round_ in range(3):
            for i in range(len(tensors)):
                k = (i * 7 + offset) % len(tensors)
                s = tensors[k].shape
                if s != shapes[k] or type(s) is not tf.TensorShape:
                    failures.append((shapes[k], s))

    threads = [threading.Thread(target=read, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
