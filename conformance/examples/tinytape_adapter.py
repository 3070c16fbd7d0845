"""The conformance adapter for tinytape (tinytape.py): the worked example of conformance/README.md.

    pytest --pyargs conformance --impl=conformance.examples.tinytape_adapter:Adapter

Every capability tinytape lacks is declared in ``unsupported`` with the reason, so the suite
skips those tests and says why; everything else must pass.
"""
from __future__ import annotations

import numpy as np

from conformance.adapters import OPS, BaseAdapter
from conformance.examples import tinytape


class Adapter(BaseAdapter):
    name = "tinytape"
    versions = {"tinytape": tinytape.__version__}
    unsupported = {
        "variables": "tinytape has no mutable Variables",
        "variable_assign": "tinytape has no mutable Variables",
        "watch_accessed_variables": "tinytape has no Variables to watch automatically",
        "nested_tapes": "tinytape's gradients are plain NumPy, not recorded, so not differentiable again",
        "function": "tinytape has no tracer or compiler",
        "function_with_state": "tinytape has no tracer, Variables or optimizers",
        "sgd": "tinytape has no optimizers",
        "sgd_minimize": "tinytape has no optimizers",
        "learning_rate_change": "tinytape has no optimizers",
        "momentum": "tinytape has no optimizers",
        "jvp": "tinytape has reverse mode only",
        "reverse_over_forward": "tinytape has reverse mode only",
        "tape_jacobian": "tinytape's tape computes gradients of one (summed) target only, no Jacobians",
        "hvp": "tinytape's gradients are not differentiable (no second order)",
        "hessian": "tinytape's gradients are not differentiable (no second order)",
    }

    def __init__(self):
        for op in OPS:  # tinytape names its ops as the suite does
            setattr(self, op, getattr(tinytape, op))

    def constant(self, value, dtype):
        return tinytape.constant(np.asarray(value, dtype=dtype))

    def to_numpy(self, tensor):
        return np.asarray(tensor.value)

    def tape(self, persistent=False, watch_accessed_variables=True):
        # watch_accessed_variables only concerns Variables, which tinytape lacks
        return tinytape.GradientTape(persistent=persistent)

    def vjp(self, f, primals, cotangent):
        with tinytape.GradientTape() as tape:
            tape.watch(list(primals))
            out = f(*primals)
        return out, tape.gradient(out, list(primals), output_gradients=cotangent)
