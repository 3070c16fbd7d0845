"""The replay's scalar kernels give the eager ops' bits.

The compiled replay runs two-argument float ops on C doubles with kernels of its own (one per
op, pow by 1 and float32 squares without libm): each must round exactly like the eager op, and
consecutive ops must never be fused into one multiply-add."""
from fractions import Fraction

import numpy as np
import pytest

import dualad as dd

F32_EDGES = [0.0, -0.0, 1.0, -1.5, 3.0e38, -3.4028235e38, 1e-45, -1e-40, 1.1754944e-38,
             0.1, 16777215.0, float("inf"), float("-inf"), float("nan")]


def bits(t):
    return np.asarray(t).tobytes()


def eager_and_compiled(fn, *inputs):
    """fn's results on each input tuple, eager and replayed by one compiled program."""
    compiled = dd.function(fn)
    pairs = [(fn(*args), compiled(*args)) for args in inputs]
    assert compiled.trace_count == 1     # every input replayed the one program
    return pairs


@pytest.mark.parametrize("exponent", [1.0, 2.0, 3.0, 0.5])
@pytest.mark.parametrize("dtype", [dd.float32, dd.float64])
def test_pow_by_small_exponents_gives_the_eager_bits(dtype, exponent):
    rng = np.random.default_rng(7)
    values = F32_EDGES + list(rng.standard_normal(200) * 10.0 ** rng.integers(-30, 30, 200))
    inputs = [(dd.constant(v, dtype=dtype),) for v in values]
    for got_eager, got_compiled in eager_and_compiled(lambda x: dd.pow(x, exponent), *inputs):
        assert bits(got_compiled) == bits(got_eager), (got_eager, got_compiled)


def test_pow_in_a_compiled_loop_gives_the_eager_bits():
    # the body's pow reads its exponent from a constant slot written before the loop
    def step(x):
        y = x
        for _ in dd.range(3):
            y = dd.pow(y, 2.0) * 0.5 + dd.pow(y, 1.0)
        return y
    inputs = [(dd.constant(v, dtype=dd.float32),) for v in F32_EDGES + [0.3, -7.25]]
    for got_eager, got_compiled in eager_and_compiled(step, *inputs):
        assert bits(got_compiled) == bits(got_eager)


def _rounded_separately_and_fused(a, b, c):
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    return (a * b) + c, float(exact)


@pytest.mark.parametrize("in_loop", [False, True])
def test_multiply_then_add_is_not_contracted_into_a_fused_multiply_add(in_loop):
    # 1 + 2**-30 squared needs 2**-60, which the product's rounding drops: a fused
    # multiply-add would keep it
    a = 1.0 + 2.0 ** -30
    c = -(1.0 + 2.0 ** -29)
    separate, fused = _rounded_separately_and_fused(a, a, c)
    assert separate == 0.0 and fused == 2.0 ** -60

    def mul_add(x, y, z):
        if not in_loop:
            return x * y + z
        out = z
        for _ in dd.range(4):
            out = x * y + z
        return out
    args = tuple(dd.constant(v, dtype=dd.float64) for v in (a, a, c))
    [(got_eager, got_compiled)] = eager_and_compiled(mul_add, args)
    assert float(got_eager) == separate
    assert bits(got_compiled) == bits(got_eager)


@pytest.mark.parametrize("op", ["add", "subtract", "multiply", "divide"])
@pytest.mark.parametrize("dtype", [dd.float32, dd.float64])
def test_binary_ops_give_the_eager_bits(op, dtype):
    fn = getattr(dd, op)
    rng = np.random.default_rng(11)
    pairs = [(x, y) for x in F32_EDGES[:8] + [float("nan")] for y in F32_EDGES[:8]]
    pairs += list(zip(rng.standard_normal(100) * 1e3, rng.standard_normal(100) * 1e-3))
    inputs = [(dd.constant(x, dtype=dtype), dd.constant(y, dtype=dtype)) for x, y in pairs]
    for got_eager, got_compiled in eager_and_compiled(fn, *inputs):
        assert bits(got_compiled) == bits(got_eager)


def test_tensor_operands_take_the_generic_path():
    # a scalar with an array, and arrays, are not C doubles: they go through run_op
    f = dd.function(lambda x, y: x * y + x)
    for x, y in [(dd.constant(1.5), dd.constant([2.0, -0.0])),
                 (dd.constant([1.0, 2.0]), dd.constant(0.25)),
                 (dd.constant([1.0, 2.0]), dd.constant([3.0, 0.25]))]:
        expected = x * y + x
        got = f(x, y)
        assert got.shape == expected.shape and bits(got) == bits(expected)


# ---- values a loop computes but nothing reads ---------------------------------------------
# The replay skips a loop body's float ops whose results nothing reads; every value something
# does read (the next iteration, an instruction after the loop, an output, an assignment) must
# still be computed.

def _world(dtype=dd.float32):
    return dd.Variable(0.25, dtype=dtype), dd.Variable(0.0, dtype=dtype)


def _lockstep(make, calls=3):
    """make(x, log) -> function; eager and compiled worlds called in turn, same bits."""
    (xe, le), (xc, lc) = _world(), _world()
    eager, compiled = make(xe, le), dd.function(make(xc, lc))
    for _ in range(calls):
        re_, rc = eager(), compiled()
        assert bits(rc) == bits(re_)
        assert bits(xc) == bits(xe) and bits(lc) == bits(le)
    assert compiled.trace_count == 1


def test_a_value_read_only_by_the_next_iteration_is_computed():
    def make(x, log):
        def run():
            prev = x * 1.0
            for _ in dd.range(6):
                cur = prev * 1.5 + x        # read by the next iteration only (and dead at the end)
                log.assign(prev)
                prev = cur
            return log * 1.0
        return run
    _lockstep(make)


def test_a_value_of_the_last_iteration_read_after_the_loop_is_computed():
    def make(x, log):
        def run():
            y = x
            for _ in dd.range(5):
                y = x * 3.0 - 1.0           # only the last one is read, after the loop
                unused = y * y + x          # noqa: F841 - nothing reads it
                x.assign_add(0.5)
            return y + 0.0
        return run
    _lockstep(make)


def test_the_unused_loss_of_a_training_loop_is_not_needed_for_the_result():
    def make(x, log):
        opt = dd.optimizers.SGD(learning_rate=0.1)

        def run():
            for _ in dd.range(20):
                with dd.GradientTape() as tape:
                    loss = dd.pow(x, 2) * 3.0 + x * -2.0 + 1.0
                opt.apply_gradients([(tape.gradient(loss, x), x)])
            return x * 1.0
        return run
    _lockstep(make)


def test_unread_ops_on_tensors_still_run_through_run_op():
    # a dead op whose operands are not C doubles runs as usual (and its errors would show)
    v = dd.Variable([1.0, 2.0])

    def run():
        for _ in dd.range(4):
            unused = v * 2.0 + 1.0          # noqa: F841 - arrays: the generic path
            v.assign_add(dd.constant([0.5, 0.5]))
        return v * 1.0
    f = dd.function(run)
    assert bits(f()) == bits(dd.constant([3.0, 4.0]))
    assert bits(v) == bits(dd.constant([3.0, 4.0]))
