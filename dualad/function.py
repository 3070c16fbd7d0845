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
import collections
import copy
import functools
import numbers
import threading
import types
import warnings
import weakref

import numpy as np

from . import _core, _trace
from ._core import Tensor, Variable
from .nest import flatten

_run_eagerly = False


class FunctionFallbackWarning(UserWarning):
    """A dualad.function runs eagerly for some signature (the reason is in the message)."""


class FunctionStructureWarning(UserWarning):
    """A dualad.function returned differently structured results on different paths."""


class FunctionRetracingWarning(UserWarning):
    """A dualad.function keeps tracing again for new Python values of its arguments."""


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
    """The program tree of one signature (or, with `eager` set, the mark that it runs
    eagerly)."""

    def __init__(self, keep, variables, on_death):
        self.root = None
        self.n_slots = 0
        self.paths = 0
        self.eager = False
        self.structure = None  # the result's structure on the first path
        self.keep = keep  # objects the signature names by identity, kept alive
        # the Variable arguments, held weakly: the entry dies with them
        self.var_refs = tuple(weakref.ref(v, on_death) for v in variables)

    def alive_for(self, variables):
        """True if the entry's Variables are these very objects (not dead ones whose id() a
        new Variable reuses)."""
        for ref, v in zip(self.var_refs, variables):
            if ref() is not v:
                return False
        return True


class _VariableArgument:
    """In a compiled result, the place of the call's k-th Variable argument."""

    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index


_RETRACING_WARN_AFTER = 5   # traces for new Python values of otherwise alike arguments


