"""Forward mode's C path for scalars (_push_tangent in dualad/_transform.pxi, _scalar_jvp in
dualad/_scalar.pxd): its tangents carry the bits of the JVP rules in rules.py, it is taken
only when nothing outside the accumulator would see the rules run (outer tapes and
accumulators, a trace being taken, check_numerics), and nesting stays correct.

The rule path is forced with an outer recording tape: it sees the tangent computation, so the
core must run the rules as ops there."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dualad as dd
from dualad import ForwardAccumulator, rules

# every primitive with a C scalar kernel
SCALAR_PRIMITIVES = sorted((d.primitive for d in rules.DECLARATIONS.values()
                            if d.primitive.code != 0), key=lambda p: p.name)
ARITY = {d.primitive.name: d.arity for d in rules.DECLARATIONS.values()}

# primal values: kinks (0 for relu/abs/sqrt/log/pow, ties for maximum/minimum), signed zeros,
# the domain edges of log/log1p/sqrt, non-finite values
PRIMALS = [-2.5, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0, math.inf, math.nan]
# tangents: signed zeros (a missing tangent must not turn -0.0 into +0.0), a non-unit value
TANGENTS = [1.0, -0.0, 0.0, -1.5]


def bits(t, dtype):
    return np.asarray(t.numpy(), dtype=dtype).tobytes()


def output_tangent(p, dtype, primals, tangents, force_rule_path):
    """The tangent of p(*primals) under one accumulator; tangents[k] None: input k has none."""
    args = [dd.constant(np.asarray(v, dtype=dtype)) for v in primals]
    watched = [(a, dd.constant(np.asarray(t, dtype=dtype)))
               for a, t in zip(args, tangents) if t is not None]
    outer = dd.GradientTape() if force_rule_path else None
    if outer is not None:
        outer.__enter__()
    try:
        with ForwardAccumulator([a for a, _ in watched], [t for _, t in watched]) as acc:
            out = p(*args)
        return acc.jvp(out)
    finally:
        if outer is not None:
            outer.__exit__(None, None, None)


def tangent_patterns(arity):
    if arity == 1:
        return [(t,) for t in TANGENTS]
    one_sided = [(t, None) for t in TANGENTS] + [(None, t) for t in TANGENTS]
    return one_sided + list(itertools.product(TANGENTS, [1.0, -0.0, 2.5]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", SCALAR_PRIMITIVES, ids=lambda p: p.name)
def test_c_path_tangent_has_the_bits_of_the_rule_path(p, dtype):
    arity = ARITY[p.name]
    checked = 0
    for primals in itertools.product(PRIMALS, repeat=arity):
        for tangents in tangent_patterns(arity):
            fast = output_tangent(p, dtype, primals, tangents, force_rule_path=False)
            slow = output_tangent(p, dtype, primals, tangents, force_rule_path=True)
            assert fast is not None and slow is not None
            assert fast.dtype == slow.dtype == dtype and fast.shape == slow.shape == ()
            assert bits(fast, dtype) == bits(slow, dtype), (
                f"{p.name}{primals} tangents {tangents}: C path {fast.numpy()!r}, "
                f"rules {slow.numpy()!r}")
            checked += 1
    assert checked >= len(PRIMALS) ** arity * len(TANGENTS)


TWO_INPUT = [p for p in SCALAR_PRIMITIVES if ARITY[p.name] == 2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", TWO_INPUT, ids=lambda p: p.name)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_c_path_tangent_of_two_tangents_has_the_rule_bits_on_any_values(p, dtype, data):
    # the grid above holds values whose products are exact: here every rounding step counts
    # (the C path writes the two terms of add, subtract and multiply out)
    width = 32 if dtype is np.float32 else 64
    values = st.floats(-1e6, 1e6, width=width, allow_subnormal=False)
    primals = [data.draw(values) for _ in range(2)]
    if p.name == "pow":
        primals[0] = abs(primals[0]) % 8 + 0.25     # a positive base, a modest exponent
        primals[1] = primals[1] % 4
    tangents = [data.draw(values) for _ in range(2)]
    fast = output_tangent(p, dtype, primals, tangents, force_rule_path=False)
    slow = output_tangent(p, dtype, primals, tangents, force_rule_path=True)
    assert bits(fast, dtype) == bits(slow, dtype), (
        f"{p.name}{primals} tangents {tangents}: C path {fast.numpy()!r}, rules {slow.numpy()!r}")


@pytest.fixture
def counted_jvp(monkeypatch):
    """Counts the calls of sin's JVP rule (the rule path) while a test runs."""
    calls = []
    rule = rules.sin.jvp

    def counting(*a):
        calls.append(1)
        return rule(*a)

    monkeypatch.setattr(rules.sin, "jvp", counting)
    return calls


def sin_tangent(x0=0.5):
    x = dd.constant(np.float64(x0))
    with ForwardAccumulator(x, dd.constant(np.float64(1.0))) as acc:
        y = dd.sin(x)
    return acc.jvp(y)


