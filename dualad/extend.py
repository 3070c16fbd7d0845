"""Extending dualad: new primitives with their derivative rules, and custom gradients.

A primitive is registered in one place with its numpy implementation, its VJP rules (one per
input) and its JVP rules; the built-in ops of dualad.rules are defined the same way::

    from dualad import extend
    cube = extend.primitive("cube", lambda x: x ** 3,
                            vjp=[lambda g, ans, args, params: g * 3 * args[0] ** 2],
                            jvp=[lambda t, ans, args, params: t * 3 * args[0] ** 2])
    y = cube(x)

Rules written in dualad ops are themselves differentiable, so the new primitive works under
nested tapes and accumulators to any order.
"""
import functools

from . import _core, ops, rules
from .nest import flatten


def primitive(name, impl, vjp=(), jvp=None, linear=False, batched_jvp=False):
    """Register a primitive and return it (callable on Tensors, keyword arguments become the
    primitive's parameters). `vjp` is a sequence of rules g, ans, args, params -> cotangent
    (None for an input without gradient); `jvp` a sequence of rules t, ans, args, params ->
    output tangent contribution, or `linear=True` for a primitive linear in its inputs.
    Without either, forward mode raises NotImplementedError on this primitive.

    Vector tangents (ForwardAccumulator(..., batched=True), jacfwd, hessian) give the JVP rules
    one direction at a time, so rules only ever see tangents shaped like their inputs. Pass
    `batched_jvp=True` if the rules (or, with `linear=True`, impl) accept tangents with a
    leading axis of k directions: all k then go through in one call."""
    p = rules.primitive(name, impl)
    # None in `vjp`: no gradient to that input, by the user's choice (an input beyond the
    # rules given has none and raises in reverse mode)
    rules.defvjp(p, *(rules.NO_GRADIENT if rule is None else rule for rule in vjp))
    if linear:
        rules.deflinear_jvp(p)
    elif jvp is not None:
        rules.defjvp(p, *jvp)
    else:
        p.jvp = _no_jvp(name)
        return p
    if not batched_jvp:
        p.jvp = _one_direction_at_a_time(p.jvp)
    return p


def _no_jvp(name):
    def jvp(tangents, ans, args, params):
        raise NotImplementedError(f"primitive {name!r} has no JVP rule, so forward mode "
                                  "(ForwardAccumulator, jvp, jacfwd, hessian) cannot go through "
                                  "it; register it with jvp=[...] or linear=True")

    return jvp


def _one_direction_at_a_time(jvp):
    """A JVP that hands batched tangents (k directions) to `jvp` one direction at a time."""

    def batched(tangents, ans, args, params):
        k = rules.batch_of(tangents, args)
        if k is None:
            return jvp(tangents, ans, args, params)
        columns = []
        for i in range(k):
            ts = tuple(None if t is None else (t[i] if rules.is_batched(t, x) else t)
                       for t, x in zip(tangents, args))
            column = jvp(ts, ans, args, params)
            columns.append(ops.zeros_like(ans) if column is None else
                           rules.broadcast_like(_core.convert_to_tensor(column), ans))
        return ops.stack(columns)

    return batched


def custom_gradient(f):
    """Decorator (TensorFlow style): `f(*xs)` returns (y, grad_fn) with grad_fn(dy) giving the
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

        # (g, its gradients, last input asked): one visit of the sweep asks for the inputs in
        # increasing order with one g, so grad_fn runs once per visit; a later visit (another
        # gradient call, perhaps recorded by an outer tape) starts again at a lower input and
        # runs grad_fn afresh, even with the same g
        last = [None, None, -1]

        def vjp_rule(k, g, ans, args_, params):
            if k >= len(xs):
                return None  # y itself: its gradient is what grad_fn gives the inputs
            if last[0] is not g or k <= last[2]:
                grads, _ = flatten(grad_fn(g))
                if len(grads) != len(xs):
                    raise ValueError(f"custom_gradient: {f.__name__}'s grad_fn returned "
                                     f"{len(grads)} gradients for {len(xs)} inputs")
                last[:2] = [g, [None if d is None else _core.convert_to_tensor(d) for d in grads]]
            last[2] = k
            return last[1][k]

        def no_jvp(tangents, ans, args_, params):
            if all(t is None for t in tangents[:len(xs)]):
                return None  # only y has a tangent (from values f closes over): none flows on
            raise NotImplementedError(
                f"custom_gradient: {f.__name__} defines only a reverse-mode gradient; forward "
                "mode (ForwardAccumulator, jvp) needs a primitive with a JVP rule "
                "(dualad.extend.primitive)")

        # y is the primitive's last input and its value the output: a dualad.function replay
        # recomputes y from the traced body and passes it through, instead of replaying the
        # value of the call that was traced
        p = _core.Primitive(f"custom_gradient:{f.__name__}", lambda *raw: raw[-1])
        p.variadic_vjp = vjp_rule
        p.jvp = no_jvp
        return _core.bind(p, *xs, y) if xs else y

    return wrapper
