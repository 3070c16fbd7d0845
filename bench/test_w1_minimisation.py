"""W1: the tutorial's scalar minimisation of a·x² + b·x + c (a=1, b=-2, c=1) with SGD at
learning rate 0.01 from x = 0, as in the "30 days" chapter (examples/minimization.py): x is a
float32 Variable, each step is tape + gradient + apply_gradients.

Two groups:
- W1: 1,000 eager steps. Floor: the hand-written pure-Python step (forward, hand-derived
  derivative 2ax + b, update) on Python floats.
- W1c: the 10,000-step loop compiled (dualad.function with dualad.range, as the chapter's
  tf.function with tf.range); the compiled steps must also give the same x as eager steps, to the last bit.
Targets: TARGETS below.
Peers: TensorFlow (GradientTape + keras SGD; compiled: the chapter's tf.function), PyTorch
(autograd + torch.optim.SGD), JAX (eager grad; jit of the step; compiled: jit of a fori_loop),
autograd, micrograd.
"""
import warnings

import numpy as np
import pytest

import dualad as dd
from bench.common import (Suite, assert_close, need_autograd, need_jax, need_micrograd, need_tf,
                          need_torch)
from bench.report.targets import PerIterationAtMost, RatioAtMost, SpeedupPerIterationAtLeast

A, B, C, LR = 1.0, -2.0, 1.0, 0.01
EAGER_STEPS, COMPILED_STEPS = 1000, 10000

W1 = Suite("W1", "W1: 1,000 eager SGD steps on a·x²+b·x+c (float32)", floor="floor-python-step",
           judged="dualad-eager", iterations=EAGER_STEPS)
W1c = Suite("W1c", "W1c: 10,000 compiled SGD steps on a·x²+b·x+c (float32)",
            floor="floor-python-step", judged="dualad-compiled", iterations=COMPILED_STEPS)
TARGETS = [
    RatioAtMost(W1, 10, "eager step ≤ {limit}× the hand-written pure-Python step"),
    PerIterationAtMost(W1c, 0.05, "compiled: ≤ {limit} µs per iteration"),
    SpeedupPerIterationAtLeast(W1c, 5, "compiled ≥ {limit}× faster per iteration than eager "
                               "dualad", baseline=W1),
]


def python_steps(steps):
    x = 0.0
    for _ in range(steps):
        y = A * x ** 2 + B * x + C      # noqa: F841 - the step evaluates the loss, as the others do
        dy_dx = 2 * A * x + B
        x = x - LR * dy_dx
    return x


def float32_steps(steps):
    """The reference: the same steps in numpy float32 (what x must be, to float32 rounding)."""
    f32 = np.float32
    x, a, b, lr = f32(0), f32(A), f32(B), f32(LR)
    for _ in range(steps):
        x = x - lr * (f32(2) * a * x + b)
    return x


for suite, steps in ((W1, EAGER_STEPS), (W1c, COMPILED_STEPS)):
    suite.add("floor-python-step", "floor")(lambda p, steps=steps: lambda: python_steps(steps))


# ---- dualad -----------------------------------------------------------------------------------

@W1.add("dualad-eager", "dualad")
def _(p):
    x = dd.Variable(0.0, dtype=dd.float32)
    a, b, c = dd.constant(A), dd.constant(B), dd.constant(C)
    opt = dd.optimizers.SGD(learning_rate=LR)

    def run():
        x.assign(0.0)
        for _ in range(EAGER_STEPS):
            with dd.GradientTape() as tape:
                y = a * dd.pow(x, 2) + b * x + c
            dy_dx = tape.gradient(y, x)
            opt.apply_gradients([(dy_dx, x)])
        return x.numpy()
    return run


def dualad_compiled():
    x = dd.Variable(0.0, dtype=dd.float32)
    opt = dd.optimizers.SGD(learning_rate=LR)

    @dd.function
    def minimize():
        a, b, c = dd.constant(A), dd.constant(B), dd.constant(C)
        for _ in dd.range(COMPILED_STEPS):
            with dd.GradientTape() as tape:
                y = a * dd.pow(x, 2) + b * x + c
            dy_dx = tape.gradient(y, x)
            opt.apply_gradients([(dy_dx, x)])
        return x

    def run():
        x.assign(0.0)
        minimize()
        return x.numpy()
    run.function = minimize
    return run


@W1c.add("dualad-compiled", "dualad")
def _(p):
    with warnings.catch_warnings():
        warnings.simplefilter("error", dd.FunctionFallbackWarning)  # must really compile
        run = dualad_compiled()
        run()
    return run


# ---- peers ------------------------------------------------------------------------------------

def tf_setup(tf):
    x = tf.Variable(0.0, dtype=tf.float32)
    a, b, c = tf.constant(A), tf.constant(B), tf.constant(C)
    opt = tf.keras.optimizers.SGD(learning_rate=LR)
    return x, a, b, c, opt


