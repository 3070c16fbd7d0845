"""Shape and axis helpers shared by the derivative rules and the public ops (plain Python and
numpy: no tensors here)."""
import operator

import numpy as np


def axis_index(axis):
    """One axis as a Python int. Not int(): int(0.9) == 0 would pick an axis silently."""
    try:
        return operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an integer, got {axis!r}") from None


def int_value(value, what):
    """One count or size as a Python int, by operator.index as axis_index: int(2.5) == 2."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, got {value!r:.80}") from None


def int_tuple(values, what):
    """A shape or permutation argument as a tuple of Python ints: one integer, or a sequence,
    numpy array or integer Tensor of them. Not int(): int(2.5) == 2 would silently make
    another shape, so floats are refused as operator.index refuses them."""
    if type(values) is tuple and all(type(v) is int for v in values):
        return values       # the common case, without numpy
    arr = np.asarray(values)
    if arr.ndim > 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(f"{what} must be an integer or a flat sequence of integers, got "
                        f"{values!r:.80}")
    return tuple(int(v) for v in arr.reshape(-1))


# every axis of a tensor of rank n, for the n reductions are usually over (one tuple each)
_ALL_AXES = tuple(tuple(range(n)) for n in range(33))


def normalize_axes(axis, ndim):
    """Axis argument -> sorted tuple of non-negative axes (None: all)."""
    if axis is None:
        return _ALL_AXES[ndim] if 0 <= ndim < 33 else tuple(range(ndim))
    if type(axis) is int:
        # one plain int (not a bool, not an int subclass): the general path's check, without
        # np.ndim, which costs more than the rest of this function
        if not -ndim <= axis < max(ndim, 1):
            raise ValueError(f"axis {axis} is out of range for a tensor of rank {ndim}")
        return (axis % max(ndim, 1),)
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    out = []
    for a in axes:
        a = axis_index(a)
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor of rank {ndim}")
        out.append(a % max(ndim, 1))
    return tuple(sorted(set(out)))


def keepdims_shape(shape, axis):
    """`shape` with the reduced axes kept as size 1 (what keepdims=True gives)."""
    axes = normalize_axes(axis, len(shape))
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def inverse_permutation(perm):
    inverse = [0] * len(perm)
    for i, axis in enumerate(perm):
        inverse[axis] = i
    return tuple(inverse)


def swap_last_perm(ndim):
    """The permutation exchanging the last two of ndim axes."""
    perm = list(range(ndim))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return tuple(perm)


def batched_key(key):
    """An indexing key applied past a leading batch axis."""
    return (slice(None),) + (key if isinstance(key, tuple) else (key,))


def index_key(key):
    """Indexing keys are parameters of the getitem primitive: kept as given, but an index
    array is copied so that later changes to the caller's array cannot alter the record."""
    if isinstance(key, tuple):
        return tuple(index_key(k) for k in key)
    if isinstance(key, np.ndarray):
        return key.copy()
    return key


# ---- TensorShape: what Tensor.shape returns ----------------------------------------------------

def _dim(d):
    """One dimension: a non-negative int, or None for an unknown size (in user-made shapes)."""
    if d is None:
        return None
    if isinstance(d, (bool, np.bool_)):
        raise TypeError(f"a shape dimension must be an int or None, not {d!r}")
    try:
        d = int(d.__index__())
    except (AttributeError, TypeError):
        raise TypeError(f"a shape dimension must be an int or None, not "
                        f"{type(d).__name__} ({d!r:.40})") from None
    if d < 0:
        raise ValueError(f"a shape dimension must be >= 0, got {d}")
    return d


