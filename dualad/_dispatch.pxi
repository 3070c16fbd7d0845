# Primitives and the op call (run_op): value, check_numerics, recording and tangents.
# (included by _core.pyx: one extension module, assembled from these files)

from cpython.contextvars cimport PyContextVar_Set, PyContextVar_Reset

# --------------------------------------------------------------------------------------------
# Primitives and the op call
# --------------------------------------------------------------------------------------------

cdef class Primitive:
    """One differentiable operation: its numpy implementation and derivative rules.

    `vjps[i](g, ans, args, params)` gives the cotangent of input i (None: not differentiable
    there); primitives taking any number of inputs (concat) give one `variadic_vjp(k, g, ans,
    args, params)` instead. `jvp(tangents, ans, args, params)` gives the output tangent from the
    input tangents (None entries for inputs without one). Rules are written in dualad ops, so they are
    themselves recorded and differentiable. A VJP slot holding NO_GRADIENT takes no gradient
    by design; a missing rule (None) for an input that needs a gradient is an error.
    `opcode` names the C scalar kernel (a key of SCALAR_OPCODES) computing this primitive on
    scalars, or None."""

    def __init__(self, name, impl, vjps=(), jvp=None, differentiable=True, opcode=None):
        self.name = name
        self.impl = impl
        self.vjps = tuple(vjps)
        self.jvp = jvp
        if opcode is None:
            self.code = OP_NONE
        elif opcode in SCALAR_OPCODES:
            self.code = SCALAR_OPCODES[opcode]
        else:
            raise ValueError(f"{name}: no scalar opcode {opcode!r} in the core")
        self.differentiable = differentiable

    @property
    def impl(self):
        return self._impl

    @impl.setter
    def impl(self, value):
        self._impl = value
        self._quiet_gen = -1    # whether it runs quietly is worked out at its next call

    def __repr__(self):
        return f"<dualad.Primitive {self.name}>"

    # A primitive is one registered object, like a function: copies are itself, and a pickle
    # names it, to be found registered under that name where it is loaded (Cython's default
    # pickle of this class could not be loaded).
    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        from dualad.rules import PRIMITIVES
        if PRIMITIVES.get(self.name) is not self:
            raise TypeError(f"primitive {self.name!r} is not the one registered under its name, "
                            "so it cannot be pickled (pickles name a primitive made by "
                            "dualad.extend.primitive)")
        return (_registered_primitive, (self.name,))

    def __call__(self, *args, **params):
        if not args:
            raise TypeError(f"{self.name}: a primitive needs at least one tensor argument")
        return run_op(self, tuple([a if isinstance(a, Tensor) else convert_to_tensor(a)
                                   for a in args]), params or None)


def _registered_primitive(name):
    """The primitive registered under `name` (a pickled Primitive)."""
    from dualad.rules import PRIMITIVES
    if not isinstance(name, str) or name not in PRIMITIVES:
        raise ValueError(f"a pickled primitive names {name!r:.80}, which is not registered in "
                         "this process; register it (dualad.extend.primitive) before loading")
    return PRIMITIVES[name]


# dualad.debugging.enable_check_numerics: every op result (forward, and inside gradient
# computations) is checked for NaN and infinity.
cdef bint _check_numerics = False
cdef Primitive _rule_of = None   # the primitive whose derivative rule is running, for messages


def set_check_numerics(bint enabled):
    global _check_numerics
    _check_numerics = enabled


def check_numerics_enabled():
    return _check_numerics


cdef void _numerics_failed(object opname, object value, tuple args, Primitive rule) except *:
    arr = _np_asarray(value)
    what = "NaN" if np.isnan(arr).any() else "infinity"
    if rule is None:
        rule = _rule_of
    if opname is None:  # the C scalar path, which computes a VJP in one kernel
        where = f"the gradient of '{rule.name}'"
    else:
        where = f"op '{opname}'"
        if rule is not None:
            where += f" (in the gradient of '{rule.name}')"
    shapes = ", ".join(str((<Tensor>a).shape) for a in args)
    raise FloatingPointError(f"check_numerics: {where} produced {what} from inputs of shapes "
                             f"[{shapes}]")


