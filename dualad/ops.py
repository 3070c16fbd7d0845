"""The public op functions: argument conversion and checking around the primitives of rules.py.

Operands that are not Tensors (Python numbers, numpy arrays, lists) take the dtype of the Tensor
operand. Two Tensors of different dtypes are an error: dualad never promotes float32 to float64
silently (as TensorFlow). Float-only ops (sin, exp, ...) refuse integer tensors.
"""
from __future__ import annotations  # the signatures show the aliases (TensorLike, ...) by name

import builtins
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from . import _core
from ._core import DType, Tensor, convert_to_tensor
from .rules import DECLARATIONS, PRIMITIVES as _P, swap_last
from .shapes import TensorShape, axis_index, index_key, int_tuple, int_value, normalize_axes

if TYPE_CHECKING:  # the ops generated below, as type checkers see them (tools/generate_op_stub.py)
    from ._generated_ops import *  # noqa: F401,F403

# What the ops accept as a tensor: they convert numbers, numpy arrays and scalars, and (nested)
# lists and tuples of them.
TensorLike = (Tensor | float | int | builtins.bool | np.ndarray | np.generic | list[Any]
              | tuple[Any, ...])
# A dtype argument: a DType, a numpy dtype or type, or a name ("float32").
DTypeLike = DType | np.dtype | type | str | None
# An axis argument of the reductions: one axis, several, or all (None).
Axis = int | Sequence[int] | None
# A shape argument: a TensorShape, a sequence of ints (or int tensors), or a 1-D int tensor.
ShapeLike = TensorShape | Sequence[Any] | Tensor | np.ndarray



class _Reduction(Protocol):
    """The signature of reduce_sum, reduce_max, ... (made by _reduce)."""
    def __call__(self, input_tensor: TensorLike, axis: Axis = None, keepdims: bool = False,
                 name: str | None = None) -> Tensor: ...


class _Scan(Protocol):
    """The signature of cumsum and cumprod (made by _scan)."""
    def __call__(self, x: TensorLike, axis: int = 0, exclusive: bool = False,
                 reverse: bool = False, name: str | None = None) -> Tensor: ...


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


def logical_not(x: TensorLike, name: str | None = None) -> Tensor:
    """Elementwise not of a bool tensor (other values are converted to bool); not
    differentiable.

    >>> dualad.logical_not(dualad.constant([True, False]))  # [False, True]
    """
    return _P["logical_not"](convert_to_tensor(x))  # non-bool: numpy's truth value, as logical_and


def cast(x: TensorLike, dtype: DTypeLike, name: str | None = None) -> Tensor:
    """x converted to `dtype`. Gradients flow between float dtypes only."""
    x = convert_to_tensor(x)
    dtype = _core.as_dtype(dtype).np
    if x.dtype == dtype:
        return x
    return _P["cast"](x, dtype=dtype)


def where(condition: TensorLike, x: TensorLike | None = None, y: TensorLike | None = None,
          name: str | None = None) -> Tensor:
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


def clip_by_value(t: TensorLike, clip_value_min: TensorLike, clip_value_max: TensorLike,
                  name: str | None = None) -> Tensor:
    """t limited to [min, max]; the gradient passes where min <= t <= max."""
    return minimum(maximum(t, clip_value_min), clip_value_max)


clip = clip_by_value


def add_n(inputs: Sequence[TensorLike], name: str | None = None) -> Tensor:
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


def _reduce(name: str) -> _Reduction:
    prim = _P[name]

    def op(input_tensor: TensorLike, axis: Axis = None, keepdims: bool = False,
           name: str | None = None) -> Tensor:
        x = convert_to_tensor(input_tensor)
        return prim(x, axis=_axis_param(x, axis), keepdims=bool(keepdims))

    op.__name__ = op.__qualname__ = name
    return op


reduce_sum = _reduce("reduce_sum")
reduce_max = _reduce("reduce_max")
reduce_min = _reduce("reduce_min")


def _bool_reduce(name: str) -> _Reduction:
    prim = _P[name]

    def op(input_tensor: TensorLike, axis: Axis = None, keepdims: bool = False,
           name: str | None = None) -> Tensor:
        x = convert_to_tensor(input_tensor)
        if x.dtype.np.kind != "b":
            # as TensorFlow: numpy's truth value of a float would hide a forgotten comparison
            raise TypeError(f"{op.__name__}: expected a bool tensor, got dtype {x.dtype.name} "
                            "(compare it first, e.g. dualad.not_equal(x, 0))")
        return prim(x, axis=_axis_param(x, axis), keepdims=bool(keepdims))

    op.__name__ = op.__qualname__ = name
    return op


reduce_all = _bool_reduce("reduce_all")
reduce_any = _bool_reduce("reduce_any")
reduce_sum.__doc__ = "Sum over `axis` (all axes when None)."
reduce_max.__doc__ = "Maximum over `axis`; tied maxima share the gradient equally."
reduce_min.__doc__ = "Minimum over `axis`; tied minima share the gradient equally."
reduce_all.__doc__ = """Logical and over `axis` (all axes when None) of a bool tensor; not differentiable.

    >>> dualad.reduce_all(dualad.constant([[True, False], [True, True]]), axis=1)  # [False, True]
    """
reduce_any.__doc__ = """Logical or over `axis` (all axes when None) of a bool tensor; not differentiable.

    >>> dualad.reduce_any(dualad.constant([[True, False], [False, False]]), axis=1)  # [True, False]
    """


def reduce_logsumexp(input_tensor: TensorLike, axis: Axis = None, keepdims: bool = False,
                     name: str | None = None) -> Tensor:
    """log(sum(exp(x))) over `axis`, computed stably."""
    x = _float_tensor(input_tensor, "reduce_logsumexp")
    return _P["reduce_logsumexp"](x, axis=_axis_param(x, axis), keepdims=bool(keepdims))


logsumexp = reduce_logsumexp


def reduce_mean(input_tensor: TensorLike, axis: Axis = None, keepdims: bool = False,
                name: str | None = None) -> Tensor:
    """Mean over `axis` (all axes when None)."""
    x = convert_to_tensor(input_tensor)
    dims = tuple(x.shape)
    # (Python ints: np.prod of a list costs more than the reduction of a small tensor)
    count = math.prod([dims[a] for a in normalize_axes(axis, len(dims))])
    return divide(reduce_sum(x, axis=axis, keepdims=keepdims), count)


