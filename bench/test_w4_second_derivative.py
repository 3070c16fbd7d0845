"""W4: the nested second derivative of x³ at a scalar (x = 2.0, float64): d²/dx² x³ = 6x = 12.

Floor: the pure-Python evaluation of x ** 3; the target (TARGETS below) judges dualad's nested
GradientTapes against it."""
import numpy as np
import pytest

import dualad as dd
from bench.common import (Suite, assert_close, need_autograd, need_jax, need_tf, need_torch)
from bench.report.targets import RatioAtMost

X0 = 2.0
W4 = Suite("W4", "W4: nested second derivative of x³ (float64)", floor="floor-python-forward",
           judged="dualad-nested-tapes")
TARGETS = [RatioAtMost(W4, 20, "≤ {limit}× the pure-Python evaluation of x³")]


def cube(x):
    return x ** 3


@W4.add("floor-python-forward", "floor")
def _(p):
    return lambda: cube(X0)


@W4.add("dualad-nested-tapes", "dualad")
def _(p):
    x = dd.constant(np.float64(X0))

    def run():
        with dd.GradientTape() as outer:
            outer.watch(x)
            with dd.GradientTape() as inner:
                inner.watch(x)
                y = x ** 3
            dy_dx = inner.gradient(y, x)
        return outer.gradient(dy_dx, x)
    return run


@W4.add("dualad-derivative", "dualad")
def _(p):
    x = dd.constant(np.float64(X0))
    d2 = dd.derivative(cube, order=2)
    return lambda: d2(x)


@W4.add("tensorflow", "peer")
def _(p):
    tf = need_tf()
    x = tf.constant(X0, dtype=tf.float64)

    def run():
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = x ** 3
            dy_dx = inner.gradient(y, x)
        return outer.gradient(dy_dx, x)
    return run


@W4.add("torch", "peer")
def _(p):
    torch = need_torch()
    x = torch.tensor(X0, dtype=torch.float64, requires_grad=True)

    def run():
        y = x ** 3
        (dy_dx,) = torch.autograd.grad(y, x, create_graph=True)
        return torch.autograd.grad(dy_dx, x)[0]
    return run


@W4.add("jax-eager", "peer")
def _(p):
    jax, jnp = need_jax()
    x, d2 = jnp.asarray(X0), jax.grad(jax.grad(cube))
    return lambda: d2(x)


@W4.add("jax-jit", "peer-jit")
def _(p):
    jax, jnp = need_jax()
    x, d2 = jnp.asarray(X0), jax.jit(jax.grad(jax.grad(cube)))
    return lambda: d2(x).block_until_ready()


@W4.add("autograd", "peer")
def _(p):
    autograd, anp = need_autograd()
    d2 = autograd.grad(autograd.grad(cube))
    return lambda: d2(X0)


W4.skip("micrograd", "peer", "micrograd has no higher-order derivatives (its backward "
        "accumulates plain floats, not Values)")


@pytest.mark.parametrize("impl", W4.names())
def test_w4(benchmark, impl):
    expected = X0 ** 3 if impl.startswith("floor") else 6 * X0
    W4.run(benchmark, impl, None, lambda got: assert_close(got, expected, rtol=1e-15))
