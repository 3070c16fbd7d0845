"""Indexing derivatives in every mode against numpy, for every indexing form.

Indexing is linear, so its Jacobian is known exactly: row i of J selects the element of x that
x[key] takes for output element i (numpy's own indexing of the element numbers). Keys whose
advanced indices are separated (by a slice, None or Ellipsis) make numpy move the indexed axes
to the front; with a leading batch axis of tangents that moved the batch axis too, and jacfwd
was silently wrong for them.
"""
import numpy as np
import pytest

import dualad as dd
from helpers import EXACT, npy, t64

SHAPE = (3, 4, 5)
ARR = np.array([0, 2])

KEYS = {
    "int": 1,
    "negative_int": -1,
    "int_tuple": (2, -1, 0),
    "slices": (slice(1, 3), slice(None, None, -2)),
    "negative_slice": (slice(-2, None), Ellipsis, slice(None, -1)),
    "newaxis": (None, slice(0, 2), None),
    "ellipsis": (Ellipsis, 1),
    "ellipsis_only": Ellipsis,
    "bool_mask_rows": np.array([True, False, True]),
    "bool_mask_2d": np.array([[True, False, True, False], [False, True, True, True],
                              [False, False, False, True]]),
    "bool_scalar_true": True,
    "bool_scalar_false": False,
    "array_adjacent": (slice(None), ARR, np.array([1, -1])),
    "array_first_pair": (ARR, np.array([3, -4])),
    "array_separated_by_slice": (ARR, slice(None), ARR),
    "array_separated_by_none": (ARR, None, np.array([1, 3])),
    "array_separated_by_ellipsis": (np.array([[0], [2]]), Ellipsis, np.array([4, -1, 0])),
    "int_and_array_separated": (1, slice(None), np.array([-1, 0, 0])),
    "bool_and_array_separated": (np.array([True, False, True]), slice(1, 3), ARR),
    "list_separated": ([0, -1], slice(None), [1, 1]),
    "zero_d_arrays_separated": (np.array(1), slice(None), np.array(-2)),
    "bool_scalar_and_array_separated": (ARR, slice(None), True),
    "empty_array": np.array([], dtype=np.intp),
}

X = np.random.default_rng(0).normal(size=SHAPE)
V = np.random.default_rng(1).normal(size=(3,) + SHAPE)  # three tangent directions


def expected_jacobian(key, shape=SHAPE):
    picked = np.arange(int(np.prod(shape))).reshape(shape)[key]
    return np.eye(int(np.prod(shape)))[picked.ravel()].reshape(picked.shape + shape)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_jacfwd_and_jacrev_equal_numpy_selection(name):
    key = KEYS[name]
    f = lambda x: x[key]
    expected = expected_jacobian(key)
    np.testing.assert_array_equal(npy(dd.jacfwd(f)(t64(X))), expected)
    np.testing.assert_array_equal(npy(dd.jacrev(f)(t64(X))), expected)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_jvp_and_batched_accumulator_index_each_direction(name):
    key = KEYS[name]
    _, tangent = dd.jvp(lambda x: x[key], (t64(X),), (t64(V[0]),))
    np.testing.assert_array_equal(npy(tangent), V[0][key])
    x = t64(X)
    with dd.ForwardAccumulator(x, t64(V), batched=True) as acc:
        y = x[key]
    np.testing.assert_array_equal(npy(acc.jvp(y)), np.stack([v[key] for v in V]))


@pytest.mark.parametrize("name", sorted(KEYS))
def test_vjp_scatters_each_cotangent(name):
    key = KEYS[name]
    u = np.random.default_rng(2).normal(size=X[key].shape)
    _, pullback = dd.vjp(lambda x: x[key], t64(X))
    expected = np.zeros(SHAPE)
    np.add.at(expected, key, u)
    np.testing.assert_allclose(npy(pullback(t64(u))[0]), expected, **EXACT)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_hessian_of_indexed_cubes_runs_the_scatter_forward(name):
    # grad = scatter_add(3 x[key]^2); its jacfwd pushes batched tangents through scatter_add
    key = KEYS[name]
    f = lambda x: dd.reduce_sum(x[key] ** 3)
    select = expected_jacobian(key).reshape(-1, X.size)  # (outputs, inputs)
    expected = select.T @ np.diag(6 * X[key].ravel()) @ select
    np.testing.assert_allclose(npy(dd.hessian(f)(t64(X))).reshape(X.size, X.size), expected,
                               **EXACT)
    np.testing.assert_allclose(npy(dd.jacrev(dd.grad(f))(t64(X))).reshape(X.size, X.size),
                               expected, **EXACT)


def test_zero_d_tensor_indexed_by_ellipsis_and_newaxis():
    f = lambda x: x[..., None] * 2.0
    x = t64(1.5)
    np.testing.assert_array_equal(npy(dd.jacfwd(f)(x)), [2.0])
    np.testing.assert_array_equal(npy(dd.jacrev(f)(x)), [2.0])


def test_empty_separated_indices_give_empty_jacobians():
    empty = np.zeros((0,), dtype=np.intp)
    f = lambda x: x[empty, :, empty]
    for jac in (dd.jacfwd, dd.jacrev):
        assert npy(jac(f)(t64(X))).shape == (0, 4) + SHAPE


def test_traced_function_with_a_separated_key_in_both_modes():
    key = KEYS["array_separated_by_slice"]
    f = lambda x: dd.sin(x[key]) * 2.0
    traced = dd.function(f)
    selection = expected_jacobian(key)
    expected = selection * (2.0 * np.cos(X[key]))[(...,) + (None,) * X.ndim]
    for _ in range(2):  # the trace, then its replay
        np.testing.assert_allclose(npy(dd.jacfwd(traced)(t64(X))), expected, **EXACT)
        np.testing.assert_allclose(npy(dd.jacrev(traced)(t64(X))), expected, **EXACT)
