"""dualad.custom_gradient (TensorFlow style) and dualad.extend.primitive (new primitives with
VJP and JVP rules) under tapes, accumulators, nesting, jacfwd and jacrev.

Tolerances are helpers.FD / helpers.EXACT (float64) and helpers.EXACT32 (float32), defined and
justified once, in helpers.py.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dualad as dd
from dualad import ForwardAccumulator, GradientTape, extend, ops
from helpers import EXACT, EXACT32, FD, SETTINGS, fd_jacobian, fd_jvp, t64




def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ---- custom_gradient -----------------------------------------------------------------------


@dd.custom_gradient
def log1pexp(x):
    """The TensorFlow documentation's example: a numerically stable gradient of log(1 + e^x)."""
    e = dd.exp(x)

    def grad(upstream):
        return upstream * (1 - 1 / (1 + e))

    return dd.log(1 + e), grad


def log1pexp_naive(x):
    return dd.log(1 + dd.exp(x))


def test_log1pexp_gradient_is_stable_where_the_body_is_not():
    x = dd.constant(100.0)  # float32: exp(100) overflows
    assert np.isnan(float(dd.grad(log1pexp_naive)(x)))  # the body's own gradient: inf / inf
    g = dd.grad(log1pexp)(x)
    assert g.dtype == dd.float32 and float(g) == 1.0
    np.testing.assert_allclose(float(dd.grad(log1pexp)(dd.constant(0.0))), 0.5, **EXACT32)


@SETTINGS
@given(x=st.floats(-30.0, 30.0))
def test_log1pexp_gradient_is_the_sigmoid(x):
    value, g = dd.value_and_grad(log1pexp)(t64(x))
    np.testing.assert_allclose(float(value), np.log1p(np.exp(x)), **EXACT)
    np.testing.assert_allclose(float(g), sigmoid(x), **EXACT)
    # upstream gradients are passed to grad_fn: d(3 f)/dx = 3 f'
    np.testing.assert_allclose(float(dd.grad(lambda x: 3.0 * log1pexp(x))(t64(x))), 3 * sigmoid(x), **EXACT)


def test_custom_gradient_replaces_the_body_gradient():
    @dd.custom_gradient
    def fake(x):
        def grad(dy):
            return dy * 7.0

        return dd.sin(x), grad

    x = t64([0.1, 0.2, 0.3])
    np.testing.assert_allclose(np.asarray(fake(x)), np.sin([0.1, 0.2, 0.3]), **EXACT)
    np.testing.assert_allclose(np.asarray(dd.grad(lambda x: dd.reduce_sum(fake(x)))(x)), [7.0] * 3, **EXACT)
    np.testing.assert_allclose(np.asarray(dd.jacrev(fake)(x)), 7.0 * np.eye(3), **EXACT)
    with GradientTape(persistent=True) as tape:  # twice on one persistent tape
        tape.watch(x)
        y = dd.reduce_sum(fake(x) * t64([1.0, 2.0, 3.0]))
    for _ in range(2):
        np.testing.assert_allclose(np.asarray(tape.gradient(y, x)), [7.0, 14.0, 21.0], **EXACT)


@SETTINGS
@given(x=st.floats(-5.0, 5.0))
def test_second_and_third_derivatives_through_grad_fn(x):
    s = sigmoid(x)
    second, third = s * (1 - s), s * (1 - s) * (1 - 2 * s)
    np.testing.assert_allclose(float(dd.derivative(log1pexp, 2)(t64(x))), second, **EXACT)
    np.testing.assert_allclose(float(dd.derivative(log1pexp, 3)(t64(x))), third, **EXACT)
    xt = t64(x)
    with GradientTape() as outer:
        outer.watch(xt)
        with GradientTape() as inner:
            inner.watch(xt)
            y = log1pexp(xt)
        g = inner.gradient(y, xt)
    np.testing.assert_allclose(float(outer.gradient(g, xt)), second, **EXACT)


