"""Shared mapping for functional libraries whose arrays follow NumPy (JAX, autograd).

Tensors are :class:`Recorded` wrappers so that tapes can be emulated (see
``_recording.py``); the functional transforms unwrap them and call the
library's own ``jvp``/``vjp``/``grad``/``hessian``.
"""
from __future__ import annotations

import numpy as np

from conformance.adapters import BaseAdapter
from conformance.adapters._recording import Recorded, Tape, op, unwrap

#: Why a functional library lacks the stateful parts of the protocol.
NO_VARIABLES = "{lib} has no mutable Variables: state is passed explicitly as arrays"
STATELESS_REASONS = {
    "variables": NO_VARIABLES,
    "watch_accessed_variables": NO_VARIABLES,
    "persistent_tape_error": (
        "{lib} differentiates functions, so no tape holds resources to release; "
        "the suite's tape over {lib} is an emulation and would only test itself"
    ),
    "function_with_state": "{lib} has no Variables for a traced function to update",
    "sgd": "{lib} has no Variables for an optimizer to update",
    "sgd_minimize": "{lib} has no Variables for an optimizer to update",
    "learning_rate_change": "{lib} has no Variables for an optimizer to update",
    "momentum": "{lib} has no Variables for an optimizer to update",
    "adam": "{lib} has no Variables for an optimizer to update",
    "rmsprop": "{lib} has no Variables for an optimizer to update",
    "adagrad": "{lib} has no Variables for an optimizer to update",
    "variable_assign": NO_VARIABLES,
    "stop_recording": "{lib} differentiates functions; the suite's tape over {lib} is an emulation",
    "unconnected_zero": "{lib} differentiates functions; the suite's tape over {lib} is an emulation",
    "tape_jacobian": "{lib} differentiates functions; the suite's tape over {lib} is an emulation",
    "reverse_over_forward": (
        "{lib}'s jvp is a function transform: the suite's emulated tape cannot record inside it"
    ),
    "operators": (
        "the tensors are the suite's Recorded wrappers around {lib} arrays, which have no "
        "arithmetic operators (the library's own operators are not what they would test)"
    ),
}


class FunctionalAdapter(BaseAdapter):
    def __init__(self, lib_name: str, numpy_module, grad, extra_unsupported=None):
        self.np = numpy_module
        self._grad = grad
        self.unsupported = {k: v.format(lib=lib_name) for k, v in STATELESS_REASONS.items()}
        self.unsupported.update(extra_unsupported or {})
        jnp = numpy_module
        ops = {
            "add": jnp.add,
            "subtract": jnp.subtract,
            "multiply": jnp.multiply,
            "divide": jnp.divide,
            "pow": jnp.power,
            "negative": jnp.negative,
            "square": jnp.square,
            "sqrt": jnp.sqrt,
            "exp": jnp.exp,
            "log": jnp.log,
            "sin": jnp.sin,
            "cos": jnp.cos,
            "tanh": jnp.tanh,
            "abs": jnp.abs,
            "matmul": jnp.matmul,
            "transpose": jnp.transpose,
            "reduce_sum": jnp.sum,
            "reduce_mean": jnp.mean,
            "norm": lambda x: jnp.linalg.norm(jnp.ravel(x)),
            "stop_gradient": self._stop_gradient,
        }
        for name, function in ops.items():
            setattr(self, name, op(function))
        # A stopped value is a new leaf, connected to no tape: TensorFlow's None for a source
        # reached only through stop_gradient (recorded as an op, it would get zeros).
        self.stop_gradient = lambda x: Recorded(self._stop_gradient(unwrap(x)))

    def _stop_gradient(self, x):
        raise NotImplementedError

    def constant(self, value, dtype):
        return Recorded(self.np.asarray(np.asarray(value, dtype=dtype)))

    def to_numpy(self, tensor):
        return np.array(unwrap(tensor))

    def tape(self, persistent=False, watch_accessed_variables=True):
        return Tape(self._grad, self.np.sum, persistent)

    def lift(self, f):
        """``f`` over Recorded tensors as a function over raw arrays."""

        def raw(*values):
            return unwrap(f(*[Recorded(v) for v in values]))

        return raw
