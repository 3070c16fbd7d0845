"""Forward mode: jvp and ForwardAccumulator against finite differences and closed forms,
vector (batched) tangents against separate jvps, and bad-input errors.

Tolerances are helpers.FD / helpers.EXACT (float64; defined and justified once, in helpers.py).
"""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dualad as dd
from dualad import ForwardAccumulator, NonFloatWatchWarning
from conformance import numdiff
from helpers import EXACT, FD, SETTINGS, fd_jvp, t64




def as_np(f):
    """f on tensors as a function of float64 numpy arrays returning numpy."""
    return lambda *xs: np.asarray(f(*[t64(x) for x in xs]))


# ---- random functions: a chain of smooth elementwise ops, then a structural op ---------------

SMOOTH = {
    "sin": dd.sin,
    "cos": dd.cos,
    "tanh": dd.tanh,
    "sigmoid": dd.sigmoid,
    "exp_half": lambda x: dd.exp(x * 0.5),
    "square": dd.square,
    "cube": lambda x: x ** 3,
    "log1p_sq": lambda x: dd.log1p(x * x),
    "sqrt_1p_sq": lambda x: dd.sqrt(1.0 + x * x),
    "pow_pos": lambda x: dd.pow(1.5 + dd.sin(x), 2.5),
    "div": lambda x: x / (2.0 + dd.cos(x)),
    "affine": lambda x: 3.0 - 2.0 * x,
}

# name -> (minimum rank, fn); each maps a tensor of that rank or more to some tensor
STRUCTURAL = {
    "none": (0, lambda x: x),
    "reduce_sum": (0, lambda x: dd.reduce_sum(x)),
    "reduce_sum_ax0": (1, lambda x: dd.reduce_sum(x, axis=0)),
    "reduce_mean_keep": (1, lambda x: dd.reduce_mean(x, axis=-1, keepdims=True)),
    "norm_last": (1, lambda x: dd.norm(x, axis=-1)),
    "logsumexp": (1, lambda x: dd.reduce_logsumexp(x, axis=-1)),
    "softmax": (1, lambda x: dd.softmax(x, axis=-1)),
    "log_softmax0": (1, lambda x: dd.log_softmax(x, axis=0)),
    "transpose": (2, lambda x: dd.transpose(x)),
    "reshape_flat": (1, lambda x: dd.reshape(x, (-1,))),
    "getitem": (1, lambda x: x[::-1] * x[0]),
    "fancy_index": (1, lambda x: x[np.array([0, 0, -1])]),
    "concat": (1, lambda x: dd.concat([x, dd.sin(x)], axis=-1)),
    "stack": (0, lambda x: dd.stack([x, x * x], axis=0)),
    "matmul_const": (1, lambda x: dd.matmul(x, t64(np.arange(1.0, 1.0 + 2 * x.shape[-1]).reshape(x.shape[-1], 2) / 7))),
    "gram": (2, lambda x: dd.matmul(x, dd.transpose(x, tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)))),
    "broadcast_mul": (1, lambda x: x * dd.reduce_sum(x, axis=-1, keepdims=True)),
}

# ops with kinks: fine for comparing AD with AD (batched vs unbatched), not with differences
KINKED = {
    "abs": dd.abs,
    "relu": dd.relu,
    "max_half": lambda x: dd.maximum(x, 0.5 * x * x),
    "clip": lambda x: dd.clip_by_value(x, -0.5, 0.5),
    "where": lambda x: dd.where(x > 0, dd.sin(x), x * x),
}
KINKED_STRUCTURAL = {
    "reduce_max": (1, lambda x: dd.reduce_max(x, axis=-1)),
    "reduce_min_keep": (1, lambda x: dd.reduce_min(x, axis=0, keepdims=True)),
}

SHAPES = st.sampled_from([(), (1,), (3,), (4,), (2, 3), (3, 1), (2, 2, 3)])


@st.composite
def programs(draw, kinked=False):
    shape = draw(SHAPES, label="shape")
    unary = dict(SMOOTH, **KINKED) if kinked else SMOOTH
    structural = dict(STRUCTURAL, **KINKED_STRUCTURAL) if kinked else STRUCTURAL
    chain = draw(st.lists(st.sampled_from(sorted(unary)), min_size=1, max_size=3), label="chain")
    allowed = sorted(k for k, (rank, _) in structural.items() if len(shape) >= rank)
    last = draw(st.sampled_from(allowed), label="structural")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")

    def f(x):
        for name in chain:
            x = unary[name](x)
        return structural[last][1](x)

    f.__name__ = "∘".join([last] + chain[::-1])
    return shape, f, np.random.default_rng(seed)


# ---- jvp = J·v ------------------------------------------------------------------------------


