"""The stress suite's budget, and how its scenarios run in a child interpreter.

By default every stress test does a fixed, small amount of work (the whole suite takes well
under a minute on the 2-core development machine). DUALAD_STRESS_SECONDS=<s> makes each
randomized or threaded test keep going with new seeds until it has run for about <s> seconds
(never less than its default amount), and DUALAD_STRESS_STEPS=<n> sets the length of the long
training loops (default 100000)."""
import os
import sys
import time

from isolated import assert_runs_cleanly

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def seconds():
    """The per-test time budget asked for, or 0 for the default fixed amount of work."""
    value = os.environ.get("DUALAD_STRESS_SECONDS", "").strip()
    if not value:
        return 0.0
    budget = float(value)
    if not budget >= 0:
        raise ValueError(f"DUALAD_STRESS_SECONDS must be a number >= 0, got {value!r}")
    return budget


def training_steps(default=100_000):
    value = os.environ.get("DUALAD_STRESS_STEPS", "").strip()
    return int(value) if value else default


def rounds(minimum):
    """0, 1, 2, ...: `minimum` rounds, then more while the time budget lasts."""
    deadline = time.monotonic() + seconds()
    i = 0
    while i < minimum or time.monotonic() < deadline:
        yield i
        i += 1


def run_scenario(module, function, *args, timeout=300):
    """Call stress.<module>.<function>(*args) in a fresh interpreter, so that a crash (or a
    wedged thread) fails the calling test instead of the whole run. The arguments must be
    literals (repr round-trips). Returns the child's stdout."""
    code = (f"import sys; sys.path.insert(0, {TESTS_DIR!r})\n"
            f"from stress.{module} import {function}\n"
            f"{function}(*{args!r})\n")
    timeout = max(timeout, 3 * seconds() + 60)
    return assert_runs_cleanly(code, timeout=timeout).stdout


def memory_blocks():
    """Python's count of allocated memory blocks: every object (Tensors included, which the
    garbage collector does not track) and small buffer; numpy data buffers are not in it."""
    return sys.getallocatedblocks()
