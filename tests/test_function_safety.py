"""dualad.function under threads, re-entrant calls, hostile callers and custom gradients.

The races are made deterministic with a primitive whose implementation blocks one chosen
thread on an Event, so the other thread runs at exactly the point where the race used to
corrupt memory. Tests that used to crash the interpreter run in a subprocess (isolated.py).
"""
import gc
import pickle
import threading
import warnings
import weakref

import numpy as np
import pytest

import dualad as dd
from dualad import FunctionFallbackWarning, _core, _trace
from dualad.function import FunctionRetracingWarning
from isolated import assert_runs_cleanly


# A subprocess preamble: `pause(x)` is an identity primitive that blocks the threads listed in
# `blocked` (setting `paused`) until `resume` is set, to interleave a replay with other work.
PAUSABLE = """
        import threading
        import numpy as np
        import dualad as dd
        from dualad import extend

        resume, paused = threading.Event(), threading.Event()
        blocked = set()

        def pause_impl(x):
            if threading.get_ident() in blocked:
                paused.set()
                assert resume.wait(30)
            return x

        pause = extend.primitive("{name}", pause_impl, vjp=[lambda g, ans, args, params: g])
"""

# ---- 1. a replay racing a trace that grows the program tree -------------------------------


def test_a_replay_follows_a_longer_branch_traced_meanwhile_by_another_thread():
    # The worker's replay starts while the tree holds only the short branch, blocks in
    # `pause`, and resumes after the main thread has traced a branch with thousands of slots
    # more: its slot buffer must grow before it runs that branch.
    assert_runs_cleanly(PAUSABLE.format(name="pause_for_long_branch") + """

        @dd.function
        def f(x):
            y = pause(x)
            if dd.reduce_sum(y) > 0:
                return y * 2.0
            for _ in range(3000):          # unrolled: one slot per op
                y = y * 1.0001 + 0.5
            return y

        def eager(x):
            if x.sum() > 0:
                return x * np.float32(2)
            for _ in range(3000):
                x = x * np.float32(1.0001) + np.float32(0.5)
            return x

        f(dd.constant([1.0, 2.0]))                 # traces the short branch
        out = {}

        def worker():
            blocked.add(threading.get_ident())
            out["worker"] = f(dd.constant([-1.0, -2.0]))

        t = threading.Thread(target=worker)
        t.start()
        assert paused.wait(30)
        out["main"] = f(dd.constant([-3.0, -4.0]))  # traces the long branch meanwhile
        resume.set()
        t.join(60)
        assert not t.is_alive()
        assert f.trace_count == 2, f.trace_count
        np.testing.assert_allclose(np.asarray(out["worker"]),
                                   eager(np.array([-1.0, -2.0], np.float32)), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(out["main"]),
                                   eager(np.array([-3.0, -4.0], np.float32)), rtol=1e-5)
        """)


def test_two_threads_tracing_the_same_new_path_at_once_keep_the_function_compiled():
    both_tracing = threading.Barrier(2, timeout=30)
    calls = []

    @dd.function
    def f(x):
        if dd.reduce_sum(x) > 0:
            return x + 1.0
        calls.append(1)
        both_tracing.wait()   # only while tracing: both threads are inside the trace at once
        return x - 1.0

    f(dd.constant([1.0]))
    results, errors = [], []

    def call():
        try:
            results.append(float(f(dd.constant([-1.0]))[0]))
        except BaseException as e:   # reported below: an exception in a thread is silent
            errors.append(e)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=call) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors, errors
    assert results == [-2.0, -2.0]
    assert not [w for w in caught if issubclass(w.category, FunctionFallbackWarning)], \
        [str(w.message) for w in caught]
    assert f.trace_count == 3 and len(calls) == 2
    assert float(f(dd.constant([-5.0]))[0]) == -6.0   # replayed, not traced nor eager
    assert f.trace_count == 3 and len(calls) == 2


# ---- 2. Variable assignments staged by concurrent or nested replays -----------------------


