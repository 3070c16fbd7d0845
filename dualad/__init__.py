"""dualad: automatic differentiation with TensorFlow's GradientTape semantics.

Python floats become float32 and Python ints int32, as in TensorFlow; numpy arrays keep their
dtype. Mixing float32 and float64 tensors raises TypeError (cast explicitly).
"""
__version__ = "0.1.0"   # the one place of the version (pyproject.toml reads it)

from typing import TYPE_CHECKING

try:
    from . import _core, _trace
except ImportError as e:  # pragma: no cover - depends on the build
    raise ImportError(
        f"{e}\n\ndualad's compiled core (dualad._core, dualad._trace) failed to import (above). "
        "If it was never built, build it with `pip install -e .` in the repository (needs a C "
        "compiler and the Python headers) or `python setup.py build_ext --inplace` (needs "
        "`pip install -e '.[dev]'`). If it was built with Cython 3.3.0, rebuild with Cython "
        ">= 3.3.1.", name=e.name, path=e.path) from None

from ._core import Tensor, Variable, Primitive, DType, as_dtype, convert_to_tensor
from ._core import get_num_threads, set_num_threads
from .shapes import TensorShape
from . import rules, ops, random, nest

# The one wiring of the core: the declared primitives (rules.py) and the public ops (ops.py)
_core.install(rules.PRIMITIVES, ops.CORE_FUNCTIONS, ops.UFUNCS, ops.ARRAY_FUNCTIONS,
              rules.unbroadcast)

# every declared primitive's public op, under its declared name
globals().update({d.export: getattr(ops, d.export)
                  for d in rules.DECLARATIONS.values() if d.export is not None})
if TYPE_CHECKING:  # the same names for type checkers (tests/test_packaging.py keeps them equal)
    from ._generated_ops import *  # noqa: F401,F403 - the generated ones (a stub)
    from .ops import (  # the hand-written ones
        argmax, argmin, atan2, broadcast_to, cast, concat, cumprod, cumsum, einsum, getitem,
        log_softmax, logical_not, matmul, norm, reduce_all, reduce_any, reduce_logsumexp,
        reduce_max, reduce_min, reduce_prod, reduce_sum, reshape, softmax, transpose, where,
    )
from .ops import (  # the public ops that are not one primitive each
    add_n, clip, clip_by_value, constant, expand_dims, fill, logsumexp, ones, ones_like, rank,
    reduce_mean, shape, size, squeeze, stack, truediv, zeros, zeros_like,
)
from .ops import (  # TensorFlow ops composed of primitives (gathers, slices, pads, ...)
    boolean_mask, eye, gather, gather_nd, is_tensor, linspace, newaxis, one_hot, pad,
    segment_sum, slice_ as slice, split, tile, unsorted_segment_sum, unstack,
)
from .tape import (GradientTape, ForwardAccumulator, GradientInContextWarning, NonFloatWatchWarning,
                   NonFloatTargetWarning, UnconnectedGradients)
from .printing import print_ as print
from . import nn, extend
from .api import (derivative, grad, hessian, hvp, jacfwd, jacobian, jacrev, jvp, value_and_grad,
                  vjp)
from .extend import custom_gradient
from .function import (function, run_functions_eagerly, FunctionFallbackWarning,
                       FunctionRetracingWarning, FunctionStructureWarning)
from .function import range  # noqa: A004 - the loop helper of dualad.function (not tf.range: ops.range_)
from . import optimizers, debugging
from . import autodiff, linalg, math  # TensorFlow's namespaces (and nn, above)

float16 = as_dtype("float16")
float32 = as_dtype("float32")
float64 = as_dtype("float64")
int8 = as_dtype("int8")
int16 = as_dtype("int16")
int32 = as_dtype("int32")
int64 = as_dtype("int64")
uint8 = as_dtype("uint8")
bool = as_dtype("bool")



# ---- TensorFlow names dualad does not have: say what to use instead ---------------------------

import sys as _sys

_KERAS = ("dualad has no Keras: tf.keras.optimizers.X is dualad.optimizers.X (SGD, Adam, "
          "RMSprop, Adagrad; schedules in dualad.optimizers.schedules), tf.keras.losses are the "
          "losses of dualad.nn and dualad.math (e.g. "
          "dualad.nn.sparse_softmax_cross_entropy_with_logits); layers and models are not "
          "supported (keep Variables in your own objects)")
_GRAPH = "dualad runs eagerly (and traces with dualad.function)"
_MISSING = {   # TensorFlow name -> what to use in dualad
    "keras": _KERAS,
    "Module": ("tf.Module is not supported: keep Variables in your own objects and pass a list "
               "of them to GradientTape.gradient and an optimizer's apply_gradients"),
    "train": ("tf.train is not supported: optimizers are dualad.optimizers.X; to checkpoint, "
              "pickle Variables (they pickle with their values) and Optimizer.get_state()"),
    "gradients": f"tf.gradients is graph-mode TensorFlow; {_GRAPH}: use dualad.GradientTape",
    "hessians": "tf.hessians is graph-mode TensorFlow: use dualad.hessian (or nested tapes)",
    "TensorSpec": ("tf.TensorSpec is not supported: dualad.function traces from the arguments "
                   "of each call (input_signature is not supported)"),
    "while_loop": ("tf.while_loop is not supported: write a Python loop (in dualad.function, "
                   "over dualad.range(n))"),
    "cond": "tf.cond is not supported: write a Python if (dualad.function traces it)",
    "map_fn": "tf.map_fn is not supported: write a Python loop and dualad.stack the results",
    "vectorized_map": ("tf.vectorized_map is not supported: use a batched ForwardAccumulator, "
                       "dualad.jacfwd, or a Python loop"),
    "data": "tf.data is not supported: feed numpy arrays or tensors",
    "saved_model": "tf.saved_model is not supported: pickle Variables and optimizer state",
    "distribute": "tf.distribute is not supported: dualad runs on the CPU with numpy",
    "device": "tf.device is not supported: dualad runs on the CPU with numpy",
    "config": "tf.config is not supported: dualad runs on the CPU with numpy",
    "SparseTensor": "sparse tensors are not supported (tf.sparse)",
    "sparse": "sparse tensors are not supported (tf.sparse)",
    "RaggedTensor": "ragged tensors are not supported (tf.ragged)",
    "ragged": "ragged tensors are not supported (tf.ragged)",
    "strings": "string tensors are not supported (tf.strings)",
    "py_function": f"tf.py_function is not needed: {_GRAPH}; call Python directly",
    "numpy_function": f"tf.numpy_function is not needed: {_GRAPH}; call numpy directly",
}


def __getattr__(name):
    # called only for names the module does not have
    if name in _MISSING:
        # obj given: Python then appends no "did you mean" (it would be a wrong guess here)
        raise AttributeError(f"module 'dualad' has no attribute {name!r}: {_MISSING[name]}",
                             obj=_sys.modules[__name__])
    # a typo: Python's own error, which suggests the closest name when it is shown
    raise AttributeError(f"module 'dualad' has no attribute {name!r}")