def norm(tensor: TensorLike, ord: str | float = "euclidean", axis: Axis = None,
         keepdims: bool = False, name: str | None = None) -> Tensor:
    """Vector norm over `axis` (all elements when None): 'euclidean' (= 'fro' = 2), 1 or inf.
    The gradient of the euclidean norm at 0 is 0."""
    x = _float_tensor(tensor, "norm")
    if axis is None and type(ord) is str and ord == "euclidean" and keepdims is False:
        # the common call, norm(x): every axis, nothing to check (the same primitive call)
        return _P["norm"](x, axis=normalize_axes(None, x.ndim), keepdims=False)
    if ord in ("euclidean", "fro", 2, 2.0):
        if (ord == 2 and axis is not None and np.ndim(axis) == 1
                and len(axis) == 2):  # type: ignore[arg-type]  # a sequence: its ndim is 1
            raise ValueError("norm: the spectral (ord=2) matrix norm is not supported")
        return _P["norm"](x, axis=_axis_param(x, axis), keepdims=bool(keepdims))
    if ord == 1:
        return reduce_sum(abs(x), axis=axis, keepdims=keepdims)
    if ord == np.inf:
        return reduce_max(abs(x), axis=axis, keepdims=keepdims)
    raise ValueError(f"norm: ord must be 'euclidean', 'fro', 1, 2 or inf, got {ord!r}")


