"""The C path of a scalar op under tapes and accumulators (_scalar_op in dualad/_dispatch.pxi):
an op of a scalar opcode on float scalars of one kind, with no trace being taken and
check_numerics off, reads Variables, computes and records without run_op's general steps. It
must give what the general path gives: the same value and gradient bits, the same entries
(primitive, arguments, slots) on every tape, the same tangents and watched variables, in
every setting (nested and persistent tapes, accumulators, traces, check_numerics,
stop_recording, watch_accessed_variables=False, another thread recording at the same time).

Each scenario runs twice, with the path on and off (_core._set_scalar_op_path), and the two
runs' observations are compared."""
import itertools
import math
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dualad as dd
from dualad import ForwardAccumulator, _core, rules

SCALAR_PRIMITIVES = sorted((d.primitive for d in rules.DECLARATIONS.values()
                            if d.primitive.code != 0), key=lambda p: p.name)
ARITY = {d.primitive.name: d.arity for d in rules.DECLARATIONS.values()}
DTYPES = [np.float32, np.float64]


def bits(t):
    # (numpy() reads a scalar's C double: it does not materialise an array, which would change
    # how later reads share snapshots)
    return None if t is None else (str(t.dtype), np.asarray(t.numpy()).tobytes())


class Recorder:
    """Observations of one run; tensors are named by the order they are first seen, so that
    two runs compare by structure (which entry takes which tensor) and bits."""

    def __init__(self):
        self.seen = {}
        self.log = []

    def name(self, t):
        if not isinstance(t, dd.Tensor):
            return ("value", repr(t))
        key = id(t)
        if key not in self.seen:
            self.seen[key] = (len(self.seen), t)    # (t kept alive: ids are not reused)
        return (self.seen[key][0], isinstance(t, dd.Variable), bits(t))

    def entries(self, tape):
        self.log.append([(p.name, tuple(self.name(a) for a in args), params, self.name(out), s0,
                          s1, out_slot, more)
                         for p, args, params, out, s0, s1, out_slot, more
                         in _core._recorded_entries(tape)])

    def values(self, *ts):
        self.log.append([self.name(t) for t in ts])


def both_paths(scenario, *args):
    """scenario(recorder, *args) with the C scalar path on and off: the two observations."""
    runs = []
    for enabled in (True, False):
        previous = _core._set_scalar_op_path(enabled)
        try:
            rec = Recorder()
            scenario(rec, *args)
            runs.append(rec.log)
        finally:
            _core._set_scalar_op_path(previous)
    return runs


def assert_same_on_both_paths(scenario, *args):
    fast, general = both_paths(scenario, *args)
    assert fast == general


def w1(x, a, b, c):
    return a * dd.pow(x, 2) + b * x + c


def inputs(dtype, variable=True, x0=0.75):
    x = (dd.Variable(x0, dtype=dtype) if variable
         else dd.constant(np.asarray(x0, dtype)))
    a, b, c = (dd.constant(np.asarray(v, dtype)) for v in (1.0, -2.0, 1.0))
    return x, a, b, c


# ---- one tape, Variables and constants, every scalar primitive -------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variable", [True, False])
def test_w1_step_one_tape(dtype, variable):
    def scenario(rec):
        x, a, b, c = inputs(dtype, variable)
        opt = dd.optimizers.SGD(learning_rate=0.01)
        for _ in range(3):
            with dd.GradientTape() as tape:
                if not variable:
                    tape.watch(x)
                y = w1(x, a, b, c)
            rec.entries(tape)
            rec.values(*tape.watched_variables())
            g = tape.gradient(y, x)
            rec.values(y, g)
            if variable:
                opt.apply_gradients([(g, x)])
                rec.values(x)
    assert_same_on_both_paths(scenario)


GRID = [-1.5, -0.0, 0.0, 0.5, 2.0, math.inf, math.nan]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", SCALAR_PRIMITIVES, ids=lambda p: p.name)
def test_every_scalar_primitive(p, dtype):
    arity = ARITY[p.name]

    def scenario(rec):
        for values in itertools.product(GRID, repeat=arity):
            xs = [dd.constant(np.asarray(v, dtype)) for v in values]
            with dd.GradientTape(persistent=True) as tape:
                tape.watch(xs)
                y = p(*xs)
                z = p(*[y] * arity)     # an op on a recorded output
            rec.entries(tape)
            rec.values(y, z, *tape.gradient(z, xs))
    assert_same_on_both_paths(scenario)


