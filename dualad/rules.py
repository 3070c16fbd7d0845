"""The derivative table: every primitive with its numpy implementation, VJP and JVP rules.

A VJP rule `vjp(g, ans, args, params)` maps the output cotangent `g` to one input's cotangent;
the core sums cotangents over broadcasting (one `unbroadcast`, below). A JVP rule maps input
tangents to the output tangent. Rules are written in dualad ops, so they are recorded by outer
tapes and accumulators and every rule is itself differentiable in both modes.

Conventions at kinks: relu'(0) = 0, abs'(0) = 0, norm'(0) = 0 (a finite subgradient), ties of
maximum/minimum (and clip_by_value at its bounds) send the gradient to the first argument,
reduce_max/min share the gradient equally among tied maxima (as TensorFlow does),
d(x**y)/dy is 0 where x <= 0, and d(x**0)/dx is NaN at x = 0 (0 * x**-1, as in TensorFlow;
JAX and PyTorch give 0 there).
"""
import numpy as np

from . import _core
from . import ops

PRIMITIVES = {}


def primitive(name, impl, differentiable=True):
    p = _core.Primitive(name, impl, differentiable=differentiable)
    PRIMITIVES[name] = p
    return p


def defvjp(p, *rules):
    """One rule per input (None: no gradient flows to that input)."""
    p.vjps = rules


def defjvp(p, *rules):
    """One rule per input, `rule(t, ans, args, params)`; contributions are summed. Each
    tangent is first aligned with the output (see `_align`), so elementwise rules and matmul
    need no batch logic of their own."""

    def jvp(tangents, ans, args, params):
        out = None
        for rule, t, x in zip(rules, tangents, args):
            if t is None or rule is None:
                continue
            term = rule(_align(t, x, ans), ans, args, params)
            out = term if out is None else ops.add(out, term)
        return _broadcast_like(out, ans, _batch_of(tangents, args))

    p.jvp = jvp


def deflinear_jvp(p, batch_params=None):
    """For primitives linear in all their inputs: the JVP is the primitive applied to the
    tangents, with zeros standing in for inputs that have none. `batch_params(params, k)`
    gives the parameters that act on tangents with a leading batch axis of size k."""

    def jvp(tangents, ans, args, params):
        k = _batch_of(tangents, args)
        shape = () if k is None else (k,)
        ts = tuple(ops.zeros(shape + a.shape, a.dtype) if t is None else t
                   for t, a in zip(tangents, args))
        params = params or {}
        if k is not None and batch_params is not None:
            params = batch_params(params, k)
        return p(*ts, **params)

    p.jvp = jvp


# ---- vector tangents ----------------------------------------------------------------------
# A tangent either has its primal's shape or carries a leading batch axis of k directions
# (shape (k,) + primal shape): one forward pass then gives k directional derivatives.

def _is_batched(t, x):
    return t.ndim == x.ndim + 1


def _batch_of(tangents, args):
    """The batch size k of the tangents of one op, or None when they are not batched."""
    for t, x in zip(tangents, args):
        if t is not None and _is_batched(t, x):
            return t.shape[0]
    return None


def _align(t, x, ans):
    """A batched tangent of input x, given unit axes after the batch axis so that it
    broadcasts against values of the output's rank (as x itself does)."""
    lead = ans.ndim - x.ndim
    if lead > 0 and _is_batched(t, x):
        return ops.reshape(t, t.shape[:1] + (1,) * lead + x.shape)
    return t


def _broadcast_like(t, ans, k=None):
    """t broadcast to the output's shape (with the batch axis first when batched)."""
    if t is None:
        return None
    shape = ans.shape if k is None else (k,) + ans.shape
    return t if t.shape == shape else ops.broadcast_to(t, shape)


def _tangent_axes(t, x, axis):
    """The reduction axes of x, as axes of its tangent t (shifted past a batch axis)."""
    if not _is_batched(t, x):
        return axis
    return tuple(a + 1 for a in normalize_axes(axis, x.ndim))


def _shift_axis_param(params, k):
    # ops always pass reduction axes explicitly, so "all axes" never swallows the batch axis
    return dict(params, axis=tuple(a + 1 for a in params["axis"]))