cdef inline void _check_finite(Primitive p, Tensor out, tuple args) except *:
    if out._kind == K_OTHER and out._dtype.kind != "f":  # ints and bools; float16 is checked
        return
    if out._is_scalar:
        if not isfinite(out._d):
            _numerics_failed(p.name, out._d, args, None)
    elif not np.isfinite(out._arr).all():
        _numerics_failed(p.name, out._arr, args, None)


cdef Tensor run_op(Primitive p, tuple args, dict params):
    """Apply `p` to Tensors `args`: compute the value, record it on the active tapes and
    propagate tangents of the active accumulators (and append it to a trace being taken)."""
    cdef Tensor a, b, out = None
    cdef Py_ssize_t n = len(args)
    cdef object raw
    cdef TraceSink tracer = None
    if p.code != OP_NONE:
        if n != _scalar_arity(p.code):
            _wrong_arity(p, n)  # (the scalar kernels below would read a missing input as 0)
        a = <Tensor>args[0]
        b = <Tensor>args[n - 1]
        if _takes_scalar_path(p, a, b):
            return _scalar_op(p, a, b if n == 2 else None, args)
    if _n_live or _n_tracing:
        if _n_tracing:
            tracer = _state().tracer
        for a in args:
            if a._is_var:
                args = _read_variables(args, tracer)
                break
    if p.code != OP_NONE:
        a = <Tensor>args[0]
        if a._is_scalar:
            if n == 1:
                out = new_scalar(_scalar_value(p.code, a._d, 0.0), a._kind)
            elif n == 2:
                b = <Tensor>args[1]
                if b._is_scalar and b._kind == a._kind:
                    out = new_scalar(_scalar_value(p.code, a._d, b._d), a._kind)
    if out is None:
        raw = _call_impl(p, args, params)
        out = _wrap(raw)
    if _check_numerics:
        _check_finite(p, out, args)
    if tracer is not None:
        tracer.record_op(p, args, params, out)
    if _n_live == 0 or not p.differentiable or (out._kind == K_OTHER
                                                 and out._dtype.kind != "f"):  # float16 goes on
        return out
    _transform(p, args, params, out)
    return out


cdef void _wrong_arity(Primitive p, Py_ssize_t n) except *:
    cdef int k = _scalar_arity(p.code)
    raise TypeError(f"{p.name} takes {k} tensor input{'s' if k > 1 else ''}, got {n}")


cdef bint _scalar_op_path = True    # off only in tests, which compare it with run_op's general path


def _set_scalar_op_path(bint enabled):
    """Whether ops take _scalar_op where they can (tests compare both paths); returns the
    previous setting."""
    global _scalar_op_path
    previous = _scalar_op_path
    _scalar_op_path = enabled
    return previous


cdef inline bint _takes_scalar_path(Primitive p, Tensor a, Tensor b) noexcept:
    # p's scalar kernel on a and b (b is a for one input), float scalars of one kind, with no
    # trace being taken and check_numerics off: only tapes and accumulators see the op
    return (a._is_scalar and b._is_scalar and a._kind == b._kind and p.code != OP_NONE
            and not _check_numerics and not _n_tracing and p.differentiable and _scalar_op_path)


cdef inline Tensor _scalar_op(Primitive p, Tensor a, Tensor b, tuple args):
    """run_op(p, (a, b)) (b None: (a,)) where _takes_scalar_path: the same Variable reads,
    value, entries and tangents, without run_op's general steps; `args` the argument tuple,
    or None: it is made only when a tape or accumulator takes the op."""
    if _n_live == 0:    # (inline: the value alone, no call)
        return new_scalar(_scalar_value(p.code, a._d, 0.0 if b is None else b._d), a._kind)
    return _scalar_op_recorded(p, a, b, args)


