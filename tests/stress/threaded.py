"""Scenarios of several threads sharing Variables, compiled functions and an optimizer (run in
a child interpreter by test_threads.py). Each compares what the threads computed with a
single-threaded eager run of the same work."""
import sys
import threading
import time
import warnings

import numpy as np

import dualad as dd

from stress.budget import rounds

N_THREADS = 8


def _run_threads(work, n=N_THREADS, timeout=120):
    """Run work(k, barrier) in n threads; re-raise the first failure of any of them."""
    barrier = threading.Barrier(n)
    errors = []

    def target(k):
        try:
            work(k, barrier)
        except BaseException as e:  # noqa: BLE001 - reported below with the thread's number
            errors.append((k, e))
            barrier.abort()

    threads = [threading.Thread(target=target, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a thread is stuck"
    if errors:
        k, e = errors[0]
        raise AssertionError(f"thread {k}: {type(e).__name__}: {e}") from e


def _same(actual, expected, what):
    a, b = np.asarray(actual), np.asarray(expected)
    assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), \
        f"{what}: got {a!r}, eager gives {b!r}"


def _branchy(x, scale):
    """A function whose path depends on its input's values: two guards and a loop."""
    y = x * scale
    if dd.reduce_sum(y) > 0:
        y = dd.sin(y) * 2.0
    else:
        y = dd.cos(y) - 1.0
    for _ in dd.range(3):
        y = y * 0.5 + x
    if dd.reduce_max(y) > 0.5:
        y = y - dd.tanh(y)
    return y


def _inputs():
    """Inputs of several signatures (shapes, dtypes) whose values take different branches."""
    out = []
    for dtype in (np.float32, np.float64):
        for values in ([0.7], [-0.9], [0.2, -1.3, 0.4], [-0.2, -1.3, -0.4], [1.5, 1.5, 1.5]):
            arr = np.array(values, dtype=dtype)
            out.append(dd.constant(arr[0] if len(values) == 1 else arr))
    return out


def scenario_first_calls(n_rounds, forbid_fallback):
    """Fresh compiled functions first called from 8 threads at once (tracing races), on inputs
    taking new branches concurrently, while each thread also differentiates with its own tapes;
    every result equals the eager one bit for bit. With forbid_fallback, a race must also not
    make the function run eagerly for good (FunctionFallbackWarning)."""
    sys.setswitchinterval(1e-5)  # switch threads often: more interleavings per run
    # the function is deterministic: a race must not make it give up compiling
    warnings.simplefilter("error" if forbid_fallback else "ignore", dd.FunctionFallbackWarning)
    inputs = _inputs()
    scale = dd.Variable(1.25, dtype=np.float64)
    scale32 = dd.Variable(1.25, dtype=np.float32)
    scales = {"float32": scale32, "float64": scale}
    expected = [_branchy(x, scales[x.dtype.name]) for x in inputs]
    expected_grads = []
    for x in inputs:
        with dd.GradientTape() as tape:
            tape.watch(x)
            y = dd.reduce_sum(_branchy(x, scales[x.dtype.name]))
        expected_grads.append(tape.gradient(y, x))
    for r in rounds(n_rounds):
        compiled = dd.function(_branchy)

        def work(k, barrier):
            order = list(range(len(inputs)))
            order = order[k % len(order):] + order[:k % len(order)]  # each thread starts elsewhere
            barrier.wait(30)
            for repeat in range(3):
                for i in order:
                    x = inputs[i]
                    s = scales[x.dtype.name]
                    _same(compiled(x, s), expected[i], f"round {r} input {i}")
                    if (i + k + repeat) % 4 == 0:
                        with dd.GradientTape() as tape:  # this thread's own tape
                            tape.watch(x)
                            y = dd.reduce_sum(compiled(x, s))  # runs eagerly, recorded
                        _same(tape.gradient(y, x), expected_grads[i], f"gradient, input {i}")
                    assert dd._core.active_transformations() == ()

        _run_threads(work)
        assert compiled.trace_count >= 1
    print("ok")


def scenario_shared_variables(n_rounds):
    """8 threads assign, assign_add and assign_sub one array Variable and one scalar Variable,
    eagerly and through a shared compiled function, while reading them: every read is a whole
    value (one fill everywhere, the right shape and dtype); increments may be lost, never
    invented."""
    sys.setswitchinterval(1e-5)
    n = 512
    array_var = dd.Variable(np.zeros(n, dtype=np.float32), name="shared_array")
    count_var = dd.Variable(0.0, dtype=np.float64, name="shared_count")

    @dd.function
    def bump(v, c):
        v.assign_add(dd.ones_like(v))
        v.assign_sub(dd.ones_like(v) * 0.5)  # net +0.5 per call, in two staged writes
        c.assign_add(1.0)
        return dd.reduce_sum(v)

    for r in rounds(n_rounds):
        array_var.assign(np.zeros(n, dtype=np.float32))
        count_var.assign(0.0)
        calls = 200

        def work(k, barrier):
            barrier.wait(30)
            for i in range(calls):
                if k % 4 == 0:
                    array_var.assign(np.full(n, float(i), dtype=np.float32))
                elif k % 4 == 1:
                    array_var.assign_add(np.ones(n, dtype=np.float32))
                    count_var.assign_add(1.0)
                elif k % 4 == 2:
                    total = bump(array_var, count_var)
                    assert total.shape == () and total.dtype == dd.float32
                else:
                    value = np.asarray(array_var)
                    assert value.shape == (n,) and value.dtype == np.float32, \
                        f"read a value of shape {value.shape} and dtype {value.dtype}"
                    assert np.all(value == value[0]), f"a torn value: {np.unique(value)[:8]}"
                    count = float(np.asarray(count_var))
                    assert count == int(count) and 0 <= count <= 4 * calls, count

        _run_threads(work)
        final = np.asarray(array_var)
        assert final.shape == (n,) and np.all(final == final[0]), f"torn: {np.unique(final)[:8]}"
        count = float(np.asarray(count_var))
        # threads 1 and 5 add one each per call, threads 2 and 6 through bump
        assert 0 < count <= 4 * calls and count == int(count), count
    print("ok")


def _loss(w, x, t):
    return dd.reduce_sum(dd.square(dd.tanh(w * x) - t))


def _data(k):
    rng = np.random.default_rng(k)
    return (rng.uniform(-1, 1, 4), dd.constant(rng.uniform(-1, 1, 4)),
            dd.constant(rng.uniform(-0.5, 0.5, 4)))


def _train_eagerly(opt, w, x, t, steps):
    for _ in range(steps):
        with dd.GradientTape() as tape:
            loss = _loss(w, x, t)
        opt.apply_gradients([(tape.gradient(loss, w), w)])


def scenario_optimizer_threads(n_rounds, steps):
    """One model of 8 Variables, one SGD optimizer with momentum: each thread trains its own
    Variable, eagerly (its own tapes) or with a compiled step shared by all threads (traced
    concurrently, once per Variable). SGD's update of a variable depends only on that
    variable's gradient and slot, so each must end bit for bit where a single-threaded run of
    its steps ends."""
    sys.setswitchinterval(1e-5)
    for r in rounds(n_rounds):
        data = [_data(k) for k in range(N_THREADS)]
        reference = []
        for k, (w0, x, t) in enumerate(data):
            w = dd.Variable(w0)
            _train_eagerly(dd.optimizers.SGD(0.1, momentum=0.9), w, x, t, steps)
            reference.append(np.asarray(w).copy())

        weights = [dd.Variable(w0, name=f"w{k}") for k, (w0, _, _) in enumerate(data)]
        opt = dd.optimizers.SGD(0.1, momentum=0.9)

        @dd.function
        def compiled_step(w, x, t):
            with dd.GradientTape() as tape:
                loss = _loss(w, x, t)
            opt.apply_gradients([(tape.gradient(loss, w), w)])
            return loss

        def work(k, barrier):
            _, x, t = data[k]
            barrier.wait(30)
            if k % 2:
                for _ in range(steps):
                    compiled_step(weights[k], x, t)
            else:
                _train_eagerly(opt, weights[k], x, t, steps)
            assert dd._core.active_transformations() == ()

        _run_threads(work)
        for k in range(N_THREADS):
            _same(weights[k], reference[k], f"round {r}: variable {k} after {steps} steps")
        assert int(opt.iterations) <= N_THREADS * steps
    print("ok")


def scenario_dead_threads_leave_no_tape(n_threads):
    """A thread that ends with a tape and an accumulator still entered leaves them behind:
    threads started later (which often get the dead thread's OS thread id) start with no
    active tape, and their operations are recorded nowhere."""
    reused = 0
    for i in range(n_threads):
        seen = {}

        def leave_active():
            seen["ident"] = threading.get_ident()
            x = dd.Variable(2.0)
            tape = dd.GradientTape()
            tape.__enter__()  # never left
            acc = dd.ForwardAccumulator(x, dd.constant(1.0))
            acc.__enter__()
            seen["tape"], seen["acc"] = tape, acc

        def fresh_thread():
            seen["fresh_ident"] = threading.get_ident()
            seen["active"] = dd._core.active_transformations()
            v = dd.Variable(3.0)
            seen["v"], seen["y"] = v, v * v

        first = threading.Thread(target=leave_active)
        first.start()
        first.join()
        time.sleep(0.01)  # let the OS thread end: the next one then usually gets its id
        second = threading.Thread(target=fresh_thread)
        second.start()
        second.join()
        reused += seen["ident"] == seen["fresh_ident"]
        assert seen["active"] == (), f"a new thread starts with {seen['active']} active"
        assert seen["acc"].jvp(seen["y"]) is None, "a dead thread's accumulator saw the op"
        assert seen["tape"].gradient(seen["y"], seen["v"]) is None, \
            "a dead thread's tape recorded the new thread's op"
    print(f"ok: {reused} of {n_threads} new threads reused a dead thread's id")
