"""Random tensors. A `seed` makes a call reproducible; without one, draws come from a global
generator that `set_seed` resets."""
import numpy as np

from . import _core
from .shapes import int_tuple

_global = np.random.default_rng()


def set_seed(seed):
    """Reset the global generator used by calls without a seed."""
    global _global
    _global = np.random.default_rng(seed)


def _generator(seed):
    if seed is None:
        # a compiled program would replay the same draw: such functions run eagerly
        _core.mark_impure("it draws random numbers from the global generator (pass a seed, "
                          "or draw outside the function)")
        return _global
    return np.random.default_rng(seed)


def _float_dtype(dtype):
    dtype = _core.as_dtype(dtype).np
    if dtype.kind != "f":
        raise TypeError(f"random values need a float dtype, got {dtype.name}")
    return dtype


def _shape(shape):
    return int_tuple(shape, "the shape")


def normal(shape, mean=0.0, stddev=1.0, dtype=_core.DEFAULT_FLOAT, seed=None, name=None):
    """Samples of N(mean, stddev**2)."""
    dtype = _float_dtype(dtype)
    values = _generator(seed).normal(mean, stddev, size=_shape(shape))
    return _core.wrap(np.asarray(values, dtype=dtype))


def uniform(shape, minval=0.0, maxval=None, dtype=_core.DEFAULT_FLOAT, seed=None, name=None):
    """Samples of U[minval, maxval) (maxval defaults to 1)."""
    dtype = _float_dtype(dtype)
    maxval = 1.0 if maxval is None else maxval
    if not maxval > minval:
        raise ValueError(f"uniform: maxval ({maxval}) must exceed minval ({minval})")
    values = _generator(seed).uniform(minval, maxval, size=_shape(shape))
    return _core.wrap(np.asarray(values, dtype=dtype))
