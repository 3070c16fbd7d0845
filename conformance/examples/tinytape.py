"""tinytape: a deliberately tiny reverse-mode autodiff library (NumPy arrays, one tape class).

It stands in for *your* library in the conformance suite's worked example: it has tensors
with Python arithmetic, named ops and a TensorFlow-style ``GradientTape`` (persistent or not,
``stop_recording``, zeros for unconnected sources on request), and nothing else: no Variables,
no forward mode, no tracer, no optimizer, no Jacobians, and gradients are plain NumPy so they
are not differentiable again. tinytape_adapter.py declares exactly those gaps.
"""
from __future__ import annotations

import contextlib

import numpy as np

__version__ = "0.1"


class Tensor:
    """An immutable NumPy array. Ops on tensors are recorded by the tapes that watch an input."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = np.asarray(value)

    @property
    def shape(self):
        return self.value.shape

    # comparisons give plain booleans (for `if`/`while` on values), never recorded
    def __lt__(self, other):
        return self.value < _lift(other, self).value

    def __gt__(self, other):
        return self.value > _lift(other, self).value

    def __repr__(self):
        return f"tinytape.Tensor({self.value!r})"

    # Python arithmetic is the named ops below (defined later in this module), so it is recorded
    def __add__(self, other): return add(self, other)
    def __radd__(self, other): return add(other, self)
    def __sub__(self, other): return subtract(self, other)
    def __rsub__(self, other): return subtract(other, self)
    def __mul__(self, other): return multiply(self, other)
    def __rmul__(self, other): return multiply(other, self)
    def __truediv__(self, other): return divide(self, other)
    def __rtruediv__(self, other): return divide(other, self)
    def __pow__(self, other): return pow(self, other)
    def __rpow__(self, other): return pow(other, self)
    def __neg__(self): return negative(self)


def constant(value, dtype=None):
    return Tensor(np.array(value, dtype=dtype))


def _lift(x, like: Tensor) -> Tensor:
    """A Python number takes the dtype of the tensor it meets."""
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=like.value.dtype))


_open_tapes: list["GradientTape"] = []


class GradientTape:
    def __init__(self, persistent: bool = False):
        self.persistent = persistent
        self._records = []     # (output, inputs, backward) in execution order
        self._watched = {}     # id -> tensor; holding the tensor keeps its id from being reused
        self._used = False
        self._paused = False   # inside stop_recording()

    def __enter__(self):
        _open_tapes.append(self)
        return self

    def __exit__(self, *exc):
        _open_tapes.remove(self)
        return False

    @contextlib.contextmanager
    def stop_recording(self):
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def watch(self, tensors):
        for t in tensors if isinstance(tensors, (list, tuple)) else [tensors]:
            self._watched[id(t)] = t

    def gradient(self, target, sources, output_gradients=None, unconnected_gradients="none"):
        if self._used and not self.persistent:
            raise RuntimeError("a non-persistent GradientTape can compute one gradient only")
        self._used = True
        seed = np.ones_like(target.value) if output_gradients is None else np.asarray(output_gradients.value)
        grads = {id(target): seed.astype(target.value.dtype)}
        with np.errstate(all="ignore"):
            for out, inputs, backward in reversed(self._records):
                g = grads.get(id(out))
                if g is None:
                    continue
                for x, gx in zip(inputs, backward(g)):
                    gx = _unbroadcast(np.asarray(gx, dtype=x.value.dtype), x.shape)
                    grads[id(x)] = grads[id(x)] + gx if id(x) in grads else gx
        listed = isinstance(sources, (list, tuple))
        zero = unconnected_gradients == "zero"
        result = [
            Tensor(grads[id(s)]) if id(s) in grads else Tensor(np.zeros_like(s.value)) if zero else None
            for s in (sources if listed else [sources])
        ]
        return result if listed else result[0]


def _unbroadcast(g, shape):
    """Sum g over the axes NumPy broadcasting added or stretched, back to ``shape``."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def _op(value, inputs, backward) -> Tensor:
    """Make the output tensor and record it on every open tape that watches one of the inputs."""
    out = Tensor(value)
    for tape in _open_tapes:
        if not tape._paused and any(id(x) in tape._watched for x in inputs):
            tape._records.append((out, inputs, backward))
            tape._watched[id(out)] = out
    return out


def _binary(f, df):
    def op(a, b):
        a = _lift(a, b) if isinstance(b, Tensor) else _lift(a, Tensor(np.float32(0)))
        b = _lift(b, a)
        with np.errstate(all="ignore"):
            out = f(a.value, b.value)
        return _op(out, (a, b), lambda g: df(g, a.value, b.value, out))
    return op


def _unary(f, df):
    def op(x):
        x = x if isinstance(x, Tensor) else constant(x, np.float32)
        with np.errstate(all="ignore"):
            out = f(x.value)
        return _op(out, (x,), lambda g: (df(g, x.value, out),))
    return op


def _log_where_positive(a):
    # d(a**b)/db = a**b log a, taken as 0 where log a is undefined (as TensorFlow does)
    return np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0)


add = _binary(np.add, lambda g, a, b, out: (g, g))
subtract = _binary(np.subtract, lambda g, a, b, out: (g, -g))
multiply = _binary(np.multiply, lambda g, a, b, out: (g * b, g * a))
divide = _binary(np.divide, lambda g, a, b, out: (g / b, -g * a / (b * b)))
pow = _binary(np.power, lambda g, a, b, out: (g * b * a ** (b - 1), g * out * _log_where_positive(a)))
matmul = _binary(np.matmul, lambda g, a, b, out: (g @ np.swapaxes(b, -1, -2), np.swapaxes(a, -1, -2) @ g))

negative = _unary(np.negative, lambda g, x, out: -g)
square = _unary(np.square, lambda g, x, out: 2 * x * g)
sqrt = _unary(np.sqrt, lambda g, x, out: g / (2 * out))
exp = _unary(np.exp, lambda g, x, out: g * out)
log = _unary(np.log, lambda g, x, out: g / x)
sin = _unary(np.sin, lambda g, x, out: g * np.cos(x))
cos = _unary(np.cos, lambda g, x, out: -g * np.sin(x))
tanh = _unary(np.tanh, lambda g, x, out: g * (1 - out * out))
abs = _unary(np.abs, lambda g, x, out: g * np.sign(x))
transpose = _unary(np.transpose, lambda g, x, out: np.transpose(g))


def _reduction(f, scale):
    """reduce_sum / reduce_mean over one axis or (axis=None) all of them: the gradient spreads
    g back over the reduced axis, times ``scale(x, axis)``."""
    def op(x, axis=None):
        def backward(g):
            g = g if axis is None else np.expand_dims(g, axis)
            return (np.broadcast_to(g * scale(x.value, axis), x.shape),)
        return _op(f(x.value, axis=axis), (x,), backward)
    return op


reduce_sum = _reduction(np.sum, lambda x, axis: 1)
reduce_mean = _reduction(np.mean, lambda x, axis: 1 / (x.size if axis is None else x.shape[axis]))
norm = _unary(np.linalg.norm, lambda g, x, out: g * x / out)


def stop_gradient(x: Tensor) -> Tensor:
    return Tensor(x.value)  # a new, unwatched tensor: no tape records anything through it