cdef Tensor _scalar_op_recorded(Primitive p, Tensor a, Tensor b, tuple args):
    """_scalar_op while a tape or accumulator is live on some thread."""
    cdef int kind = a._kind
    cdef list stack = _state().stack
    cdef Transformation tr
    cdef Tensor out
    cdef Py_ssize_t s0, s1
    if a._is_var or (b is not None and b._is_var):
        a = _read_scalar_operand(a, stack)
        if b is not None:
            b = _read_scalar_operand(b, stack)
        args = None
    out = new_scalar(_scalar_value(p.code, a._d, 0.0 if b is None else b._d), kind)
    if len(stack) == 1:
        # the usual cases, one tape or one accumulator: _record_scalar's step for its one
        # level, without the loop over levels
        tr = <Transformation>stack[0]
        if tr.hidden or not tr.recording:
            return out
        s0 = s1 = -1
        if tr.is_tape:
            s0 = _slot_of(a, tr.id)
            s1 = -1 if b is None else _slot_of(b, tr.id)
            if s0 < 0 and s1 < 0:
                return out
        if _scalar_level_c_path(tr, stack, 0, p, a, b, out, s0, s1):
            return out
    _record_scalar(p, a, b, args, kind, out, stack)
    return out


cdef Tensor _scalar_op_number(Primitive p, Tensor t, object number, bint number_first):
    """binary(p, t, number), or binary(p, number, t) when number_first, where
    _takes_scalar_path(p, t, t) and `number` is a Python float or int: the number takes t's
    kind as _like converts it, and becomes a Tensor only where a tape or accumulator takes the
    op (_record_scalar); t is read as _scalar_op reads a Variable."""
    cdef int kind = t._kind
    cdef double v = PyLong_AsDouble(number) if type(number) is int else PyFloat_AS_DOUBLE(number)
    cdef list stack
    cdef Transformation tr
    cdef Tensor out
    v = _round(v, kind == K_F32)
    if _n_live == 0:
        return new_scalar(_scalar_value(p.code, v, t._d) if number_first
                          else _scalar_value(p.code, t._d, v), kind)
    stack = _state().stack
    t = _read_scalar_operand(t, stack)
    if number_first:
        out = new_scalar(_scalar_value(p.code, v, t._d), kind)
        _record_scalar(p, number, t, None, kind, out, stack)
    else:
        out = new_scalar(_scalar_value(p.code, t._d, v), kind)
        _record_scalar(p, t, number, None, kind, out, stack)
    return out


cdef inline bint _watches_accessed(Transformation tr) noexcept:
    # a tape of this thread that watches the trainable Variables an op reads now
    return (tr.is_tape and tr.hidden == 0 and tr.recording
            and (<Tape>tr).watch_accessed_variables)


cdef inline Tensor _read_scalar_operand(Tensor t, list stack):
    # a scalar op's operand as _read_variables reads it: a trainable Variable is watched by
    # the tapes of `stack` that watch accessed variables, then read as a snapshot
    cdef Transformation tr
    if not t._is_var:
        return t
    if (<Variable>t).trainable:
        for tr in stack:
            if _watches_accessed(tr):
                (<Tape>tr)._watch(t)
    return _read_one(t, None)


cdef tuple _read_variables(tuple args, TraceSink tracer):
    """Variables among an op's inputs become snapshots of their current value (the residual a
    tape keeps must not change when the Variable is assigned later). Tapes that watch accessed
    variables start watching them here; a trace records the read."""
    cdef Tensor a
    cdef Transformation tr
    if _n_live:
        for tr in _state().stack:
            if _watches_accessed(tr):
                for a in args:
                    if a._is_var and (<Variable>a).trainable:
                        (<Tape>tr)._watch(a)
    # the new tuple built directly for one or two inputs (no list in between)
    cdef Py_ssize_t n = len(args)
    if n == 1:
        return (_read_one(<Tensor>args[0], tracer),)
    if n == 2:
        return (_read_one(<Tensor>args[0], tracer), _read_one(<Tensor>args[1], tracer))
    return tuple([_read_one(a, tracer) for a in args])


