"""softmax and log_softmax take the maximum over their last axis from a loop in the core
(numpy's reduction over a short last axis costs ~100 ns a row: W7's 128x10 logits): numpy's
bits, and numpy itself wherever the order of comparison could show (a NaN in a row, a zero
maximum: NaN payloads, the sign of a zero)."""
import numpy as np
import pytest

import dualad as dd
from dualad import _core, rules

DTYPES = [np.float64, np.float32]


def numpy_max(x):
    return np.maximum.reduce(x, axis=-1, keepdims=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("shape", [(1,), (7,), (128, 10), (3, 1), (2, 3, 5), (4, 33)])
def test_numpys_bits(shape, dtype):
    x = np.random.default_rng(len(shape)).normal(size=shape).astype(dtype)
    if x.size > 2:
        x.reshape(-1)[::3] = -np.inf
    got = _core._last_axis_max(x)
    expected = numpy_max(x)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert got.tobytes() == expected.tobytes()
    assert got.flags.c_contiguous and got.flags.writeable


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_ties_and_infinities(dtype):
    x = np.array([[2.0, 2.0, 1.0], [-np.inf, -np.inf, -np.inf], [np.inf, 1.0, np.inf],
                  [-3.0, -1.0, -1.0]], dtype=dtype)
    assert _core._last_axis_max(x).tobytes() == numpy_max(x).tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("row", [[0.0, -0.0], [-0.0, 0.0], [-0.0, -1.0], [1.0, np.nan],
                                 [np.nan, 1.0], [-np.inf, np.nan]])
def test_left_to_numpy(row, dtype):
    # a zero maximum (which zero numpy keeps depends on its order) or a NaN (which payload)
    x = np.array([[1.0, 2.0], row], dtype=dtype)
    assert _core._last_axis_max(x) is None


@pytest.mark.parametrize("x", [
    np.ones((3, 4))[:, ::2],                        # not C-ordered
    np.ones((0, 3)), np.ones((3, 0)),               # empty (numpy: an empty result, an error)
    np.ones((3, 4), dtype=np.float16), np.ones((3, 4), dtype=np.int64),
    np.ones((3, 4), dtype=">f8"),                   # byte-swapped
    np.float64(1.0), np.ones(()), [1.0, 2.0], np.ones((1,) * 33)])
def test_other_arrays_are_left_to_numpy(x):
    assert _core._last_axis_max(x) is None


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("impl", [rules._log_softmax_impl, rules._softmax_impl])
def test_softmaxes_keep_numpys_bits(impl, dtype):
    # the impls as they were, with numpy's reduction: the same bits, NaN and zero rows included
    x = np.random.default_rng(3).normal(size=(6, 5)).astype(dtype)
    x[1] = 0.0
    x[2, 1] = -0.0
    x[3, 2] = np.nan
    x[4] = [-np.inf, 0.5, 0.5, -np.inf, 0.25]
    for axis in (-1, 1, 0):
        shifted = x - np.maximum.reduce(x, axis=axis, keepdims=True)
        if impl is rules._log_softmax_impl:
            expected = shifted - np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True))
        else:
            z = np.exp(shifted)
            expected = z / np.add.reduce(z, axis=axis, keepdims=True)
        with np.errstate(all="ignore"):
            got = impl(x, axis=axis)
        assert got.tobytes() == expected.tobytes()


def test_log_softmax_op():
    x = np.random.default_rng(4).normal(size=(128, 10)).astype(np.float32)
    got = np.asarray(dd.nn.log_softmax(dd.constant(x)))
    shifted = x - x.max(axis=1, keepdims=True)
    assert got.tobytes() == (shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))).tobytes()