def test_scalar_op_under_one_accumulator_takes_the_c_path(counted_jvp):
    assert sin_tangent().numpy() == np.cos(0.5)
    assert counted_jvp == []


def test_outer_recording_tape_keeps_the_rule_path(counted_jvp):
    with dd.GradientTape():
        assert sin_tangent().numpy() == np.cos(0.5)
    assert counted_jvp == [1]


def test_outer_tape_not_recording_does_not_need_the_rules(counted_jvp):
    with dd.GradientTape() as tape:
        with tape.stop_recording():
            assert sin_tangent().numpy() == np.cos(0.5)
    assert counted_jvp == []


def test_check_numerics_keeps_the_rule_path_and_its_error():
    # sqrt'(0) is infinite: each op of the rule is checked, as without the C path
    dd.debugging.enable_check_numerics()
    try:
        x = dd.constant(np.float64(0.0))
        with pytest.raises(FloatingPointError, match="check_numerics"):
            with ForwardAccumulator(x, dd.constant(np.float64(1.0))):
                dd.sqrt(x)
    finally:
        dd.debugging.disable_check_numerics()


def test_batched_scalar_tangents_stay_correct():
    x = dd.constant(np.float64(0.5))
    directions = dd.constant(np.array([1.0, -2.0, 0.0]))
    with ForwardAccumulator(x, directions, batched=True) as acc:
        y = dd.sin(x) * x
    expected = (np.cos(0.5) * 0.5 + np.sin(0.5)) * np.array([1.0, -2.0, 0.0])
    np.testing.assert_allclose(acc.jvp(y).numpy(), expected, rtol=1e-15)


def test_nested_accumulators_do_not_confuse_perturbations():
    # d/dx [x * d/dy (x + y)] = 1: the inner derivative is 1, and holds no perturbation of x
    x, y = dd.constant(np.float64(2.0)), dd.constant(np.float64(3.0))
    one = dd.constant(np.float64(1.0))
    with ForwardAccumulator(x, one) as outer:
        with ForwardAccumulator(y, one) as inner:
            z = x + y
        w = x * inner.jvp(z)
    assert outer.jvp(w).numpy() == 1.0


def test_forward_over_forward_second_derivative():
    x0 = 0.7
    x = dd.constant(np.float64(x0))
    one = dd.constant(np.float64(1.0))
    with ForwardAccumulator(x, one) as outer:
        with ForwardAccumulator(x, one) as inner:
            y = dd.sin(x) * x
        dy = inner.jvp(y)
    # d²/dx² (x sin x) = 2 cos x - x sin x
    assert outer.jvp(dy).numpy() == pytest.approx(2 * math.cos(x0) - x0 * math.sin(x0), rel=1e-15)


def test_reverse_over_forward():
    x0 = 0.7
    x = dd.constant(np.float64(x0))
    with dd.GradientTape() as tape:
        tape.watch(x)
        with ForwardAccumulator(x, dd.constant(np.float64(1.0))) as acc:
            y = dd.sin(x) * x
        dy = acc.jvp(y)
    assert tape.gradient(dy, x).numpy() == pytest.approx(
        2 * math.cos(x0) - x0 * math.sin(x0), rel=1e-15)


def test_forward_over_reverse():
    x0 = 0.7
    x = dd.constant(np.float64(x0))
    with ForwardAccumulator(x, dd.constant(np.float64(1.0))) as acc:
        with dd.GradientTape() as tape:
            tape.watch(x)
            y = dd.sin(x) * x
        g = tape.gradient(y, x)
    assert acc.jvp(g).numpy() == pytest.approx(2 * math.cos(x0) - x0 * math.sin(x0), rel=1e-15)


def test_traced_function_replays_the_tangent_computation():
    # the trace must record the tangent ops: the replay recomputes the tangent of a new input
    @dd.function
    def derivative(x):
        with ForwardAccumulator(x, dd.ones_like(x)) as acc:
            y = dd.sin(x) * x
        return acc.jvp(y)

    for x0 in (0.3, 0.7, -1.2, 0.3):
        got = derivative(dd.constant(np.float64(x0))).numpy()
        assert got == pytest.approx(math.cos(x0) * x0 + math.sin(x0), rel=1e-15)


def test_chain_tangent_matches_the_rule_path_bitwise():
    # the W3 chain: sin, multiply, add, every op fed by the one before
    def tangent(force_rule_path):
        x = dd.constant(np.float64(0.5))
        outer = dd.GradientTape() if force_rule_path else None
        if outer is not None:
            outer.__enter__()
        try:
            with ForwardAccumulator(x, dd.constant(np.float64(1.0))) as acc:
                h = x
                for k in range(100):
                    h = dd.sin(h) if k % 3 == 0 else (h * x if k % 3 == 1 else h + x)
            return acc.jvp(h)
        finally:
            if outer is not None:
                outer.__exit__(None, None, None)

    assert bits(tangent(False), np.float64) == bits(tangent(True), np.float64)
