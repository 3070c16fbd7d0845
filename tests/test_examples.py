"""The example scripts run as a user runs them (a subprocess of this Python), and the numbers
they print match the tutorials they come from (see conformance/identities.md).

Each script prints one line per result, `ok  <label> | dualad <value> | tutorial <value>`.
The tests here read only the `dualad` column and compare it with the tutorial values written
below (copied from the tutorials, not from the scripts), so a script that printed a wrong
"tutorial" value next to a wrong result would still fail."""
import functools
import os
import re
import subprocess
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
LINE = re.compile(r"^(ok |BAD) (.+?) \| dualad (.*) \| tutorial (.*)$")
NUMBER = re.compile(r"True|False|nan|-?inf|-?\d+(?:\.\d*)?(?:e[-+]?\d+)?")


@functools.lru_cache(maxsize=None)
def run_script(name):
    """(results {label: dualad text}, stdout) of examples/<name>; the run must succeed.
    Each script runs once per session (the results are not modified by the tests)."""
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, name)], capture_output=True,
                          text=True, timeout=120, cwd=os.path.dirname(EXAMPLES))
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    results = {}
    for line in proc.stdout.splitlines():
        m = LINE.match(line)
        if m:
            status, label, got, _ = m.groups()
            assert label not in results, f"{name} prints the label {label!r} twice"
            assert status == "ok ", f"{name} reports a mismatch: {line}"
            results[label] = got
    return results, proc.stdout


def numbers(text):
    """The numbers (and booleans) in a printed value, in order."""
    out = []
    for tok in NUMBER.findall(text):
        out.append({"True": True, "False": False}.get(tok, tok))
    return [v if isinstance(v, bool) else float(v) for v in out]


def check(results, expected, name):
    """Every expected label is printed, with exactly the expected numbers (float32: the
    printed text must read back as the same float32 as the tutorial's value)."""
    missing = sorted(set(expected) - set(results))
    assert not missing, f"{name} does not print {missing}"
    for label, want in expected.items():
        got = numbers(results[label])
        want = list(np.ravel(want))
        assert len(got) == len(want), f"{name}: {label}: printed {results[label]!r}, want {want}"
        for g, w in zip(got, want):
            if isinstance(w, (bool, np.bool_)):
                assert g is bool(w), f"{name}: {label}: printed {results[label]!r}, want {want}"
            else:
                assert np.float32(g) == np.float32(w), \
                    f"{name}: {label}: printed {results[label]!r}, want {want}"


# ---- TensorFlow's automatic differentiation tutorial (English and Chinese versions) -------
# plus the GradientTape parts of the d2l and 30-days chapters the tour also runs

TOUR = {
    "y": 4.0,
    "z": 16.0,
    "dz/dx": [[8.0, 8.0], [8.0, 8.0]],
    "dz/dy": 8.0,
    "dz/dx = 4x^3 at 3": 108.0,
    "dy/dx = 2x at 3": 6.0,
    "grad(x=2, y=6)": 12.0,
    "grad(x=2, y=7)": 12.0,
    "grad(x=2, y=5)": 12.0,
    "grad(x=2, y=4)": 4.0,
    "f(x=2, y=6)": 8.0,
    "f(x=2, y=5)": 8.0,
    "f(x=2, y=4)": 4.0,
    "dy/dx = 3x^2 at 1": 3.0,
    "d2y/dx2 = 6x at 1": 6.0,
    "dy/dx = 4x": [0.0, 4.0, 8.0, 12.0],
    "dz/dx = 4x^3 (in context)": [0.0, 4.0, 32.0, 108.0],
    "dy/dx = 2x (in context)": [0.0, 2.0, 4.0, 6.0],
    "gradient == c / a": [True],
    "dy/dx = 2ax + b at 0": -2.0,
    "dy/da": 0.0,
    "dy/db": 0.0,
    "dy/dc": 1.0,
    "d2y/dx2 = 2a": 2.0,
    "(dy/dx, y) at x = 0": [-2.0, 1.0],
    "(dy/dx, y) at x = 1": [0.0, 0.0],
    "x after 1000 steps (float32, exact)": 0.999998569,
    "y after 1000 steps": 0.0,
}


def test_tour_prints_the_tutorials_values():
    results, out = run_script("tour.py")
    check(results, TOUR, "tour.py")
    assert "  y = 0 ; x = 0.999998569\n" in out
    # 10 more steps at rate 0.1 move x on from the float32 stall, towards 1
    x = numbers(results["x after 10 more steps at lr 0.1"])[0]
    assert np.float32(0.999998569) < np.float32(x) <= 1.0


