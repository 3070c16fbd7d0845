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
import inspect
import threading
import types

import numpy as np

from . import _core, ops, rules
from . import tape as _tape
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
    rules.defvjp(p, *(rules.NO_GRADIENT if rule is None else _checked_rule(name, "VJP", k, rule)
                      for k, rule in enumerate(vjp)))
    if linear:
        rules.deflinear_jvp(p)
    elif jvp is not None:
        rules.defjvp(p, *(None if rule is None else _checked_rule(name, "JVP", k, rule)
                          for k, rule in enumerate(jvp)))
    else:
        p.jvp = _no_jvp(name)
        return p
    if not batched_jvp:
        p.jvp = _one_direction_at_a_time(p.jvp)
    return p


def _checked_rule(name, mode, k, rule):
    """A user's rule for input k whose Tensor result must have the dtype of what it is the
    derivative of (the input for a VJP, the output for a JVP): a result of another dtype
    would come out of the tape or accumulator as a gradient in the wrong dtype. A Variable
    result is read: the Variable itself could come out as the gradient."""
    def checked(g_or_t, ans, args, params):
        out = rule(g_or_t, ans, args, params)
        if isinstance(out, _core.Tensor):
            ref = args[k] if mode == "VJP" else ans
            if _core.is_float(ref) and out.dtype != ref.dtype:
                raise TypeError(f"primitive {name!r}: its {mode} rule for input {k} returned "
                                f"dtype {out.dtype.name}, not the {ref.dtype.name} of the "
                                f"{'input' if mode == 'VJP' else 'output'}")
            if isinstance(out, _core.Variable):
                out = out.read_value()  # not the Variable itself, which may be assigned later
        return out
    return checked


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


def custom_gradient(f=None):
    """Decorator (TensorFlow style): `f(*xs)` returns (ys, grad_fn), ys a tensor or a (nested)
    list/tuple of tensors, and `grad_fn(*dys)` - one upstream gradient per output, zeros for an
    output the target does not use - gives the gradient of each x (a sequence, None for no
    gradient). Tapes use grad_fn instead of differentiating f's body.

    If f reads trainable float Variables it was not passed, grad_fn must accept `variables=`
    (it gets the list of them) and return (input gradients, one gradient per variable); a
    grad_fn without that keyword raises TypeError at the call. Works on methods: `self` stays
    as it is.

    Forward mode (ForwardAccumulator, jvp, jacfwd) transposes grad_fn: grad_fn is linear in the
    upstream gradient u, so JVP(t) = d/du <grad_fn(u), t>, taken with one reverse pass over a
    call of grad_fn. That needs grad_fn written in dualad ops (a result computed in numpy does
    not depend on u: ValueError). The innermost accumulator does not go through f's body, so
    the body needs no JVP rules there; nested forward mode (forward over forward or over
    reverse) differentiates grad_fn's closures, so outer accumulators do go through it.

    f's body is still recorded (unlike TensorFlow, which stops recording there), so values
    that grad_fn closes over stay connected to the inputs: a grad_fn written in dualad ops gets
    correct higher derivatives from nested tapes and accumulators."""
    if f is None:
        return custom_gradient
    return _CustomGradientFunction(f)


class _CustomGradientFunction:
    """f with its custom gradient; a descriptor, so that on a class it binds `self` to f (then
    the instance is passed through as it is, not converted to a tensor)."""

    def __init__(self, f):
        self._f = f
        functools.update_wrapper(self, f)

    def __get__(self, instance, owner=None):
        if instance is None or not hasattr(self._f, "__get__"):
            return self
        return _CustomGradientFunction(self._f.__get__(instance, owner))

    def __call__(self, *args, **kwargs):
        if kwargs:
            raise TypeError(f"custom_gradient: {getattr(self._f, '__name__', self._f)} was "
                            f"called with keyword arguments {sorted(kwargs)}; pass its inputs "
                            "positionally (grad_fn returns one gradient per positional input)")
        return _call_with_custom_gradient(self._f, args)

    def __reduce__(self):
        # pickled by reference, as the function it decorates would be; a method with its
        # instance, and wrapped again on loading: the attribute of the instance is the plain
        # method when the wrapper was made from it (self.act = custom_gradient(self._act))
        owner = getattr(self._f, "__self__", None)
        if owner is not None and not isinstance(owner, types.ModuleType):
            return _with_custom_gradient, (self._f,)
        return self.__qualname__


def _with_custom_gradient(f):
    """A loaded or copied custom-gradient method: f wrapped, unless it is one already (a method
    decorated in its class comes back through the class's decorator)."""
    return f if isinstance(f, _CustomGradientFunction) else _CustomGradientFunction(f)

    def __repr__(self):
        return f"<custom_gradient {getattr(self._f, '__qualname__', self._f)!r}>"