def test_second_derivative_through_grad_fn_matches_finite_differences():
    x = np.array([-1.0, 0.5, 2.0])

    def f(x):
        return dd.reduce_sum(log1pexp(x * x[::-1]))

    grad_np = lambda x: np.asarray(dd.grad(f)(t64(x)))
    with GradientTape() as outer:
        xt = t64(x)
        outer.watch(xt)
        g = dd.grad(f)(xt)
    hess = np.asarray(outer.jacobian(g, xt))
    fd = fd_jacobian(grad_np, x)
    np.testing.assert_allclose(hess, fd, **FD)


@dd.custom_gradient
def scaled_product(a, b):
    """a * b (broadcasting), with deliberately scaled gradients so that they are told apart."""
    def grad(dy):
        return dy * b * 10.0, dy * a * 100.0

    return a * b, grad


def test_custom_gradient_with_several_inputs():
    ga, gb = dd.grad(scaled_product, argnums=(0, 1))(t64(2.0), t64(3.0))
    assert (float(ga), float(gb)) == (30.0, 200.0)


def test_custom_gradient_with_broadcasting_inputs_sums_back_to_their_shapes():
    a, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 10.0])
    ga, gb = dd.grad(lambda a, b: dd.reduce_sum(scaled_product(a, b)), argnums=(0, 1))(t64(a), t64(b))
    assert ga.shape == (2, 2) and gb.shape == (2,)
    np.testing.assert_allclose(np.asarray(ga), 10.0 * np.broadcast_to(b, (2, 2)), **EXACT)
    np.testing.assert_allclose(np.asarray(gb), 100.0 * a.sum(axis=0), **EXACT)


def test_custom_gradient_none_for_an_input_means_no_gradient():
    @dd.custom_gradient
    def first_only(a, b):
        def grad(dy):
            return dy * 2.0, None

        return a * b, grad

    ga, gb = dd.grad(first_only, argnums=(0, 1))(t64(2.0), t64(3.0))
    assert float(ga) == 2.0 and float(gb) == 0.0  # grad's unconnected_gradients='zero'
    with GradientTape() as tape:
        b = t64(3.0)
        tape.watch(b)
        y = first_only(t64(2.0), b)
    assert tape.gradient(y, b) is None


def test_custom_gradient_grad_fn_must_return_one_gradient_per_input():
    @dd.custom_gradient
    def wrong(a, b):
        return a * b, lambda dy: dy

    with pytest.raises(ValueError, match="wrong's grad_fn returned 1 gradients for 2 inputs"):
        dd.grad(wrong)(t64(2.0), t64(3.0))


@dd.custom_gradient
def sin_with_gradient_seven(x):
    """sin(x) whose gradient is declared to be 7 (told apart from the body's cos)."""
    def grad(dy):
        return dy * 7.0

    return dd.sin(x), grad


def forward_uses():
    """Each forward-mode entry point, as (name, function of (f, x, t) giving f's tangent)."""

    def via_jvp(f, x, t):
        return dd.jvp(f, (x,), (t,))[1]

    def via_accumulator(f, x, t):
        with ForwardAccumulator(x, t) as acc:
            y = f(x)
        return acc.jvp(y)

    def via_jacfwd(f, x, t):
        return ops.reduce_sum(dd.jacfwd(f)(x) * t, axis=-1)

    def via_batched_accumulator(f, x, t):
        with ForwardAccumulator(x, ops.stack([t, 2.0 * t]), batched=True) as acc:
            y = f(x)
        both = acc.jvp(y)
        np.testing.assert_allclose(np.asarray(both[1]), 2 * np.asarray(both[0]), **EXACT)
        return both[0]

    def via_reverse_over_forward(f, x, t):
        with GradientTape() as tape:
            tape.watch(x)
            with ForwardAccumulator(x, t) as acc:
                y = f(x)
        return acc.jvp(y)

    return [via_jvp, via_accumulator, via_jacfwd, via_batched_accumulator,
            via_reverse_over_forward]


