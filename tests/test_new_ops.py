"""The TensorFlow ops added in one batch (einsum, gather, scans, pads, segment sums, ...):
values against numpy, TensorFlow's shapes and dtypes, and clear errors for bad input (an
index out of range raises, it never wraps around). Derivatives are checked for every op by
the CASES of test_op_derivatives.py."""
import pickle
import threading

import numpy as np
import pytest

import dualad as dd
from helpers import EXACT, npy, t64


def grad_of(fn, x):
    """d sum(fn(x)) / dx for a float64 tensor x."""
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.reduce_sum(fn(x))
    return tape.gradient(y, x)


# ---- elementwise -----------------------------------------------------------------------------

def test_round_is_bankers_rounding_and_floor_ceil_match_numpy():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.6, -2.6], dtype=np.float32)
    np.testing.assert_array_equal(npy(dd.round(dd.constant(x))), [-2, -2, -0, 0, 2, 2, 3, -3])
    np.testing.assert_array_equal(npy(dd.floor(dd.constant(x))), np.floor(x))
    np.testing.assert_array_equal(npy(dd.ceil(dd.constant(x))), np.ceil(x))
    assert dd.round(dd.constant(x)).dtype == dd.float32
    assert dd.round(dd.constant([3, -4])).dtype == dd.int32  # integers pass unchanged


def test_floor_and_ceil_refuse_integers_and_have_no_gradient():
    with pytest.raises(TypeError, match="expected a float tensor, got int32"):
        dd.floor(dd.constant([1, 2]))
    x = t64([0.3, 1.7])
    for op in (dd.floor, dd.ceil, dd.round):
        with dd.GradientTape() as tape:
            tape.watch(x)
            y = op(x)
        assert tape.gradient(y, x) is None


def test_floordiv_and_floormod_follow_the_sign_of_the_divisor():
    x = np.array([7, -7, 7, -7], dtype=np.int32)
    y = np.array([2, 2, -2, -2], dtype=np.int32)
    np.testing.assert_array_equal(npy(dd.floordiv(dd.constant(x), dd.constant(y))), [3, -4, -4, 3])
    np.testing.assert_array_equal(npy(dd.floormod(dd.constant(x), dd.constant(y))), [1, 1, -1, -1])
    xf, yf = x.astype(np.float64), y.astype(np.float64)
    np.testing.assert_array_equal(npy(dd.floormod(t64(xf), t64(yf))), np.remainder(xf, yf))
    assert dd.floordiv(dd.constant(x), 2).dtype == dd.int32


def test_integer_division_by_zero_raises():
    with pytest.raises(ZeroDivisionError, match="floordiv"):
        dd.floordiv(dd.constant([1, 2]), dd.constant([1, 0]))
    with pytest.raises(ZeroDivisionError, match="floormod"):
        dd.floormod(dd.constant([1, 2]), 0)


def test_numpy_floor_divide_and_remainder_on_tensors_run_the_ops():
    x = dd.constant([7.0, -7.0])
    assert isinstance(np.floor_divide(x, 2.0), dd.Tensor)
    np.testing.assert_array_equal(npy(np.remainder(x, 2.0)), [1.0, 1.0])


def test_floormod_gradient_in_the_divisor_is_minus_the_quotient():
    x, y = t64([7.5, -7.5]), t64([2.0, 2.0])
    with dd.GradientTape() as tape:
        tape.watch([x, y])
        z = dd.reduce_sum(dd.floormod(x, y))
    gx, gy = tape.gradient(z, [x, y])
    np.testing.assert_array_equal(npy(gx), [1.0, 1.0])
    np.testing.assert_array_equal(npy(gy), [-3.0, 4.0])


def test_reciprocal_rsqrt_atan2_erf_values():
    x = np.array([0.25, 1.0, 4.0])
    np.testing.assert_allclose(npy(dd.reciprocal(t64(x))), 1 / x, **EXACT)
    np.testing.assert_allclose(npy(dd.rsqrt(t64(x))), 1 / np.sqrt(x), **EXACT)
    y = np.array([1.0, -1.0, 0.0])
    np.testing.assert_allclose(npy(dd.atan2(t64(y), t64([-1.0, -1.0, 2.0]))),
                               np.arctan2(y, [-1.0, -1.0, 2.0]), **EXACT)
    np.testing.assert_allclose(npy(dd.erf(t64([0.0, 0.5, -3.0]))),
                               [0.0, 0.5204998778130465, -0.9999779095030014], rtol=1e-15)
    assert dd.erf(dd.constant([0.5])).dtype == dd.float32
    with pytest.raises(TypeError, match="expected a float tensor, got int32"):
        dd.atan2(dd.constant([1]), dd.constant([1]))
    with pytest.raises(TypeError, match="different dtypes"):
        dd.atan2(dd.constant([1.0]), t64([1.0]))