def test_two_compiled_functions_assigning_one_variable_from_two_threads():
    # f stages an assignment to v, then blocks; g (on the main thread) assigns v with a
    # program of many more slots and commits. f's commit must use its own staged value.
    assert_runs_cleanly(PAUSABLE.format(name="pause_for_staging") + """
        v = dd.Variable([0.0, 0.0])

        @dd.function
        def f(x):
            v.assign(x)
            return pause(x) + v

        @dd.function
        def g(x):
            for _ in range(200):
                x = x + 1.0
            v.assign(x)
            return v.read_value() * 1.0

        f(dd.constant([1.0, 2.0]))
        g(dd.constant([0.0, 0.0]))
        out = {}

        def worker():
            blocked.add(threading.get_ident())
            out["f"] = f(dd.constant([5.0, 6.0]))

        t = threading.Thread(target=worker)
        t.start()
        assert paused.wait(30)
        out["g"] = g(dd.constant([0.0, 0.0]))
        resume.set()
        t.join(60)
        assert not t.is_alive()
        assert np.asarray(out["f"]).tolist() == [10.0, 12.0], out["f"]
        assert np.asarray(out["g"]).tolist() == [200.0, 200.0], out["g"]
        # f committed last: its value, with the Variable's own shape and dtype
        assert v.shape == (2,) and v.dtype == dd.float32, (v.shape, v.dtype)
        assert np.asarray(v).tolist() == [5.0, 6.0], v
        """)


def test_a_replay_nested_in_an_op_of_another_replay_assigning_the_same_variable():
    assert_runs_cleanly("""
        import numpy as np
        import dualad as dd
        from dualad import extend

        v = dd.Variable([0.0, 0.0, 0.0])
        nested = []

        @dd.function
        def g(x):
            for _ in range(100):
                x = x + 1.0
            v.assign(x)
            return x

        def reenter_impl(x):
            if nested:
                g(dd.constant(x))   # a compiled call from inside f's replay
            return x

        reenter = extend.primitive("reenter_assigning", reenter_impl,
                                   vjp=[lambda g_, ans, args, params: g_])

        @dd.function
        def f(x):
            v.assign(x * 2.0)
            y = reenter(x)
            v.assign_add(y)
            return v.read_value() + 0.0

        g(dd.constant([0.0, 0.0, 0.0]))
        f(dd.constant([1.0, 1.0, 1.0]))
        nested.append(True)
        out = f(dd.constant([1.0, 2.0, 3.0]))
        assert np.asarray(out).tolist() == [3.0, 6.0, 9.0], out
        # g committed [101, 102, 103] inside f's replay; f committed its own value last
        assert v.shape == (3,) and v.dtype == dd.float32
        assert np.asarray(v).tolist() == [3.0, 6.0, 9.0], v
        """)


def test_threads_hammering_one_variable_leave_a_value_some_replay_computed():
    # no blocking here: the GIL switches wherever it likes inside the numpy ops
    assert_runs_cleanly("""
        import sys
        import threading
        import numpy as np
        import dualad as dd

        sys.setswitchinterval(1e-6)   # switch threads as often as possible
        v = dd.Variable(np.zeros((4, 4)))
        fns = []
        for k in range(3):
            # programs of different lengths, so that their slots differ
            @dd.function
            def step(x, k=float(k), n=10 + 15 * k):
                v.assign(x * 0.0 + k)
                y = dd.matmul(x, x)
                for _ in range(n):
                    y = dd.tanh(dd.matmul(y, x))
                return y
            fns.append(step)
        x = dd.constant(np.eye(4) * 0.5)
        errors = []

        def run(fn):
            try:
                for _ in range(300):
                    fn(x)
                    value = np.asarray(v)
                    assert value.shape == (4, 4) and value.dtype == np.float64, value
                    assert len(set(value.ravel().tolist()) & {0.0, 1.0, 2.0}) == 1, value
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=run, args=(fn,)) for fn in fns]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[0]
        """)


# ---- 3. hostile arguments to the trace/replay entry points --------------------------------


def _program(fn, *args):
    """fn compiled and called once; returns (Function, root node of its one signature)."""
    f = dd.function(fn)
    f(*args)
    (entry,) = f._cache.values()
    return f, entry.root


def test_replay_checks_its_arguments():
    assert_runs_cleanly("""
        import pytest
        import dualad as dd
        from dualad import _core, _trace
        f = dd.function(lambda x: x * 2.0 + 1.0)
        f(dd.constant(1.0))
        (entry,) = f._cache.values()
        root = entry.root
        with pytest.raises(TypeError, match="input 0 is a float"):
            _trace.replay(root, [1.0], 0)
        with pytest.raises(TypeError, match="input 1 is a NoneType"):
            _trace.replay(root, [dd.constant(1.0), None], 0)
        with pytest.raises(TypeError, match="expected dualad._trace.Node, got NoneType"):
            _trace.replay(None, [dd.constant(1.0)], 0)
        with pytest.raises(TypeError, match="not iterable"):
            _trace.replay(root, None, 0)
        with pytest.raises(ValueError, match="n_slots"):
            _trace.replay(root, [dd.constant(1.0)], -3)
        _, outputs = _trace.replay(root, [dd.constant(3.0)], 0)
        assert float(outputs[0]) == 7.0
        """)


