"""autograd: functional transforms natively; tapes emulated by replay (see _recording.py)."""
from __future__ import annotations

from importlib.metadata import version

from conformance.adapters import AdapterUnavailable
from conformance.adapters._functional import FunctionalAdapter
from conformance.adapters._recording import Recorded, unwrap

try:
    import autograd
    import autograd.numpy as anp
    from autograd.differential_operators import make_jvp, make_vjp
except ImportError as exc:
    raise AdapterUnavailable("autograd is not installed") from exc


class Adapter(FunctionalAdapter):
    name = "autograd"

    def __init__(self):
        super().__init__(
            "autograd",
            anp,
            autograd.grad,
            extra_unsupported={
                "function": "autograd has no tracing compiler (no counterpart of tf.function or jax.jit)",
                "function_control_flow": "autograd has no tracing compiler (no counterpart of tf.function or jax.jit)",
            },
        )
        self.versions = {"autograd": version("autograd")}

    def _stop_gradient(self, x):
        # the value without its box: autograd sees a constant
        return autograd.tracer.getval(x)

    def _on_tuple(self, f):
        """f(*primals) as a function of one tuple, the form autograd's operators take."""
        raw = self.lift(f)
        return lambda primals: raw(*primals)

    def jvp(self, f, primals, tangents):
        out, tangent_out = make_jvp(self._on_tuple(f))(tuple(map(unwrap, primals)))(tuple(map(unwrap, tangents)))
        return Recorded(out), Recorded(tangent_out)

    def vjp(self, f, primals, cotangent):
        pullback, out = make_vjp(self._on_tuple(f))(tuple(map(unwrap, primals)))
        return Recorded(out), [Recorded(g) for g in pullback(unwrap(cotangent))]

    def hvp(self, f, x, v):
        # forward mode (make_jvp) through the reverse-mode gradient
        return Recorded(make_jvp(autograd.grad(self.lift(f)))(unwrap(x))(unwrap(v))[1])

    def hessian(self, f, x):
        return Recorded(autograd.hessian(self.lift(f))(unwrap(x)))