def test_sign_gradient_is_zero_not_none_as_in_tensorflow():
    x = t64([-2.0, 0.0, 3.0])
    g = grad_of(dd.sign, x)
    assert g is not None
    np.testing.assert_array_equal(npy(g), [0.0, 0.0, 0.0])
    with dd.ForwardAccumulator(x, t64([1.0, 1.0, 1.0])) as acc:
        y = dd.sign(x)
    np.testing.assert_array_equal(npy(acc.jvp(y)), [0.0, 0.0, 0.0])


# ---- scans and products ----------------------------------------------------------------------

@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cumsum_and_cumprod_match_numpy(exclusive, reverse, axis):
    x = np.arange(1.0, 7.0).reshape(2, 3)

    def reference(scan, identity):
        v = np.flip(x, axis) if reverse else x
        out = scan(v, axis=axis)
        if exclusive:
            out = np.concatenate([np.full_like(np.take(out, [0], axis=axis), identity),
                                  np.delete(out, -1, axis=axis)], axis=axis)
        return np.flip(out, axis) if reverse else out

    kw = dict(axis=axis, exclusive=exclusive, reverse=reverse)
    np.testing.assert_allclose(npy(dd.cumsum(t64(x), **kw)), reference(np.cumsum, 0), **EXACT)
    np.testing.assert_allclose(npy(dd.cumprod(t64(x), **kw)), reference(np.cumprod, 1), **EXACT)


def test_scans_keep_integer_dtypes_and_check_the_axis():
    out = dd.cumsum(dd.constant([1, 2, 3]), exclusive=True)
    assert out.dtype == dd.int32
    np.testing.assert_array_equal(npy(out), [0, 1, 3])
    with pytest.raises(ValueError, match="out of range"):
        dd.cumsum(dd.constant([1.0, 2.0]), axis=1)
    with pytest.raises(ValueError, match="rank >= 1"):
        dd.cumprod(dd.constant(2.0))
    with pytest.raises(TypeError, match="numeric"):
        dd.cumsum(dd.constant([True, False]))
    assert dd.cumsum(dd.zeros((0, 2)), axis=0, exclusive=True).shape == (0, 2)


def test_reduce_prod_values_and_gradient_exact_at_zeros():
    x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.5, 2.0, 4.0]])
    np.testing.assert_array_equal(npy(dd.reduce_prod(t64(x), axis=1)), np.prod(x, axis=1))
    assert dd.reduce_prod(t64(x), axis=0, keepdims=True).shape == (1, 3)
    # the product of the other elements: no 0/0 where an element is 0
    g = npy(grad_of(lambda t: dd.reduce_prod(t, axis=1), t64(x)))
    np.testing.assert_array_equal(g, [[0.0, 6.0, 0.0], [0.0, 0.0, 0.0], [8.0, 6.0, 3.0]])
    assert not np.any(np.isnan(g))
    np.testing.assert_array_equal(npy(dd.reduce_prod(dd.constant([[2, 3], [4, 5]]))), 120)


# ---- einsum ----------------------------------------------------------------------------------

@pytest.mark.parametrize("equation, shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ii->i", [(3, 3)]),
    ("iii->i", [(3, 3, 3)]),
    ("ii", [(3, 3)]),
    ("ij->", [(2, 3)]),
    ("bij,bkj->bik", [(2, 2, 3), (2, 4, 3)]),
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (4, 3, 2)]),
    ("i,i", [(3,), (3,)]),
    ("ba", [(2, 3)]),
    ("i j , j k -> i k", [(2, 3), (3, 4)]),
])
def test_einsum_matches_numpy(equation, shapes):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s) for s in shapes]
    out = dd.einsum(equation, *[t64(x) for x in xs])
    expected = np.einsum(equation.replace(" ", ""), *xs)
    assert out.shape == expected.shape and out.dtype == dd.float64
    np.testing.assert_allclose(npy(out), expected, **EXACT)