@pytest.mark.parametrize("use", forward_uses(), ids=lambda f: f.__name__)
def test_forward_mode_through_a_custom_gradient_uses_grad_fn(use):
    """Forward mode transposes grad_fn: the tangent follows the declared gradient (7), not the
    body's derivative (cos), and log1pexp's tangent matches finite differences."""
    x, t = t64([0.5, 1.5, -2.0]), t64([1.0, -0.5, 2.0])
    np.testing.assert_allclose(np.asarray(use(sin_with_gradient_seven, x, t)), 7.0 * np.asarray(t),
                               **EXACT)
    fd = fd_jvp(lambda x: np.log1p(np.exp(x)), [np.asarray(x)], [np.asarray(t)])
    np.testing.assert_allclose(np.asarray(use(log1pexp, x, t)), fd, **FD)


def test_forward_mode_with_several_broadcasting_inputs():
    a, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 10.0])
    ta, tb = np.array([[0.5, -1.0], [2.0, 0.25]]), np.array([3.0, -2.0])
    _, tangent = dd.jvp(scaled_product, (t64(a), t64(b)), (t64(ta), t64(tb)))
    # grad_fn says d/da = 10 b and d/db = 100 a
    np.testing.assert_allclose(np.asarray(tangent), 10.0 * b * ta + 100.0 * a * tb, **EXACT)


@SETTINGS
@given(x=st.floats(-5.0, 5.0))
def test_second_derivatives_in_forward_mode_through_grad_fn(x):
    """forward over forward, forward over reverse (hvp) and reverse over forward all
    differentiate the transposed grad_fn: log1pexp'' = s (1 - s)."""
    s = sigmoid(x)
    xt, one = t64(x), t64(1.0)
    with ForwardAccumulator(xt, one) as outer:
        with ForwardAccumulator(xt, one) as inner:
            y = log1pexp(xt)
        first = inner.jvp(y)
    np.testing.assert_allclose(float(first), s, **EXACT)
    np.testing.assert_allclose(float(outer.jvp(first)), s * (1 - s), **EXACT)
    np.testing.assert_allclose(float(dd.hvp(log1pexp, xt, one)), s * (1 - s), **EXACT)
    with GradientTape() as tape:
        tape.watch(xt)
        with ForwardAccumulator(xt, one) as acc:
            y = log1pexp(xt)
        first = acc.jvp(y)
    np.testing.assert_allclose(float(tape.gradient(first, xt)), s * (1 - s), **EXACT)


def test_forward_mode_hessian_through_grad_fn_matches_finite_differences():
    x = np.array([-1.0, 0.5, 2.0])

    def f(x):
        return dd.reduce_sum(log1pexp(x * x[::-1]))

    grad_np = lambda x: np.asarray(dd.grad(f)(t64(x)))
    np.testing.assert_allclose(np.asarray(dd.hessian(f)(t64(x))), fd_jacobian(grad_np, x), **FD)
    np.testing.assert_allclose(np.asarray(dd.jacfwd(dd.grad(f))(t64(x))), fd_jacobian(grad_np, x),
                               **FD)
    # batched forward over batched forward: both levels transpose grad_fn
    np.testing.assert_allclose(np.asarray(dd.jacfwd(dd.jacfwd(f))(t64(x))), fd_jacobian(grad_np, x),
                               **FD)


sine_without_jvp = extend.primitive(
    "test_custom_gradient.sine_without_jvp", np.sin,
    vjp=[lambda g, ans, args, p: g * ops.cos(args[0])])


@dd.custom_gradient
def sine_by_custom_gradient(x):
    """Forward mode through a body that has none (a reverse-only primitive): grad_fn gives it."""
    def grad(dy):
        return dy * dd.cos(x)

    return sine_without_jvp(x), grad


