"""dualad: the implementation this suite exists for. Its API is TensorFlow's shape.

Features still being written are detected with hasattr, and declared
unsupported ("dualad has no X yet") until they appear.
"""
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
        return getattr(da, "__version__", "unknown")


class Adapter(GradientTapeAdapter):
    name = "dualad"

    def __init__(self):
        optimizers = getattr(da, "optimizers", None)
        super().__init__(
            da,
            ops={op: getattr(da, op) for op in OPS if hasattr(da, op)},
            dtypes={"float32": da.float32, "float64": da.float64},
            sgd_class=getattr(optimizers, "SGD", None),
            trace=getattr(da, "function", None),
            forward_accumulator=getattr(da, "ForwardAccumulator", None),
        )
        self.versions = {"dualad": _dualad_version()}
        missing = {}
        if not hasattr(da, "function"):
            missing["function"] = missing["function_with_state"] = "dualad has no function yet"
        if optimizers is None or not hasattr(optimizers, "SGD"):
            for capability in ("sgd", "sgd_minimize", "learning_rate_change", "function_with_state"):
                missing[capability] = "dualad has no optimizers.SGD yet"
        if not (hasattr(da, "jvp") or hasattr(da, "ForwardAccumulator")):
            missing["jvp"] = "dualad has no jvp or ForwardAccumulator yet"
        if not (hasattr(da, "hvp") or hasattr(da, "ForwardAccumulator")):
            missing["hvp"] = "dualad has no hvp or ForwardAccumulator yet"
        self.unsupported = missing

    # dualad's own functional API where it has one; otherwise the tape-based
    # constructions inherited from GradientTapeAdapter.
    def jvp(self, f, primals, tangents):
        if hasattr(da, "jvp"):
            return da.jvp(f, list(primals), list(tangents))
        return super().jvp(f, primals, tangents)

    def vjp(self, f, primals, cotangent):
        if hasattr(da, "vjp"):
            out, pullback = da.vjp(f, *primals)
            return out, list(pullback(cotangent))
        return super().vjp(f, primals, cotangent)

    def hvp(self, f, x, v):
        if hasattr(da, "hvp"):
            return da.hvp(f, x, v)
        return super().hvp(f, x, v)

    def hessian(self, f, x):
        if hasattr(da, "hessian"):
            return da.hessian(f)(x)
        return super().hessian(f, x)