def test_einsum_gradient_of_a_trace_is_the_identity():
    x = t64(np.arange(9.0).reshape(3, 3))
    np.testing.assert_array_equal(npy(grad_of(lambda t: dd.einsum("ii", t), x)), np.eye(3))


def test_einsum_refuses_bad_equations():
    a, b = dd.ones((2, 3)), dd.ones((4, 5))
    with pytest.raises(ValueError, match="lengths 3 and 4"):
        dd.einsum("ij,jk->ik", a, b)
    with pytest.raises(ValueError, match="names 2 operands, got 1"):
        dd.einsum("ij,jk->ik", a)
    with pytest.raises(ValueError, match="do not fit"):
        dd.einsum("ijk->i", a)
    with pytest.raises(ValueError, match="name no input axis"):
        dd.einsum("ij->z", a)
    with pytest.raises(ValueError, match="repeats"):
        dd.einsum("ij->ii", a)
    with pytest.raises(ValueError, match="must name them with '...'"):
        dd.einsum("...ij->ij", dd.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="invalid subscript"):
        dd.einsum("i1->i", dd.ones((2, 2)))
    with pytest.raises(TypeError, match="different dtypes"):
        dd.einsum("i,i->", dd.ones(2), t64([1.0, 2.0]))


# ---- gathers ---------------------------------------------------------------------------------

def test_gather_shapes_follow_tensorflow():
    x = np.arange(24.0).reshape(2, 3, 4)
    tx = t64(x)
    idx = np.array([[0, 2], [1, 1]])
    assert dd.gather(tx, 1).shape == (3, 4)
    np.testing.assert_array_equal(npy(dd.gather(tx, [1, 0], axis=0)), x[[1, 0]])
    np.testing.assert_array_equal(npy(dd.gather(tx, idx, axis=2)), np.take(x, idx, axis=2))
    np.testing.assert_array_equal(npy(dd.gather(tx, idx, axis=-1)), np.take(x, idx, axis=2))
    batched = dd.gather(tx, idx, axis=2, batch_dims=1)
    assert batched.shape == (2, 3, 2)
    np.testing.assert_array_equal(npy(batched), np.stack([np.take(x[b], idx[b], axis=1)
                                                          for b in range(2)]))
    ib = np.array([[2, 0, 1], [0, 0, 2]])
    by_axis1 = dd.gather(tx, ib, batch_dims=1)  # axis defaults to batch_dims
    np.testing.assert_array_equal(npy(by_axis1), np.stack([x[b][ib[b]] for b in range(2)]))


def test_gather_out_of_range_or_negative_indices_raise():
    x = dd.constant([1.0, 2.0, 3.0])
    with pytest.raises(IndexError, match="index 3 is out of range"):
        dd.gather(x, [0, 3])
    with pytest.raises(IndexError, match=r"index -1 is out of range \[0, 3\)"):
        dd.gather(x, [-1])
    with pytest.raises(IndexError, match="out of range"):
        dd.gather(x, 2 ** 62)
    with pytest.raises(IndexError, match="18446744073709551615 is out of range"):
        dd.gather(x, np.array([2 ** 64 - 1], dtype=np.uint64))  # not wrapped to -1
    with pytest.raises(TypeError, match="integers"):
        dd.gather(x, [0.5])
    with pytest.raises(ValueError, match="batch axes"):
        dd.gather(dd.zeros((2, 3)), np.zeros((3, 1), dtype=np.int64), batch_dims=1)
    with pytest.raises(ValueError, match="axis"):
        dd.gather(x, [0], axis=1)


def test_gather_gradient_sums_repeats_and_ignores_later_changes_to_the_indices():
    x = t64([1.0, 2.0, 3.0])
    idx = np.array([2, 0, 2])
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.reduce_sum(dd.gather(x, idx))
    idx[:] = 1  # the caller's array changes after the op: the record must not
    np.testing.assert_array_equal(npy(tape.gradient(y, x)), [1.0, 0.0, 2.0])


def test_gather_nd_values_and_errors():
    x = np.arange(24.0).reshape(2, 3, 4)
    tx = t64(x)
    np.testing.assert_array_equal(npy(dd.gather_nd(tx, [[0, 1], [1, 2]])), x[[0, 1], [1, 2]])
    np.testing.assert_array_equal(npy(dd.gather_nd(tx, [[1]])), x[[1]])
    np.testing.assert_array_equal(npy(dd.gather_nd(tx, [1, 2, 3])), x[1, 2, 3])
    out = dd.gather_nd(tx, [[[0, 3]], [[2, 1]]], batch_dims=1)
    np.testing.assert_array_equal(npy(out), [[x[0, 0, 3]], [x[1, 2, 1]]])
    with pytest.raises(IndexError, match="out of range"):
        dd.gather_nd(tx, [[0, 3]])
    with pytest.raises(IndexError, match="out of range"):
        dd.gather_nd(tx, [[-1, 0]])
    with pytest.raises(ValueError, match="index tuples of length 4"):
        dd.gather_nd(tx, [[0, 0, 0, 0]])


