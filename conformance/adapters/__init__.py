"""The adapter protocol: how the conformance suite talks to an implementation.

The suite never calls a library directly. Every test receives one *adapter*,
an object that maps the suite's vocabulary onto one library. Pick it with
``pytest conformance/ --impl=NAME`` or ``CONFORMANCE_IMPL=NAME``; NAME is one
of the built-in adapters (``dualad``, ``tensorflow``, ``torch``, ``jax``,
``autograd``) or ``package.module:Attribute`` for an adapter that lives
elsewhere (``conformance.meta.planted.wrong_sin:Adapter``). The attribute may be a
class, which is called with no arguments, or a ready instance.

Writing an adapter
==================

Subclass :class:`BaseAdapter` (or provide the same attributes) and fill in:

Identity
    ``name`` (str) and ``versions`` (dict: package -> version string) for the
    report header.

Capabilities
    ``unsupported``: dict mapping a capability name from :data:`CAPABILITIES`
    to the reason this library cannot express it. Tests needing that
    capability are reported as SKIPPED with the reason; never leave a
    capability out of this dict unless the library really supports it.
    Every adapter handles float32; float64 is the capability ``float64``, float16 (derivatives
    and tangents of half-precision computations, kept in float16) the capability ``float16``.

Known deviations
    ``known_deviations``: dict mapping a test, named ``file.py::test_name``
    or ``file.py::test_name[params]`` (its pytest node id without the
    directory), to the reason the library is known to fail it: a real
    deviation, investigated, such as a library bug. Those tests run as
    ``xfail(strict=True)``: reported as "known deviation" with the reason,
    and a failure (XPASS) as soon as the library stops deviating. Never use
    it for a test the adapter gets wrong; fix the adapter.

Tensors
    ``constant(value, dtype)`` makes a tensor from a NumPy array or a Python
    number; ``dtype`` is ``"float32"``, ``"float64"`` or (capability ``float16``) ``"float16"``.
    ``variable(value, dtype, trainable=True)`` makes a mutable variable that
    tapes watch automatically when ``trainable`` (capability ``variables``).
    ``to_numpy(tensor_or_variable)`` returns a ``numpy.ndarray`` of the tensor's
    own dtype (the suite checks that float32 stays float32).
    ``assign_add(variable, value)`` and ``assign_sub(variable, value)`` update a
    variable in place with a same-shaped value (capability ``variable_assign``).
    Tensors must support the comparisons ``<`` and ``>`` against Python
    numbers, with a result usable in ``if`` and ``while`` (the tutorials'
    data-dependent control flow). Arithmetic in the suite goes through the
    named ops below, never through operators, so that an adapter fully
    defines what is being tested.

Ops (all differentiable unless stated; Python numbers are accepted wherever
a tensor is, and take the other operand's dtype)
    Binary, NumPy broadcasting: ``add subtract multiply divide pow``.
    Unary, elementwise: ``negative square sqrt exp log sin cos tanh abs``.
    ``matmul(a, b)`` on tensors of rank >= 2: the last two axes are matrices, the leading
    (batch) axes broadcast as in NumPy; ``transpose(x)`` reverses the axes;
    Capability ``operators``: the tensors also support ``+ - * / **`` and unary
    ``-``, reflected (``2.0 - x``) and with Python numbers, as the library's own
    arithmetic (the tests of operators use them; no other test does).
    ``reduce_sum(x, axis=None)``, ``reduce_mean(x, axis=None)`` reduce over
    ``axis`` (an int; None: all elements, to a scalar) and ``norm(x)``
    (Euclidean) over all elements; ``stop_gradient(x)`` returns x's value
    with no gradient (used by ``conformance/meta/planted`` to build wrong
    implementations on top of a right one).

Tapes
    ``tape(persistent=False, watch_accessed_variables=True)`` returns a
    context manager whose ``__enter__`` returns an object with:
    ``watch(tensor_or_list)``; ``gradient(target, sources, unconnected_gradients="none")`` where
    ``sources`` is one tensor/variable or a list of them, returning the same
    structure, with ``None`` for a source that the target does not depend on
    through recorded ops. A non-scalar target is differentiated as
    ``reduce_sum(target)``. A gradient computed while a tape's context is
    open (this tape if persistent, or an enclosing tape) is itself recorded,
    so it can be differentiated again. A second ``gradient`` call on a
    non-persistent tape raises ``RuntimeError`` (capability
    ``persistent_tape_error``). ``unconnected_gradients="zero"`` gives zeros shaped like
    the source instead of ``None`` (capability ``unconnected_zero``).
    ``stop_recording()`` is a context manager in which the tape records nothing
    (capability ``stop_recording``). ``jacobian(target, source)`` has shape
    ``target.shape + source.shape``; ``batch_jacobian(target, source)``, for
    target (b, m) and source (b, n) whose rows are independent, has shape (b, m, n)
    (capability ``tape_jacobian``). Functional libraries may emulate tapes by
    recording the ops and replaying them as a closure for their ``grad``
    (see ``_recording.py``) and declare the tape-only behaviours unsupported.

Functional transforms (each is a capability)
    ``jvp(f, primals, tangents) -> (f(*primals), J·v)``;
    ``vjp(f, primals, cotangent) -> (f(*primals), [uᵀ∂f/∂p for p in primals])``;
    ``hvp(f, x, v) -> H(x)·v`` computed forward-over-reverse;
    ``hessian(f, x) -> H(x)`` with shape ``x.shape + x.shape``.
    ``f`` takes and returns the adapter's tensors and is built from its ops.

Traced functions
    ``function(f)`` returns the library's traced/compiled version of ``f``
    (``tf.function``, ``jax.jit``, ``torch.compile``...), taking and
    returning the adapter's tensors (capability ``function``; calling
    optimizers inside it is ``function_with_state``).

Optimizers
    ``sgd(learning_rate, momentum=0.0)`` returns an object with
    ``apply_gradients([(gradient, variable), ...])`` (capability ``sgd``),
    ``minimize(loss_fn, var_list)`` where ``loss_fn()`` takes no argument
    (capability ``sgd_minimize``) and ``set_learning_rate(lr)`` taking effect
    at the next step (capability ``learning_rate_change``). A nonzero momentum m is
    Keras' rule v ← m·v − lr·g, x ← x + v (capability ``momentum``).
    ``adam(learning_rate, beta_1, beta_2, epsilon)``, ``rmsprop(learning_rate, rho, epsilon)``
    and ``adagrad(learning_rate, initial_accumulator_value, epsilon)`` return objects with
    ``apply_gradients`` that follow Keras' update rules (capabilities ``adam``, ``rmsprop``,
    ``adagrad``; the rules, epsilon's place included, are stated in identities.md, GT-OPT-03..05).

Strictness
    ``skips_fail``: True for an implementation that must support every
    capability (dualad): any test skipped on it fails the run instead.
    ``capabilities``: if not None, the capabilities the adapter claims, listed
    explicitly; ``supports`` then also requires membership.

A library that cannot be imported makes its adapter module raise
:class:`AdapterUnavailable` at import; every test is then skipped with that
reason (e.g. "tensorflow is not installed").
"""
from __future__ import annotations

