"""Hostile or careless use that must give a clear error, never a crash or a silently wrong
value: forged pickles, shapes given as floats, non-bool input to the bool reductions,
an accumulator read from another thread."""
import pickle

import numpy as np
import pytest

import dualad as dd
from dualad._core import Variable, _variable_from_pickle

from isolated import assert_runs_cleanly


# ---- forged Variable pickles -----------------------------------------------------------------

@pytest.mark.parametrize("trainable, name, message", [
    (object(), "v", "trainable flag must be a bool, got object"),
    (1, "v", "trainable flag must be a bool, got int"),
    ("yes", "v", "trainable flag must be a bool, got str"),
    (True, 5, "name must be a str, got int"),
    (True, None, "name must be a str, got NoneType"),
    (True, b"v", "name must be a str, got bytes"),
])
def test_a_forged_variable_pickle_with_a_wrong_field_is_a_clear_error(trainable, name, message):
    with pytest.raises(TypeError, match=message):
        _variable_from_pickle(Variable, np.ones(2), trainable, name)


def test_a_variable_pickle_through_pickle_loads_is_checked():
    class Forged:
        def __reduce__(self):
            return (_variable_from_pickle, (Variable, np.ones(2), object(), 5))
    with pytest.raises(TypeError, match="trainable flag must be a bool"):
        pickle.loads(pickle.dumps(Forged()))


@pytest.mark.parametrize("trainable", [True, False, np.bool_(False)])
def test_a_genuine_variable_pickle_still_loads(trainable):
    v = _variable_from_pickle(Variable, np.arange(3.0), trainable, "w")
    assert v.trainable is bool(trainable) and v.name == "w" and v.shape == (3,)


@pytest.mark.parametrize("dtype", [">f8", ">f4", ">i4", ">i8", ">u2"])
def test_a_big_endian_array_becomes_a_native_tensor(dtype):
    # a pickle or file from a big-endian machine: its tensor used to have a dtype that equals
    # no dualad dtype, so x * native refused "float64 and float64"
    value = np.arange(3).astype(dtype)
    native = np.arange(3).astype(np.dtype(dtype).newbyteorder("="))
    from dualad._core import _tensor_from_pickle
    for t in (dd.constant(value), dd.Variable(value), dd.convert_to_tensor(value),
              _tensor_from_pickle(value), _variable_from_pickle(Variable, value, True, "v"),
              dd.constant([0, 1, 2], dtype=dtype), dd.cast(dd.constant(native), dtype),
              dd.zeros((3,), dtype) + dd.constant(native)):
        assert t.dtype == native.dtype and t.numpy().dtype.isnative
        assert dd.as_dtype(dtype) == native.dtype
        np.testing.assert_array_equal((t + dd.constant(native)).numpy(), 2 * native)


# ---- shapes and permutations are integers -----------------------------------------------------

X = dd.constant(np.arange(6.0))


@pytest.mark.parametrize("call", [
    lambda: dd.reshape(X, (3.0, 2)),
    lambda: dd.reshape(X, (2.5, 2.9)),
    lambda: dd.reshape(X, dd.constant([3.0, 2.0])),
    lambda: dd.reshape(X, [[3], [2]]),
    lambda: dd.transpose(dd.reshape(X, (3, 2)), perm=[1.0, 0.0]),
    lambda: dd.transpose(dd.reshape(X, (3, 2)), perm=np.array([1.0, 0.0])),
    lambda: dd.broadcast_to(dd.constant(1.0), (2.5,)),
    lambda: dd.zeros((2.5,)),
    lambda: dd.ones(2.0),
    lambda: dd.fill((2.0, 1), 3.0),
    lambda: dd.fill((2.0, 1), dd.constant(3.0)),
    lambda: dd.constant(1.0, shape=(2.7,)),
    lambda: dd.random.normal((2.5,)),
    lambda: dd.random.uniform(3.0),
    lambda: dd.eye(2.5),
    lambda: dd.eye(2, 2.0),
    lambda: dd.one_hot([0, 1], 3.0),
    lambda: dd.split(dd.zeros((2, 4)), 2.0, axis=1),
    lambda: dd.linspace(0.0, 1.0, 3.0),
    lambda: dd.linspace(0.0, 1.0, dd.constant(3.0)),
], ids=["reshape", "reshape_fraction", "reshape_float_tensor", "reshape_nested", "transpose",
        "transpose_array", "broadcast_to", "zeros", "ones", "fill", "fill_tensor", "constant",
        "normal", "uniform", "eye", "eye_columns", "one_hot", "split", "linspace",
        "linspace_tensor"])
