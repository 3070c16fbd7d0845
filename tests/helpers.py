"""Shared numerics of the unit tests: the tolerances (per dtype, in this one place), tensor
constructors, central finite differences (conformance/numdiff.py's stencil, at the fixed step H),
and small drivers that run dualad in reverse mode, forward mode and nested reverse mode on
functions of several tensors.

Tolerances
----------
FD      float64 AD result vs a central difference with step H = 1e-5. The difference's own
        error is about H**2 * |f'''| / 6 + eps * |f| / H, i.e. ~1e-10 for the bounded, smooth
        inputs the tests draw, so rtol 1e-6 leaves four orders of margin while still catching
        any wrong rule (which is off by O(1)).
EXACT   float64: two AD results of one quantity (forward vs reverse, scalar vs array path,
        a closed form): rounding only.
EXACT32 float32: two float32 computations of one value: a few ulps of the O(1) intermediates
        (1 - tanh² loses relative accuracy to cancellation, hence the absolute term).
"""
import sys

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dualad as dd
from conformance import numdiff  # the finite-difference stencil shared with the conformance suite

H = 1e-5

TOL = {
    "float64": {
        "fd": dict(rtol=1e-6, atol=1e-8),
        "exact": dict(rtol=1e-10, atol=1e-12),
    },
    "float32": {
        "exact": dict(rtol=2e-6, atol=1e-6),
    },
}
FD = TOL["float64"]["fd"]
EXACT = TOL["float64"]["exact"]
EXACT32 = TOL["float32"]["exact"]

# Hypothesis budget: modest example counts, no deadline (the first example pays for imports).
SETTINGS = settings(max_examples=25, deadline=None)
FEW = settings(max_examples=12, deadline=None)


# ---- values --------------------------------------------------------------------------------

def t64(a):
    """A float64 tensor holding `a`."""
    return dd.constant(np.asarray(a, dtype=np.float64))


def t32(a):
    return dd.constant(np.asarray(a, dtype=np.float32))


def npy(t):
    """A tensor's value as a float64 numpy array (None stays None)."""
    return None if t is None else np.asarray(t, dtype=np.float64)


def floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def arrays(shape, elements=None, unique=False):
    """A float64 array strategy; every element is drawn (no fill value)."""
    return hnp.arrays(np.float64, shape, elements=floats(-2, 2) if elements is None else elements,
                      fill=st.nothing(), unique=unique)


# ---- finite differences --------------------------------------------------------------------

def fd_grad(f, xs, h=H):
    """Central differences of a scalar function f(*xs) of float64 arrays, with respect to every
    element of every argument: a list of arrays shaped like xs."""
    xs = [np.array(x, dtype=np.float64) for x in xs]
    grads = []
    for i, x in enumerate(xs):
        g = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            directions = [numdiff.unit(x.shape, idx) if j == i else np.zeros(y.shape)
                          for j, y in enumerate(xs)]
            g[idx] = numdiff.central_difference(lambda *a: float(f(*a)), xs, directions, h)
        grads.append(g)
    return grads


def fd_jvp(f, xs, vs, h=H):
    """Central difference of f (arrays in, array out) along the directions vs."""
    return numdiff.central_difference(f, xs, vs, h)


def fd_jacobian(f, x, h=H):
    """d f / d x by central differences, shape f(x).shape + x.shape (f: numpy -> numpy)."""
    x = np.asarray(x, dtype=np.float64)
    out_shape = np.shape(f(x))
    cols = [numdiff.central_difference(f, [x], [numdiff.unit(x.shape, idx)], h)
            for idx in np.ndindex(x.shape)]
    if not cols:
        return np.zeros(out_shape + x.shape)
    return np.stack(cols, axis=-1).reshape(out_shape + x.shape)


# ---- AD drivers (fn maps float64 tensors to a tensor) --------------------------------------

def value(fn, xs):
    """fn evaluated on float64 copies of xs, as numpy."""
    return npy(fn(*[t64(x) for x in xs]))