def test_boolean_mask_values_and_errors():
    x = np.arange(12.0).reshape(2, 3, 2)
    m = np.array([[True, False, True], [False, False, True]])
    np.testing.assert_array_equal(npy(dd.boolean_mask(t64(x), m)), x[m])
    m1 = np.array([False, True, True])
    np.testing.assert_array_equal(npy(dd.boolean_mask(t64(x), m1, axis=1)), x[:, m1])
    with pytest.raises(ValueError, match="does not match"):
        dd.boolean_mask(t64(x), [True, False, True])
    with pytest.raises(TypeError, match="bool"):
        dd.boolean_mask(t64(x), [1, 0])


# ---- segments --------------------------------------------------------------------------------

def test_segment_sums_match_tensorflows_examples():
    c = dd.constant([[1, 2, 3, 4], [5, 6, 7, 8], [4, 3, 2, 1]])
    np.testing.assert_array_equal(npy(dd.unsorted_segment_sum(c, [0, 1, 0], 2)),
                                  [[5, 5, 5, 5], [5, 6, 7, 8]])
    np.testing.assert_array_equal(npy(dd.segment_sum(c, [0, 0, 1])),
                                  [[6, 8, 10, 12], [4, 3, 2, 1]])
    # a negative id drops its row; an id past the end of the sorted ids leaves zeros between
    np.testing.assert_array_equal(npy(dd.unsorted_segment_sum(c, [-1, 1, 1], 3)),
                                  [[0, 0, 0, 0], [9, 9, 9, 9], [0, 0, 0, 0]])
    assert dd.segment_sum(c, [0, 2, 2]).shape == (3, 4)
    assert dd.unsorted_segment_sum(c, [0, 1, 0], 2).dtype == dd.int32


def test_segment_ids_out_of_range_or_unsorted_raise():
    x = dd.constant([1.0, 2.0, 3.0])
    with pytest.raises(IndexError, match="segment id 2 is out of range"):
        dd.unsorted_segment_sum(x, [0, 2, 1], 2)
    with pytest.raises(ValueError, match="sorted"):
        dd.segment_sum(x, [1, 0, 1])
    with pytest.raises(ValueError, match="sorted and non-negative"):
        dd.segment_sum(x, [-1, 0, 0])
    with pytest.raises(ValueError, match="match the leading axes"):
        dd.unsorted_segment_sum(x, [0, 1], 2)


# ---- slicing, splitting, padding, tiling ----------------------------------------------------

def test_slice_split_unstack_values_and_errors():
    x = np.arange(12.0).reshape(3, 4)
    tx = t64(x)
    np.testing.assert_array_equal(npy(dd.slice(tx, [1, 1], [2, -1])), x[1:3, 1:])
    assert dd.slice(tx, [3, 4], [0, 0]).shape == (0, 0)
    with pytest.raises(ValueError, match="outside axis 1"):
        dd.slice(tx, [0, 2], [1, 3])
    with pytest.raises(ValueError, match="one entry per axis"):
        dd.slice(tx, [0], [1])
    parts = dd.split(tx, 2, axis=1)
    assert [p.shape for p in parts] == [(3, 2), (3, 2)]
    np.testing.assert_array_equal(npy(parts[1]), x[:, 2:])
    parts = dd.split(tx, [1, -1, 1], axis=1)
    assert [p.shape for p in parts] == [(3, 1), (3, 2), (3, 1)]
    with pytest.raises(ValueError, match="do not divide"):
        dd.split(tx, 3, axis=1)
    with pytest.raises(ValueError, match="do not add up"):
        dd.split(tx, [1, 1], axis=1)
    with pytest.raises(ValueError, match="one -1"):
        dd.split(tx, [-1, -1], axis=1)
    rows = dd.unstack(tx)
    assert len(rows) == 3 and rows[2].shape == (4,)
    np.testing.assert_array_equal(npy(dd.unstack(tx, axis=-1)[3]), x[:, 3])
    with pytest.raises(ValueError, match="num=2"):
        dd.unstack(tx, num=2)