def test_a_shape_or_perm_of_floats_is_a_type_error(call):
    # int(2.5) == 2 made another shape silently; operator.index semantics, as for axes
    with pytest.raises(TypeError, match="integer"):
        call()


def test_integer_shapes_in_every_form_still_work():
    for shape in ((3, 2), [3, 2], np.array([3, 2]), (np.int64(3), np.int32(2)),
                  dd.constant([3, 2]), dd.reshape(X, (3, 2)).shape, (3, -1)):
        assert dd.reshape(X, shape).shape == (3, 2)
        if -1 not in tuple(np.asarray(shape)):
            assert dd.zeros(shape).shape == (3, 2)
            assert dd.broadcast_to(dd.constant(1.0), shape).shape == (3, 2)
    assert dd.reshape(X, 6).shape == (6,) and dd.reshape(dd.constant([1.0]), []).shape == ()
    assert dd.zeros(3).shape == (3,) and dd.zeros(np.int64(3)).shape == (3,)
    assert dd.zeros(dd.constant(3)).shape == (3,)
    assert dd.transpose(dd.reshape(X, (3, 2)), dd.constant([1, 0])).shape == (2, 3)
    assert dd.transpose(dd.reshape(X, (3, 2)), np.array([1, 0])).shape == (2, 3)
    for n in (3, np.int64(3), np.array(3), dd.constant(3)):
        assert dd.eye(n).shape == (3, 3) and dd.one_hot([0], n).shape == (1, 3)
        assert dd.linspace(0.0, 1.0, n).shape == (3,)
        assert [t.shape for t in dd.split(dd.zeros((6,)), n)] == [(2,)] * 3


# ---- reduce_all / reduce_any take bool tensors --------------------------------------------------

@pytest.mark.parametrize("op", [dd.reduce_all, dd.reduce_any])
@pytest.mark.parametrize("value, dtype", [([0.5, 0.0], "float32"), ([1, 0], "int32"),
                                          (np.array([2, 0], np.uint8), "uint8")])
def test_bool_reductions_refuse_a_non_bool_tensor(op, value, dtype):
    with pytest.raises(TypeError, match=f"expected a bool tensor, got dtype {dtype}"):
        op(dd.constant(value))


def test_bool_reductions_of_bool_tensors_and_lists():
    assert bool(dd.reduce_all([True, True])) and not bool(dd.reduce_any([False]))
    np.testing.assert_array_equal(dd.reduce_any(dd.constant([[True, False]]), axis=0).numpy(),
                                  [True, False])


# ---- an accumulator active on another thread ----------------------------------------------------

def test_jvp_from_another_thread_reads_the_finished_tangent():
    # jvp only reads the tangent an op stored on its output (no shared record grows), so it is
    # allowed from any thread; a child interpreter, in case that ever crashes
    proc = assert_runs_cleanly("""
        import threading, math
        import dualad as dd
        x = dd.constant([0.3, 0.4], dtype=dd.float64)
        acc = dd.ForwardAccumulator(x, dd.constant([1.0, 2.0], dtype=dd.float64))
        ready, release, out = threading.Event(), threading.Event(), {}
        def owner():
            with acc:
                y = dd.sin(x) * x
                out["y"] = y
                ready.set()
                release.wait(20)
                z = y * 2.0
                out["z"] = acc.jvp(z).numpy()
        th = threading.Thread(target=owner)
        th.start()
        assert ready.wait(20)
        for _ in range(200):
            seen = acc.jvp([out["y"], x], unconnected_gradients="zero")
        release.set()
        th.join()
        want = [(math.cos(v) * v + math.sin(v)) * d for v, d in ((0.3, 1.0), (0.4, 2.0))]
        assert list(seen[0].numpy()) == want, (seen, want)
        assert list(out["z"]) == [2 * w for w in want]
        print("ok")
    """)
    assert proc.stdout.split() == ["ok"]


