"""The public op functions: argument conversion and checking around the primitives of rules.py.

Operands that are not Tensors (Python numbers, numpy arrays, lists) take the dtype of the Tensor
operand. Two Tensors of different dtypes are an error: dualad never promotes float32 to float64
silently (as TensorFlow). Float-only ops (sin, exp, ...) refuse integer tensors.
"""
import builtins

import numpy as np

from . import _core
from ._core import Tensor, Variable, binary, convert_to_tensor
from .rules import DECLARATIONS, PRIMITIVES as _P, swap_last
from .shapes import index_key, normalize_axes

_float_tensor = _core.float_tensor


def _same_dtype(opname, *tensors):
    first = tensors[0]
    for t in tensors[1:]:
        if t.dtype != first.dtype:
            raise TypeError(f"{opname}: operands have different dtypes, {first.dtype.name} and "
                            f"{t.dtype.name}; use dualad.cast on one of them")


# ---- elementwise ops generated from their declarations in rules.py ----------------------------

def _generated(decl):
    prim = decl.primitive
    if decl.wrapper == "float_unary":
        op = _core.float_unary_op(prim, prim.name)
    elif decl.wrapper == "unary":
        op = _core.unary_op(prim)
    elif decl.wrapper == "binary":
        op = _core.binary_op(prim)
    else:
        raise ValueError(f"{prim.name}: unknown wrapper form {decl.wrapper!r}")
    op.__name__ = op.__qualname__ = decl.export
    op.__doc__ = decl.doc
    op.__module__ = __name__
    return op


# every declaration with a wrapper form gets its public op here; the others are written below
GENERATED = {d.export: _generated(d) for d in DECLARATIONS.values() if d.wrapper is not None}
globals().update(GENERATED)
truediv = divide  # noqa: F821 - generated above


def logical_not(x, name=None):
    """Elementwise not of a bool tensor (other values are converted to bool); not
    differentiable.

    >>> dualad.logical_not(dualad.constant([True, False]))  # [False, True]
    """
    return _P["logical_not"](convert_to_tensor(x, _core.as_dtype("bool")))


def cast(x, dtype, name=None):
    """x converted to `dtype`. Gradients flow between float dtypes only."""
    x = convert_to_tensor(x)
    dtype = _core.as_dtype(dtype).np
    if x.dtype == dtype:
        return x
    return _P["cast"](x, dtype=dtype)


def where(condition, x=None, y=None, name=None):
    """Elements of x where condition holds, of y elsewhere (broadcasting).

    Gradients of the branch not taken are zero, but a NaN or infinite derivative inside that
    branch still poisons the result (0 * inf): compute the branch on safe inputs, e.g.
    where(x > 0, sqrt(where(x > 0, x, 1)), 0)."""
    if x is None or y is None:
        raise ValueError("where: give both x and y (the one-argument form is not supported)")
    condition = convert_to_tensor(condition)
    if condition.dtype.np.kind != "b":
        raise TypeError(f"where: the condition must be a bool tensor, got {condition.dtype.name}")
    if isinstance(x, Tensor) or not isinstance(y, Tensor):
        x = convert_to_tensor(x)
        y = y if isinstance(y, Tensor) else _core.like(y, x)
    else:
        x = _core.like(x, y)
    _same_dtype("where", x, y)
    return _P["where"](condition, x, y)


def clip_by_value(t, clip_value_min, clip_value_max, name=None):
    """t limited to [min, max]; the gradient passes where min <= t <= max."""
    return minimum(maximum(t, clip_value_min), clip_value_max)


clip = clip_by_value


def add_n(inputs, name=None):
    """The sum of a list of tensors of one shape and dtype."""
    inputs = list(inputs)
    if not inputs:
        raise ValueError("add_n: needs at least one tensor")
    total = convert_to_tensor(inputs[0])
    for t in inputs[1:]:
        total = add(total, t)
    return total


# ---- reductions -------------------------------------------------------------------------------


def _axis_param(x, axis):
    # always explicit (never None), so that rules can shift axes past a tangent batch axis
    return normalize_axes(axis, x.ndim)


def _reduce(name):
    prim = _P[name]

    def op(input_tensor, axis=None, keepdims=False, name=None):
        x = convert_to_tensor(input_tensor)
        return prim(x, axis=_axis_param(x, axis), keepdims=bool(keepdims))

    op.__name__ = op.__qualname__ = name
    return op