def test_replay_with_more_inputs_than_slots_does_not_crash():
    assert_runs_cleanly("""
        import dualad as dd
        from dualad import _core, _trace
        f = dd.function(lambda x: x * 2.0)
        f(dd.constant(1.0))
        (entry,) = f._cache.values()
        for _ in range(20):
            _, out = _trace.replay(entry.root, [dd.constant([1.0, 2.0])] * 5000, 1)
            assert out[0].numpy().tolist() == [2.0, 4.0]
        """)


def test_node_fields_cannot_index_out_of_range():
    assert_runs_cleanly("""
        import pytest
        import dualad as dd
        from dualad import _core, _trace

        def program(fn, *args):
            f = dd.function(fn)
            f(*args)
            (entry,) = f._cache.values()
            return entry.root

        # output slots far beyond the program
        node = _trace.Node()
        node.out_slots = (10 ** 6,)
        with pytest.raises(RuntimeError, match="read before it was written"):
            _trace.replay(node, [], 0)
        node = _trace.Node()
        node.out_slots = (-7,)
        with pytest.raises(ValueError, match="negative slot"):
            _trace.replay(node, [], 0)
        node = _trace.Node()
        node.out_slots = ("x",)
        with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
            _trace.replay(node, [], 0)

        # a guard and instructions taken from a bigger program, replayed with a 0-slot hint
        def big(x):
            for _ in range(300):
                x = x * 1.5 + dd.constant([1.0, 2.0])
            if dd.reduce_sum(x) > 0:
                return x
            return -x
        root = program(big, dd.constant([1.0, 1.0]))
        guard = root.guard
        ops = list(root.instrs)
        node = _trace.Node()
        node.guard = guard
        with pytest.raises(RuntimeError, match="read before it was written"):
            _trace.replay(node, [], 0)
        node = _trace.Node()
        node.instrs.extend(ops[-5:])
        node.out_slots = (0,)
        with pytest.raises(RuntimeError, match="read before it was written"):
            _trace.replay(node, [dd.constant([1.0, 1.0])], 0)
        node = _trace.Node()
        node.instrs.append("not an instruction")
        with pytest.raises(TypeError, match="str in a program"):
            _trace.replay(node, [], 0)
        node = _trace.Node()
        node.instrs.append(guard)   # a guard is not a straight-line instruction
        with pytest.raises(ValueError, match="unexpected instruction"):
            _trace.replay(node, [], 0)

        # changing a node after it was replayed: refused, or (its list) without effect
        root = program(lambda x: dd.sin(x) * 2.0, dd.constant([1.0, 2.0]))
        _trace.replay(root, [dd.constant([1.0, 2.0])], 0)
        with pytest.raises(AttributeError, match="cannot change"):
            root.out_slots = (999999,)
        with pytest.raises(AttributeError, match="cannot change"):
            root.guard = guard
        root.instrs.clear()
        _, out = _trace.replay(root, [dd.constant([0.0, 0.0])], 0)
        assert out[0].numpy().tolist() == [0.0, 0.0]

        # instructions cannot be forged
        with pytest.raises(TypeError, match="made by the tracer only"):
            _trace.Instr()
        forged = _trace.Instr.__new__(_trace.Instr)
        repr(forged)
        node = _trace.Node()
        node.instrs.append(forged)
        with pytest.raises(ValueError, match="malformed"):
            _trace.replay(node, [], 0)
        """)


def test_instructions_and_tracers_are_not_picklable():
    f, root = _program(lambda x: x * 2.0, dd.constant(1.0))
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(root.instrs[0])
    tracer = _trace.begin_trace()
    try:
        with pytest.raises(TypeError, match="cannot pickle"):
            pickle.dumps(tracer)
    finally:
        _core.end_trace()


