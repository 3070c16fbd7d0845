"""dualad.custom_gradient against TensorFlow's contract: several outputs, decorated methods,
the `variables=` keyword, errors raised by grad_fn, and higher derivatives through each.

Tolerances are helpers.FD / helpers.EXACT (float64), defined and justified once, in helpers.py.
"""
import pickle
import threading

import numpy as np
import pytest
from hypothesis import given

import dualad as dd
from dualad import ForwardAccumulator, GradientTape, ops
from helpers import EXACT, FD, SETTINGS, arrays, fd_jacobian, fd_jvp, t64


# ---- several outputs -------------------------------------------------------------------------

received = []   # the upstream gradients each call of sin_and_square's grad_fn got


@dd.custom_gradient
def sin_and_square(x):
    """(sin x, x^2) with declared gradients 7 and 100 x, told apart from the bodies'."""
    def grad(d_sin, d_square):
        received.append((np.asarray(d_sin), np.asarray(d_square)))
        return d_sin * 7.0 + d_square * 100.0 * x

    return (dd.sin(x), x * x), grad


def test_several_outputs_give_grad_fn_one_upstream_gradient_each():
    x = t64([0.5, -1.0])
    received.clear()
    with GradientTape() as tape:
        tape.watch(x)
        s, q = sin_and_square(x)
        y = dd.reduce_sum(2.0 * s + 3.0 * q)
    np.testing.assert_allclose(np.asarray(s), np.sin([0.5, -1.0]), **EXACT)
    np.testing.assert_allclose(np.asarray(q), [0.25, 1.0], **EXACT)
    g = tape.gradient(y, x)
    assert len(received) == 1  # one call of grad_fn for both outputs
    np.testing.assert_array_equal(received[0][0], [2.0, 2.0])
    np.testing.assert_array_equal(received[0][1], [3.0, 3.0])
    np.testing.assert_allclose(np.asarray(g), 2 * 7.0 + 3 * 100.0 * np.array([0.5, -1.0]), **EXACT)


def test_an_unused_output_gets_a_zero_upstream_gradient():
    # as TensorFlow in eager mode: zeros shaped like the output, not None
    x = t64([0.5, -1.0])
    received.clear()
    g = dd.grad(lambda x: dd.reduce_sum(sin_and_square(x)[1]))(x)
    assert len(received) == 1
    np.testing.assert_array_equal(received[0][0], [0.0, 0.0])
    np.testing.assert_allclose(np.asarray(g), 100.0 * np.array([0.5, -1.0]) * 1.0, **EXACT)


def test_nested_outputs_of_mixed_dtypes_keep_their_structure():
    @dd.custom_gradient
    def structured(x):
        def grad(d_low, d_same, d_count):
            assert (d_low.dtype, d_same.dtype, d_count.dtype) == (dd.float32, dd.float64, dd.int32)
            return ops.cast(d_low, dd.float64) * 2.0 + ops.reduce_sum(d_same) * 3.0

        return [ops.cast(x, dd.float32), (x * 1.0, ops.constant([4, 5]))], grad

    x = t64(1.5)
    with GradientTape() as tape:
        tape.watch(x)
        low, (same, count) = structured(x)
        y = ops.cast(low, dd.float64) * 10.0 + dd.reduce_sum(same)
    assert (low.dtype, same.dtype, count.dtype) == (dd.float32, dd.float64, dd.int32)
    assert float(low) == 1.5 and float(same) == 1.5 and list(np.asarray(count)) == [4, 5]
    assert float(tape.gradient(y, x)) == 10.0 * 2.0 + 3.0