class TensorShape(tuple):
    """The shape of a tensor, as in TensorFlow (`as_list()`, `rank`, `num_elements()`,
    `is_compatible_with`, ...), and a tuple of ints: it compares equal to tuples and lists of
    the same sizes and works wherever a tuple does (`np.zeros(t.shape)`, `*t.shape`).

    The shapes of dualad's tensors are always fully known; a shape made by hand may have
    unknown dimensions (None), which are compatible with any size. An unknown rank
    (TensorShape(None) in TensorFlow) is not supported."""

    __slots__ = ()

    def __new__(cls, dims=()):
        if type(dims) is cls:
            return dims
        if dims is None:
            raise ValueError("dualad has no shapes of unknown rank (TensorShape(None)): give "
                             "the dimensions, None for an unknown size")
        if isinstance(dims, (str, bytes)) or not hasattr(dims, "__iter__"):
            raise TypeError(f"TensorShape takes a list or tuple of dimensions, not "
                            f"{type(dims).__name__} ({dims!r:.40})")
        return tuple.__new__(cls, [_dim(d) for d in dims])

    # ---- TensorFlow's accessors ----

    @property
    def rank(self):
        """The number of dimensions."""
        return len(self)

    ndims = rank

    @property
    def dims(self):
        """The dimensions as a list (ints, None where unknown)."""
        return list(self)

    def as_list(self):
        """The dimensions as a list (ints, None where unknown)."""
        return list(self)

    def num_elements(self):
        """The number of elements, or None if a dimension is unknown."""
        if None in self:
            return None
        n = 1
        for d in self:
            n *= d
        return n

    def is_fully_defined(self):
        return None not in self

    def is_compatible_with(self, other):
        """True if the two shapes have the same rank and each pair of dimensions agrees or
        one of them is unknown."""
        other = as_shape(other)
        return len(self) == len(other) and all(
            a is None or b is None or a == b for a, b in zip(self, other))

    def assert_is_compatible_with(self, other):
        if not self.is_compatible_with(other):
            raise ValueError(f"shapes {self} and {as_shape(other)} are incompatible")

    def merge_with(self, other):
        """The shape both describe (unknown dimensions filled in from the other)."""
        other = as_shape(other)
        self.assert_is_compatible_with(other)
        return TensorShape([b if a is None else a for a, b in zip(self, other)])

    def concatenate(self, other):
        return TensorShape(tuple(self) + tuple(as_shape(other)))

    def assert_has_rank(self, rank):
        if len(self) != rank:
            raise ValueError(f"shape {self} must have rank {rank}")

    def with_rank(self, rank):
        self.assert_has_rank(rank)
        return self

    def with_rank_at_least(self, rank):
        if len(self) < rank:
            raise ValueError(f"shape {self} must have rank at least {rank}")
        return self

    def with_rank_at_most(self, rank):
        if len(self) > rank:
            raise ValueError(f"shape {self} must have rank at most {rank}")
        return self

    # ---- tuple behaviour, TensorFlow style ----

    def __getitem__(self, key):
        if isinstance(key, slice):          # a slice of a shape is a shape (dims already checked)
            return tuple.__new__(TensorShape, tuple.__getitem__(self, key))
        return tuple.__getitem__(self, key)

    def __add__(self, other):
        if type(other) is TensorShape or _plain_dims(other):   # checked already, or ints: fast
            return tuple.__new__(TensorShape, tuple.__add__(self, other))
        return self.concatenate(other)

    def __radd__(self, other):
        if _plain_dims(other):      # (k,) + shape in the derivative rules
            return tuple.__new__(TensorShape, tuple.__add__(other, self))
        return as_shape(other).concatenate(self)

    def __eq__(self, other):
        if type(other) is list:         # TensorFlow's shapes equal lists of the same sizes
            other = tuple(other)
        return tuple.__eq__(self, other)

    def __ne__(self, other):
        if type(other) is list:
            other = tuple(other)
        return tuple.__ne__(self, other)

    __hash__ = tuple.__hash__

    def __repr__(self):
        return f"TensorShape({list(self)})"

    def __str__(self):
        # as TensorFlow prints shapes: (2, 3), (3,), (), None for unknown sizes
        return tuple.__repr__(self)

    def __reduce__(self):
        return (TensorShape, (tuple(self),))


def _plain_dims(dims):
    """Whether dims is a plain tuple of non-negative Python ints (no conversion needed)."""
    if type(dims) is not tuple:
        return False
    for d in dims:
        if type(d) is not int or d < 0:
            return False
    return True


def as_shape(shape):
    """`shape` (a TensorShape, tuple or list of dimensions) as a TensorShape."""
    return shape if type(shape) is TensorShape else TensorShape(shape)