def reverse_grads(fn, xs, u):
    """The VJP uᵀ·∂fn/∂x_i for every input, through tape.gradient with output_gradients=u.
    Unconnected inputs give zeros."""
    ts = [t64(x) for x in xs]
    with dd.GradientTape() as tape:
        tape.watch(ts)
        y = fn(*ts)
    gs = tape.gradient(y, ts, output_gradients=t64(u), unconnected_gradients="zero")
    return gs


def weighted(fn, u):
    """x ↦ sum(u * fn(x)) as a function of float64 numpy arrays (for finite differences)."""
    return lambda *a: float(np.sum(value(fn, a) * u))


def forward_jvp(fn, xs, vs):
    """fn's tangent along vs, through one ForwardAccumulator."""
    ts = [t64(x) for x in xs]
    with dd.ForwardAccumulator(ts, [t64(v) for v in vs]) as acc:
        y = fn(*ts)
    return acc.jvp(y, unconnected_gradients="zero")


def reverse_jacobians(fn, xs):
    """tape.jacobian of fn with respect to each input (shaped y.shape + x.shape)."""
    ts = [t64(x) for x in xs]
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(ts)
        y = fn(*ts)
    return y, tape.jacobian(y, ts, unconnected_gradients="zero")


def jacobian_times(jacobians, vs):
    """Σ_i J_i · v_i, contracting each Jacobian over its input axes."""
    total = 0.0
    for J, v in zip(jacobians, vs):
        v = np.asarray(v, dtype=np.float64)
        total = total + np.tensordot(npy(J), v, axes=v.ndim)
    return np.asarray(total)


def first_order_weighted(fn, xs, u, ws):
    """Σ_i sum(w_i · ∂(uᵀfn)/∂x_i), the first derivative folded to a scalar, on one tape."""
    gs = reverse_grads(fn, xs, u)
    return float(sum(np.sum(npy(g) * w) for g, w in zip(gs, ws)))


def second_order(fn, xs, u, ws):
    """∂/∂x_j of Σ_i sum(w_i · ∂(uᵀfn)/∂x_i) through two nested tapes: a Hessian-vector
    product of the weighted output. Unconnected inputs give zeros."""
    ts = [t64(x) for x in xs]
    with dd.GradientTape() as outer:
        outer.watch(ts)
        with dd.GradientTape() as inner:
            inner.watch(ts)
            y = fn(*ts)
            loss = dd.reduce_sum(y * t64(u))
        gs = inner.gradient(loss, ts, unconnected_gradients="zero")
        folded = dd.add_n([dd.reduce_sum(g * t64(w)) for g, w in zip(gs, ws)])
    return outer.gradient(folded, ts, unconnected_gradients="zero")


# ---- interrupts ----------------------------------------------------------------------------

def interrupted_at_line(action, sources, line):
    """Run action() with a KeyboardInterrupt raised at its `line`-th executed line (1-based)
    inside the files `sources`, as a signal could arrive; True if the interrupt fired (the
    action had that many lines there), False if the action completed first."""
    lines_seen = [0]

    def local(frame, event, arg):
        if event == "line":
            lines_seen[0] += 1
            if lines_seen[0] == line:
                raise KeyboardInterrupt
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code.co_filename in sources else None

    sys.settrace(tracer)
    try:
        action()
    except KeyboardInterrupt:
        return True
    finally:
        sys.settrace(None)
    return False


def interrupt_at_every_line(fresh, step, state_of, sources, after_interrupt=None):
    """Interrupt step(*made), made = fresh(), at its 1st, 2nd, ... executed line in `sources`
    until it completes: after each interrupt the state (state_of(*made)) is the one before
    the step or the one after an uninterrupted step, and `after_interrupt(*made)` may check
    more. A step that completed before the interrupt starts again from fresh(). Returns the
    line number at which the step first ran to the end (the number of lines tried + 1)."""
    made, reference = fresh(), fresh()
    before = state_of(*made)
    step(*reference)
    after = state_of(*reference)
    fire_at = 1
    while True:
        interrupted = interrupted_at_line(lambda: step(*made), sources, fire_at)
        state = state_of(*made)
        if not interrupted:
            assert state == after
            return fire_at
        assert state in (before, after), f"split by an interrupt at line {fire_at}"
        if after_interrupt is not None:
            after_interrupt(*made)
        if state != before:
            made = fresh()
        fire_at += 1
