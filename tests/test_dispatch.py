"""The op call on arrays (issue: the eager hot path): numpy's floating-point error state is
set for the op and restored after it, whatever happens inside; the generated public op
functions behave like the Python functions they replaced."""
import inspect
import pickle
import threading
import warnings

import numpy as np
import pytest

import dualad as dd
from dualad import ops


@pytest.fixture
def numpy_raises():
    """The user asks numpy to raise on every floating-point error."""
    with np.errstate(all="raise"):
        yield


def test_nan_and_inf_from_array_ops_pass_silently_under_the_users_errstate(numpy_raises):
    a = dd.constant(np.array([1.0, 0.0, -1.0, 1e300]), dtype=dd.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quotient = a / dd.zeros_like(a)
        product = dd.multiply(a, a)
        logs = dd.log(a)
    assert np.isposinf(quotient.numpy()[0]) and np.isnan(quotient.numpy()[1])
    assert np.isposinf(product.numpy()[3])
    assert np.isnan(logs.numpy()[2]) and np.isneginf(logs.numpy()[1])
    # the user's setting is back once the op returned
    assert np.geterr()["divide"] == "raise"
    with pytest.raises(FloatingPointError, match="divide by zero"):
        np.divide(np.ones(2), np.zeros(2))


def test_errstate_restored_when_the_impl_raises(numpy_raises):
    with pytest.raises(ValueError, match=r"multiply: .*\(input shapes \(2,\), \(3,\)\)"):
        dd.multiply(dd.constant([1.0, 2.0]), dd.constant([1.0, 2.0, 3.0]))
    assert set(np.geterr().values()) == {"raise"}


def test_a_primitive_that_reenters_the_library_sees_and_leaves_the_right_errstate(numpy_raises):
    seen = []

    def impl(x):
        seen.append(np.geterr()["invalid"])
        inner = dd.multiply(dd.constant(x), dd.constant(x)).numpy()   # nested op call
        seen.append(np.geterr()["invalid"])
        return np.sqrt(-inner)

    reentrant = dd.extend.primitive("reentrant_sqrt", impl)
    out = reentrant(dd.constant([2.0]))
    assert np.isnan(out.numpy()[0])
    assert seen == ["ignore", "ignore"]
    assert np.geterr()["invalid"] == "raise"


def test_errstate_of_another_thread_is_untouched():
    # numpy's state is per context: an op on one thread must not silence another thread
    states = []
    go, done = threading.Event(), threading.Event()

    def other():
        with np.errstate(all="raise"):
            go.wait()
            states.append(np.geterr()["over"])
            done.set()

    worker = threading.Thread(target=other)
    worker.start()
    x = dd.constant(np.full(4, 1e300), dtype=dd.float64)
    for _ in range(100):
        dd.multiply(x, x)
    go.set()
    done.wait(10)
    worker.join(10)
    assert states == ["raise"]


def test_check_numerics_still_names_the_array_op():
    dd.debugging.enable_check_numerics()
    try:
        with pytest.raises(FloatingPointError, match="op 'multiply' produced infinity"):
            dd.multiply(dd.constant(np.full(4, 1e300)), dd.constant(np.full(4, 1e300)))
    finally:
        dd.debugging.disable_check_numerics()


@pytest.mark.parametrize("export", ["multiply", "add", "sin", "negative", "abs", "maximum"])
def test_generated_ops_keep_their_names_docs_signature_and_pickle(export):
    op = getattr(dd, export)
    assert op is ops.GENERATED[export]
    assert op.__name__ == op.__qualname__ == export
    assert op.__module__ == "dualad.ops"
    assert op.__doc__ and op.__doc__ == dd.rules.DECLARATIONS[op_name(export)].doc
    assert list(inspect.signature(op).parameters)[-1] == "name"
    assert pickle.loads(pickle.dumps(op)) is op


def op_name(export):
    return next(name for name, d in dd.rules.DECLARATIONS.items() if d.export == export)


def test_generated_ops_convert_and_check_their_arguments():
    a = dd.constant(np.array([1.0, 2.0]), dtype=dd.float64)
    assert dd.multiply(a, 2, name="twice").numpy().tolist() == [2.0, 4.0]
    assert dd.multiply(3.0, a).dtype == dd.float64           # the Tensor operand's dtype
    assert dd.add([1, 2], [3, 4]).dtype == dd.int32           # Python ints: int32
    assert dd.negative([1.0]).dtype == dd.float32              # Python floats: float32
    with pytest.raises(TypeError, match="sin: expected a float tensor, got int32"):
        dd.sin([1, 2])
    with pytest.raises(TypeError, match="multiply: operands have different dtypes"):
        dd.multiply(a, dd.constant([1.0, 2.0], dtype=dd.float32))
    with pytest.raises(TypeError, match="at least 2 positional arguments"):
        dd.multiply(a)                                         # missing operand
    with pytest.raises(TypeError, match="at most 2 positional arguments"):
        dd.sin(a, "n", "extra")


def test_wrapped_results_are_read_only_and_typed():
    out = dd.multiply(dd.constant(np.arange(4.0)), dd.constant(np.ones(4)))
    assert out.dtype == dd.float64 and out.shape == (4,)
    with pytest.raises(ValueError, match="read-only"):
        np.asarray(out)[0] = 1.0
    scalar = dd.multiply(dd.constant(np.float64(2.0)), dd.constant(np.float64(3.0)))
    assert scalar.numpy() == 6.0 and scalar.shape == ()


def test_ufunc_ops_on_many_threads_at_once_stay_quiet_and_leave_each_threads_errstate():
    # numpy's ufuncs run in a per-thread context holding the quiet error state: threads
    # running ops together must neither share it nor see it afterwards
    errors, checked = [], []
    start = threading.Barrier(4)

    def worker():
        try:
            with np.errstate(all="raise"):
                x = dd.constant(np.full(4, 1e300), dtype=dd.float64)
                start.wait(10)
                for _ in range(500):
                    product = dd.multiply(x, x)
                    assert np.isposinf(product.numpy()).all()
                    assert np.geterr()["over"] == "raise"
                with pytest.raises(FloatingPointError):
                    np.multiply(x.numpy(), x.numpy())
                checked.append(True)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(checked) == 4


def test_a_primitive_whose_impl_is_a_python_ufunc_runs_in_the_callers_context():
    # np.frompyfunc makes ufuncs that call Python: they must see the caller's context
    # variables (only numpy's own ufuncs run in the quiet per-thread context)
    import contextvars
    marker = contextvars.ContextVar("marker", default="unset")
    seen = []

    def element(v):
        seen.append(marker.get())
        return v

    py_ufunc = np.frompyfunc(element, 1, 1)
    p = dd.extend.primitive("python_ufunc_identity",
                            lambda x: py_ufunc(x).astype(np.float64), vjp=[lambda g, *_: g])
    p.impl = py_ufunc  # the impl itself a ufunc object (it returns an object array)
    token = marker.set("caller")
    try:
        p(dd.constant([1.0, 2.0]))
    except (TypeError, ValueError):
        pass  # an object-dtype result may be refused; what the element saw is the point
    finally:
        marker.reset(token)
    assert seen and set(seen) == {"caller"}


def test_matmul_adjoint_flags_are_the_transpose_for_real_tensors_and_exclusive():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(3, 2)), rng.normal(size=(4, 3))
    out = dd.matmul(a, b, adjoint_a=True, adjoint_b=True)
    np.testing.assert_array_equal(out.numpy(), dd.matmul(a, b, transpose_a=True,
                                                         transpose_b=True).numpy())
    np.testing.assert_allclose(out.numpy(), a.T @ b.T, rtol=1e-15)
    for flags in (dict(transpose_a=True, adjoint_a=True), dict(transpose_b=True, adjoint_b=True)):
        with pytest.raises(ValueError, match="not both"):
            dd.matmul(a, a, **flags)
    with pytest.raises(ValueError, match="output_type"):
        dd.matmul(a.T, a, output_type=dd.float32)
    # the signature TensorFlow's code calls
    assert list(inspect.signature(dd.matmul).parameters)[:6] == [
        "a", "b", "transpose_a", "transpose_b", "adjoint_a", "adjoint_b"]


