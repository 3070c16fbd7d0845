"""TensorFlow's `tf.nn` namespace: activations and losses under TensorFlow's names and argument
names (labels=, logits=, axis=). Those dualad has no primitive for are compositions of
primitives, written so that they neither overflow nor lose their gradient at the kinks."""
import numpy as np

from . import ops
from ._core import convert_to_tensor, float_tensor as _float_tensor


def _where_safe(positive, x):
    """x split at `positive` into two copies that are 0 where the other branch is taken: a
    branch that would overflow (exp of a large argument) then only sees 0, and its unused
    derivative cannot turn into nan (0 * inf) in the gradient of a where."""
    zero = ops.zeros_like(x)
    return ops.where(positive, x, zero), ops.where(positive, zero, x)


def softplus(features, name=None):
    """log(1 + exp(x)), without overflow for large x; its derivative is sigmoid(x)."""
    x = _float_tensor(features, "softplus")
    positive = ops.greater(x, 0)
    x_pos, x_neg = _where_safe(positive, x)
    # x > 0: x + log(1 + exp(-x)); else log(1 + exp(x)): exp never sees a positive argument
    return ops.where(positive, x_pos + ops.log1p(ops.exp(-x_pos)), ops.log1p(ops.exp(x_neg)))


def elu(features, name=None):
    """x for x > 0, exp(x) - 1 otherwise (derivative 1 at 0, as TensorFlow)."""
    x = _float_tensor(features, "elu")
    positive = ops.greater(x, 0)
    x_pos, x_neg = _where_safe(positive, x)
    return ops.where(positive, x_pos, ops.exp(x_neg) - 1)


def relu6(features, name=None):
    """min(max(x, 0), 6)."""
    return ops.minimum(ops.relu(features), 6)


def leaky_relu(features, alpha=0.2, name=None):
    """x for x > 0, alpha * x otherwise."""
    x = _float_tensor(features, "leaky_relu")
    return ops.where(ops.greater(x, 0), x, alpha * x)


def silu(features, beta=1.0, name=None):
    """x * sigmoid(beta * x) (also tf.nn.swish)."""
    x = _float_tensor(features, "silu")
    return x * ops.sigmoid(beta * x)


def l2_loss(t, name=None):
    """sum(t ** 2) / 2, a scalar."""
    return ops.reduce_sum(ops.square(_float_tensor(t, "l2_loss"))) / 2


def l2_normalize(x, axis=None, epsilon=1e-12, name=None):
    """x / sqrt(max(sum(x ** 2, axis), epsilon)): unit norm along `axis` (all axes when None)."""
    x = _float_tensor(x, "l2_normalize")
    squares = ops.reduce_sum(ops.square(x), axis=axis, keepdims=True)
    return x / ops.sqrt(ops.maximum(squares, epsilon))


def bias_add(value, bias, name=None):
    """value + bias, bias a vector along the last axis."""
    value, bias = convert_to_tensor(value), convert_to_tensor(bias)
    if bias.ndim != 1 or value.ndim < 1 or value.shape[-1] != bias.shape[0]:
        raise ValueError(f"bias_add: bias must be a vector as long as the last axis of value, "
                         f"got shapes {value.shape} and {bias.shape}")
    return value + bias


def moments(x, axes, shift=None, keepdims=False, name=None):
    """(mean, variance) of x over `axes`."""
    x = _float_tensor(x, "moments")
    mean = ops.reduce_mean(x, axis=axes, keepdims=True)
    variance = ops.reduce_mean(ops.square(x - mean), axis=axes, keepdims=keepdims)
    if not keepdims:
        mean = ops.reduce_mean(x, axis=axes)
    return mean, variance


# ---- losses -----------------------------------------------------------------------------------

def _labels_and_logits(fname, labels, logits):
    if labels is None or logits is None:
        raise ValueError(f"{fname}: pass both labels= and logits=")
    logits = _float_tensor(logits, fname)
    labels = convert_to_tensor(labels, dtype=logits.dtype)
    return labels, logits