@pytest.mark.parametrize("use", forward_uses(), ids=lambda f: f.__name__)
def test_forward_mode_needs_no_jvp_rule_in_the_body(use):
    x, t = t64([0.5, 1.5, -2.0]), t64([1.0, -0.5, 2.0])
    np.testing.assert_allclose(np.asarray(use(sine_by_custom_gradient, x, t)),
                               np.cos(np.asarray(x)) * np.asarray(t), **EXACT)


def test_nested_forward_mode_still_differentiates_the_body():
    """Outer accumulators see the body (grad_fn's closures need their tangents), so a body
    without JVP rules is refused there, and the innermost accumulator works again after."""
    x, one = t64(0.5), t64(1.0)
    with ForwardAccumulator(x, one) as outer:
        with ForwardAccumulator(x, one) as inner:
            with pytest.raises(NotImplementedError, match="sine_without_jvp.*no JVP rule"):
                sine_by_custom_gradient(x)
            y = log1pexp(x)
        first = inner.jvp(y)
    np.testing.assert_allclose(float(first), sigmoid(0.5), **EXACT)
    np.testing.assert_allclose(float(outer.jvp(first)), sigmoid(0.5) * (1 - sigmoid(0.5)), **EXACT)
    with ForwardAccumulator(x, one) as acc:  # an exception in the body leaves acc recording
        with pytest.raises(ZeroDivisionError, match="division by zero"):
            dd.custom_gradient(lambda x: (1 / 0, None))(x)
        y = dd.sin(x)
    np.testing.assert_allclose(float(acc.jvp(y)), np.cos(0.5), **EXACT)


def test_forward_mode_takes_a_constant_zero_gradient_as_no_contribution():
    @dd.custom_gradient
    def only_first_counts(a, b):
        def grad(dy):
            return dy * 3.0, 0.0   # a Python zero (float32) for a float64 input

        return a + b, grad

    a, b = t64(1.0), t64(5.0)
    _, tangent = dd.jvp(only_first_counts, (a, b), (t64(-1.0), t64(10.0)))
    assert float(tangent) == -3.0


def test_a_gradient_of_the_wrong_shape_is_refused_in_both_modes():
    @dd.custom_gradient
    def summed_gradient(x):
        def grad(dy):
            return dd.reduce_sum(dy, keepdims=True)   # shape (1,) for an input of shape (3,)

        return x * 2.0, grad

    x = t64([1.0, 2.0, 3.0])
    message = r"summed_gradient's grad_fn returned a gradient of shape \(1,\) for input 0 of shape \(3,\)"
    with pytest.raises(ValueError, match=message):
        dd.grad(lambda x: dd.reduce_sum(summed_gradient(x)))(x)
    with pytest.raises(ValueError, match=message):
        dd.jvp(summed_gradient, (x,), (t64([1.0, 1.0, 1.0]),))


def test_forward_mode_refuses_a_grad_fn_computed_outside_dualad():
    """A grad_fn computed in numpy cannot be transposed (its result does not depend on the
    upstream gradient): a clear error, not a tangent of zero."""
    @dd.custom_gradient
    def numpy_gradient(x):
        def grad(dy):
            return np.asarray(dy) * np.cos(np.asarray(x))

        return dd.sin(x), grad

    x = t64([0.1, 0.2])
    np.testing.assert_allclose(np.asarray(dd.grad(lambda x: dd.reduce_sum(numpy_gradient(x)))(x)),
                               np.cos([0.1, 0.2]), **EXACT)  # reverse mode is fine
    with pytest.raises(ValueError, match="numpy_gradient.*input 0 does not depend on the upstream"):
        dd.jvp(numpy_gradient, (x,), (t64([1.0, 1.0]),))


def test_custom_gradient_under_an_accumulator_that_does_not_reach_it_is_fine():
    y = t64(2.0)
    with ForwardAccumulator(y, t64(1.0)) as acc:
        z = log1pexp(t64(0.0)) * y
    np.testing.assert_allclose(float(acc.jvp(z)), np.log(2.0), **EXACT)


# ---- extend.primitive -------------------------------------------------------------------------

