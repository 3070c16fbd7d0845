"""Tapes and Variables under real threads, thread switches forced every microsecond
(sys.setswitchinterval(1e-6)); each scenario runs in a child interpreter, so a race that
corrupts memory crashes the child and fails the test. The rule checked: another thread gets a
clear error or the exact number, never a crash or a wrong one."""
import pytest

from isolated import assert_runs_cleanly

pytestmark = pytest.mark.stress

_PRELUDE = """
import math, sys, threading, time
import numpy as np
import dualad as dd
from dualad import GradientTape
from dualad._core import AlreadyActiveError
sys.setswitchinterval(1e-6)
errors = []

def run_threads(*targets):
    def guard(f):
        def body():
            try:
                f()
            except BaseException as e:  # reported by the parent
                errors.append(repr(e))
        return body
    threads = [threading.Thread(target=guard(f)) for f in targets]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not any(th.is_alive() for th in threads), "a thread hung"
    assert errors == [], errors[:5]
"""


def _run(body, timeout=240):
    proc = assert_runs_cleanly(_PRELUDE + body, timeout=timeout)
    assert proc.stdout.strip().endswith("ok"), proc.stdout[-2000:]


def test_sweeping_a_tape_that_another_thread_is_recording_on():
    # thread A records on one persistent tape over and over (reset, watch, a chain of ops);
    # thread B asks it for gradients, Jacobians and resets meanwhile: an AlreadyActiveError
    # while A is inside its block, else the exact gradient (None once A's reset dropped it)
    _run("""
tape = GradientTape(persistent=True)
published = []
stop = threading.Event()
counts = {"refused": 0, "exact": 0, "dropped": 0}
def f(x):
    y = x
    for _ in range(6):
        y = dd.sin(y) * x + y
    return dd.reduce_sum(y)
x0 = dd.constant(np.linspace(0.1, 0.9, 64))
with GradientTape() as ref_tape:
    ref_tape.watch(x0)
    ref_y = f(x0)
expected = ref_tape.gradient(ref_y, x0).numpy()

def recorder():
    for _ in range(400):
        with tape:
            tape.reset()
            x = dd.constant(np.linspace(0.1, 0.9, 64))
            tape.watch(x)
            published.append((x, f(x)))
        time.sleep(0.001)   # outside the block: B's gradient of the finished record is exact
    stop.set()

def sweeper():
    i = 0
    while not stop.is_set() or i < 50:
        i += 1
        if not published:
            continue
        x, y = published[-1]
        try:
            if i % 7 == 0:
                tape.reset()
                continue
            g = tape.jacobian(y, x) if i % 3 == 0 else tape.gradient(y, x)
        except AlreadyActiveError:
            counts["refused"] += 1
            continue
        if g is None:
            counts["dropped"] += 1
        else:
            assert np.array_equal(g.numpy(), expected), "a wrong gradient"
            counts["exact"] += 1

run_threads(recorder, sweeper)
# how often each case comes up is the scheduler's choice (a loaded machine gave no refusal
# once): every refusal is pinned deterministically in tests/test_tape_other_thread.py, and
# this run asserts only that B's calls happened and none gave a wrong number
assert sum(counts.values()) > 0, counts
print(counts)
print("ok")
""")


