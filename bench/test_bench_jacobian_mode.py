"""Jacobian of tanh(W·x), W of shape (m, n), by jacobian(mode='forward' | 'reverse' | 'auto')
and by a hand-written numpy floor, for (n inputs, m outputs) = (10, 1000) and (1000, 10).

    python -m pytest bench/test_bench_jacobian_mode.py --benchmark-only

Forward mode costs one pass carrying n tangent directions, reverse mode one sweep per output:
forward should win for (10, 1000), reverse for (1000, 10), and 'auto' (which adds one plain
evaluation to count the outputs) should track the better of the two. The plain sanity test
(run without --benchmark-only) checks that the modes agree and which one 'auto' picks.
"""
import numpy as np
import pytest

import dualad as dd

SHAPES = [(10, 1000), (1000, 10)]          # (n inputs, m outputs)
MODES = ["forward", "reverse", "auto", "numpy"]
EXACT = dict(rtol=1e-10, atol=1e-12)       # float64, AD vs the closed form: rounding only


def problem(n, m):
    rng = np.random.default_rng(n * 7919 + m)
    w = rng.normal(size=(m, n)) / np.sqrt(n)
    x = rng.normal(size=n)
    return w, x


def closed_form(w, x):
    """The numpy floor: d tanh(Wx) / dx = (1 - tanh(Wx)²)[:, None] * W."""
    return (1 - np.tanh(w @ x) ** 2)[:, None] * w


def jacobian_runner(mode, w, x):
    """A zero-argument callable computing the Jacobian by `mode`, and the jacobian function
    (None for the numpy floor)."""
    if mode == "numpy":
        return (lambda: closed_form(w, x)), None
    wt, xt = dd.constant(w), dd.constant(x)
    jac = dd.jacobian(lambda x: dd.tanh(dd.matmul(wt, x)), mode=mode)
    return (lambda: jac(xt)), jac


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n, m", SHAPES, ids=[f"n{n}-m{m}" for n, m in SHAPES])
def test_bench_jacobian(benchmark, n, m, mode):
    benchmark.group = f"jacobian tanh(W·x): n={n} inputs, m={m} outputs"
    w, x = problem(n, m)
    run, _ = jacobian_runner(mode, w, x)
    result = benchmark(run)
    np.testing.assert_allclose(np.asarray(result), closed_form(w, x), **EXACT)


@pytest.mark.parametrize("n, m, expected", [(10, 1000, "forward"), (1000, 10, "reverse")])
def test_modes_agree_and_auto_picks_the_cheaper_mode(n, m, expected):
    w, x = problem(n, m)
    floor = closed_form(w, x)
    for mode in ("forward", "reverse", "auto"):
        run, jac = jacobian_runner(mode, w, x)
        result = run()
        assert result.shape == (m, n) and result.dtype == dd.float64
        np.testing.assert_allclose(np.asarray(result), floor, **EXACT, err_msg=mode)
        assert jac.last_mode == (expected if mode == "auto" else mode)
