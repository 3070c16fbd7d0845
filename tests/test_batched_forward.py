"""Forward mode with BATCHED tangents (a leading axis of k directions), for every op of
test_op_derivatives.CASES.

test_op_derivatives checks the JVP with one tangent per input; rules that index axes by
position (getitem, reductions, transpose, concat, scans, ...) take a different path when the
tangent carries a batch axis, and an axis bug there gave silently wrong jacfwd results. Here:
  * jacfwd (one pass, the identity as a batch of n directions) == jacrev, and J.v matches a
    central difference along a random v;
  * a ForwardAccumulator with k = 1..3 random directions (sizes that can collide with the
    op's own axes) gives J.V for each of them.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualad as dd
from helpers import EXACT, FD, SETTINGS, arrays, fd_jvp, npy, t64, value
from test_op_derivatives import CASES

NAMES = sorted(CASES)


def _jacobians(jac, fn, xs):
    out = jac(fn, argnums=tuple(range(len(xs))))(*[t64(x) for x in xs])
    return [npy(J) for J in out]


def _contract(jacobians, vs):
    """sum_i J_i . v_i over each input's axes."""
    return sum(np.tensordot(J, np.asarray(v), axes=np.ndim(v)) for J, v in zip(jacobians, vs))


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_jacfwd_equals_jacrev_and_finite_differences(name, data):
    fn, xs = CASES[name](data)
    y = value(fn, xs)
    forward = _jacobians(dd.jacfwd, fn, xs)
    reverse = _jacobians(dd.jacrev, fn, xs)
    for Jf, Jr, x in zip(forward, reverse, xs):
        assert Jf.shape == y.shape + np.shape(x)
        np.testing.assert_allclose(Jf, Jr, **EXACT)
    vs = [data.draw(arrays(np.shape(x)), label=f"v{i}") for i, x in enumerate(xs)]
    np.testing.assert_allclose(_contract(forward, vs),
                               fd_jvp(lambda *a: value(fn, a), xs, vs), **FD)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_batched_accumulator_gives_each_direction(name, data):
    fn, xs = CASES[name](data)
    k = data.draw(st.integers(1, 3), label="k")
    directions = [data.draw(arrays((k,) + np.shape(x)), label=f"V{i}") for i, x in enumerate(xs)]
    ts = [t64(x) for x in xs]
    with dd.ForwardAccumulator(ts, [t64(V) for V in directions], batched=True) as acc:
        y = fn(*ts)
    tangents = acc.jvp(y, unconnected_gradients="zero")
    assert tangents.shape == (k,) + tuple(y.shape)
    reverse = _jacobians(dd.jacrev, fn, xs)
    for row in range(k):
        expected = _contract(reverse, [V[row] for V in directions])
        np.testing.assert_allclose(npy(tangents)[row], expected, **EXACT)