cdef inline Tensor _read_one(Tensor a, TraceSink tracer):
    cdef Tensor snap
    if not a._is_var:
        return a
    if tracer is None:
        return (<Variable>a)._read_snapshot()
    snap = (<Variable>a)._snapshot()    # a trace keys its values by the snapshot's identity
    tracer.record_read(<Variable>a, snap)
    return snap


# numpy's floating-point error state while an op runs: NaN and inf propagate silently, as in
# TensorFlow (dualad.debugging reports them). np.errstate costs ~1 us per use; setting numpy's
# context variable through the C API costs ~0.1 us (numpy 2's internals, with errstate as
# fallback when they are not what this expects).
cdef object _np_errstate_var = None
cdef object _IGNORE_FP_ERRORS = None
try:
    import contextvars as _contextvars
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj
    if type(_extobj_contextvar) is _contextvars.ContextVar:
        _IGNORE_FP_ERRORS = _make_extobj(all="ignore")
        _np_errstate_var = _extobj_contextvar
except ImportError:
    pass


cdef extern from "Python.h":
    int PyContext_Enter(object ctx) except -1
    int PyContext_Exit(object ctx) except -1

cdef object _np_ufunc_type = np.ufunc
# numpy's own ufuncs (not np.frompyfunc's, which call Python functions)
cdef frozenset _numpy_ufuncs = frozenset([f for f in vars(np).values() if type(f) is np.ufunc])

import types as _types
cdef object _py_function_type = _types.FunctionType  # (a lambda here would be Cython's)
cdef object _core_function_type = type(set_check_numerics)  # the core's own def functions
# built-in impls that only call numpy on arrays, as numpy's ufuncs do: Python functions
# registered by rules.py (run_quietly), and the core's own compiled kernels (_kernels.pxi);
# compared by identity. Each addition renews _quiet_impls_gen, so that primitives declared
# before it work out their _quiet flag again.
cdef list _quiet_impls = []
cdef Py_ssize_t _quiet_impls_gen = 0
# multiply's impl (_kernels.pxi); with numpy's add, subtract and true_divide, an impl whose
# small float arrays the core's own loops compute, called directly (no Python call, no numpy
# error-state context: they set none)
cdef object _core_multiply_impl = None


def run_quietly(*impls):
    """Mark built-in impls (plain Python functions or the core's own, over numpy arrays,
    calling nothing else) to run as numpy's own ufuncs do, in the per-thread quiet context
    (_call_ufunc_quietly)."""
    for impl in impls:
        if type(impl) is not _py_function_type and type(impl) is not _core_function_type:
            raise TypeError(f"run_quietly takes Python functions, got {type(impl).__name__}")
    _add_quiet_impls(impls)


cdef void _add_quiet_impls(tuple impls):
    global _quiet_impls_gen
    _quiet_impls.extend(impls)
    _quiet_impls_gen += 1


cdef void _classify_impl(Primitive p):
    # (once per impl, not per call: a frozenset lookup hashes the ufunc each time)
    impl = p._impl
    p._quiet = ((type(impl) is _np_ufunc_type and impl in _numpy_ufuncs)
                or any(impl is q for q in _quiet_impls))
    if impl is _core_multiply_impl or impl is np.multiply:
        p._small_op = SMALL_MUL
    elif impl is np.add:
        p._small_op = SMALL_ADD
    elif impl is np.subtract:
        p._small_op = SMALL_SUB
    elif impl is np.true_divide:
        p._small_op = SMALL_DIV
    else:
        p._small_op = 0
    p._quiet_gen = _quiet_impls_gen


cdef object _call_impl(Primitive p, tuple args, dict params):
    cdef _ThreadState st
    if p._quiet_gen != _quiet_impls_gen:
        _classify_impl(p)
    if p._small_op and params is None and len(args) == 2:
        raw = _small_arith_tensors(p._small_op, <Tensor>args[0], <Tensor>args[1])
        if raw is not None:
            return raw
    if p._impl is _TRANSPOSE_IMPL:
        return _call_transpose(p, args, params)  # a view: no arithmetic, no error state to set
    if _np_errstate_var is None:
        with np.errstate(all="ignore"):
            return _call_impl_raw(p, args, params)
    if p._quiet:
        st = _state()
        if not st.quiet_entered:
            return _call_ufunc_quietly(st, p, args, params)
    token = PyContextVar_Set(_np_errstate_var, _IGNORE_FP_ERRORS)
    try:
        return _call_impl_raw(p, args, params)
    finally:
        PyContextVar_Reset(_np_errstate_var, token)