def test_matmul_fast_path_keeps_the_checks_of_the_general_path():
    m, v = dd.constant(np.ones((2, 3))), dd.constant(np.ones(3))
    with pytest.raises(ValueError, match="inner dimensions 3 and 2 differ"):
        dd.matmul(m, dd.constant(np.ones((2, 2))))
    with pytest.raises(ValueError, match="inner dimensions 3 and 4 differ"):
        dd.matmul(m, dd.constant(np.ones(4)))
    with pytest.raises(TypeError, match="different dtypes"):
        dd.matmul(m, dd.constant(np.ones(3, np.float32)))
    with pytest.raises(ValueError, match="rank >= 1"):
        dd.matmul(m, dd.constant(1.0, dtype=dd.float64))
    with dd.GradientTape() as tape:
        tape.watch(v)
        y = dd.matmul(m, v)
    assert y.shape == (2,)
    np.testing.assert_array_equal(tape.gradient(y, v).numpy(), [2.0, 2.0, 2.0])


def _general(**flags):
    # a flag that is not the literal False sends dualad.matmul/transpose past the core's direct
    # path to the Python one (numpy's False means the same to it)
    return flags


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shapes", [((4, 1), (1, 4)), ((1, 4), (4, 1)), ((3, 2), (2, 5)),
                                    ((1, 1), (1, 1)), ((0, 3), (3, 2)), ((2, 0), (0, 3))])