reduce_sum = _reduce("reduce_sum")
reduce_max = _reduce("reduce_max")
reduce_min = _reduce("reduce_min")
reduce_all = _reduce("reduce_all")
reduce_any = _reduce("reduce_any")
reduce_sum.__doc__ = "Sum over `axis` (all axes when None)."
reduce_max.__doc__ = "Maximum over `axis`; tied maxima share the gradient equally."
reduce_min.__doc__ = "Minimum over `axis`; tied minima share the gradient equally."
reduce_all.__doc__ = """Logical and over `axis` (all axes when None) of a bool tensor; not differentiable.

    >>> dualad.reduce_all(dualad.constant([[True, False], [True, True]]), axis=1)  # [False, True]
    """
reduce_any.__doc__ = """Logical or over `axis` (all axes when None) of a bool tensor; not differentiable.

    >>> dualad.reduce_any(dualad.constant([[True, False], [False, False]]), axis=1)  # [True, False]
    """


def reduce_logsumexp(input_tensor, axis=None, keepdims=False, name=None):
    """log(sum(exp(x))) over `axis`, computed stably."""
    x = _float_tensor(input_tensor, "reduce_logsumexp")
    return _P["reduce_logsumexp"](x, axis=_axis_param(x, axis), keepdims=bool(keepdims))


logsumexp = reduce_logsumexp


def reduce_mean(input_tensor, axis=None, keepdims=False, name=None):
    """Mean over `axis` (all axes when None)."""
    x = convert_to_tensor(input_tensor)
    axes = normalize_axes(axis, x.ndim)
    count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    return divide(reduce_sum(x, axis=axis, keepdims=keepdims), count)


def norm(tensor, ord="euclidean", axis=None, keepdims=False, name=None):
    """Vector norm over `axis` (all elements when None): 'euclidean' (= 'fro' = 2), 1 or inf.
    The gradient of the euclidean norm at 0 is 0."""
    x = _float_tensor(tensor, "norm")
    if ord in ("euclidean", "fro", 2, 2.0):
        if ord == 2 and axis is not None and np.ndim(axis) == 1 and len(axis) == 2:
            raise ValueError("norm: the spectral (ord=2) matrix norm is not supported")
        return _P["norm"](x, axis=_axis_param(x, axis), keepdims=bool(keepdims))
    if ord == 1:
        return reduce_sum(abs(x), axis=axis, keepdims=keepdims)
    if ord == np.inf:
        return reduce_max(abs(x), axis=axis, keepdims=keepdims)
    raise ValueError(f"norm: ord must be 'euclidean', 'fro', 1, 2 or inf, got {ord!r}")


def softmax(logits, axis=-1, name=None):
    """exp(x) / sum(exp(x)) along `axis`, computed stably."""
    x = _float_tensor(logits, "softmax")
    return _P["softmax"](x, axis=normalize_axes(axis, x.ndim)[0])


def log_softmax(logits, axis=-1, name=None):
    """x - logsumexp(x) along `axis`."""
    x = _float_tensor(logits, "log_softmax")
    return _P["log_softmax"](x, axis=normalize_axes(axis, x.ndim)[0])


def argmax(input, axis=0, name=None):
    """The index of the largest value along `axis` (int64, that axis removed); not
    differentiable. Ties give the first index.

    >>> dualad.argmax(dualad.constant([[1.0, 3.0], [4.0, 2.0]]), axis=1)  # [1, 0]
    """
    x = convert_to_tensor(input)
    return _P["argmax"](x, axis=normalize_axes(axis, x.ndim)[0])


def argmin(input, axis=0, name=None):
    """The index of the smallest value along `axis` (int64, that axis removed); not
    differentiable. Ties give the first index.

    >>> dualad.argmin(dualad.constant([[1.0, 3.0], [4.0, 2.0]]), axis=1)  # [0, 1]
    """
    x = convert_to_tensor(input)
    return _P["argmin"](x, axis=normalize_axes(axis, x.ndim)[0])


# ---- linear algebra ---------------------------------------------------------------------------


