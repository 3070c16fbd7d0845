"""Scalar VJPs under an outer tape: the sweep runs the ops of a scalar opcode's declared rule
itself (no Python rule call). They must record the entries the rule records and give its bits,
to any order; a primitive whose rules were replaced gets its rules called. And the raw C
sweep computes only the partials it needs (pow's exponent derivative, when nothing needs it,
is not computed, so it cannot trip check_numerics)."""
import itertools

import numpy as np
import pytest

import dualad as dd
from dualad import rules

# the opcodes whose rules the sweep runs as ops, and points on both sides of their kinks
MIRRORED = ["add", "subtract", "multiply", "divide", "negative", "pow", "square", "sqrt", "exp", "log",
            "log1p", "sin", "cos", "tan", "tanh", "sigmoid"]
GRID = [-1.5, -0.0, 0.5, 2.0]


def _first_and_second(prim, values, dtype):
    """prim's value, its gradients (taken under an outer tape: the rule path) and the
    gradients of their sum (second order), and the outer tape's entry count, as bytes."""
    xs = [dd.constant(np.asarray(v, dtype)) for v in values]
    with dd.GradientTape(persistent=True) as outer:
        outer.watch(xs)
        with dd.GradientTape() as inner:
            inner.watch(xs)
            y = prim(*xs)
        firsts = inner.gradient(y, xs)
        total = firsts[0]
        for f in firsts[1:]:
            total = dd.add(total, f)
    seconds = outer.gradient(total, xs)
    n_entries = outer._n_entries
    return ([np.asarray(t).tobytes() for t in [y, *firsts]]
            + [None if s is None else np.asarray(s).tobytes() for s in seconds]), n_entries


def _with_rules_called(prim):
    """The same rules in a new tuple: the sweep no longer recognises them as the declared
    ones, so it calls them (the reference the ops path must equal)."""
    class Called:
        def __enter__(self):
            self.saved = prim.vjps
            prim.vjps = tuple(list(prim.vjps))
            assert prim.vjps is not self.saved
        def __exit__(self, *exc):
            prim.vjps = self.saved
    return Called()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", MIRRORED)
def test_scalar_vjp_ops_equal_the_declared_rules_to_second_order(name, dtype):
    prim = rules.PRIMITIVES[name]
    arity = rules.DECLARATIONS[name].arity
    for values in itertools.product(GRID, repeat=arity):
        got = _first_and_second(prim, values, dtype)
        with _with_rules_called(prim):
            want = _first_and_second(prim, values, dtype)
        assert got == want, (name, dtype.__name__, values)


def test_the_ops_path_records_on_the_outer_tape():
    # x**3 under two tapes: the inner gradient's ops (x**2 via pow, and two multiplies) are
    # recorded by the outer tape, which differentiates them: 6x = 12 at x = 2
    x = dd.constant(2.0, dtype=dd.float64)
    with dd.GradientTape() as outer:
        outer.watch(x)
        with dd.GradientTape() as inner:
            inner.watch(x)
            y = x ** 3
        dy_dx = inner.gradient(y, x)
    assert float(dy_dx) == 12.0
    assert float(outer.gradient(dy_dx, x)) == 12.0


def test_a_primitive_whose_rules_were_replaced_gets_them_called():
    mul = rules.PRIMITIVES["multiply"]
    saved = mul.vjps
    calls = []

    def rule(g, ans, args, params, k=0):
        calls.append(k)
        return dd.multiply(g, dd.multiply(args[1 - k], 3.0))   # a deliberately other rule

    mul.vjps = (rule, lambda g, ans, args, params: rule(g, ans, args, params, 1))
    try:
        x = dd.constant(2.0, dtype=dd.float64)
        with dd.GradientTape() as outer:    # an outer tape: the non-raw sweep
            outer.watch(x)
            with dd.GradientTape() as inner:
                inner.watch(x)
                y = dd.multiply(x, x)
            g = inner.gradient(y, x)
    finally:
        mul.vjps = saved
    assert calls == [0, 1]
    assert float(g) == 12.0     # 3·x + 3·x


@pytest.fixture
def checking():
    dd.debugging.enable_check_numerics()
    yield
    dd.debugging.disable_check_numerics()


def test_pow_with_a_constant_exponent_checks_only_the_partial_it_needs(checking):
    # x**2 at x = 1e154: y = 1e308 and dy/dx = 2e154 are finite, but dy/d(exponent) =
    # log(x)·y overflows. The exponent takes no gradient: the raw sweep must not report it
    # (the rule path, under an outer tape, never computed it either).
    x = dd.constant(1e154, dtype=dd.float64)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.pow(x, 2.0)
    assert float(tape.gradient(y, x)) == 2e154
    with dd.GradientTape() as outer:
        with dd.GradientTape() as inner:
            inner.watch(x)
            y = dd.pow(x, 2.0)
        assert float(inner.gradient(y, x)) == 2e154


