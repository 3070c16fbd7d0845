"""Long chains: the tape is a linear record swept iteratively, so differentiating a
1,000,000-op chain needs no recursion, and nested tapes handle long chains too."""
import gc
import math

import numpy as np

import dualad as dd


def affine_chain(x, n, a, b):
    """n/2 repetitions of y = y * a + b: dy/dx = a ** (n/2)."""
    y = x
    for _ in range(n // 2):
        y = y * a + b
    return y


def test_million_op_chain_differentiates():
    n, a = 1_000_000, 1.0000001
    x = dd.constant(0.5, dtype=dd.float64)
    ca, cb = dd.constant(a, dtype=dd.float64), dd.constant(1e-7, dtype=dd.float64)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = affine_chain(x, n, ca, cb)
    g = tape.gradient(y, x)
    assert math.isclose(float(g), a ** (n // 2), rel_tol=1e-9)
    del tape, y
    gc.collect()


def test_long_array_chain_and_its_second_derivative():
    n = 100_000
    x = dd.constant(np.array([0.3, -0.2]))
    with dd.GradientTape() as outer:
        outer.watch(x)
        with dd.GradientTape() as inner:
            inner.watch(x)
            y = x
            for _ in range(n // 2):
                y = y * 0.99999 + 1e-6
            z = dd.reduce_sum(y * y)
        dz = inner.gradient(z, x)
    d2 = outer.gradient(dz, x)
    # z = sum((c x + d)^2) with c = 0.99999**(n/2): dz/dx = 2c(cx + d), d2z/dx2 = 2c^2
    c = 0.99999 ** (n // 2)
    np.testing.assert_allclose(d2.numpy(), 2 * c * c, rtol=1e-9)
    np.testing.assert_allclose(dz.numpy(), 2 * c * y.numpy(), rtol=1e-9)
