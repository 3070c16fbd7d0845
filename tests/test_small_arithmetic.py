"""multiply, add, subtract and divide on small float arrays (issue 12, W10): the core's own
loops instead of numpy's ufunc call, for two arrays of one shape or a float scalar and an array
of its dtype. They must give numpy's bits and result (shape, dtype, a new C-ordered array),
leave everything else to numpy, stay silent on floating-point errors whatever the user's numpy
error state, and feed tapes, accumulators, traces and check_numerics as numpy's result did.
Also the per-primitive flags of the op call (whether its impl runs in the quiet context, which
small loop computes it), worked out once per impl."""
import contextvars
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import dualad as dd
from dualad import _core

SMALL_MAX = 256     # _kernels.pxi's _SMALL_LOOP_MAX: the largest array the core's loop takes


def same_bits(got, expected):
    got, expected = np.asarray(got), np.asarray(expected)
    return (got.dtype == expected.dtype and got.shape == expected.shape
            and got.tobytes() == expected.tobytes())


def numpy_product(a, b):
    return numpy_result(np.multiply, a, b)


def numpy_result(ufunc, a, b):
    with np.errstate(all="ignore"):
        return ufunc(a, b)


# the public ops the core's small loops compute, with numpy's ufunc for each
OPS = [(dd.multiply, np.multiply), (dd.add, np.add), (dd.subtract, np.subtract),
       (dd.divide, np.true_divide)]
OP_IDS = ["multiply", "add", "subtract", "divide"]


def special_values(dtype):
    info = np.finfo(dtype)
    return np.array([0.0, -0.0, 1.0, -1.5, np.inf, -np.inf, np.nan, info.max, -info.max,
                     info.tiny, info.tiny / 4, info.eps, 3.0e-39, 1e20], dtype=dtype)


@pytest.mark.parametrize("op,ufunc", OPS, ids=OP_IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_pair_of_special_values_gives_numpys_bits(dtype, op, ufunc):
    v = special_values(dtype)
    a, b = np.repeat(v, len(v)), np.tile(v, len(v))      # all pairs, both orders
    for k in range(0, len(a), 37):                         # arrays of the loop's sizes
        x, y = a[k:k + 37], b[k:k + 37]
        got = op(dd.constant(x), dd.constant(y))
        assert same_bits(got.numpy(), numpy_result(ufunc, x, y))
        if ufunc is np.multiply:
            with np.errstate(all="ignore"):     # (numpy computes the pairs giving NaN)
                raw = _core._multiply_impl(x, y)
            assert same_bits(raw, numpy_product(x, y))


float_arrays = st.sampled_from([np.float64, np.float32]).flatmap(
    lambda dtype: hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=9).flatmap(
        lambda shape: st.tuples(*[hnp.arrays(dtype, shape, elements=st.floats(
            width=32 if dtype == np.float32 else 64)) for _ in range(2)])))


@settings(max_examples=150, deadline=None)
@given(float_arrays, st.sampled_from(range(len(OPS))))
def test_small_arrays_of_one_shape_give_numpys_bits(pair, which):
    a, b = pair
    op, ufunc = OPS[which]
    expected = numpy_result(ufunc, a, b)
    got = op(dd.constant(a), dd.constant(b))
    assert same_bits(got.numpy(), expected)
    with np.errstate(all="ignore"):     # (numpy's own call beyond the loop's sizes)
        raw = _core._multiply_impl(a, b)
    assert same_bits(raw, numpy_product(a, b)) and raw.flags.c_contiguous and raw.flags.owndata


@pytest.mark.parametrize("op,ufunc", OPS, ids=OP_IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 4, SMALL_MAX - 1, SMALL_MAX, SMALL_MAX + 1, 1000])
def test_sizes_around_the_limit(dtype, n, op, ufunc):
    rng = np.random.default_rng(n)
    a, b = rng.normal(size=n).astype(dtype) * 1e30, rng.normal(size=n).astype(dtype) * 1e-10
    assert same_bits(op(dd.constant(a), dd.constant(b)).numpy(), numpy_result(ufunc, a, b))


