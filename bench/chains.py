"""The gradient of the long scalar chain (W9) in each library, shared by the in-process timing
benchmark (test_w9_long_chain.py) and the memory probe (memory_probe.py).

Each runner takes the chain length and returns (gradient as float, keepalive): keepalive holds
what a user still holds after the gradient call (the tape and the output), so the probe can
measure whether the recorded chain is released by a non-persistent gradient even while those
objects are alive."""
import math

import numpy as np

from bench.common import chain, chain_python_gradient, need_autograd, need_jax, need_tf, need_torch

X0 = 0.5


def floor_python_forward(length):
    return chain(X0, length, math.sin), ()


def floor_python_gradient(length):
    return chain_python_gradient(X0, length)[1], ()


def dualad_gradient(length):
    import dualad as dd
    x = dd.constant(np.float64(X0))
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = chain(x, length, dd.sin)
    return float(tape.gradient(y, x)), (tape, y)


def tensorflow(length):
    tf = need_tf()
    x = tf.constant(X0, dtype=tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = chain(x, length, tf.sin)
    return float(tape.gradient(y, x)), (tape, y)


def torch(length):
    torch = need_torch()
    x = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
    y = chain(x, length, torch.sin)
    return float(torch.autograd.grad(y, x)[0]), (y,)


def jax_eager(length):
    jax, jnp = need_jax()
    x = jnp.asarray(X0, dtype=jnp.float64)
    return float(jax.grad(lambda x: chain(x, length, jnp.sin))(x)), ()


def autograd(length):
    autograd, anp = need_autograd()
    return float(autograd.grad(lambda x: chain(x, length, anp.sin))(X0)), ()


RUNNERS = {
    "floor-python-forward": ("floor", floor_python_forward),
    "floor-python-gradient": ("floor", floor_python_gradient),
    "dualad-gradient": ("dualad", dualad_gradient),
    "tensorflow": ("peer", tensorflow),
    "torch": ("peer", torch),
    "jax-eager": ("peer", jax_eager),
    "autograd": ("peer", autograd),
}
MODULES = {"tensorflow": "tensorflow", "torch": "torch", "jax-eager": "jax",
           "autograd": "autograd"}