class Function:
    """A Python function compiled by tracing; see the module docstring and `function`."""

    def __init__(self, fn, eager=False, max_paths=64, max_signatures=64):
        functools.update_wrapper(self, fn)
        self._fn = fn
        self.eager = bool(eager)
        self.max_paths = int(max_paths)
        self.max_signatures = int(max_signatures)
        if self.max_signatures < 1:
            raise ValueError(f"dualad.function: max_signatures must be >= 1, got {max_signatures}")
        self.trace_count = 0
        self._cache = collections.OrderedDict()   # key -> _Entry, least recently used first
        # keys whose Variables died (appended by weakref callbacks, which may run anywhere,
        # so they only note the key; the next call removes the entry under the lock)
        self._dead = []
        dead = self._dead
        self._on_death = lambda ref: dead.append(ref)
        self._python_variants = {}   # signature with Python values left out -> traces
        self._retracing_warned = False
        # guards the cache and the program trees while a finished trace is added (never held
        # while user code runs: traces themselves run concurrently)
        self._lock = threading.Lock()

    def clear_cache(self):
        """Forget every traced program; the next call traces again."""
        with self._lock:
            self._cache.clear()
            self._python_variants.clear()

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self.__call__, obj)

    def __deepcopy__(self, memo):
        # as deepcopy treats the function it wraps: a bound method is copied with its instance
        # (a deep-copied model's compiled step must use the copy's Variables, not silently the
        # original's), and gets a Function of its own; a plain function is itself
        fn = copy.deepcopy(self._fn, memo)
        if fn is self._fn:
            return self
        return Function(fn, eager=self.eager, max_paths=self.max_paths,
                        max_signatures=self.max_signatures)

    def __reduce__(self):
        # by reference (module and qualified name), as the function it decorates would be: the
        # traced programs hold objects of this process and never travel; the other side
        # traces again. A lambda or local function raises pickle's PicklingError. A bound
        # method (dualad.function(self.forward) kept on the instance) travels with its instance.
        owner = getattr(self._fn, "__self__", None)
        if owner is not None and not isinstance(owner, types.ModuleType):
            return Function, (self._fn, self.eager, self.max_paths, self.max_signatures)
        return self.__qualname__

    def __call__(self, *args, **kwargs):
        if (self.eager or _run_eagerly or _core.tracing() or _core.active_transformations()
                or _core.check_numerics_enabled()):
            return self._fn(*args, **kwargs)
        if self._dead:
            self._forget_dead()
        args, kwargs, key, inputs, variables, keep = _signature(args, kwargs)
        entry = self._cache.get(key)
        if entry is not None and variables and not entry.alive_for(variables):
            entry = None   # a dead Variable's entry, found through a reused id()
        seen = None   # the tree the replay missed in, and its number of paths then
        if entry is not None:
            try:
                self._cache.move_to_end(key)
            except KeyError:   # evicted by another thread meanwhile
                pass
            if entry.eager:
                return self._fn(*args, **kwargs)
            assert entry.root is not None, "a published entry has a program or is eager"
            seen = (entry, entry.paths)
            found = _trace.replay(entry.root, inputs, entry.n_slots, variables)
            if found is not None:
                leaf, outputs = found
                return leaf.finish(outputs, variables)
            if entry.paths >= self.max_paths:
                self._fall_back(key, variables, keep,
                                f"it took more than {self.max_paths} different paths",
                                stacklevel=3)
                return self._fn(*args, **kwargs)
        return self._trace(key, keep, args, kwargs, inputs, variables, seen)

    def _forget_dead(self):
        with self._lock:
            self._dead.clear()
            for key in [k for k, e in self._cache.items()
                        if any(r() is None for r in e.var_refs)]:
                del self._cache[key]

    def _entry(self, key, variables, keep):
        """The live entry of key, or a new one that the caller fills in and then publishes
        with _publish; the caller holds the lock. (Calls read the cache without the lock, and
        the GIL may pass to them between any two lines: they must never see a half-made
        entry.)"""
        entry = self._cache.get(key)
        if entry is None or (variables and not entry.alive_for(variables)):
            entry = _Entry(keep, variables, self._on_death)
        return entry

    def _publish(self, key, entry):
        """Put a new, complete entry in the cache (the least recently used evicted); the
        caller holds the lock."""
        if self._cache.get(key) is entry:
            return
        self._cache[key] = entry
        while len(self._cache) > self.max_signatures:
            self._cache.popitem(last=False)
        self._count_python_variant(key)

    def _count_python_variant(self, key):
        variant = _without_python_values(key)
        if variant is None:
            return
        if len(self._python_variants) > 4 * self.max_signatures:
            self._python_variants.clear()   # a bound: this only decides when to warn
        n = self._python_variants[variant] = self._python_variants.get(variant, 0) + 1
        if n >= _RETRACING_WARN_AFTER and not self._retracing_warned:
            self._retracing_warned = True
            self._retracing_warning = n

    def _fall_back(self, key, variables, keep, reason, stacklevel=4):
        # stacklevel: the caller of the function (from _trace, one frame deeper by default)
        with self._lock:
            entry = self._entry(key, variables, keep)
            entry.eager = True
            self._publish(key, entry)
        self._warn_retracing(stacklevel + 1)
        self._warn_fallback(reason, stacklevel + 1)

    def _warn_fallback(self, reason, stacklevel):
        warnings.warn(f"dualad.function {self.__name__!r} runs eagerly for this input "
                      f"signature because {reason}", FunctionFallbackWarning,
                      stacklevel=stacklevel)

    def _warn_retracing(self, stacklevel):
        n = self.__dict__.pop("_retracing_warning", None)
        if n is not None:
            warnings.warn(f"dualad.function {self.__name__!r} has been traced {n} times for "
                          "arguments that differ only in Python values (numbers, strings...): "
                          "each new value is a new signature and a new trace. Pass tensors "
                          "(dualad.constant(x)) instead of Python numbers so that calls share "
                          "one program", FunctionRetracingWarning, stacklevel=stacklevel)

    def _trace(self, key, keep, args, kwargs, inputs, variables, seen):
        tracer = _trace.begin_trace()
        try:
            for t in inputs:
                tracer.input(t)
            for v in variables:
                tracer.variable_input(v)
            result = self._fn(*args, **kwargs)
            leaves, pack = flatten(result)
            specs = [tracer.output(leaf) if isinstance(leaf, Tensor) and not isinstance(leaf, Variable)
                     else None for leaf in leaves]
        finally:
            _core.end_trace()
        with self._lock:
            self.trace_count += 1
        if tracer.impure is not None:
            self._fall_back(key, variables, keep, tracer.impure)
            return result
        # the result's Variable arguments are named by position, so the program does not
        # keep them alive
        position = {id(v): k for k, v in enumerate(variables)}
        fixed = [None if s is not None else
                 _VariableArgument(position[id(leaf)]) if id(leaf) in position else leaf
                 for s, leaf in zip(specs, leaves)]
        out_slots = tuple(-1 if s is None else s for s in specs)

        def finish(outputs, variables):
            return pack([(variables[f.index] if isinstance(f, _VariableArgument) else f)
                         if s < 0 else o for f, s, o in zip(fixed, out_slots, outputs)])

        structure = _structure(result)
        # the new chain is built outside the lock; only linking it into the tree is locked
        chain = _build(tracer.instrs, 0, out_slots, finish)
        with self._lock:
            entry = self._entry(key, variables, keep)
            if entry.eager:   # another thread's trace of this signature fell back
                return result
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
                entry.eager = True
            self._publish(key, entry)
        self._warn_retracing(stacklevel=4)
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
    node = _trace.Node()
    node.out_slots = out_slots
    node.finish = finish
    return node


