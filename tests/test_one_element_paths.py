"""The C paths of W8's (1, 1) loop (issue 12): comparisons of two float scalars, bool() of a
0-d bool tensor, norm and multiply of one-element float arrays, scalar tensors materialised as
0-d arrays, and numpy float scalars wrapped as scalar tensors. Each must give what numpy (the
general path) gives, bit for bit, in value, dtype, shape and type."""
import operator
import threading

import numpy as np
import pytest

import dualad as dd
from dualad import _core, rules

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, 1e-310, 1e-160, 1e-30, 1e300, 3e38,
           -0.3, 0.1, 3.0, 1000.0, -1000.0]
COMPARISONS = [(operator.lt, np.less, dd.less), (operator.le, np.less_equal, dd.less_equal),
               (operator.gt, np.greater, dd.greater),
               (operator.ge, np.greater_equal, dd.greater_equal),
               (operator.eq, np.equal, dd.equal), (operator.ne, np.not_equal, dd.not_equal)]
DTYPES = [np.float32, np.float64]


def values(dtype, n=40, seed=0):
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        special = np.array(SPECIAL).astype(dtype)
    return np.concatenate([special, (rng.normal(size=n) * 10.0 ** rng.integers(-5, 5, n))
                           .astype(dtype)])


def same_bits(got, expected):
    assert type(got) is type(expected)
    assert np.asarray(got).dtype == np.asarray(expected).dtype
    assert np.shape(got) == np.shape(expected)
    assert np.asarray(got).tobytes() == np.asarray(expected).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, ufunc, public", COMPARISONS)
def test_scalar_comparisons_match_numpy_and_the_primitive(dtype, op, ufunc, public):
    xs = values(dtype, n=12)
    for x in xs:
        tx = dd.constant(x)
        for y in xs:
            expected = bool(ufunc(x, y))
            got = op(tx, dd.constant(y))
            assert got.dtype == dd.bool and got.shape == ()
            assert bool(got) is expected and got.numpy() == expected
            assert bool(public(tx, dd.constant(y))) is expected
        # Python numbers take the tensor's dtype first, as binary's conversion does
        for number in [1000, -3, 0, 0.1, 1e300, float("nan"), True]:
            with np.errstate(all="ignore"):
                expected = bool(ufunc(x, dtype(number)))
            assert bool(op(tx, number)) is expected, (x, number)
            assert bool(public(tx, number)) is expected


def test_comparison_errors_and_other_operands_are_unchanged():
    t = dd.constant(1.5, dtype=dd.float64)
    with pytest.raises(OverflowError):
        t < 10 ** 400
    with pytest.raises(OverflowError):
        dd.less(t, 10 ** 400)
    with pytest.raises(TypeError):
        t < dd.constant(1.5, dtype=dd.float32)     # no silent promotion
    with pytest.raises(TypeError):
        dd.constant(1.5, dtype=dd.float32) >= t
    assert (t < np.float64(2.0)).numpy() and (t < np.array(2.0)).numpy()
    assert (t == None) is False and (t != None) is True  # noqa: E711
    v = dd.constant([1.0, 3.0]) < 2.0
    assert v.numpy().tolist() == [True, False]


def test_comparison_results_cannot_be_made_writeable():
    for result in [dd.constant(1.0) < 2.0, dd.constant(3.0) < 2.0]:
        arr = np.asarray(result)
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr.flags.writeable = True
    assert bool(dd.constant(1.0) < 2.0) and not bool(dd.constant(3.0) < 2.0)


def test_comparing_a_variable_under_a_tape_still_watches_it():
    v = dd.Variable(1.5)
    with dd.GradientTape() as tape:
        assert bool(v < 2.0)
        assert bool(dd.constant(1.0) < v)
    assert tape.watched_variables() == (v,)


def test_comparisons_in_a_traced_function_are_guarded():
    @dd.function
    def f(x):
        return x * 2 if x < 1.0 else x * 3

    assert f(dd.constant(0.5)).numpy() == 1.0
    assert f(dd.constant(2.0)).numpy() == 6.0
    assert f(dd.constant(0.25)).numpy() == 0.5


def test_bool_of_zero_d_bool_tensors():
    assert bool(dd.constant(True)) is True and bool(dd.constant(False)) is False
    assert bool(dd.constant([[True]])) is True
    assert bool(dd.constant(np.array(2, dtype=np.uint8).view(np.bool_))) is True
    with pytest.raises(ValueError):
        bool(dd.constant([True, False]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (1,), (1, 1), (1, 1, 1)])
def test_one_element_norm_sweep(dtype, shape):
    axis = tuple(range(len(shape)))
    for x in values(dtype, seed=1):
        arr = np.full(shape, x, dtype=dtype)
        with np.errstate(all="ignore"):
            expected = np.sqrt(np.add.reduce(arr * arr, axis=axis))
        same_bits(rules._norm_impl(arr, axis=axis, keepdims=False), expected)
        same_bits(rules._norm_impl(arr), expected)
        assert dd.norm(dd.constant(arr)).numpy().tobytes() == np.asarray(expected).tobytes()