cube = extend.primitive(
    "test_custom_gradient.cube", lambda x: x ** 3,
    vjp=[lambda g, ans, args, params: g * 3.0 * args[0] ** 2],
    jvp=[lambda t, ans, args, params: t * 3.0 * args[0] ** 2])

# a two-input primitive with a parameter: a + w * b
weighted_sum = extend.primitive(
    "test_custom_gradient.weighted_sum", lambda a, b, w=1.0: a + w * b,
    vjp=[lambda g, ans, args, p: g, lambda g, ans, args, p: g * p["w"]],
    jvp=[lambda t, ans, args, p: t, lambda t, ans, args, p: t * p["w"]])

# a reduction written the natural way: its JVP rule knows nothing about batches of tangents
total = extend.primitive(
    "test_custom_gradient.total", lambda x: np.sum(x),
    vjp=[lambda g, ans, args, p: ops.broadcast_to(g, args[0].shape)],
    jvp=[lambda t, ans, args, p: ops.reduce_sum(t)])

# a linear primitive: its JVP is the primitive applied to the tangent
row_sums = extend.primitive(
    "test_custom_gradient.row_sums", lambda x: np.sum(x, axis=-1),
    vjp=[lambda g, ans, args, p: ops.broadcast_to(ops.expand_dims(g, -1), args[0].shape)],
    linear=True)


def test_primitive_value_and_first_derivatives_in_both_modes():
    x = t64([1.0, -2.0, 0.5])
    np.testing.assert_allclose(np.asarray(cube(x)), [1.0, -8.0, 0.125], **EXACT)
    expected = 3 * np.array([1.0, 4.0, 0.25])
    np.testing.assert_allclose(np.asarray(dd.grad(lambda x: dd.reduce_sum(cube(x)))(x)), expected, **EXACT)
    _, tangent = dd.jvp(cube, (x,), (t64([1.0, 1.0, 1.0]),))
    np.testing.assert_allclose(np.asarray(tangent), expected, **EXACT)
    # scalar tensors (the core's C fast path for built-ins) work as well
    assert float(dd.grad(cube)(t64(2.0))) == 12.0


@SETTINGS
@given(x=st.floats(-3.0, 3.0))
def test_primitive_nested_to_third_order_in_every_composition(x):
    xt, one = t64(x), t64(1.0)
    assert float(dd.derivative(cube, 3)(xt)) == 6.0
    np.testing.assert_allclose(float(dd.derivative(cube, 2)(xt)), 6 * x, **EXACT)
    np.testing.assert_allclose(float(dd.hvp(cube, xt, one)), 6 * x, **EXACT)  # forward over reverse
    with GradientTape() as tape:                                                # reverse over forward
        tape.watch(xt)
        with ForwardAccumulator(xt, one) as acc:
            y = cube(xt)
        d1 = acc.jvp(y)
    np.testing.assert_allclose(float(tape.gradient(d1, xt)), 6 * x, **EXACT)
    with ForwardAccumulator(xt, one) as outer:                                  # forward over forward
        with ForwardAccumulator(xt, one) as inner:
            y = cube(xt)
        d1 = inner.jvp(y)
    np.testing.assert_allclose(float(outer.jvp(d1)), 6 * x, **EXACT)


@pytest.mark.parametrize("name, f, shape", [
    ("cube", cube, (3,)),
    ("cube of matrix", lambda x: cube(x) * 2.0, (2, 3)),
    ("weighted_sum", lambda x: weighted_sum(x, dd.sin(x[::-1]), w=3.0), (4,)),
    ("total", lambda x: total(cube(x)) * x, (3,)),
    ("row_sums", lambda x: row_sums(cube(x)), (2, 3)),
])
def test_primitive_jacfwd_equals_jacrev(name, f, shape):
    x = t64(np.random.default_rng(1).uniform(-1, 1, shape))
    fwd, rev = dd.jacfwd(f)(x), dd.jacrev(f)(x)
    assert fwd.shape == rev.shape
    np.testing.assert_allclose(np.asarray(fwd), np.asarray(rev), **EXACT, err_msg=name)
    # and against differences of f's values, a reference that is not dualad's derivatives
    value_np = lambda x: np.asarray(f(t64(x)))
    np.testing.assert_allclose(np.asarray(rev), fd_jacobian(value_np, np.asarray(x)), **FD,
                               err_msg=name)
    h = dd.hessian(lambda x: dd.reduce_sum(f(x)))(x)  # batched forward over reverse
    grad_np = lambda x: np.asarray(dd.grad(lambda x: dd.reduce_sum(f(x)))(t64(x)))
    fd = fd_jacobian(grad_np, np.asarray(x))
    np.testing.assert_allclose(np.asarray(h), fd, **FD, err_msg=name)