cdef object _call_ufunc_quietly(_ThreadState st, Primitive p, tuple args, dict params):
    # A numpy ufunc on numeric arrays runs no Python code of its own and reads no context
    # variable but numpy's error state: it runs in this thread's own context holding only that
    # state ("ignore"). Entering a context swaps a pointer; setting the variable in the
    # caller's context (the general path) builds a new context each time, ~10x the cost.
    # A finalizer that runs inside (garbage collection during an allocation) and calls an op
    # finds quiet_entered set and takes the general path.
    if st.quiet is None:
        st.quiet = _contextvars.Context()
        st.quiet.run(_np_errstate_var.set, _IGNORE_FP_ERRORS)
    ctx = st.quiet
    PyContext_Enter(ctx)
    st.quiet_entered = True
    try:
        return _call_impl_raw(p, args, params)
    finally:
        st.quiet_entered = False
        PyContext_Exit(ctx)


cdef object _add_into_quietly(object arr, object other):
    # arr += other (the sweep's in-place sums) under the same error state as the ops: an
    # overflow gives inf silently, as the fresh sum it replaces would
    if _np_errstate_var is None:
        with np.errstate(all="ignore"):
            return np.add(arr, other, out=arr)
    token = PyContextVar_Set(_np_errstate_var, _IGNORE_FP_ERRORS)
    try:
        return np.add(arr, other, out=arr)
    finally:
        PyContextVar_Reset(_np_errstate_var, token)


cdef object _call_impl_raw(Primitive p, tuple args, dict params):
    # one and two inputs without parameters (elementwise ops) call the impl with no argument
    # list built; `args` is a tuple, so its length cannot change under the indexing below
    cdef Py_ssize_t n = len(args)
    try:
        if params is None and n == 2:
            return p._impl((<Tensor>args[0])._value(), (<Tensor>args[1])._value())
        if params is None and n == 1:
            return p._impl((<Tensor>args[0])._value())
        raws = [(<Tensor>t)._value() for t in args]
        if params:
            return p._impl(*raws, **params)
        return p._impl(*raws)
    except ValueError as e:
        shapes = ", ".join(str(np.shape((<Tensor>t)._value())) for t in args)
        raise ValueError(f"{p.name}: {e} (input shapes {shapes})") from None


cdef object _call_transpose(Primitive p, tuple args, dict params):
    # a matrix swapped (what matmul's users and rules make) without an impl call: numpy's
    # reversal of the axes is the same view as its transpose by perm (1, 0)
    if len(args) == 1 and params is not None and len(params) == 1:
        x = (<Tensor>args[0])._value()
        perm = params.get("perm")
        if (type(x) is _np_ndarray and cnp.PyArray_NDIM(<cnp.ndarray>x) == 2
                and (perm is _SWAP_PERM or (type(perm) is tuple and perm == _SWAP_PERM))):
            return cnp.PyArray_Transpose(<cnp.ndarray>x, NULL)
    return _call_impl_raw(p, args, params)


cpdef Tensor unary(Primitive p, Tensor x):
    """Apply a one-input primitive without parameters (the fast path of elementwise ops)."""
    if p.code != OP_NONE and _scalar_arity(p.code) != 1:
        _wrong_arity(p, 1)
    if _takes_scalar_path(p, x, x):
        return _scalar_op(p, x, None, None)     # (no argument tuple unless the op is recorded)
    return run_op(p, (x,), None)