def _run_body(f, xs):
    """Call f(*xs) and return its result and the trainable Variables it read that are not among
    xs, in the order of their first read (TensorFlow's VariableWatcher).

    The innermost transformation, if it is an accumulator, pushes no tangents through the body:
    its tangent of the outputs comes from the transposed grad_fn, and nothing nested inside it
    differentiates the body. So a body without JVP rules (a reverse-only primitive) works under
    one accumulator. Outer levels still see the body: nested derivatives differentiate
    grad_fn's closures, which needs their tangents."""
    active = _core.active_transformations()
    skipped = active[-1] if active and isinstance(active[-1], _core.Accumulator) else None
    was_recording = skipped is not None and skipped.recording
    watcher = _core.Tape(persistent=False, watch_accessed_variables=True)
    if was_recording:
        skipped.recording = False
    watcher._push()
    try:
        result = f(*xs)
        read = [t for t in watcher._watched_tensors()
                if isinstance(t, _core.Variable) and _core.is_float(t)]
    finally:
        watcher._pop()
        watcher._release()
        if was_recording:
            skipped.recording = True
    return result, [v for v in read if not any(v is x for x in xs)]


def _accepts_variables(grad_fn):
    try:
        parameters = inspect.signature(grad_fn).parameters.values()
    except (TypeError, ValueError):
        return True     # no signature to read (a builtin): let the call decide
    return any(p.kind is p.VAR_KEYWORD or
               (p.name == "variables" and p.kind is not p.POSITIONAL_ONLY) for p in parameters)