# ---- d2l, 2.3 自动求梯度 (seed 001) --------------------------------------------------------

D2L = {
    "x": [0.0, 1.0, 2.0, 3.0],
    "x.shape": [4, 1],
    "x.dtype is float32": True,
    "dy/dx = 4x": [0.0, 4.0, 8.0, 12.0],
    "dz/dx = 4x^3": [0.0, 4.0, 32.0, 108.0],
    "dy/dx = 2x": [0.0, 2.0, 4.0, 6.0],
    "warnings about gradient() in the context": 2,   # the chapter shows two WARNING lines
    "t.gradient(c, a) == c / a": [True],
}


def test_d2l_autograd_prints_the_chapters_values():
    results, _ = run_script("d2l_autograd.py")
    check(results, D2L, "d2l_autograd.py")
    # the property the chapter checks on one random draw, on more draws (both signs of a)
    draws = [label for label in results if label.endswith(": t.gradient(c, a) == c / a")]
    assert len(draws) >= 3
    for label in draws:
        assert numbers(results[label]) == [True], label
    # the arrays are (4, 1) columns, printed as such
    assert results["dy/dx = 4x"] == "[[0] [4] [8] [12]]"


# ---- 30 days of TensorFlow 2, 2-3 自动微分机制 (seed 003) -----------------------------------

STALLED = "y = 0 ; x = 0.999998569"   # what the chapter's tf.print shows after the loops
MINIMIZATION = {
    "dy/dx": -2.0,
    "dy/da": 0.0,
    "dy/db": 0.0,
    "dy/dc": 1.0,
    "d2y/dx2": 2.0,
    "tf.print(f(0.0)) (compiled)": [-2.0, 1.0],
    "tf.print(f(1.0)) (compiled)": [0.0, 0.0],
    "apply_gradients x1000": [0.0, 0.999998569],
    "minimize x1000": [0.0, 0.999998569],
    "compiled apply_gradients x10000: tf.print(minimizef())": 0.0,
    "compiled apply_gradients x10000: tf.print(x)": 0.999998569,
    "compiled minimize x1000: tf.print(train(1000))": 0.0,
    "compiled minimize x1000: tf.print(x)": 0.999998569,
}


def test_minimization_prints_the_chapters_values():
    results, out = run_script("minimization.py")
    check(results, MINIMIZATION, "minimization.py")
    # tf.print's exact text, as the chapter shows it
    assert results["tf.print(f(0.0)) (compiled)"] == "(-2, 1)"
    assert results["tf.print(f(1.0)) (compiled)"] == "(0, 0)"
    assert results["apply_gradients x1000"] == STALLED
    assert results["minimize x1000"] == STALLED
    assert results["compiled apply_gradients x10000: tf.print(x)"] == "0.999998569"
    assert results["compiled minimize x1000: tf.print(x)"] == "0.999998569"
    # the compiled 10000 steps end on the same float32 as the eager ones
    assert results["compiled x == eager x (same bits)"] == "True"
    assert results["compiled assign_sub x10000, first call"] == STALLED
    assert results["compiled assign_sub x10000, replayed"] == STALLED
    # the ten steps at rate 0.1 the chapter prints: x rises from the stall towards 1
    steps = re.findall(r"^  y = (\S+) ; x = (\S+) ; dy_dx = (\S+)$", out, re.M)
    assert len(steps) == 10
    xs = [np.float32(x) for _, x, _ in steps]
    assert xs[0] == np.float32(0.999998569)
    assert all(a < b <= 1.0 for a, b in zip(xs, xs[1:]))
    assert all(float(g) < 0 for _, _, g in steps)
    assert results["10 steps at 0.1 bring x closer to 1"] == "True"


@pytest.mark.parametrize("name", ["tour.py", "d2l_autograd.py", "minimization.py"])
def test_a_wrong_value_would_be_caught(name):
    """The parser finds the results: a check against a deliberately wrong value fails."""
    results, _ = run_script(name)
    label = next(iter(results))
    # the failure names the script, the label and the wrong value wanted
    with pytest.raises(AssertionError, match=re.escape(f"{name}: {label}: printed") + ".*12345"):
        check(results, {label: [12345.0] * len(numbers(results[label]))}, name)