@pytest.mark.parametrize("mode", ["CONSTANT", "reflect", "SYMMETRIC"])
def test_pad_matches_numpy(mode):
    x = np.arange(6.0).reshape(2, 3)
    paddings = [[1, 1], [2, 1]]
    kw = {"constant_values": 2.5} if mode == "CONSTANT" else {}
    expected = np.pad(x, paddings, mode=mode.lower(), **kw)
    out = dd.pad(t64(x), paddings, mode, **kw)
    np.testing.assert_array_equal(npy(out), expected)


def test_pad_refuses_bad_paddings():
    x = dd.constant([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="exceeds 2"):
        dd.pad(x, [[3, 0]], "REFLECT")
    with pytest.raises(ValueError, match="exceeds 3"):
        dd.pad(x, [[0, 4]], "SYMMETRIC")
    with pytest.raises(ValueError, match="non-negative"):
        dd.pad(x, [[-1, 0]])
    with pytest.raises(ValueError, match=r"shape \(1, 2\)"):
        dd.pad(x, [[1, 1], [1, 1]])
    with pytest.raises(ValueError, match="mode"):
        dd.pad(x, [[1, 1]], "WRAP")


def test_tile_matches_numpy_and_checks_multiples():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(npy(dd.tile(t64(x), [2, 3])), np.tile(x, (2, 3)))
    assert dd.tile(t64(x), [0, 1]).shape == (0, 3)
    with pytest.raises(ValueError, match="one non-negative entry per axis"):
        dd.tile(t64(x), [2])


# ---- creation --------------------------------------------------------------------------------

def test_one_hot_follows_tensorflow():
    out = dd.one_hot([0, 2, -1, 5], 3)
    assert out.dtype == dd.float32 and out.shape == (4, 3)
    np.testing.assert_array_equal(npy(out), [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]])
    out = dd.one_hot([[1], [0]], 2, on_value=5, off_value=-1, axis=0)
    assert out.dtype == dd.int32 and out.shape == (2, 2, 1)
    np.testing.assert_array_equal(npy(out)[:, :, 0], [[-1, 5], [5, -1]])
    with pytest.raises(TypeError, match="integers"):
        dd.one_hot([0.5], 2)


def test_eye_linspace_fill():
    np.testing.assert_array_equal(npy(dd.eye(2, 3)), np.eye(2, 3))
    assert dd.eye(2, batch_shape=[4]).shape == (4, 2, 2) and dd.eye(2).dtype == dd.float32
    np.testing.assert_allclose(npy(dd.linspace(t64(0.0), 1.0, 5)), np.linspace(0, 1, 5), **EXACT)
    out = dd.linspace(t64([0.0, 10.0]), t64([1.0, 20.0]), 3, axis=-1)
    np.testing.assert_allclose(npy(out), [[0, 0.5, 1], [10, 15, 20]], **EXACT)
    np.testing.assert_array_equal(npy(dd.linspace(t64(3.0), 4.0, 1)), [3.0])
    with pytest.raises(TypeError, match="expected a float tensor, got int32"):
        dd.linspace(dd.constant(0), 1, 3)
    with pytest.raises(ValueError, match="num must be >= 1"):
        dd.linspace(0.0, 1.0, 0)
    np.testing.assert_array_equal(npy(dd.fill((2, 2), 3.0)), np.full((2, 2), 3.0))
    with pytest.raises(ValueError, match="scalar"):
        dd.fill((2,), dd.constant([1.0, 2.0]))


def test_fill_with_a_tensor_value_is_differentiable_as_in_tensorflow():
    v = t64(2.0)
    g = grad_of(lambda t: dd.fill((2, 3), t), v)
    assert g is not None and float(g) == 6.0


def test_linspace_gradient_flows_to_start_and_stop():
    a, b = t64(1.0), t64(3.0)
    with dd.GradientTape() as tape:
        tape.watch([a, b])
        y = dd.reduce_sum(dd.linspace(a, b, 5))
    ga, gb = tape.gradient(y, [a, b])
    np.testing.assert_allclose([float(ga), float(gb)], [2.5, 2.5], **EXACT)