def test_several_outputs_in_forward_mode_and_second_order():
    x, t = t64([0.5, -1.0]), t64([1.0, 2.0])
    with ForwardAccumulator(x, t) as acc:
        s, q = sin_and_square(x)
    np.testing.assert_allclose(np.asarray(acc.jvp(s)), 7.0 * np.asarray(t), **EXACT)
    np.testing.assert_allclose(np.asarray(acc.jvp(q)), 100.0 * np.asarray(x) * np.asarray(t), **EXACT)

    def f(x):
        s, q = sin_and_square(x)
        return dd.reduce_sum(s * q)
    # d/dx (s q) with the declared derivatives: 7 q + 100 x s; its derivative again through
    # grad_fn: the declared ones once more (s' = 7, q' = 100 x): 7*100x + 100 s + 100x*7
    xv = np.asarray(x)
    expected = np.diag(1400.0 * xv + 100.0 * np.sin(xv))
    np.testing.assert_allclose(np.asarray(dd.hessian(f)(x)), expected, **EXACT)      # fwd over rev
    with GradientTape() as outer:                                                     # rev over rev
        outer.watch(x)
        g = dd.grad(f)(x)
    np.testing.assert_allclose(np.asarray(outer.jacobian(g, x)), expected, **EXACT)


@dd.custom_gradient
def product_and_sine(a, b):
    """(a * b broadcast, sin a) with deliberately wrong but linear gradients (3 and 5 times the
    true ones), so that only grad_fn can explain the tangents."""
    def grad(d_product, d_sine):
        return (d_product * b * 3.0 + d_sine * dd.cos(a) * 5.0,
                d_product * a * 3.0)

    return (a * b, dd.sin(a)), grad


@SETTINGS
@given(a=arrays((2, 3)), b=arrays((3,)), ta=arrays((2, 3)), tb=arrays((3,)),
       u_product=arrays((2, 3)), u_sine=arrays((2, 3)))
def test_forward_mode_is_the_transpose_of_grad_fn(a, b, ta, tb, u_product, u_sine):
    """<u, J t> = <J^T u, t>: the tangents forward mode gives are the transpose of what grad_fn
    gives tapes, for several (broadcasting) inputs and outputs."""
    at, bt = t64(a), t64(b)
    with ForwardAccumulator([at, bt], [t64(ta), t64(tb)]) as acc:
        product, sine = product_and_sine(at, bt)
    j_product, j_sine = acc.jvp([product, sine])
    with GradientTape() as tape:
        tape.watch([at, bt])
        outputs = product_and_sine(at, bt)
    ga, gb = tape.gradient(list(outputs), [at, bt], output_gradients=[t64(u_product), t64(u_sine)])
    forward = np.sum(u_product * np.asarray(j_product)) + np.sum(u_sine * np.asarray(j_sine))
    reverse = np.sum(np.asarray(ga) * ta) + np.sum(np.asarray(gb) * tb)
    np.testing.assert_allclose(forward, reverse, **EXACT)
    np.testing.assert_allclose(np.asarray(j_sine), 5.0 * np.cos(a) * ta, **EXACT)


# ---- methods ---------------------------------------------------------------------------------


class Scaler:
    def __init__(self, factor):
        self.factor = dd.constant(factor, dd.float64)

    @dd.custom_gradient
    def scale(self, x):
        def grad(dy):
            return dy * self.factor * 10.0

        return x * self.factor, grad


def test_a_decorated_method_binds_self_without_converting_it():
    small, large = Scaler(2.0), Scaler(3.0)
    x = t64([1.0, 2.0])
    np.testing.assert_allclose(np.asarray(small.scale(x)), [2.0, 4.0], **EXACT)
    for obj, factor in ((small, 2.0), (large, 3.0)):
        g = dd.grad(lambda x: dd.reduce_sum(obj.scale(x)))(x)
        np.testing.assert_allclose(np.asarray(g), [10.0 * factor] * 2, **EXACT)
        _, tangent = dd.jvp(obj.scale, (x,), (t64([1.0, 1.0]),))
        np.testing.assert_allclose(np.asarray(tangent), [10.0 * factor] * 2, **EXACT)
    assert Scaler.scale is Scaler.__dict__["scale"]  # on the class: the decorated function itself


def test_a_decorated_function_pickles_by_reference():
    from test_custom_gradient import log1pexp
    assert pickle.loads(pickle.dumps(log1pexp)) is log1pexp
    assert dd.custom_gradient()(np.sin).__wrapped__ is np.sin  # custom_gradient() as in TF
    # a method bound to its instance pickles as that attribute of a copy of the instance
    scale = pickle.loads(pickle.dumps(Scaler(4.0).scale))
    g = dd.grad(lambda x: dd.reduce_sum(scale(x)))(t64([1.0]))
    assert float(g[0]) == 40.0


