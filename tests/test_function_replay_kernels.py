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