def test_watch_from_another_thread_is_refused_in_a_child_interpreter():
    proc = assert_runs_cleanly("""
        import threading
        import dualad as dd
        from dualad._core import AlreadyActiveError
        tape = dd.GradientTape(persistent=True)
        x = dd.constant([1.0, 2.0], dtype=dd.float64)
        stop, refused = threading.Event(), []
        def intruder():
            while not stop.is_set():
                try:
                    tape.watch(dd.constant(3.0, dtype=dd.float64))
                except AlreadyActiveError:
                    refused.append(1)
        th = threading.Thread(target=intruder)
        with tape:
            tape.watch(x)
            th.start()
            y = x
            for _ in range(2000):
                y = y * 1.0001
        stop.set()
        th.join()
        g = tape.gradient(y, x).numpy()
        assert list(g) == [1.0001 ** 2000] * 2 or abs(g[0] - 1.0001 ** 2000) < 1e-9, g
        print("ok")
    """)
    assert proc.stdout.split() == ["ok"]


# ---- user derivative rules of the wrong dtype ---------------------------------------------------

def _f64(v):
    return dd.constant(v, dtype=dd.float64)


@pytest.mark.parametrize("bad", [lambda u: dd.cast(u, dd.float32),
                                 lambda u: dd.ones((2,), dd.int32)], ids=["float32", "int32"])
@pytest.mark.parametrize("mode", ["gradient", "jacobian", "forward"])
def test_a_custom_gradient_of_another_dtype_is_a_clear_error(bad, mode):
    # it came out of the tape as x's gradient in that dtype (float32 or int32 for a float64 x)
    @dd.custom_gradient
    def f(x):
        return x * 2.0, lambda u: bad(u)

    x = _f64([1.0, 2.0])
    with pytest.raises(TypeError, match="returned a gradient of dtype .* for input 0 of dtype "
                                        "float64"):
        if mode == "forward":
            with dd.ForwardAccumulator(x, _f64([1.0, 0.0])):
                f(x)
        else:
            with dd.GradientTape() as tape:
                tape.watch(x)
                y = f(x)
            tape.jacobian(y, x) if mode == "jacobian" else tape.gradient(y, x)


def test_a_custom_gradient_given_as_a_list_or_array_takes_the_input_dtype():
    @dd.custom_gradient
    def f(x):
        return x * 2.0, lambda u: np.array([2.0, 2.0])       # float64 for a float32 x

    x = dd.constant([1.0, 2.0])
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = f(x)
    g = tape.gradient(y, x)
    assert g.dtype == dd.float32 and g.numpy().tolist() == [2.0, 2.0]


@pytest.mark.parametrize("shape", [(2,), ()])
def test_a_primitive_rule_of_another_dtype_is_a_clear_error(shape):
    from dualad import extend
    triple = extend.primitive(
        f"triple_with_float32_rules_{len(shape)}", lambda x: x * 3,
        vjp=[lambda g, ans, args, p: dd.cast(g * 3.0, dd.float32)],
        jvp=[lambda t, ans, args, p: dd.cast(t * 3.0, dd.float32)])
    x = _f64(np.ones(shape))
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = triple(x)
    with pytest.raises(TypeError, match="its VJP rule for input 0 returned dtype float32, not "
                                        "the float64 of the input"):
        tape.gradient(y, x)
    with pytest.raises(TypeError, match="its JVP rule for input 0 returned dtype float32, not "
                                        "the float64 of the output"):
        with dd.ForwardAccumulator(x, _f64(np.ones(shape))):
            triple(x)


# ---- a gradient is never a live Variable ----------------------------------------------------------

@pytest.mark.parametrize("body", [lambda x: x, dd.identity, lambda x: x + 0.0],
                         ids=["target_is_source", "identity", "add"])
def test_output_gradients_given_as_a_variable_are_read_not_returned(body):
    # the Variable itself came back as the gradient: an optimizer step assigning it later
    # changed the gradient already handed out
    v = dd.Variable([5.0, 5.0], dtype=dd.float64)
    x = _f64([1.0, 2.0])
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = body(x)
    grads = [tape.gradient(y, x, output_gradients=v),
             tape.gradient([y], [x], output_gradients=[v])[0]]
    v.assign([7.0, 7.0])
    for g in grads:
        assert not isinstance(g, dd.Variable) and g.numpy().tolist() == [5.0, 5.0]


