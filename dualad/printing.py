"""dualad.print: values printed plainly, as tf.print does (no Tensor(...) wrapper)."""
import sys

import numpy as np

from ._core import Tensor


def _format_number(v):
    # As tf.print (absl's SimpleFtoa/SimpleDtoa): the short form (6 significant digits for
    # float32, 15 for float64) when it reads back as the same value, else the round-trip
    # form (9 or 17 digits): float32 0.1 prints as 0.1, float32 0.999998569 as 0.999998569.
    if isinstance(v, (float, np.floating)):
        dtype = np.asarray(v).dtype
        short, full = (6, 9) if dtype.itemsize <= 4 else (15, 17)
        text = f"{float(v):.{short}g}"
        if dtype.type(text) == v:
            return text
        return f"{float(v):.{full}g}"
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