def matmul(a, b, transpose_a=False, transpose_b=False, name=None):
    """Matrix product with numpy's rules: batch axes broadcast, 1-D operands are vectors."""
    a = convert_to_tensor(a)
    b = b if isinstance(b, Tensor) else _core.like(b, a)
    _same_dtype("matmul", a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have rank >= 1, got shapes {a.shape} and "
                         f"{b.shape}; use multiply for scalars")
    given = (a.shape, b.shape)
    if transpose_a:
        a = swap_last(a)
    if transpose_b:
        b = swap_last(b)
    inner_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if (a.ndim > 1 or b.ndim > 1) and a.shape[-1] != inner_b:
        raise ValueError(f"matmul: {_matmul_shapes(given, transpose_a, transpose_b)} are "
                         f"incompatible: inner dimensions {a.shape[-1]} and {inner_b} differ")
    if a.ndim > 2 or b.ndim > 2:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: {_matmul_shapes(given, transpose_a, transpose_b)} are "
                             f"incompatible: batch dimensions {a.shape[:-2]} and "
                             f"{b.shape[:-2]} do not broadcast") from None
    if a.ndim == 1 and b.ndim == 1:
        if a.shape != b.shape:
            raise ValueError(f"matmul: vectors of different lengths, shapes {a.shape} and {b.shape}")
        return reduce_sum(multiply(a, b))
    if a.ndim == 1:
        out = _P["matmul"](reshape(a, (1, a.shape[0])), b)
        return reshape(out, out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        out = _P["matmul"](a, reshape(b, (b.shape[0], 1)))
        return reshape(out, out.shape[:-1])
    return _P["matmul"](a, b)


def _matmul_shapes(given, transpose_a, transpose_b):
    flags = (f" (transpose_a={transpose_a}, transpose_b={transpose_b})"
             if transpose_a or transpose_b else "")
    return f"shapes {given[0]} and {given[1]}{flags}"


# ---- shapes -----------------------------------------------------------------------------------


def reshape(tensor, shape, name=None):
    """`tensor` with the same values in `shape` (one entry may be -1: inferred). Same
    dtype; the gradient is reshaped back.

    >>> dualad.reshape(dualad.constant([1.0, 2.0, 3.0, 4.0]), (2, -1)).shape  # (2, 2)
    """
    x = convert_to_tensor(tensor)
    shape = tuple(int(d) for d in np.asarray(shape, dtype=np.int64).reshape(-1))
    if shape == x.shape:
        return x
    return _P["reshape"](x, shape=shape)


def broadcast_to(input, shape, name=None):
    """`input` broadcast to `shape` (numpy's rules); the gradient sums back over the
    broadcast axes. Same dtype.

    >>> dualad.broadcast_to(dualad.constant([1.0, 2.0]), (3, 2)).shape  # (3, 2)
    """
    x = convert_to_tensor(input)
    shape = tuple(int(d) for d in shape)
    if shape == x.shape:
        return x
    return _P["broadcast_to"](x, shape=shape)


def transpose(a, perm=None, name=None):
    """Permute axes (reverse them when perm is None)."""
    x = convert_to_tensor(a)
    if perm is None:
        return _P["transpose"](x, perm=tuple(range(x.ndim - 1, -1, -1)))
    perm = tuple(int(p) for p in perm)
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"transpose: perm {perm} is not a permutation of the {x.ndim} axes of "
                         f"a tensor of shape {x.shape}")
    return _P["transpose"](x, perm=perm)


def expand_dims(input, axis, name=None):
    """`input` with a new axis of length 1 inserted at `axis` (negative counts from the
    end of the result). Same values and dtype.

    >>> dualad.expand_dims(dualad.constant([1.0, 2.0]), 0).shape  # (1, 2)
    """
    x = convert_to_tensor(input)
    ndim = x.ndim + 1
    if not -ndim <= int(axis) < ndim:
        raise ValueError(f"expand_dims: axis {axis} is out of range for a result of rank {ndim}")
    axis = int(axis) % ndim
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(input, axis=None, name=None):
    """`input` without the axes of length 1 listed in `axis` (all of them when None);
    ValueError if a listed axis is not of length 1. Same values and dtype.

    >>> dualad.squeeze(dualad.zeros((1, 3, 1))).shape  # (3,)
    """
    x = convert_to_tensor(input)
    axes = tuple(i for i, d in enumerate(x.shape) if d == 1) if axis is None \
        else normalize_axes(axis, x.ndim)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} of shape {x.shape} has size {x.shape[a]}, not 1")
    return reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def concat(values, axis, name=None):
    """Join tensors of one rank and dtype along an existing axis."""
    values = [convert_to_tensor(v) for v in values]
    if not values:
        raise ValueError("concat: needs at least one tensor")
    _same_dtype("concat", *values)
    ranks = {v.ndim for v in values}
    if len(ranks) != 1 or 0 in ranks:
        raise ValueError(f"concat: tensors must share a rank >= 1, got shapes "
                         f"{[v.shape for v in values]}")
    axis = normalize_axes(axis, values[0].ndim)[0]
    if len(values) == 1:
        return values[0]
    return _P["concat"](*values, axis=axis)