def test_tracer_entry_points_check_their_arguments():
    assert_runs_cleanly("""
        import pytest
        import dualad as dd
        from dualad import _core, _trace

        tracer = _trace.begin_trace()
        try:
            with pytest.raises(TypeError, match="expected dualad._core.Tensor, got NoneType"):
                tracer.output(None)
            with pytest.raises(TypeError, match="expected dualad._core.Tensor, got NoneType"):
                tracer.input(None)
            x = dd.constant([1.0, 2.0])
            tracer.input(x)
            start = tracer.mark()
            y = x
            marks = []
            for _ in range(4):
                marks.append(tracer.mark())
                y = y * 2.0
            marks.append(tracer.mark())
            end = tracer.mark()
            with pytest.raises(RuntimeError, match="before anything else"):
                tracer.input(dd.constant(1.0))
            # marks beyond the trace, decreasing, or not marks at all
            n_instrs, n_slots = end
            for bad in ([(0, 0), (50, 0), (100, 0), (n_instrs, 0)],
                        [(0, 0), (n_instrs + 40, 1), (n_instrs + 80, 2), (n_instrs, 3)],
                        [(2, 1), (1, 2), (3, 3), (n_instrs, n_slots)],
                        [(0, 0), (1, n_slots + 100), (2, n_slots + 200), (n_instrs, n_slots)],
                        [(-3, 0), (0, 0), (1, 0), (n_instrs, n_slots)]):
                with pytest.raises(ValueError, match="not increasing positions"):
                    tracer.compress_loop(bad)
            for bad in ([None, None, None], [(0,), (1,), (2,)], [(0.5, 0), (1, 1), (2, 2)]):
                with pytest.raises(TypeError, match="pair from mark|interpreted as an integer"):
                    tracer.compress_loop(bad)
            with pytest.raises(TypeError, match="expected list, got NoneType"):
                tracer.compress_loop(None)
            tracer.compress_loop(marks)   # the real marks still compress
            assert [i.kind for i in tracer.instrs].count(5) == 1
        finally:
            _core.end_trace()
        """)


# ---- 4. custom_gradient inside dualad.function --------------------------------------------


@dd.custom_gradient
def _scaled_sin(x):
    """sin(x) with a gradient of 7·dy (told apart from the body's cos)."""
    def grad(dy):
        return dy * 7.0 * x / x

    return dd.sin(x) * 1.0, grad


def test_a_custom_gradient_is_recomputed_by_every_replay():
    f = dd.function(lambda x: _scaled_sin(x) + 1.0)
    for value in (2.0, 3.0, -0.5):
        x = dd.constant(value)
        assert float(f(x)) == float(dd.sin(x) * 1.0 + 1.0), value
    assert f.trace_count == 1


def test_gradients_through_a_custom_gradient_inside_a_compiled_function():
    def value_and_grads(x):
        with dd.GradientTape() as outer:
            outer.watch(x)
            with dd.GradientTape() as inner:
                inner.watch(x)
                y = dd.reduce_sum(_scaled_sin(x * x))
            g = inner.gradient(y, x)
        return y, g, outer.gradient(dd.reduce_sum(g), x)

    f = dd.function(value_and_grads)
    for value in ([1.0, 2.0], [3.0, -4.0], [0.5, 0.25]):
        x = dd.constant(np.array(value))
        got, want = f(x), value_and_grads(x)
        for a, b in zip(got, want):
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), (value, a, b)
    assert f.trace_count == 1


# ---- 5. cycles through a program --------------------------------------------------------


def test_a_program_whose_custom_gradient_reaches_back_to_its_owner_is_collected():
    class Holder:
        def __init__(self):
            self.scale = dd.constant(3.0)
            self.step = dd.function(self._step)

        def _step(self, x):
            @dd.custom_gradient
            def scaled(x):
                def grad(dy):
                    return dy * self.scale   # the program's primitive leads back to self

                return x * self.scale, grad

            with dd.GradientTape() as tape:
                tape.watch(x)
                y = scaled(x)
            return y, tape.gradient(y, x)

    holder = Holder()
    for value in (2.0, 5.0):
        y, g = holder.step(dd.constant(value))
        assert (float(y), float(g)) == (3.0 * value, 3.0)
    assert holder.step.trace_count == 1
    owner = weakref.ref(holder)
    del holder, y, g
    gc.collect()
    assert owner() is None


# ---- 6. the signature cache: bounded, weak on Variables, NaN hits --------------------------


