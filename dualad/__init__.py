"""dualad: automatic differentiation with TensorFlow's GradientTape semantics.

Python floats become float32 and Python ints int32, as in TensorFlow; numpy arrays keep their
dtype. Mixing float32 and float64 tensors raises TypeError (cast explicitly).
"""
try:
    from . import _core
except ImportError as e:  # pragma: no cover - depends on the build
    raise ImportError("the compiled core of dualad is not built: run pip install -e . "
                      f"in the repository ({e})") from e

from ._core import Tensor, Variable, Primitive, DType, as_dtype, convert_to_tensor
from . import ops, rules, random, nest
from .ops import (
    abs, add, add_n, argmax, argmin, broadcast_to, cast, clip, clip_by_value, concat, constant,
    cos, divide, equal, exp, expand_dims, fill, getitem, greater, greater_equal, identity, less,
    less_equal, log, log1p, log_softmax, logical_and, logical_not, logical_or, logsumexp, matmul,
    maximum, minimum, multiply, negative, norm, not_equal, ones, ones_like, pow, rank,
    reduce_all, reduce_any, reduce_logsumexp, reduce_max, reduce_mean, reduce_min, reduce_sum,
    relu, reshape, shape, sigmoid, sign, sin, size, softmax, sqrt, square, squeeze, stack,
    stop_gradient, subtract, tan, tanh, transpose, truediv, where, zeros, zeros_like,
)
from .tape import GradientTape, ForwardAccumulator, GradientInContextWarning, NonFloatWatchWarning
from .printing import print_ as print
from . import nn, extend
from .api import (derivative, grad, hessian, hvp, jacfwd, jacobian, jacrev, jvp, value_and_grad,
                  vjp)
from .extend import custom_gradient
from .function import (function, run_functions_eagerly, FunctionFallbackWarning,
                       FunctionRetracingWarning, FunctionStructureWarning)
from .function import range  # noqa: A004 - TensorFlow's name for loops in compiled functions
from . import optimizers, debugging

float16 = as_dtype("float16")
float32 = as_dtype("float32")
float64 = as_dtype("float64")
int8 = as_dtype("int8")
int16 = as_dtype("int16")
int32 = as_dtype("int32")
int64 = as_dtype("int64")
uint8 = as_dtype("uint8")
bool = as_dtype("bool")

__version__ = "0.1.0"