def _call_with_custom_gradient(f, args):
    name = getattr(f, "__name__", type(f).__name__)
    xs = [_core.convert_to_tensor(a) for a in args]
    returned, variables = _run_body(f, xs)
    if not (isinstance(returned, (tuple, list)) and len(returned) == 2 and callable(returned[1])):
        raise TypeError(f"custom_gradient: {name} must return a pair (outputs, grad_fn), got "
                        f"{type(returned).__name__}")
    result, grad_fn = returned
    if variables and not _accepts_variables(grad_fn):
        raise TypeError(f"custom_gradient: {name} reads the Variables "
                        f"{[v.name for v in variables]}, so its grad_fn must accept a keyword "
                        "argument `variables` and return (input gradients, variable gradients)")
    leaves, pack = flatten(result)
    outs = [_core.convert_to_tensor(y) for y in leaves]
    inputs = xs + variables
    diff = [i for i, y in enumerate(outs) if _core.is_float(y)]  # the outputs with gradients
    if not inputs or not diff:
        return pack(outs) if isinstance(result, (tuple, list, dict)) else outs[0]
    n_x, n_in = len(xs), len(inputs)
    in_shapes = [t.shape for t in inputs]

    # Several float outputs go through one primitive as one flat vector (of their common
    # dtype), so that grad_fn runs once with every output's upstream gradient.
    packed = len(diff) > 1
    layout = []
    if packed:
        common = np.result_type(*(outs[i].dtype.np for i in diff))
        start = 0
        for i in diff:
            layout.append((i, start, start + outs[i].size, outs[i].shape, outs[i].dtype))
            start += outs[i].size

    def upstream_of(g):
        """grad_fn's arguments: one upstream gradient per output, from the primitive's g."""
        if not packed:
            dys = [g if i == diff[0] else ops.zeros_like(y) for i, y in enumerate(outs)]
        else:
            dys = list(outs)    # the non-float ones are replaced by zeros below
            for i in set(range(len(outs))) - set(diff):
                dys[i] = ops.zeros_like(outs[i])
        for i, lo, hi, shape, dtype in layout:
            dys[i] = ops.cast(ops.reshape(g[lo:hi], shape), dtype)
        return dys

    def gradients(g):
        """grad_fn's gradients for `inputs` (None: no gradient), checked and converted."""
        dys = upstream_of(g)
        if variables:
            got = grad_fn(*dys, variables=list(variables))  # a copy: grad_fn may change it
            if not (isinstance(got, (tuple, list)) and len(got) == 2):
                raise TypeError(f"custom_gradient: {name} reads Variables, so its grad_fn must "
                                "return a pair (input gradients, variable gradients)")
            input_grads, variable_grads = flatten(got[0])[0], list(flatten(got[1])[0])
            if len(variable_grads) != len(variables):
                raise ValueError(f"custom_gradient: {name}'s grad_fn returned "
                                 f"{len(variable_grads)} gradients for {len(variables)} "
                                 "variables")
        else:
            input_grads, variable_grads = flatten(grad_fn(*dys))[0], []
        if len(input_grads) != n_x:
            raise ValueError(f"custom_gradient: {name}'s grad_fn returned "
                             f"{len(input_grads)} gradients for {n_x} inputs")
        grads = []
        for k, d in enumerate(input_grads + variable_grads):
            if d is not None:
                x = inputs[k]
                if not _core.is_float(x):
                    d = _core.convert_to_tensor(d)
                else:
                    # a list or array takes the input's dtype; a Tensor of another dtype would
                    # come out of the tape as the gradient of x in the wrong dtype
                    d = _core.like(d, x, "custom_gradient")
                    if d.dtype != x.dtype:
                        raise TypeError(f"custom_gradient: {name}'s grad_fn returned a gradient "
                                        f"of dtype {d.dtype.name} for input {k} of dtype "
                                        f"{x.dtype.name}")
                if isinstance(d, _core.Variable):
                    d = d.read_value()   # not the Variable itself, which may be assigned later
                if d.shape != in_shapes[k]:  # summed over broadcasting, in both modes alike
                    try:
                        d = rules.unbroadcast(d, in_shapes[k])
                    except ValueError:
                        raise ValueError(f"custom_gradient: {name}'s grad_fn returned a gradient "
                                         f"of shape {d.shape} for input {k} of shape "
                                         f"{in_shapes[k]}") from None
            grads.append(d)
        return grads

    # (thread, g, its gradients, last input asked), replaced as one tuple: one visit of the
    # sweep asks for the inputs in increasing order with one g, so grad_fn runs once per
    # visit; a later visit (another gradient call, perhaps recorded by an outer tape) starts
    # again at a lower input and runs grad_fn afresh, even with the same g; a sweep of the
    # same persistent tape on another thread never takes this thread's results
    last = [(None, None, None, -1)]

    def vjp_rule(k, g, ans, args_, params):
        if k >= n_in:
            return None  # an output: its gradient is what grad_fn gives the inputs
        thread, cached_g, grads, asked = last[0]
        if thread != threading.get_ident() or cached_g is not g or k <= asked:
            grads = gradients(g)
        last[0] = (threading.get_ident(), g, grads, k)
        return grads[k]

    def jvp_rule(tangents, ans, args_, params):
        if all(t is None for t in tangents[:n_in]):
            return None  # only outputs have tangents (from values f closes over): none flows on
        # grad_fn is linear in its upstream gradient u, so d/du <grad_fn(u), t> is the JVP
        # whatever u's value; u = 1 makes a result that ignores u (computed in numpy) non-zero,
        # which tells it apart from a true zero gradient
        u = ops.ones_like(ans)
        # only what comes from u gets a slot on this tape (not the Variables grad_fn reads)
        with _tape.GradientTape(watch_accessed_variables=False) as transposer:
            transposer.watch(u)
            grads = gradients(u)
            total = None
            for k in range(n_in):
                t, d = tangents[k], grads[k]
                if t is None or d is None:
                    continue
                if not transposer._has_slot(d):
                    if np.any(np.asarray(d) != 0):
                        raise ValueError(
                            f"custom_gradient: forward mode through {name} transposes its "
                            f"grad_fn, but the gradient it returns for input {k} does not "
                            "depend on the upstream gradient; grad_fn must be linear in it and "
                            "written in dualad ops")
                    continue  # a constant zero (zeros_like(x), 0.0): contributes nothing
                term = ops.reduce_sum(d * t)
                total = term if total is None else total + term
        if total is None:
            return None
        return transposer.gradient(total, u)

    # The outputs are the primitive's last inputs and its value is them (packed): a
    # dualad.function replay recomputes them from the traced body and passes them through,
    # instead of replaying the value of the call that was traced
    n_diff = len(diff)
    if packed:
        impl = lambda *raw: np.concatenate([np.ravel(r).astype(common, copy=False)
                                            for r in raw[-n_diff:]])
    else:
        impl = lambda *raw: raw[-1]
    p = _core.Primitive(f"custom_gradient:{name}", impl)
    p.variadic_vjp = vjp_rule
    p.jvp = _one_direction_at_a_time(jvp_rule)
    y = _core.bind(p, *inputs, *(outs[i] for i in diff))
    if not packed:
        outs[diff[0]] = y
    for i, lo, hi, shape, dtype in layout:
        outs[i] = ops.cast(ops.reshape(y[lo:hi], shape), dtype)
    return pack(outs) if isinstance(result, (tuple, list, dict)) else outs[0]