@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True),
       st.sampled_from(DTYPES), st.sampled_from([p for p in SCALAR_PRIMITIVES]))
def test_random_values(u, v, dtype, p):
    values = [u, v][:ARITY[p.name]]

    def scenario(rec):
        xs = [dd.Variable(np.asarray(w, dtype)) for w in values]
        with dd.GradientTape() as tape:
            y = p(*xs)
        rec.entries(tape)
        rec.values(y, *tape.gradient(y, xs))
    with np.errstate(all="ignore"):
        assert_same_on_both_paths(scenario)


@pytest.mark.parametrize("dtype", DTYPES)
def test_python_number_operands_and_the_same_variable_twice(dtype):
    def scenario(rec):
        x = dd.Variable(1.5, dtype=dtype)
        frozen = dd.Variable(2.0, dtype=dtype, trainable=False)
        with dd.GradientTape() as tape:
            y = 2 * x ** 3 - x * x / 4.0 + frozen * x - (-x) + abs(x) - frozen
        rec.entries(tape)
        rec.values(*tape.watched_variables())
        rec.values(y, *tape.gradient(y, [x, frozen]))
    assert_same_on_both_paths(scenario)


def test_an_int_operand_converts_as_float_does():
    x = dd.constant(3.0)
    assert np.asarray(dd.pow(x, 2)).tobytes() == np.asarray(dd.pow(x, 2.0)).tobytes()
    assert (x * (2 ** 60 + 1)).numpy() == np.float32(float(2 ** 60 + 1) * 3.0)
    with pytest.raises(OverflowError, match="int too large to convert to float"):
        x * 10 ** 400


def test_broadcasting_operands_take_the_general_path():
    def scenario(rec):
        x = dd.Variable(0.5, dtype=dd.float64)
        v = dd.constant(np.array([1.0, -2.0, 3.0]))
        with dd.GradientTape() as tape:
            y = dd.reduce_sum(x * v + x)
        rec.entries(tape)
        rec.values(y, tape.gradient(y, x))
    assert_same_on_both_paths(scenario)


# ---- nesting, persistence, accumulators, traces, check_numerics, recording flags ------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_nested_tapes(dtype):
    def scenario(rec):
        x, a, b, c = inputs(dtype)
        with dd.GradientTape() as outer:
            with dd.GradientTape() as inner:
                y = w1(x, a, b, c) * x
            rec.entries(inner)
            d = inner.gradient(y, x)
        rec.entries(outer)
        rec.values(y, d, outer.gradient(d, x))
    assert_same_on_both_paths(scenario)


@pytest.mark.parametrize("dtype", DTYPES)
def test_persistent_tape(dtype):
    def scenario(rec):
        x, a, b, c = inputs(dtype, variable=False)
        with dd.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = w1(x, a, b, c)
            z = dd.sin(y) * y
        rec.entries(tape)
        rec.values(y, z, tape.gradient(y, x), tape.gradient(z, [x, y]), tape.gradient(z, x))
    assert_same_on_both_paths(scenario)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ["tape_outside", "tape_inside", "accumulator_only"])
def test_forward_accumulator_active(dtype, order):
    def scenario(rec):
        x, a, b, c = inputs(dtype, variable=False)
        t = dd.constant(np.asarray(1.25, dtype))
        if order == "tape_outside":
            with dd.GradientTape(persistent=True) as tape:
                tape.watch(x)
                with ForwardAccumulator(x, t) as acc:
                    y = w1(x, a, b, c)
                    jvp = acc.jvp(y)
            rec.entries(tape)
            rec.values(y, jvp, tape.gradient(y, x), tape.gradient(jvp, x))
        elif order == "tape_inside":
            with ForwardAccumulator(x, t) as acc:
                with dd.GradientTape() as tape:
                    tape.watch(x)
                    y = w1(x, a, b, c)
                g = tape.gradient(y, x)
            rec.values(y, g, acc.jvp(y), acc.jvp(g))
        else:
            with ForwardAccumulator(x, t) as acc:
                y = w1(x, a, b, c)
            rec.values(y, acc.jvp(y))
    assert_same_on_both_paths(scenario)