def pairs_numpy_computes():
    rng = np.random.default_rng(7)
    m = rng.normal(size=(3, 4))
    return {
        "broadcast": (m, m[0]),
        "column-row": (m[:, :1], m[:1, :]),
        "transposed": (m.T, m.T.copy()),              # not C-contiguous
        "strided": (m[:, ::2], m[:, 1::2]),
        "big-endian": (m.astype(">f8"), m.astype(">f8")),
        "mixed-order": (m.astype(">f8"), m),
        "int32": (np.arange(6, dtype=np.int32), np.arange(6, dtype=np.int32)),
        "0-d": (np.array(1.5), np.array(2.5)),
        "float16": (m.astype(np.float16), m.astype(np.float16)),
        "large": (rng.normal(size=5000), rng.normal(size=5000)),
    }


@pytest.mark.parametrize("case", sorted(pairs_numpy_computes()))
def test_everything_else_is_numpys_result(case):
    a, b = pairs_numpy_computes()[case]
    expected = numpy_product(a, b)
    with np.errstate(all="ignore"):
        raw = _core._multiply_impl(a, b)
    assert type(raw) is type(expected)
    assert same_bits(raw, expected)
    if a.dtype == b.dtype:      # (dualad refuses to multiply different dtypes)
        got = dd.multiply(dd.constant(a), dd.constant(b))
        assert same_bits(got.numpy(), expected)


def test_results_are_read_only_new_arrays():
    a, b = dd.constant(np.arange(4.0)), dd.constant(np.ones(4))
    out = dd.multiply(a, b)
    arr = np.asarray(out)
    assert not arr.flags.writeable and arr.flags.owndata
    assert not np.shares_memory(arr, np.asarray(a)) and not np.shares_memory(arr, np.asarray(b))


def test_floating_point_errors_stay_silent_under_the_users_errstate():
    big = dd.constant(np.full(4, 1e300))
    tiny = dd.constant(np.full(4, 1e-300, dtype=np.float64))
    inf, zero = dd.constant(np.full(3, np.inf)), dd.constant(np.zeros(3))
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isposinf(dd.multiply(big, big).numpy()).all()          # overflow
        assert (dd.multiply(tiny, tiny).numpy() == 0).all()               # underflow
        assert np.isnan(dd.multiply(inf, zero).numpy()).all()             # invalid
        assert np.isposinf((big * big).numpy()).all()                     # the operator
        huge = dd.constant(np.full(4, np.finfo(np.float64).max))
        assert np.isposinf((huge + huge).numpy()).all()
        assert np.isneginf((-huge - huge).numpy()).all()
        assert np.isposinf((big / tiny).numpy()).all()
        assert np.isnan((zero / zero).numpy()).all()                      # invalid
        assert np.isposinf((dd.constant(np.ones(3)) / zero).numpy()).all()  # divide by zero
        assert set(np.geterr().values()) == {"raise"}
        # the flags the core's loop raised do not reach numpy's next call
        np.multiply(np.ones(4), np.ones(4))


def test_floating_point_errors_stay_silent_on_many_threads():
    errors, checked = [], []
    start = threading.Barrier(4)

    def worker():
        try:
            with np.errstate(all="raise"):
                x = dd.constant(np.full(4, 1e300))
                start.wait(10)
                for _ in range(300):
                    assert np.isposinf(dd.multiply(x, x).numpy()).all()
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


