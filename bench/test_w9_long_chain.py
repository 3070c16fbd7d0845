"""W9: the gradient of a 1,000,000-op scalar chain (the W3 chain, sin / multiply / add, float64):
its time (in this process, a few rounds) and its memory (test_w9_memory: fresh processes at
several lengths, see memory_probe.py).

Floors: the chain on Python floats, and its hand-written reverse sweep. Targets (TARGETS
below): memory linear in the chain length, and released by a non-persistent gradient (while
the user still holds the tape and the output). Peers whose one gradient at 1e6 ops would take longer than
PEER_CAP seconds (estimated from a 10,000-op run) are skipped with the estimate; their memory
and time at the lengths they can do are still measured by test_w9_memory for the scaling plot.
"""
import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest

from bench import common
from bench.chains import MODULES, RUNNERS, X0
from bench.common import Suite, assert_close, chain_python_gradient
from bench.report.targets import MemoryLinear, MemoryReleased

LENGTH = 1_000_000
PEER_CAP = 60.0            # seconds for one peer gradient at LENGTH (quick mode: 10)
PROBE_CAP = 30.0           # seconds for one memory probe (quick mode: 3)
LENGTHS = [10_000, 100_000, 300_000, 1_000_000]
W9 = Suite("W9", "W9: gradient of a 1,000,000-op scalar chain (float64)",
           floor="floor-python-forward", judged="dualad-gradient", ops=LENGTH)
TARGETS = [
    # peak bytes per op may vary by this factor across the probes of ≥ 1e5 ops (below that,
    # the interpreter's fixed costs dominate)
    MemoryLinear(W9, 1.25, "peak memory linear in the chain length", runner="dualad-gradient",
                 from_length=100_000),
    # what is still held after the gradient, as a fraction of the peak
    MemoryReleased(W9, 0.1, "memory released after a non-persistent gradient",
                   runner="dualad-gradient"),
]


def timed_runner(name):
    role, run = RUNNERS[name]

    def build(p):
        if role == "peer":
            run(1000)                       # the import and first-call costs
            t0 = time.perf_counter()
            run(10_000)
            estimate = (time.perf_counter() - t0) * LENGTH / 10_000
            cap = 10.0 if common.QUICK else PEER_CAP
            if estimate > cap:
                pytest.skip(f"one gradient at {LENGTH:,} ops would take ~{estimate:.0f} s "
                            f"(extrapolated from 10,000 ops), over the {cap:.0f} s cap")
        else:
            estimate = 0.0

        def fn():
            return run(LENGTH)[0]
        fn.rounds = 3 if estimate < 10 else 1
        return fn
    return build


for _name, (_role, _) in RUNNERS.items():
    W9.add(_name, _role, rounds=3)(timed_runner(_name))
W9.skip("jax-jit", "peer-jit", "not natural: jit would compile a 1,000,000-equation program "
        "(tracing and XLA compilation of an unrolled chain that long take far longer than the "
        "eager gradient)")
W9.skip("micrograd", "peer", "micrograd's Value has no sin (and its recursive topological sort "
        "would exceed Python's recursion limit at this depth)")


@pytest.mark.parametrize("impl", W9.names())
def test_w9(benchmark, impl):
    value, gradient = chain_python_gradient(X0, LENGTH)
    expected = value if impl.endswith("forward") else gradient
    W9.run(benchmark, impl, None, lambda got: assert_close(got, expected, rtol=1e-9))


def probe(name, length):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-m", "bench.memory_probe", name, str(length)],
                         cwd=root, env=env, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise AssertionError(f"memory probe {name} {length} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(RUNNERS))
def test_w9_memory(name, extra):
    """Peak and retained memory of one gradient in a fresh process, at growing lengths (a
    length is skipped when the previous one extrapolates past the probe cap)."""
    module = MODULES.get(name)
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    lengths = [10_000, 100_000] + ([1_000_000] if name == "dualad-gradient" else []) \
        if common.QUICK else LENGTHS
    cap = 3.0 if common.QUICK else PROBE_CAP
    previous = None
    for length in lengths:
        if previous and previous["seconds"] * length / previous["length"] > cap:
            extra["w9_memory"].append(dict(runner=name, length=length, skipped=(
                f"~{previous['seconds'] * length / previous['length']:.0f} s extrapolated, "
                f"over the {cap:.0f} s probe cap")))
            continue
        result = probe(name, length)
        _, expected = chain_python_gradient(X0, length)
        if name != "floor-python-forward":
            assert_close(result["gradient"], expected, rtol=1e-9, what=f"{name} at {length}")
        extra["w9_memory"].append(result)
        previous = result
