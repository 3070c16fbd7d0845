"""Tensors computed in a multiprocessing pool worker under the worker's own accumulator or
tape, sent back to the parent (run in a child interpreter by test_pickling.py: a stale tape
slot that comes back with a tensor can make the parent's sweep write out of bounds).

Transformation ids count up from the same start in every process, so the worker makes its
accumulator or tape take the id the parent's next one will get: a tensor that kept the
worker's tangent or tape slot would then be taken for one of the parent's."""
import multiprocessing

import numpy as np

import dualad as dd

TANGENT = 100.0


def _with_id(make, target_id):
    """make() until the object's id reaches target_id (ids only grow; bounded search)."""
    for _ in range(10_000):
        obj = make()
        if obj.id >= target_id:
            return obj
    return obj


def worker_tangent(target_id):
    x = dd.constant(3.0)
    acc = _with_id(lambda: dd.ForwardAccumulator(x, dd.constant(TANGENT)), target_id)
    with acc:
        y = x * 2.0
    assert float(acc.jvp(y)) == 2 * TANGENT
    return y


def worker_taped(target_id, n_ops):
    """y recorded at slot ~n_ops of a tape whose id is the parent's next tape id."""
    x = dd.Variable(np.float64(1.5))
    tape = _with_id(lambda: dd.GradientTape(persistent=True), target_id)
    with tape:
        y = x
        for _ in range(n_ops):
            y = y * 1.0
        y = y * 4.0  # 6.0
    grads = tape.gradient(y, x)
    assert float(grads) == 4.0
    return y, grads


def _next_id():
    """The id the next tape or accumulator created in this process will get."""
    probe = dd.ForwardAccumulator(dd.constant(0.0), dd.constant(0.0))
    return probe.id + 1


def scenario_worker_results_in_parent_transformations(start_method):
    ctx = multiprocessing.get_context(start_method)
    with ctx.Pool(1) as pool:
        target = _next_id()
        y = pool.apply(worker_tangent, (target,))
        x = dd.constant(3.0)
        with dd.ForwardAccumulator(x, dd.constant(1.0)) as acc:
            q = y * x
        # d(y * x) = y * dx: the parent's own tangent only (606 if y kept the worker's 200)
        assert float(acc.jvp(q)) == 6.0, f"jvp {float(acc.jvp(q))}, expected 6"
        assert np.asarray(q).flags.writeable is False

        for n_ops in (3, 5000):
            target = _next_id()
            y, g = pool.apply(worker_taped, (target, n_ops))
            assert float(y) == 6.0 and float(g) == 4.0 and y.dtype == dd.float64
            w = dd.Variable(np.float64(3.0))
            with dd.GradientTape(persistent=True) as tape:
                z = y * w + g
            assert float(tape.gradient(z, w)) == 6.0
            assert tape.gradient(z, y) is None, "the worker's tensor was taken as recorded here"
            with dd.GradientTape() as tape:
                tape.watch(y)
                z = y * w
            assert float(tape.gradient(z, y)) == 3.0
    print("ok")