@SETTINGS
@given(programs())
def test_jvp_matches_finite_differences(program):
    shape, f, rng = program
    x, v = rng.uniform(-1.5, 1.5, shape), rng.normal(size=shape)
    out, tangent = dd.jvp(f, (t64(x),), (t64(v),))
    np.testing.assert_allclose(np.asarray(out), np.asarray(f(t64(x))), **EXACT)
    # Richardson from a short step: the programs are smooth, and one central difference at
    # h = 1e-5 is off by h**2 * f''' / 6 ~ 1e-8 on steep chains such as cos((1.5 + sin x)**2.5)
    # (3 of 120 seeds failed); a long first step misses the fast ones (cube of cube)
    reference = numdiff.directional_derivative(as_np(f), [x], [v], h0=2.0**-12)
    np.testing.assert_allclose(np.asarray(tangent), reference, **FD)
    assert tangent.shape == out.shape and tangent.dtype == dd.float64


BROADCAST_SHAPES = [((2, 3), (3,)), ((2, 3), (2, 1)), ((2, 3), ()), ((3,), (2, 1, 3)), ((), ())]


@SETTINGS
@given(shapes=st.sampled_from(BROADCAST_SHAPES), seed=st.integers(0, 2**32 - 1))
def test_jvp_of_broadcasting_function_of_two_inputs(shapes, seed):
    rng = np.random.default_rng(seed)
    (sa, sb) = shapes
    a, b = rng.uniform(-1, 1, sa), rng.uniform(-1, 1, sb)
    va, vb = rng.normal(size=sa), rng.normal(size=sb)

    def f(a, b):
        return a * dd.sin(b) + dd.exp(a - b) / (2.0 + b * b) + dd.pow(a * a + 1.0, b)

    out, tangent = dd.jvp(f, (t64(a), t64(b)), (t64(va), t64(vb)))
    assert tangent.shape == np.broadcast_shapes(sa, sb)
    np.testing.assert_allclose(np.asarray(tangent), fd_jvp(as_np(f), [a, b], [va, vb]), **FD)
    # linearity in the tangent: the two inputs' contributions add up
    _, ta = dd.jvp(f, (t64(a), t64(b)), (t64(va), t64(np.zeros(sb))))
    _, tb = dd.jvp(f, (t64(a), t64(b)), (t64(np.zeros(sa)), t64(vb)))
    np.testing.assert_allclose(np.asarray(ta) + np.asarray(tb), np.asarray(tangent), **EXACT)


