"""The functional API: grad, value_and_grad, vjp, jacfwd, jacrev, jacobian (auto), hessian,
hvp, derivative — against finite differences, closed forms and each other; argument errors.

Tolerances are helpers.FD / helpers.EXACT (float64; defined and justified once, in helpers.py).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dualad as dd
from conformance import numdiff
from helpers import EXACT, FD, SETTINGS, fd_jacobian, t64

SEEDS = st.integers(0, 2**32 - 1)



def numpy_fn(f, argnum=0, args=()):
    """f on tensors as a numpy function of argument `argnum` (the others fixed)."""
    def g(x):
        call = [t64(a) for a in args] or [None]
        call[argnum] = t64(x)
        return np.asarray(f(*call))
    return g


# ---- functions built from many ops, for Jacobians ---------------------------------------------

W = np.linspace(-1, 1, 12).reshape(4, 3)


def f_shapes(x):                      # (2, 3) -> (3, 4): transpose, reshape, concat, softmax
    y = dd.reshape(dd.transpose(x), (3, 2))
    z = dd.concat([y, dd.sin(y)], axis=1)
    return dd.softmax(z, axis=0) * dd.reduce_sum(x, axis=0)[:, None]


def f_getitem(x):                     # (4, 3) -> (7,): slices, fancy index with repeats, mask
    a = x[1:, ::2]
    b = x[np.array([0, 2, 0]), 1]
    c = x[x > 0.0]
    return dd.concat([dd.reshape(a, (-1,)) * 2.0, b * b], axis=0)[:7] + dd.reduce_sum(c * c)


def f_reductions(x):                  # (2, 3, 4) -> (2, 4)
    s = dd.reduce_sum(x * x, axis=(0, 2), keepdims=True)      # (1, 3, 1)
    m = dd.reduce_mean(x, axis=1)                                 # (2, 4)
    n = dd.norm(x, axis=1)                                        # (2, 4)
    l = dd.reduce_logsumexp(x, axis=1)                            # (2, 4)
    return m * n + l + dd.reduce_sum(dd.log_softmax(x * s, axis=1), axis=1)


def f_batched_matmul(x):              # (2, 3, 4) -> (2, 3, 3): batch dims on both sides
    a = dd.matmul(x, dd.transpose(x, (0, 2, 1)))                 # (2, 3, 3)
    b = dd.matmul(t64(W[None, :3, :3]), dd.tanh(a))             # broadcast batch (1, 3, 3)
    return dd.matmul(b, t64(np.eye(3) * 0.5)) + dd.matmul(x, t64(W))


def f_vector_matmul(x):               # (3,) -> (4,): matrix-vector, vector-vector
    return dd.tanh(dd.matmul(t64(W), x)) * dd.matmul(x, x)


def f_misc(x):                        # (3, 2) -> (2, 3, 2): stack, expand/squeeze, broadcast
    e = dd.expand_dims(dd.reduce_sum(x, axis=0), 0)               # (1, 2)
    b = dd.broadcast_to(e, (3, 2)) * dd.sigmoid(x)
    y = dd.stack([b, dd.squeeze(dd.expand_dims(x, 1), 1) ** 3], axis=0)
    return dd.where(y > 0, dd.exp(-y), y * y) + dd.pow(x * x + 1.0, x)


def f_scalar_out(x):                  # (5,) -> ()
    return dd.reduce_sum(dd.sin(x) * dd.cos(x[::-1])) / (1.0 + dd.norm(x))


def f_scalar_in(x):                   # () -> (3, 2)
    return dd.reshape(dd.stack([dd.sin(x), x ** 2, dd.exp(x), x, dd.tanh(x), 1.0 / (2.0 + x)]),
                      (3, 2))


JAC_FUNCS = {
    "shapes": (f_shapes, (2, 3)),
    "getitem": (f_getitem, (4, 3)),
    "reductions": (f_reductions, (2, 3, 4)),
    "batched_matmul": (f_batched_matmul, (2, 3, 4)),
    "vector_matmul": (f_vector_matmul, (3,)),
    "misc": (f_misc, (3, 2)),
    "scalar_out": (f_scalar_out, (5,)),
    "scalar_in": (f_scalar_in, ()),
}


@pytest.mark.parametrize("name", sorted(JAC_FUNCS))
@settings(max_examples=5, deadline=None)
@given(seed=SEEDS)
def test_forward_and_reverse_jacobians_agree(name, seed):
    f, shape = JAC_FUNCS[name]
    x = np.random.default_rng(seed).uniform(-1, 1, shape)
    fwd = dd.jacfwd(f)(t64(x))
    rev = dd.jacrev(f)(t64(x))
    auto = dd.jacobian(f)
    a = auto(t64(x))
    out_shape = np.shape(f(t64(x)))
    for j in (fwd, rev, a):
        assert j.shape == out_shape + shape and j.dtype == dd.float64
    np.testing.assert_allclose(np.asarray(fwd), np.asarray(rev), **EXACT)
    np.testing.assert_allclose(np.asarray(a), np.asarray(rev), **EXACT)
    np.testing.assert_allclose(np.asarray(rev), fd_jacobian(numpy_fn(f), x), **FD)
    n_in, n_out = int(np.prod(shape)), int(np.prod(out_shape))
    assert auto.last_mode == ("forward" if n_in < n_out else "reverse")


@pytest.mark.parametrize("name", sorted(JAC_FUNCS))
def test_second_order_jacobians_agree_in_all_four_orders(name):
    """jacfwd∘jacfwd, jacfwd∘jacrev, jacrev∘jacfwd, jacrev∘jacrev; and the Hessian (one batched
    forward pass over a gradient) of a weighted sum of the outputs against reverse-over-reverse."""
    f, shape = JAC_FUNCS[name]
    rng = np.random.default_rng(3)
    x = t64(rng.uniform(-1, 1, shape))
    reference = np.asarray(dd.jacrev(dd.jacrev(f))(x))
    # the reference itself against nested finite differences of f's values along random
    # direction pairs (u, v): Σ J2[..., i, j] u_i v_j = d/ds d/dt f(x + s·u + t·v)
    f_np, n_in = numpy_fn(f), len(shape)
    for _ in range(2):
        u, v = rng.normal(size=shape), rng.normal(size=shape)
        ad = np.tensordot(np.tensordot(reference, v, axes=n_in), u, axes=n_in)
        fd = numdiff.directional_derivative(
            lambda y: numdiff.directional_derivative(f_np, [y], [v]), [np.asarray(x)], [u])
        np.testing.assert_allclose(ad, fd, rtol=1e-6, atol=1e-6 * (1 + np.abs(fd).max()))
    for outer in (dd.jacfwd, dd.jacrev):
        for inner in (dd.jacfwd, dd.jacrev):
            np.testing.assert_allclose(np.asarray(outer(inner(f))(x)), reference, **EXACT,
                                       err_msg=f"{outer.__name__}({inner.__name__})")
    c = t64(rng.normal(size=np.shape(f(x))))
    weighted = lambda x: dd.reduce_sum(f(x) * c)
    np.testing.assert_allclose(np.asarray(dd.hessian(weighted)(x)),
                               np.tensordot(np.asarray(c), reference, axes=c.ndim), **EXACT)


def test_jacobians_in_several_arguments():
    def f(a, b, c):
        return dd.matmul(a, b) * c

    rng = np.random.default_rng(0)
    args = [rng.normal(size=s) for s in [(2, 3), (3, 4), (4,)]]
    for how in (dd.jacfwd, dd.jacrev, dd.jacobian):
        jac = how(f, argnums=(0, 2))(*[t64(a) for a in args])
        assert isinstance(jac, tuple) and len(jac) == 2
        np.testing.assert_allclose(np.asarray(jac[0]), fd_jacobian(numpy_fn(f, 0, args), args[0]), **FD)
        np.testing.assert_allclose(np.asarray(jac[1]), fd_jacobian(numpy_fn(f, 2, args), args[2]), **FD)


def test_jacobian_of_unconnected_output_is_zeros_in_every_mode():
    for mode in ("forward", "reverse", "auto"):
        jac = dd.jacobian(lambda x, y: y * 2.0, argnums=0, mode=mode)(t64([1.0, 2.0]), t64([3.0]))
        assert jac.shape == (1, 2)
        np.testing.assert_array_equal(np.asarray(jac), 0.0)


def test_jacobian_auto_picks_by_size_and_records_it():
    jac = dd.jacobian(lambda x: dd.tanh(dd.matmul(t64(np.ones((5, 2))), x)))
    jac(t64([1.0, 2.0]))
    assert jac.last_mode == "forward"
    jac2 = dd.jacobian(lambda x: dd.reduce_sum(dd.sin(x), axis=0))
    jac2(t64(np.ones((4, 2))))
    assert jac2.last_mode == "reverse"
    assert dd.jacobian(dd.sin, mode="forward").last_mode is None  # not yet called


def test_jacobian_auto_probe_is_not_recorded_by_an_outer_tape():
    x = t64([0.3, 0.4])
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        jac = dd.jacobian(lambda x: dd.sin(x) * x)(x)
        total = dd.reduce_sum(jac)
    # d/dx sum(diag(cos x * x + sin x)) = -sin x * x + 2 cos x
    np.testing.assert_allclose(np.asarray(tape.gradient(total, x)),
                               -np.sin([0.3, 0.4]) * [0.3, 0.4] + 2 * np.cos([0.3, 0.4]), **EXACT)


def test_jacobian_mode_must_be_known():
    with pytest.raises(ValueError, match="'auto', 'forward' or 'reverse'"):
        dd.jacobian(dd.sin, mode="sideways")


# ---- vjp = uᵀJ ----------------------------------------------------------------------------------


@SETTINGS
@given(name=st.sampled_from(sorted(JAC_FUNCS)), seed=SEEDS)
def test_vjp_matches_cotangent_times_fd_jacobian(name, seed):
    f, shape = JAC_FUNCS[name]
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, shape)
    out, vjp_fn = dd.vjp(f, t64(x))
    u = rng.normal(size=out.shape)
    (ct,) = vjp_fn(t64(u))
    expected = np.tensordot(u, fd_jacobian(numpy_fn(f), x), axes=u.ndim)
    np.testing.assert_allclose(np.asarray(ct), expected, **FD)
    # vjp_fn is reusable, and linear in the cotangent
    (ct2,) = vjp_fn(t64(2.0 * u))
    np.testing.assert_allclose(np.asarray(ct2), 2.0 * np.asarray(ct), **EXACT)


@SETTINGS
@given(shapes=st.sampled_from([((2, 3), (3,)), ((2, 3), (2, 1)), ((3,), ()), ((), ())]),
       seed=SEEDS)
def test_vjp_of_broadcasting_function_sums_over_broadcast_axes(shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(-1, 1, shapes[0]), rng.uniform(-1, 1, shapes[1])

    def f(a, b):
        return dd.exp(a * b) + a / (2.0 + dd.sin(b))

    out, vjp_fn = dd.vjp(f, t64(a), t64(b))
    u = rng.normal(size=out.shape)
    ga, gb = vjp_fn(t64(u))
    assert ga.shape == a.shape and gb.shape == b.shape
    for g, i, x in ((ga, 0, a), (gb, 1, b)):
        jac = fd_jacobian(numpy_fn(f, i, (a, b)), x)
        np.testing.assert_allclose(np.asarray(g), np.tensordot(u, jac, axes=u.ndim), **FD)


def test_vjp_closed_form_matmul_and_structure():
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4) / 10
    out, vjp_fn = dd.vjp(lambda a, b: {"p": dd.matmul(a, b), "s": dd.reduce_sum(a)}, t64(a), t64(b))
    u = np.ones((2, 4))
    ga, gb = vjp_fn({"p": t64(u), "s": t64(2.0)})
    np.testing.assert_allclose(np.asarray(ga), u @ b.T + 2.0, **EXACT)
    np.testing.assert_allclose(np.asarray(gb), a.T @ u, **EXACT)
    with pytest.raises(ValueError, match="1 parts, the output 2"):
        vjp_fn(t64(u))


def test_vjp_has_aux():
    out, vjp_fn, aux = dd.vjp(lambda x: (dd.sin(x), {"k": 3}), t64([0.5]), has_aux=True)
    assert aux == {"k": 3}
    np.testing.assert_allclose(np.asarray(vjp_fn(t64([2.0]))[0]), 2 * np.cos([0.5]), **EXACT)


# ---- grad, value_and_grad ---------------------------------------------------------------------


@SETTINGS
@given(shape=st.sampled_from([(), (3,), (2, 3)]), seed=SEEDS)
def test_grad_matches_finite_differences(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, shape)

    def f(x):
        return dd.reduce_sum(dd.sin(x) * dd.exp(x * 0.5)) + dd.norm(x + 2.0) ** 3

    value, g = dd.value_and_grad(f)(t64(x))
    np.testing.assert_allclose(float(value), float(f(t64(x))), **EXACT)
    np.testing.assert_allclose(np.asarray(g), fd_jacobian(numpy_fn(f), x), **FD)
    np.testing.assert_allclose(np.asarray(dd.grad(f)(t64(x))), np.asarray(g), **EXACT)


def test_grad_argnums_tuple_and_negative():
    def f(a, b, c):
        return dd.reduce_sum(a * b * b) + c

    a, b, c = t64([1.0, 2.0]), t64([3.0, 4.0]), t64(5.0)
    ga, gc = dd.grad(f, argnums=(0, -1))(a, b, c)
    np.testing.assert_allclose(np.asarray(ga), [9.0, 16.0], **EXACT)
    assert float(gc) == 1.0
    np.testing.assert_allclose(np.asarray(dd.grad(f, argnums=1)(a, b, c)), [6.0, 16.0], **EXACT)


def test_grad_of_unused_argument_is_zero():
    g = dd.grad(lambda a, b: a * 2.0, argnums=1)(t64(1.0), t64([1.0, 2.0]))
    np.testing.assert_array_equal(np.asarray(g), [0.0, 0.0])


def test_grad_accepts_numpy_and_keeps_float64():
    g = dd.grad(lambda x: dd.reduce_sum(x ** 3))(np.array([1.0, 2.0]))
    assert g.dtype == dd.float64
    np.testing.assert_allclose(np.asarray(g), [3.0, 12.0], **EXACT)


def test_grad_has_aux():
    def f(x):
        y = dd.reduce_sum(x * x)
        return y, {"y": y, "note": "aux"}

    g, aux = dd.grad(f, has_aux=True)(t64([1.0, 3.0]))
    np.testing.assert_allclose(np.asarray(g), [2.0, 6.0], **EXACT)
    assert aux["note"] == "aux" and float(aux["y"]) == 10.0
    (value, aux2), g2 = dd.value_and_grad(f, has_aux=True)(t64([1.0, 3.0]))
    assert float(value) == 10.0 and aux2["note"] == "aux"


def test_grad_passes_keyword_arguments_through():
    g = dd.grad(lambda x, scale=1.0: x * x * scale)(t64(3.0), scale=2.0)
    assert float(g) == 12.0


# ---- hessian, hvp, derivative -----------------------------------------------------------------


def hess_fn(x):
    return (dd.reduce_sum(dd.sin(x) * x[::-1]) + dd.norm(x) ** 3
            + dd.reduce_logsumexp(dd.matmul(t64(W), x)) + dd.reduce_sum(dd.tanh(x) ** 2))


@SETTINGS
@given(seed=SEEDS)
def test_hessian_is_symmetric_and_matches_fd_of_gradient(seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, 3)
    h = np.asarray(dd.hessian(hess_fn)(t64(x)))
    assert h.shape == (3, 3)
    np.testing.assert_allclose(h, h.T, **EXACT)
    grad_np = lambda x: np.asarray(dd.grad(hess_fn)(t64(x)))
    np.testing.assert_allclose(h, fd_jacobian(grad_np, x), **FD)
    # hvp is H·v without forming H
    v = rng.normal(size=3)
    np.testing.assert_allclose(np.asarray(dd.hvp(hess_fn, t64(x), t64(v))), h @ v, **EXACT)


def test_hessian_of_matrix_input_has_doubled_shape():
    x = np.array([[0.5, -0.2], [0.1, 0.9]])

    def f(x):
        return dd.reduce_sum(dd.matmul(x, x) ** 2)

    h = np.asarray(dd.hessian(f)(t64(x)))
    assert h.shape == (2, 2, 2, 2)
    np.testing.assert_allclose(h, np.transpose(h, (2, 3, 0, 1)), **EXACT)
    grad_np = lambda x: np.asarray(dd.grad(f)(t64(x)))
    np.testing.assert_allclose(h, fd_jacobian(grad_np, x), **FD)


def test_hessian_closed_form_quadratic():
    a = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, -1.0], [0.0, -1.0, 4.0]])
    h = dd.hessian(lambda x: 0.5 * dd.reduce_sum(x * dd.matmul(t64(a), x)))(t64([1.0, -2.0, 0.5]))
    np.testing.assert_allclose(np.asarray(h), a, **EXACT)


@pytest.mark.parametrize("order, expected", [
    (0, np.sin(0.7)), (1, np.cos(0.7)), (2, -np.sin(0.7)), (3, -np.cos(0.7)), (4, np.sin(0.7)),
])
def test_derivative_orders_of_sin(order, expected):
    np.testing.assert_allclose(float(dd.derivative(dd.sin, order)(t64(0.7))), expected, **EXACT)


def test_derivative_rejects_bad_orders():
    for order in (-1, 1.5):
        with pytest.raises(ValueError, match="non-negative int"):
            dd.derivative(dd.sin, order)


# ---- argument errors --------------------------------------------------------------------------


@pytest.mark.parametrize("api", [dd.grad, dd.value_and_grad])
def test_grad_of_non_scalar_output_suggests_jacobian(api):
    with pytest.raises(TypeError, match=r"scalar.*\(3,\).*jacobian"):
        api(dd.sin)(t64([1.0, 2.0, 3.0]))


def test_grad_of_integer_output_is_a_type_error():
    with pytest.raises(TypeError, match="int64 scalar"):
        dd.grad(lambda x: dd.argmax(x))(t64([1.0, 2.0]))


@pytest.mark.parametrize("api", [dd.grad, dd.value_and_grad, dd.jacfwd, dd.jacrev, dd.jacobian])
@pytest.mark.parametrize("argnums", [2, -3, (0, 5)])
def test_argnums_out_of_range_names_the_argument_count(api, argnums):
    def f(a, b):
        return dd.reduce_sum(a * b)

    bad = argnums if np.ndim(argnums) == 0 else 5
    with pytest.raises(IndexError, match=rf"argnums {bad} is out of range.*\b2 positional"):
        api(f, argnums=argnums)(t64([1.0]), t64([2.0]))


def test_argnums_must_be_ints_and_nonempty():
    with pytest.raises(TypeError, match="argnums must be ints"):
        dd.grad(lambda a: a, argnums="0")(t64(1.0))
    with pytest.raises(ValueError, match="at least one"):
        dd.grad(lambda a: a, argnums=())(t64(1.0))


@pytest.mark.parametrize("ret", [
    lambda x: dd.reduce_sum(x),                        # no aux at all
    lambda x: (dd.reduce_sum(x), 1, 2),                # a triple
    lambda x: [dd.reduce_sum(x)],                      # a 1-list
])
@pytest.mark.parametrize("api", ["grad", "value_and_grad", "jvp", "vjp"])
def test_has_aux_without_a_pair_is_a_type_error(ret, api):
    x = t64([1.0, 2.0])
    with pytest.raises(TypeError, match=r"has_aux=True.*pair"):
        if api == "jvp":
            dd.jvp(ret, (x,), (x,), has_aux=True)
        elif api == "vjp":
            dd.vjp(ret, x, has_aux=True)
        else:
            getattr(dd, api)(ret, has_aux=True)(x)


@pytest.mark.parametrize("aux", ["note", 1.0, {"k": 1}, [1.0, 2.0]])
def test_forgetting_has_aux_is_a_type_error_that_says_so(aux):
    with pytest.raises(TypeError, match="has_aux=True"):
        dd.grad(lambda x: (dd.reduce_sum(x), aux))(t64([1.0, 2.0]))
