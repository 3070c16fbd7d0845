"""dualad.print: values printed plainly, as tf.print does (no Tensor(...) wrapper)."""
import sys

import numpy as np

from ._core import Tensor


def _format_number(v):
    if isinstance(v, (float, np.floating)):
        digits = 9 if np.asarray(v).dtype == np.float32 else 17
        return f"{v:.{digits}g}"
    return str(v)


def format_value(value):
    """Tensors as their numbers (nested brackets for arrays), containers recursively."""
    if isinstance(value, Tensor):
        arr = np.asarray(value)
        if arr.ndim == 0:
            return _format_number(arr[()])
        return np.array2string(arr, separator=" ", formatter={"all": _format_number})
    if isinstance(value, tuple):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def print_(*inputs, sep=" ", end="\n", output_stream=None):
    """Print tensors by value, like tf.print."""
    stream = sys.stdout if output_stream is None else output_stream
    stream.write(sep.join(format_value(v) for v in inputs) + end)
