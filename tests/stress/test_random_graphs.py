"""Random programs over dualad ops (random_programs.py), differentiated in reverse, persistent,
forward, reverse-over-reverse and forward-over-reverse mode with the garbage collector forced at
every allocation, against finite differences of the same program run in numpy."""
import numpy as np
import pytest

import dualad as dd

from stress import random_programs as rp
from stress.budget import run_scenario

pytestmark = pytest.mark.stress


def test_random_programs_match_finite_differences_with_gc_at_every_allocation():
    # in a child: a refcounting or gc bug crashes it, not the test run. 800 programs (160 per
    # mode), each checked twice; the repeat must not grow memory by more than 256 blocks
    # (a leak of one object per program is 800)
    out = run_scenario("random_programs", "scenario_random_programs", 0, 800, 256)
    assert int(out.split(" programs")[0]) >= 800


def test_every_mode_and_op_kind_is_generated():
    programs = [rp.generate(seed, rp.MODES[seed % len(rp.MODES)]) for seed in range(300)]
    kinds = {kind for p in programs for kind, *_ in p["instrs"]}
    unary = {name for p in programs for kind, name, *_ in p["instrs"] if kind == "unary"}
    inputs = {kind for p in programs for _, kind in p["inputs"]}
    assert kinds == {"unary", "binary", "reduce", "matmul", "reshape"}
    assert unary == set(rp.UNARY)
    assert inputs == set(rp.KINDS)
    assert any(p["raise_inside"] for p in programs)
    assert {p["mode"] for p in programs} == set(rp.MODES)
    # the same seed gives the same program
    again = rp.generate(7, "reverse")
    first = rp.generate(7, "reverse")
    assert again["instrs"] == first["instrs"]
    assert all(np.array_equal(a, b) for a, b in zip(again["values"], first["values"]))


wrong_sin = dd.extend.primitive(
    "stress_wrong_sin", np.sin,
    vjp=[lambda g, ans, args, params: g * dd.cos(args[0]) * 1.001],
    jvp=[lambda t, ans, args, params: t * dd.cos(args[0]) * 1.001])


@pytest.mark.parametrize("mode", rp.MODES)
def test_the_checker_rejects_a_derivative_off_by_a_tenth_of_a_percent(monkeypatch, mode):
    monkeypatch.setitem(rp.UNARY, "sin", (wrong_sin, np.sin))
    program = {"seed": 1, "mode": mode, "inputs": [((3,), "variable")],
               "instrs": [("unary", "sin", (0,), None), ("binary", "multiply", (1, 0), None)],
               "summed": [2], "values": [np.array([0.3, -1.1, 0.7])], "raise_inside": False}
    with pytest.raises(AssertionError):
        rp.check(program)
    monkeypatch.setitem(rp.UNARY, "sin", (dd.sin, np.sin))
    rp.check(program)  # and accepts the right one
