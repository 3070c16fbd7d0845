"""W10: the cost of one array op: multiply on two (4,)-shaped float64 arrays, 100 times a round.

Floor: np.multiply on the same arrays. The judged row is `dualad.multiply` with no tape active;
a second row calls it with a tape open (watching the first operand), so that every product is
recorded. Each round makes OPS products, so the tape row's enter, watch and exit are shared by
OPS ops (the tape is new every round: a tape held across rounds would grow without bound)."""
import numpy as np
import pytest

import dualad as dd
from bench.common import Suite, assert_close
from bench.report.targets import RatioAtMost

OPS = 100
W10 = Suite("W10", f"W10: {OPS} multiplies of (4,) float64 arrays", floor="floor-numpy",
            judged="dualad-no-tape", problem=lambda: problem(), ops=OPS)
TARGETS = [RatioAtMost(W10, 1.5, "dualad.multiply, no tape, ≤ {limit}× np.multiply"),
           RatioAtMost(W10, 3, "dualad.multiply recorded on a tape ≤ {limit}× np.multiply",
                       impl="dualad-tape")]


def problem():
    rng = np.random.default_rng(10)
    return rng.normal(size=4), rng.normal(size=4)


@W10.add("floor-numpy", "floor")
def _(p):
    a, b = p
    multiply = np.multiply

    def run():
        for _ in range(OPS):
            out = multiply(a, b)
        return out
    return run


@W10.add("dualad-no-tape", "dualad")
def _(p):
    a, b = dd.constant(p[0]), dd.constant(p[1])
    multiply = dd.multiply

    def run():
        for _ in range(OPS):
            out = multiply(a, b)
        return out
    return run


@W10.add("dualad-operator", "dualad", note="a * b on Tensors, no tape")
def _(p):
    a, b = dd.constant(p[0]), dd.constant(p[1])

    def run():
        for _ in range(OPS):
            out = a * b
        return out
    return run


@W10.add("dualad-tape", "dualad", note="inside a GradientTape watching a (one tape per round)")
def _(p):
    a, b = dd.constant(p[0]), dd.constant(p[1])
    multiply, tape_class = dd.multiply, dd.GradientTape

    def run():
        with tape_class() as tape:
            tape.watch(a)
            for _ in range(OPS):
                out = multiply(a, b)
        return out
    return run


@pytest.mark.parametrize("impl", W10.names())
def test_w10(benchmark, impl):
    a, b = W10.problem()
    W10.run(benchmark, impl, (a, b), lambda got: assert_close(got, a * b, rtol=0))
