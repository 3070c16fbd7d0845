"""Debugging switches (TensorFlow's names): checks for NaN and infinity."""
import numpy as np

from . import _core


def enable_check_numerics():
    """From now on every op result, including the ops that compute gradients, is checked, and
    the first NaN or infinity raises FloatingPointError naming the op (and the primitive whose
    gradient was being computed). dualad.function calls run eagerly meanwhile, so that every op
    is checked. Costs a check per op: for debugging only."""
    _core.set_check_numerics(True)


def disable_check_numerics():
    """Turn the checks of enable_check_numerics off again."""
    _core.set_check_numerics(False)


def check_numerics(tensor, message):
    """Return `tensor` if it holds no NaN or infinity, else raise FloatingPointError with
    `message`."""
    t = _core.convert_to_tensor(tensor)
    if t.dtype.np.kind == "f" and not np.isfinite(_core.raw_value(t)).all():
        raise FloatingPointError(f"check_numerics: {message}: the tensor holds NaN or infinity")
    return t
