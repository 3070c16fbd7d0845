"""erf of float32/float64 arrays runs one C loop (libc's erf, which math.erf calls): results
bit-equal to math.erf element by element (rounded to float32 for float32), no Python float per
element, derivatives unchanged."""
import math
import tracemalloc

import numpy as np
import pytest

import dualad as dd
from dualad import rules

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 5e-324, -5e-324, 1e-310, 1e308,
           -1e308, 6.0, -6.0, 0.5, -0.5, 1e-8, 3.0]


def _reference(a):
    """math.erf per element, rounded to a's dtype (what erf gave before)."""
    flat = [math.erf(float(v)) for v in a.reshape(-1)]
    return np.array(flat, dtype=np.float64).astype(a.dtype).reshape(a.shape)


def _bits(a):
    return a.view(np.uint64 if a.dtype == np.float64 else np.uint32)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_erf_is_bit_equal_to_math_erf(dtype):
    rng = np.random.default_rng(3)
    with np.errstate(over="ignore"):    # 1e308 becomes inf in float32
        values = np.concatenate([rng.normal(0, 3, 20000), rng.uniform(-1e-3, 1e-3, 2000),
                                 SPECIAL]).astype(dtype)
    got = np.asarray(rules.erf.impl(values))
    assert got.dtype == dtype and got.shape == values.shape
    np.testing.assert_array_equal(_bits(got), _bits(_reference(values)))


@pytest.mark.parametrize("make", [
    lambda: np.array(0.25),                                 # 0-d
    lambda: np.zeros((0, 3)),                               # empty
    lambda: np.arange(24.0).reshape(4, 6)[:, ::2] / 7,      # strided view
    lambda: np.asfortranarray(np.linspace(-2, 2, 12).reshape(3, 4)),
    lambda: np.linspace(-2, 2, 12, dtype=np.float32).reshape(2, 2, 3)[::-1],
], ids=["0d", "empty", "strided", "fortran", "reversed-f32"])
def test_erf_keeps_shape_and_values_of_any_layout(make):
    x = make()
    x.flags.writeable = False           # tensors hand the kernel read-only arrays
    got = np.asarray(rules.erf.impl(x))
    assert got.shape == x.shape and got.dtype == x.dtype
    np.testing.assert_array_equal(_bits(np.ascontiguousarray(got)),
                                  _bits(np.ascontiguousarray(_reference(x))))


def test_erf_makes_no_python_float_per_element():
    x = dd.constant(np.linspace(-3, 3, 1_000_000, dtype=np.float32))
    dd.erf(x[:10])                      # warm up
    tracemalloc.start()
    try:
        y = dd.erf(x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert y.shape == x.shape
    # the output itself is 4 MB; an object array with a float per element would be 32 MB
    assert peak < 6_000_000, f"erf allocated {peak} bytes at its peak"


def test_erf_tensor_values_and_derivatives_unchanged():
    xs = np.array([-2.0, -0.3, 0.0, 0.7, 1.9])
    x = dd.constant(xs, dtype=dd.float64)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.erf(x)
    np.testing.assert_array_equal(y.numpy(), _reference(xs))
    expected = 2 / math.sqrt(math.pi) * np.exp(-xs * xs)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), expected, rtol=1e-15)
    with dd.ForwardAccumulator(x, dd.ones_like(x)) as acc:
        y = dd.erf(x)
    np.testing.assert_allclose(acc.jvp(y).numpy(), expected, rtol=1e-15)
    # a float32 scalar takes the same kernel
    s = dd.constant(0.5)
    assert dd.erf(s).numpy() == np.float32(math.erf(np.float32(0.5)))
