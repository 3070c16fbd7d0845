"""StepGuard's lock (dualad._core.StepGuard), kept in C: re-entrant on its holder's thread,
exclusive across threads, and its wait interruptible by a signal handler that raises (the
lock is then not taken)."""
import signal
import sys
import threading
import time

import pytest

import dualad as dd
from dualad import _core


def test_reentrant_on_the_holding_thread():
    guard = _core.StepGuard("re-entered")
    order = []

    def inner():
        order.append("inner")
        return guard.locked(lambda: order.append("innermost") or 7)

    assert guard.locked(inner) == 7
    assert guard.step(lambda a, b: guard.locked(lambda: a + b), 2, 3) == 5
    with pytest.raises(RuntimeError, match="re-entered"):
        guard.step(lambda a, b: guard.step(lambda *_: None, a, b), 1, 2)
    assert not guard.busy
    assert order == ["inner", "innermost"]
    assert guard.locked(lambda: "free again") == "free again"


def test_a_get_state_inside_a_schedule_does_not_deadlock():
    x = dd.Variable(1.0, dtype=dd.float32)
    opt = dd.optimizers.SGD(learning_rate=0.1)
    seen = []

    def schedule(step):
        seen.append(opt.get_state() is not None)   # takes the lock the step holds
        return 0.1

    opt.learning_rate = schedule
    opt.apply_gradients([(dd.constant(1.0), x)])
    assert seen == [True] and float(x) == pytest.approx(0.9)


def test_exclusive_across_threads():
    guard = _core.StepGuard("re-entered")
    held, release, done = threading.Event(), threading.Event(), []

    def holder():
        guard.locked(lambda: (held.set(), release.wait(10)))

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(10)
    waiter = threading.Thread(target=lambda: done.append(guard.locked(lambda: "got it")))
    waiter.start()
    time.sleep(0.05)
    assert done == []                   # waits while the other thread holds the lock
    release.set()
    t.join(10)
    waiter.join(10)
    assert done == ["got it"]


def test_threads_stepping_one_optimizer_on_scalars_lose_no_step():
    x = dd.Variable(0.0, dtype=dd.float64)
    opt = dd.optimizers.SGD(learning_rate=1.0)
    one = dd.constant(-1.0, dtype=dd.float64)

    def worker():
        for _ in range(500):
            opt.apply_gradients([(one, x)])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert float(x) == 2000.0 and opt.iterations == 2000


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_a_raising_signal_handler_interrupts_the_wait():
    guard = _core.StepGuard("re-entered")
    held, release = threading.Event(), threading.Event()

    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted

    def holder():
        guard.locked(lambda: (held.set(), release.wait(10)))

    main = threading.get_ident()
    previous = signal.signal(signal.SIGUSR1, handler)
    t = threading.Thread(target=holder)
    try:
        t.start()
        assert held.wait(10)
        threading.Timer(0.1, lambda: signal.pthread_kill(main, signal.SIGUSR1)).start()
        with pytest.raises(Interrupted):
            guard.locked(lambda: pytest.fail("the lock was taken while held elsewhere"))
    finally:
        release.set()
        t.join(10)
        signal.signal(signal.SIGUSR1, previous)
    assert guard.locked(lambda: "usable") == "usable"   # not left held
