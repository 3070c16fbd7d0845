"""dualad: the implementation this suite exists for. Its API is TensorFlow's shape, and it has
every capability the suite checks."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from conformance.adapters import OPS, AdapterUnavailable
from conformance.adapters._gradient_tape import GradientTapeAdapter

try:
    import dualad as da
except ImportError as exc:
    raise AdapterUnavailable(f"dualad is not importable: {exc}") from exc


def _dualad_version() -> str:
    try:
        return version("dualad")
    except PackageNotFoundError:
        return da.__version__  # an in-place build, not installed


class Adapter(GradientTapeAdapter):
    name = "dualad"
    # Claimed one by one, so that a capability added to the protocol is not credited to dualad
    # until someone checks that dualad has it (meta/test_selection.py compares this list with
    # adapters.CAPABILITIES); and a skipped test fails a run on dualad.
    capabilities = frozenset({
        "float64", "variables", "watch_accessed_variables", "persistent_tape_error", "nested_tapes",
        "function", "function_with_state", "function_control_flow", "sgd", "sgd_minimize", "learning_rate_change",
        "jvp", "vjp", "hvp", "hessian", "stop_recording", "unconnected_zero", "tape_jacobian",
        "operators", "variable_assign", "reverse_over_forward", "momentum",
        "float16", "adam", "rmsprop", "adagrad",
    })
    skips_fail = True

    def __init__(self):
        super().__init__(
            da,
            ops={op: getattr(da, op) for op in OPS},
            dtypes={"float32": da.float32, "float64": da.float64, "float16": da.float16},
            sgd_class=da.optimizers.SGD,
            adam_class=da.optimizers.Adam,
            rmsprop_class=da.optimizers.RMSprop,
            adagrad_class=da.optimizers.Adagrad,
            trace=da.function,
            forward_accumulator=da.ForwardAccumulator,
        )
        self.versions = {"dualad": _dualad_version()}
        self.unsupported = {}

    # dualad's own functional API rather than GradientTapeAdapter's tape-based constructions
    def jvp(self, f, primals, tangents):
        return da.jvp(f, list(primals), list(tangents))

    def vjp(self, f, primals, cotangent):
        out, pullback = da.vjp(f, *primals)
        return out, list(pullback(cotangent))

    def hvp(self, f, x, v):
        return da.hvp(f, x, v)

    def hessian(self, f, x):
        return da.hessian(f)(x)
