"""W8: the d2l tutorial's data-dependent function on a (1, 1) input (float64):

    def f(a):
        b = a * 2
        while norm(b) < 1000:
            b = b * 2
        if reduce_sum(b) > 0:
            c = b
        else:
            c = 100 * b
        return c

its gradient in a (c is x·a with x a power of two, so the gradient is c / a).
Floors: the same function on Python floats (abs for the norm), and the hand-written numpy
forward on the same (1, 1) arrays (np.linalg.norm, np.sum): the reference of the target below
for dualad's gradient. dualad-function is the gradient compiled by dualad.function (guards on the
while and if). JAX has no jit row: Python control flow on traced values cannot be jitted
without rewriting it with lax.while_loop / lax.cond."""
import numpy as np
import pytest

import dualad as dd
from bench.common import (Suite, assert_close, need_autograd, need_jax, need_tf, need_torch)
from bench.report.targets import RatioAtMost

A0 = -0.3   # ten doublings, then the else branch


def make_f(norm, reduce_sum):
    def f(a):
        b = a * 2
        while norm(b) < 1000:
            b = b * 2
        if reduce_sum(b) > 0:
            c = b
        else:
            c = 100 * b
        return c
    return f


python_f = make_f(abs, lambda b: b)
numpy_f = make_f(np.linalg.norm, np.sum)


def problem():
    return np.full((1, 1), A0)


W8 = Suite("W8", "W8: gradient of the d2l while/if function on a (1, 1) input (float64)",
           floor="floor-numpy-forward", judged="dualad-gradient", problem=problem)
TARGETS = [RatioAtMost(W8, 2, "gradient ≤ {limit}× the numpy forward on the same (1, 1) arrays")]


@W8.add("floor-python-forward", "floor")
def _(a):
    return lambda: python_f(A0)


@W8.add("floor-numpy-forward", "floor")
def _(a):
    return lambda: numpy_f(a)


def dualad_gradient_fn(f):
    def gradient(a):
        with dd.GradientTape() as tape:
            tape.watch(a)
            c = f(a)
        return tape.gradient(c, a)
    return gradient


@W8.add("dualad-gradient", "dualad")
def _(a):
    at, g = dd.constant(a), dualad_gradient_fn(make_f(dd.norm, dd.reduce_sum))
    return lambda: g(at)


@W8.add("dualad-forward", "dualad")
def _(a):
    at, f = dd.constant(a), make_f(dd.norm, dd.reduce_sum)
    return lambda: f(at)


@W8.add("dualad-function", "dualad", note="the gradient compiled by dualad.function")
def _(a):
    at, g = dd.constant(a), dd.function(dualad_gradient_fn(make_f(dd.norm, dd.reduce_sum)))
    g(at)
    return lambda: g(at)


@W8.add("tensorflow", "peer")
def _(a):
    tf = need_tf()
    at, g = tf.constant(a), make_f(tf.norm, tf.reduce_sum)

    def run():
        with tf.GradientTape() as tape:
            tape.watch(at)
            c = g(at)
        return tape.gradient(c, at)
    return run


@W8.add("torch", "peer")
def _(a):
    torch = need_torch()
    at = torch.tensor(a, requires_grad=True)
    f = make_f(torch.linalg.norm, torch.sum)
    ones = torch.ones((1, 1), dtype=torch.float64)
    return lambda: torch.autograd.grad(f(at), at, ones)[0]


@W8.add("jax-eager", "peer")
def _(a):
    jax, jnp = need_jax()
    f = make_f(jnp.linalg.norm, jnp.sum)
    at, g = jnp.asarray(a), jax.grad(lambda a: jnp.sum(f(a)))
    return lambda: g(at)


W8.skip("jax-jit", "peer-jit", "not natural: jax.jit cannot trace Python while/if on array "
        "values (it needs a rewrite with lax.while_loop and lax.cond)")


@W8.add("autograd", "peer")
def _(a):
    autograd, anp = need_autograd()
    f = make_f(anp.linalg.norm, anp.sum)
    g = autograd.grad(lambda a: anp.sum(f(a)))
    return lambda: g(a)


W8.skip("micrograd", "peer", "micrograd has scalar Values only, no arrays, norm or comparisons")


@pytest.mark.parametrize("impl", W8.names())
def test_w8(benchmark, impl):
    a = problem()
    c = python_f(A0)
    expected = c if impl.endswith("forward") else c / A0
    W8.run(benchmark, impl, a, lambda got: assert_close(got, expected, rtol=1e-15))
