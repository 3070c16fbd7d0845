"""Python ints that do not fit the tensor's dtype are an OverflowError, never a wrapped value,
wherever they enter: constants, nested lists, operands of ops, Variable assignments."""
import numpy as np
import pytest

import dualad as dd

pytestmark = pytest.mark.stress

INT_LIMITS = [(dtype, np.iinfo(dtype)) for dtype in
              (np.int8, np.int16, np.int32, np.int64, np.uint8)]


@pytest.mark.parametrize("dtype, info", INT_LIMITS, ids=lambda v: getattr(v, "__name__", ""))
def test_ints_out_of_range_of_the_dtype_raise_overflow_error(dtype, info):
    for fits in (int(info.min), int(info.max)):
        assert int(dd.constant(fits, dtype=dtype)) == fits
    for outside in (int(info.min) - 1, int(info.max) + 1, 2**200, -2**200):
        with pytest.raises(OverflowError):
            dd.constant(outside, dtype=dtype)
        with pytest.raises(OverflowError):
            dd.constant([1, outside, 2], dtype=dtype)
        t = dd.constant(np.array([1, 2], dtype=dtype))
        with pytest.raises(OverflowError):
            t + outside
        with pytest.raises(OverflowError):
            outside * t
        v = dd.Variable(np.array([1, 2], dtype=dtype))
        with pytest.raises(OverflowError):
            v.assign([outside, 0])
        assert np.array_equal(np.asarray(v), [1, 2]), "a failed assign changed the Variable"


def test_default_int_conversion_widens_like_tensorflow_and_refuses_what_int64_cannot_hold():
    # Python ints become int32, or int64 when int32 cannot hold them (TensorFlow's inference),
    # never a wrapped int32
    assert dd.constant(2**31 - 1).dtype == dd.int32
    for wide in (2**31, -2**31 - 1, 2**40, [0, 2**40]):
        for make in (dd.constant, dd.Variable):
            t = make(wide)
            assert t.dtype == dd.int64
            assert np.array_equal(np.asarray(t), np.asarray(wide, dtype=np.int64))
    for outside in (2**63, -2**63 - 1, [0, 2**63], 2**200):
        with pytest.raises(OverflowError):
            dd.constant(outside)
        with pytest.raises(OverflowError):
            dd.Variable(outside)
