"""gradient() of one Tensor source, the common call: the sweep seeds its one target with ones
itself (a C double where nothing records the sweep) and returns the one gradient, with no lists
around it; its list of slot gradients is reused from sweep to sweep. Each result is checked
against the same gradient asked for a list of one source (the list path): the same bits, and
the same entries recorded by an outer tape."""
import gc
import sys
import threading

import numpy as np
import pytest

import dualad as dd
from helpers import EXACT, t64

FUNCS = {
    "poly": lambda x: x * x * x + x * 2.0 - 1.0,
    "pow": lambda x: x ** 3,
    "trig": lambda x: dd.sin(x) * dd.cos(x) + dd.tanh(x),
    "div_exp": lambda x: dd.exp(x) / (x * x + 1.0),
    "sub_neg": lambda x: 1.0 - (-x) * x,
}
VALUES = [-2.5, -1.0, -0.3, 0.0, 0.7, 1.9, 3.3]


def const(v, dtype, shape):
    return dd.constant(np.full(shape, v, dtype=dtype))


def assert_same_bits(a, b):
    assert (a is None) == (b is None)
    if a is None:
        return
    assert type(a) is type(b)
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def grad_one(f, x, listed, persistent=False):
    with dd.GradientTape(persistent=persistent) as tape:
        tape.watch(x)
        y = f(x)
    return tape.gradient(y, [x])[0] if listed else tape.gradient(y, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (3,)])
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_one_source_gives_the_bits_of_a_list_of_one(name, shape, dtype):
    for v in VALUES:
        x = const(v, dtype, shape)
        g = grad_one(FUNCS[name], x, listed=False)
        assert_same_bits(g, grad_one(FUNCS[name], x, listed=True))
        assert_same_bits(g, grad_one(FUNCS[name], x, listed=False, persistent=True))
        # the general path (its seeds made by ops.ones_like)
        with dd.GradientTape() as tape:
            tape.watch(x)
            y = FUNCS[name](x)
        assert_same_bits(g, tape.gradient(y, x, output_gradients=dd.ones_like(y)))


def second(f, x, listed):
    with dd.GradientTape() as outer:
        outer.watch(x)
        with dd.GradientTape() as inner:
            inner.watch(x)
            y = f(x)
        d = inner.gradient(y, [x])[0] if listed else inner.gradient(y, x)
    n = outer._n_entries
    return d, (outer.gradient(d, [x])[0] if listed else outer.gradient(d, x)), n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (2,)])
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_higher_order_records_the_same_entries(name, shape, dtype):
    for v in VALUES:
        x = const(v, dtype, shape)
        d, dd2, n = second(FUNCS[name], x, listed=False)
        d_l, dd2_l, n_l = second(FUNCS[name], x, listed=True)
        assert n == n_l and n > 0
        assert_same_bits(d, d_l)
        assert_same_bits(dd2, dd2_l)


def test_second_derivative_values():
    x = dd.constant(np.float64(3.0))
    d, dd2, _ = second(lambda t: t ** 3, x, listed=False)
    assert float(d) == 27.0 and float(dd2) == 18.0


def test_persistent_tape_asked_many_times():
    x, w = dd.constant(1.25), dd.constant(-0.5)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch([x, w])
        y = dd.sin(x * w) + x * x * w
    expected = tape.gradient(y, [x, w])
    for _ in range(3):
        assert_same_bits(tape.gradient(y, x), expected[0])
        assert_same_bits(tape.gradient(y, w), expected[1])


@pytest.mark.parametrize("persistent", [False, True])
def test_gradient_inside_its_own_context(persistent):
    x = dd.constant(0.75)
    results = []
    for listed in (False, True):
        with pytest.warns(dd.GradientInContextWarning) if persistent else _no_context():
            with dd.GradientTape(persistent=persistent) as tape:
                tape.watch(x)
                y = x * x * x
                g = tape.gradient(y, [x])[0] if listed else tape.gradient(y, x)
                z = g * x   # recorded only by a persistent tape
            results.append((g, tape.recording))
        if persistent:
            assert_same_bits(tape.gradient(z, x), g + x * 6.0 * x)
    assert_same_bits(results[0][0], results[1][0])
    assert results[0][1] == results[1][1] == persistent


class _no_context:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_variable_source(dtype):
    v = dd.Variable(1.5, dtype=getattr(dd, dtype))
    c = dd.constant(np.asarray(2.0, dtype=dtype))
    gs = []
    for listed in (False, True):
        with dd.GradientTape() as tape:
            y = c * v ** 2 - v
        gs.append(tape.gradient(y, [v])[0] if listed else tape.gradient(y, v))
    assert_same_bits(gs[0], gs[1])
    assert float(gs[0]) == 5.0


def test_unconnected_and_non_float_sources():
    x, other = dd.constant(2.0), dd.constant(3.0)
    i = dd.constant(3)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
        unrelated = other * 2.0
    assert tape.gradient(y, other) is None
    assert tape.gradient(y, i) is None
    assert tape.gradient(unrelated, x) is None
    zero = tape.gradient(y, other, unconnected_gradients="zero")
    assert float(zero) == 0.0
    assert float(tape.gradient(y, x)) == 4.0