# ---- variables= ------------------------------------------------------------------------------


def make_affine():
    """y = w * x + b with Variables w, b read by the body, and declared gradients scaled by
    10 (x), 100 (w) and 1000 (b) to tell them apart."""
    w, b = dd.Variable(np.array([2.0, 3.0])), dd.Variable(0.5, dtype=dd.float64)
    calls = []

    @dd.custom_gradient
    def affine(x):
        def grad(dy, variables=None):
            calls.append(variables)
            return dy * w * 10.0, [dy * x * 100.0, dd.reduce_sum(dy) * 1000.0]

        return w * x + b, grad

    return affine, w, b, calls


def test_gradients_flow_to_the_variables_the_function_reads():
    affine, w, b, calls = make_affine()
    x = t64([1.0, -1.0])
    with GradientTape() as tape:
        tape.watch(x)
        y = affine(x)
    gx, gw, gb = tape.gradient(y, [x, w, b])
    assert len(calls) == 1 and len(calls[0]) == 2
    assert calls[0][0] is w and calls[0][1] is b   # the Variables, in the order they were read
    np.testing.assert_allclose(np.asarray(gx), [20.0, 30.0], **EXACT)
    np.testing.assert_allclose(np.asarray(gw), [100.0, -100.0], **EXACT)
    np.testing.assert_allclose(float(gb), 2000.0, **EXACT)


def test_variable_gradients_in_forward_mode_and_second_order():
    affine, w, b, _ = make_affine()
    x = t64([1.0, -1.0])
    tw = t64([0.5, 2.0])
    with ForwardAccumulator([x, w], [t64([1.0, 1.0]), tw]) as acc:
        y = affine(x)
    # the transposed grad_fn: 10 w tx + 100 x tw
    np.testing.assert_allclose(np.asarray(acc.jvp(y)), 10.0 * np.array([2.0, 3.0]) + 100.0 * np.array([0.5, -2.0]), **EXACT)
    with GradientTape() as outer:           # d/dx of dL/dw = 100 dy: the grad_fn's own x
        outer.watch(x)
        with GradientTape() as inner:
            inner.watch(x)
            loss = dd.reduce_sum(affine(x))
        gw = inner.gradient(loss, w)
    np.testing.assert_allclose(np.asarray(outer.jacobian(gw, x)), 100.0 * np.eye(2), **EXACT)


def test_forward_mode_refuses_a_grad_fn_that_ignores_the_upstream_gradient():
    """A gradient computed from the Variables but not from the upstream gradient is not a VJP:
    forward mode says so instead of giving a tangent of zero."""
    w = dd.Variable(np.array([2.0, 3.0]))

    @dd.custom_gradient
    def ignores_dy(x):
        def grad(dy, variables):
            return w * 2.0, [x * 1.0]

        return x * w, grad

    x = t64([1.0, 1.0])
    with pytest.raises(ValueError, match="ignores_dy.*input 0 does not depend on the upstream"):
        dd.jvp(ignores_dy, (x,), (t64([1.0, 1.0]),))


def test_a_variable_passed_as_an_input_is_an_input_not_one_of_the_variables():
    affine_calls = []
    v = dd.Variable(np.array([1.0, 2.0]))

    @dd.custom_gradient
    def double(x):
        def grad(dy, variables=None):
            affine_calls.append(variables)
            return dy * 2.0

        return x * 2.0, grad

    with GradientTape() as tape:
        y = double(v)
    np.testing.assert_allclose(np.asarray(tape.gradient(y, v)), [2.0, 2.0], **EXACT)
    assert affine_calls == [None]  # no variables: grad_fn is called without the keyword