def sigmoid_cross_entropy_with_logits(labels=None, logits=None, name=None):
    """Elementwise -z log(sigmoid(x)) - (1 - z) log(1 - sigmoid(x)) for labels z (probabilities)
    and logits x of the same shape, computed as softplus(x) - x z (stable for any x)."""
    labels, logits = _labels_and_logits("sigmoid_cross_entropy_with_logits", labels, logits)
    if labels.shape != logits.shape:
        raise ValueError(f"sigmoid_cross_entropy_with_logits: labels and logits must have the "
                         f"same shape, got {labels.shape} and {logits.shape}")
    return softplus(logits) - logits * labels


def softmax_cross_entropy_with_logits(labels=None, logits=None, axis=-1, name=None):
    """-sum(labels * log_softmax(logits)) along `axis` (the class axis): one loss per example.
    labels are probabilities over the classes (each row summing to 1); the gradient flows to
    both labels and logits."""
    labels, logits = _labels_and_logits("softmax_cross_entropy_with_logits", labels, logits)
    if labels.shape != logits.shape:
        raise ValueError(f"softmax_cross_entropy_with_logits: labels and logits must have the "
                         f"same shape, got {labels.shape} and {logits.shape}")
    if logits.ndim == 0:
        raise ValueError("softmax_cross_entropy_with_logits: logits need a class axis (rank >= 1)")
    return -ops.reduce_sum(labels * ops.log_softmax(logits, axis=axis), axis=axis)


def sparse_softmax_cross_entropy_with_logits(labels=None, logits=None, name=None):
    """-log_softmax(logits)[..., label] per example: labels are class indices (integers in
    [0, number of classes)) of shape logits.shape[:-1]; the classes are the last axis."""
    fname = "sparse_softmax_cross_entropy_with_logits"
    if labels is None or logits is None:
        raise ValueError(f"{fname}: pass both labels= and logits=")
    logits = _float_tensor(logits, fname)
    labels = convert_to_tensor(labels)
    if not labels.dtype.is_integer:
        raise TypeError(f"{fname}: labels must be integer class indices, got dtype "
                        f"{labels.dtype.name}")
    if logits.ndim == 0 or labels.shape != logits.shape[:-1]:
        raise ValueError(f"{fname}: labels must have the shape of logits without its last "
                         f"(class) axis, got {labels.shape} and {logits.shape}")
    classes = logits.shape[-1]
    # an index outside the classes would select nothing and give a loss of 0: refuse it
    if labels.size and ops.reduce_any(ops.logical_or(ops.less(labels, 0),
                                                     ops.greater_equal(labels, classes))):
        raise ValueError(f"{fname}: labels must be in [0, {classes}) (the number of classes), "
                         f"got {np.asarray(labels).min()} .. {np.asarray(labels).max()}")
    class_ids = convert_to_tensor(np.arange(classes, dtype=labels.dtype.np))
    one_hot = ops.cast(ops.equal(ops.expand_dims(labels, -1), class_ids), logits.dtype)
    return -ops.reduce_sum(one_hot * ops.log_softmax(logits, axis=-1), axis=-1)


# TensorFlow name -> dualad function: the one table of this namespace (a new op, one line)
_NAMES = {
    "relu": ops.relu,
    "relu6": relu6,
    "elu": elu,
    "leaky_relu": leaky_relu,
    "sigmoid": ops.sigmoid,
    "tanh": ops.tanh,
    "softplus": softplus,
    "silu": silu,
    "swish": silu,
    "softmax": ops.softmax,
    "log_softmax": ops.log_softmax,
    "l2_loss": l2_loss,
    "l2_normalize": l2_normalize,
    "bias_add": bias_add,
    "moments": moments,
    "sigmoid_cross_entropy_with_logits": sigmoid_cross_entropy_with_logits,
    "softmax_cross_entropy_with_logits": softmax_cross_entropy_with_logits,
    "sparse_softmax_cross_entropy_with_logits": sparse_softmax_cross_entropy_with_logits,
}
globals().update(_NAMES)
__all__ = sorted(_NAMES)
