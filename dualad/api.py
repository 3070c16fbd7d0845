"""The functional API (in the style of JAX and torch.func) over the same core as the tapes:
every transformation here is a GradientTape or a ForwardAccumulator, so they compose with each
other and with user tapes in any order. As in JAX, derivatives are taken in argument positions:
each differentiated argument is a fresh value, so a tensor that f also closes over (or that is
passed for two arguments) counts only where it is passed."""
import functools
import warnings

import numpy as np

from . import _core, ops
from ._core import Tensor
from .nest import flatten
from .tape import ForwardAccumulator, GradientTape, NonFloatWatchWarning


def _argnums(argnums, n_args, fname):
    """Normalise argnums to a tuple of valid indices; also say whether one int was given."""
    single = np.ndim(argnums) == 0
    nums = (argnums,) if single else tuple(argnums)
    if not nums:
        raise ValueError(f"{fname}: argnums must name at least one argument")
    for a in nums:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{fname}: argnums must be ints, got {a!r}")
        if not -n_args <= a < n_args:
            raise IndexError(f"{fname}: argnums {a} is out of range for a call with "
                             f"{n_args} positional argument(s)")
    return tuple(int(a) % n_args for a in nums), single


def _fresh(value):
    """`value` as a new Tensor of its own, for the position of one differentiated argument.

    Tapes and accumulators follow tensor objects, so the tensor a caller passes may also be
    closed over by f, or passed for two arguments: differentiating that object would mix those
    uses in (grad(lambda y: x * y)(x) would give 2x, not x — perturbation confusion). The copy
    is an identity op, so transformations outside this call still see through it."""
    t = _core.convert_to_tensor(value)
    return ops.identity(t) if _core.is_float(t) else t


def _with_tensors(args, nums):
    """The call's arguments with those at `nums` as fresh Tensors (also returned separately)."""
    args = list(args)
    xs = []
    for i in nums:
        args[i] = _fresh(args[i])
        xs.append(args[i])
    return args, xs


def _scalar_output(out, fname):
    if isinstance(out, (tuple, list, dict)):
        raise TypeError(f"{fname}: the function must return a scalar, got a {type(out).__name__}; "
                        "to return auxiliary data with the output, pass has_aux=True and return "
                        "a pair (output, aux); for several outputs use dualad.jacobian")
    out = _core.convert_to_tensor(out)
    if out.shape != ():
        raise TypeError(f"{fname}: the function must return a scalar, got shape {out.shape}; "
                        "for non-scalar outputs use dualad.jacobian (or jacrev / jacfwd)")
    if not _core.is_float(out):
        raise TypeError(f"{fname}: the function returned a {out.dtype.name} scalar; only float "
                        "outputs can be differentiated")
    return out


def _split_aux(out, has_aux, fname):
    if not has_aux:
        return out, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(f"{fname}: with has_aux=True the function must return a pair "
                        "(output, auxiliary data)")
    return out[0], out[1]


def value_and_grad(f, argnums=0, has_aux=False):
    """A function returning (`f(*args)`, gradient of f in the arguments at argnums).
    f must return a float scalar; with has_aux, ((value, aux), gradient)."""

    @functools.wraps(f)
    def value_and_grad_f(*args, **kwargs):
        nums, single = _argnums(argnums, len(args), "grad")
        args, xs = _with_tensors(args, nums)
        with GradientTape() as tape:
            tape.watch(xs)
            out, aux = _split_aux(f(*args, **kwargs), has_aux, "grad")
            out = _scalar_output(out, "grad")
        grads = tape.gradient(out, xs, unconnected_gradients="zero")
        grads = grads[0] if single else tuple(grads)
        return ((out, aux) if has_aux else out), grads

    return value_and_grad_f


