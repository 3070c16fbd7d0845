"""Every op's derivative rules, checked on random float64 inputs drawn by Hypothesis.

One table (CASES) maps a case name to a draw function that returns (fn, inputs): fn applies
one op (with drawn parameters: axes, keepdims, perms, index keys, shapes) to float64 tensors.
Every case is run through four properties:

  * reverse mode: uᵀ·J from tape.gradient (output_gradients=u, a random cotangent) equals
    central finite differences of sum(u * fn(x)); gradient shapes and dtypes equal the inputs';
  * forward mode: the ForwardAccumulator tangent along random v equals J·v with J from the
    tape's (reverse-mode) jacobian -- forward and reverse rules must agree;
  * second order: the gradient of a first derivative, taken through two nested tapes, equals
    finite differences of the first derivative (rules are written in differentiable ops);
  * the value equals the numpy reference computation.

Kinks are avoided by the input domains and `assume`, never by loose tolerances.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dualad as dd
from test_float32_scalar_contract import FLOAT32_ULP_BOUND, ulp_distance
from helpers import (EXACT, EXACT32, FD, SETTINGS, arrays, fd_grad, first_order_weighted,
                     floats, fd_jvp, forward_jvp, jacobian_times, npy, reverse_grads,
                     reverse_jacobians, second_order, t32, t64, value, weighted)

ANY = floats(-2, 2)
POS = floats(0.5, 2.5)
NONZERO = st.builds(lambda m, s: m * s, floats(0.05, 2), st.sampled_from([-1.0, 1.0]))
FAR_FROM_ZERO = st.builds(lambda m, s: m * s, floats(0.5, 2), st.sampled_from([-1.0, 1.0]))
SHAPES = hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3)
MATRIX_SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)
GAP = 1e-3  # minimum distance to a kink (FD step is 1e-5)

CASES = {}


def case(name):
    def register(draw):
        CASES[name] = draw
        return draw
    return register


def draw_axis(data, ndim, allow_tuple=True):
    """None, a single (possibly negative) axis, or a tuple of axes of a rank-ndim tensor."""
    options = [None]
    if ndim:
        options += list(range(-ndim, ndim))
        if allow_tuple and ndim >= 2:
            options += [(0, ndim - 1), tuple(range(ndim))]
    return data.draw(st.sampled_from(options), label="axis")


# ---- elementwise: one input ------------------------------------------------------------------

UNARY = {
    "negative": (dd.negative, ANY, np.negative),
    "square": (dd.square, ANY, np.square),
    "sqrt": (dd.sqrt, POS, np.sqrt),
    "exp": (dd.exp, ANY, np.exp),
    "log": (dd.log, POS, np.log),
    "log1p": (dd.log1p, floats(-0.5, 2), np.log1p),
    "sin": (dd.sin, ANY, np.sin),
    "cos": (dd.cos, ANY, np.cos),
    "tan": (dd.tan, floats(-1.2, 1.2), np.tan),
    "tanh": (dd.tanh, ANY, np.tanh),
    "sigmoid": (dd.sigmoid, ANY, lambda x: 1 / (1 + np.exp(-x))),
    "relu": (dd.relu, NONZERO, lambda x: np.maximum(x, 0)),
    "abs": (dd.abs, NONZERO, np.abs),
    "unary_minus_operator": (lambda x: -x, ANY, np.negative),
    "pow_scalar_int_exponent": (lambda x: x ** 3, ANY, lambda x: x ** 3),
    "pow_scalar_frac_exponent": (lambda x: dd.pow(x, 2.5), POS, lambda x: x ** 2.5),
    "pow_scalar_neg_exponent": (lambda x: x ** -1.5, POS, lambda x: x ** -1.5),
    "pow_scalar_base": (lambda x: 2.0 ** x, ANY, lambda x: 2.0 ** x),
}

for _name, (_fn, _elements, _ref) in UNARY.items():
    def _draw(data, fn=_fn, elements=_elements):
        shape = data.draw(SHAPES, label="shape")
        return fn, [data.draw(arrays(shape, elements), label="x")]
    case(_name)(_draw)


# ---- elementwise: two inputs, broadcasting ---------------------------------------------------

BINARY = {
    "add": (dd.add, ANY, ANY),
    "subtract": (dd.subtract, ANY, ANY),
    "multiply": (dd.multiply, ANY, ANY),
    "divide": (dd.divide, ANY, FAR_FROM_ZERO),
    "pow_tensor_exponent": (dd.pow, POS, ANY),
    "add_operator": (lambda a, b: a + b, ANY, ANY),
    "sub_operator": (lambda a, b: a - b, ANY, ANY),
    "mul_operator": (lambda a, b: a * b, ANY, ANY),
    "div_operator": (lambda a, b: a / b, ANY, FAR_FROM_ZERO),
    "pow_operator": (lambda a, b: a ** b, POS, ANY),
    "maximum": (dd.maximum, ANY, ANY),
    "minimum": (dd.minimum, ANY, ANY),
}


def _two_shapes(data):
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2,
                                                         max_side=3), label="shapes")
    return shapes.input_shapes


for _name, (_fn, _ea, _eb) in BINARY.items():
    def _draw(data, fn=_fn, ea=_ea, eb=_eb, name=_name):
        sa, sb = _two_shapes(data)
        a = data.draw(arrays(sa, ea), label="a")
        b = data.draw(arrays(sb, eb), label="b")
        if name in ("maximum", "minimum"):
            assume(np.all(np.abs(np.subtract(a, b)) > GAP))
        return fn, [a, b]
    case(_name)(_draw)


@case("where")
def _(data):
    sc, sx, sy = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=2, max_side=3),
                           label="shapes").input_shapes
    cond = data.draw(hnp.arrays(np.bool_, sc), label="cond")
    return (lambda x, y: dd.where(dd.constant(cond), x, y)), [
        data.draw(arrays(sx), label="x"), data.draw(arrays(sy), label="y")]


@case("clip_by_value")
def _(data):
    shape = data.draw(SHAPES, label="shape")
    x = data.draw(arrays(shape), label="x")
    lo, hi = -0.5, 0.7
    assume(np.all(np.abs(x - lo) > GAP) and np.all(np.abs(x - hi) > GAP))
    return (lambda t: dd.clip_by_value(t, lo, hi)), [x]


@case("clip_by_value_tensor_bounds")
def _(data):
    shape = data.draw(SHAPES, label="shape")
    x, lo, hi = (data.draw(arrays(shape), label=k) for k in "x lo hi".split())
    lo, hi = np.minimum(lo, hi) - 0.01, np.maximum(lo, hi) + 0.01
    assume(np.all(np.abs(x - lo) > GAP) and np.all(np.abs(x - hi) > GAP))
    return (lambda t, a, b: dd.clip_by_value(t, a, b)), [x, lo, hi]


# ---- reductions ------------------------------------------------------------------------------

REDUCTIONS = {
    "reduce_sum": dd.reduce_sum,
    "reduce_mean": dd.reduce_mean,
    "reduce_max": dd.reduce_max,
    "reduce_min": dd.reduce_min,
    "reduce_logsumexp": dd.reduce_logsumexp,
    "norm": dd.norm,
}

for _name, _fn in REDUCTIONS.items():
    def _draw(data, fn=_fn, name=_name):
        shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), label="shape")
        axis = draw_axis(data, len(shape))
        keepdims = data.draw(st.booleans(), label="keepdims")
        x = data.draw(arrays(shape, unique=name in ("reduce_max", "reduce_min")), label="x")
        if name in ("reduce_max", "reduce_min"):
            flat = np.sort(x.reshape(-1))
            assume(flat.size < 2 or np.min(np.diff(flat)) > GAP)
        if name == "norm":
            # every reduced slice away from 0
            nx = np.sqrt(np.sum(x * x, axis=axis, keepdims=True))
            assume(np.all(nx > 0.1))
        return (lambda t: fn(t, axis=axis, keepdims=keepdims)), [x]
    case(_name)(_draw)


@case("norm_ord1")
def _(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=3), label="shape")
    axis = draw_axis(data, len(shape), allow_tuple=False)
    return (lambda t: dd.norm(t, ord=1, axis=axis)), [data.draw(arrays(shape, NONZERO), label="x")]


for _name, _fn in (("softmax", dd.softmax), ("log_softmax", dd.log_softmax)):
    def _draw(data, fn=_fn):
        shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), label="shape")
        axis = data.draw(st.sampled_from(list(range(-len(shape), len(shape)))), label="axis")
        return (lambda t: fn(t, axis=axis)), [data.draw(arrays(shape), label="x")]
    case(_name)(_draw)


# ---- linear algebra ---------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((2, 3), (3, 2)),
    ((1, 3), (3, 1)),
    ((3,), (3, 2)),          # 1-D first operand: a row vector
    ((2, 3), (3,)),          # 1-D second operand: a column vector
    ((3,), (3,)),            # two vectors: their dot product
    ((2, 1, 2, 3), (3, 3, 2)),  # batch axes broadcast: (2, 1) with (3,)
    ((2, 2, 3), (3, 2)),
    ((3,), (2, 3, 2)),
    ((2, 2, 3), (3,)),
]


@case("matmul")
def _(data):
    sa, sb = data.draw(st.sampled_from(MATMUL_SHAPES), label="shapes")
    a, b = data.draw(arrays(sa), label="a"), data.draw(arrays(sb), label="b")
    return dd.matmul, [a, b]


@case("matmul_operator")
def _(data):
    sa, sb = data.draw(st.sampled_from(MATMUL_SHAPES), label="shapes")
    return (lambda a, b: a @ b), [data.draw(arrays(sa), label="a"), data.draw(arrays(sb), label="b")]


@case("matmul_transposed")
def _(data):
    ta, tb = data.draw(st.booleans(), label="ta"), data.draw(st.booleans(), label="tb")
    sa = (3, 2) if ta else (2, 3)
    sb = (2, 3) if tb else (3, 2)
    return (lambda a, b: dd.matmul(a, b, transpose_a=ta, transpose_b=tb)), [
        data.draw(arrays(sa), label="a"), data.draw(arrays(sb), label="b")]


@case("matmul_adjoint")
def _(data):
    # TensorFlow's adjoint flags on dualad.matmul itself (the transpose, for real dtypes),
    # mixed with the transpose flags on the other operand; a vector b takes the 2-D fast path
    aa, ab = data.draw(st.booleans(), label="aa"), data.draw(st.booleans(), label="ab")
    vector_b = data.draw(st.booleans(), label="vector_b") and not ab
    sa = (3, 2) if aa else (2, 3)
    sb = (3,) if vector_b else ((2, 3) if ab else (3, 2))
    return (lambda a, b: dd.matmul(a, b, adjoint_a=aa, transpose_b=False, adjoint_b=ab)), [
        data.draw(arrays(sa), label="a"), data.draw(arrays(sb), label="b")]


# ---- shapes and indexing ---------------------------------------------------------------------

@case("transpose")
def _(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), label="shape")
    perm = data.draw(st.one_of(st.none(), st.permutations(range(len(shape)))), label="perm")
    return (lambda t: dd.transpose(t, perm)), [data.draw(arrays(shape), label="x")]


@case("reshape")
def _(data):
    old, new = data.draw(st.sampled_from([
        ((2, 3), (6,)), ((2, 3), (3, 2)), ((6,), (2, 3, 1)), ((2, 3), (-1,)), ((1,), ()),
        ((), (1, 1)), ((2, 2, 3), (4, -1)), ((3, 2), (2, 1, 3))]), label="shapes")
    return (lambda t: dd.reshape(t, new)), [data.draw(arrays(old), label="x")]


@case("expand_dims")
def _(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), label="shape")
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    return (lambda t: dd.expand_dims(t, axis)), [data.draw(arrays(shape), label="x")]


@case("squeeze")
def _(data):
    shape, axis = data.draw(st.sampled_from([
        ((1, 3, 1), None), ((1, 3, 1), 0), ((1, 3, 1), -1), ((1, 3, 1), (0, 2)), ((3, 1), 1),
        ((1,), None), ((1, 1), None)]), label="shape, axis")
    return (lambda t: dd.squeeze(t, axis)), [data.draw(arrays(shape), label="x")]


@case("concat")
def _(data):
    ndim = data.draw(st.integers(1, 3), label="ndim")
    base = data.draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, max_side=3), label="shape")
    axis = data.draw(st.integers(-ndim, ndim - 1), label="axis")
    n = data.draw(st.integers(2, 3), label="n")
    shapes = []
    for i in range(n):
        s = list(base)
        s[axis] = data.draw(st.integers(1, 3), label=f"size{i}")
        shapes.append(tuple(s))
    xs = [data.draw(arrays(s), label=f"x{i}") for i, s in enumerate(shapes)]
    return (lambda *ts: dd.concat(list(ts), axis=axis)), xs


@case("stack")
def _(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3), label="shape")
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), label="axis")
    n = data.draw(st.integers(1, 3), label="n")
    xs = [data.draw(arrays(shape), label=f"x{i}") for i in range(n)]
    return (lambda *ts: dd.stack(list(ts), axis=axis)), xs


INDEX_KEYS = {
    "int": 1,
    "negative_int": -1,
    "slice": slice(1, 3),
    "negative_slice": slice(-2, None),
    "reversed": slice(None, None, -1),
    "strided": (slice(None, None, 2), slice(1, None)),
    "column": (slice(None), -2),
    "element": (2, -1),
    "ellipsis_list": (Ellipsis, [1, -1]),
    "newaxis": (None, slice(0, 2)),
    "fancy_repeats": np.array([0, 2, 2, -1]),
    "fancy_2d": np.array([[0, 1], [2, 0]]),
    "fancy_pairs": (np.array([0, -1, 0]), np.array([1, 3, 1])),
    "mixed": (slice(1, None), np.array([3, 0, 3])),
    "bool_mask_rows": np.array([True, False, True]),
}


@case("getitem")
def _(data):
    key_name = data.draw(st.sampled_from(sorted(INDEX_KEYS)), label="key")
    key = INDEX_KEYS[key_name]
    return (lambda t: t[key]), [data.draw(arrays((3, 4)), label="x")]


SCATTER_KEYS = {  # (key, shape of the result) of scatter_add, the transpose of getitem
    "repeated_indices": (np.array([0, 2, 2, 1]), (3,)),
    "columns": ((slice(None), np.array([1, 1, 3])), (2, 4)),
}


@case("scatter_add")
def _(data):
    # not a public op (getitem's VJP): the primitive itself, on a cotangent-shaped input
    key, shape = SCATTER_KEYS[data.draw(st.sampled_from(sorted(SCATTER_KEYS)), label="key")]
    g_shape = np.zeros(shape)[key].shape
    return (lambda g: dd.rules.scatter_add(g, shape=shape, key=key)), [
        data.draw(arrays(g_shape), label="g")]


@case("cast")
def _(data):
    # dd.cast to the same dtype returns its input; the primitive itself runs the rules (in
    # float64, so that finite differences stay exact enough)
    shape = data.draw(SHAPES, label="shape")
    return (lambda t: dd.rules.cast(t, dtype=np.dtype(np.float64))), [
        data.draw(arrays(shape), label="x")]


@case("getitem_tensor_index")
def _(data):
    idx = data.draw(st.lists(st.integers(-3, 2), min_size=1, max_size=4), label="idx")
    return (lambda t: t[dd.constant(idx)]), [data.draw(arrays((3, 2)), label="x")]


@case("getitem_scalar_tensor_index")
def _(data):
    i = data.draw(st.integers(-3, 2), label="i")
    return (lambda t: t[dd.constant(i)]), [data.draw(arrays((3, 2)), label="x")]


@case("broadcast_to")
def _(data):
    shape, target = data.draw(st.sampled_from([((3,), (2, 3)), ((1,), (4,)), ((), (2, 2)),
                                               ((2, 1), (2, 3)), ((1, 3), (2, 2, 3))]),
                              label="shapes")
    return (lambda t: dd.broadcast_to(t, target)), [data.draw(arrays(shape), label="x")]


@case("identity")
def _(data):
    shape = data.draw(SHAPES, label="shape")
    return dd.identity, [data.draw(arrays(shape), label="x")]


@case("add_n")
def _(data):
    shape = data.draw(SHAPES, label="shape")
    n = data.draw(st.integers(1, 3), label="n")
    return (lambda *ts: dd.add_n(list(ts))), [data.draw(arrays(shape), label=f"x{i}")
                                              for i in range(n)]


@case("numpy_sin_sum")
def _(data):
    # numpy functions on tensors are recorded as dualad ops
    shape = data.draw(SHAPES, label="shape")
    return (lambda t: np.sum(np.sin(t) * np.exp(t), axis=None)), [data.draw(arrays(shape),
                                                                            label="x")]


# ---- TensorFlow ops: elementwise math, scans, products, einsum --------------------------------

NEW_UNARY = {
    "reciprocal": (dd.reciprocal, FAR_FROM_ZERO, np.reciprocal),
    "rsqrt": (dd.rsqrt, POS, lambda x: 1 / np.sqrt(x)),
    "erf": (dd.erf, ANY, np.vectorize(__import__("math").erf)),
    "sign": (dd.sign, NONZERO, np.sign),
}
UNARY.update(NEW_UNARY)
for _name, (_fn, _elements, _ref) in NEW_UNARY.items():
    def _draw(data, fn=_fn, elements=_elements):
        shape = data.draw(SHAPES, label="shape")
        return fn, [data.draw(arrays(shape, elements), label="x")]
    case(_name)(_draw)


@case("atan2")
def _(data):
    sa, sb = _two_shapes(data)
    y, x = data.draw(arrays(sa), label="y"), data.draw(arrays(sb), label="x")
    # away from the origin and from the branch cut (x < 0, y = 0)
    assume(np.all(np.hypot(*np.broadcast_arrays(y, x)) > 0.1))
    assume(np.all((np.abs(y) > GAP) | (x > 0)))
    return dd.atan2, [y, x]


@case("floormod")
def _(data):
    sa, sb = _two_shapes(data)
    x, y = data.draw(arrays(sa), label="x"), data.draw(arrays(sb, FAR_FROM_ZERO), label="y")
    q = np.divide(x, y)
    assume(np.all(np.abs(q - np.round(q)) > GAP))  # away from the jumps of floor(x / y)
    return dd.floormod, [x, y]


for _name, _fn in (("cumsum", dd.cumsum), ("cumprod", dd.cumprod)):
    def _draw(data, fn=_fn, name=_name):
        shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), label="shape")
        axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
        exclusive, reverse = (data.draw(st.booleans(), label=k) for k in ("exclusive", "reverse"))
        x = data.draw(arrays(shape), label="x")
        return (lambda t: fn(t, axis=axis, exclusive=exclusive, reverse=reverse)), [x]
    case(_name)(_draw)


@case("reduce_prod")
def _(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), label="shape")
    axis = draw_axis(data, len(shape))
    keepdims = data.draw(st.booleans(), label="keepdims")
    return (lambda t: dd.reduce_prod(t, axis=axis, keepdims=keepdims)), [
        data.draw(arrays(shape), label="x")]


@case("reduce_prod_with_zeros")
def _(data):
    # one or two exact zeros in a reduced slice: derivatives are products of the other
    # elements (a rule dividing by x would give 0/0 here)
    x = data.draw(arrays((2, 4)), label="x")
    zeros = data.draw(st.lists(st.integers(0, 7), min_size=1, max_size=2, unique=True),
                      label="zeros")
    x.reshape(-1)[zeros] = 0.0
    axis = data.draw(st.sampled_from([1, None]), label="axis")
    return (lambda t: dd.reduce_prod(t, axis=axis)), [x]


@case("cumprod_with_zeros")
def _(data):
    x = data.draw(arrays((2, 4)), label="x")
    zeros = data.draw(st.lists(st.integers(0, 7), min_size=1, max_size=2, unique=True),
                      label="zeros")
    x.reshape(-1)[zeros] = 0.0
    exclusive, reverse = (data.draw(st.booleans(), label=k) for k in ("exclusive", "reverse"))
    return (lambda t: dd.cumprod(t, axis=1, exclusive=exclusive, reverse=reverse)), [x]


EINSUM_EQUATIONS = {  # equation -> operand shapes
    "ij,jk->ik": [(2, 3), (3, 2)],
    "ij,ij->": [(2, 3), (2, 3)],
    "ij->ji": [(2, 3)],
    "ii->i": [(3, 3)],
    "ii": [(3, 3)],
    "ij->i": [(2, 3)],
    "i,j->ij": [(2,), (3,)],
    "bij,bjk->bik": [(2, 2, 3), (2, 3, 2)],
    "...ij,...jk->...ik": [(2, 1, 2, 3), (3, 3, 2)],
    "ij,jk,kl->il": [(2, 3), (3, 2), (2, 2)],
    "iij,jk->ik": [(2, 2, 3), (3, 2)],
    "iii->i": [(2, 2, 2)],
    "...i->...": [(2, 3)],
    "ij,jk": [(2, 3), (3, 2)],
}


@case("einsum")
def _(data):
    equation = data.draw(st.sampled_from(sorted(EINSUM_EQUATIONS)), label="equation")
    xs = [data.draw(arrays(s), label=f"x{i}") for i, s in enumerate(EINSUM_EQUATIONS[equation])]
    return (lambda *ts: dd.einsum(equation, *ts)), xs


# ---- TensorFlow ops composed of primitives: gathers, masks, slices, pads ----------------------

@case("gather")
def _(data):
    axis, batch_dims, idx_shape = data.draw(st.sampled_from(
        [(0, 0, (4,)), (1, 0, (2, 2)), (-1, 0, ()), (1, 1, (2, 3)), (2, 1, (2, 2))]),
        label="axis, batch_dims, indices shape")
    x = data.draw(arrays((2, 3, 3)), label="x")
    idx = data.draw(hnp.arrays(np.int64, idx_shape, elements=st.integers(0, 1)), label="idx")
    return (lambda t: dd.gather(t, idx, axis=axis, batch_dims=batch_dims)), [x]


@case("gather_nd")
def _(data):
    batch_dims, idx = data.draw(st.sampled_from([
        (0, [[0, 1], [1, 2], [0, 1]]), (0, [[1], [0]]), (0, [0, 2, 1]), (1, [[1], [0]]),
        (1, [[[0, 2]], [[1, 1]]])]), label="batch_dims, indices")
    return (lambda t: dd.gather_nd(t, idx, batch_dims=batch_dims)), [
        data.draw(arrays((2, 3, 3)), label="x")]


@case("tile")
def _(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), label="shape")
    reps = data.draw(st.lists(st.integers(1, 3), min_size=len(shape), max_size=len(shape)),
                     label="multiples")
    return (lambda t: dd.tile(t, reps)), [data.draw(arrays(shape), label="x")]


@case("boolean_mask")
def _(data):
    axis = data.draw(st.sampled_from([None, 1]), label="axis")
    mask = data.draw(hnp.arrays(np.bool_, (2, 3) if axis is None else (3,)), label="mask")
    return (lambda t: dd.boolean_mask(t, mask, axis=axis)), [data.draw(arrays((2, 3, 2)), label="x")]


@case("pad")
def _(data):
    mode = data.draw(st.sampled_from(["CONSTANT", "REFLECT", "SYMMETRIC"]), label="mode")
    paddings = data.draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                                  min_size=2, max_size=2), label="paddings")
    value = data.draw(st.sampled_from([0.0, 1.5]), label="constant_values")
    return (lambda t: dd.pad(t, paddings, mode, constant_values=value)), [
        data.draw(arrays((3, 3)), label="x")]


@case("slice")
def _(data):
    begin, size = data.draw(st.sampled_from([([0, 1], [2, 2]), ([1, 0], [-1, 3]), ([2, 3], [1, 0]),
                                             ([0, 0], [3, 4])]), label="begin, size")
    return (lambda t: dd.slice(t, begin, size)), [data.draw(arrays((3, 4)), label="x")]


@case("split")
def _(data):
    splits, axis = data.draw(st.sampled_from([(2, 1), ([1, -1], 0), ([3, 0, 1], -1), (1, 0)]),
                             label="splits, axis")

    def fn(t):
        # weight each part differently, so that a part's gradient landing in another shows
        return dd.concat([p * float(i + 1) for i, p in enumerate(dd.split(t, splits, axis))], axis)
    return fn, [data.draw(arrays((3, 4)), label="x")]


@case("unstack")
def _(data):
    axis = data.draw(st.integers(-2, 1), label="axis")
    return (lambda t: dd.stack([p * float(i + 1) for i, p in enumerate(dd.unstack(t, axis=axis))])), [
        data.draw(arrays((2, 3)), label="x")]


@case("unsorted_segment_sum")
def _(data):
    ids = data.draw(hnp.arrays(np.int64, (2, 3), elements=st.integers(-1, 3)), label="ids")
    return (lambda t: dd.unsorted_segment_sum(t, ids, 4)), [data.draw(arrays((2, 3, 2)), label="x")]


@case("segment_sum")
def _(data):
    ids = sorted(data.draw(st.lists(st.integers(0, 3), min_size=4, max_size=4), label="ids"))
    return (lambda t: dd.segment_sum(t, ids)), [data.draw(arrays((4, 2)), label="x")]


@case("linspace")
def _(data):
    num, axis = data.draw(st.sampled_from([(1, 0), (4, 0), (3, 1), (3, -1)]), label="num, axis")
    return (lambda a, b: dd.linspace(a, b, num, axis=axis)), [
        data.draw(arrays((2,)), label="start"), data.draw(arrays((2,)), label="stop")]


@case("fill")
def _(data):
    return (lambda v: dd.fill((2, 3), v)), [data.draw(arrays(()), label="value")]


# ---- the properties ------------------------------------------------------------------------

NAMES = sorted(CASES)


def _draw_like(data, shape, label):
    return data.draw(arrays(shape), label=label)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_vjp_matches_finite_differences(name, data):
    fn, xs = CASES[name](data)
    y = value(fn, xs)
    u = _draw_like(data, y.shape, "u")
    grads = reverse_grads(fn, xs, u)
    expected = fd_grad(weighted(fn, u), xs)
    assert len(grads) == len(xs)
    for g, x, e in zip(grads, xs, expected):
        assert g.shape == np.shape(x), f"gradient shape {g.shape} for an input of shape {np.shape(x)}"
        assert g.dtype == dd.float64
        np.testing.assert_allclose(npy(g), e, **FD)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_jvp_equals_reverse_mode_jacobian_times_tangent(name, data):
    fn, xs = CASES[name](data)
    vs = [_draw_like(data, np.shape(x), f"v{i}") for i, x in enumerate(xs)]
    y, jacobians = reverse_jacobians(fn, xs)
    for J, x in zip(jacobians, xs):
        assert J.shape == y.shape + np.shape(x)
    tangent = forward_jvp(fn, xs, vs)
    assert tangent.shape == y.shape and tangent.dtype == dd.float64
    np.testing.assert_allclose(npy(tangent), jacobian_times(jacobians, vs), **EXACT)
    # and against a reference that is not dualad's: differences of fn's values along vs
    expected = fd_jvp(lambda *a: npy(value(fn, a)), xs, vs)
    np.testing.assert_allclose(npy(tangent), expected, **FD)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_second_derivative_matches_finite_differences_of_first(name, data):
    fn, xs = CASES[name](data)
    y = value(fn, xs)
    u = _draw_like(data, y.shape, "u")
    ws = [_draw_like(data, np.shape(x), f"w{i}") for i, x in enumerate(xs)]
    hvp = second_order(fn, xs, u, ws)
    expected = fd_grad(lambda *a: first_order_weighted(fn, a, u, ws), xs)
    for h, x, e in zip(hvp, xs, expected):
        assert h.shape == np.shape(x)
        np.testing.assert_allclose(npy(h), e, **FD)


# ---- values against numpy --------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(UNARY))
@SETTINGS
@given(data=st.data())
def test_unary_values_match_numpy(name, data):
    fn, elements, ref = UNARY[name]
    x = data.draw(arrays(data.draw(SHAPES, label="shape"), elements), label="x")
    np.testing.assert_allclose(value(fn, [x]), ref(x), **EXACT)


REDUCTION_REFS = {
    "reduce_sum": lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
    "reduce_mean": lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims),
    "reduce_max": lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims),
    "reduce_min": lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims),
    "norm": lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims)),
    "reduce_logsumexp": lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis,
                                                                keepdims=keepdims)),
}


@pytest.mark.parametrize("name", sorted(REDUCTION_REFS))
@SETTINGS
@given(data=st.data())
def test_reduction_values_and_shapes_match_numpy(name, data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=3), label="shape")
    axis = draw_axis(data, len(shape))
    keepdims = data.draw(st.booleans(), label="keepdims")
    x = data.draw(arrays(shape), label="x")
    out = REDUCTIONS[name](t64(x), axis=axis, keepdims=keepdims)
    expected = REDUCTION_REFS[name](x, axis, keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(npy(out), expected, **EXACT)


@given(data=st.data())
@SETTINGS
def test_matmul_values_match_numpy(data):
    sa, sb = data.draw(st.sampled_from(MATMUL_SHAPES), label="shapes")
    a, b = data.draw(arrays(sa), label="a"), data.draw(arrays(sb), label="b")
    out = dd.matmul(t64(a), t64(b))
    assert out.shape == np.matmul(a, b).shape
    np.testing.assert_allclose(npy(out), np.matmul(a, b), **EXACT)


@pytest.mark.parametrize("key_name", sorted(INDEX_KEYS))
def test_indexing_values_match_numpy(key_name):
    x = np.arange(12.0).reshape(3, 4)
    key = INDEX_KEYS[key_name]
    np.testing.assert_array_equal(npy(t64(x)[key]), x[key])


@pytest.mark.parametrize("key_name", sorted(INDEX_KEYS))
def test_indexing_gradient_scatters_back_with_repeats(key_name):
    # d sum(x[key]) / dx counts how often each element is selected
    x = np.arange(12.0).reshape(3, 4)
    key = INDEX_KEYS[key_name]
    counts = np.zeros_like(x)
    np.add.at(counts, key, 1.0)
    tx = t64(x)
    with dd.GradientTape() as tape:
        tape.watch(tx)
        y = dd.reduce_sum(tx[key])
    np.testing.assert_array_equal(npy(tape.gradient(y, tx)), counts)


def test_softmax_values_and_log_softmax_consistency():
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 5.0]])
    s = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(npy(dd.softmax(t64(x))), s, **EXACT)
    np.testing.assert_allclose(npy(dd.log_softmax(t64(x))), np.log(s), **EXACT)
    np.testing.assert_allclose(npy(dd.reduce_logsumexp(t64(x), axis=1)),
                               np.log(np.exp(x).sum(axis=1)), **EXACT)
    # stable for large logits (no overflow to inf/nan)
    big = np.array([1000.0, 1001.0])
    np.testing.assert_allclose(npy(dd.softmax(t64(big))), [1 / (1 + np.e), np.e / (1 + np.e)],
                               **EXACT)
    np.testing.assert_allclose(float(dd.reduce_logsumexp(t64(big))), 1001 + np.log1p(np.exp(-1)),
                               **EXACT)


# ---- cast and stop_gradient: closed forms ----------------------------------------------------

def test_cast_gradient_flows_between_float_dtypes_in_the_source_dtype():
    x = t64([0.5, -1.25])
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.cast(x, dd.float32)
        z = dd.reduce_sum(y * t32([3.0, 4.0]))
    g = tape.gradient(z, x)
    assert y.dtype == dd.float32 and g.dtype == dd.float64
    np.testing.assert_array_equal(npy(g), [3.0, 4.0])


def test_cast_to_int_blocks_the_gradient_and_cast_to_same_dtype_is_identity():
    x = t64([0.5, 2.5])
    with dd.GradientTape() as tape:
        tape.watch(x)
        i = dd.cast(x, dd.int32)
        y = dd.cast(i, dd.float64) * x
        same = dd.cast(x, dd.float64)
    assert same is x
    np.testing.assert_array_equal(np.asarray(i), [0, 2])
    # only the direct factor contributes; the int path is not differentiable
    np.testing.assert_array_equal(npy(tape.gradient(y, x)), [0.0, 2.0])


def test_cast_second_derivative_and_jvp():
    x = t64(1.5)
    with dd.GradientTape() as outer:
        outer.watch(x)
        with dd.GradientTape() as inner:
            inner.watch(x)
            y = dd.square(dd.cast(x, dd.float32))
        g = inner.gradient(y, x)
    assert g.dtype == dd.float64 and float(g) == 3.0
    assert float(outer.gradient(g, x)) == 2.0
    with dd.ForwardAccumulator(x, t64(2.0)) as acc:
        y = dd.cast(x, dd.float32) * 3.0
    t = acc.jvp(y)
    assert t.dtype == dd.float32 and float(t) == 6.0


@settings(max_examples=25, deadline=None)
@given(x=arrays((3,)))
def test_stop_gradient_blocks_reverse_and_forward_mode(x):
    tx = t64(x)
    with dd.GradientTape() as tape:
        tape.watch(tx)
        y = dd.reduce_sum(tx * dd.stop_gradient(tx))
    # d/dx (x * c) with c = x held constant is c, not 2x
    np.testing.assert_allclose(npy(tape.gradient(y, tx)), x, **EXACT)
    with dd.GradientTape() as tape:
        tape.watch(tx)
        y = dd.stop_gradient(tx * 3.0)
    assert tape.gradient(y, tx) is None
    with dd.ForwardAccumulator(tx, t64(np.ones(3))) as acc:
        y = dd.stop_gradient(dd.sin(tx))
        z = tx * dd.stop_gradient(tx)
    assert acc.jvp(y) is None
    np.testing.assert_allclose(npy(acc.jvp(z)), x, **EXACT)
    np.testing.assert_allclose(npy(y), np.sin(x), **EXACT)


# ---- the scalar (C double) path and the numpy path agree -------------------------------------

# ops that have a scalar opcode in the core, with domains away from kinks
SCALAR_PATH_OPS = {
    "add": (lambda a, b: a + b, ANY, ANY),
    "subtract": (lambda a, b: a - b, ANY, ANY),
    "multiply": (lambda a, b: a * b, ANY, ANY),
    "divide": (lambda a, b: a / b, ANY, FAR_FROM_ZERO),
    "pow": (lambda a, b: a ** b, POS, ANY),
    "maximum": (dd.maximum, ANY, ANY),
    "minimum": (dd.minimum, ANY, ANY),
    "negative": (lambda a: -a, ANY),
    "square": (dd.square, ANY),
    "sqrt": (dd.sqrt, POS),
    "exp": (dd.exp, ANY),
    "log": (dd.log, POS),
    "log1p": (dd.log1p, floats(-0.5, 2)),
    "sin": (dd.sin, ANY),
    "cos": (dd.cos, ANY),
    "tan": (dd.tan, floats(-1.2, 1.2)),
    "tanh": (dd.tanh, ANY),
    "sigmoid": (dd.sigmoid, ANY),
    "relu": (dd.relu, NONZERO),
    "abs": (dd.abs, NONZERO),
}


def _path_results(fn, values, shape, dtype):
    """Value, first derivatives (raw sweep), second derivatives (nested) and JVP of fn at
    values, with every input a tensor of `shape` (() for the C path, (1,) for numpy)."""
    make = (lambda v: dd.constant(np.full(shape, v, dtype=dtype)))
    ts = [make(v) for v in values]
    with dd.GradientTape() as tape:
        tape.watch(ts)
        y = fn(*ts)
    grads = tape.gradient(y, ts)
    ts = [make(v) for v in values]
    with dd.GradientTape() as outer:
        outer.watch(ts)
        with dd.GradientTape() as inner:
            inner.watch(ts)
            y2 = fn(*ts)
        g = inner.gradient(y2, ts[0])
    second = outer.gradient(g, ts, unconnected_gradients="zero")
    ts = [make(v) for v in values]
    with dd.ForwardAccumulator(ts, [dd.ones_like(t) for t in ts]) as acc:
        y3 = fn(*ts)
    jvp = acc.jvp(y3)
    out = [y] + list(grads) + list(second) + [jvp]
    for t in out:
        assert t.shape == shape and t.dtype == np.dtype(dtype)
    return [np.asarray(t, dtype=np.float64).reshape(()) for t in out]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(SCALAR_PATH_OPS))
@SETTINGS
@given(data=st.data())
def test_scalar_fast_path_agrees_with_numpy_path(name, dtype, data):
    fn, *domains = SCALAR_PATH_OPS[name]
    values = [data.draw(d, label=f"x{i}") for i, d in enumerate(domains)]
    if name in ("maximum", "minimum"):
        assume(abs(values[0] - values[1]) > GAP)
    scalar = _path_results(fn, values, (), dtype)
    array = _path_results(fn, values, (1,), dtype)
    if dtype == "float32":
        # the value: within the stated float32 contract (README), not just a tolerance
        assert ulp_distance(scalar[0], array[0]) <= FLOAT32_ULP_BOUND.get(name, 0), \
            (name, values, scalar[0], array[0])
    tol = EXACT if dtype == "float64" else EXACT32
    for s, a in zip(scalar, array):
        np.testing.assert_allclose(s, a, **tol)
    if dtype == "float64":
        # and the scalar path's first derivatives are right
        expected = fd_grad(lambda *a: float(fn(*[t64(v) for v in a])), [np.float64(v) for v in values])
        for s, e in zip(scalar[1:1 + len(values)], expected):
            np.testing.assert_allclose(s, e, **FD)