def test_compiled_matmul_and_transpose_give_the_bits_of_the_general_paths(dtype, shapes):
    rng = np.random.default_rng(7)
    x = dd.constant(rng.standard_normal(shapes[0]).astype(dtype))
    w = dd.Variable(rng.standard_normal(shapes[1]).astype(dtype))

    def run(direct):
        flags = {} if direct else _general(transpose_a=np.False_)
        with dd.GradientTape(persistent=True) as tape:
            tape.watch(x)
            with dd.GradientTape() as inner:
                inner.watch(x)
                y = dd.matmul(x, w, **flags)
                t = dd.transpose(y) if direct else dd.transpose(y, perm=[1, 0])
                z = dd.reduce_sum(t * t)
            g = inner.gradient(z, [x, w])
            gg = dd.reduce_sum(g[0] * g[0])
        return [y, t, *g, *tape.gradient(gg, [x, w])]

    for direct, general in zip(run(True), run(False)):
        assert direct.dtype == general.dtype and direct.shape == general.shape
        np.testing.assert_array_equal(direct.numpy(), general.numpy())


def test_compiled_matmul_and_transpose_under_accumulators_traces_and_threads():
    x = dd.constant(np.arange(6.0).reshape(3, 2))
    with dd.ForwardAccumulator(x, dd.ones_like(x)) as acc:
        y = dd.matmul(dd.transpose(x), x)
    ones = np.ones((3, 2))
    np.testing.assert_array_equal(acc.jvp(y).numpy(), ones.T @ x.numpy() + x.numpy().T @ ones)

    @dd.function
    def f(a):
        return dd.matmul(dd.transpose(a), a)
    np.testing.assert_array_equal(f(x).numpy(), x.numpy().T @ x.numpy())
    np.testing.assert_array_equal(f(x + 1.0).numpy(), (x.numpy() + 1).T @ (x.numpy() + 1))

    results = []
    def work():
        results.append(dd.matmul(dd.transpose(x), x).numpy())
    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, x.numpy().T @ x.numpy())


