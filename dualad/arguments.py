"""Checks of numeric hyperparameters, shared by the optimizers and the learning-rate schedules:
each returns the value as a Python float or raises TypeError/ValueError naming the argument."""
import math
import numbers

import numpy as np

from ._core import Tensor


def real(value, what):
    """`value` as a Python float: a real number, or a single-element tensor or array."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be a number, got {value!r}")
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (Tensor, np.ndarray)):
        arr = np.asarray(value)
        if arr.shape == () and arr.dtype.kind in "iuf":
            return float(arr)
    raise TypeError(f"{what} must be a real number, got {type(value).__name__} ({value!r:.60})")


def check_rate(value, what="learning_rate"):
    rate = real(value, what)
    if not 0.0 <= rate < math.inf:  # also false for NaN
        raise ValueError(f"{what} must be a finite number >= 0, got {rate!r}")
    return rate


def check_unit(value, what, below_one=False):
    x = real(value, what)
    if not (0.0 <= x < 1.0 if below_one else 0.0 <= x <= 1.0):
        raise ValueError(f"{what} must lie in [0, 1{')' if below_one else ']'}, got {x!r}")
    return x


def check_nonnegative(value, what):
    x = real(value, what)
    if not 0.0 <= x < math.inf:
        raise ValueError(f"{what} must be a finite number >= 0, got {x!r}")
    return x