@pytest.mark.parametrize("dtype", DTYPES)
def test_trace_being_taken(dtype):
    def scenario(rec):
        x, a, b, c = inputs(dtype)

        @dd.function
        def step():
            with dd.GradientTape() as tape:
                y = w1(x, a, b, c)
            g = tape.gradient(y, x)
            x.assign_sub(0.01 * g)
            return y, g
        for _ in range(3):
            rec.values(*step(), x)
        with dd.GradientTape() as tape:    # and eagerly, on the Variable the trace changed
            y = w1(x, a, b, c)
        rec.entries(tape)
        rec.values(y, tape.gradient(y, x))
    assert_same_on_both_paths(scenario)


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_numerics_on(dtype):
    def scenario(rec):
        x, a, b, c = inputs(dtype)
        dd.debugging.enable_check_numerics()
        try:
            with dd.GradientTape() as tape:
                y = w1(x, a, b, c)
            rec.entries(tape)
            rec.values(y, tape.gradient(y, x))
            with pytest.raises(FloatingPointError):
                dd.log(dd.constant(np.asarray(-1.0, dtype)) * x)
        finally:
            dd.debugging.disable_check_numerics()
    assert_same_on_both_paths(scenario)


@pytest.mark.parametrize("dtype", DTYPES)
def test_stop_recording_and_unwatched_variables(dtype):
    def scenario(rec):
        x, a, b, c = inputs(dtype)
        with dd.GradientTape(persistent=True) as tape:
            y = w1(x, a, b, c)
            with tape.stop_recording():
                z = y * x + c
            u = z * y
        rec.entries(tape)
        rec.values(y, z, u, *tape.gradient(u, [x, y, z]))
        with dd.GradientTape(watch_accessed_variables=False) as tape:
            y = w1(x, a, b, c)
        rec.entries(tape)
        rec.values(y, tape.gradient(y, x), *tape.watched_variables())
        with dd.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(x)
            y = w1(x, a, b, c)
        rec.entries(tape)
        rec.values(y, tape.gradient(y, x))
    assert_same_on_both_paths(scenario)


@pytest.mark.parametrize("dtype", DTYPES)
def test_another_thread_recording_at_the_same_time(dtype):
    n_steps = 200

    def steps(results, k):
        x, a, b, c = inputs(dtype, x0=0.25 * k)
        opt = dd.optimizers.SGD(learning_rate=0.01)
        out = []
        for _ in range(n_steps):
            with dd.GradientTape() as tape:
                y = w1(x, a, b, c)
            n_entries = tape._n_entries
            g = tape.gradient(y, x)
            opt.apply_gradients([(g, x)])
            out.append((bits(y), bits(g), n_entries))
        results[k] = out

    def scenario(rec):
        results = {}
        threads = [threading.Thread(target=steps, args=(results, k)) for k in (1, 2)]
        for th in threads:
            th.start()
        steps(results, 0)
        for th in threads:
            th.join()
        rec.log.append(sorted(results.items()))
    fast, general = both_paths(scenario)
    assert fast == general
    alone = {}
    steps(alone, 1)
    assert fast[0][1] == (1, alone[1])      # the same as a thread recording alone


# ---- the public functions of binary primitives (ops.binary_op) against their operators ------

OPERATOR_OF = {"add": lambda u, v: u + v, "subtract": lambda u, v: u - v,
               "multiply": lambda u, v: u * v, "divide": lambda u, v: u / v,
               "pow": lambda u, v: u ** v}
PUBLIC_BINARY = ["add", "subtract", "multiply", "divide", "pow", "maximum", "minimum"]


def _public_calls(opname):
    # every spelling of the public call, and the operator where the op has one
    fn, math_fn = getattr(dd, opname), getattr(dd.math, opname)
    calls = [fn, lambda u, v: fn(u, v, name="n"), lambda u, v: math_fn(u, v, name=None)]
    if opname in OPERATOR_OF:
        calls.append(OPERATOR_OF[opname])
    return calls


@pytest.mark.parametrize("opname", PUBLIC_BINARY)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("other", [2, -3, 2.5, 0.5, "tensor"])
@pytest.mark.parametrize("base", [1.75, -1.25])
def test_public_binary_ops_match_their_operators(opname, dtype, other, base):
    def scenario(rec, call):
        x = dd.Variable(base, dtype=dtype)
        y_in = dd.constant(1.5, dtype=dtype) if other == "tensor" else other
        with dd.GradientTape(persistent=True) as outer:
            with dd.GradientTape() as inner:
                with ForwardAccumulator(x, dd.constant(1.0, dtype=dtype)) as acc:
                    y = call(x, y_in) + call(y_in, x)
                rec.values(acc.jvp(y))
            rec.entries(inner)
            d = inner.gradient(y, x)
        rec.entries(outer)
        rec.values(y, d, outer.gradient(d, x))
    observations = [both_paths(scenario, call) for call in _public_calls(opname)]
    for fast, general in observations:
        assert fast == general
    assert all(obs == observations[0] for obs in observations)