def bind(Primitive p, *args, **params):
    """Apply primitive `p` to Tensor arguments (the entry point of ops.py)."""
    if not args:
        raise TypeError(f"{p.name}: a primitive needs at least one tensor argument")
    for a in args:
        if not isinstance(a, Tensor):
            raise TypeError(f"{p.name}: expected Tensors, got {type(a).__name__}")
    return run_op(p, args, params or None)


cdef tuple _SWAP_PERM = (1, 0)


cdef inline object _matrix_of(Tensor t):
    # the value of `t` if it is a rank-2 numpy array (what the compiled matmul and transpose
    # take directly), else None
    if t._is_scalar:
        return None
    v = t._value()
    return v if type(v) is _np_ndarray and cnp.PyArray_NDIM(<cnp.ndarray>v) == 2 else None


def matmul_op(general):
    """The public matmul (ops.py names it): two matrices of one dtype with matching inner
    dimensions and no flags go to the primitive directly, as `general`'s own fast path would;
    everything else to `general`, which converts, checks and reports."""
    def matmul(a, b, transpose_a=False, transpose_b=False, adjoint_a=False, adjoint_b=False,
               a_is_sparse=False, b_is_sparse=False, output_type=None, name=None):
        if (isinstance(a, Tensor) and isinstance(b, Tensor) and transpose_a is False
                and transpose_b is False and adjoint_a is False and adjoint_b is False
                and output_type is None and (<Tensor>a)._dtype is (<Tensor>b)._dtype):
            va, vb = _matrix_of(<Tensor>a), _matrix_of(<Tensor>b)
            if (va is not None and vb is not None
                    and cnp.PyArray_DIM(<cnp.ndarray>va, 1) == cnp.PyArray_DIM(<cnp.ndarray>vb, 0)):
                return run_op(_P_MATMUL, (a, b), None)
        return general(a, b, transpose_a, transpose_b, adjoint_a, adjoint_b, a_is_sparse,
                       b_is_sparse, output_type, name)
    return matmul


def transpose_op(general):
    """The public transpose (ops.py names it): a matrix with perm None goes to the primitive
    directly (perm (1, 0)); everything else to `general`, which checks the permutation."""
    def transpose(a, perm=None, name=None):
        if perm is None and isinstance(a, Tensor) and _matrix_of(<Tensor>a) is not None:
            return run_op(_P_TRANSPOSE, (a,), {"perm": _SWAP_PERM})
        return general(a, perm, name)
    return transpose


class _NoGradient:
    __slots__ = ()

    def __repr__(self):
        return "dualad.rules.NO_GRADIENT"

    def __reduce__(self):
        return "NO_GRADIENT"  # pickles as the module-level singleton


# A VJP slot that takes no gradient by design (where's condition); None is a missing rule
NO_GRADIENT = _NoGradient()


cdef Primitive _P_ADD, _P_SUB, _P_MUL, _P_DIV, _P_POW, _P_NEG, _P_ABS
cdef Primitive _P_FLOORDIV, _P_FLOORMOD  # the // and % operators
# matmul and transpose with the rules they were declared with: while their vjps are still
# these, a sweep nothing records may keep their outer-product cotangents lazily (_Scaled)
cdef Primitive _P_MATMUL = None, _P_TRANSPOSE = None
# the ops of the direct VJPs of add, reduce_sum and log_softmax (_tape.pxi), and the rules
# they stand for
cdef Primitive _P_REDUCE_SUM = None, _P_RESHAPE = None, _P_BROADCAST_TO = None
cdef Primitive _P_EXP = None, _P_LOG_SOFTMAX = None
cdef tuple _REDUCE_SUM_VJPS = None, _LOG_SOFTMAX_VJPS = None
cdef tuple _MATMUL_VJPS = None, _TRANSPOSE_VJPS = None
# transpose's impl as declared: while it is still this, a sweep may transpose arrays itself
cdef object _TRANSPOSE_IMPL = None
cdef dict _P_CMP = {}
cdef object _unbroadcast_fn = None
cdef object _stack_fn = None
cdef bint _installed = False
# The VJP rules each scalar opcode's primitive was declared with, by opcode: while a
# primitive's vjps are still these, the sweep may run the ops they run without calling them
# (_scalar_vjp_as_ops); a primitive whose rules were replaced gets its rules called.
cdef list _declared_vjps = [None] * 64
# The primitive declaring each scalar opcode (the ops those rules run: sin's runs cos)
cdef list _declared_prims = [None] * 64


