"""dualad.function: trace a Python function once per input signature, then replay the
recorded program in the compiled core.

The first call with a signature (tensor shapes and dtypes, Variables by identity, other Python
values by value) runs the function eagerly while recording every primitive call, Variable read
and assignment, and a guard for each Python decision taken on a tensor value (`if t > 0`,
`while norm(b) < 1000`). Later calls replay the program without running Python per op. When a
guard sees an outcome no trace has taken, the replay is abandoned before it changes anything
and the function is traced again along the new path; the paths share their common prefix.
Results therefore always equal eager execution.

What runs eagerly instead (with a warning, once per signature): functions that read a traced
value into Python other than through a condition (`float(t)`, `t.numpy()`, `np.asarray(t)`),
that create Variables, or that take more than `max_paths` different paths. Calls made while a
tape or accumulator is active, or while another function is being traced, also run eagerly so
that those record them normally. Python side effects (print, appending to lists) happen only
while tracing, as in TensorFlow.
"""
import builtins
import functools
import threading
import warnings

import numpy as np

from . import _core
from ._core import Tensor, Variable
from .nest import flatten

_EAGER = object()  # cache marker: this signature runs eagerly
_run_eagerly = False


class FunctionFallbackWarning(UserWarning):
    """A dualad.function runs eagerly for some signature (the reason is in the message)."""


class FunctionStructureWarning(UserWarning):
    """A dualad.function returned differently structured results on different paths."""


def _structure(result):
    """The shape of a result with tensors as 'T' and other leaves by type, for comparison."""
    if isinstance(result, dict):
        return {k: _structure(v) for k, v in result.items()}
    if isinstance(result, (list, tuple)):
        return type(result)(_structure(v) for v in result) if not hasattr(result, "_fields") \
            else (type(result).__name__, tuple(_structure(v) for v in result))
    return "T" if isinstance(result, Tensor) else type(result).__name__


def run_functions_eagerly(enabled):
    """Debugging switch: when True, every dualad.function runs its Python body eagerly."""
    global _run_eagerly
    _run_eagerly = bool(enabled)


def range(*args):
    """range() for loops inside dualad.function (a tensor bound is read as a guarded int).

    While tracing, consecutive iterations that record the same instructions (on slots that
    either stay the same or advance by the same stride) become one loop instruction of the
    program instead of one copy per iteration. (The first iteration usually stays unrolled:
    it records the constants and Variable reads that later iterations reuse.) Iterations that differ (a branch taken in some
    of them, a Python value baked into the body) stay unrolled; a loop left by `break` is not
    compressed. Outside dualad.function it is the builtin range."""
    steps = builtins.range(*(int(a) if isinstance(a, Tensor) else a for a in args))
    tracer = _core.current_tracer()
    return iter(steps) if tracer is None else _compressed_loop(tracer, steps)


def _compressed_loop(tracer, steps):
    marks = []
    for i in steps:
        marks.append(tracer.mark())
        yield i
    marks.append(tracer.mark())
    tracer.compress_loop(marks)


class _Entry:
    """The program tree of one signature."""

    def __init__(self, keep):
        self.root = None
        self.n_slots = 0
        self.paths = 0
        self.structure = None  # the result's structure on the first path
        self.keep = keep  # objects the signature names by identity, kept alive


