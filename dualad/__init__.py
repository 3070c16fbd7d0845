"""dualad: automatic differentiation with TensorFlow's GradientTape semantics.

Python floats become float32 and Python ints int32, as in TensorFlow; numpy arrays keep their
dtype. Mixing float32 and float64 tensors raises TypeError (cast explicitly).
"""
__version__ = "0.1.0"   # the one place of the version (pyproject.toml reads it)

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
from . import rules, ops, random, nest

# The one wiring of the core: the declared primitives (rules.py) and the public ops (ops.py)
_core.install(rules.PRIMITIVES, ops.CORE_FUNCTIONS, ops.UFUNCS, ops.ARRAY_FUNCTIONS,
              rules.unbroadcast)

# every declared primitive's public op, under its declared name
globals().update({d.export: getattr(ops, d.export)
                  for d in rules.DECLARATIONS.values() if d.export is not None})
from .ops import (  # the public ops that are not one primitive each
    add_n, clip, clip_by_value, constant, expand_dims, fill, logsumexp, ones, ones_like, rank,
    reduce_mean, shape, size, squeeze, stack, truediv, zeros, zeros_like,
)
from .tape import GradientTape, ForwardAccumulator, GradientInContextWarning, NonFloatWatchWarning
from .tape import NonFloatTargetWarning
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

