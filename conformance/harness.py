"""Helpers shared by the test modules: run a function on the implementation and on the reference."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from conformance import numdiff
from conformance.reference import REFERENCE
from conformance.strategies import as_dtype


def make(impl, values, dtype: str):
    """An implementation constant holding ``values`` in ``dtype``."""
    return impl.constant(as_dtype(values, dtype), dtype)


def to_numpy(impl, tensor):
    """NumPy value of a tensor, or None for an unconnected gradient."""
    return None if tensor is None else np.asarray(impl.to_numpy(tensor))


def tape_gradients(impl, f: Callable, args: Sequence[np.ndarray], dtype: str):
    """Record ``f(impl, *args)`` on a tape watching every argument.

    Returns the value and the gradients with respect to each argument, as NumPy.
    """
    tensors = [make(impl, a, dtype) for a in args]
    with impl.tape() as tape:
        tape.watch(tensors)
        value = f(impl, *tensors)
    grads = tape.gradient(value, tensors)
    return to_numpy(impl, value), [to_numpy(impl, g) for g in grads]


def reference_value(f: Callable, *args):
    return f(REFERENCE, *[np.asarray(a, np.float64) for a in args])


def reference_gradients(f: Callable, args: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Finite-difference gradients of ``reduce_sum(f(REFERENCE, *args))`` in float64."""
    return numdiff.partial_gradients(lambda *a: np.sum(f(REFERENCE, *a)), *args)


def sum_to_shape(values, shape) -> np.ndarray:
    """Sum ``values`` over the axes that broadcasting added to ``shape``: a broadcast operand's gradient."""
    values = np.asarray(values, np.float64)
    values = values.sum(axis=tuple(range(values.ndim - len(shape))))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and values.shape[i] != 1)
    return values.sum(axis=stretched, keepdims=True).reshape(shape)


def reference_second_gradient(f: Callable, x) -> np.ndarray:
    """What ``gradient(gradient(f(x), x), x)`` must give: ∂/∂x_j Σ_i ∂F/∂x_i with F = sum f(x).

    Finite differences of finite differences, from the Hessian of F.
    """
    x = np.asarray(x, np.float64)
    hessian = numdiff.hessian(lambda v: np.sum(f(REFERENCE, v)), x)
    rows = np.asarray(hessian).reshape(x.size, x.size).sum(axis=0).reshape(x.shape)
    return numdiff.Estimate(rows, hessian.error.reshape(x.size, x.size).sum(axis=0).reshape(x.shape))
