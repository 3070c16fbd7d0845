"""The backward sweep's C buffers (one scratch block reused from sweep to sweep, a fresh one
for a sweep that starts while it is lent out), the sums it makes in its own buffers, and the
release of a non-persistent tape's record."""
import threading
import warnings

import numpy as np
import pytest

import dualad as dd
from helpers import EXACT, npy, t64


def test_in_place_sums_overflow_to_inf_without_a_warning():
    # float16 cotangents 30000 + 30000 (a fresh sum) + 30000 (into the sweep's own buffer)
    # overflow: the sum is inf, as when run_op makes it, not a RuntimeWarning raised as an error
    x = dd.constant(np.array([1.0, -1.0], dtype=np.float16))
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.reduce_sum(x * 30000.0 + x * 30000.0 + x * 30000.0)
    before = dd._core._sums_in_place()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = tape.gradient(y, x)
    assert dd._core._sums_in_place() > before   # the in-place sum happened
    np.testing.assert_array_equal(npy(g), np.array([np.inf, np.inf], dtype=np.float16))


def _nested_tape_square(depth):
    """f(x) = x², whose custom gradient runs a whole tape + sweep of its own inside the outer
    sweep (`depth` levels deep): each inner sweep must get buffers of its own."""
    @dd.custom_gradient
    def f(x):
        def grad(upstream):
            with dd.GradientTape() as inner:
                inner.watch(x)
                z = inner_fn(x) if depth > 1 else x * x
            return upstream * inner.gradient(z, x)
        return x * x, grad
    inner_fn = _nested_tape_square(depth - 1) if depth > 1 else None
    return f


@pytest.mark.parametrize("depth", [1, 3])
def test_a_sweep_inside_a_sweep_gets_its_own_buffers(depth):
    f = _nested_tape_square(depth)
    x = t64(1.5)
    w = t64(0.25)
    with dd.GradientTape() as tape:
        tape.watch([x, w])
        # entries on both sides of the custom gradient, scalar ones on C doubles: the outer
        # sweep's doubles must survive the inner sweeps
        y = dd.sin(w * x) + f(x) * w + x * x * x
    gx, gw = tape.gradient(y, [x, w])
    xv, wv = 1.5, 0.25
    np.testing.assert_allclose(npy(gx), wv * np.cos(wv * xv) + 2 * xv * wv + 3 * xv ** 2, **EXACT)
    np.testing.assert_allclose(npy(gw), xv * np.cos(wv * xv) + xv ** 2, **EXACT)


def test_a_large_sweep_then_small_ones():
    # a record past the size of the kept scratch block takes its own buffers; the next small
    # sweep still starts from zeroed ones
    x = t64(0.5)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = x
        for _ in range(150_000):
            y = y + x
    assert npy(tape.gradient(y, x)) == 150_001.0
    for k in range(1, 4):
        with dd.GradientTape() as tape:
            tape.watch(x)
            y = x * float(k)
        assert npy(tape.gradient(y, x)) == float(k)


def test_sweeps_in_threads_while_another_sweep_runs_python():
    # a custom gradient that waits for other threads' sweeps: those run while the first holds
    # the scratch block (each must get its own) and must give their own results
    other_done = threading.Event()
    results, errors = {}, []

    @dd.custom_gradient
    def wait_for_others(x):
        def grad(upstream):
            assert other_done.wait(30)
            return upstream * 3.0
        return x * 3.0, grad

    def other(k):
        try:
            for _ in range(50):
                x = t64(float(k))
                with dd.GradientTape() as tape:
                    tape.watch(x)
                    y = x * x * x + x
                results.setdefault(k, set()).add(float(npy(tape.gradient(y, x))))
        except Exception as e:   # reported below: a thread's exception would be lost
            errors.append(e)

    x = t64(2.0)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = wait_for_others(x) * x + x * x

    def starter():
        threads = [threading.Thread(target=other, args=(k,)) for k in (1, 2, 3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        other_done.set()

    runner = threading.Thread(target=starter)
    runner.start()
    g = tape.gradient(y, x)
    runner.join()
    assert not errors
    assert results == {k: {3.0 * k * k + 1.0} for k in (1, 2, 3)}
    assert npy(g) == 3.0 * 2.0 + 6.0 + 4.0   # d/dx (f(x) * x + x²) at 2: f = 3x, its rule 3


def test_watched_variables_after_release_keep_the_order_of_watching():
    v1 = dd.Variable(1.0)
    v2 = dd.Variable(2.0)
    c = dd.constant(3.0)
    for watched, expected in (([c], ()), ([v2, v1], (v2, v1)), ([v1, c, v2], (v1, v2))):
        # only the explicit watches: the case of no Variable, only Variables, and a mix
        with dd.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(watched)
            y = v1 * v2 * c
        before = tape.watched_variables()
        tape.gradient(y, c)
        after = tape.watched_variables()
        assert len(after) == len(before) == len(expected)
        assert all(a is b for a, b in zip(after, expected))
        assert all(a is b for a, b in zip(before, expected))


def test_variables_read_by_ops_of_one_two_and_three_inputs():
    # one input (neg), two (multiply), three (add_n): each Variable input is read as a snapshot
    # and watched; a later assign does not change the recorded values
    v = dd.Variable(2.0)
    w = dd.Variable(5.0)
    with dd.GradientTape() as tape:
        y = -v + v * w + dd.add_n([v, w, v])
        v.assign(100.0)
        w.assign(100.0)
    gv, gw = tape.gradient(y, [v, w])
    assert npy(gv) == -1.0 + 5.0 + 2.0
    assert npy(gw) == 2.0 + 1.0
    assert npy(y) == -2.0 + 10.0 + 9.0