def softmax(logits: TensorLike, axis: int = -1, name: str | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, computed stably."""
    x = _float_tensor(logits, "softmax")
    return _P["softmax"](x, axis=normalize_axes(axis, x.ndim)[0])


def log_softmax(logits: TensorLike, axis: int = -1, name: str | None = None) -> Tensor:
    """x - logsumexp(x) along `axis`."""
    x = _float_tensor(logits, "log_softmax")
    return _P["log_softmax"](x, axis=normalize_axes(axis, x.ndim)[0])


def _index_dtype(fname, output_type):
    """output_type of argmax/argmin as a numpy dtype: int32 or int64, else TypeError."""
    try:
        dtype = _core.as_dtype(output_type).np if output_type is not None else None
    except TypeError:
        dtype = None
    if dtype not in (np.dtype(np.int32), np.dtype(np.int64)):
        raise TypeError(f"{fname}: output_type must be int32 or int64, got {output_type!r}")
    return dtype


def argmax(input: TensorLike, axis: int | None = 0, output_type: DTypeLike = "int64",
           name: str | None = None) -> Tensor:
    """The index of the largest value along `axis` (int64, or int32 by `output_type`; that axis
    removed); not differentiable. Ties give the first index.

    >>> dualad.argmax(dualad.constant([[1.0, 3.0], [4.0, 2.0]]), axis=1)  # [1, 0]
    """
    x = convert_to_tensor(input)
    dtype = _index_dtype("argmax", output_type)
    return cast(_P["argmax"](x, axis=normalize_axes(axis, x.ndim)[0]), dtype)


def argmin(input: TensorLike, axis: int | None = 0, output_type: DTypeLike = "int64",
           name: str | None = None) -> Tensor:
    """The index of the smallest value along `axis` (int64, or int32 by `output_type`; that
    axis removed); not differentiable. Ties give the first index.

    >>> dualad.argmin(dualad.constant([[1.0, 3.0], [4.0, 2.0]]), axis=1)  # [0, 1]
    """
    x = convert_to_tensor(input)
    dtype = _index_dtype("argmin", output_type)
    return cast(_P["argmin"](x, axis=normalize_axes(axis, x.ndim)[0]), dtype)


# ---- linear algebra ---------------------------------------------------------------------------


def matmul(a: TensorLike, b: TensorLike, transpose_a: bool = False, transpose_b: bool = False,
           adjoint_a: bool = False, adjoint_b: bool = False, a_is_sparse: bool = False,
           b_is_sparse: bool = False, output_type: DTypeLike = None,
           name: str | None = None) -> Tensor:
    """Matrix product with numpy's rules: batch axes broadcast, 1-D operands are vectors.
    `transpose_a`/`transpose_b` exchange the last two axes of an operand first;
    `adjoint_a`/`adjoint_b` take its conjugate transpose, which for dualad's real dtypes is
    the same (one of the two per operand). The sparsity hints change nothing."""
    if not isinstance(a, Tensor):
        a = convert_to_tensor(a)
    if not isinstance(b, Tensor):
        b = _core.like(b, a)
    if a.dtype is not b.dtype:      # DTypes are shared constants: `is` is the common case
        _same_dtype("matmul", a, b)
    if adjoint_a or adjoint_b:
        if (transpose_a and adjoint_a) or (transpose_b and adjoint_b):
            raise ValueError("matmul: give transpose_x or adjoint_x, not both")
        transpose_a, transpose_b = transpose_a or adjoint_a, transpose_b or adjoint_b
    if output_type is not None:
        raise ValueError("matmul: output_type is not supported (cast the result)")
    sa, sb = a.shape, b.shape
    if (not (transpose_a or transpose_b) and len(sa) == 2 and 0 < len(sb) < 3
            and sa[1] == sb[0]):
        # matrix times matrix or vector: the primitive directly, no checks beyond these
        if len(sb) == 2:
            return _matmul_p(a, b)
        if len(sb) == 1:
            out = _matmul_p(a, _reshape_p(b, shape=(sb[0], 1)))
            return _reshape_p(out, shape=(sa[0],))
    if len(sa) == 0 or len(sb) == 0:
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
        out = _matmul_p(_reshape_p(a, shape=(1, a.shape[0])), b)
        return _reshape_p(out, shape=tuple(out.shape[:-2] + out.shape[-1:]))
    if b.ndim == 1:
        out = _matmul_p(a, _reshape_p(b, shape=(b.shape[0], 1)))
        return _reshape_p(out, shape=tuple(out.shape[:-1]))
    return _matmul_p(a, b)


_matmul_p, _reshape_p = _P["matmul"], _P["reshape"]


def _compiled(make, general):
    # the core's function taking the common case directly and the rest to `general`, named
    # and documented as it (type checkers read `general`'s annotations)
    op = make(general)
    op.__name__ = op.__qualname__ = general.__name__
    op.__doc__ = general.__doc__
    op.__module__ = __name__
    return op


if not TYPE_CHECKING:
    matmul = _compiled(_core.matmul_op, matmul)


def _matmul_shapes(given, transpose_a, transpose_b):
    flags = (f" (transpose_a={transpose_a}, transpose_b={transpose_b})"
             if transpose_a or transpose_b else "")
    return f"shapes {given[0]} and {given[1]}{flags}"


# ---- shapes -----------------------------------------------------------------------------------


def reshape(tensor: TensorLike, shape: ShapeLike, name: str | None = None) -> Tensor:
    """`tensor` with the same values in `shape` (one entry may be -1: inferred). Same
    dtype; the gradient is reshaped back.

    >>> dualad.reshape(dualad.constant([1.0, 2.0, 3.0, 4.0]), (2, -1)).shape  # (2, 2)
    """
    x = convert_to_tensor(tensor)
    shape = int_tuple(shape, "reshape: the shape")
    if shape == x.shape:
        return x
    return _P["reshape"](x, shape=shape)


def broadcast_to(input: TensorLike, shape: ShapeLike, name: str | None = None) -> Tensor:
    """`input` broadcast to `shape` (numpy's rules); the gradient sums back over the
    broadcast axes. Same dtype.

    >>> dualad.broadcast_to(dualad.constant([1.0, 2.0]), (3, 2)).shape  # (3, 2)
    """
    x = convert_to_tensor(input)
    shape = int_tuple(shape, "broadcast_to: the shape")
    if shape == x.shape:
        return x
    return _P["broadcast_to"](x, shape=shape)


def transpose(a: TensorLike, perm: Sequence[int] | None = None, name: str | None = None) -> Tensor:
    """Permute axes (reverse them when perm is None)."""
    x = convert_to_tensor(a)
    if perm is None:
        return _P["transpose"](x, perm=tuple(range(x.ndim - 1, -1, -1)))
    perm = int_tuple(perm, "transpose: perm")
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"transpose: perm {perm} is not a permutation of the {x.ndim} axes of "
                         f"a tensor of shape {x.shape}")
    return _P["transpose"](x, perm=perm)


if not TYPE_CHECKING:
    transpose = _compiled(_core.transpose_op, transpose)


def expand_dims(input: TensorLike, axis: int, name: str | None = None) -> Tensor:
    """`input` with a new axis of length 1 inserted at `axis` (negative counts from the
    end of the result). Same values and dtype.

    >>> dualad.expand_dims(dualad.constant([1.0, 2.0]), 0).shape  # (1, 2)
    """
    x = convert_to_tensor(input)
    ndim = x.ndim + 1
    axis = axis_index(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"expand_dims: axis {axis} is out of range for a result of rank {ndim}")
    axis = axis % ndim
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(input: TensorLike, axis: Axis = None, name: str | None = None) -> Tensor:
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


def concat(values: Sequence[TensorLike], axis: int, name: str | None = None) -> Tensor:
    """Join tensors of one rank and dtype along an existing axis."""
    tensors = [convert_to_tensor(v) for v in values]
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    _same_dtype("concat", *tensors)
    ranks = {v.ndim for v in tensors}
    if len(ranks) != 1 or 0 in ranks:
        raise ValueError(f"concat: tensors must share a rank >= 1, got shapes "
                         f"{[v.shape for v in tensors]}")
    axis = normalize_axes(axis, tensors[0].ndim)[0]
    if len(tensors) == 1:
        return tensors[0]
    return _P["concat"](*tensors, axis=axis)


def stack(values: Sequence[TensorLike], axis: int = 0, name: str | None = None) -> Tensor:
    """Join tensors of one shape and dtype along a new axis."""
    tensors = [convert_to_tensor(v) for v in values]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = {v.shape for v in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: tensors must share a shape, got {[v.shape for v in tensors]}")
    return concat([expand_dims(v, axis) for v in tensors], axis)


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


def getitem(x: TensorLike, key: Any) -> Tensor:
    """x[key] with numpy's basic and advanced indexing; the gradient scatters back."""
    x = convert_to_tensor(x)
    key = _index_value(key)
    try:
        # numpy checks the key on a view of one bool with every stride 0: x's shape at O(1)
        # memory (numpy's own errors, as on an array of that shape)
        np.broadcast_to(np.False_, x.shape)[key]
    except IndexError as e:
        raise IndexError(f"index {key!r} is invalid for a tensor of shape {x.shape}: {e}") from None
    return _P["getitem"](x, key=key)


# ---- creation ---------------------------------------------------------------------------------


def constant(value: TensorLike, dtype: DTypeLike = None, shape: ShapeLike | None = None,
             name: str | None = None) -> Tensor:
    """A Tensor holding `value` (copied). Python floats become float32, ints int32."""
    t = convert_to_tensor(value.numpy() if isinstance(value, Tensor) else value, dtype)
    if shape is not None:
        shape = int_tuple(shape, "constant: the shape")
        if t.shape != shape:
            if t.size != 1 and t.size != int(np.prod(shape)):
                raise ValueError(f"constant: cannot make a tensor of shape {shape} from a value "
                                 f"of shape {t.shape}")
            raw = np.broadcast_to(np.asarray(t), shape) if t.size == 1 \
                else np.asarray(t).reshape(shape)
            t = _core.wrap(np.array(raw))
    return t


def _filled(shape, dtype, value):
    dtype = _core.as_dtype(dtype if dtype is not None else _core.DEFAULT_FLOAT).np
    shape = int_tuple(shape, "the shape")
    if shape == () and dtype.kind == "f":
        return _core.scalar(value, dtype)
    return _core.wrap(np.full(shape, value, dtype=dtype))


def zeros(shape: ShapeLike | int, dtype: DTypeLike = None, name: str | None = None) -> Tensor:
    """A tensor of zeros of `shape` and `dtype` (default float32). Not recorded by tapes.

    >>> dualad.zeros((2, 2), dualad.int32)
    """
    return _filled(shape, dtype, 0)


def ones(shape: ShapeLike | int, dtype: DTypeLike = None, name: str | None = None) -> Tensor:
    """A tensor of ones of `shape` and `dtype` (default float32). Not recorded by tapes.

    >>> dualad.ones((2, 2), dualad.float64)
    """
    return _filled(shape, dtype, 1)


def fill(dims: ShapeLike, value: TensorLike, name: str | None = None) -> Tensor:
    """A tensor of shape `dims` filled with the scalar `value`, in value's dtype (a Python
    float gives float32). A Tensor value is recorded: its gradient is the sum of the result's
    (as in TensorFlow).

    >>> dualad.fill((2, 3), 9.0)  # 2×3 float32 of 9
    """
    v = convert_to_tensor(value)
    if v.ndim:
        raise ValueError(f"fill: value must be a scalar, got shape {v.shape}")
    if isinstance(value, Tensor):
        return broadcast_to(identity(v), int_tuple(dims, "fill: dims"))  # noqa: F821 - generated
    return _filled(dims, v.dtype, np.asarray(v))


def zeros_like(input: TensorLike, dtype: DTypeLike = None, name: str | None = None) -> Tensor:
    """Zeros with the shape of `input` and its dtype (or `dtype`). Not recorded by tapes.

    >>> dualad.zeros_like(dualad.constant([1.0, 2.0]))  # [0., 0.]
    """
    return _core.filled_like(convert_to_tensor(input), 0.0, dtype)


def ones_like(input: TensorLike, dtype: DTypeLike = None, name: str | None = None) -> Tensor:
    """Ones with the shape of `input` and its dtype (or `dtype`). Not recorded by tapes.

    >>> dualad.ones_like(dualad.constant([1.0, 2.0]))  # [1., 1.]
    """
    return _core.filled_like(convert_to_tensor(input), 1.0, dtype)


def shape(input: TensorLike, name: str | None = None) -> Tensor:
    """The shape of `input` as a 1-d int32 tensor (`input.shape` gives a tuple).

    >>> dualad.shape(dualad.zeros((2, 3)))  # [2, 3]
    """
    return convert_to_tensor(np.asarray(convert_to_tensor(input).shape, dtype=np.int32))


def size(input: TensorLike, name: str | None = None) -> Tensor:
    """The number of elements of `input` as a 0-d int32 tensor.

    >>> dualad.size(dualad.zeros((2, 3)))  # 6
    """
    return convert_to_tensor(np.int32(convert_to_tensor(input).size))


def rank(input: TensorLike, name: str | None = None) -> Tensor:
    """The number of dimensions of `input` as a 0-d int32 tensor.

    >>> dualad.rank(dualad.zeros((2, 3)))  # 2
    """
    return convert_to_tensor(np.int32(convert_to_tensor(input).ndim))


# ---- TensorFlow ops: elementwise, scans, products, einsum ----------------------------------


def _two_floats(name: str, a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Two float tensors of one dtype; a Python or numpy operand takes the other's dtype."""
    if isinstance(a, Tensor) or not isinstance(b, Tensor):
        a = _float_tensor(a, name)
        b = b if isinstance(b, Tensor) else _core.like(b, a)
    else:
        a = _core.like(a, b)
    a, b = _float_tensor(a, name), _float_tensor(b, name)
    _same_dtype(name, a, b)
    return a, b


def atan2(y: TensorLike, x: TensorLike, name: str | None = None) -> Tensor:
    """The angle of the point (x, y) from the positive x axis, in [-pi, pi] (note the order of
    the arguments: y first). Float tensors of one dtype, broadcasting.

    >>> dualad.atan2(dualad.constant(1.0), dualad.constant(-1.0))  # 3*pi/4
    """
    y, x = _two_floats("atan2", y, x)
    return _P["atan2"](y, x)


def _scan(name: str) -> _Scan:
    prim = _P[name]

    def op(x: TensorLike, axis: int = 0, exclusive: bool = False, reverse: bool = False,
           name: str | None = None) -> Tensor:
        x = convert_to_tensor(x)
        if x.dtype.np.kind not in "iuf":
            raise TypeError(f"{prim.name}: needs a numeric tensor, got {x.dtype.name}")
        if x.ndim == 0:
            raise ValueError(f"{prim.name}: needs a tensor of rank >= 1, got a scalar")
        axis = _single_axis(prim.name, axis, x.ndim)
        return prim(x, axis=axis, exclusive=builtins.bool(exclusive),
                    reverse=builtins.bool(reverse))

    op.__name__ = op.__qualname__ = name
    return op


def _single_axis(opname, axis, ndim):
    if np.ndim(axis) != 0 or isinstance(axis, builtins.bool) or \
            np.asarray(axis).dtype.kind not in "iu":
        raise TypeError(f"{opname}: axis must be one integer, got {axis!r}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{opname}: axis {axis} is out of range for a tensor of rank {ndim}")
    return axis % ndim


cumsum = _scan("cumsum")
cumprod = _scan("cumprod")
cumsum.__doc__ = """Running sums along `axis`; `exclusive` leaves out the element itself (the first
    sum is 0), `reverse` runs from the end.

    >>> dualad.cumsum(dualad.constant([1.0, 2.0, 3.0]), exclusive=True)  # [0, 1, 3]
    """
cumprod.__doc__ = """Running products along `axis`; `exclusive` leaves out the element itself (the
    first product is 1), `reverse` runs from the end. Derivatives of every order are exact
    where x has zeros (no division by x).

    >>> dualad.cumprod(dualad.constant([1.0, 2.0, 3.0]), reverse=True)  # [6, 6, 3]
    """


def reduce_prod(input_tensor: TensorLike, axis: Axis = None, keepdims: bool = False,
                name: str | None = None) -> Tensor:
    """Product over `axis` (all axes when None). Derivatives of every order are exact where
    elements are 0 (they multiply the other elements, they do not divide)."""
    x = convert_to_tensor(input_tensor)
    if x.dtype.np.kind not in "iuf":
        raise TypeError(f"reduce_prod: needs a numeric tensor, got {x.dtype.name}")
    return _P["reduce_prod"](x, axis=_axis_param(x, axis), keepdims=builtins.bool(keepdims))


_SUBSCRIPT_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def einsum(equation: str, *inputs: TensorLike, name: str | None = None, **kwargs: Any) -> Tensor:
    """Einstein summation: `equation` names each operand's axes by letters ("ij,jk->ik");
    letters absent from the output are summed over. "..." stands for broadcast axes, and
    without "->" the output is the letters that appear once, in alphabetical order.

    >>> dualad.einsum("ij,j->i", dualad.ones((2, 3)), dualad.constant([1.0, 2.0, 3.0]))  # [6, 6]
    """
    if kwargs:
        raise TypeError(f"einsum: unexpected arguments {sorted(kwargs)}")
    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation must be a string, got {equation!r}")
    if not inputs:
        raise ValueError("einsum: needs at least one operand")
    tensors = [convert_to_tensor(inputs[0])]
    tensors += [v if isinstance(v, Tensor) else _core.like(v, tensors[0]) for v in inputs[1:]]
    _same_dtype("einsum", *tensors)
    if tensors[0].dtype.np.kind not in "iuf":
        raise TypeError(f"einsum: needs numeric tensors, got {tensors[0].dtype.name}")
    specs, output, tensors = _einsum_explicit(equation.replace(" ", ""), tensors)
    return _P["einsum"](*tensors, subscripts=",".join(specs) + "->" + output)


def _einsum_explicit(equation, tensors):
    """The equation with "..." replaced by letters and the output made explicit; operands
    whose axes of one letter differ only by a length of 1 are broadcast (recorded)."""
    if equation.count("->") > 1:
        raise ValueError(f"einsum: {equation!r} has more than one '->'")
    lhs, arrow, out = equation.partition("->")
    specs = lhs.split(",")
    if len(specs) != len(tensors):
        raise ValueError(f"einsum: {equation!r} names {len(specs)} operands, got {len(tensors)}")
    for s in specs + ([out] if arrow else []):
        rest = s.replace("...", "", 1)
        bad = sorted(set(c for c in rest if c not in _SUBSCRIPT_LETTERS))
        if bad:
            raise ValueError(f"einsum: {equation!r}: invalid subscript characters {bad} "
                             f"(letters and one '...' per operand)")
    used = set(c for c in equation if c in _SUBSCRIPT_LETTERS)
    free = [c for c in _SUBSCRIPT_LETTERS if c not in used]
    ranks = []
    for s, t in zip(specs, tensors):
        named = len(s.replace("...", ""))
        if ("..." in s and named > t.ndim) or ("..." not in s and named != t.ndim):
            raise ValueError(f"einsum: subscripts {s!r} do not fit an operand of shape {t.shape}")
        ranks.append(t.ndim - named if "..." in s else 0)
    n_ellipsis = max(ranks)
    if n_ellipsis > len(free):
        raise ValueError(f"einsum: {equation!r} uses too many axes (52 letters in all)")
    ellipsis = "".join(free[:n_ellipsis])
    specs = [s.replace("...", ellipsis[n_ellipsis - r:]) for s, r in zip(specs, ranks)]
    if arrow:
        if n_ellipsis and "..." not in out:
            raise ValueError(f"einsum: {equation!r}: the operands have '...' axes, so the "
                             f"output must name them with '...' too")
        out = out.replace("...", ellipsis)
    else:
        counts = {c: "".join(specs).count(c) for c in set("".join(specs))}
        out = ellipsis + "".join(sorted((c for c, n in counts.items()
                                         if n == 1 and c not in ellipsis),
                                        key=_SUBSCRIPT_LETTERS.index))
    if len(set(out)) != len(out):
        raise ValueError(f"einsum: {equation!r}: the output repeats a subscript")
    missing = sorted(set(out) - set("".join(specs)))
    if missing:
        raise ValueError(f"einsum: {equation!r}: output subscripts {missing} name no input axis")
    sizes = {}
    for s, t in zip(specs, tensors):
        for c, d in zip(s, t.shape):
            known = sizes.setdefault(c, d)
            if known != d and 1 not in (known, d):
                raise ValueError(f"einsum: {equation!r}: subscript {c!r} has lengths {known} "
                                 f"and {d} (shapes {[t.shape for t in tensors]})")
            sizes[c] = builtins.max(known, d)
    out_tensors = []
    for s, t in zip(specs, tensors):
        target = tuple(sizes[c] for c in s)
        if target != t.shape:
            if len(set(s)) != len(s):
                raise ValueError(f"einsum: {equation!r}: a repeated subscript's axes of shape "
                                 f"{t.shape} differ in length")
            t = broadcast_to(t, target)
        out_tensors.append(t)
    return specs, out, out_tensors


# ---- TensorFlow ops: indexing, segments, padding, splitting, creation ---------------------
# Gathers, masks, slices and pads are the getitem primitive (or its transpose, scatter_add)
# with keys checked here: indices out of range raise instead of wrapping around.

_slice = builtins.slice
newaxis = None


def is_tensor(x: object) -> bool:
    """True for a dualad Tensor (Variables included)."""
    return isinstance(x, Tensor)


def _index_array(opname, indices):
    """Integer indices as a numpy array (a copy: the record must not change with the
    caller's array)."""
    if isinstance(indices, Tensor):
        indices = indices.numpy()
    idx = np.array(indices)
    if idx.dtype.kind not in "iu":
        if idx.size == 0 and idx.dtype.kind == "f":
            idx = idx.astype(np.int64)
        else:
            raise TypeError(f"{opname}: indices must be integers, got {idx.dtype.name}")
    if idx.dtype.kind == "u" and idx.size and idx.max() > np.iinfo(np.intp).max:
        # would wrap to a negative index when cast
        raise IndexError(f"{opname}: index {int(idx.max())} is out of range")
    return idx.astype(np.intp, copy=False)


def _check_in_range(opname, idx, length, what):
    if idx.size and (idx.min() < 0 or idx.max() >= length):
        bad = idx[(idx < 0) | (idx >= length)].reshape(-1)[0]
        raise IndexError(f"{opname}: index {int(bad)} is out of range [0, {length}) for {what}")


def _batch_aranges(shape, ndim):
    """Index arrays selecting along the first len(shape) axes, shaped to broadcast against
    an index array of rank ndim (the batch axes of batch_dims)."""
    return tuple(np.arange(d, dtype=np.intp).reshape((1,) * i + (d,) + (1,) * (ndim - i - 1))
                 for i, d in enumerate(shape))


def gather(params: TensorLike, indices: TensorLike, validate_indices: None = None,
           axis: int | None = None, batch_dims: int = 0, name: str | None = None) -> Tensor:
    """Slices of `params` along `axis` at integer `indices`: the result has shape
    params.shape[:axis] + indices.shape[batch_dims:] + params.shape[axis + 1:]. The first
    `batch_dims` axes of params and indices are batch axes, matched one to one. An index
    outside [0, params.shape[axis]) raises IndexError. The gradient scatters back (summing
    over repeated indices); the indices have none.

    >>> dualad.gather(dualad.constant([[1.0, 2.0], [3.0, 4.0]]), [1, 0, 1])  # rows 1, 0, 1
    """
    x = convert_to_tensor(params)
    idx = _index_array("gather", indices)
    batch_dims = int(batch_dims)
    if batch_dims < 0:
        batch_dims += idx.ndim
    if not 0 <= batch_dims <= idx.ndim or batch_dims >= builtins.max(x.ndim, 1):
        raise ValueError(f"gather: batch_dims {batch_dims} must be in [0, {idx.ndim}] (the rank "
                         f"of the indices) and below the rank {x.ndim} of params")
    axis = batch_dims if axis is None else axis_index(axis)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"gather: axis {axis} is out of range for params of shape {x.shape}")
    axis %= x.ndim
    if axis < batch_dims:
        raise ValueError(f"gather: axis {axis} must not be below batch_dims {batch_dims}")
    if x.shape[:batch_dims] != idx.shape[:batch_dims]:
        raise ValueError(f"gather: the batch axes of params {x.shape} and indices {idx.shape} "
                         f"differ (batch_dims={batch_dims})")
    _check_in_range("gather", idx, x.shape[axis], f"axis {axis} of params of shape {x.shape}")
    if batch_dims == 0:
        return _P["getitem"](x, key=(_slice(None),) * axis + (idx,))
    # axis moved next to the batch axes, so that the index arrays of the key are adjacent
    # (numpy then keeps their axes in place)
    perm = tuple(range(batch_dims)) + (axis,) + tuple(
        a for a in range(batch_dims, x.ndim) if a != axis)
    moved = transpose(x, perm)
    out = _P["getitem"](moved, key=_batch_aranges(x.shape[:batch_dims], idx.ndim) + (idx,))
    # out: batch + indices' own axes + params axes [batch_dims, axis) + params axes after axis
    n_idx, n_mid = idx.ndim - batch_dims, axis - batch_dims
    b = batch_dims
    order = (tuple(range(b)) + tuple(range(b + n_idx, b + n_idx + n_mid)) +
             tuple(range(b, b + n_idx)) + tuple(range(b + n_idx + n_mid, out.ndim)))
    return transpose(out, order)


def gather_nd(params: TensorLike, indices: TensorLike, batch_dims: int = 0,
              name: str | None = None) -> Tensor:
    """Slices of `params` at the index tuples in the last axis of `indices`: the result has
    shape indices.shape[:-1] + params.shape[batch_dims + indices.shape[-1]:]. An index out of
    range raises IndexError.

    >>> dualad.gather_nd(dualad.constant([[1.0, 2.0], [3.0, 4.0]]), [[0, 1], [1, 0]])  # [2, 3]
    """
    x = convert_to_tensor(params)
    idx = _index_array("gather_nd", indices)
    batch_dims = int(batch_dims)
    if idx.ndim < 1:
        raise ValueError("gather_nd: indices must have rank >= 1 (index tuples in the last axis)")
    if not 0 <= batch_dims < idx.ndim or x.shape[:batch_dims] != idx.shape[:batch_dims]:
        raise ValueError(f"gather_nd: batch_dims {batch_dims} does not fit params of shape "
                         f"{x.shape} and indices of shape {idx.shape}")
    depth = idx.shape[-1]
    if batch_dims + depth > x.ndim:
        raise ValueError(f"gather_nd: index tuples of length {depth} for params of shape "
                         f"{x.shape} (batch_dims={batch_dims})")
    for j in range(depth):
        a = batch_dims + j
        _check_in_range("gather_nd", idx[..., j], x.shape[a],
                        f"axis {a} of params of shape {x.shape}")
    key = _batch_aranges(x.shape[:batch_dims], idx.ndim - 1) + tuple(
        idx[..., j] for j in range(depth))
    if not key:
        return broadcast_to(x, idx.shape[:-1] + x.shape) if idx.shape[:-1] else x
    return _P["getitem"](x, key=key)


def boolean_mask(tensor: TensorLike, mask: TensorLike, axis: int | None = None,
                 name: str | None = None) -> Tensor:
    """The entries of `tensor` where the bool `mask` holds: mask's k axes match the axes of
    tensor from `axis` (default 0) on and become one axis of the selected entries.

    >>> dualad.boolean_mask(dualad.constant([1.0, 2.0, 3.0]), [True, False, True])  # [1, 3]
    """
    x = convert_to_tensor(tensor)
    m = np.array(mask.numpy() if isinstance(mask, Tensor) else mask)
    if m.dtype.kind != "b":
        raise TypeError(f"boolean_mask: the mask must be bool, got {m.dtype.name}")
    if m.ndim == 0:
        raise ValueError("boolean_mask: the mask must have rank >= 1")
    axis = 0 if axis is None else axis_index(axis)
    if axis < 0:
        axis += x.ndim
    if not 0 <= axis or axis + m.ndim > x.ndim or x.shape[axis:axis + m.ndim] != m.shape:
        raise ValueError(f"boolean_mask: a mask of shape {m.shape} does not match the axes "
                         f"from {axis} of a tensor of shape {x.shape}")
    return _P["getitem"](x, key=(_slice(None),) * axis + (m,))


def slice_(input_: TensorLike, begin: ShapeLike, size: ShapeLike,
           name: str | None = None) -> Tensor:
    """The block of `input_` starting at `begin` with lengths `size` (-1: to the end).
    A block reaching outside the tensor raises ValueError. (dualad.slice)

    >>> dualad.slice(dualad.constant([[1.0, 2.0, 3.0]]), [0, 1], [1, -1])  # [[2, 3]]
    """
    x = convert_to_tensor(input_)
    begin, size = _int_list("slice", begin), _int_list("slice", size)
    if len(begin) != x.ndim or len(size) != x.ndim:
        raise ValueError(f"slice: begin {begin} and size {size} must have one entry per axis "
                         f"of the tensor of shape {x.shape}")
    key = []
    for a, (b, s, d) in enumerate(zip(begin, size, x.shape)):
        end = d if s == -1 else b + s
        if not (0 <= b <= d and s >= -1 and b <= end <= d):
            raise ValueError(f"slice: begin {b}, size {s} is outside axis {a} of length {d}")
        key.append(_slice(b, end))
    return _P["getitem"](x, key=tuple(key))


slice_.__name__ = slice_.__qualname__ = "slice"


def _int_list(opname, values):
    if isinstance(values, Tensor):
        values = values.numpy()
    arr = np.asarray(values)
    if arr.ndim > 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(f"{opname}: expected a list of integers, got {values!r}")
    return [int(v) for v in arr.reshape(-1)]


def split(value: TensorLike, num_or_size_splits: int | Sequence[int] | Tensor, axis: int = 0,
          num: int | None = None, name: str | None = None) -> list[Tensor]:
    """`value` cut along `axis` into a list of tensors: `num_or_size_splits` equal parts (an
    int that divides the axis) or parts of the given sizes (one may be -1: the rest).

    >>> [t.shape for t in dualad.split(dualad.zeros((2, 6)), [1, -1], axis=1)]  # (2, 1), (2, 5)
    """
    x = convert_to_tensor(value)
    if x.ndim == 0:
        raise ValueError("split: cannot split a scalar")
    axis = _single_axis("split", axis, x.ndim)
    length = x.shape[axis]
    if np.ndim(num_or_size_splits) == 0 and not isinstance(num_or_size_splits, Tensor) or \
            isinstance(num_or_size_splits, Tensor) and num_or_size_splits.ndim == 0:
        parts = int_value(num_or_size_splits, "split: the number of parts")  # 0-d (checked)
        if parts <= 0 or length % parts:
            raise ValueError(f"split: {parts} equal parts do not divide axis {axis} of length "
                             f"{length}")
        sizes = [length // parts] * parts
    else:
        sizes = _int_list("split", num_or_size_splits)
        if sizes.count(-1) > 1 or builtins.any(s < -1 for s in sizes):
            raise ValueError(f"split: sizes {sizes} may hold one -1 and no other negative")
        if -1 in sizes:
            rest = length - (builtins.sum(sizes) + 1)
            if rest < 0:
                raise ValueError(f"split: sizes {sizes} exceed axis {axis} of length {length}")
            sizes[sizes.index(-1)] = rest
        if builtins.sum(sizes) != length:
            raise ValueError(f"split: sizes {sizes} do not add up to the length {length} of "
                             f"axis {axis}")
    if num is not None and int(num) != len(sizes):
        raise ValueError(f"split: num={num} but the split gives {len(sizes)} parts")
    out, start = [], 0
    for s in sizes:
        out.append(_P["getitem"](x, key=(_slice(None),) * axis + (_slice(start, start + s),)))
        start += s
    return out


def unstack(value: TensorLike, num: int | None = None, axis: int = 0,
            name: str | None = None) -> list[Tensor]:
    """The tensors of rank r - 1 along `axis` of `value`, as a list.

    >>> [float(t) for t in dualad.unstack(dualad.constant([1.0, 2.0]))]  # [1.0, 2.0]
    """
    x = convert_to_tensor(value)
    if x.ndim == 0:
        raise ValueError("unstack: cannot unstack a scalar")
    axis = _single_axis("unstack", axis, x.ndim)
    if num is not None and int(num) != x.shape[axis]:
        raise ValueError(f"unstack: num={num} but axis {axis} has length {x.shape[axis]}")
    return [_P["getitem"](x, key=(_slice(None),) * axis + (i,)) for i in range(x.shape[axis])]


def tile(input: TensorLike, multiples: ShapeLike, name: str | None = None) -> Tensor:
    """`input` repeated multiples[i] times along each axis i.

    >>> dualad.tile(dualad.constant([1.0, 2.0]), [2])  # [1, 2, 1, 2]
    """
    x = convert_to_tensor(input)
    reps = _int_list("tile", multiples)
    if len(reps) != x.ndim or builtins.any(m < 0 for m in reps):
        raise ValueError(f"tile: multiples {reps} must hold one non-negative entry per axis of "
                         f"the tensor of shape {x.shape}")
    # (d0, d1) -> (1, d0, 1, d1) -> broadcast (m0, d0, m1, d1) -> (m0 * d0, m1 * d1): recorded
    # ops whose gradients sum the copies back
    spread = tuple(v for d in x.shape for v in (1, d))
    target = tuple(v for m, d in zip(reps, x.shape) for v in (m, d))
    return reshape(broadcast_to(reshape(x, spread), target),
                   tuple(m * d for m, d in zip(reps, x.shape)))


def pad(tensor: TensorLike, paddings: TensorLike, mode: str = "CONSTANT",
        constant_values: TensorLike = 0, name: str | None = None) -> Tensor:
    """`tensor` with paddings[i] = [before, after] entries added on each side of axis i:
    `constant_values` (mode CONSTANT), a mirror image without the edge (REFLECT: at most
    length - 1 entries) or with it (SYMMETRIC: at most length).

    >>> dualad.pad(dualad.constant([1.0, 2.0, 3.0]), [[1, 2]], "REFLECT")  # [2, 1, 2, 3, 2, 1]
    """
    x = convert_to_tensor(tensor)
    if isinstance(paddings, Tensor):
        paddings = paddings.numpy()
    pads = np.asarray(paddings)
    if pads.shape != (x.ndim, 2) or (pads.size and pads.dtype.kind not in "iu"):
        raise ValueError(f"pad: paddings must be integers of shape ({x.ndim}, 2) for a tensor "
                         f"of shape {x.shape}, got {paddings!r}")
    pads = [(int(b), int(a)) for b, a in pads.reshape(-1, 2)]
    if builtins.any(b < 0 or a < 0 for b, a in pads):
        raise ValueError(f"pad: paddings must be non-negative, got {pads}")
    mode = str(mode).upper()
    if mode == "CONSTANT":
        shape = tuple(b + d + a for (b, a), d in zip(pads, x.shape))
        key = tuple(_slice(b, b + d) for (b, a), d in zip(pads, x.shape))
        out = _P["scatter_add"](x, shape=shape, key=key) if shape != x.shape else x
        fill_value = np.asarray(constant_values.numpy() if isinstance(constant_values, Tensor)
                                else constant_values)
        if fill_value.ndim:
            raise ValueError("pad: constant_values must be a scalar")
        if fill_value != 0 and shape != x.shape:
            border = np.full(shape, fill_value, dtype=x.dtype.np)
            border[key] = 0
            out = add(out, _core.wrap(border))
        return out
    if mode not in ("REFLECT", "SYMMETRIC"):
        raise ValueError(f"pad: mode must be 'CONSTANT', 'REFLECT' or 'SYMMETRIC', got {mode!r}")
    out = x
    for axis, ((b, a), d) in enumerate(zip(pads, x.shape)):
        if not (b or a):
            continue
        limit = d - 1 if mode == "REFLECT" else d
        if b > limit or a > limit:
            raise ValueError(f"pad: {mode} padding of ({b}, {a}) on axis {axis} of length {d} "
                             f"exceeds {limit}")
        idx = np.pad(np.arange(d, dtype=np.intp), (b, a),  # type: ignore[call-overload]
                     mode=mode.lower())   # "reflect" or "symmetric" (checked above)
        out = _P["getitem"](out, key=(_slice(None),) * axis + (idx,))
    return out


def unsorted_segment_sum(data: TensorLike, segment_ids: TensorLike, num_segments: int | Tensor,
                         name: str | None = None) -> Tensor:
    """Sums of the slices of `data` by segment: out[i] = sum of data[j...] where
    segment_ids[j...] == i, for i in [0, num_segments). segment_ids' shape is a prefix of
    data's; a negative id drops its slice, an id >= num_segments raises IndexError.

    >>> dualad.unsorted_segment_sum(dualad.constant([1.0, 2.0, 3.0]), [1, 0, 1], 2)  # [2, 4]
    """
    x = convert_to_tensor(data)
    ids = _index_array("unsorted_segment_sum", segment_ids)
    n = int(num_segments.numpy() if isinstance(num_segments, Tensor) else num_segments)
    if n < 0:
        raise ValueError(f"unsorted_segment_sum: num_segments must be >= 0, got {n}")
    if x.shape[:ids.ndim] != ids.shape:
        raise ValueError(f"unsorted_segment_sum: segment_ids of shape {ids.shape} must match "
                         f"the leading axes of data of shape {x.shape}")
    if ids.size and ids.max() >= n:
        raise IndexError(f"unsorted_segment_sum: segment id {int(ids.max())} is out of range "
                         f"[0, {n})")
    if ids.size and ids.min() < 0:
        kept = ids >= 0
        x, ids = _P["getitem"](x, key=kept), ids[kept]
    return _P["scatter_add"](x, shape=(n,) + x.shape[ids.ndim:], key=ids)


def segment_sum(data: TensorLike, segment_ids: TensorLike, name: str | None = None) -> Tensor:
    """unsorted_segment_sum for sorted, non-negative 1-D segment_ids (one per row of data);
    the number of segments is the largest id + 1.

    >>> dualad.segment_sum(dualad.constant([1.0, 2.0, 3.0]), [0, 0, 2])  # [3, 0, 3]
    """
    x = convert_to_tensor(data)
    ids = _index_array("segment_sum", segment_ids)
    if ids.ndim != 1 or x.ndim == 0 or ids.shape[0] != x.shape[0]:
        raise ValueError(f"segment_sum: segment_ids must be 1-D with one id per row of data, "
                         f"got shapes {ids.shape} and {x.shape}")
    if ids.size and (ids[0] < 0 or np.any(np.diff(ids) < 0)):
        raise ValueError("segment_sum: segment_ids must be sorted and non-negative")
    return unsorted_segment_sum(x, ids, int(ids[-1]) + 1 if ids.size else 0)


def one_hot(indices: TensorLike, depth: int | Tensor, on_value: TensorLike | None = None,
            off_value: TensorLike | None = None, axis: int | None = None, dtype: DTypeLike = None,
            name: str | None = None) -> Tensor:
    """`on_value` at each index and `off_value` elsewhere along a new axis of length `depth`
    (last by default); indices outside [0, depth) give a row of off_value. Float32 unless
    `dtype` or the values say otherwise. Not differentiable (a constant).

    >>> dualad.one_hot([2, 0], 3)  # [[0, 0, 1], [1, 0, 0]]
    """
    idx = _index_array("one_hot", indices)
    depth = int_value(depth, "one_hot: depth")
    if depth < 0:
        raise ValueError(f"one_hot: depth must be >= 0, got {depth}")
    given = [v for v in (on_value, off_value) if v is not None]
    if dtype is None:
        dtype = next((convert_to_tensor(v).dtype for v in given), _core.DEFAULT_FLOAT)
    dtype = _core.as_dtype(dtype).np
    on = np.asarray(1 if on_value is None else np.asarray(on_value)).astype(dtype)
    off = np.asarray(0 if off_value is None else np.asarray(off_value)).astype(dtype)
    if on.ndim or off.ndim:
        raise ValueError("one_hot: on_value and off_value must be scalars")
    axis = -1 if axis is None else axis_index(axis)
    if not -1 <= axis <= idx.ndim:
        raise ValueError(f"one_hot: axis {axis} is out of range for indices of rank {idx.ndim}")
    out = np.where(idx[..., None] == np.arange(depth), on, off).astype(dtype)
    if axis != -1:
        out = np.moveaxis(out, -1, axis)
    return _core.wrap(np.ascontiguousarray(out))


def eye(num_rows: int | Tensor, num_columns: int | Tensor | None = None,
        batch_shape: ShapeLike | None = None, dtype: DTypeLike = None,
        name: str | None = None) -> Tensor:
    """The identity matrix (ones on the diagonal) of num_rows x num_columns, repeated over
    `batch_shape`; float32 by default. Not recorded by tapes.

    >>> dualad.eye(2)  # [[1, 0], [0, 1]]
    """
    rows = int_value(num_rows, "eye: num_rows")
    cols = rows if num_columns is None else int_value(num_columns, "eye: num_columns")
    if rows < 0 or cols < 0:
        raise ValueError(f"eye: sizes must be >= 0, got {rows} x {cols}")
    dtype = _core.as_dtype(dtype if dtype is not None else _core.DEFAULT_FLOAT).np
    batch = () if batch_shape is None else tuple(_int_list("eye", batch_shape))
    out = np.broadcast_to(np.eye(rows, cols, dtype=dtype), batch + (rows, cols))
    return _core.wrap(np.array(out))


def linspace(start: TensorLike, stop: TensorLike, num: int | Tensor, name: str | None = None,
             axis: int = 0) -> Tensor:
    """`num` evenly spaced values from `start` to `stop`, both included, along a new `axis`
    (start and stop may be tensors of broadcastable shapes). Differentiable in start and stop.

    >>> dualad.linspace(0.0, 1.0, 3)  # [0, 0.5, 1]
    """
    start, stop = _two_floats("linspace", start, stop)
    num = int_value(num, "linspace: num")
    if num < 1:
        raise ValueError(f"linspace: num must be >= 1, got {num}")
    ndim = len(np.broadcast_shapes(start.shape, stop.shape)) + 1
    axis = axis_index(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"linspace: axis {axis} is out of range for a result of rank {ndim}")
    axis = axis % ndim
    s, e = expand_dims(start, axis - ndim), expand_dims(stop, axis - ndim)
    frac_shape = (num,) + (1,) * (ndim - 1 - axis)
    frac = np.arange(num, dtype=np.float64) / builtins.max(num - 1, 1)
    frac = _core.wrap(frac.reshape(frac_shape).astype(start.dtype.np))
    # start * (1 - f) + stop * f: exactly start and stop at the ends
    return add(multiply(s, _core.wrap(np.asarray(1 - frac.numpy()))), multiply(e, frac))


def range_(start: TensorLike, limit: TensorLike | None = None, delta: TensorLike = 1,
           dtype: DTypeLike = None, name: str | None = "range") -> Tensor:
    """TensorFlow's tf.range: the 1-D tensor start, start + delta, ... up to `limit`
    (excluded); with one argument, 0 to `start`. int32 for integer arguments, float32 when
    one is a float (or `dtype`). Not differentiable. (Kept apart from dualad.range, the loop
    helper of dualad.function, which yields Python ints.)

    >>> dualad.ops.range_(1, 10, 3)  # [1, 4, 7]
    """
    if limit is None:
        start, limit = 0, start
    given = (start, limit, delta)
    values = [np.asarray(v.numpy() if isinstance(v, Tensor) else v) for v in given]
    if builtins.any(v.ndim for v in values):
        raise ValueError("range: start, limit and delta must be scalars")
    if builtins.any(v.dtype.kind not in "iuf" for v in values):
        raise TypeError(f"range: start, limit and delta must be numbers, got "
                        f"{[v.dtype.name for v in values]}")
    if dtype is None:
        # a Tensor argument's dtype, a float one first; else float32 if a Python float is
        # given, int32 if not
        tensors = sorted((v.dtype.np for v in given if isinstance(v, Tensor)),
                         key=lambda d: d.kind != "f")
        any_float = builtins.any(v.dtype.kind == "f" for v in values)
        if tensors and (tensors[0].kind == "f" or not any_float):
            dtype = tensors[0]
        else:
            dtype = _core.DEFAULT_FLOAT if any_float else np.int32
    dtype = _core.as_dtype(dtype).np
    start, limit, delta = (v.item() for v in values)
    if delta == 0:
        raise ValueError("range: delta must not be 0")
    if (limit - start) / delta > 2 ** 31:
        raise ValueError(f"range: {start} to {limit} by {delta} is too many elements")
    return _core.wrap(np.arange(start, limit, delta).astype(dtype))


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