def test_reading_variables_with_a_grad_fn_without_the_keyword_raises_type_error():
    w = dd.Variable(2.0)

    @dd.custom_gradient
    def reads_w(x):
        return x * w, lambda dy: dy * w

    with pytest.raises(TypeError, match="reads_w reads the Variables.*keyword argument `variables`"):
        reads_w(dd.constant(1.0))
    frozen = dd.Variable(2.0, trainable=False)

    @dd.custom_gradient
    def reads_frozen(x):
        return x * frozen, lambda dy: dy * frozen

    # a non-trainable Variable is not watched, so grad_fn need not take it (as in TensorFlow)
    assert float(dd.grad(reads_frozen)(dd.constant(1.0))) == 2.0
    count = dd.Variable(3)   # trainable, but an int32 Variable has no gradient

    @dd.custom_gradient
    def reads_count(x):
        return x * ops.cast(count, dd.float32), lambda dy: dy * 3.0

    assert float(dd.grad(reads_count)(dd.constant(1.0))) == 3.0


def test_grad_fn_changing_the_variables_list_does_not_change_later_calls():
    w = dd.Variable(2.0)

    @dd.custom_gradient
    def clears(x):
        def grad(dy, variables):
            assert variables == [w] or variables[0] is w
            variables.clear()
            return dy * w, [dy * x]

        return x * w, grad

    x = dd.constant(3.0)
    with GradientTape(persistent=True) as tape:
        y = clears(x)
    for _ in range(2):
        assert float(tape.gradient(y, w)) == 3.0


def test_variables_and_several_outputs_inside_a_compiled_function():
    w = dd.Variable(np.array([2.0, 3.0]))

    @dd.custom_gradient
    def sin_and_scaled(x):
        def grad(d_sin, d_scaled, variables):
            return d_sin * 7.0 + d_scaled * w, [d_scaled * x * 100.0]

        return (dd.sin(x), x * w), grad

    def step(x):
        with GradientTape() as tape:
            tape.watch(x)
            s, q = sin_and_scaled(x)
            y = dd.reduce_sum(s + 2.0 * q)
        return (s, q) + tuple(tape.gradient(y, [x, w]))

    compiled = dd.function(step)
    for value in ([1.0, 2.0], [0.5, -1.0], [3.0, 0.0]):
        x = t64(value)
        for got, want in zip(compiled(x), step(x)):
            assert np.asarray(got).tobytes() == np.asarray(want).tobytes(), (value, got, want)
        w.assign(w * 2.0)   # the replay reads the Variable's new value
    assert compiled.trace_count == 1


def test_grad_fn_must_return_one_gradient_per_variable():
    w = dd.Variable(2.0)

    @dd.custom_gradient
    def short(x):
        return x * w, lambda dy, variables: (dy * w, [])

    @dd.custom_gradient
    def not_a_pair(x):
        return x * w, lambda dy, variables: dy * w

    x = dd.constant(1.0)
    with pytest.raises(ValueError, match="short's grad_fn returned 0 gradients for 1 variables"):
        dd.grad(short)(x)
    with pytest.raises(TypeError, match="not_a_pair reads Variables.*pair"):
        dd.grad(not_a_pair)(x)


def test_an_optimizer_trains_through_the_variable_gradients():
    w = dd.Variable(np.array([0.0]))

    @dd.custom_gradient
    def clipped_square_error(x):
        def grad(dy, variables):
            # the true gradient 2 (w - x), clipped to [-1, 1]
            return -dy * dd.clip_by_value(2.0 * (w - x), -1.0, 1.0), [dy * dd.clip_by_value(2.0 * (w - x), -1.0, 1.0)]

        return dd.reduce_sum((w - x) ** 2), grad

    opt = dd.optimizers.SGD(learning_rate=0.25)
    for _ in range(40):
        with GradientTape() as tape:
            loss = clipped_square_error(t64([3.0]))
        opt.apply_gradients([(tape.gradient(loss, w), w)])
    np.testing.assert_allclose(np.asarray(w), [3.0], atol=1e-6)


# ---- errors from the user's functions ---------------------------------------------------------


class GradFnFailure(Exception):
    pass