def test_check_numerics_names_multiply_on_small_arrays():
    dd.debugging.enable_check_numerics()
    try:
        for dtype in (np.float64, np.float32):
            big = dd.constant(np.full(4, np.finfo(dtype).max))
            with pytest.raises(FloatingPointError, match="op 'multiply' produced infinity"):
                dd.multiply(big, big)
    finally:
        dd.debugging.disable_check_numerics()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gradients_through_small_products(dtype):
    rng = np.random.default_rng(3)
    xv, yv = rng.normal(size=5).astype(dtype), rng.normal(size=5).astype(dtype)
    x, y = dd.constant(xv), dd.constant(yv)
    with dd.GradientTape(persistent=True) as outer:
        outer.watch(x)
        with dd.GradientTape() as inner:
            inner.watch([x, y])
            z = dd.reduce_sum(x * x * y)
        gx, gy = inner.gradient(z, [x, y])
        s = dd.reduce_sum(gx)
    np.testing.assert_allclose(gx.numpy(), 2 * xv * yv, rtol=1e-6)
    np.testing.assert_allclose(gy.numpy(), xv * xv, rtol=1e-6)
    np.testing.assert_allclose(outer.gradient(s, x).numpy(), 2 * yv, rtol=1e-6)
    np.testing.assert_allclose(outer.gradient(z, x).numpy(), 2 * xv * yv, rtol=1e-6)
    assert gx.dtype == dtype and gy.dtype == dtype


def test_forward_accumulator_and_trace_see_small_products():
    xv, yv = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 4.0])
    x, y = dd.constant(xv), dd.constant(yv)
    with dd.ForwardAccumulator(x, dd.constant(np.ones(3))) as acc:
        z = dd.multiply(x, y)
    assert same_bits(z.numpy(), xv * yv)
    assert same_bits(acc.jvp(z).numpy(), yv)

    traced = dd.function(lambda a, b: dd.multiply(a, b) * b)
    for _ in range(3):      # the trace, then its replays
        assert same_bits(traced(x, y).numpy(), xv * yv * yv)


def test_a_replaced_impl_is_used_from_the_next_call():
    p = dd.extend.primitive("core_multiply_then_add", _core._multiply_impl,
                            vjp=[lambda g, *_: g, lambda g, *_: g])
    a, b = dd.constant(np.array([2.0, 3.0])), dd.constant(np.array([4.0, 5.0]))
    assert p(a, b).numpy().tolist() == [8.0, 15.0]
    p.impl = np.add
    assert p.impl is np.add
    assert p(a, b).numpy().tolist() == [6.0, 8.0]
    p.impl = _core._multiply_impl
    assert p(a, b).numpy().tolist() == [8.0, 15.0]


def test_impls_marked_quiet_after_a_primitive_first_ran_are_run_quietly_from_then_on():
    marker = contextvars.ContextVar("marker", default="unset")
    seen = []

    def impl(x):
        seen.append(marker.get())
        return x * 2.0

    p = dd.extend.primitive("marked_quiet_later", impl, vjp=[lambda g, *_: g * 2.0])
    x = dd.constant(np.array([1.0]))
    token = marker.set("caller")
    try:
        p(x)                        # the caller's context
        _core.run_quietly(impl)
        p(x)                        # the quiet per-thread context, which holds numpy's state only
    finally:
        marker.reset(token)
    assert seen == ["caller", "unset"]


scalar_and_array = st.sampled_from([np.float64, np.float32]).flatmap(
    lambda dtype: st.tuples(
        st.floats(width=32 if dtype == np.float32 else 64).map(dtype),
        hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=9),
                   elements=st.floats(width=32 if dtype == np.float32 else 64))))


