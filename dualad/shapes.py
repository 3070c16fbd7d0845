"""Shape and axis helpers shared by the derivative rules and the public ops (plain Python and
numpy: no tensors here)."""
import numpy as np


def normalize_axes(axis, ndim):
    """Axis argument -> sorted tuple of non-negative axes (None: all)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
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
