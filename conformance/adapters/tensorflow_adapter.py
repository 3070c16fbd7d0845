"""TensorFlow: the tutorials' own system. Everything maps natively."""
from __future__ import annotations

import numbers
import os

from conformance.adapters import AdapterUnavailable
from conformance.adapters._gradient_tape import GradientTapeAdapter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep oneDNN/absl banners out of test output
try:
    import tensorflow as tf
except ImportError as exc:
    raise AdapterUnavailable("tensorflow is not installed") from exc


def _numbers_take_the_tensors_dtype(op):
    """The protocol's rule for a Python number operand. TensorFlow's named binary ops (unlike its
    operators) convert a leading Python number on its own: tf.math.add(0.5, float64 tensor)
    fails, and so does tf.math.multiply(100, x) in a tf.function, where the 100 becomes int32."""

    def binary(a, b):
        if isinstance(a, numbers.Number) and not isinstance(b, numbers.Number):
            a = tf.constant(a, dtype=b.dtype)
        elif isinstance(b, numbers.Number) and not isinstance(a, numbers.Number):
            b = tf.constant(b, dtype=a.dtype)
        return op(a, b)

    return binary


class Adapter(GradientTapeAdapter):
    name = "tensorflow"

    def __init__(self):
        import keras

        super().__init__(
            tf,
            ops={
                "add": _numbers_take_the_tensors_dtype(tf.math.add),
                "subtract": _numbers_take_the_tensors_dtype(tf.math.subtract),
                "multiply": _numbers_take_the_tensors_dtype(tf.math.multiply),
                "divide": _numbers_take_the_tensors_dtype(tf.math.divide),
                "pow": _numbers_take_the_tensors_dtype(tf.math.pow),
                "negative": tf.math.negative,
                "square": tf.math.square,
                "sqrt": tf.math.sqrt,
                "exp": tf.math.exp,
                "log": tf.math.log,
                "sin": tf.math.sin,
                "cos": tf.math.cos,
                "tanh": tf.math.tanh,
                "abs": tf.math.abs,
                "matmul": tf.linalg.matmul,
                "transpose": tf.transpose,
                "reduce_sum": tf.math.reduce_sum,
                "reduce_mean": tf.math.reduce_mean,
                "norm": tf.norm,
                "stop_gradient": tf.stop_gradient,
            },
            dtypes={"float32": tf.float32, "float64": tf.float64, "float16": tf.float16},
            sgd_class=tf.keras.optimizers.SGD,
            adam_class=tf.keras.optimizers.Adam,
            rmsprop_class=tf.keras.optimizers.RMSprop,
            adagrad_class=tf.keras.optimizers.Adagrad,
            trace=tf.function,
            forward_accumulator=tf.autodiff.ForwardAccumulator,
        )
        self.versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
        self.unsupported = {}
        if not hasattr(tf.keras.optimizers.SGD, "minimize"):
            # TF 2.0's tf.keras optimizers (the tutorials') had minimize(loss, var_list).
            self.unsupported["sgd_minimize"] = (
                f"Keras {keras.__version__} (tf.keras since TF 2.16) removed Optimizer.minimize; "
                "TF 2.0's tf.keras.optimizers.SGD, used by the tutorial, had it"
            )
