"""Finite-difference derivatives in float64: the suite's reference derivatives.

Central differences D(h) = (f(x+h) - f(x-h)) / 2h have an error series in
h², h⁴, ...; Richardson extrapolation over the steps h, h/2, h/4, h/8 cancels
the first three terms, so a fairly large first step (few rounding errors)
still gives about 12 correct digits for gradients and 9 for Hessians
(differences of differences) on smooth functions; ``meta/test_numdiff.py`` checks
this against closed forms. Each coordinate's
step is scaled to the point (``BASE_STEP · max(1, |x|)``) and rounded up to a
power of two so that ``x ± h`` is computed exactly.

The functions evaluated here must be smooth within ``stencil_radius(x)`` of
the point: tests exclude points closer than that to a kink or branch
boundary with ``hypothesis.assume``.

``central_difference`` is the one stencil, also used (at a fixed step, without
extrapolation) by the unit tests' finite differences in ``tests/helpers.py``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

BASE_STEP = 2.0**-5
LEVELS = 4  # steps h, h/2, h/4, h/8


def stencil_radius(x) -> np.ndarray:
    """The largest offset from ``x`` (per coordinate) at which f is evaluated."""
    scale = np.maximum(1.0, np.abs(np.asarray(x, dtype=np.float64)))
    return 2.0 ** np.ceil(np.log2(BASE_STEP * scale))


def central_difference(f: Callable[..., np.ndarray], args, directions, h: float) -> np.ndarray:
    """(f(*(args + h·directions)) − f(*(args − h·directions))) / 2h in float64.

    The derivative of f along ``directions`` (one per argument, each shaped like its argument),
    with error O(h²): f is evaluated on float64 arrays.
    """
    up, down = [], []
    for arg, direction in zip(args, directions, strict=True):
        arg = np.asarray(arg, np.float64)
        step = h * np.asarray(direction, np.float64)
        up.append(arg + step)
        down.append(arg - step)
    return (np.asarray(f(*up), np.float64) - np.asarray(f(*down), np.float64)) / (2 * h)


def unit(shape, index) -> np.ndarray:
    """The float64 array of ``shape`` that is 1 at ``index`` and 0 elsewhere."""
    e = np.zeros(shape)
    e[index] = 1.0
    return e


class Estimate(np.ndarray):
    """A finite-difference result that carries ``error``: per entry, an estimate of its own error
    (the change made by the last extrapolation level, which bounds truncation and rounding
    noise alike). Arrays derived from it by NumPy operations are plain arrays (error None)."""

    def __new__(cls, values, error):
        estimate = np.asarray(values, dtype=np.float64).view(cls)
        estimate.error = np.broadcast_to(np.abs(np.asarray(error, dtype=np.float64)), estimate.shape).copy()
        return estimate

    def __array_finalize__(self, obj):
        self.error = None

    def __array_wrap__(self, array, context=None, return_scalar=False):
        # results of ufuncs and reductions are plain arrays: their error is not known
        plain = np.asarray(array).view(np.ndarray)
        return plain[()] if return_scalar else plain


def error_of(values):
    """The per-entry error estimate of a finite-difference result, or None."""
    return getattr(values, "error", None)


def _richardson(central: Callable[[float], np.ndarray], h0: float, with_error: bool = False):
    """Extrapolate central differences at h0, h0/2, ... to step zero (and estimate the error)."""
    previous = [central(h0)]
    for level in range(1, LEVELS):
        row = [central(h0 / 2**level)]
        for j in range(1, level + 1):
            row.append(row[j - 1] + (row[j - 1] - previous[j - 1]) / (4**j - 1))
        previous = row
    if with_error:
        # the last extrapolation's correction: what the finest row changed by cancelling one more term
        return previous[-1], np.abs(previous[-1] - previous[-2])
    return previous[-1]


def directional_derivative(f: Callable[..., np.ndarray], args, directions,
                           h0: float = BASE_STEP) -> np.ndarray:
    """The derivative of f along ``directions`` (as central_difference), Richardson-extrapolated
    from steps h0, h0/2, ...: accurate where one central difference loses digits to a large
    gradient or curvature elsewhere in the output. An :class:`Estimate`."""
    return Estimate(*_richardson(lambda h: central_difference(f, args, directions, h), h0, with_error=True))


def jacobian(f: Callable[[np.ndarray], np.ndarray], x) -> np.ndarray:
    """∂f/∂x with shape ``f(x).shape + x.shape``, for f from float64 arrays to arrays."""
    x = np.array(x, dtype=np.float64)
    out_shape = np.shape(f(x.copy()))
    radius = stencil_radius(x)
    columns = []
    for index in np.ndindex(x.shape):
        e = unit(x.shape, index)
        noise = [0.0]  # the largest rounding error of one evaluation of f at this coordinate's points

        def evaluate(point):
            value = f(point)
            inner = error_of(value)  # f itself a finite difference (Hessians): its own error
            magnitude = np.finfo(np.float64).eps * float(np.max(np.abs(value), initial=0.0))
            noise[0] = max(noise[0], magnitude + (float(np.max(inner, initial=0.0)) if inner is not None else 0.0))
            return np.asarray(value)

        def central(h, e=e):
            return central_difference(evaluate, [x], [e], h)

        h0 = float(radius[index])
        value, truncation = _richardson(central, h0, with_error=True)
        # rounding noise of f divided by the finest step, times the extrapolation's gain (< 2)
        rounding = 2 * noise[0] / (h0 / 2 ** (LEVELS - 1))
        columns.append((value, truncation + rounding))
    if not columns:  # x has no elements
        return Estimate(np.zeros(out_shape + x.shape), 0.0)

    def stacked(part):
        return np.stack([np.broadcast_to(np.asarray(c[part]), out_shape) for c in columns], axis=-1).reshape(out_shape + x.shape)

    return Estimate(stacked(0), stacked(1))


def gradient(f: Callable[[np.ndarray], float], x) -> np.ndarray:
    """∇f(x) with x's shape, for a scalar-valued f."""
    return jacobian(f, x)


def partial_gradients(f: Callable[..., float], *args) -> list[np.ndarray]:
    """[∂f/∂args[i]] for a scalar-valued f of several array arguments."""
    args = [np.array(a, dtype=np.float64) for a in args]

    def along(i):
        def f_i(value):
            return f(*args[:i], value, *args[i + 1:])

        return gradient(f_i, args[i])

    return [along(i) for i in range(len(args))]


def hessian(f: Callable[[np.ndarray], float], x) -> np.ndarray:
    """∇²f(x) with shape ``x.shape + x.shape``: differences of differences (the outer
    extrapolation's error estimate sees the inner gradients' noise as it varies with the point)."""
    return jacobian(lambda y: gradient(f, y), x)