def install(dict primitives, dict ops, dict ufuncs, dict array_functions, unbroadcast):
    """Connect the core to the declared primitives (name -> Primitive) and the public ops
    (called once, by dualad/__init__.py). Every scalar kernel must be claimed by exactly one
    primitive: a kernel no declaration names is a forgotten opcode."""
    global _P_ADD, _P_SUB, _P_MUL, _P_DIV, _P_POW, _P_NEG, _P_ABS, _unbroadcast_fn, _stack_fn
    global _installed
    if _installed:
        raise RuntimeError("dualad's core is already installed; install runs once, at import")
    cdef dict claimed = {}
    cdef Primitive p
    for p in primitives.values():
        if p.code == OP_NONE:
            continue
        if p.code in claimed:
            raise ValueError(f"primitives {claimed[p.code]!r} and {p.name!r} declare the same "
                             f"scalar opcode")
        claimed[p.code] = p.name
    unclaimed = sorted(n for n, c in SCALAR_OPCODES.items() if c not in claimed)
    if unclaimed:
        raise ValueError(f"scalar opcodes no primitive declares: {unclaimed}")
    missing = sorted({"add", "subtract", "multiply", "divide", "pow", "negative", "abs", "less",
                      "less_equal", "greater", "greater_equal", "equal", "not_equal"}
                     - primitives.keys())
    missing += sorted({"matmul", "getitem", "reduce_sum", "transpose", "identity",
                       "stack_converted"} - ops.keys())
    if missing:
        raise ValueError(f"install: the core needs {missing}")
    for p in primitives.values():
        if p.code != OP_NONE and p.code < len(_declared_vjps):
            _declared_vjps[p.code] = p.vjps
            _declared_prims[p.code] = p
    _P_ADD = primitives["add"]
    _P_SUB = primitives["subtract"]
    _P_MUL = primitives["multiply"]
    _P_DIV = primitives["divide"]
    _P_POW = primitives["pow"]
    _P_NEG = primitives["negative"]
    _P_ABS = primitives["abs"]
    global _P_FLOORDIV, _P_FLOORMOD
    _P_FLOORDIV = primitives["floordiv"]
    _P_FLOORMOD = primitives["floormod"]
    global _P_MATMUL, _P_TRANSPOSE, _MATMUL_VJPS, _TRANSPOSE_VJPS, _TRANSPOSE_IMPL
    _P_MATMUL = primitives["matmul"]
    _P_TRANSPOSE = primitives["transpose"]
    global _P_REDUCE_SUM, _P_RESHAPE, _P_BROADCAST_TO, _P_EXP, _P_LOG_SOFTMAX
    global _REDUCE_SUM_VJPS, _LOG_SOFTMAX_VJPS
    _P_REDUCE_SUM = primitives["reduce_sum"]
    _P_RESHAPE = primitives["reshape"]
    _P_BROADCAST_TO = primitives["broadcast_to"]
    _P_EXP = primitives["exp"]
    _P_LOG_SOFTMAX = primitives["log_softmax"]
    _REDUCE_SUM_VJPS = _P_REDUCE_SUM.vjps
    _LOG_SOFTMAX_VJPS = _P_LOG_SOFTMAX.vjps
    _MATMUL_VJPS = _P_MATMUL.vjps
    _TRANSPOSE_VJPS = _P_TRANSPOSE.vjps
    _TRANSPOSE_IMPL = _P_TRANSPOSE.impl
    for name in ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal"):
        _P_CMP[name] = primitives[name]
    _ops_fn.update(ops)
    _ufunc_table.update(ufuncs)
    _array_function_table.update(array_functions)
    _unbroadcast_fn = unbroadcast
    _stack_fn = ops["stack_converted"]
    _installed = True
