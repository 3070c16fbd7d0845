"""The op vocabulary evaluated in float64 NumPy: the reference implementation.

Each identity's function is written once against an ``ops`` object. The test
runs it on the adapter (to get the implementation's automatic derivative)
and on :data:`REFERENCE` (so ``numdiff`` can take finite differences of the
exact same computation, in float64).
"""
from __future__ import annotations

import numpy as np


class NumpyReference:
    name = "numpy-float64-reference"

    @staticmethod
    def constant(value, dtype="float64"):
        return np.array(value, dtype=np.float64)

    add = staticmethod(np.add)
    subtract = staticmethod(np.subtract)
    multiply = staticmethod(np.multiply)
    divide = staticmethod(np.divide)
    pow = staticmethod(np.power)
    negative = staticmethod(np.negative)
    square = staticmethod(np.square)
    sqrt = staticmethod(np.sqrt)
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    tanh = staticmethod(np.tanh)
    abs = staticmethod(np.abs)
    matmul = staticmethod(np.matmul)
    transpose = staticmethod(np.transpose)

    @staticmethod
    def reduce_sum(x, axis=None):
        return np.sum(x, axis=axis)

    @staticmethod
    def reduce_mean(x, axis=None):
        return np.mean(x, axis=axis)

    @staticmethod
    def norm(x):
        return np.sqrt(np.sum(np.square(x)))

    @staticmethod
    def stop_gradient(x):
        return x


REFERENCE = NumpyReference()