def test_one_finished_tape_swept_by_four_threads_at_once_while_a_fifth_resets_copies():
    # a persistent tape, no longer active, swept concurrently (the shared scratch buffer, the
    # sums made in place, the parallel kernels on large arrays); meanwhile other tapes are
    # recorded, swept and reset by a fifth thread. Every result equals the serial one.
    _run("""
prev = dd._core._run_kernels_at_one_thread(True)
n = dd._core._kernel_size_threshold() * 2
x = dd.constant(np.linspace(-1.0, 1.0, n))
w = dd.Variable(np.linspace(0.5, 1.5, n))
tape = GradientTape(persistent=True)
with tape:
    tape.watch(x)
    h = x * w
    y = dd.reduce_sum(h * h + dd.sin(h) * x + h * x)
    s = x[3] * x[4] + dd.sin(x[5])    # scalar entries: the C double path
expected = [g.numpy() for g in tape.gradient(y, [x, w])]
expected_s = tape.gradient(s, x).numpy()

def sweeper():
    for _ in range(60):
        gx, gw = tape.gradient(y, [x, w])
        assert np.array_equal(gx.numpy(), expected[0]) and np.array_equal(gw.numpy(), expected[1])
        assert np.array_equal(tape.gradient(s, x).numpy(), expected_s)

def other_tapes():
    for i in range(150):
        t = GradientTape(persistent=True)
        with t:
            t.watch(x)
            z = dd.reduce_sum(x * w * x)
        assert np.array_equal(t.gradient(z, x).numpy(), (2 * x * w).numpy())
        t.reset()
        del t

run_threads(sweeper, sweeper, sweeper, sweeper, other_tapes)
print("ok")
""")


def test_a_tape_reset_and_rerecorded_by_one_thread_while_another_sweeps_it():
    # thread B enters, resets and re-records the tape between thread A's sweeps (and during
    # them: A's check passed before B entered). A sweeps the record it started from, or finds
    # its target dropped (None), or is refused while B is inside the block.
    _run("""
tape = GradientTape(persistent=True)
x = dd.constant(np.linspace(0.1, 0.9, 200))
def f():
    return dd.reduce_sum(dd.exp(x) * x * x)
with tape:
    tape.watch(x)
    published = [f()]
expected = tape.gradient(published[0], x).numpy()
stop = threading.Event()
counts = {"exact": 0, "dropped": 0, "refused": 0}

def sweeper():
    for _ in range(2000):
        try:
            g = tape.gradient(published[-1], x)
        except AlreadyActiveError:
            counts["refused"] += 1
            continue
        if g is None:
            counts["dropped"] += 1
        else:
            assert np.array_equal(g.numpy(), expected), "a wrong gradient"
            counts["exact"] += 1
    stop.set()

def rerecorder():
    while not stop.is_set():
        with tape:      # only this thread ever enters the tape: never refused
            tape.reset()
            tape.watch(x)
            published.append(f())
        time.sleep(0.0005)

run_threads(sweeper, rerecorder)
assert counts["exact"] > 0, counts
print(counts)
print("ok")
""")


def test_two_threads_applying_gradients_to_the_same_variables_never_tear_a_value():
    # SGD steps of -0.5 (exact in float64) from two threads on shared Variables, large enough
    # for the parallel kernels, while a third thread reads them and differentiates through
    # them: every value seen is whole (all elements the same number of steps), and no step is
    # applied to a buffer another thread is still reading.
    _run("""
prev = dd._core._run_kernels_at_one_thread(True)
n = dd._core._kernel_size_threshold() * 2
vs = [dd.Variable(np.zeros(n)), dd.Variable(np.zeros(n))]
opt = dd.optimizers.SGD(learning_rate=0.5)
ones = dd.constant(np.ones(n))
steps = 150
stop = threading.Event()

def whole(a):
    assert np.all(a == a[0]), "a torn value"
    k = -a[0] / 0.5
    assert k == int(k) and 0 <= k <= 2 * steps, k

def stepper():
    for _ in range(steps):
        opt.apply_gradients([(ones, vs[0]), (ones, vs[1])])

def reader():
    while not stop.is_set():
        for v in vs:
            with GradientTape() as t:
                y = dd.reduce_sum(v * v)
            before = v.numpy()
            g = t.gradient(y, v).numpy()
            whole(before)
            whole(g / 2)

done = []

def stepper_then_signal():
    try:
        stepper()
    finally:
        done.append(1)
        if len(done) == 2:
            stop.set()

run_threads(stepper_then_signal, stepper_then_signal, reader)
for v in vs:
    whole(v.numpy())
print("ok")
""")