def test_custom_gradients_sweeping_inside_the_sweep():
    # each level's custom gradient runs a tape and a sweep of one source inside the outer
    # sweep: each must get its own slot list and buffers
    def square(depth):
        @dd.custom_gradient
        def f(x):
            def grad(upstream):
                with dd.GradientTape() as inner:
                    inner.watch(x)
                    z = square(depth - 1)(x) if depth > 1 else x * x
                return upstream * inner.gradient(z, x)
            return x * x, grad
        return f

    # arrays: the outer sweep holds Tensor cotangents in its slot list meanwhile
    xv, wv = np.array([1.5, -0.5]), np.array([0.25, 2.0])
    x, w = t64(xv), t64(wv)
    for depth in (1, 3):
        with dd.GradientTape() as tape:
            tape.watch(x)
            y = dd.sin(w * x) + square(depth)(x) * w + x * x * x
        np.testing.assert_allclose(np.asarray(tape.gradient(y, x)),
                                   wv * np.cos(wv * xv) + 2 * xv * wv + 3 * xv ** 2, **EXACT)


def test_the_reused_slot_list_keeps_no_gradient_alive():
    x = dd.constant(np.array([1.0, 2.0]))
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
    g = tape.gradient(y, x)
    assert sys.getrefcount(g) == 2     # g and the call's argument: nothing else holds it


def _sweep_that_raises(kept):
    @dd.custom_gradient
    def keep(x):
        def grad(upstream):
            ct = upstream * 2.0
            kept.append(ct)
            return ct
        return x * 2.0, grad

    @dd.custom_gradient
    def fail(x):
        def grad(upstream):
            raise ValueError("grad_fn failed")
        return x * 1.0, grad

    x = dd.constant(np.array([1.0, 2.0]))
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = fail(x) + keep(x)   # keep's rule runs first: its cotangent waits at x's slot
    try:
        tape.gradient(y, x)
    except ValueError as e:
        return str(e)


def test_a_sweep_that_raised_leaves_the_slot_list_clean():
    kept = []
    # (the tape's record and custom_gradient's last results go with the helper's frame)
    assert _sweep_that_raises(kept) == "grad_fn failed"
    gc.collect()
    refs = sys.getrefcount(kept[0])     # (outside the assert: pytest's rewriting holds its parts)
    assert len(kept) == 1 and refs == 2  # the list and the argument
    x = dd.constant(np.array([1.0, 2.0]))
    # the list and buffers are free again: the next sweeps give the right gradients
    for k in (1.0, 2.0, 3.0):
        with dd.GradientTape() as t2:
            t2.watch(x)
            z = x * k
        np.testing.assert_array_equal(np.asarray(t2.gradient(z, x)), [k, k])


def test_check_numerics_forward_accumulator_and_trace():
    f = FUNCS["trig"]
    x = dd.constant(0.4)
    dd.debugging.enable_check_numerics()
    try:
        assert_same_bits(grad_one(f, x, False), grad_one(f, x, True))
    finally:
        dd.debugging.disable_check_numerics()

    v = dd.constant(1.0)
    jvps = []
    for listed in (False, True):
        with dd.ForwardAccumulator(x, v) as acc:
            g = grad_one(f, x, listed)
        jvps.append(acc.jvp(g))
    assert_same_bits(jvps[0], jvps[1])

    @dd.function
    def traced(t):
        with dd.GradientTape() as tape:
            tape.watch(t)
            y = f(t)
        return tape.gradient(y, t)

    for _ in range(3):
        assert_same_bits(traced(x), grad_one(f, x, True))


def test_threads_sweep_while_another_sweep_runs_python():
    other_done = threading.Event()
    results, errors = {}, []

    @dd.custom_gradient
    def wait_for_others(x):
        def grad(upstream):
            assert other_done.wait(30)
            return upstream * 3.0
        return x * 3.0, grad

    def other(k):
        try:
            for _ in range(50):
                x = dd.constant(np.full((2,), float(k)))
                with dd.GradientTape() as tape:
                    tape.watch(x)
                    y = x * x * x + x
                results.setdefault(k, set()).add(tuple(np.asarray(tape.gradient(y, x))))
        except Exception as e:   # reported below: a thread's exception would be lost
            errors.append(e)

    x = dd.constant(np.array([2.0, 2.0]))    # Tensor cotangents in its slot list meanwhile
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = x * x + wait_for_others(x) * x

    def starter():
        threads = [threading.Thread(target=other, args=(k,)) for k in (1, 2, 3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        other_done.set()

    runner = threading.Thread(target=starter)
    runner.start()
    g = tape.gradient(y, x)
    runner.join()
    assert not errors
    assert results == {k: {(3.0 * k * k + 1.0,) * 2} for k in (1, 2, 3)}
    np.testing.assert_array_equal(np.asarray(g), [3.0 * 2.0 + 6.0 + 4.0] * 2)
