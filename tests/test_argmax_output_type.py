"""argmax/argmin take TensorFlow's output_type: int64 by default, int32 allowed, any other
dtype a TypeError naming it."""
import numpy as np
import pytest

import dualad as dd

X = np.array([[1.0, 7.0, 3.0], [9.0, 2.0, 2.5]])


@pytest.mark.parametrize("fn, reference", [(dd.argmax, np.argmax), (dd.argmin, np.argmin),
                                           (dd.math.argmax, np.argmax)])
@pytest.mark.parametrize("output_type, expected_dtype", [
    (dd.int64, np.int64), (dd.int32, np.int32), ("int32", np.int32), (np.int64, np.int64)])
def test_output_type_sets_the_index_dtype(fn, reference, output_type, expected_dtype):
    out = fn(dd.constant(X), axis=1, output_type=output_type)
    assert out.dtype == expected_dtype
    np.testing.assert_array_equal(out.numpy(), reference(X, axis=1))


@pytest.mark.parametrize("fn", [dd.argmax, dd.argmin])
def test_the_default_output_type_is_int64(fn):
    assert fn(dd.constant(X)).dtype == np.int64


@pytest.mark.parametrize("fn", [dd.argmax, dd.argmin])
@pytest.mark.parametrize("bad", [dd.float32, dd.int16, "uint8", dd.bool, None, "bogus", 3])
def test_other_output_types_are_a_type_error(fn, bad):
    with pytest.raises(TypeError, match="output_type must be int32 or int64"):
        fn(dd.constant(X), axis=0, output_type=bad)