def test_the_cache_keeps_the_most_recently_used_signatures_up_to_max_signatures():
    f = dd.function(lambda x, s: x * s, max_signatures=3)
    x = dd.constant([1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FunctionRetracingWarning)
        for s in range(10):
            f(x, s)
        assert len(f._cache) == 3 and f.trace_count == 10
        for s in (7, 8, 9, 7):   # the three most recent are kept
            assert np.asarray(f(x, s)).tolist() == [s, 2.0 * s]
        assert f.trace_count == 10
        f(x, 0)                  # evicted long ago: traced again, evicting 8 (least recent)
        assert f.trace_count == 11
        f(x, 9)
        f(x, 7)
        assert f.trace_count == 11
        f(x, 8)
        assert f.trace_count == 12
    with pytest.raises(ValueError, match="max_signatures"):
        dd.function(lambda x: x, max_signatures=0)


def test_retracing_for_new_python_values_warns_once_and_says_to_pass_tensors():
    f = dd.function(lambda x, s: x * s)
    x = dd.constant(1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for s in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
            f(x, s)
    retracing = [w for w in caught if issubclass(w.category, FunctionRetracingWarning)]
    assert len(retracing) == 1, [str(w.message) for w in caught]
    assert "tensors" in str(retracing[0].message) and "'<lambda>'" in str(retracing[0].message)
    assert retracing[0].filename == __file__   # points at the caller
    g = dd.function(lambda x, s: x * s)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FunctionRetracingWarning)
        for s in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
            g(x, dd.constant(s))             # tensors: one trace, no warning
        for shape in range(1, 8):
            g(dd.ones([shape]), dd.constant(1.0))   # new shapes are not Python values
    assert g.trace_count == 8


def test_a_nan_python_argument_hits_the_cache():
    # a NaN's hash is its id() and it does not equal itself: keyed by value, numpy's float
    # scalars (not float subclasses) never hit the cache and made a new trace every call
    f = dd.function(lambda x, s: x * float(np.real(s)))
    x = dd.constant(2.0)
    nans = (float("nan"), np.float32("nan"), np.float16("nan"), complex("nan"),
            np.complex64(complex("nan")))
    for nan in nans:
        for _ in range(3):
            assert np.isnan(np.asarray(f(x, type(nan)(nan))))   # a new NaN object each call
    assert f.trace_count == len(nans)
    f(x, np.float32(0.0))
    f(x, np.float32(-0.0))      # another signature, as for Python floats
    assert f.trace_count == len(nans) + 2


def test_a_variable_argument_is_held_weakly_with_its_cache_entry():
    f = dd.function(lambda v, x: v.assign_add(x))
    v = dd.Variable([1.0, 2.0])
    out = f(v, dd.constant([1.0, 1.0]))
    assert out is v                       # the call's own Variable comes back
    assert f(v, dd.constant([1.0, 1.0])) is v and f.trace_count == 1
    assert np.asarray(v).tolist() == [3.0, 4.0]
    variable = weakref.ref(v)
    del v, out
    gc.collect()
    assert variable() is None             # neither the cache nor the program keeps it
    w = dd.Variable([10.0, 20.0])
    f(w, dd.constant([1.0, 1.0]))
    assert len(f._cache) == 1             # the dead Variable's entry is gone
    assert np.asarray(w).tolist() == [11.0, 21.0]


def test_a_new_variable_with_a_dead_ones_id_never_reuses_its_program():
    import importlib
    function_module = importlib.import_module("dualad.function")
    f = dd.function(lambda v, x: v.assign(x * 2.0))
    old = dd.Variable([0.0, 0.0])
    f(old, dd.constant([1.0, 2.0]))
    (entry,) = f._cache.values()
    del old
    gc.collect()
    f._dead.clear()   # as if the new Variable came before the dead one's entry was purged
    new = dd.Variable([5.0, 5.0])
    # the dead entry under the new Variable's key (white box: what a reused id() would find)
    key = function_module._signature((new, dd.constant([1.0, 2.0])), {})[2]
    f._cache.clear()
    f._cache[key] = entry
    f(new, dd.constant([3.0, 4.0]))
    assert f.trace_count == 2
    assert np.asarray(new).tolist() == [6.0, 8.0]
    assert f._cache[key] is not entry


def test_variables_the_program_captures_stay_held():
    def make():
        captured = dd.Variable(3.0)   # reachable only through the program once make returns
        f = dd.function(lambda x: x * captured.read_value())
        f(dd.constant(2.0))
        return f, weakref.ref(captured)

    f, captured = make()
    gc.collect()
    assert captured() is not None and float(f(dd.constant(5.0))) == 15.0