def test_pow_exponent_gradient_is_still_computed_when_needed():
    x, e = dd.constant(2.0, dtype=dd.float64), dd.constant(3.0, dtype=dd.float64)
    with dd.GradientTape() as tape:
        tape.watch([x, e])
        y = dd.pow(x, e)
    gx, ge = tape.gradient(y, [x, e])
    assert float(gx) == 12.0
    assert float(ge) == float(np.float64(np.log(2.0)) * 8.0)


def test_four_nested_tapes_give_each_order_of_x_to_the_fifth():
    # more nested tapes than the core's cache of boxed tape ids holds: each tape's slots (in
    # the tensors' extra-slot dicts) must still be found, and a tape dropped without a
    # gradient in between must not disturb them
    x = dd.constant(np.float64(1.5))
    with dd.GradientTape() as t4:
        t4.watch(x)
        with dd.GradientTape() as t3:
            t3.watch(x)
            with dd.GradientTape() as t2:
                t2.watch(x)
                with dd.GradientTape() as t1:
                    t1.watch(x)
                    y = x ** 5
                    with dd.GradientTape() as dropped:
                        dropped.watch(x)
                        (x * x).numpy()
                    del dropped
                d1 = t1.gradient(y, x)
            d2 = t2.gradient(d1, x)
        d3 = t3.gradient(d2, x)
    d4 = t4.gradient(d3, x)
    assert [float(d) for d in (d1, d2, d3, d4)] == [5 * 1.5 ** 4, 20 * 1.5 ** 3,
                                                    60 * 1.5 ** 2, 120 * 1.5]


# ---- the derivative ops recorded directly (no run_op): the same entries, bits and tangents as
# the rules, under every kind of transformation that can see them

UNARY = [n for n in MIRRORED if rules.DECLARATIONS[n].arity == 1]
BINARY = [n for n in MIRRORED if rules.DECLARATIONS[n].arity == 2]
POINTS = [-1.5, -0.0, 0.5, 2.0, 1e-3, 30.0]


def _bytes(ts):
    return [None if t is None else np.asarray(t).tobytes() for t in ts]


def _three_deep(prim, values, dtype, persistent):
    """prim's first, second and third derivatives by three nested tapes (the two inner
    gradients run under visible outer tapes), and each outer tape's entry count."""
    xs = [dd.constant(np.asarray(v, dtype)) for v in values]
    with dd.GradientTape(persistent=persistent) as t3:
        t3.watch(xs)
        with dd.GradientTape(persistent=persistent) as t2:
            t2.watch(xs)
            with dd.GradientTape() as t1:
                t1.watch(xs)
                y = prim(*xs)
            d1 = t1.gradient(y, xs[0])
        n2 = t2._n_entries
        d2 = t2.gradient(d1, xs[0])    # (None where d1 is a constant: add's)
    n3 = t3._n_entries
    d3 = None if d2 is None else t3.gradient(d2, xs[0])
    return _bytes([y, d1, d2, d3]), (n2, n3)


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", MIRRORED)
def test_third_derivatives_three_tapes_deep_equal_the_rules(name, dtype, persistent):
    prim = rules.PRIMITIVES[name]
    arity = rules.DECLARATIONS[name].arity
    for values in itertools.product(POINTS, repeat=arity):
        got = _three_deep(prim, values, dtype, persistent)
        with _with_rules_called(prim):
            want = _three_deep(prim, values, dtype, persistent)
        assert got == want, (name, dtype.__name__, values)