class Function:
    """A Python function compiled by tracing; see the module docstring."""

    def __init__(self, fn, eager=False, max_paths=64):
        functools.update_wrapper(self, fn)
        self._fn = fn
        self.eager = bool(eager)
        self.max_paths = int(max_paths)
        self.trace_count = 0
        self._cache = {}
        # guards the cache and the program trees while a finished trace is added (never held
        # while user code runs: traces themselves run concurrently)
        self._lock = threading.Lock()

    def clear_cache(self):
        """Forget every traced program; the next call traces again."""
        with self._lock:
            self._cache.clear()

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self.__call__, obj)

    def __call__(self, *args, **kwargs):
        if (self.eager or _run_eagerly or _core.tracing() or _core.active_transformations()
                or _core.check_numerics_enabled()):
            return self._fn(*args, **kwargs)
        args, kwargs, key, inputs, keep = _signature(args, kwargs)
        entry = self._cache.get(key)
        if entry is _EAGER:
            return self._fn(*args, **kwargs)
        seen = None   # the tree the replay missed in, and its number of paths then
        if entry is not None:
            seen = (entry, entry.paths)
            found = _core.replay(entry.root, inputs, entry.n_slots)
            if found is not None:
                leaf, outputs = found
                return leaf.finish(outputs)
            if entry.paths >= self.max_paths:
                self._fall_back(key, f"it took more than {self.max_paths} different paths",
                                stacklevel=3)
                return self._fn(*args, **kwargs)
        return self._trace(key, keep, args, kwargs, inputs, seen)

    def _fall_back(self, key, reason, stacklevel=4):
        # stacklevel: the caller of the function (from _trace, one frame deeper by default)
        with self._lock:
            self._cache[key] = _EAGER
        self._warn_fallback(reason, stacklevel + 1)

    def _warn_fallback(self, reason, stacklevel):
        warnings.warn(f"dualad.function {self.__name__!r} runs eagerly for this input "
                      f"signature because {reason}", FunctionFallbackWarning,
                      stacklevel=stacklevel)

    def _trace(self, key, keep, args, kwargs, inputs, seen):
        tracer = _core.begin_trace()
        try:
            for t in inputs:
                tracer.input(t)
            result = self._fn(*args, **kwargs)
            leaves, pack = flatten(result)
            specs = [tracer.output(leaf) if isinstance(leaf, Tensor) and not isinstance(leaf, Variable)
                     else None for leaf in leaves]
        finally:
            _core.end_trace()
        with self._lock:
            self.trace_count += 1
        if tracer.impure is not None:
            self._fall_back(key, tracer.impure)
            return result
        fixed = [None if s is not None else leaf for s, leaf in zip(specs, leaves)]
        out_slots = tuple(-1 if s is None else s for s in specs)

        def finish(outputs):
            return pack([f if s < 0 else o for f, s, o in zip(fixed, out_slots, outputs)])

        structure = _structure(result)
        # the new chain is built outside the lock; only linking it into the tree is locked
        chain = _build(tracer.instrs, 0, out_slots, finish)
        with self._lock:
            entry = self._cache.get(key)
            if entry is _EAGER:   # another thread's trace of this signature fell back
                return result
            if entry is None:
                entry = self._cache[key] = _Entry(keep)
            first_structure = entry.structure
            if first_structure is None:
                entry.structure = structure
            outcome = _insert(entry, tracer.instrs, chain)
            if outcome == _INSERTED:
                entry.n_slots = max(entry.n_slots, tracer.n_slots)
                entry.paths += 1
            # a path already present is fine if another thread added it after our replay
            # missed: both traced the same new path at once
            nondeterministic = outcome == _MISMATCH or (outcome == _PRESENT
                                                        and seen == (entry, entry.paths))
            if nondeterministic:
                self._cache[key] = _EAGER
        if first_structure is not None and structure != first_structure:
            warnings.warn(f"dualad.function {self.__name__!r} returns a different structure on "
                          f"this path ({structure}) than on its first one ({first_structure}); "
                          "each path returns its own, but callers usually expect one",
                          FunctionStructureWarning, stacklevel=3)
        if nondeterministic:
            self._warn_fallback("two traces of the same path recorded different programs "
                                "(the function is not deterministic)", stacklevel=4)
        return result


def _leaf(out_slots, finish):
    node = _core.Node()
    node.out_slots = out_slots
    node.finish = finish
    return node