def test_one_element_norm_of_unaligned_swapped_and_float16_arrays():
    raw = bytearray(9)
    raw[1:] = np.float64(-0.3).tobytes()
    unaligned = np.frombuffer(bytes(raw), dtype=np.float64, offset=1).reshape(1, 1)
    assert not unaligned.flags.aligned
    same_bits(rules._norm_impl(unaligned, axis=(0, 1)), np.float64(0.3))
    for arr in [np.full((1, 1), -0.3, dtype=">f8"), np.full((1, 1), -0.3, dtype=np.float16)]:
        expected = np.sqrt(np.add.reduce(arr * arr, axis=(0, 1)))
        same_bits(rules._norm_impl(arr, axis=(0, 1)), expected)


PAIRS = [((), ()), ((1,), ()), ((), (1, 1)), ((1, 1), (1,)), ((1,), (1, 1, 1)), ((1, 1), (1, 1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes", PAIRS)
def test_one_element_multiply_is_numpys_product(dtype, shapes):
    xs = values(dtype, n=10, seed=2)
    for x in xs:
        for y in xs:
            a, b = np.full(shapes[0], x, dtype=dtype), np.full(shapes[1], y, dtype=dtype)
            with np.errstate(all="ignore"):
                expected = np.multiply(a, b)
            got = _core._multiply_impl(a, b)
            same_bits(got, expected)
            if isinstance(got, np.ndarray):
                assert got.flags.c_contiguous and got.flags.writeable and got.base is None


def test_multiply_of_mixed_swapped_and_larger_arrays_is_numpys():
    f32, f64 = np.full((1, 1), 0.1, np.float32), np.full((1,), 0.1, np.float64)
    same_bits(_core._multiply_impl(f32, f64), np.multiply(f32, f64))
    swapped = np.full((1,), 3.0, dtype=">f8")
    same_bits(_core._multiply_impl(swapped, f64), np.multiply(swapped, f64))
    big = np.arange(3.0)
    same_bits(_core._multiply_impl(big, f64), np.multiply(big, f64))
    ints = np.full((1, 1), 3)
    same_bits(_core._multiply_impl(ints, ints), np.multiply(ints, ints))


@pytest.mark.parametrize("dtype", DTYPES)
def test_scalar_tensors_materialise_their_value(dtype):
    for x in values(dtype, n=10, seed=3):
        t = dd.constant(x) * dtype(1.0)         # the C scalar path: no array made yet
        arr = np.asarray(t)
        assert arr.shape == () and arr.dtype == dtype and not arr.flags.writeable
        assert arr.tobytes() == np.asarray(x, dtype=dtype).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_reductions_to_numpy_scalars_give_scalar_tensors(dtype):
    x = np.array([0.1, 0.2, 0.7], dtype=dtype)
    s = dd.reduce_sum(dd.constant(x))
    expected = np.add.reduce(x)
    assert s.shape == () and s.dtype == dtype
    assert type(s.numpy()) is type(expected) and s.numpy().tobytes() == expected.tobytes()
    assert np.asarray(s).tobytes() == expected.tobytes()
    assert float(s * 1) == float(expected)


def w8_f(a):
    b = a * 2
    while dd.norm(b) < 1000:
        b = b * 2
    if dd.reduce_sum(b) > 0:
        c = b
    else:
        c = 100 * b
    return c


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("numerics", [False, True])
def test_w8_gradient_and_nested_persistent_tapes(dtype, numerics):
    previous = _core.check_numerics_enabled()
    if numerics:
        dd.debugging.enable_check_numerics()
    try:
        for a0 in [-0.3, 0.7, 123.0]:
            a = dd.constant(np.full((1, 1), a0, dtype=dtype))
            with dd.GradientTape(persistent=True) as outer:
                outer.watch(a)
                with dd.GradientTape() as inner:
                    inner.watch(a)
                    c = w8_f(a)
                g = inner.gradient(c, a)
            expected = np.full((1, 1), c.numpy()[0, 0] / dtype(a0), dtype=dtype)
            assert g.dtype == dtype and g.shape == (1, 1)
            np.testing.assert_array_equal(g.numpy(), expected)
            assert outer.gradient(c, a).numpy().tobytes() == expected.tobytes()
            assert outer.gradient(g, a) is None or not outer.gradient(g, a).numpy().any()
    finally:
        if numerics and not previous:
            dd.debugging.disable_check_numerics()


def test_w8_forward_accumulator_and_threads():
    a = dd.constant(np.full((1, 1), -0.3))
    with dd.ForwardAccumulator(a, dd.constant(np.ones((1, 1)))) as acc:
        c = w8_f(a)
    np.testing.assert_array_equal(acc.jvp(c).numpy(), c.numpy() / -0.3)
    results = []

    def work():
        for _ in range(50):
            with dd.GradientTape() as tape:
                tape.watch(a)
                c = w8_f(a)
            results.append(tape.gradient(c, a).numpy()[0, 0] == c.numpy()[0, 0] / -0.3)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 150 and all(results)