def test_a_variable_returned_by_a_custom_gradient_or_a_rule_is_read():
    from dualad import extend
    v = dd.Variable([5.0, 5.0], dtype=dd.float64)

    @dd.custom_gradient
    def f(x):
        return x * 1.0, lambda u: v

    passthrough = extend.primitive("passthrough_returning_a_variable", lambda x: x * 1.0,
                                   vjp=[lambda g, ans, args, p: v])
    x = _f64([1.0, 2.0])
    grads = []
    for op in (f, passthrough):
        with dd.GradientTape() as tape:
            tape.watch(x)
            y = op(x)
        grads.append(tape.gradient(y, x))
    v.assign([7.0, 7.0])
    for g in grads:
        assert not isinstance(g, dd.Variable) and g.numpy().tolist() == [5.0, 5.0]


def test_dtypes_pickle_and_copy_to_the_same_constant():
    import copy
    for dtype in (dd.float16, dd.float32, dd.float64, dd.int8, dd.int32, dd.int64, dd.uint8,
                  dd.bool):
        assert pickle.loads(pickle.dumps(dtype)) is dtype
        assert copy.copy(dtype) is dtype and copy.deepcopy(dtype) is dtype
    config = {"dtype": dd.float64, "shape": dd.constant([[1.0]]).shape}
    assert copy.deepcopy(config) == config


def test_primitives_copy_to_themselves_and_pickle_by_name(tmp_path):
    import copy
    from dualad import extend
    from dualad._core import _registered_primitive
    from dualad.rules import PRIMITIVES
    cube = extend.primitive("cube_for_the_copy_test", lambda x: x ** 3,
                            vjp=[lambda g, ans, args, p: g * 3.0 * args[0] ** 2])
    holder = {"op": cube, "sin": PRIMITIVES["sin"]}
    copied = copy.deepcopy(holder)
    assert copied["op"] is cube and copied["sin"] is PRIMITIVES["sin"] and copy.copy(cube) is cube
    assert pickle.loads(pickle.dumps(holder)) == holder
    with pytest.raises(ValueError, match="not registered in this process"):
        _registered_primitive("no_such_primitive")
    stray = dd._core.Primitive("cube_for_the_copy_test", lambda x: x)   # not the registered one
    with pytest.raises(TypeError, match="not the one registered under its name"):
        pickle.dumps(stray)


# ---- a deep-copied model's compiled methods -------------------------------------------------------

class _ModelWithCompiledStep:
    """A dualad.function made from a bound method and kept on the instance."""

    def __init__(self):
        self.w = dd.Variable(2.0, dtype=dd.float64)
        self.step = dd.function(self.forward)

    def forward(self, x):
        return self.w * x


def test_a_copied_or_pickled_function_of_a_bound_method_uses_the_copy():
    # deepcopy returned the same Function, still bound to the original object: the copy's
    # step silently computed with the original's Variables (plain Python binds the copy)
    import copy
    model = _ModelWithCompiledStep()
    x = _f64(3.0)
    assert float(model.step(x)) == 6.0
    twin = copy.deepcopy(model)
    twin.w.assign(10.0)
    assert float(twin.step(x)) == 30.0 and float(model.step(x)) == 6.0
    assert twin.step.max_paths == model.step.max_paths
    loaded = pickle.loads(pickle.dumps(model))      # (it raised PicklingError)
    loaded.w.assign(5.0)
    assert float(loaded.step(x)) == 15.0 and float(model.step(x)) == 6.0

    @dd.function
    def plain(x):
        return x * 2.0
    assert copy.deepcopy(plain) is plain and copy.deepcopy({"f": plain})["f"] is plain


class _ModelWithCustomGradient:
    """A custom gradient made from a bound method and kept on the instance."""

    def __init__(self):
        self.k = dd.constant(2.0, dtype=dd.float64)
        self.act = dd.custom_gradient(self._act)

    def _act(self, x):
        return x * self.k, lambda u: u * self.k * 10.0


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_custom_gradient_kept_on_an_instance_survives_pickle_and_deepcopy(how):
    # it came back as the plain method (getattr(instance, "_act")): calls returned the pair
    # (y, grad_fn) and the custom gradient was gone
    import copy
    model = _ModelWithCustomGradient()
    twin = pickle.loads(pickle.dumps(model)) if how == "pickle" else copy.deepcopy(model)
    twin.k = dd.constant(3.0, dtype=dd.float64)
    x = _f64(1.5)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = twin.act(x)
    assert float(y) == 4.5 and float(tape.gradient(y, x)) == 30.0