import importlib
import os
from typing import Any

#: Every capability a test can require, with what it means.
CAPABILITIES = {
    "float64": "differentiate float64 tensors",
    "variables": "mutable Variables that tapes watch automatically when trainable",
    "watch_accessed_variables": "tape(watch_accessed_variables=False) records only explicitly watched sources",
    "persistent_tape_error": "a non-persistent tape refuses a second gradient() call with RuntimeError",
    "nested_tapes": "a gradient computed inside an open tape context is recorded, hence differentiable",
    "function": "a traced/compiled function that contains a tape",
    "function_with_state": "a traced/compiled function that updates Variables through an optimizer",
    "function_control_flow": "a traced/compiled function whose Python if/while depend on tensor values",
    "sgd": "SGD optimizer with apply_gradients",
    "sgd_minimize": "SGD optimizer with minimize(loss_fn, var_list)",
    "learning_rate_change": "changing an optimizer's learning rate between steps",
    "jvp": "forward-mode Jacobian-vector products",
    "vjp": "reverse-mode vector-Jacobian products",
    "hvp": "forward-over-reverse Hessian-vector products",
    "hessian": "full Hessians",
    "stop_recording": "tape.stop_recording() suspends recording on that tape inside its block",
    "unconnected_zero": "gradient(..., unconnected_gradients='zero') gives zeros instead of None",
    "tape_jacobian": "tape.jacobian(target, source) and tape.batch_jacobian(target, source)",
    "operators": "Python arithmetic operators on tensors, reflected ones and Python-number operands included",
    "variable_assign": "assign_add(variable, value) and assign_sub(variable, value)",
    "reverse_over_forward": "a tape records a jvp's computation, so a tangent can be differentiated in reverse",
    "momentum": "SGD with momentum (sgd(learning_rate, momentum=m))",
    "float16": "differentiate float16 tensors (gradients and tangents stay float16)",
    "adam": "Adam with apply_gradients (adam(learning_rate, beta_1, beta_2, epsilon))",
    "rmsprop": "RMSprop with apply_gradients (rmsprop(learning_rate, rho, epsilon))",
    "adagrad": "Adagrad with apply_gradients (adagrad(learning_rate, initial_accumulator_value, epsilon))",
}