def grad(f, argnums=0, has_aux=False):
    """The gradient of scalar-valued f in the arguments at argnums (a tuple of gradients when
    argnums is a tuple; (gradient, aux) with has_aux)."""
    vg = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def grad_f(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return grad_f


def derivative(f, order=1):
    """The order-th derivative of a scalar function of one scalar."""
    if int(order) != order or order < 0:
        raise ValueError(f"derivative: order must be a non-negative int, got {order!r}")
    for _ in range(int(order)):
        f = grad(f)
    return f


def jvp(f, primals, tangents, has_aux=False):
    """(`f(*primals)`, J·tangents): forward mode, one pass. Tangents must match the primals in
    shape and dtype."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    xs = [_fresh(p) for p in primals]
    watched, ts = [], []
    for x, t in zip(xs, tangents):
        if not _core.is_float(x):
            warnings.warn(f"jvp: a {x.dtype.name} primal cannot carry a tangent; its tangent is "
                          "ignored (cast it to a float dtype)", NonFloatWatchWarning, stacklevel=2)
            continue
        # numpy arrays and scalars declare a dtype that must match; Python numbers and lists
        # take the primal's
        declared = t.dtype if isinstance(t, (Tensor, np.ndarray, np.generic)) else None
        t = _core.like(t, x, "jvp") if not isinstance(t, Tensor) else t
        if t.shape != x.shape or t.dtype != x.dtype or (declared is not None and declared != x.dtype):
            name = np.dtype(getattr(declared, "np", declared) or t.dtype.np).name
            raise ValueError(f"jvp: tangent of shape {t.shape} and dtype {name} does not "
                             f"match its primal of shape {x.shape} and dtype {x.dtype.name}")
        watched.append(x)
        ts.append(t)
    with ForwardAccumulator(watched, ts) as acc:
        out, aux = _split_aux(f(*xs), has_aux, "jvp")
    flat_out, pack = flatten(out)
    flat_out = [_core.convert_to_tensor(o) for o in flat_out]
    tangent_out = pack(acc.jvp(flat_out, unconnected_gradients="zero"))
    out = pack(flat_out)
    return (out, tangent_out, aux) if has_aux else (out, tangent_out)


def vjp(f, *primals, has_aux=False):
    """(`f(*primals)`, vjp_fn) where vjp_fn(cotangent) gives uᵀJ for each primal (a tuple).
    vjp_fn can be called any number of times."""
    xs = [_fresh(p) for p in primals]
    tape = GradientTape(persistent=True)
    with tape:
        tape.watch(xs)
        out, aux = _split_aux(f(*xs), has_aux, "vjp")
    flat_out, pack = flatten(out)
    flat_out = [_core.convert_to_tensor(o) for o in flat_out]

    def vjp_fn(cotangent):
        flat_ct, _ = flatten(cotangent)
        if len(flat_ct) != len(flat_out):
            raise ValueError(f"vjp: the cotangent has {len(flat_ct)} parts, the output "
                             f"{len(flat_out)}")
        return tuple(tape.gradient(flat_out, xs, output_gradients=flat_ct,
                                   unconnected_gradients="zero"))

    out = pack(flat_out)
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def _jacobian_reverse(f, args, kwargs, nums):
    args, xs = _with_tensors(args, nums)
    with GradientTape(persistent=True) as tape:
        tape.watch(xs)
        out = _core.convert_to_tensor(f(*args, **kwargs))
    return [tape.jacobian(out, x, unconnected_gradients="zero") for x in xs]


def _jacobian_forward(f, args, kwargs, nums):
    """One forward pass per argument, carrying all n columns of the identity as a batch of
    tangents (vector tangents), so the whole Jacobian costs one pass, not n."""
    args, xs = _with_tensors(args, nums)
    jacs = []
    for x in xs:
        n = x.size
        basis = _core.wrap(np.eye(n, dtype=x.dtype.np).reshape((n,) + x.shape))
        with ForwardAccumulator(x, basis, batched=True) as acc:
            out = _core.convert_to_tensor(f(*args, **kwargs))
        columns = acc.jvp(out)
        if columns is None:
            jacs.append(ops.zeros(out.shape + x.shape, out.dtype))
            continue
        m = out.size
        jac = ops.transpose(ops.reshape(columns, (n, m)))  # (m, n)
        jacs.append(ops.reshape(jac, out.shape + x.shape))
    return jacs


def _make_jacobian(f, argnums, how, fname):
    @functools.wraps(f)
    def jac_f(*args, **kwargs):
        nums, single = _argnums(argnums, len(args), fname)
        jacs = how(f, args, kwargs, nums)
        return jacs[0] if single else tuple(jacs)

    return jac_f


def jacrev(f, argnums=0):
    """The Jacobian (shape output.shape + input.shape) by reverse mode: backward sweeps that
    each carry many output elements' cotangents (GradientTape.jacobian). Best when outputs
    are fewer than inputs."""
    return _make_jacobian(f, argnums, _jacobian_reverse, "jacrev")


def jacfwd(f, argnums=0):
    """The Jacobian (shape output.shape + input.shape) by forward mode. Best when inputs are
    fewer than outputs."""
    return _make_jacobian(f, argnums, _jacobian_forward, "jacfwd")


def jacobian(f, argnums=0, mode="auto"):
    """The Jacobian by `mode`: 'forward', 'reverse', or 'auto', which probes the output size
    with one plain evaluation and picks forward when the inputs are fewer than the outputs.
    The choice is remembered per argument shapes and dtypes (it only affects speed: both
    modes give the same Jacobian). The returned function records it in `.last_mode`."""
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"jacobian: mode must be 'auto', 'forward' or 'reverse', got {mode!r}")
    choices = {}

    @functools.wraps(f)
    def jac_f(*args, **kwargs):
        nums, single = _argnums(argnums, len(args), "jacobian")
        chosen = mode
        if chosen == "auto":
            tensors = [_core.convert_to_tensor(args[i]) for i in nums]
            key = tuple((t.shape, t.dtype.np) for t in tensors)
            chosen = choices.get(key)
            if chosen is None:
                with _core.paused():
                    n_out = _core.convert_to_tensor(f(*args, **kwargs)).size
                chosen = choices[key] = ("forward" if sum(t.size for t in tensors) < n_out
                                         else "reverse")
        jac_f.last_mode = chosen
        how = _jacobian_forward if chosen == "forward" else _jacobian_reverse
        jacs = how(f, args, kwargs, nums)
        return jacs[0] if single else tuple(jacs)

    jac_f.last_mode = None
    return jac_f


def hessian(f, argnums=0):
    """The Hessian of scalar-valued f, forward-over-reverse (jacfwd of grad)."""
    return jacfwd(grad(f, argnums), argnums)


def hvp(f, x, v):
    """The Hessian-vector product H(x)·v of scalar-valued f(x), reverse-over-forward: the
    gradient of the directional derivative ∇f(x)·v, one tape over one forward pass carrying the
    tangent v, never forming H. (Forward-over-reverse would also compute the gradient ∇f(x)
    itself, which H·v does not need: one more pass over f's matrices.)"""
    return grad(lambda y: jvp(f, (y,), (v,))[1])(x)
