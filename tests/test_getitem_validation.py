"""ops.getitem checks a key against x's shape without allocating anything of x's size, and
keeps the error it gave for every bad or hostile key (the message numpy gives for that key on
an array of x's shape, behind dualad's prefix)."""
import tracemalloc

import numpy as np
import pytest

import dualad as dd

SHAPE = (3, 4)

BAD_KEYS = [
    5, -4, (0, 4), (0, 0, 0),                       # out of range, too many indices
    10 ** 30, -(10 ** 30), (0, 2 ** 63), 2 ** 64,   # huge ints
    1.5, "a", (0, "x"), b"k", object(),             # wrong types
    np.array([0.5, 1.0]), np.array(["a"]),          # index arrays of the wrong dtype
    (Ellipsis, 0, Ellipsis), (Ellipsis, Ellipsis),  # Ellipsis twice
    np.array([True, False]),                        # masks of the wrong shape
    np.ones((3, 5), dtype=bool), (slice(None), np.array([True] * 5)),
    np.array([[0, 1], [2, 3]]) * 10,                # an index array out of range
    (np.array([0, 1]), np.array([0, 1, 2])),        # index arrays that do not broadcast
]


def _numpy_error(key):
    try:
        np.zeros(SHAPE)[key]
    except Exception as e:  # noqa: BLE001 - the reference error, whatever its type
        return e
    raise AssertionError(f"numpy accepts {key!r}")


@pytest.mark.parametrize("key", BAD_KEYS, ids=[repr(k)[:40] for k in BAD_KEYS])
def test_a_bad_key_gives_the_error_it_gave_before(key):
    x = dd.constant(np.zeros(SHAPE))
    expected = _numpy_error(key)
    with pytest.raises(Exception) as info:
        dd.ops.getitem(x, key)
    assert type(info.value) is type(expected)
    if isinstance(expected, IndexError):
        assert str(info.value) == (f"index {key!r} is invalid for a tensor of shape "
                                   f"{x.shape}: {expected}")
    else:
        assert str(info.value) == str(expected)


def test_checking_a_key_allocates_nothing_of_the_tensors_size():
    x = dd.zeros((4000, 4000), dd.float32)     # 16 M elements: a bool copy would be 16 MB
    dd.ops.getitem(x, (0, slice(0, 2)))         # warm up caches
    tracemalloc.start()
    try:
        out = dd.ops.getitem(x, (1, slice(0, 2)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (2,)
    assert peak < 1_000_000, f"indexing allocated {peak} bytes at its peak"