def _build(instrs, start, out_slots, finish):
    """The chain of nodes for instrs[start:], split at guards (iteratively: loops make long
    chains). Returns the list of the chain's nodes, the head first, and for each guard's
    position in instrs the node that follows it (see _insert)."""
    head = node = _trace.Node()
    chain, guard_at = [head], []
    for at, ins in enumerate(instrs[start:], start):
        if ins.kind == _GUARD:
            guard_at.append(at)
            node.guard = ins
            child = _trace.Node()
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


_GUARD = _trace.INSTR_KINDS["guard"]


def _signature(args, kwargs):
    """The cache key of a call, its tensor inputs, its Variable arguments (each once, in order
    of appearance), the objects the key names by identity, and the arguments with numpy arrays
    turned into Tensors (as TensorFlow does). The key holds the arguments' structure
    (container types, dict keys), each tensor's shape and dtype, each Variable's identity,
    and other values by value: floats (numpy's too) by their bits, so -0.0 and 0.0 differ and
    a NaN matches itself."""
    leaves, pack = flatten((list(args), dict(kwargs)))
    key, inputs, variables, keep, new_leaves = [_containers((args, kwargs))], [], [], [], []
    for leaf in leaves:
        if isinstance(leaf, np.ndarray):
            leaf = _core.convert_to_tensor(leaf)
        if isinstance(leaf, Variable):
            key.append(("V", id(leaf)))
            if not any(v is leaf for v in variables):
                variables.append(leaf)
        elif isinstance(leaf, Tensor):
            key.append(("T", leaf.shape, leaf.dtype.name))
            inputs.append(leaf)
        else:
            value = _python_value(leaf)
            if value is None:
                key.append(("O", id(leaf)))
                keep.append(leaf)
            else:
                key.append(value)
        new_leaves.append(leaf)
    args, kwargs = pack(new_leaves)
    return tuple(args), kwargs, tuple(key), inputs, variables, keep


def _python_value(leaf):
    """The key of a non-tensor argument, ("P", type, value...), or None if it is unhashable
    (then it is named by identity). Numbers that do not equal themselves (NaN) are keyed by
    their bits or text: a NaN's hash is its id(), so by value it would never hit the cache."""
    if isinstance(leaf, float):
        return ("P", type(leaf), float(leaf).hex())
    if isinstance(leaf, complex):
        return ("P", type(leaf), leaf.real.hex(), leaf.imag.hex())
    if isinstance(leaf, np.generic) and leaf.dtype.kind in "fc":
        return ("P", type(leaf), leaf.tobytes())
    try:
        hash(leaf)
    except TypeError:
        return None
    if isinstance(leaf, numbers.Number):
        try:
            if leaf != leaf:
                return ("P", type(leaf), "not itself", repr(leaf))
        except Exception:   # a number that does not compare: by value is all we can do
            pass
    return ("P", type(leaf), leaf)


def _without_python_values(key):
    """The key with its Python values left out (their types kept), or None if it has none:
    signatures that differ only there are retraces a tensor argument would have avoided."""
    if not any(part[0] == "P" for part in key[1:]):
        return None
    return (key[0],) + tuple(part[:2] if part[0] == "P" else part for part in key[1:])


def _containers(obj):
    """The nesting of lists, tuples and dicts in obj (types and keys), leaves as None."""
    if isinstance(obj, dict):
        return (type(obj), tuple((k, _containers(obj[k])) for k in sorted(obj)))
    if isinstance(obj, (list, tuple)):
        return (type(obj), tuple(_containers(v) for v in obj))
    return None


def function(fn=None, *, eager=False, max_paths=64, max_signatures=64):
    """Decorator: compile `fn` by tracing (see the module docstring).

    Each signature (tensor shapes and dtypes, Variables by identity, other arguments by
    value) gets its own program tree. `max_paths` bounds the paths (guard outcomes) of one
    signature; past it that signature runs eagerly. `max_signatures` bounds the signatures
    kept: the least recently used one is forgotten (and traced again if it comes back).
    Variables passed as arguments are held weakly: a signature's program dies with them
    (Variables the function reads from elsewhere, such as an optimizer's, are held by the
    program). A function traced again and again for new Python values of otherwise alike
    arguments (`f(x, 0.1)`, `f(x, 0.2)`, ...) warns once with FunctionRetracingWarning: pass
    such values as tensors to share one program.

    `f.trace_count` counts traces, `f.clear_cache()` forgets them, `eager=True` runs the
    Python body every call."""
    if fn is None:
        return lambda f: Function(f, eager=eager, max_paths=max_paths,
                                  max_signatures=max_signatures)
    return Function(fn, eager=eager, max_paths=max_paths, max_signatures=max_signatures)
