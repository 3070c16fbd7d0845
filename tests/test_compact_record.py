"""The compact record (dualad/_record.pxi): a tape keeps its entries of scalar ops as C structs
beside its list of Entry objects, each struct noting how many Entry objects came before it.

The record must read as one sequence in the order of recording, whatever the mix; the sweep
must visit it in reverse order; and it must stay sound when it changes under a running sweep
(entries added by the sweep itself, the tape reset by a custom gradient), across threads, and
it must hold its tensors exactly as long as the tape does. Each scenario is compared with the
general path (_core._set_scalar_op_path(False)), which records Entry objects only."""
import gc
import sys
import threading
import warnings

import numpy as np
import pytest

import dualad as dd
from dualad import _core
from isolated import assert_runs_cleanly

DTYPES = [np.float32, np.float64]


def bits(t):
    return None if t is None else (str(t.dtype), np.asarray(t.numpy()).tobytes())


def record_of(tape, names):
    # the entries by primitive, argument names and slots: tensors named by first sight
    def name(t):
        return names.setdefault(id(t), len(names)) if isinstance(t, dd.Tensor) else repr(t)
    return [(p.name, tuple(name(a) for a in args), name(out), s0, s1, out_slot, more)
            for p, args, params, out, s0, s1, out_slot, more in _core._recorded_entries(tape)]


def on_both_paths(scenario):
    runs = []
    for enabled in (True, False):
        previous = _core._set_scalar_op_path(enabled)
        try:
            keep = []       # (tensors kept alive: their ids name them)
            runs.append(scenario(keep))
        finally:
            _core._set_scalar_op_path(previous)
    assert runs[0] == runs[1]
    return runs[0]


def mixed(x, v):
    # scalar ops (structs) and array ops (Entry objects) interleaved, scalars feeding arrays
    # and back
    y = dd.sin(x) * x               # 2 structs
    z = v * y                       # Entry: array times scalar
    s = dd.reduce_sum(z)            # Entry
    w = s * x + dd.exp(y)           # 4 structs after 2 entries
    u = dd.tanh(v * w)              # 2 entries
    return dd.reduce_sum(u) + w * w


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_mixed_record_reads_in_order_and_gives_the_general_paths_gradient(dtype):
    def scenario(keep):
        names = {}
        x = dd.constant(np.asarray(0.3, dtype))
        v = dd.constant(np.asarray([0.5, -1.25, 2.0], dtype))
        with dd.GradientTape(persistent=True) as tape:
            tape.watch([x, v])
            out = mixed(x, v)
        keep += [x, v, out]
        record = record_of(tape, names)
        slots = [entry[5] for entry in record]
        assert slots == sorted(slots) and len(set(slots)) == len(slots)  # recording order
        gx, gv = tape.gradient(out, [x, v])
        return record, tape._n_entries, bits(out), bits(gx), bits(gv)
    record, n, *_ = on_both_paths(scenario)
    assert n == len(record) == 12
    assert [e[0] for e in record[:4]] == ["sin", "multiply", "multiply", "reduce_sum"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_second_derivatives_through_a_mixed_record(dtype):
    # the inner sweep is recorded by the outer tape: structs become Entry objects for it
    def scenario(keep):
        x = dd.constant(np.asarray(0.7, dtype))
        v = dd.constant(np.asarray([1.5, -0.5], dtype))
        with dd.GradientTape() as outer:
            outer.watch(x)
            with dd.GradientTape() as inner:
                inner.watch(x)
                out = mixed(x, v)
            g = inner.gradient(out, x)
        keep += [x, v, out, g]
        return bits(g), bits(outer.gradient(g, x))
    on_both_paths(scenario)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_sweep_that_grows_its_own_record(dtype):
    # a persistent tape asked for a gradient inside its block records the sweep's ops into
    # the record being swept: 16 structs fill the first array, so the sweep's own entries move
    # it while the sweep reads it
    def scenario(keep):
        x = dd.constant(np.asarray(0.4, dtype))
        with dd.GradientTape(persistent=True) as tape:
            tape.watch(x)
            h = x
            for k in range(16):
                h = dd.sin(h) if k % 2 else h * x
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                g = tape.gradient(h, x)
                n_after_first = tape._n_entries
                g2 = tape.gradient(g, x)
        keep += [x, h, g, g2]
        return bits(g), bits(g2), n_after_first, tape._n_entries
    _, _, n_after_first, n_after_second = on_both_paths(scenario)
    assert 16 < n_after_first < n_after_second


def test_a_custom_gradient_that_resets_the_tape_being_swept():
    # the sweep holds the record it started with: the reset drops the tape's, not the sweep's
    def scenario(keep):
        x = dd.constant(0.5, dtype=dd.float64)
        holder = {}

        @dd.custom_gradient
        def resetting(u):
            def grad(dy):
                holder["tape"].reset()
                return dy * 3.0
            return u * 1.0, grad

        with dd.GradientTape(persistent=True) as tape:
            holder["tape"] = tape
            tape.watch(x)
            h = x
            for _ in range(40):
                h = dd.sin(h) * x
            out = resetting(h) * x
        g = tape.gradient(out, x)
        keep += [x, out, g]
        return bits(g), tape._n_entries
    g, n = on_both_paths(scenario)
    assert g is not None and n == 0


@pytest.mark.parametrize("n_ops", [3, 5000])
def test_the_record_holds_its_tensors_exactly_as_long_as_the_tape(n_ops):
    x = dd.constant(0.25, dtype=dd.float64)
    c = dd.constant(1.5, dtype=dd.float64)
    gc.collect()
    base_x, base_c = sys.getrefcount(x), sys.getrefcount(c)
    outs = []
    for persistent in (False, True):
        with dd.GradientTape(persistent=persistent) as tape:
            tape.watch(x)
            h = x
            for _ in range(n_ops):
                h = dd.sin(h) * c + x
            assert sys.getrefcount(x) > base_x and sys.getrefcount(c) > base_c
        outs.append(tape.gradient(h, x))
        del tape, h
    assert sys.getrefcount(x) == base_x and sys.getrefcount(c) == base_c
    assert bits(outs[0]) == bits(outs[1])


def test_threads_each_recording_their_own_scalar_tapes():
    # the spare array freed records hand on is one per process: threads recording, sweeping and
    # dropping tapes at once must each get their own gradients
    def expected(x0):
        x = dd.constant(x0, dtype=dd.float64)
        with dd.GradientTape() as tape:
            tape.watch(x)
            h = x
            for _ in range(30):
                h = dd.sin(h) * x + x
        return bits(tape.gradient(h, x))
    starts = [0.1 * k for k in range(1, 9)]
    want = [expected(x0) for x0 in starts]
    got = [[] for _ in starts]

    def work(k):
        for _ in range(200):
            got[k].append(expected(starts[k]))
    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(starts))]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(switch)
    for k in range(len(starts)):
        assert got[k] == [want[k]] * 200


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_batched_jacobian_through_scalar_entries(dtype):
    def scenario(keep):
        x = dd.constant(np.asarray(0.6, dtype))
        with dd.GradientTape(persistent=True) as tape:
            tape.watch(x)
            ys = dd.stack([dd.sin(x) * x, dd.exp(x) + x, x * x * x])
        keep += [x, ys]
        return bits(tape.jacobian(ys, x)), bits(tape.jacobian(ys, x, experimental_use_pfor=False))
    on_both_paths(scenario)