def test_an_exception_from_grad_fn_propagates_unchanged_and_the_library_stays_usable():
    failure = GradFnFailure("grad_fn failed on purpose")

    @dd.custom_gradient
    def fails(x):
        def grad(dy):
            raise failure

        return x * 2.0, grad

    x = t64([1.0, 2.0])
    for attempt in (lambda: dd.grad(lambda x: dd.reduce_sum(fails(x)))(x),
                    lambda: dd.jvp(fails, (x,), (t64([1.0, 1.0]),)),
                    lambda: dd.jacfwd(fails)(x)):
        with pytest.raises(GradFnFailure, match="grad_fn failed on purpose") as raised:
            attempt()
        assert raised.value is failure
        assert dd._core.active_transformations() == ()
        assert dd._core.live_transformation_count() == 0
        # the next tape and accumulator work
        np.testing.assert_allclose(np.asarray(dd.grad(lambda x: dd.reduce_sum(x * x))(x)), [2.0, 4.0], **EXACT)
        np.testing.assert_allclose(np.asarray(dd.jvp(dd.sin, (x,), (t64([1.0, 1.0]),))[1]), np.cos([1.0, 2.0]), **EXACT)


def test_an_exception_from_the_body_leaves_no_transformation_behind():
    failure = GradFnFailure("body failed")
    w = dd.Variable(1.0)

    @dd.custom_gradient
    def body_fails(x):
        _ = x * w
        raise failure

    with GradientTape() as tape:
        with pytest.raises(GradFnFailure, match="body failed") as raised:
            body_fails(dd.constant(1.0))
        assert raised.value is failure
        assert dd._core.active_transformations() == (tape,)
        y = w * 3.0
    assert float(tape.gradient(y, w)) == 3.0


def test_keyword_arguments_are_refused_with_a_clear_error():
    with pytest.raises(TypeError, match="sin_and_square was called with keyword arguments \\['x'\\]"):
        sin_and_square(x=t64(1.0))


def test_f_must_return_outputs_and_grad_fn():
    @dd.custom_gradient
    def no_grad_fn(x):
        return x * 2.0

    with pytest.raises(TypeError, match="no_grad_fn must return a pair \\(outputs, grad_fn\\)"):
        no_grad_fn(dd.constant([1.0, 2.0]))


# ---- re-entrancy and threads ----------------------------------------------------------------


@dd.custom_gradient
def recomputed_tanh(x):
    """tanh whose grad_fn recomputes the body under its own tape (TensorFlow's recompute_grad
    pattern): a tape inside grad_fn, inside the sweep or the transposition."""
    def grad(dy):
        with GradientTape() as tape:
            tape.watch(x)
            y = dd.tanh(x)
        return tape.gradient(y, x, output_gradients=dy)

    return dd.tanh(x), grad


def test_a_grad_fn_that_runs_its_own_tape_in_both_modes():
    x, t = t64([0.3, -0.8]), t64([1.0, 0.5])
    xv, tv = np.asarray(x), np.asarray(t)
    g = dd.grad(lambda x: dd.reduce_sum(recomputed_tanh(x)))(x)
    np.testing.assert_allclose(np.asarray(g), 1 - np.tanh(xv) ** 2, **EXACT)
    _, tangent = dd.jvp(recomputed_tanh, (x,), (t,))
    np.testing.assert_allclose(np.asarray(tangent), fd_jvp(np.tanh, [xv], [tv]), **FD)
    hess = dd.hessian(lambda x: dd.reduce_sum(recomputed_tanh(x)))(x)
    fd = fd_jacobian(lambda a: 1 - np.tanh(a) ** 2, xv)
    np.testing.assert_allclose(np.asarray(hess), fd, **FD)


def test_custom_gradients_on_several_threads_at_once():
    x = np.linspace(-2.0, 2.0, 5)
    s = 1 / (1 + np.exp(-x))
    errors = []

    def work():
        from test_custom_gradient import log1pexp
        try:
            for _ in range(30):
                xt = t64(x)
                g = dd.grad(lambda x: dd.reduce_sum(log1pexp(x)))(xt)
                _, tangent = dd.jvp(log1pexp, (xt,), (t64(np.ones(5)),))
                np.testing.assert_allclose(np.asarray(g), s, **EXACT)
                np.testing.assert_allclose(np.asarray(tangent), s, **EXACT)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[0]