def stack(values, axis=0, name=None):
    """Join tensors of one shape and dtype along a new axis."""
    values = [convert_to_tensor(v) for v in values]
    if not values:
        raise ValueError("stack: needs at least one tensor")
    shapes = {v.shape for v in values}
    if len(shapes) != 1:
        raise ValueError(f"stack: tensors must share a shape, got {[v.shape for v in values]}")
    return concat([expand_dims(v, axis) for v in values], axis)


def _stack_converted(values, dtype=None):
    """convert_to_tensor of a (nested) list holding Tensors: a recorded stack. Plain numbers
    take the dtype of the first Tensor (or `dtype`)."""
    values = [_stack_converted(v, dtype) if isinstance(v, (list, tuple)) and _holds_tensor(v)
              else v for v in values]
    if dtype is None:
        dtype = next(v.dtype for v in values if isinstance(v, Tensor))
    return stack([cast(v, dtype) if isinstance(v, Tensor) else convert_to_tensor(v, dtype)
                  for v in values])


def _holds_tensor(seq):
    return builtins.any(isinstance(v, Tensor) or
                        (isinstance(v, (list, tuple)) and _holds_tensor(v)) for v in seq)


def _index_value(key):
    """Tensors inside an index become Python ints or numpy arrays."""
    if isinstance(key, Tensor):
        v = np.asarray(key)
        return int(v) if v.ndim == 0 and v.dtype.kind in "iu" else v
    if isinstance(key, tuple):
        return tuple(_index_value(k) for k in key)
    if isinstance(key, list):
        return np.asarray([_index_value(k) for k in key])
    return index_key(key)


def getitem(x, key):
    """x[key] with numpy's basic and advanced indexing; the gradient scatters back."""
    x = convert_to_tensor(x)
    key = _index_value(key)
    try:
        np.empty(x.shape, dtype=np.bool_)[key]
    except IndexError as e:
        raise IndexError(f"index {key!r} is invalid for a tensor of shape {x.shape}: {e}") from None
    return _P["getitem"](x, key=key)


# ---- creation ---------------------------------------------------------------------------------


def constant(value, dtype=None, shape=None, name=None):
    """A Tensor holding `value` (copied). Python floats become float32, ints int32."""
    t = convert_to_tensor(value.numpy() if isinstance(value, Tensor) else value, dtype)
    if shape is not None:
        shape = tuple(int(d) for d in shape)
        if t.shape != shape:
            if t.size != 1 and t.size != int(np.prod(shape)):
                raise ValueError(f"constant: cannot make a tensor of shape {shape} from a value "
                                 f"of shape {t.shape}")
            raw = np.broadcast_to(np.asarray(t), shape) if t.size == 1 \
                else np.asarray(t).reshape(shape)
            t = _core.wrap(np.array(raw))
    return t


def _shape_tuple(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in shape)


def _filled(shape, dtype, value):
    dtype = _core.as_dtype(dtype if dtype is not None else _core.DEFAULT_FLOAT).np
    shape = _shape_tuple(shape)
    if shape == () and dtype.kind == "f":
        return _core.scalar(value, dtype)
    return _core.wrap(np.full(shape, value, dtype=dtype))


def zeros(shape, dtype=None, name=None):
    """A tensor of zeros of `shape` and `dtype` (default float32). Not recorded by tapes.

    >>> dualad.zeros((2, 2), dualad.int32)
    """
    return _filled(shape, dtype, 0)


def ones(shape, dtype=None, name=None):
    """A tensor of ones of `shape` and `dtype` (default float32). Not recorded by tapes.

    >>> dualad.ones((2, 2), dualad.float64)
    """
    return _filled(shape, dtype, 1)


def fill(dims, value, name=None):
    """A tensor of shape `dims` filled with `value`, in value's dtype (a Python float gives
    float32). Not recorded by tapes.

    >>> dualad.fill((2, 3), 9.0)  # 2×3 float32 of 9
    """
    v = convert_to_tensor(value)
    return _filled(dims, v.dtype, np.asarray(v))


def zeros_like(input, dtype=None, name=None):
    """Zeros with the shape of `input` and its dtype (or `dtype`). Not recorded by tapes.

    >>> dualad.zeros_like(dualad.constant([1.0, 2.0]))  # [0., 0.]
    """
    return _core.filled_like(convert_to_tensor(input), 0.0, dtype)