@W1.add("tensorflow", "peer")
def _(p):
    tf = need_tf()
    x, a, b, c, opt = tf_setup(tf)

    def run():
        x.assign(0.0)
        for _ in range(EAGER_STEPS):
            with tf.GradientTape() as tape:
                y = a * tf.pow(x, 2) + b * x + c
            dy_dx = tape.gradient(y, x)
            opt.apply_gradients([(dy_dx, x)])
        return x.numpy()
    return run


@W1c.add("tensorflow-function", "peer-jit")
def _(p):
    tf = need_tf()
    x, a, b, c, opt = tf_setup(tf)

    @tf.function
    def minimize():
        for _ in tf.range(COMPILED_STEPS):
            with tf.GradientTape() as tape:
                y = a * tf.pow(x, 2) + b * x + c
            dy_dx = tape.gradient(y, x)
            opt.apply_gradients([(dy_dx, x)])
        return x

    def run():
        x.assign(0.0)
        minimize()
        return x.numpy()
    return run


@W1.add("torch", "peer")
def _(p):
    torch = need_torch()
    x = torch.zeros((), dtype=torch.float32, requires_grad=True)
    opt = torch.optim.SGD([x], lr=LR)

    def run():
        with torch.no_grad():
            x.zero_()
        for _ in range(EAGER_STEPS):
            opt.zero_grad()
            y = A * x ** 2 + B * x + C
            y.backward()
            opt.step()
        return x
    return run


W1c.skip("torch", "peer-jit", "no compiled row for torch: it has no loop compiler like tf.function's "
         "tf.range or jax.lax.fori_loop (torch.compile would unroll the 10,000 Python iterations)")


def jax_loss(x):
    return A * x ** 2 + B * x + C


@W1.add("jax-eager", "peer")
def _(p):
    jax, jnp = need_jax()
    g = jax.grad(jax_loss)

    def run():
        x = jnp.zeros((), dtype=jnp.float32)
        for _ in range(EAGER_STEPS):
            x = x - LR * g(x)
        return x
    return run


@W1.add("jax-jit-step", "peer-jit")
def _(p):
    jax, jnp = need_jax()
    step = jax.jit(lambda x: x - LR * jax.grad(jax_loss)(x))

    def run():
        x = jnp.zeros((), dtype=jnp.float32)
        for _ in range(EAGER_STEPS):
            x = step(x)
        return x.block_until_ready()
    return run


@W1c.add("jax-jit", "peer-jit")
def _(p):
    jax, jnp = need_jax()
    loop = jax.jit(lambda x: jax.lax.fori_loop(
        0, COMPILED_STEPS, lambda i, x: x - LR * jax.grad(jax_loss)(x), x))
    x0 = jnp.zeros((), dtype=jnp.float32)
    return lambda: loop(x0).block_until_ready()


@W1.add("autograd", "peer")
def _(p):
    autograd, anp = need_autograd()
    g = autograd.grad(jax_loss)

    def run():
        x = np.float32(0.0)
        for _ in range(EAGER_STEPS):
            x = x - np.float32(LR) * g(x)
        return x
    return run


@W1.add("micrograd", "peer")
def _(p):
    Value = need_micrograd()

    def run():
        x = Value(0.0)
        for _ in range(EAGER_STEPS):
            y = A * x ** 2 + B * x + C
            y.backward()
            x = Value(x.data - LR * x.grad)
        return x
    return run


@pytest.mark.parametrize("impl", W1.names())
def test_w1(benchmark, impl):
    expected = python_steps(EAGER_STEPS)
    W1.run(benchmark, impl, None, lambda got: assert_close(got, expected, rtol=0, atol=1e-5))


@pytest.mark.parametrize("impl", W1c.names())
def test_w1c(benchmark, impl):
    expected = python_steps(COMPILED_STEPS)
    W1c.run(benchmark, impl, None, lambda got: assert_close(got, expected, rtol=0, atol=1e-5))


def test_w1_dualad_compiled_equals_eager_bit_for_bit():
    """The compiled 10,000-step loop gives the same float32 x as eager steps."""
    run = dualad_compiled()
    compiled = run()
    x = dd.Variable(0.0, dtype=dd.float32)
    a, b, c = dd.constant(A), dd.constant(B), dd.constant(C)
    opt = dd.optimizers.SGD(learning_rate=LR)
    for _ in range(COMPILED_STEPS):
        with dd.GradientTape() as tape:
            y = a * dd.pow(x, 2) + b * x + c
        opt.apply_gradients([(tape.gradient(y, x), x)])
    assert compiled.tobytes() == x.numpy().tobytes()
    assert compiled == float32_steps(COMPILED_STEPS)
    assert run.function.trace_count == 1