def _build(instrs, start, out_slots, finish):
    """The chain of nodes for instrs[start:], split at guards (iteratively: loops make long
    chains). Returns the list of the chain's nodes, the head first, and for each guard's
    position in instrs the node that follows it (see _insert)."""
    head = node = _core.Node()
    chain, guard_at = [head], []
    for at, ins in enumerate(instrs[start:], start):
        if ins.kind == _GUARD:
            guard_at.append(at)
            node.guard = ins
            child = _core.Node()
            node.children[ins.expected] = child
            node = child
            chain.append(node)
        else:
            node.instrs.append(ins)
    node.out_slots = out_slots
    node.finish = finish
    return chain, guard_at


_INSERTED, _PRESENT, _MISMATCH = "inserted", "present", "mismatch"


def _insert(entry, instrs, built):
    """Add a trace (instrs, built into nodes by _build) to the entry's tree. Its prefix
    repeats an existing path up to the first guard outcome that path has not seen; from there
    on the chain's nodes are linked in. Returns _INSERTED, _PRESENT if the tree already has
    this whole path, or _MISMATCH if the prefix differs from the tree's."""
    chain, guard_at = built
    if entry.root is None:
        entry.root = chain[0]
        return _INSERTED
    node, i, depth = entry.root, 0, 0
    while True:
        i += len(node.instrs)
        if node.guard is None:
            return _PRESENT  # a path that replay would have found
        if i >= len(instrs) or instrs[i].kind != _GUARD or instrs[i].slot != node.guard.slot:
            return _MISMATCH
        if depth >= len(guard_at) or guard_at[depth] != i:
            return _MISMATCH  # the tree's branch before this guard differs in length from ours
        depth += 1
        child = node.children.get(instrs[i].expected)
        if child is None:
            # the chain's node after its depth-th guard starts where the tree has nothing
            node.children[instrs[i].expected] = chain[depth]
            return _INSERTED
        node, i = child, i + 1


_GUARD = 3  # Instr.kind of a guard (dualad._core)


def _signature(args, kwargs):
    """The cache key of a call, its tensor inputs, and the arguments with numpy arrays turned
    into Tensors (as TensorFlow does). The key holds the arguments' structure (container types,
    dict keys), each tensor's shape and dtype, each Variable's identity, and other values by
    value (floats by their bits, so -0.0 and 0.0 differ and a NaN matches itself)."""
    leaves, pack = flatten((list(args), dict(kwargs)))
    key, inputs, keep, new_leaves = [_containers((args, kwargs))], [], [], []
    for leaf in leaves:
        if isinstance(leaf, np.ndarray):
            leaf = _core.convert_to_tensor(leaf)
        if isinstance(leaf, Variable):
            key.append(("V", id(leaf)))
            keep.append(leaf)
        elif isinstance(leaf, Tensor):
            key.append(("T", leaf.shape, leaf.dtype.name))
            inputs.append(leaf)
        elif isinstance(leaf, float):
            key.append((type(leaf), float(leaf).hex()))
        else:
            try:
                hash(leaf)
                key.append((type(leaf), leaf))
            except TypeError:
                key.append(("O", id(leaf)))
                keep.append(leaf)
        new_leaves.append(leaf)
    args, kwargs = pack(new_leaves)
    return tuple(args), kwargs, tuple(key), inputs, keep


def _containers(obj):
    """The nesting of lists, tuples and dicts in obj (types and keys), leaves as None."""
    if isinstance(obj, dict):
        return (type(obj), tuple((k, _containers(obj[k])) for k in sorted(obj)))
    if isinstance(obj, (list, tuple)):
        return (type(obj), tuple(_containers(v) for v in obj))
    return None


def function(fn=None, *, eager=False, max_paths=64):
    """Decorator: compile `fn` by tracing (see the module docstring). `f.trace_count` counts
    traces, `f.clear_cache()` forgets them, `eager=True` runs the Python body every call."""
    if fn is None:
        return lambda f: Function(f, eager=eager, max_paths=max_paths)
    return Function(fn, eager=eager, max_paths=max_paths)