def _forward_over_reverse(prim, values, dtype):
    """An accumulator outside two tapes sees the inner gradient's ops (their tangents), and
    the outer tape records them: tangent of the first derivative, and second derivative."""
    xs = [dd.constant(np.asarray(v, dtype)) for v in values]
    with dd.ForwardAccumulator(xs[0], dd.constant(np.asarray(0.75, dtype))) as acc:
        with dd.GradientTape() as outer:
            outer.watch(xs)
            with dd.GradientTape() as inner:
                inner.watch(xs)
                y = prim(*xs)
            d1 = inner.gradient(y, xs[0])
        d2 = outer.gradient(d1, xs[0])
        return _bytes([y, d1, d2, acc.jvp(d1), None if d2 is None else acc.jvp(d2)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", MIRRORED)
def test_a_forward_accumulator_over_the_tapes_gets_the_rules_tangents(name, dtype):
    prim = rules.PRIMITIVES[name]
    arity = rules.DECLARATIONS[name].arity
    for values in itertools.product(POINTS[:4], repeat=arity):
        got = _forward_over_reverse(prim, values, dtype)
        with _with_rules_called(prim):
            want = _forward_over_reverse(prim, values, dtype)
        assert got == want, (name, dtype.__name__, values)


def _second(prim, x):
    with dd.GradientTape() as outer:
        outer.watch(x)
        with dd.GradientTape() as inner:
            inner.watch(x)
            y = prim(x)
        d1 = inner.gradient(y, x)
    return d1, outer.gradient(d1, x)


@pytest.mark.parametrize("name", [n for n in UNARY if n != "negative"])   # (-g: constant)
def test_second_derivatives_match_finite_differences(name):
    prim = rules.PRIMITIVES[name]
    for v in [0.3, 0.7, 1.9]:
        x = dd.constant(np.float64(v))
        d1, d2 = _second(prim, x)
        h = 1e-6
        up = float(_second(prim, dd.constant(np.float64(v + h)))[0])
        down = float(_second(prim, dd.constant(np.float64(v - h)))[0])
        assert float(d2) == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-7), (name, v)


def test_check_numerics_names_the_derivative_op_as_the_rule_path_does(checking):
    # sqrt at 0: its value is finite, its derivative g / (ans * 2) is not, in the inner
    # gradient's ops (which go through run_op under check_numerics, as the rule's do)
    prim = rules.PRIMITIVES["sqrt"]

    def message():
        with pytest.raises(FloatingPointError) as info:
            _second(prim, dd.constant(np.float64(0.0)))
        return str(info.value)

    got = message()
    with _with_rules_called(prim):
        want = message()
    assert got == want
    assert "divide" in got
    # and the library is usable afterwards
    d1, d2 = _second(prim, dd.constant(np.float64(4.0)))
    assert (float(d1), float(d2)) == (0.25, -1 / 32)


def test_under_a_trace_the_nested_gradient_replays_with_the_rules_bits():
    def nested(x):
        with dd.GradientTape() as outer:
            outer.watch(x)
            with dd.GradientTape() as inner:
                inner.watch(x)
                y = dd.tanh(x) * dd.sin(x) + x ** 3
            d1 = inner.gradient(y, x)
        return outer.gradient(d1, x)

    compiled = dd.function(nested)
    for v in [0.25, -1.5, 2.0]:
        x = dd.constant(np.float64(v))
        want = np.asarray(nested(x)).tobytes()
        assert np.asarray(compiled(x)).tobytes() == want
        assert np.asarray(compiled(x)).tobytes() == want    # the replay


def test_nested_gradients_on_another_thread_while_this_one_records():
    import threading
    results = {}

    def work(key):
        results[key] = _bytes(_second(rules.PRIMITIVES["sigmoid"],
                                      dd.constant(np.float64(0.3))))

    with dd.GradientTape() as here:     # a tape of this thread: the other must not see it
        x = dd.constant(np.float64(0.3))
        here.watch(x)
        t = threading.Thread(target=work, args=("other",))
        t.start()
        t.join()
        y = dd.sigmoid(x)
    assert here._n_entries == 1
    work("this")
    assert results["other"] == results["this"]


def test_an_op_nothing_records_keeps_no_constant_tensor():
    # pow's exponent y - 1 with a constant exponent: no tape sees it, so nothing is recorded;
    # the outer tape holds pow(x, y - 1), (y * ...), and g * (...): three entries
    x = dd.constant(np.float64(2.0))
    with dd.GradientTape() as outer:
        outer.watch(x)
        with dd.GradientTape() as inner:
            inner.watch(x)
            y = x ** 3
        n_before = outer._n_entries
        inner.gradient(y, x)
        assert outer._n_entries - n_before == 3


def test_slots_on_three_tapes_survive_one_being_released_and_another_taking_its_place():
    # x's slots: t1 in the first field, t2 in the second, t3 in the extra-slot dict; t2's
    # release frees the second field, which t4 then takes: each tape still finds its own slot
    x = dd.constant(np.float64(1.5))
    with dd.GradientTape(persistent=True) as t1, dd.GradientTape(persistent=True) as t3:
        t1.watch(x)
        with dd.GradientTape() as t2:
            t2.watch(x)
            t3.watch(x)
            y2 = x * x
        assert float(t2.gradient(y2, x)) == 3.0
        with dd.GradientTape() as t4:
            t4.watch(x)
            y4 = x * x * x
        y1 = x + x
    assert float(t4.gradient(y4, x)) == 3 * 1.5 ** 2
    assert float(t1.gradient(y1, x)) == 2.0
    assert float(t1.gradient(y4, x)) == 3 * 1.5 ** 2
    assert float(t3.gradient(y2, x)) == 3.0
    assert float(t3.gradient(y1, x)) == 2.0


def test_a_variable_read_under_two_tapes_carries_both_slots():
    v = dd.Variable(np.float64(2.0))
    with dd.GradientTape() as outer:
        with dd.GradientTape() as inner:
            y = v * v * v       # each read: a snapshot with v's slots on both tapes
        d1 = inner.gradient(y, v)
    assert float(d1) == 12.0
    assert float(outer.gradient(d1, v)) == 12.0