def test_check_numerics_turned_on_after_recording_names_the_primitive():
    x = dd.constant(0.0, dtype=dd.float64)
    messages = []
    for enabled in (True, False):
        previous = _core._set_scalar_op_path(enabled)
        try:
            with dd.GradientTape() as tape:
                tape.watch(x)
                y = dd.sqrt(x) * 2.0
            dd.debugging.enable_check_numerics()
            try:
                with pytest.raises(FloatingPointError) as info:
                    tape.gradient(y, x)
            finally:
                dd.debugging.disable_check_numerics()
            messages.append(str(info.value))
        finally:
            _core._set_scalar_op_path(previous)
    assert messages[0] == messages[1] and "sqrt" in messages[0]


def test_the_record_is_internal():
    with pytest.raises(TypeError):
        _core.ScalarRecord()


def test_a_collection_that_records_while_the_record_is_read_or_extended():
    # every allocation of a collected object starts a collection whose callback records 20
    # scalar ops on the active tape: the struct array moves while it is appended to and swept,
    # by a sweep that the tape itself records
    assert_runs_cleanly("""
        import gc, warnings
        import dualad as dd
        from dualad import _core

        def run(noisy):
            x = dd.constant(0.3, dtype=dd.float64)
            with dd.GradientTape(persistent=True) as tape:
                tape.watch(x)
                h = x
                for _ in range(15):
                    h = dd.sin(h) * x
                busy = []

                def record_more(phase, info):
                    if noisy and phase == "start" and not busy:
                        busy.append(1)
                        u = x
                        for _ in range(20):
                            u = dd.cos(u) * x
                        busy.pop()

                gc.callbacks.append(record_more)
                gc.set_threshold(1)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        g = tape.gradient(h, x)
                    slots = [e[6] for e in _core._recorded_entries(tape)]
                finally:
                    gc.set_threshold(700)
                    gc.callbacks.remove(record_more)
            assert slots == sorted(slots), slots
            return g.numpy(), len(slots)

        quiet, noisy = run(False), run(True)
        assert quiet[0] == noisy[0] and noisy[1] > quiet[1] + 100, (quiet, noisy)
        print("ok")
    """)