def test_primitive_batched_tangents_equal_separate_jvps():
    x = t64([[0.5, -1.0, 2.0], [1.5, 0.1, -0.3]])
    directions = np.random.default_rng(2).normal(size=(4, 2, 3))

    def f(x):
        return weighted_sum(row_sums(cube(x)), total(x), w=0.5)

    with ForwardAccumulator(x, t64(directions), batched=True) as acc:
        y = f(x)
    batched = np.asarray(acc.jvp(y))
    assert batched.shape == (4, 2)
    for i in range(4):
        np.testing.assert_allclose(batched[i], np.asarray(dd.jvp(f, (x,), (t64(directions[i]),))[1]), **EXACT)


def test_primitive_with_batch_aware_rules_can_say_so():
    aware = extend.primitive(
        "test_custom_gradient.total_batch_aware", lambda x: np.sum(x),
        vjp=[lambda g, ans, args, p: ops.broadcast_to(g, args[0].shape)],
        jvp=[lambda t, ans, args, p: ops.reduce_sum(t, axis=tuple(range(t.ndim - args[0].ndim, t.ndim)))],
        batched_jvp=True)
    x = t64([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(np.asarray(dd.jacfwd(aware)(x)), np.ones((2, 2)), **EXACT)


def test_primitive_without_jvp_rule_refuses_forward_mode():
    reverse_only = extend.primitive(
        "test_custom_gradient.reverse_only", np.sin,
        vjp=[lambda g, ans, args, p: g * ops.cos(args[0])])
    x = t64([0.1, 0.2])
    np.testing.assert_allclose(np.asarray(dd.grad(lambda x: dd.reduce_sum(reverse_only(x)))(x)),
                               np.cos([0.1, 0.2]), **EXACT)
    with pytest.raises(NotImplementedError, match="reverse_only.*JVP"):
        dd.jvp(reverse_only, (x,), (t64([1.0, 1.0]),))


def test_primitive_names_are_unique():
    with pytest.raises(ValueError, match="already exists"):
        extend.primitive("test_custom_gradient.cube", lambda x: x)
    with pytest.raises(ValueError, match="already exists"):
        extend.primitive("sin", np.sin)


def test_grad_fn_is_called_again_for_each_gradient_computation():
    """grad_fn's result may be reused across the inputs of one sweep only: a second gradient
    call with the same upstream tensor, now recorded by an outer tape, must run grad_fn again
    (a stale, unrecorded result gave the outer tape nothing to differentiate)."""
    x, u = t64([0.3, 0.5]), t64([1.0, 1.0])
    with GradientTape() as outer:
        outer.watch(x)
        with GradientTape(persistent=True) as inner:
            inner.watch(x)
            y = log1pexp(x)
        with outer.stop_recording():
            first = inner.gradient(y, x, output_gradients=u)
        g = inner.gradient(y, x, output_gradients=u)
    s = sigmoid(np.array([0.3, 0.5]))
    np.testing.assert_allclose(np.asarray(first), s, **EXACT)
    np.testing.assert_allclose(np.asarray(g), s, **EXACT)
    second = outer.gradient(g, x)
    assert second is not None
    np.testing.assert_allclose(np.asarray(second), s * (1 - s), **EXACT)
