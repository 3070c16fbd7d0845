"""W6: the full Jacobian of tanh(W·x), W of shape (m, n), for (n inputs, m outputs) = (10, 1000)
and (1000, 10) (float64), by dualad.jacobian(mode='forward' | 'reverse' | 'auto').

Forward mode costs one pass carrying n tangent directions, reverse mode one batched backward
sweep carrying the m outputs' cotangents (rows taken in chunks of about 4M elements per live
cotangent, so a few sweeps for m = 1000, one for m = 10), no longer one sweep per output:
forward should win for (10, 1000), reverse for (1000, 10), and 'auto' (which adds one plain
evaluation to count the outputs) should track the better of the two.
Floor: the hand-written numpy Jacobian (1 - tanh(Wx)²)[:, None] * W. Targets: TARGETS below.
(Merged from the former
bench/test_bench_jacobian_mode.py.)"""
import numpy as np
import pytest

import dualad as dd
from bench.common import Suite, assert_close, need_autograd, need_jax, need_tf, need_torch
from bench.report.targets import FasterThan, RatioAtMost, WithinOfBest

SHAPES = [(10, 1000), (1000, 10)]          # (n inputs, m outputs)
EXACT = dict(rtol=1e-10, atol=1e-12)       # float64, AD vs the closed form: rounding only


def problem(n, m):
    rng = np.random.default_rng(n * 7919 + m)
    w = rng.normal(size=(m, n)) / np.sqrt(n)
    x = rng.normal(size=n)
    return w, x


SUITES = {(n, m): Suite(f"W6 n={n} m={m}",
                        f"W6: Jacobian of tanh(W·x), n={n} inputs, m={m} outputs (float64)",
                        floor="floor-numpy-jacobian", judged="dualad-auto",
                        problem=lambda n=n, m=m: problem(n, m), n=n, m=m) for n, m in SHAPES}
TARGETS = [target for suite in SUITES.values() for target in (
    WithinOfBest(suite, 1.2, "auto within {limit}× of the better of forced forward and forced "
                 "reverse", others=["dualad-forward", "dualad-reverse"]),
    RatioAtMost(suite, 5, "auto ≤ {limit}× the hand-written numpy Jacobian"))]
# auto must beat the mode that is wrong for the shape
TARGETS += [FasterThan(SUITES[10, 1000], "auto faster than forced reverse",
                       other="dualad-reverse"),
            FasterThan(SUITES[1000, 10], "auto faster than forced forward",
                       other="dualad-forward")]


def closed_form(w, x):
    """The numpy floor: d tanh(Wx) / dx = (1 - tanh(Wx)²)[:, None] * W."""
    return (1 - np.tanh(w @ x) ** 2)[:, None] * w


def add(name, role, note=""):
    def register(build):
        for suite in SUITES.values():
            suite.add(name, role, note=note)(build)
        return build
    return register


@add("floor-numpy-jacobian", "floor")
def _(p):
    return lambda: closed_form(*p)


def dualad_jacobian(mode):
    def build(p):
        w, x = p
        wt, xt = dd.constant(w), dd.constant(x)
        jac = dd.jacobian(lambda x: dd.tanh(dd.matmul(wt, x)), mode=mode)
        return lambda: jac(xt)
    return build


for _mode in ("auto", "forward", "reverse"):
    add(f"dualad-{_mode}", "dualad")(dualad_jacobian(_mode))


@add("tensorflow", "peer", note="GradientTape.jacobian (reverse mode, vectorized by pfor)")
def _(p):
    tf = need_tf()
    w, x = (tf.constant(t) for t in p)

    def run():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.tanh(tf.linalg.matvec(w, x))
        return tape.jacobian(y, x)
    return run


@add("torch", "peer", note="torch.autograd.functional.jacobian, vectorized, forward-mode "
     "when inputs are fewer than outputs, else reverse-mode")
def _(p):
    torch = need_torch()
    w, x = (torch.tensor(t) for t in p)
    m, n = w.shape
    strategy = "forward-mode" if n < m else "reverse-mode"
    f = lambda x: torch.tanh(w @ x)   # noqa: E731
    return lambda: torch.autograd.functional.jacobian(f, x, vectorize=True, strategy=strategy)


def jax_jacobian(jax, jnp, w):
    m, n = w.shape
    make = jax.jacfwd if n < m else jax.jacrev
    return make(lambda x: jnp.tanh(w @ x))


@add("jax-eager", "peer", note="jacfwd when inputs are fewer than outputs, else jacrev")
def _(p):
    jax, jnp = need_jax()
    w, x = (jnp.asarray(t) for t in p)
    j = jax_jacobian(jax, jnp, w)
    return lambda: j(x)


@add("jax-jit", "peer-jit", note="jit of jacfwd / jacrev as for jax-eager")
def _(p):
    jax, jnp = need_jax()
    w, x = (jnp.asarray(t) for t in p)
    j = jax.jit(jax_jacobian(jax, jnp, w))
    return lambda: j(x).block_until_ready()


@add("autograd", "peer", note="autograd.jacobian (reverse mode)")
def _(p):
    autograd, anp = need_autograd()
    w, x = p
    j = autograd.jacobian(lambda x: anp.tanh(anp.dot(w, x)))
    return lambda: j(x)


for _suite in SUITES.values():
    _suite.skip("micrograd", "peer", "micrograd has scalar Values only, no arrays or matmul")


@pytest.mark.parametrize("impl", SUITES[SHAPES[0]].names())
@pytest.mark.parametrize("n, m", SHAPES, ids=[f"n{n}-m{m}" for n, m in SHAPES])
def test_w6(benchmark, n, m, impl):
    p = problem(n, m)
    expected = closed_form(*p)
    SUITES[n, m].run(benchmark, impl, p, lambda got: assert_close(got, expected, **EXACT))


@pytest.mark.parametrize("n, m, expected", [(10, 1000, "forward"), (1000, 10, "reverse")])
def test_modes_agree_and_auto_picks_the_cheaper_mode(n, m, expected):
    w, x = problem(n, m)
    floor = closed_form(w, x)
    for mode in ("forward", "reverse", "auto"):
        wt, xt = dd.constant(w), dd.constant(x)
        jac = dd.jacobian(lambda x: dd.tanh(dd.matmul(wt, x)), mode=mode)
        result = jac(xt)
        assert result.shape == (m, n) and result.dtype == dd.float64
        np.testing.assert_allclose(np.asarray(result), floor, **EXACT, err_msg=mode)
        assert jac.last_mode == (expected if mode == "auto" else mode)
