"""Tape emulation for functional libraries (JAX, autograd).

Functional libraries differentiate *functions*, while the tutorials record
*values* on a tape. The bridge: every op on a :class:`Recorded` tensor
remembers how it was computed, and ``Tape.gradient(target, sources)`` rebuilds
the function sources -> target from those records and hands it to the
library's own ``grad``. So the derivatives are the library's; only the
bookkeeping of which ops a tape saw is emulated, following TensorFlow's
rules:

* an op is recorded on a tape if the tape's context is open and one of the
  op's inputs is watched by, or was recorded on, that tape;
* a source the target does not reach through recorded ops gets ``None``;
* a gradient taken while a tape's context is open is itself an op (its
  inputs are everything the replayed function depended on), so it is
  recorded and can be differentiated again: nested tapes, and gradients
  inside a persistent tape's context.

Behaviours that only make sense for a real tape (a non-persistent tape's
refusal of a second call, variable watching) are emulated for consistency
but the adapters declare them unsupported, so no test credits the library
with them.
"""
from __future__ import annotations

import functools
from typing import Callable

_open_tapes: list["Tape"] = []


class Recorded:
    """A library array plus the op that produced it (None for a leaf)."""

    __slots__ = ("value", "fn", "args", "tapes", "__weakref__")

    def __init__(self, value, fn=None, args=(), tapes=frozenset()):
        self.value = value
        self.fn = fn
        self.args = args  # op arguments: Recorded or plain Python/array constants
        self.tapes = tapes  # the tapes this op was recorded on

    @property
    def parents(self):
        return [a for a in self.args if isinstance(a, Recorded)]

    @property
    def shape(self):
        return tuple(self.value.shape)

    # Comparisons serve the tutorials' `if` and `while`; they are not differentiable.
    def __lt__(self, other):
        return self.value < unwrap(other)

    def __le__(self, other):
        return self.value <= unwrap(other)

    def __gt__(self, other):
        return self.value > unwrap(other)

    def __ge__(self, other):
        return self.value >= unwrap(other)

    def __bool__(self):
        return bool(self.value)

    def __repr__(self):
        return f"Recorded({self.value!r})"


def unwrap(x):
    return x.value if isinstance(x, Recorded) else x


def record(fn: Callable, *args) -> Recorded:
    """Apply ``fn`` to the values of ``args`` and record it on the open tapes that see an input."""
    value = fn(*[unwrap(a) for a in args])
    parents = [a for a in args if isinstance(a, Recorded)]
    tapes = frozenset(t for t in _open_tapes if any(t.sees(p) for p in parents))
    return Recorded(value, fn, args, tapes)


def op(fn: Callable) -> Callable:
    """An adapter op that records ``fn`` (keyword arguments, such as ``axis``, are constants)."""

    def recorded_op(*args, **options):
        return record(functools.partial(fn, **options) if options else fn, *args)

    recorded_op.__name__ = getattr(fn, "__name__", "op")
    return recorded_op


def replay(node: Recorded, env: dict, memo: dict):
    """Recompute ``node`` from the values bound in ``env`` (by node id)."""
    key = id(node)
    if key in env:
        return env[key]
    if key not in memo:
        memo[key] = node.fn(*[replay(a, env, memo) if isinstance(a, Recorded) else a for a in node.args])
    return memo[key]


class Tape:
    def __init__(self, grad: Callable, total: Callable, persistent: bool):
        self._grad = grad  # library grad of a one-argument function
        self._total = total  # library sum over all elements
        self.persistent = persistent
        self._watched: dict[int, Recorded] = {}
        self._used = False

    def __enter__(self):
        _open_tapes.append(self)
        return self

    def __exit__(self, *exc_info):
        _open_tapes.remove(self)
        return False

    def watch(self, tensors):
        for t in tensors if isinstance(tensors, (list, tuple)) else [tensors]:
            self._watched[id(t)] = t

    def sees(self, node: Recorded) -> bool:
        return id(node) in self._watched or self in node.tapes

    def gradient(self, target, sources):
        if self._used and not self.persistent:
            raise RuntimeError("a non-persistent tape can compute only one gradient")
        self._used = True
        wanted = list(sources) if isinstance(sources, (list, tuple)) else [sources]
        grads = self._gradients(target, wanted)
        result = [grads.get(id(s)) for s in wanted]
        return result if isinstance(sources, (list, tuple)) else result[0]

    def _gradients(self, target, wanted) -> dict:
        source_ids = {id(s) for s in wanted if isinstance(s, Recorded) and self.sees(s)}
        if not isinstance(target, Recorded) or not self.sees(target):
            return {}
        reached, boundary, seen = {}, {}, set()

        def visit(node):
            if id(node) in seen:
                return
            seen.add(id(node))
            if id(node) in source_ids:
                reached[id(node)] = node
            elif node.fn is None or not self.sees(node):
                boundary[id(node)] = node  # a constant for this tape, an input of the gradient op
            else:
                for parent in node.parents:
                    visit(parent)

        visit(target)
        if not reached:
            return {}
        inputs = [*reached.values(), *boundary.values()]
        n_sources = len(reached)
        grad, total = self._grad, self._total

        def all_gradients(*values):
            bound = {id(b): v for b, v in zip(boundary.values(), values[n_sources:])}

            def target_of(source_values):
                env = dict(bound)
                env.update({id(s): v for s, v in zip(reached.values(), source_values)})
                return total(replay(target, env, {}))

            return grad(target_of)(tuple(values[:n_sources]))

        def component(i):
            return lambda *values: all_gradients(*values)[i]

        # Recorded as an op of all its inputs, so open tapes can differentiate it again.
        return {id(s): record(component(i), *inputs) for i, s in enumerate(reached.values())}