@settings(max_examples=150, deadline=None)
@given(scalar_and_array, st.sampled_from(range(len(OPS))), st.booleans())
def test_a_scalar_operand_gives_numpys_bits_on_either_side(pair, which, scalar_first):
    s, arr = pair
    op, ufunc = OPS[which]
    ts, ta = dd.constant(s), dd.constant(arr)      # a float scalar: the C double fast path
    if scalar_first:
        got, expected = op(ts, ta), numpy_result(ufunc, np.asarray(s), arr)
    else:
        got, expected = op(ta, ts), numpy_result(ufunc, arr, np.asarray(s))
    assert same_bits(got.numpy(), expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_python_numbers_and_operators_with_small_arrays(dtype):
    arr = np.array([1.5, -2.0, 0.0, 3.0e30], dtype=dtype)
    x = dd.constant(arr)
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        cases = [(x * 0.1, arr * dtype(0.1)), (0.1 * x, dtype(0.1) * arr),
                 (x + 1, arr + dtype(1)), (1 - x, dtype(1) - arr), (x - 2.5, arr - dtype(2.5)),
                 (x / 3, arr / dtype(3)), (1.0 / x, None), (x * 1e30, None)]
    with np.errstate(all="ignore"):
        cases[-2] = (cases[-2][0], dtype(1.0) / arr)        # 1/0: inf, silently
        cases[-1] = (cases[-1][0], arr * dtype(1e30))       # overflow in float32: inf
    for got, expected in cases:
        assert got.dtype == dtype and same_bits(got.numpy(), expected)


def test_scalar_operand_of_another_dtype_or_shape_goes_to_numpy():
    x32 = dd.constant(np.array([1.0, 2.0], dtype=np.float32))
    s64 = dd.constant(np.float64(0.1))
    with pytest.raises(TypeError, match="different dtypes"):
        dd.multiply(x32, s64)
    # a primitive called directly does not check dtypes: numpy promotes, as before
    got = dd.rules.multiply(x32, s64)
    assert same_bits(got.numpy(), np.multiply(np.array([1.0, 2.0], np.float32), np.float64(0.1)))
    big = dd.constant(np.ones(SMALL_MAX + 1))
    assert same_bits((big * 0.5).numpy(), np.full(SMALL_MAX + 1, 0.5))


def test_gradient_through_scalar_times_small_array():
    x = dd.constant(np.array([1.0, 2.0, 3.0]))
    c = dd.constant(np.float64(2.5))
    with dd.GradientTape() as tape:
        tape.watch([x, c])
        y = dd.reduce_sum(c * x * x - x / c)
    gx, gc = tape.gradient(y, [x, c])
    np.testing.assert_allclose(gx.numpy(), 2 * 2.5 * np.array([1.0, 2.0, 3.0]) - 1 / 2.5)
    np.testing.assert_allclose(gc.numpy(), 14.0 + 6.0 / 2.5 ** 2)


# NaNs of both signs and several payloads: where both operands are NaN, numpy keeps one of
# them by its own operand order (a Hypothesis draw found the core's commutative loops keeping
# the other); a NaN scalar operand goes to numpy
NAN_BITS = {np.float64: (np.uint64, [0x7FF8000000000000, 0xFFF8000000000000,
                                     0x7FF0000000000001, 0xFFF8000000000ABC]),
            np.float32: (np.uint32, [0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFC00ABC])}


@pytest.mark.parametrize("scalar_first", [True, False])
@pytest.mark.parametrize("which", range(len(OPS)), ids=OP_IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_operands_on_both_sides_give_numpys_nan_bits(dtype, which, scalar_first):
    uint, bits = NAN_BITS[dtype]
    nans = np.array(bits, dtype=uint).view(dtype)
    arr = np.concatenate([nans, np.array([1.5, -0.0], dtype=dtype)])
    op, ufunc = OPS[which]
    for s in nans:
        ts, ta = dd.constant(s), dd.constant(arr)
        if scalar_first:
            got, expected = op(ts, ta), numpy_result(ufunc, np.asarray(s), arr)
        else:
            got, expected = op(ta, ts), numpy_result(ufunc, arr, np.asarray(s))
        assert same_bits(got.numpy(), expected), (hex(np.asarray(s).view(uint)), got.numpy())
    a, b = np.repeat(nans, len(nans)), np.tile(nans, len(nans))    # every pair of NaNs
    assert same_bits(op(dd.constant(a), dd.constant(b)).numpy(), numpy_result(ufunc, a, b))
    # every pair at every place of arrays of the sizes vector loops split into a body and a
    # tail (numpy's tail kept the other NaN than its body: a Hypothesis draw found it)
    for n in (3, 8, 17, 36, 256):
        for shift in range(len(a)):
            x, y = np.resize(np.roll(a, shift), n), np.resize(np.roll(b, shift), n)
            assert same_bits(op(dd.constant(x), dd.constant(y)).numpy(),
                             numpy_result(ufunc, x, y))
