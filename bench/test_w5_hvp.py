"""W5: the Hessian-vector product of f(x) = sum(tanh(A·x)), A of shape 1000×1000 (float64).

Floors: the numpy forward sum(tanh(A @ x)) and the hand-derived numpy HVP
Aᵀ·(-2 t (1 - t²) ⊙ (A·v)), t = tanh(A·x) (the reference of the target below: an HVP needs
three matrix-vector products where the forward needs one)."""
import numpy as np
import pytest

import dualad as dd
from bench.common import Suite, assert_close, need_autograd, need_jax, need_tf, need_torch
from bench.report.targets import RatioAtMost

N = 1000


def problem():
    rng = np.random.default_rng(5)
    return rng.normal(size=(N, N)) / np.sqrt(N), rng.normal(size=N), rng.normal(size=N)


W5 = Suite("W5", "W5: Hessian-vector product of sum(tanh(A·x)), A 1000×1000 (float64)",
           floor="floor-numpy-forward", judged="dualad-hvp", problem=problem, n=N)
TARGETS = [RatioAtMost(W5, 2, "HVP ≤ {limit}× the hand-written numpy HVP",
                       reference="floor-numpy-hvp")]


def numpy_hvp(a, x, v):
    t = np.tanh(a @ x)
    return a.T @ (-2 * t * (1 - t * t) * (a @ v))


@W5.add("floor-numpy-forward", "floor")
def _(p):
    a, x, v = p
    return lambda: np.sum(np.tanh(a @ x))


@W5.add("floor-numpy-hvp", "floor")
def _(p):
    return lambda: numpy_hvp(*p)


@W5.add("dualad-hvp", "dualad")
def _(p):
    a, x, v = (dd.constant(t) for t in p)
    return lambda: dd.hvp(lambda x: dd.reduce_sum(dd.tanh(dd.matmul(a, x))), x, v)


@W5.add("tensorflow", "peer")
def _(p):
    tf = need_tf()
    a, x, v = (tf.constant(t) for t in p)

    def run():   # forward-over-reverse, as TensorFlow's autodiff guide writes an HVP
        with tf.autodiff.ForwardAccumulator(x, v) as acc:
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.reduce_sum(tf.tanh(tf.linalg.matvec(a, x)))
            g = tape.gradient(y, x)
        return acc.jvp(g)
    return run


@W5.add("torch", "peer", note="reverse-over-reverse (double backward)")
def _(p):
    torch = need_torch()
    a, x, v = (torch.tensor(t) for t in p)
    x.requires_grad_(True)

    def run():
        y = torch.tanh(a @ x).sum()
        (g,) = torch.autograd.grad(y, x, create_graph=True)
        return torch.autograd.grad(g, x, v)[0]
    return run


def jax_hvp(jax, jnp):
    f = lambda x, a: jnp.sum(jnp.tanh(a @ x))   # noqa: E731
    return lambda a, x, v: jax.jvp(lambda x: jax.grad(f)(x, a), (x,), (v,))[1]


@W5.add("jax-eager", "peer")
def _(p):
    jax, jnp = need_jax()
    a, x, v = (jnp.asarray(t) for t in p)
    h = jax_hvp(jax, jnp)
    return lambda: h(a, x, v)


@W5.add("jax-jit", "peer-jit")
def _(p):
    jax, jnp = need_jax()
    a, x, v = (jnp.asarray(t) for t in p)
    h = jax.jit(jax_hvp(jax, jnp))
    return lambda: h(a, x, v).block_until_ready()


@W5.add("autograd", "peer")
def _(p):
    autograd, anp = need_autograd()
    a, x, v = p
    h = autograd.hessian_vector_product(lambda x: anp.sum(anp.tanh(anp.dot(a, x))))
    return lambda: h(x, v)


W5.skip("micrograd", "peer", "micrograd has scalar Values only, no arrays or matmul")


@pytest.mark.parametrize("impl", W5.names())
def test_w5(benchmark, impl):
    p = problem()
    a, x, v = p
    expected = np.sum(np.tanh(a @ x)) if impl.endswith("forward") else numpy_hvp(*p)
    W5.run(benchmark, impl, p, lambda got: assert_close(got, expected, rtol=1e-9, atol=1e-12))