@pytest.mark.parametrize("opname", PUBLIC_BINARY)
def test_public_binary_ops_in_a_trace_and_under_check_numerics(opname):
    calls = _public_calls(opname)
    traced = [dd.function(lambda u, v, call=call: call(u, v)) for call in calls]
    x = dd.constant(np.float32(-1.5))
    results = {bits(f(x, dd.constant(np.float32(3.0)))) for f in traced}
    assert results == {bits(calls[0](x, 3.0))}
    dd.debugging.enable_check_numerics()
    try:
        if opname in ("pow", "divide"):
            bad = 0.5 if opname == "pow" else 0.0   # (-1.5) ** 0.5 is nan; x / 0 is -inf
            messages = set()
            for call in calls:
                with dd.GradientTape() as tape:
                    tape.watch(x)
                    with pytest.raises(FloatingPointError) as info:
                        call(x, bad)
                messages.add(str(info.value))
            assert len(messages) == 1
        assert {bits(call(x, 2.0)) for call in calls} == {bits(calls[-1](x, 2.0))}
    finally:
        dd.debugging.disable_check_numerics()


@pytest.mark.parametrize("opname", PUBLIC_BINARY)
def test_public_binary_op_errors_match_their_operators(opname):
    x32, x64 = dd.constant(1.0, dtype=dd.float32), dd.constant(1.0, dtype=dd.float64)
    n = dd.constant(1, dtype=dd.int32)
    for u, v in [(x32, x64), (n, 1.5), (x32, "a"), (x32, 10 ** 400)]:
        messages = set()
        for call in _public_calls(opname):
            with dd.GradientTape():
                with pytest.raises((TypeError, OverflowError)) as info:
                    call(u, v)
            messages.add((type(info.value), str(info.value)))
        assert len(messages) == 1, messages


# ---- the sweeps come before anything reads the record -------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_sweeps_before_anything_reads_the_entries(dtype):
    # the sweeps (C path, rules run for a recording outer tape) come before _recorded_entries
    # makes Entry objects of the compact record's structs
    def scenario(rec):
        x, a, b, c = inputs(dtype, variable=False)
        with dd.GradientTape(persistent=True) as outer:
            outer.watch(x)
            with dd.GradientTape(persistent=True) as inner:
                inner.watch(x)
                y = w1(x, a, b, c) * dd.sin(x)
                z = -dd.sqrt(dd.exp(y))
            d = inner.gradient(z, x)
            rec.values(y, z, d, inner.gradient(y, x))
        rec.values(outer.gradient(d, x), *outer.gradient(z, [x, y]))
        rec.entries(inner)
        rec.entries(outer)
    assert_same_on_both_paths(scenario)


@pytest.mark.parametrize("dtype", DTYPES)
def test_check_numerics_turned_on_before_the_sweep(dtype):
    # recorded with check_numerics off, swept with it on: the error names the entry's inputs
    def scenario(rec):
        x = dd.constant(np.asarray(0.0, dtype))
        with dd.GradientTape() as tape:
            tape.watch(x)
            y = dd.sqrt(x) * dd.constant(np.asarray(3.0, dtype))
        dd.debugging.enable_check_numerics()
        try:
            with pytest.raises(FloatingPointError) as err:
                tape.gradient(y, x)
        finally:
            dd.debugging.disable_check_numerics()
        rec.log.append(str(err.value))
        rec.entries(tape)
    assert_same_on_both_paths(scenario)


# ---- the public functions of one-input primitives (ops.float_unary_op, ops.unary_op), unary()
# ---- and the operators -x and abs(x): a scalar goes to _scalar_op without run_op -------------

PUBLIC_UNARY = sorted(d.export for d in rules.DECLARATIONS.values()
                      if d.wrapper in ("float_unary", "unary"))
OPERATOR_OF_UNARY = {"negative": lambda u: -u, "abs": abs}