def test_compiled_matmul_and_transpose_leave_the_rest_to_the_general_paths():
    m = dd.constant(np.ones((2, 3)))
    np.testing.assert_array_equal(dd.matmul(np.ones((2, 3)), np.ones((3, 1))).numpy(),
                                  [[3.0], [3.0]])
    np.testing.assert_array_equal(dd.matmul(m, m, transpose_b=True).numpy(), np.full((2, 2), 3.0))
    np.testing.assert_array_equal(dd.matmul(dd.constant(np.ones((2, 3), np.int64)),
                                            dd.constant(np.ones((3, 2), np.int64))).numpy(),
                                  np.full((2, 2), 3))
    with pytest.raises(TypeError, match="different dtypes"):
        dd.matmul(m, dd.constant(np.ones((3, 2), np.float32)))
    with pytest.raises(ValueError, match="output_type"):
        dd.matmul(m, dd.transpose(m), output_type=dd.float32)
    assert dd.transpose(dd.constant(np.ones((2, 3, 4)))).shape == (4, 3, 2)
    assert dd.transpose(dd.constant(np.ones(3))).shape == (3,)
    assert dd.transpose(dd.constant(2.0)).shape == ()
    np.testing.assert_array_equal(dd.transpose([[1.0, 2.0]]).numpy(), [[1.0], [2.0]])
    with pytest.raises(ValueError, match="not a permutation"):
        dd.transpose(m, perm=(0, 0))
    assert dd.matmul.__name__ == "matmul" and "numpy's rules" in dd.matmul.__doc__
    assert dd.transpose.__name__ == "transpose" and "Permute" in dd.transpose.__doc__


def test_transpose_primitive_swaps_matrices_directly_and_leaves_other_perms_to_its_impl():
    m = dd.constant(np.arange(6.0).reshape(2, 3))
    p = dd.rules.PRIMITIVES["transpose"]
    for perm in [(1, 0), (-1, 0), (-1, -2), (np.int64(1), 0), [1, 0], np.array([1, 0])]:
        out = dd._core.bind(p, m, perm=perm)
        assert out.shape == (3, 2)
        np.testing.assert_array_equal(out.numpy(), m.numpy().T)
    with pytest.raises(ValueError, match="transpose: .*input shapes"):
        dd._core.bind(p, m, perm=(0, 0))


# ---- a primitive of a scalar kernel called with the wrong number of inputs -------------------

@pytest.mark.parametrize("value", [2.0, [1.0, 2.0]], ids=["scalar", "array"])
@pytest.mark.parametrize("recorded", [False, True])
def test_a_scalar_kernels_primitive_refuses_the_wrong_number_of_inputs(value, recorded):
    # the C kernels read a missing second input as 0 and ignore an extra one: a scalar
    # multiply(x) was 0.0 and sin(x, x) was sin(x); now every entry point names the count
    from dualad import rules
    x = dd.constant(value)
    calls = {"multiply(x)": lambda: rules.multiply(x),
             "sin(x, x)": lambda: rules.sin(x, x),
             "add(x, x, x)": lambda: rules.add(x, x, x),
             "unary(multiply, x)": lambda: dd._core.unary(rules.multiply, x),
             "binary(sin, x, x)": lambda: dd._core.binary(rules.sin, x, x)}
    with dd.GradientTape() as tape:
        if recorded:
            tape.watch(x)
        for name, call in calls.items():
            with pytest.raises(TypeError, match=r"takes [12] tensor inputs?, got [123]"):
                call()
        y = rules.multiply(x, x)       # the tape is still usable
    if recorded:
        np.testing.assert_array_equal(tape.gradient(y, x), 2 * np.asarray(value, np.float32))
    with pytest.raises(TypeError, match="sin takes 1 tensor input, got 2"):
        dd._core.binary_op(rules.sin)
    with pytest.raises(TypeError, match="multiply takes 2 tensor inputs, got 1"):
        dd._core.float_unary_op(rules.multiply, "multiply")