#: The op vocabulary every adapter provides (see "Ops" above).
OPS = (
    "add", "subtract", "multiply", "divide", "pow",
    "negative", "square", "sqrt", "exp", "log", "sin", "cos", "tanh", "abs",
    "matmul", "transpose", "reduce_sum", "reduce_mean", "norm", "stop_gradient",
)

BUILTIN = {
    "dualad": "conformance.adapters.dualad_adapter:Adapter",
    "tensorflow": "conformance.adapters.tensorflow_adapter:Adapter",
    "torch": "conformance.adapters.torch_adapter:Adapter",
    "jax": "conformance.adapters.jax_adapter:Adapter",
    "autograd": "conformance.adapters.autograd_adapter:Adapter",
}

DEFAULT_IMPL = "dualad"
ENV_VAR = "CONFORMANCE_IMPL"


class AdapterUnavailable(Exception):
    """The adapter's library cannot be used here; the message says why."""


class BaseAdapter:
    """Defaults shared by adapters. Subclasses override what their library does natively."""

    name = "unnamed"
    versions: dict[str, str] = {}
    unsupported: dict[str, str] = {}
    known_deviations: dict[str, str] = {}
    skips_fail = False
    capabilities: frozenset[str] | None = None

    @property
    def float_dtypes(self) -> tuple[str, ...]:
        return ("float32", "float64") if self.supports("float64") else ("float32",)

    @property
    def half_and_float_dtypes(self) -> tuple[str, ...]:
        """float_dtypes, and float16 where supported (drawn only by identities that allow for it)."""
        return (*self.float_dtypes, "float16") if self.supports("float16") else self.float_dtypes

    def supports(self, capability: str) -> bool:
        if capability not in CAPABILITIES:
            raise KeyError(f"unknown capability {capability!r}")
        if self.capabilities is not None and capability not in self.capabilities:
            return False
        return capability not in self.unsupported


def missing_ops(adapter) -> list[str]:
    """Names from OPS that ``adapter`` does not provide."""
    return [op for op in OPS if not callable(getattr(adapter, op, None))]


def resolve(spec: str) -> str:
    """Map a built-in name to its ``module:attribute`` spec; pass other specs through."""
    if spec in BUILTIN:
        return BUILTIN[spec]
    if ":" not in spec:
        raise ValueError(
            f"unknown implementation {spec!r}: use one of {', '.join(BUILTIN)} "
            "or 'package.module:Attribute'"
        )
    return spec


def load(spec: str):
    """Import and instantiate the adapter named by ``spec``.

    Raises AdapterUnavailable when the adapter's library cannot be imported.
    """
    module_name, _, attribute = resolve(spec).partition(":")
    module = importlib.import_module(module_name)
    adapter = getattr(module, attribute)
    return adapter() if isinstance(adapter, type) else adapter


_selected_spec: str | None = None
_selected: Any = None
_unavailable: AdapterUnavailable | None = None


def select(spec: str | None) -> str:
    """Choose the implementation for this process (done once, by conftest)."""
    global _selected_spec, _selected, _unavailable
    _selected_spec = spec or os.environ.get(ENV_VAR) or DEFAULT_IMPL
    resolve(_selected_spec)  # fail early on a malformed name
    _selected = _unavailable = None
    return _selected_spec


def selected_spec() -> str:
    return _selected_spec or select(None)


def selected():
    """The chosen adapter, loaded on first use. Raises AdapterUnavailable."""
    global _selected, _unavailable
    if _selected is None and _unavailable is None:
        try:
            _selected = load(selected_spec())
        except AdapterUnavailable as exc:
            _unavailable = exc
    if _unavailable is not None:
        raise _unavailable
    return _selected
