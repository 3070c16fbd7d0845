"""Axis-taking primitives called directly through dualad.rules with negative axes (the public
ops normalise axes first; a direct caller may not): batched forward mode (jacfwd), reverse
mode (jacrev) and central differences agree."""
import numpy as np
import pytest

import dualad as dd
from dualad import rules
from helpers import fd_jacobian

X = np.random.default_rng(7).uniform(0.5, 1.5, size=(2, 3, 4))


def _numpy_of(prim, params):
    # the primitive's own impl on plain arrays: the function the differences are taken of
    return lambda x: np.asarray(prim.impl(x, **params), dtype=np.float64)


CASES = [
    (rules.reduce_sum, dict(axis=(-1,), keepdims=False)),
    (rules.reduce_sum, dict(axis=(-3, -1), keepdims=True)),
    (rules.reduce_max, dict(axis=(-2,), keepdims=False)),
    (rules.reduce_min, dict(axis=(-1,), keepdims=True)),
    (rules.reduce_logsumexp, dict(axis=(-1,), keepdims=False)),
    (rules.reduce_prod, dict(axis=(-2,), keepdims=False)),
    (rules.reduce_prod, dict(axis=(-1, 0), keepdims=True)),
    (rules.softmax, dict(axis=-2)),
    (rules.log_softmax, dict(axis=-3)),
    (rules.transpose, dict(perm=(-1, 0, -2))),
    (rules.cumsum, dict(axis=-1, exclusive=False, reverse=False)),
    (rules.cumsum, dict(axis=-2, exclusive=True, reverse=True)),
    (rules.cumprod, dict(axis=-1, exclusive=False, reverse=False)),
    (rules.cumprod, dict(axis=-3, exclusive=True, reverse=True)),
]


@pytest.mark.parametrize("prim, params", CASES,
                         ids=[f"{p.name}-{i}" for i, (p, _) in enumerate(CASES)])
def test_unary_primitive_with_negative_axes(prim, params):
    f = lambda x: prim(x, **params)     # noqa: E731
    x = dd.constant(X, dtype=dd.float64)
    forward = dd.jacfwd(f)(x).numpy()
    reverse = dd.jacrev(f)(x).numpy()
    expected = fd_jacobian(_numpy_of(prim, params), X)
    np.testing.assert_allclose(forward, expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(reverse, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("axis", [-1, -2, -3])
def test_concat_with_a_negative_axis(axis):
    other = dd.constant(X[..., :2] * 2.0 if axis == -1 else X * 2.0, dtype=dd.float64)
    f = lambda x: rules.concat(x, other, axis=axis)    # noqa: E731
    x = dd.constant(X, dtype=dd.float64)
    forward = dd.jacfwd(f)(x).numpy()
    reverse = dd.jacrev(f)(x).numpy()
    expected = fd_jacobian(lambda a: np.concatenate([a, other.numpy()], axis=axis), X)
    np.testing.assert_allclose(forward, expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(reverse, expected, rtol=1e-6, atol=1e-8)
