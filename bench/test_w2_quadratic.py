"""W2: the gradient of 2·xᵀx for x of shape (n, 1), n = 4, 1,000, 1,000,000 (float64).

Floors: the hand-written numpy forward 2 * (x.T @ x) (the reference of the n=4 target) and the
forward plus hand-derived gradient 4x (the reference of the n=1e6 target: the forward is one BLAS
reduction, and no gradient that writes 8 MB can stay near it)."""
import numpy as np
import pytest

import dualad as dd
from bench.common import Suite, assert_close, need_autograd, need_jax, need_tf, need_torch
from bench.report.targets import RatioAtMost

SIZES = [4, 1000, 1_000_000]


def problem(n):
    return np.random.default_rng(n).normal(size=(n, 1))


SUITES = {n: Suite(f"W2 n={n}", f"W2: gradient of 2·xᵀx, x of shape ({n}, 1) (float64)",
                   floor="floor-numpy-forward", judged="dualad-gradient",
                   problem=lambda n=n: problem(n), n=n)
          for n in SIZES}
TARGETS = [RatioAtMost(SUITES[4], 3, "gradient ≤ {limit}× the numpy forward"),
           RatioAtMost(SUITES[1_000_000], 1.5, "gradient ≤ {limit}× the hand-written numpy gradient",
                       reference="floor-numpy-gradient")]


def add(name, role):
    def register(build):
        for suite in SUITES.values():
            suite.add(name, role)(build)
        return build
    return register


@add("floor-numpy-forward", "floor")
def _(x):
    return lambda: 2 * (x.T @ x)


@add("floor-numpy-gradient", "floor")
def _(x):
    def run():
        y = 2 * (x.T @ x)   # noqa: F841 - the forward pass, as every gradient row computes it
        return 4 * x
    return run


@add("dualad-gradient", "dualad")
def _(x):
    xt = dd.constant(x)

    def run():
        with dd.GradientTape() as tape:
            tape.watch(xt)
            y = 2 * dd.matmul(dd.transpose(xt), xt)
        return tape.gradient(y, xt)
    return run


def with_threads(count, run):
    """run with dualad's kernels on `count` threads (the thread-scaling rows at n=1e6)."""
    def timed():
        previous = dd.set_num_threads(count)
        try:
            return run()
        finally:
            dd.set_num_threads(previous)
    return timed


# 2 threads against 1 on the same gradient: how the parallel kernels scale (a row each, no
# target: on a shared 2-core machine the second core is often busy)
for _threads in (1, 2):
    @SUITES[1_000_000].add(f"dualad-gradient-{_threads}-thread{'s' if _threads > 1 else ''}",
                           "dualad", note=f"dualad's elementwise kernels on {_threads} thread(s)")
    def _(x, _threads=_threads):
        if _threads > 1 and not dd._core.has_openmp():
            pytest.skip("this build of dualad has no OpenMP")
        return with_threads(_threads, SUITES[1_000_000].impls["dualad-gradient"].build(x))


@add("tensorflow", "peer")
def _(x):
    tf = need_tf()
    xt = tf.constant(x)

    def run():
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = 2 * tf.matmul(tf.transpose(xt), xt)
        return tape.gradient(y, xt)
    return run


@add("torch", "peer")
def _(x):
    torch = need_torch()
    xt = torch.tensor(x, requires_grad=True)
    ones = torch.ones((1, 1), dtype=torch.float64)

    def run():
        y = 2 * (xt.T @ xt)
        return torch.autograd.grad(y, xt, ones)[0]
    return run


def jax_f(jnp):
    return lambda x: (2 * (x.T @ x))[0, 0]


@add("jax-eager", "peer")
def _(x):
    jax, jnp = need_jax()
    xj, g = jnp.asarray(x), jax.grad(jax_f(jnp))
    return lambda: g(xj)


@add("jax-jit", "peer-jit")
def _(x):
    jax, jnp = need_jax()
    xj, g = jnp.asarray(x), jax.jit(jax.grad(jax_f(jnp)))
    return lambda: g(xj).block_until_ready()


@add("autograd", "peer")
def _(x):
    autograd, anp = need_autograd()
    g = autograd.grad(lambda x: (2 * anp.dot(x.T, x))[0, 0])
    return lambda: g(x)


for _suite in SUITES.values():
    _suite.skip("micrograd", "peer", "micrograd has scalar Values only, no arrays or matmul")


@pytest.mark.parametrize("n,impl", [(n, impl) for n in SIZES for impl in SUITES[n].names()])
def test_w2(benchmark, n, impl):
    x = SUITES[n].problem()
    if impl == "floor-numpy-forward":
        expected = 2 * np.sum(x * x)
    else:
        expected = 4 * x
    SUITES[n].run(benchmark, impl, x, lambda got: assert_close(got, expected, rtol=1e-12))
