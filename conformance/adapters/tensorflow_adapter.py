"""TensorFlow: the tutorials' own system. Everything maps natively."""
from __future__ import annotations

import os

from conformance.adapters import AdapterUnavailable
from conformance.adapters._gradient_tape import GradientTapeAdapter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep oneDNN/absl banners out of test output
try:
    import tensorflow as tf
except ImportError as exc:
    raise AdapterUnavailable("tensorflow is not installed") from exc


class Adapter(GradientTapeAdapter):
    name = "tensorflow"

    def __init__(self):
        import keras

        super().__init__(
            tf,
            ops={
                "add": tf.math.add,
                "subtract": tf.math.subtract,
                "multiply": tf.math.multiply,
                "divide": tf.math.divide,
                "pow": tf.math.pow,
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
            dtypes={"float32": tf.float32, "float64": tf.float64},
            sgd_class=tf.keras.optimizers.SGD,
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