def test_is_tensor_and_newaxis():
    assert dd.is_tensor(dd.constant(1.0)) and dd.is_tensor(dd.Variable(1.0))
    assert not dd.is_tensor(np.ones(2)) and not dd.is_tensor(1.0)
    assert dd.newaxis is None
    assert dd.constant([1.0, 2.0])[dd.newaxis].shape == (1, 2)


# ---- hostile use: compiled functions, threads, pickles ---------------------------------------

def test_new_ops_trace_into_a_function_and_replay_the_same_values():
    idx = np.array([1, 0, 1])

    def f(x):
        g = dd.gather(x, idx)
        return dd.reduce_sum(dd.cumprod(g, axis=0) * dd.pad(g, [[1, 0], [0, 0]])[1:]
                             + dd.einsum("ij->j", dd.tile(x, [1, 2]))[0])

    x = t64(np.arange(1.0, 7.0).reshape(2, 3))
    fn = dd.function(f)
    eager = float(f(x))
    assert float(fn(x)) == eager
    assert float(fn(x)) == eager  # replayed, not retraced


def test_gathers_from_threads_are_independent():
    x = t64(np.arange(100.0))
    errors = []

    def work(k):
        try:
            for _ in range(50):
                idx = np.full(3, k)
                g = grad_of(lambda t: dd.gather(t, idx), x)
                assert npy(g)[k] == 3.0 and npy(g).sum() == 3.0
        except Exception as e:  # reported to the main thread below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_results_of_new_ops_pickle_to_equal_tensors():
    for out in (dd.gather(dd.constant([1.0, 2.0]), [1, 1]),
                dd.einsum("i,i->", dd.ones(2), dd.ones(2)),
                dd.one_hot([1], 2), dd.cumsum(dd.constant([1, 2]))):
        back = pickle.loads(pickle.dumps(out))
        assert back.dtype == out.dtype
        np.testing.assert_array_equal(npy(back), npy(out))


def test_tensorflow_range_gives_tensors_of_tensorflows_dtypes():
    # dualad.range is dualad.function's loop helper; TensorFlow's tensor range is ops.range_
    out = dd.ops.range_(5)
    assert out.dtype == dd.int32
    np.testing.assert_array_equal(npy(out), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(npy(dd.ops.range_(1, 10, 3)), [1, 4, 7])
    np.testing.assert_array_equal(npy(dd.ops.range_(5, 1, -2)), [5, 3])
    out = dd.ops.range_(0.0, 1.0, 0.25)
    assert out.dtype == dd.float32
    np.testing.assert_array_equal(npy(out), [0, 0.25, 0.5, 0.75])
    assert dd.ops.range_(3, dtype=dd.float64).dtype == dd.float64
    assert dd.ops.range_(t64(2.0)).dtype == dd.float64  # a Tensor argument's dtype
    with pytest.raises(ValueError, match="delta"):
        dd.ops.range_(0, 3, 0)
    with pytest.raises(ValueError, match="too many"):
        dd.ops.range_(0, 2 ** 40)


def _cumprod_jacobian(x, exclusive, reverse):
    """J[i, k] = product of x_j over the j that y_i multiplies, j != k (0 if k is not one)."""
    n = len(x)
    J = np.zeros((n, n))
    for i in range(n):
        terms = [j for j in range(n) if (j > i if reverse else j < i) or (j == i and not exclusive)]
        for k in terms:
            J[i, k] = np.prod([x[j] for j in terms if j != k])
    return J


@pytest.mark.parametrize("exclusive", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumprod_jacobians_are_exact_at_zeros_on_a_long_axis(exclusive, reverse):
    # length 9: four rounds of the doubling recurrence; zeros where a division would give 0/0
    x = np.array([1.5, 0.0, 2.0, -1.0, 0.0, 0.5, 3.0, 0.0, -2.0])
    f = lambda t: dd.cumprod(t, exclusive=exclusive, reverse=reverse)
    expected = _cumprod_jacobian(x, exclusive, reverse)
    np.testing.assert_allclose(npy(dd.jacrev(f)(t64(x))), expected, **EXACT)
    np.testing.assert_allclose(npy(dd.jacfwd(f)(t64(x))), expected, **EXACT)


def test_reduce_prod_hessian_is_exact_at_zeros():
    # d2 prod / dx_i dx_j = product of the elements other than i and j
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    expected = np.array([[0.0 if i == j else np.prod(np.delete(x, [i, j])) for j in range(5)]
                         for i in range(5)])
    h = npy(dd.hessian(dd.reduce_prod)(t64(x)))
    np.testing.assert_array_equal(h, expected)
