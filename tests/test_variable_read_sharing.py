"""A scalar Variable's reads share (or refill) one snapshot (Variable._read_snapshot): every
read must still see exactly the value and tape slot a fresh snapshot would, and a snapshot a
record holds must never change when the Variable is assigned or read again."""
import math
import threading

import numpy as np
import pytest

import dualad as dd


def bits(t):
    return np.asarray(t.numpy()).tobytes()


@pytest.mark.parametrize("dtype", [dd.float32, dd.float64])
def test_assign_after_a_read_keeps_the_residual(dtype):
    x = dd.Variable(3.0, dtype=dtype)
    with dd.GradientTape() as tape:
        y = x * x                       # reads x twice: one shared snapshot
        x.assign(5.0)
    assert float(y) == 9.0
    assert float(tape.gradient(y, x)) == 6.0      # the residual is the read value, 3


@pytest.mark.parametrize("dtype", [dd.float32, dd.float64])
def test_reads_before_and_after_an_assign_in_one_tape(dtype):
    x = dd.Variable(3.0, dtype=dtype)
    c = dd.constant(7.0, dtype=dtype)
    with dd.GradientTape() as tape:
        a = x * x
        x.assign(2.0)
        b = x * c
        d = x * x
        total = a + b + d
    assert (float(a), float(b), float(d)) == (9.0, 14.0, 4.0)
    # one slot for x: d(a + b + d)/dx = 2*3 + 7 + 2*2
    assert float(tape.gradient(total, x)) == 17.0


def test_a_persistent_tapes_snapshot_survives_later_reads():
    x = dd.Variable(3.0, dtype=dd.float64)
    with dd.GradientTape(persistent=True) as first:
        y1 = x * x
    x.assign(4.0)
    with dd.GradientTape() as second:
        y2 = x * x
    x.assign(-1.0)
    with dd.GradientTape() as third:
        y3 = x * x
    assert float(third.gradient(y3, x)) == -2.0
    assert float(second.gradient(y2, x)) == 8.0
    assert float(first.gradient(y1, x)) == 6.0
    assert float(first.gradient(y1, x)) == 6.0


@pytest.mark.parametrize("dtype", [dd.float32, dd.float64])
def test_signed_zero_and_nan_are_told_apart(dtype):
    x = dd.Variable(0.0, dtype=dtype)
    one = dd.constant(1.0, dtype=dtype)
    with dd.GradientTape() as tape:
        pos = one / x
        x.assign(-0.0)                  # equal to 0.0 as a number, not as bits
        neg = one / x
    assert float(pos) == math.inf and float(neg) == -math.inf
    g = tape.gradient(neg, x)
    assert float(g) == -math.inf        # -1 / x**2 at -0.0
    x.assign(float("nan"))
    with dd.GradientTape() as tape:
        y = x + one
        x.assign(2.0)
        z = x + one
    assert math.isnan(float(y)) and float(z) == 3.0


def test_bits_match_a_fresh_variable_along_an_sgd_run():
    # the shared or refilled snapshot gives the same bits as a Variable read once per tape
    for dtype in (dd.float32, dd.float64):
        x = dd.Variable(0.0, dtype=dtype)
        a, b, c = dd.constant(1.0), dd.constant(-2.0), dd.constant(1.0)
        if dtype == dd.float64:
            a, b, c = (dd.cast(t, dd.float64) for t in (a, b, c))
        opt = dd.optimizers.SGD(learning_rate=0.01)
        ref = np.dtype(dtype.name if hasattr(dtype, "name") else dtype).type(0.0)
        for _ in range(200):
            with dd.GradientTape() as tape:
                y = a * dd.pow(x, 2) + b * x + c
            opt.apply_gradients([(tape.gradient(y, x), x)])
            fresh = dd.Variable(ref, dtype=dtype)
            with dd.GradientTape() as check:
                y_ref = a * dd.pow(fresh, 2) + b * dd.identity(fresh) + c
            g_ref = check.gradient(y_ref, fresh)
            ref = (fresh - dd.constant(0.01, dtype=dtype) * g_ref).numpy()
            assert bits(x) == np.asarray(ref).tobytes()


def test_an_exception_inside_the_tape_leaves_reads_correct():
    x = dd.Variable(2.0, dtype=dd.float32)
    with pytest.raises(ZeroDivisionError):
        with dd.GradientTape():
            _ = x * x
            1 / 0
    x.assign(3.0)
    with dd.GradientTape() as tape:
        y = x * x
    assert float(tape.gradient(y, x)) == 6.0


def test_nested_tapes_and_accumulators_read_fresh_snapshots():
    x = dd.Variable(2.0, dtype=dd.float64)
    with dd.GradientTape() as tape:
        _ = x * x                       # leaves a shared snapshot behind
    with dd.GradientTape() as outer:
        with dd.GradientTape() as inner:
            y = x * x * x
        dy = inner.gradient(y, x)
    assert float(dy) == 12.0
    assert float(outer.gradient(dy, x)) == 12.0     # 6x
    with dd.ForwardAccumulator(x, dd.constant(1.0, dtype=dd.float64)) as acc:
        y = x * x
        x.assign(5.0)
        z = x * x
    assert float(acc.jvp(y)) == 4.0 and float(acc.jvp(z)) == 10.0


def test_reads_on_other_threads():
    x = dd.Variable(1.5, dtype=dd.float64)
    results, errors = [], []
    barrier = threading.Barrier(4)

    def worker():
        try:
            barrier.wait()
            for _ in range(200):
                with dd.GradientTape() as tape:
                    y = x * x
                g = tape.gradient(y, x)
                results.append((float(y), float(g)))
        except BaseException as e:      # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == [(2.25, 3.0)] * 800


def test_a_trace_reads_the_current_value():
    x = dd.Variable(1.0, dtype=dd.float32)

    @dd.function
    def f():
        with dd.GradientTape() as tape:
            y = x * x
        return tape.gradient(y, x)

    with dd.GradientTape():
        _ = x * x                       # a snapshot to share, from outside the trace
    assert float(f()) == 2.0
    x.assign(4.0)
    assert float(f()) == 8.0


def test_watched_variables_across_release_and_reset():
    # the record's lists are made on first use and dropped at a release; a released tape
    # keeps the Variables it watched (the list itself when it held Variables only)
    x = dd.Variable(1.0, dtype=dd.float64)
    w = dd.Variable(2.0, dtype=dd.float64)
    c = dd.constant(3.0, dtype=dd.float64)
    tape = dd.GradientTape()
    assert tape.watched_variables() == () and tape._n_entries == 0
    with tape:
        y = x * w
    assert tape.watched_variables() == (x, w)
    tape.gradient(y, [x, w])
    assert tape.watched_variables() == (x, w) and type(tape.watched_variables()) is tuple
    assert tape._n_entries == 0
    with dd.GradientTape() as mixed:
        mixed.watch(c)
        y = c * x
    assert mixed.watched_variables() == (x,)
    assert [float(g) for g in mixed.gradient(y, [c, x])] == [1.0, 3.0]
    assert mixed.watched_variables() == (x,)
    with dd.GradientTape() as empty:
        y = c * c
    assert empty.gradient(y, x) is None and empty.watched_variables() == ()
    with dd.GradientTape(persistent=True) as kept:
        y = x * x
    assert float(kept.gradient(y, x)) == 2.0
    kept.reset()
    assert kept.watched_variables() == () and kept._n_entries == 0
    with kept:
        y = w * w
    assert kept.watched_variables() == (w,)
    assert float(kept.gradient(y, w)) == 4.0