CLOSED_FORMS = {
    # name: (f, J·v as a numpy function of x, v)
    "sin": (dd.sin, lambda x, v: np.cos(x) * v),
    "exp": (dd.exp, lambda x, v: np.exp(x) * v),
    "tanh": (dd.tanh, lambda x, v: (1 - np.tanh(x) ** 2) * v),
    "pow": (lambda x: dd.pow(x * x + 1.0, 1.7), lambda x, v: 1.7 * (x * x + 1) ** 0.7 * 2 * x * v),
    "matmul": (lambda x: dd.matmul(t64(np.arange(12.0).reshape(4, 3)), dd.reshape(x, (3, -1))),
               lambda x, v: np.arange(12.0).reshape(4, 3) @ v.reshape(3, -1)),
    "norm": (dd.norm, lambda x, v: np.sum(x * v) / np.linalg.norm(x)),
    "reduce_sum": (lambda x: dd.reduce_sum(x, axis=0), lambda x, v: v.sum(axis=0)),
    "softmax": (lambda x: dd.softmax(x, axis=0),
                lambda x, v: (lambda s: s * (v - (s * v).sum(axis=0)))(np.exp(x) / np.exp(x).sum(axis=0))),
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.sampled_from([3, 6]))
def test_jvp_closed_forms(name, seed, n):
    f, expected = CLOSED_FORMS[name]
    rng = np.random.default_rng(seed)
    x, v = rng.uniform(-2, 2, (3, n // 3)), rng.normal(size=(3, n // 3))
    _, tangent = dd.jvp(f, (t64(x),), (t64(v),))
    np.testing.assert_allclose(np.asarray(tangent), expected(x, v), **EXACT)


def test_jvp_of_nested_outputs_keeps_the_structure():
    x, v = t64([0.3, -1.2]), t64([1.0, 2.0])
    out, tangent = dd.jvp(lambda x: {"a": dd.sin(x), "b": [x * 2.0, dd.reduce_sum(x)]}, (x,), (v,))
    assert sorted(out) == sorted(tangent) == ["a", "b"]
    np.testing.assert_allclose(np.asarray(tangent["a"]), np.cos([0.3, -1.2]) * [1, 2], **EXACT)
    np.testing.assert_allclose(np.asarray(tangent["b"][0]), [2.0, 4.0], **EXACT)
    np.testing.assert_allclose(float(tangent["b"][1]), 3.0, **EXACT)


def test_jvp_has_aux_returns_aux_untouched():
    x = t64([1.0, 2.0])
    out, tangent, aux = dd.jvp(lambda x: (dd.reduce_sum(x * x), "note"), (x,), (t64([1.0, 0.0]),),
                               has_aux=True)
    assert aux == "note"
    assert float(out) == 5.0 and float(tangent) == 2.0


def test_jvp_of_output_independent_of_input_is_zero():
    out, tangent = dd.jvp(lambda x: t64([1.0, 2.0]) * 3.0, (t64(0.5),), (t64(1.0),))
    np.testing.assert_array_equal(np.asarray(tangent), [0.0, 0.0])


def test_accumulator_jvp_unconnected_none_or_zero():
    x, c = t64([1.0, 2.0]), t64([3.0, 4.0])
    with ForwardAccumulator(x, t64([1.0, 1.0])) as acc:
        y = c * 2.0
        z = dd.sin(x)
    assert acc.jvp(y) is None
    np.testing.assert_array_equal(np.asarray(acc.jvp(y, unconnected_gradients="zero")), [0.0, 0.0])
    np.testing.assert_allclose(np.asarray(acc.jvp(z)), np.cos([1.0, 2.0]), **EXACT)


def test_accumulator_ignores_ops_after_exit_and_sees_only_its_own_primals():
    x, y = t64(1.0), t64(2.0)
    with ForwardAccumulator(x, t64(1.0)) as acc:
        a = x * y
    b = a * x  # outside the context: not followed
    assert float(acc.jvp(a)) == 2.0
    assert acc.jvp(b) is None


def test_stop_gradient_cuts_tangents():
    x = t64(1.5)
    _, tangent = dd.jvp(lambda x: x * dd.stop_gradient(x), (x,), (t64(1.0),))
    assert float(tangent) == 1.5


# ---- vector tangents --------------------------------------------------------------------------


@SETTINGS
@given(programs(kinked=True), st.integers(1, 4))
def test_batched_tangents_equal_separate_jvps(program, k):
    shape, f, rng = program
    x = t64(rng.uniform(-1.5, 1.5, shape))
    directions = rng.normal(size=(k,) + shape)
    with ForwardAccumulator(x, t64(directions), batched=True) as acc:
        y = f(x)
    batched = acc.jvp(y, unconnected_gradients="zero")
    assert batched.shape == (k,) + y.shape
    for i in range(k):
        _, single = dd.jvp(f, (x,), (t64(directions[i]),))
        np.testing.assert_allclose(np.asarray(batched)[i], np.asarray(single), **EXACT,
                                   err_msg=f"direction {i} of {f.__name__}")


@SETTINGS
@given(shapes=st.sampled_from(BROADCAST_SHAPES + [((2, 3), (3, 4)), ((2, 2, 3), (3, 2))]),
       k=st.integers(1, 3), seed=st.integers(0, 2**32 - 1), only_first=st.booleans())
def test_batched_tangents_on_two_primals(shapes, k, seed, only_first):
    """Two primals (broadcasting or matmul), both batched, or only the first one watched."""
    rng = np.random.default_rng(seed)
    sa, sb = shapes
    a, b = t64(rng.uniform(-1, 1, sa)), t64(rng.uniform(-1, 1, sb))
    va, vb = rng.normal(size=(k,) + sa), rng.normal(size=(k,) + sb)
    is_matmul = len(sb) == 2 and sa[-1:] == sb[:1]

    def f(a, b):
        if is_matmul:
            return dd.tanh(dd.matmul(a, b)) * 2.0
        return dd.maximum(a * b, dd.sin(a)) + dd.where(b > 0, a, b * b)

    primals, tangents = ([a], [t64(va)]) if only_first else ([a, b], [t64(va), t64(vb)])
    with ForwardAccumulator(primals, tangents, batched=True) as acc:
        y = f(a, b)
    batched = np.asarray(acc.jvp(y))
    assert batched.shape == (k,) + y.shape
    for i in range(k):
        ts = (t64(va[i]), t64(np.zeros(sb) if only_first else vb[i]))
        _, single = dd.jvp(f, (a, b), ts)
        np.testing.assert_allclose(batched[i], np.asarray(single), **EXACT)


def test_batched_identity_directions_give_the_jacobian():
    x = t64([0.1, 0.7, -0.4])
    with ForwardAccumulator(x, t64(np.eye(3)), batched=True) as acc:
        y = dd.softmax(x)
    s = np.exp([0.1, 0.7, -0.4]) / np.exp([0.1, 0.7, -0.4]).sum()
    np.testing.assert_allclose(np.asarray(acc.jvp(y)), np.diag(s) - np.outer(s, s), **EXACT)


@pytest.mark.parametrize("primal_shape, tangent_shape", [
    ((3,), (3,)),          # batched but no batch axis
    ((3,), (2, 4)),        # wrong primal part
    ((2, 3), (2, 3, 1)),
    ((), ()),              # a scalar primal needs shape (k,)
])
def test_batched_tangent_shape_errors_name_both_shapes(primal_shape, tangent_shape):
    p = t64(np.zeros(primal_shape))
    with pytest.raises(ValueError, match="does not match its primal") as err:
        ForwardAccumulator(p, t64(np.ones(tangent_shape)), batched=True)
    msg = str(err.value)
    assert str(tangent_shape) in msg and str(primal_shape) in msg and "batch" in msg


def test_batched_tangents_must_agree_on_k():
    with pytest.raises(ValueError, match=r"disagree.*\b2\b.*\b3\b"):
        ForwardAccumulator([t64([1.0]), t64([2.0])], [t64(np.ones((2, 1))), t64(np.ones((3, 1)))],
                           batched=True)


def test_unbatched_accumulator_rejects_a_tangent_with_an_extra_axis():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3,\)"):
        ForwardAccumulator(t64([1.0, 2.0, 3.0]), t64(np.ones((2, 3))))


# ---- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("tangent, bad", [
    (np.ones(4), "shape"),
    (np.ones((3, 1)), "shape"),
    (1.0, "shape"),
    (dd.constant(np.ones(3, np.float32)), "dtype"),
    (np.ones(3, np.float32), "dtype"),
    (np.ones(3, np.int64), "dtype"),
])
def test_jvp_tangent_mismatch_is_a_value_error_naming_both(tangent, bad):
    x = t64([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="does not match its primal") as err:
        dd.jvp(dd.sin, (x,), (tangent,))
    msg = str(err.value)
    t_shape, t_dtype = np.shape(tangent), np.asarray(tangent).dtype.name
    if bad == "shape":
        assert str(t_shape) in msg and "(3,)" in msg, msg
    else:
        assert t_dtype in msg and "float64" in msg, msg


def test_jvp_counts_primals_and_tangents():
    with pytest.raises(ValueError, match="2 primals but 1 tangents"):
        dd.jvp(lambda a, b: a * b, (t64(1.0), t64(2.0)), (t64(1.0),))


@pytest.mark.parametrize("tangent", [np.ones(3, np.int64), np.ones(3), None])
def test_jvp_integer_primal_warns_and_has_no_tangent(tangent):
    i = np.arange(3)

    def f(i, x):
        return dd.cast(i, dd.float64) * x

    x = t64([1.0, 2.0, 3.0])
    with pytest.warns(NonFloatWatchWarning, match="int64"):
        out, tangent_out = dd.jvp(f, (i, x), (tangent, t64([1.0, 1.0, 1.0])))
    # only x carries a tangent: d/dx (i * x) · 1 = i
    np.testing.assert_array_equal(np.asarray(tangent_out), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(np.asarray(out), [0.0, 2.0, 6.0])


def test_jvp_only_integer_primal_gives_no_tangent_for_integer_output():
    with pytest.warns(NonFloatWatchWarning, match="int64 primal cannot carry a tangent"):
        out, tangent = dd.jvp(lambda i: i * 2, (np.arange(3),), (np.ones(3, np.int64),))
    assert tangent is None
    np.testing.assert_array_equal(np.asarray(out), [0, 2, 4])


def test_accumulator_integer_primal_warns_and_is_ignored():
    i = dd.constant(np.arange(3))
    with pytest.warns(NonFloatWatchWarning, match="int64"):
        acc = ForwardAccumulator(i, dd.constant(np.ones(3, np.int64)))
    with acc:
        y = dd.cast(i, dd.float64) * 2.0
    assert acc.jvp(y) is None


def test_accumulator_rejects_non_tensor_primals():
    with pytest.raises(TypeError, match="primals must be Tensors"):
        ForwardAccumulator(np.ones(3), np.ones(3))


def test_well_formed_jvp_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, tangent = dd.jvp(dd.sin, (t64([1.0]),), ([1.0],))
    np.testing.assert_allclose(np.asarray(tangent), np.cos([1.0]), **EXACT)


def test_accumulator_refuses_one_primal_listed_twice():
    """As in TensorFlow: listing a tensor twice is likely a mistake (the tangents would have to
    be summed); silently keeping one of the two tangents would be wrong either way."""
    x = t64(2.0)
    with pytest.raises(ValueError, match="more than once"):
        ForwardAccumulator([x, x], [t64(1.0), t64(10.0)])
