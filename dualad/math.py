"""TensorFlow's `tf.math` namespace: dualad's math ops under TensorFlow's names. Those without
a primitive of their own are compositions (differentiated through their parts)."""
from . import nn, ops
from ._core import float_tensor as _float_tensor


def squared_difference(x, y, name=None):
    """(x - y) ** 2, elementwise with broadcasting."""
    return ops.square(ops.subtract(x, y))


def log_sigmoid(x, name=None):
    """log(sigmoid(x)) = -softplus(-x), without underflow for large negative x."""
    return -nn.softplus(-_float_tensor(x, "log_sigmoid"))


def reduce_variance(input_tensor, axis=None, keepdims=False, name=None):
    """The (population) variance over `axis` (all axes when None)."""
    x = _float_tensor(input_tensor, "reduce_variance")
    deviation = x - ops.reduce_mean(x, axis=axis, keepdims=True)
    return ops.reduce_mean(ops.square(deviation), axis=axis, keepdims=keepdims)


def reduce_std(input_tensor, axis=None, keepdims=False, name=None):
    """The (population) standard deviation over `axis`; its gradient is infinite where the
    deviation is 0, as in TensorFlow."""
    return ops.sqrt(reduce_variance(input_tensor, axis=axis, keepdims=keepdims))


def reduce_euclidean_norm(input_tensor, axis=None, keepdims=False, name=None):
    """sqrt(sum(x ** 2)) over `axis` (dualad.norm)."""
    return ops.norm(input_tensor, axis=axis, keepdims=keepdims)


# TensorFlow name -> dualad function: the one table of this namespace (a new op, one line)
_NAMES = {
    "abs": ops.abs,
    "add": ops.add,
    "add_n": ops.add_n,
    "subtract": ops.subtract,
    "multiply": ops.multiply,
    "divide": ops.divide,
    "truediv": ops.truediv,
    "negative": ops.negative,
    "reciprocal": ops.reciprocal,
    "pow": ops.pow,
    "square": ops.square,
    "squared_difference": squared_difference,
    "sqrt": ops.sqrt,
    "rsqrt": ops.rsqrt,
    "exp": ops.exp,
    "log": ops.log,
    "log1p": ops.log1p,
    "sin": ops.sin,
    "cos": ops.cos,
    "tan": ops.tan,
    "tanh": ops.tanh,
    "sigmoid": ops.sigmoid,
    "log_sigmoid": log_sigmoid,
    "softplus": nn.softplus,
    "softmax": ops.softmax,
    "log_softmax": ops.log_softmax,
    "l2_normalize": nn.l2_normalize,
    "sign": ops.sign,
    "maximum": ops.maximum,
    "minimum": ops.minimum,
    "equal": ops.equal,
    "not_equal": ops.not_equal,
    "less": ops.less,
    "less_equal": ops.less_equal,
    "greater": ops.greater,
    "greater_equal": ops.greater_equal,
    "logical_and": ops.logical_and,
    "logical_or": ops.logical_or,
    "logical_not": ops.logical_not,
    "argmax": ops.argmax,
    "argmin": ops.argmin,
    "reduce_sum": ops.reduce_sum,
    "reduce_mean": ops.reduce_mean,
    "reduce_max": ops.reduce_max,
    "reduce_min": ops.reduce_min,
    "reduce_all": ops.reduce_all,
    "reduce_any": ops.reduce_any,
    "reduce_logsumexp": ops.reduce_logsumexp,
    "reduce_variance": reduce_variance,
    "reduce_std": reduce_std,
    "reduce_euclidean_norm": reduce_euclidean_norm,
    "reduce_prod": ops.reduce_prod,
    "cumsum": ops.cumsum,
    "cumprod": ops.cumprod,
    "atan2": ops.atan2,
    "erf": ops.erf,
    "floor": ops.floor,
    "ceil": ops.ceil,
    "round": ops.round,
    "floordiv": ops.floordiv,
    "floormod": ops.floormod,
    "mod": ops.floormod,
    "segment_sum": ops.segment_sum,
    "unsorted_segment_sum": ops.unsorted_segment_sum,
}
globals().update(_NAMES)
__all__ = sorted(_NAMES)
