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


def _richardson(central: Callable[[float], np.ndarray], h0: float) -> np.ndarray:
    """Extrapolate central differences at h0, h0/2, ... to step zero."""
    previous = [central(h0)]
    for level in range(1, LEVELS):
        row = [central(h0 / 2**level)]
        for j in range(1, level + 1):
            row.append(row[j - 1] + (row[j - 1] - previous[j - 1]) / (4**j - 1))
        previous = row
    return previous[-1]


def directional_derivative(f: Callable[..., np.ndarray], args, directions,
                           h0: float = BASE_STEP) -> np.ndarray:
    """The derivative of f along ``directions`` (as central_difference), Richardson-extrapolated
    from steps h0, h0/2, ...: accurate where one central difference loses digits to a large
    gradient or curvature elsewhere in the output."""
    return _richardson(lambda h: central_difference(f, args, directions, h), h0)


def jacobian(f: Callable[[np.ndarray], np.ndarray], x) -> np.ndarray:
    """∂f/∂x with shape ``f(x).shape + x.shape``, for f from float64 arrays to arrays."""
    x = np.array(x, dtype=np.float64)
    out_shape = np.shape(f(x.copy()))
    radius = stencil_radius(x)
    columns = []
    for index in np.ndindex(x.shape):
        e = unit(x.shape, index)

        def central(h, e=e):
            return central_difference(f, [x], [e], h)

        columns.append(_richardson(central, float(radius[index])))
    if not columns:  # x has no elements
        return np.zeros(out_shape + x.shape)
    stacked = np.stack([np.broadcast_to(c, out_shape) for c in columns], axis=-1)
    return stacked.reshape(out_shape + x.shape)


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
    """∇²f(x) with shape ``x.shape + x.shape``: differences of differences."""
    return jacobian(lambda y: gradient(f, y), x)
