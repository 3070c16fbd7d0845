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
