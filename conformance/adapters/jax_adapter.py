"""JAX: functional transforms natively; tapes emulated by replay (see _recording.py)."""
from __future__ import annotations

from conformance.adapters import AdapterUnavailable
from conformance.adapters._functional import FunctionalAdapter
from conformance.adapters._recording import Recorded, unwrap

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:
    raise AdapterUnavailable("jax is not installed") from exc

jax.config.update("jax_enable_x64", True)  # float64 is off by default in JAX


def compiled_grad(f):
    # Every transform runs under jax.jit: op by op, JAX compiles each primitive
    # for each new shape, which makes the suite ten times slower.
    return jax.jit(jax.grad(f))


class Adapter(FunctionalAdapter):
    name = "jax"

    def __init__(self):
        super().__init__(
            "jax",
            jnp,
            compiled_grad,
            extra_unsupported={
                "function_control_flow": (
                    "jax.jit traces with abstract values: a Python if/while on one raises "
                    "ConcretizationTypeError (data-dependent control flow needs lax.cond/while_loop)"
                ),
            },
        )
        import jaxlib

        self.versions = {"jax": jax.__version__, "jaxlib": jaxlib.__version__}

    def _stop_gradient(self, x):
        return jax.lax.stop_gradient(x)

    def jvp(self, f, primals, tangents):
        out, tangent_out = jax.jit(lambda p, t: jax.jvp(self.lift(f), p, t))(
            tuple(map(unwrap, primals)), tuple(map(unwrap, tangents))
        )
        return Recorded(out), Recorded(tangent_out)

    def vjp(self, f, primals, cotangent):
        def out_and_vjp(p, u):
            out, pullback = jax.vjp(self.lift(f), *p)
            return out, pullback(u)

        out, grads = jax.jit(out_and_vjp)(tuple(map(unwrap, primals)), unwrap(cotangent))
        return Recorded(out), [Recorded(g) for g in grads]

    def hvp(self, f, x, v):
        forward_over_reverse = jax.jit(lambda x, v: jax.jvp(jax.grad(self.lift(f)), (x,), (v,))[1])
        return Recorded(forward_over_reverse(unwrap(x), unwrap(v)))

    def hessian(self, f, x):
        return Recorded(jax.jit(jax.hessian(self.lift(f)))(unwrap(x)))

    def function(self, f):
        def raw(*values):
            out = f(*[Recorded(v) for v in values])
            return jax.tree_util.tree_map(unwrap, out, is_leaf=lambda n: isinstance(n, Recorded))

        compiled = jax.jit(raw)

        def traced(*args):
            out = compiled(*map(unwrap, args))
            return jax.tree_util.tree_map(Recorded, out)

        return traced
