"""W3: the gradient of a chain of 100 scalar primitive ops (sin, multiply, add mixed), float64.

Floor: the same chain evaluated on Python floats (the target below bounds dualad's gradient by a
multiple of that forward evaluation: the cheap-gradient bound taken against Python itself). The hand-written
pure-Python reverse sweep is the reference value and a second floor row. The dualad-jvp row
is forward mode over the same chain, judged against the reverse-mode gradient."""
import math

import numpy as np
import pytest

import dualad as dd
from bench.common import (Suite, assert_close, chain, chain_python_gradient, need_autograd,
                          need_jax, need_micrograd, need_tf, need_torch)
from bench.report.targets import RatioAtMost

LENGTH = 100
X0 = 0.5
W3 = Suite("W3", "W3: gradient of a 100-op scalar chain (float64)", floor="floor-python-forward",
           judged="dualad-gradient", ops=LENGTH)
TARGETS = [RatioAtMost(W3, 3, "gradient ≤ {limit}× the pure-Python forward evaluation"),
           RatioAtMost(W3, 1, "forward-mode derivative (ForwardAccumulator) ≤ {limit}× the "
                       "reverse-mode gradient of the same chain", impl="dualad-jvp",
                       reference="dualad-gradient")]


@W3.add("floor-python-forward", "floor")
def _(p):
    return lambda: chain(X0, LENGTH, math.sin)


@W3.add("floor-python-gradient", "floor")
def _(p):
    return lambda: chain_python_gradient(X0, LENGTH)[1]


@W3.add("dualad-gradient", "dualad")
def _(p):
    x = dd.constant(np.float64(X0))

    def run():
        with dd.GradientTape() as tape:
            tape.watch(x)
            y = chain(x, LENGTH, dd.sin)
        return tape.gradient(y, x)
    return run


@W3.add("dualad-jvp", "dualad")
def _(p):
    # forward mode over the same chain: one tangent pushed along, no record
    x = dd.constant(np.float64(X0))
    one = dd.constant(np.float64(1.0))

    def run():
        with dd.ForwardAccumulator(x, one) as acc:
            y = chain(x, LENGTH, dd.sin)
        return acc.jvp(y)
    return run


@W3.add("dualad-forward", "dualad")
def _(p):
    x = dd.constant(np.float64(X0))
    return lambda: chain(x, LENGTH, dd.sin)


@W3.add("tensorflow", "peer")
def _(p):
    tf = need_tf()
    x = tf.constant(X0, dtype=tf.float64)

    def run():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = chain(x, LENGTH, tf.sin)
        return tape.gradient(y, x)
    return run


@W3.add("torch", "peer")
def _(p):
    torch = need_torch()
    x = torch.tensor(X0, dtype=torch.float64, requires_grad=True)

    def run():
        y = chain(x, LENGTH, torch.sin)
        return torch.autograd.grad(y, x)[0]
    return run


@W3.add("jax-eager", "peer")
def _(p):
    jax, jnp = need_jax()
    x = jnp.asarray(X0, dtype=jnp.float64)
    g = jax.grad(lambda x: chain(x, LENGTH, jnp.sin))
    return lambda: g(x)


@W3.add("jax-jit", "peer-jit")
def _(p):
    jax, jnp = need_jax()
    x = jnp.asarray(X0, dtype=jnp.float64)
    g = jax.jit(jax.grad(lambda x: chain(x, LENGTH, jnp.sin)))
    return lambda: g(x).block_until_ready()


@W3.add("autograd", "peer")
def _(p):
    autograd, anp = need_autograd()
    g = autograd.grad(lambda x: chain(x, LENGTH, anp.sin))
    return lambda: g(X0)


W3.skip("micrograd", "peer", "micrograd's Value has no sin (only +, *, **, relu)")


@pytest.mark.parametrize("impl", W3.names())
def test_w3(benchmark, impl):
    value, gradient = chain_python_gradient(X0, LENGTH)
    expected = value if impl.endswith("forward") else gradient
    W3.run(benchmark, impl, None, lambda got: assert_close(got, expected, rtol=1e-12))