def _public_unary_calls(opname):
    # every spelling of the call: the public function (positional and keyword name=), the
    # core's unary() on the primitive, the primitive's own call (run_op), the operator
    fn, p = getattr(dd, opname), rules.PRIMITIVES[rules.DECLARATIONS[opname].primitive.name]
    calls = [fn, lambda u: fn(u, name="n"), lambda u: fn(u, None),
             lambda u: _core.unary(p, u if isinstance(u, dd.Tensor) else dd.constant(u)), p]
    if opname in OPERATOR_OF_UNARY:
        calls.append(OPERATOR_OF_UNARY[opname])
    return calls


@pytest.mark.parametrize("opname", PUBLIC_UNARY)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("base", [0.625, -1.25, 0.0])
def test_public_unary_ops_match_the_primitive(opname, dtype, base):
    def scenario(rec, call):
        x = dd.Variable(base, dtype=dtype)
        c = dd.constant(np.asarray(0.375, dtype))
        with dd.GradientTape(persistent=True) as outer:
            with dd.GradientTape() as inner:
                with ForwardAccumulator(x, dd.constant(1.0, dtype=dtype)) as acc:
                    y = call(x) * call(call(c) * x)
                rec.values(acc.jvp(y))
            rec.entries(inner)
            rec.values(*inner.watched_variables())
            d = inner.gradient(y, x)
        rec.entries(outer)
        rec.values(y, d, None if d is None else outer.gradient(d, x))   # (None: ceil, round)
    observations = [both_paths(scenario, call) for call in _public_unary_calls(opname)]
    with np.errstate(all="ignore"):
        for fast, general in observations:
            assert fast == general
    assert all(obs == observations[0] for obs in observations)


@pytest.mark.parametrize("opname", PUBLIC_UNARY)
@pytest.mark.parametrize("dtype", DTYPES)
def test_public_unary_ops_on_every_value(opname, dtype):
    # the scalar path's value bits against the general path's, on the edges of every domain
    calls = _public_unary_calls(opname)

    def scenario(rec, call):
        for v in GRID + [-0.5, 1e-30, 3e38, -7.5, 100.0]:
            x = dd.constant(np.asarray(v, dtype))
            with dd.GradientTape() as tape:
                tape.watch(x)
                y = call(x)
            rec.entries(tape)
            rec.values(y, tape.gradient(y, x))
            rec.values(call(x))     # no tape
    with np.errstate(all="ignore"):
        observations = [both_paths(scenario, call) for call in calls]
    for fast, general in observations:
        assert fast == general
    assert all(obs == observations[0] for obs in observations)


@pytest.mark.parametrize("opname", PUBLIC_UNARY)
def test_public_unary_ops_with_numbers_traces_and_check_numerics(opname):
    fn = getattr(dd, opname)
    calls = _public_unary_calls(opname)
    def outcome(u):
        try:
            return bits(fn(u))
        except TypeError as e:
            return str(e)
    for number in (0.5, 2):
        # a Python number converts as dualad.constant does (float32; an int stays an int32,
        # which the float-only ops refuse)
        assert outcome(number) == outcome(dd.constant(number))
    x = dd.constant(np.float32(0.75))
    traced = [dd.function(lambda u, call=call: call(u)) for call in calls]
    assert {bits(f(x)) for f in traced} == {bits(fn(x))}
    v = dd.Variable(np.float64(0.75))

    @dd.function
    def through_variable():
        with dd.GradientTape() as tape:
            y = fn(v)
        return y, tape.gradient(y, v)
    assert [bits(t) for t in through_variable()] == [bits(t) for t in through_variable()]
    with dd.GradientTape() as tape:
        y = fn(v)
    assert bits(y) == bits(through_variable()[0])
    assert tape.watched_variables() == (v,)
    dd.debugging.enable_check_numerics()
    try:
        for bad in (-1.0, 0.0):
            messages = set()
            for enabled in (True, False):
                previous = _core._set_scalar_op_path(enabled)
                try:
                    for call in calls:
                        try:
                            with np.errstate(all="ignore"):
                                messages.add(("ok", bits(call(dd.constant(np.float64(bad))))))
                        except FloatingPointError as e:
                            messages.add((type(e), str(e)))
                finally:
                    _core._set_scalar_op_path(previous)
            assert len(messages) == 1, messages
    finally:
        dd.debugging.disable_check_numerics()