def _batched_key(key):
    return (slice(None),) + (key if isinstance(key, tuple) else (key,))


def unbroadcast(ct, shape):
    """Sum a cotangent over the axes that broadcasting added or stretched to reach `shape`."""
    shape = tuple(shape)
    lead = ct.ndim - len(shape)
    if lead < 0:
        raise ValueError(f"cannot reduce a cotangent of shape {ct.shape} to shape {shape}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and ct.shape[lead + i] != 1)
    if axes:
        ct = ops.reduce_sum(ct, axis=axes, keepdims=True)
        if lead:
            ct = ops.reshape(ct, ct.shape[lead:])
    if ct.shape != shape:
        raise ValueError(f"cannot reduce a cotangent of shape {ct.shape} to shape {shape}")
    return ct


def normalize_axes(axis, ndim):
    """Axis argument -> sorted tuple of non-negative axes (None: all)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor of rank {ndim}")
        out.append(a % max(ndim, 1))
    return tuple(sorted(set(out)))


def _keepdims_shape(shape, axis):
    axes = normalize_axes(axis, len(shape))
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _expand_reduced(g, shape, params):
    """A reduced value brought back to the shape it was reduced from (by broadcasting)."""
    axis, keepdims = params.get("axis"), params.get("keepdims", False)
    if not keepdims:
        g = ops.reshape(g, _keepdims_shape(shape, axis))
    return ops.broadcast_to(g, shape)


def _zeros(t):
    return ops.zeros_like(t)


def _zero_or_aligned(t, x, ans, k):
    """The tangent of input x broadcast to the output (zeros if it has none)."""
    if t is None:
        return ops.zeros(ans.shape if k is None else (k,) + ans.shape, ans.dtype)
    return _broadcast_like(_align(t, x, ans), ans, k)


# ============================================================================================
# Elementwise arithmetic
# ============================================================================================

add = primitive("add", np.add)
defvjp(add, lambda g, ans, args, p: g, lambda g, ans, args, p: g)
defjvp(add, lambda t, ans, args, p: t, lambda t, ans, args, p: t)

subtract = primitive("subtract", np.subtract)
defvjp(subtract, lambda g, ans, args, p: g, lambda g, ans, args, p: ops.negative(g))
defjvp(subtract, lambda t, ans, args, p: t, lambda t, ans, args, p: ops.negative(t))

multiply = primitive("multiply", np.multiply)
defvjp(multiply,
       lambda g, ans, args, p: ops.multiply(g, args[1]),
       lambda g, ans, args, p: ops.multiply(g, args[0]))
defjvp(multiply,
       lambda t, ans, args, p: ops.multiply(t, args[1]),
       lambda t, ans, args, p: ops.multiply(args[0], t))

divide = primitive("divide", np.true_divide)
defvjp(divide,
       lambda g, ans, args, p: ops.divide(g, args[1]),
       lambda g, ans, args, p: ops.negative(ops.divide(ops.multiply(g, ans), args[1])))
defjvp(divide,
       lambda t, ans, args, p: ops.divide(t, args[1]),
       lambda t, ans, args, p: ops.negative(ops.divide(ops.multiply(t, ans), args[1])))

negative = primitive("negative", np.negative)
defvjp(negative, lambda g, ans, args, p: ops.negative(g))
defjvp(negative, lambda t, ans, args, p: ops.negative(t))


def _pow_dx(args):
    x, y = args
    return ops.multiply(y, ops.pow(x, ops.subtract(y, 1)))


def _pow_dy(ans, args):
    # log(x) * x**y, taken as 0 where x <= 0 (as TensorFlow does), so x = 0 gives no NaN
    x = args[0]
    positive = ops.greater(x, 0)
    safe_x = ops.where(positive, x, ops.ones_like(x))
    return ops.where(positive, ops.multiply(ops.log(safe_x), ans), ops.zeros_like(ans))


pow_ = primitive("pow", np.power)
defvjp(pow_,
       lambda g, ans, args, p: ops.multiply(g, _pow_dx(args)),
       lambda g, ans, args, p: ops.multiply(g, _pow_dy(ans, args)))
defjvp(pow_,
       lambda t, ans, args, p: ops.multiply(t, _pow_dx(args)),
       lambda t, ans, args, p: ops.multiply(t, _pow_dy(ans, args)))

square = primitive("square", np.square)
defvjp(square, lambda g, ans, args, p: ops.multiply(g, ops.multiply(args[0], 2)))
defjvp(square, lambda t, ans, args, p: ops.multiply(t, ops.multiply(args[0], 2)))

sqrt = primitive("sqrt", np.sqrt)
defvjp(sqrt, lambda g, ans, args, p: ops.divide(g, ops.multiply(ans, 2)))
defjvp(sqrt, lambda t, ans, args, p: ops.divide(t, ops.multiply(ans, 2)))

maximum = primitive("maximum", np.maximum)
minimum = primitive("minimum", np.minimum)


def _first_wins(compare):
    """VJP/JVP of maximum/minimum: the first argument takes the gradient where it is chosen,
    ties included."""

    def mask(args):
        return compare(args[0], args[1])

    vjp_a = lambda g, ans, args, p: ops.where(mask(args), g, _zeros(g))
    vjp_b = lambda g, ans, args, p: ops.where(mask(args), _zeros(g), g)

    def jvp(tangents, ans, args, params):
        k = _batch_of(tangents, args)
        ta, tb = (_zero_or_aligned(t, x, ans, k) for t, x in zip(tangents, args))
        return ops.where(mask(args), ta, tb)

    return vjp_a, vjp_b, jvp


_va, _vb, maximum.jvp = _first_wins(lambda a, b: ops.greater_equal(a, b))
defvjp(maximum, _va, _vb)
_va, _vb, minimum.jvp = _first_wins(lambda a, b: ops.less_equal(a, b))
defvjp(minimum, _va, _vb)

# ============================================================================================
# Elementwise transcendental
# ============================================================================================

exp = primitive("exp", np.exp)
defvjp(exp, lambda g, ans, args, p: ops.multiply(g, ans))
defjvp(exp, lambda t, ans, args, p: ops.multiply(t, ans))

log = primitive("log", np.log)
defvjp(log, lambda g, ans, args, p: ops.divide(g, args[0]))
defjvp(log, lambda t, ans, args, p: ops.divide(t, args[0]))

log1p = primitive("log1p", np.log1p)
defvjp(log1p, lambda g, ans, args, p: ops.divide(g, ops.add(args[0], 1)))
defjvp(log1p, lambda t, ans, args, p: ops.divide(t, ops.add(args[0], 1)))

sin = primitive("sin", np.sin)
defvjp(sin, lambda g, ans, args, p: ops.multiply(g, ops.cos(args[0])))
defjvp(sin, lambda t, ans, args, p: ops.multiply(t, ops.cos(args[0])))

cos = primitive("cos", np.cos)
defvjp(cos, lambda g, ans, args, p: ops.negative(ops.multiply(g, ops.sin(args[0]))))
defjvp(cos, lambda t, ans, args, p: ops.negative(ops.multiply(t, ops.sin(args[0]))))


def _one_plus_square(ans):
    return ops.add(ops.square(ans), 1)


def _one_minus_square(ans):
    return ops.subtract(1, ops.square(ans))


tan = primitive("tan", np.tan)
defvjp(tan, lambda g, ans, args, p: ops.multiply(g, _one_plus_square(ans)))
defjvp(tan, lambda t, ans, args, p: ops.multiply(t, _one_plus_square(ans)))

tanh = primitive("tanh", np.tanh)
defvjp(tanh, lambda g, ans, args, p: ops.multiply(g, _one_minus_square(ans)))
defjvp(tanh, lambda t, ans, args, p: ops.multiply(t, _one_minus_square(ans)))


def _sigmoid_impl(x):
    # split by sign so that exp never overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.result_type(x), copy=False)


def _sigmoid_slope(ans):
    return ops.multiply(ans, ops.subtract(1, ans))


sigmoid = primitive("sigmoid", _sigmoid_impl)
defvjp(sigmoid, lambda g, ans, args, p: ops.multiply(g, _sigmoid_slope(ans)))
defjvp(sigmoid, lambda t, ans, args, p: ops.multiply(t, _sigmoid_slope(ans)))


def _relu_impl(x):
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def _positive_part(v, x):
    mask = ops.greater(x, 0)
    return ops.where(mask, v, _zeros(v))


relu = primitive("relu", _relu_impl)
defvjp(relu, lambda g, ans, args, p: _positive_part(g, args[0]))
defjvp(relu, lambda t, ans, args, p: _positive_part(t, args[0]))

abs_ = primitive("abs", np.abs)
defvjp(abs_, lambda g, ans, args, p: ops.multiply(g, ops.sign(args[0])))
defjvp(abs_, lambda t, ans, args, p: ops.multiply(t, ops.sign(args[0])))

sign = primitive("sign", np.sign, differentiable=False)

# ============================================================================================
# Selection, comparison, casting
# ============================================================================================


def _where_impl(cond, x, y):
    return np.where(cond, x, y)


where = primitive("where", _where_impl)
defvjp(where,
       None,
       lambda g, ans, args, p: ops.where(args[0], g, _zeros(g)),
       lambda g, ans, args, p: ops.where(args[0], _zeros(g), g))


def _where_jvp(tangents, ans, args, params):
    k = _batch_of(tangents, args)
    tx, ty = (_zero_or_aligned(t, x, ans, k) for t, x in zip(tangents[1:], args[1:]))
    return ops.where(args[0], tx, ty)


where.jvp = _where_jvp

for _name, _fn in (("less", np.less), ("less_equal", np.less_equal), ("greater", np.greater),
                   ("greater_equal", np.greater_equal), ("equal", np.equal),
                   ("not_equal", np.not_equal), ("logical_and", np.logical_and),
                   ("logical_or", np.logical_or), ("logical_not", np.logical_not)):
    primitive(_name, _fn, differentiable=False)

reduce_all = primitive("reduce_all", lambda x, axis=None, keepdims=False:
                       np.all(x, axis=axis, keepdims=keepdims), differentiable=False)
reduce_any = primitive("reduce_any", lambda x, axis=None, keepdims=False:
                       np.any(x, axis=axis, keepdims=keepdims), differentiable=False)
argmax = primitive("argmax", lambda x, axis=0: np.argmax(x, axis=axis), differentiable=False)
argmin = primitive("argmin", lambda x, axis=0: np.argmin(x, axis=axis), differentiable=False)


def _cast_impl(x, dtype):
    return x.astype(dtype, copy=False)


def _is_float(dtype):
    # a DType constant (what Tensor.dtype gives) or anything numpy takes as a dtype
    return _core.as_dtype(dtype).np.kind == "f"


cast = primitive("cast", _cast_impl)
defvjp(cast, lambda g, ans, args, p:
       ops.cast(g, args[0].dtype) if _is_float(args[0].dtype) and _is_float(p["dtype"]) else None)
defjvp(cast, lambda t, ans, args, p: ops.cast(t, p["dtype"]))

identity = primitive("identity", lambda x: x)
defvjp(identity, lambda g, ans, args, p: g)
deflinear_jvp(identity)

stop_gradient = primitive("stop_gradient", lambda x: x, differentiable=False)

# ============================================================================================
# Reductions
# ============================================================================================


# Reductions call the ufunc's reduce directly: np.sum/np.max add ~1 us of Python dispatch
# around the same computation.
_sum, _max = np.add.reduce, np.maximum.reduce


def _reduce_sum_impl(x, axis=None, keepdims=False):
    return _sum(x, axis=axis, keepdims=keepdims)


reduce_sum = primitive("reduce_sum", _reduce_sum_impl)
defvjp(reduce_sum, lambda g, ans, args, p: _expand_reduced(g, args[0].shape, p or {}))
deflinear_jvp(reduce_sum, _shift_axis_param)


def _reduce_tangent(t, x, weights, params):
    """sum(t * weights) over the reduced axes: the JVP of a reduction whose derivative is
    `weights` (shaped like its input x)."""
    params = params or {}
    return ops.reduce_sum(ops.multiply(t, weights), axis=_tangent_axes(t, x, params.get("axis")),
                          keepdims=params.get("keepdims", False))


def _extremum(name, fn):
    def impl(x, axis=None, keepdims=False):
        return fn(x, axis=axis, keepdims=keepdims)

    prim = primitive(name, impl)

    def share(args, ans, p):
        # 1/count on each element equal to the extremum, so tied elements share the gradient
        x = args[0]
        hit = ops.cast(ops.equal(x, _expand_reduced(ans, x.shape, p)), x.dtype)
        count = ops.reduce_sum(hit, axis=p.get("axis"), keepdims=True)
        return ops.divide(hit, count)

    defvjp(prim, lambda g, ans, args, p:
           ops.multiply(_expand_reduced(g, args[0].shape, p or {}), share(args, ans, p or {})))
    defjvp(prim, lambda t, ans, args, p: _reduce_tangent(t, args[0], share(args, ans, p or {}), p))
    return prim


reduce_max = _extremum("reduce_max", np.max)
reduce_min = _extremum("reduce_min", np.min)


def _logsumexp_impl(x, axis=None, keepdims=False):
    m = _max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(_sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = out.reshape(tuple(d for i, d in enumerate(out.shape)
                                if i not in normalize_axes(axis, x.ndim)))
    return out.astype(x.dtype, copy=False)


def _lse_weights(args, ans, p):
    x = args[0]
    return ops.exp(ops.subtract(x, _expand_reduced(ans, x.shape, p)))


reduce_logsumexp = primitive("reduce_logsumexp", _logsumexp_impl)
defvjp(reduce_logsumexp, lambda g, ans, args, p:
       ops.multiply(_expand_reduced(g, args[0].shape, p or {}), _lse_weights(args, ans, p or {})))
defjvp(reduce_logsumexp, lambda t, ans, args, p:
       _reduce_tangent(t, args[0], _lse_weights(args, ans, p or {}), p))


def _softmax_impl(x, axis=-1):
    z = np.exp(x - _max(x, axis=axis, keepdims=True))
    return z / _sum(z, axis=axis, keepdims=True)


def _softmax_linear(v, s, axis):
    # s * (v - sum(v * s)): the softmax Jacobian (symmetric) applied to v; v may be batched
    dot = ops.reduce_sum(ops.multiply(v, s), axis=_tangent_axes(v, s, axis), keepdims=True)
    return ops.multiply(s, ops.subtract(v, dot))


softmax = primitive("softmax", _softmax_impl)
defvjp(softmax, lambda g, ans, args, p: _softmax_linear(g, ans, p["axis"]))
defjvp(softmax, lambda t, ans, args, p: _softmax_linear(t, ans, p["axis"]))


def _log_softmax_impl(x, axis=-1):
    shifted = x - _max(x, axis=axis, keepdims=True)
    return shifted - np.log(_sum(np.exp(shifted), axis=axis, keepdims=True))


log_softmax = primitive("log_softmax", _log_softmax_impl)
defvjp(log_softmax, lambda g, ans, args, p: ops.subtract(
    g, ops.multiply(ops.exp(ans), ops.reduce_sum(g, axis=p["axis"], keepdims=True))))
defjvp(log_softmax, lambda t, ans, args, p: ops.subtract(
    t, ops.reduce_sum(ops.multiply(ops.exp(ans), t), axis=_tangent_axes(t, ans, p["axis"]),
                      keepdims=True)))


def _norm_impl(x, axis=None, keepdims=False):
    return np.sqrt(_sum(x * x, axis=axis, keepdims=keepdims))


def _norm_direction(args, ans, p):
    # x / |x|, with 0 where |x| = 0 (the minimum-norm subgradient)
    x = args[0]
    n = _expand_reduced(ans, x.shape, p)
    positive = ops.greater(n, 0)
    return ops.where(positive, ops.divide(x, ops.where(positive, n, ops.ones_like(n))),
                     ops.zeros_like(x))


norm = primitive("norm", _norm_impl)
defvjp(norm, lambda g, ans, args, p:
       ops.multiply(_expand_reduced(g, args[0].shape, p or {}), _norm_direction(args, ans, p or {})))
defjvp(norm, lambda t, ans, args, p: _reduce_tangent(t, args[0], _norm_direction(args, ans, p or {}), p))

# ============================================================================================
# Linear algebra
# ============================================================================================


def _matmul_impl(a, b):
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"inner dimensions differ: {a.shape[-1]} (last axis of the first "
                         f"operand) vs {b.shape[-2]} (second-to-last axis of the second)")
    if a.shape[-1] == 1 and a.ndim >= 2 and b.ndim >= 2:
        # an outer product (the VJP of a vector dot product makes these): numpy's matmul
        # takes ~10x longer than the broadcast product, which gives the same bits
        return np.multiply(a, b)
    return np.matmul(a, b)


def _swap_last(x):
    perm = list(range(x.ndim))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return transpose(x, perm=tuple(perm))


matmul = primitive("matmul", _matmul_impl)
defvjp(matmul,
       # the primitive itself: ops.matmul's checks and vector cases are not needed here
       lambda g, ans, args, p: matmul(g, _swap_last(args[1])),
       lambda g, ans, args, p: matmul(_swap_last(args[0]), g))
defjvp(matmul,
       lambda t, ans, args, p: ops.matmul(t, args[1]),
       lambda t, ans, args, p: ops.matmul(args[0], t))

# ============================================================================================
# Shape manipulation
# ============================================================================================

reshape = primitive("reshape", lambda x, shape: np.reshape(x, shape))
defvjp(reshape, lambda g, ans, args, p: ops.reshape(g, args[0].shape))
deflinear_jvp(reshape, lambda p, k: dict(p, shape=(k,) + tuple(p["shape"])))

broadcast_to = primitive("broadcast_to", lambda x, shape: np.broadcast_to(x, shape))
defvjp(broadcast_to, lambda g, ans, args, p: g)  # the core sums it back to the input's shape
deflinear_jvp(broadcast_to, lambda p, k: dict(p, shape=(k,) + tuple(p["shape"])))

def _inverse_permutation(perm):
    inverse = [0] * len(perm)
    for i, axis in enumerate(perm):
        inverse[axis] = i
    return tuple(inverse)


transpose = primitive("transpose", lambda x, perm: x.transpose(perm))
defvjp(transpose, lambda g, ans, args, p: transpose(g, perm=_inverse_permutation(p["perm"])))
deflinear_jvp(transpose, lambda p, k: dict(p, perm=(0,) + tuple(a + 1 for a in p["perm"])))


def _index_key(key):
    """Indexing keys are parameters of the getitem primitive: kept as given, but an index
    array is copied so that later changes to the caller's array cannot alter the record."""
    if isinstance(key, tuple):
        return tuple(_index_key(k) for k in key)
    if isinstance(key, np.ndarray):
        return key.copy()
    return key


getitem = primitive("getitem", lambda x, key: np.asarray(x[key]))


def _scatter_impl(g, shape, key):
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, key, g)
    return out


scatter_add = primitive("scatter_add", _scatter_impl)  # the transpose of getitem
defvjp(getitem, lambda g, ans, args, p: scatter_add(g, shape=args[0].shape, key=p["key"]))
deflinear_jvp(getitem, lambda p, k: dict(p, key=_batched_key(p["key"])))
defvjp(scatter_add, lambda g, ans, args, p: getitem(g, key=p["key"]))
deflinear_jvp(scatter_add, lambda p, k: dict(p, shape=(k,) + tuple(p["shape"]),
                                             key=_batched_key(p["key"])))


def _concat_impl(*xs, axis=0):
    return np.concatenate(xs, axis=axis)


concat = primitive("concat", _concat_impl)


def _concat_vjp(k, g, ans, args, p):
    axis = normalize_axes(p["axis"], ans.ndim)[0]
    start = sum(a.shape[axis] for a in args[:k])
    key = (slice(None),) * axis + (slice(start, start + args[k].shape[axis]),)
    return getitem(g, key=key)


concat.variadic_vjp = _concat_vjp
deflinear_jvp(concat, lambda p, k: dict(p, axis=p["axis"] + 1))