def ones_like(input, dtype=None, name=None):
    """Ones with the shape of `input` and its dtype (or `dtype`). Not recorded by tapes.

    >>> dualad.ones_like(dualad.constant([1.0, 2.0]))  # [1., 1.]
    """
    return _core.filled_like(convert_to_tensor(input), 1.0, dtype)


def shape(input, name=None):
    """The shape of `input` as a 1-d int32 tensor (`input.shape` gives a tuple).

    >>> dualad.shape(dualad.zeros((2, 3)))  # [2, 3]
    """
    return convert_to_tensor(np.asarray(convert_to_tensor(input).shape, dtype=np.int32))


def size(input, name=None):
    """The number of elements of `input` as a 0-d int32 tensor.

    >>> dualad.size(dualad.zeros((2, 3)))  # 6
    """
    return convert_to_tensor(np.int32(convert_to_tensor(input).size))


def rank(input, name=None):
    """The number of dimensions of `input` as a 0-d int32 tensor.

    >>> dualad.rank(dualad.zeros((2, 3)))  # 2
    """
    return convert_to_tensor(np.int32(convert_to_tensor(input).ndim))


# ---- numpy dispatch: numpy functions applied to tensors run these ops ------------------------

def _np_sum(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    _no_numpy_extras("sum", dtype, out, kwargs)
    return reduce_sum(a, axis=axis, keepdims=keepdims)


def _np_mean(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    _no_numpy_extras("mean", dtype, out, kwargs)
    return reduce_mean(a, axis=axis, keepdims=keepdims)


def _np_max(a, axis=None, out=None, keepdims=False, **kwargs):
    _no_numpy_extras("max", None, out, kwargs)
    return reduce_max(a, axis=axis, keepdims=keepdims)


def _np_min(a, axis=None, out=None, keepdims=False, **kwargs):
    _no_numpy_extras("min", None, out, kwargs)
    return reduce_min(a, axis=axis, keepdims=keepdims)


def _no_numpy_extras(name, dtype, out, kwargs):
    if dtype is not None or out is not None or kwargs:
        raise TypeError(f"numpy.{name} on dualad tensors takes only axis and keepdims")


def _np_dot(a, b):
    a, b = convert_to_tensor(a), convert_to_tensor(b)
    if a.ndim <= 2 and b.ndim <= 2 and a.ndim and b.ndim:
        return matmul(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    raise TypeError("numpy.dot of tensors of rank > 2 is not supported; use dualad.matmul")


def _np_norm(x, ord=None, axis=None, keepdims=False):
    return norm(x, ord="euclidean" if ord is None else ord, axis=axis, keepdims=keepdims)


# a declaration naming an export this module lacks would leave a name or a ufunc unwired
_unwritten = sorted(d.export for d in DECLARATIONS.values()
                    if d.export is not None and not callable(globals().get(d.export)))
if _unwritten:
    raise ImportError(f"dualad.ops: declared public ops with no function here: {_unwritten}")
_unexported = sorted(n for n, d in DECLARATIONS.items() if d.ufuncs and d.export is None)
if _unexported:
    raise ImportError(f"dualad.ops: primitives with numpy ufuncs but no public op: {_unexported}")

# numpy ufuncs on tensors run the public op their primitive's declaration names
UFUNCS = {ufunc: globals()[d.export] for d in DECLARATIONS.values() for ufunc in d.ufuncs}

ARRAY_FUNCTIONS = {
    np.sum: _np_sum, np.mean: _np_mean, np.max: _np_max, np.amax: _np_max, np.min: _np_min,
    np.amin: _np_min, np.dot: _np_dot, np.linalg.norm: _np_norm,
    np.transpose: lambda a, axes=None: transpose(a, axes),
    np.reshape: lambda a, shape=None, **kw: reshape(a, shape if shape is not None else kw["newshape"]),
    np.where: lambda c, x=None, y=None: where(c, x, y),
    np.clip: lambda a, a_min, a_max: clip_by_value(a, a_min, a_max),
    np.concatenate: lambda arrays, axis=0: concat(arrays, axis),
    np.stack: lambda arrays, axis=0: stack(arrays, axis),
    np.squeeze: lambda a, axis=None: squeeze(a, axis),
    np.expand_dims: lambda a, axis: expand_dims(a, axis),
    np.broadcast_to: lambda a, shape: broadcast_to(a, shape),
}

# the ops the core calls itself (Tensor methods and conversions)
CORE_FUNCTIONS = {"matmul": matmul, "getitem": getitem, "reduce_sum": reduce_sum,
                  "transpose": transpose, "identity": identity,  # noqa: F821 - generated
                  "stack_converted": _stack_converted}