@pytest.mark.parametrize("opname", PUBLIC_UNARY)
def test_public_unary_op_errors_are_the_general_paths(opname):
    fn = getattr(dd, opname)
    bad = [dd.constant(1, dtype=dd.int32), dd.Variable(np.int64(3)), None, "a", 10 ** 400,
           [1.0, "a"], np.array(["x"]), object()]
    for u in bad:
        outcomes = set()
        for enabled in (True, False):
            previous = _core._set_scalar_op_path(enabled)
            try:
                for call in (fn, lambda w: fn(w, name="n")):
                    with dd.GradientTape():
                        try:
                            outcomes.add(("ok", bits(call(u))))
                        except (TypeError, ValueError, OverflowError) as e:
                            outcomes.add((type(e), str(e)))
            finally:
                _core._set_scalar_op_path(previous)
        assert len(outcomes) == 1, (u, outcomes)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_operands_of_equal_dtypes_that_are_distinct_objects(dtype):
    # binary's first test is the dtype's identity: a scalar whose numpy dtype equals another's
    # without being the same object (dtype metadata) goes the long way, to the same result
    def scenario(rec):
        odd = dd.constant(np.array(1.5, dtype=np.dtype(dtype, metadata={"unit": "m"})))
        x = dd.Variable(np.asarray(0.75, dtype))
        with dd.GradientTape() as tape:
            tape.watch(odd)
            y = odd * x + x / odd - dd.pow(odd, x) + dd.sin(odd)
        rec.entries(tape)
        rec.values(y, *tape.gradient(y, [odd, x]))
    assert_same_on_both_paths(scenario)
    with pytest.raises(TypeError, match="operands have different dtypes"):
        dd.constant(np.array(1.5, dtype=np.dtype(dtype, metadata={"unit": "m"}))) * dd.constant(
            np.asarray(1.0, np.float64 if dtype is np.float32 else np.float32))


# ---- a Python number operand of a scalar op: converted as _like converts it, made a Tensor only
# ---- where something records the op (_scalar_op_number) ------------------------------------

NUMBERS = [2, -3, 0, 2 ** 60 + 1, 2 ** 1000, 0.1, -0.0, 1e-45, 3.5e38, math.inf, -math.inf,
           math.nan]


@pytest.mark.parametrize("opname", PUBLIC_BINARY)
@pytest.mark.parametrize("dtype", DTYPES)
def test_number_operands_on_both_sides(opname, dtype):
    calls = _public_calls(opname)

    def scenario(rec, call):
        for base in (1.75, -0.5):
            for number in NUMBERS:
                for t in (dd.constant(np.asarray(base, dtype)), dd.Variable(base, dtype=dtype)):
                    rec.values(call(t, number), call(number, t))      # no tape
                    with dd.GradientTape(persistent=True) as tape:
                        u = call(t, number)
                        w = call(number, t)
                        z = call(dd.constant(np.asarray(0.25, dtype)), number)  # nothing recorded
                    rec.entries(tape)
                    rec.values(u, w, z, *tape.watched_variables())
                    if isinstance(t, dd.Variable):
                        rec.values(*tape.gradient([u, w], [t]))
                    with ForwardAccumulator(t, dd.constant(np.asarray(1.0, dtype))) as acc:
                        u = call(t, number)
                        w = call(number, t)
                    rec.values(u, w, acc.jvp(u), acc.jvp(w))
    with np.errstate(all="ignore"):
        observations = [both_paths(scenario, call) for call in calls]
    for fast, general in observations:
        assert fast == general
    assert all(obs == observations[0] for obs in observations)


@pytest.mark.parametrize("dtype", DTYPES)
def test_number_operands_that_are_not_plain_floats_or_ints(dtype):
    # bools, numpy scalars, float and int subclasses go the general way: the same values
    class MyFloat(float):
        pass

    class MyInt(int):
        pass

    def scenario(rec):
        t = dd.Variable(1.5, dtype=dtype)
        for number in (True, np.float64(0.1), np.float32(0.1), np.int64(3), MyFloat(0.1),
                       MyInt(3)):
            with dd.GradientTape() as tape:
                y = t * number - number / t
            rec.entries(tape)
            rec.values(y, tape.gradient(y, t))
    assert_same_on_both_paths(scenario)


def test_number_operand_errors_leave_the_tape_recording():
    x = dd.constant(1.5)
    for call in (lambda: x * 10 ** 400, lambda: 10 ** 400 - x, lambda: dd.pow(x, -10 ** 400)):
        with dd.GradientTape() as tape:
            tape.watch(x)
            with pytest.raises(OverflowError, match="int too large to convert to float"):
                call()
            y = x * 3
        assert tape.gradient(y, x).numpy() == np.float32(3.0)
