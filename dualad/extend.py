"""Extending dualad: new primitives with their derivative rules, and custom gradients.

A primitive is registered in one place with its numpy implementation, its VJP rules (one per
input) and its JVP rules; the built-in ops of dualad.rules are defined the same way:

    from dualad import extend
    cube = extend.primitive("cube", lambda x: x ** 3,
                            vjp=[lambda g, ans, args, params: g * 3 * args[0] ** 2],
                            jvp=[lambda t, ans, args, params: t * 3 * args[0] ** 2])
    y = cube(x)

Rules written in dualad ops are themselves differentiable, so the new primitive works under
nested tapes and accumulators to any order.
"""
import functools

from . import _core, rules
from .nest import flatten


def primitive(name, impl, vjp=(), jvp=None, linear=False):
    """Register a primitive and return it (callable on Tensors, keyword arguments become the
    primitive's parameters). `vjp` is a sequence of rules g, ans, args, params -> cotangent
    (None for an input without gradient); `jvp` a sequence of rules t, ans, args, params ->
    output tangent contribution, or `linear=True` for a primitive linear in its inputs."""
    if name in rules.PRIMITIVES:
        raise ValueError(f"a primitive named {name!r} already exists")
    p = rules.primitive(name, impl)
    rules.defvjp(p, *vjp)
    if linear:
        rules.deflinear_jvp(p)
    elif jvp is not None:
        rules.defjvp(p, *jvp)
    return p


def custom_gradient(f):
    """Decorator (TensorFlow style): f(*xs) returns (y, grad_fn) with grad_fn(dy) giving the
    gradient of each x. Tapes use grad_fn instead of differentiating f's body.

    f's body is still recorded (unlike TensorFlow, which stops recording there), so values
    that grad_fn closes over stay connected to the inputs: a grad_fn written in dualad ops gets
    correct higher derivatives from nested tapes. Forward mode has no rule to use here and
    raises; register a primitive with a JVP rule for that."""

    @functools.wraps(f)
    def wrapper(*args):
        xs = [_core.convert_to_tensor(a) for a in args]
        y, grad_fn = f(*xs)
        y = _core.convert_to_tensor(y)

        last = [None, None]  # (g, its gradients): the sweep asks input by input for one g

        def vjp_rule(k, g, ans, args_, params):
            if last[0] is not g:
                grads, _ = flatten(grad_fn(g))
                if len(grads) != len(xs):
                    raise ValueError(f"custom_gradient: {f.__name__}'s grad_fn returned "
                                     f"{len(grads)} gradients for {len(xs)} inputs")
                last[:] = [g, [None if d is None else _core.convert_to_tensor(d) for d in grads]]
            return last[1][k]

        def no_jvp(tangents, ans, args_, params):
            raise NotImplementedError(
                f"custom_gradient: {f.__name__} defines only a reverse-mode gradient; forward "
                "mode (ForwardAccumulator, jvp) needs a primitive with a JVP rule "
                "(dualad.extend.primitive)")

        value = y
        p = _core.Primitive(f"custom_gradient:{f.__name__}", lambda *raw: _core.raw_value(value))
        p.variadic_vjp = vjp_rule
        p.jvp = no_jvp
        return _core.bind(p, *xs) if xs else y

    return wrapper
