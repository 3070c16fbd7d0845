# Variable: the mutable, trainable tensor.
# (included by _core.pyx: one extension module, assembled from these files)

# --------------------------------------------------------------------------------------------
# Variable
# --------------------------------------------------------------------------------------------

class _Signature:
    """A class's __signature__ for inspect.signature, which a Cython class cannot otherwise
    give: the signature on the class itself, none (inspect's own lookup) on subclasses, which
    have their own __init__."""

    def __init__(self, owner_name, f):
        import inspect
        self.owner_name = owner_name
        self.signature = inspect.signature(f)

    def __get__(self, obj, objtype=None):
        if obj is None and objtype is not None and objtype.__name__ == self.owner_name \
                and objtype.__module__ == __name__:
            return self.signature
        return None


def _refuse_keywords(str call, dict unexpected, tuple known):
    import difflib
    bad = next(iter(unexpected))
    close = difflib.get_close_matches(bad, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; it takes {', '.join(known)}"
    raise TypeError(f"{call}() got an unexpected keyword argument {bad!r}{hint}")


cdef class Variable(Tensor):
    """A mutable tensor. Tapes watch trainable Variables automatically when they are read."""

    # what inspect.signature (and so help() and editors) show for Variable(...)
    __signature__ = _Signature("Variable",
                               lambda initial_value, dtype=None, trainable=True, name=None: None)

    def __init__(self, initial_value, dtype=None, trainable=True, name=None, **unexpected):
        if unexpected:
            # Cython's own message would name "__init__()", not the public call
            _refuse_keywords("Variable", unexpected,
                             ("initial_value", "dtype", "trainable", "name"))
        if self._dtype is not None:
            # a new shape or dtype under tapes, compiled programs and optimizers that hold it
            raise RuntimeError(f"Variable '{self.name}' is already initialized; use assign")
        if _n_tracing:
            _trace_impure("it creates a Variable")
        cdef Tensor t = convert_to_tensor(initial_value, dtype) if not isinstance(initial_value, Tensor) \
            else _cast_value(<Tensor>initial_value, _normalize_dtype(dtype))
        self._set_from(t)
        self._is_var = True
        self.trainable = bool(trainable)
        self.name = "Variable" if name is None else str(name)

    cdef void _set_from(self, Tensor t):
        self._arr = t._arr
        self._d = t._d
        self._is_scalar = t._is_scalar
        self._kind = t._kind
        self._dtype = t._dtype

    cdef Tensor _read_snapshot(self):
        # _snapshot for an op's read outside a trace. A float scalar Variable without extra
        # tape slots or tangents keeps its last read's snapshot: the next read shares it while
        # it holds exactly what a new snapshot would (the same bits, array, slot; nothing
        # added to it since), and refills it when the Variable held the only reference to it
        # (no record, op or caller can see the change: it is a new snapshot in an old box).
        cdef Tensor s = self._last_read
        cdef object dropped
        if not self._is_scalar or self._more_slots or self._tangents:
            return self._snapshot()
        if s is not None and s._more_slots is None and s._tangents is None and s._tan_acc == 0:
            if (s._tape_id == self._tape_id and s._slot == self._slot
                    and s._tape_id2 == self._tape_id2 and s._slot2 == self._slot2
                    and s._arr is self._arr
                    and _same_bits(s._d, self._d) and s._dtype is self._dtype
                    and s._kind == self._kind and s._is_scalar):
                return s
            if Py_REFCNT(s) == 2:   # self._last_read and s
                dropped = s._arr    # released after s is filled (its release may run code)
                s._arr = self._arr
                s._d = self._d
                s._is_scalar = True
                s._kind = self._kind
                s._dtype = self._dtype
                s._tape_id = self._tape_id
                s._slot = self._slot
                s._tape_id2 = self._tape_id2
                s._slot2 = self._slot2
                return s
        s = self._snapshot()
        self._last_read = s
        return s

    cdef Tensor _snapshot(self):
        # The value read by an op: it keeps this read's value even if the Variable is
        # assigned later, and carries the Variable's tape slots and tangents.
        cdef Tensor s = Tensor.__new__(Tensor)
        s._arr = self._arr
        s._d = self._d
        s._is_scalar = self._is_scalar
        s._kind = self._kind
        s._dtype = self._dtype
        s._tape_id = self._tape_id
        s._slot = self._slot
        s._tape_id2 = self._tape_id2
        s._slot2 = self._slot2
        if self._more_slots:
            s._more_slots = dict(self._more_slots)
        if self._tangents:
            s._tangents = dict(self._tangents)
        return s

    def read_value(self):
        """The current value as an (immutable) Tensor, recorded as a read of this Variable."""
        return _ops_fn["identity"](self)

    def value(self):
        return self.read_value()

    def assign(self, value, read_value=True):
        cdef Tensor t = self._checked(value, "assign")
        if _n_tracing:
            _trace_assign(self, t, ASSIGN_SET)
        self._set_from(t)
        return self if read_value else None

    def assign_add(self, delta, read_value=True):
        cdef Tensor t = self._checked(delta, "assign_add")
        if _n_tracing:
            _trace_assign(self, t, ASSIGN_ADD)
        self._set_from(raw_arith(self, t, 1))
        return self if read_value else None

    def assign_sub(self, delta, read_value=True):
        cdef Tensor t = self._checked(delta, "assign_sub")
        if _n_tracing:
            _trace_assign(self, t, ASSIGN_SUB)
        self._set_from(raw_arith(self, t, -1))
        return self if read_value else None

    cdef Tensor _checked(self, object value, str what):
        cdef Tensor t
        if isinstance(value, Tensor):
            t = value
        else:
            t = _like(value, self, f"Variable.{what}")
        if t.shape != self.shape:
            raise ValueError(f"Variable.{what}: shape {t.shape} does not match the shape "
                             f"{self.shape} of Variable '{self.name}'")
        if t._dtype != self._dtype:
            raise TypeError(f"Variable.{what}: dtype {t._dtype.name} does not match the dtype "
                            f"{self._dtype.name} of Variable '{self.name}'")
        return t

    def __repr__(self):
        if self._dtype is None:
            return f"<dualad.{type(self).__name__} (uninitialized)>"
        return (f"<dualad.Variable '{self.name}:0' shape={self.shape} dtype={self._dtype.name} "
                f"numpy={_numpy_repr(self)}>")

    def __reduce__(self):
        state = getattr(self, "__dict__", None)     # a Python subclass's attributes
        return (_variable_from_pickle, (type(self), self._value(), self.trainable, self.name),
                state or None)

    def __copy__(self):
        return self                     # a Variable is a shared, mutable object (as in TensorFlow)

    def __deepcopy__(self, memo):
        # a new Variable with a copy of the value; its other attributes deep-copied with memo
        cls, args, state = self.__reduce__()
        copied = cls(*args)
        memo[id(self)] = copied
        if state:
            import copy
            copied.__dict__.update(copy.deepcopy(state, memo))
        return copied

    def __str__(self):
        return self.__repr__()


def state_variable(initial_value, str name):
    """A non-trainable Variable holding internal state (an optimizer's slots and step count).
    Unlike a user's Variable it may be created while dualad.function traces: it is made once,
    on the first trace, and the program reads and assigns it like any other Variable."""
    cdef Variable v = Variable.__new__(Variable)
    v._set_from(initial_value if isinstance(initial_value, Tensor)
                else convert_to_tensor(initial_value))
    v._is_var = True
    v.trainable = False
    v.name = name
    return v


cdef inline bint _same_bits(double a, double b) noexcept:
    # a == b is true of 0.0 and -0.0 and false of NaNs: compare the representations
    return memcmp(&a, &b, sizeof(double)) == 0


cdef Tensor raw_arith(Tensor a, Tensor b, int sign):
    """a + sign * b outside any tape, the update used by assign_add/assign_sub."""
    if a._is_scalar and b._is_scalar:
        return new_scalar(a._d + sign * b._d, a._kind)
    if sign > 0:
        return _wrap(np.add(a._value(), b._value()))
    return _wrap(np.subtract(a._value(), b._value()))


cdef Tensor _cast_value(Tensor t, object dtype):
    if dtype is None or t._dtype == dtype:
        return t
    return _wrap(t._value().astype(dtype))


# --------------------------------------------------------------------------------------------
# dualad.optimizers: a step on scalar Variables, computed and committed in C
# --------------------------------------------------------------------------------------------
# The built-in optimizers' update rules (dualad/optimizers.py) on C doubles, each operation the
# core's scalar kernel rounded to the variable's dtype, in the order the rules' dualad ops run
# eagerly: the results are the bits of the general path (tests/test_optimizer_scalar_path.py).
# The commit writes every Variable in one C loop that runs no Python code, so no exception can
# arrive between two of its assignments: a step is applied completely or not at all.

from cpython.float cimport PyFloat_CheckExact, PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_FromLongLong
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cpython.dict cimport PyDict_GetItemWithError
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.tuple cimport PyTuple_CheckExact, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.ref cimport Py_XDECREF, Py_REFCNT, Py_TYPE
from libc.stdlib cimport qsort
from libc.string cimport memcpy, memcmp

cdef enum:
    _RULE_SGD = 0
    _RULE_ADAM = 1
    _RULE_RMSPROP = 2
    _RULE_ADAGRAD = 3
    _OPT_MAX_SLOTS = 3          # slots one variable can have (Adam with amsgrad, RMSprop)
    _OPT_REFS = 2 + _OPT_MAX_SLOTS   # per variable: the Variable, its gradient, its slots
    _OPT_STACK_PAIRS = 8        # steps on up to this many variables need no allocation


# the rule codes StepGuard.scalar_step takes, as the optimizers' `_scalar_rule`
OPTIMIZER_RULES = {"SGD": _RULE_SGD, "Adam": _RULE_ADAM, "RMSprop": _RULE_RMSPROP,
                   "Adagrad": _RULE_ADAGRAD}


cdef inline double _opt(int code, double a, double b, bint f32) noexcept nogil:
    # one op as run_op computes it on scalars: the kernel, rounded to the dtype by new_scalar
    return _round(_scalar_value(code, a, b), f32)


# the slot names, as the keys of the optimizers' slot dicts
cdef str _SLOT_MOMENTUM = "momentum"
cdef str _SLOT_VELOCITY = "velocity"
cdef str _SLOT_VELOCITY_HAT = "velocity_hat"
cdef str _SLOT_AVERAGE_GRADIENT = "average_gradient"
cdef str _SLOT_ACCUMULATOR = "accumulator"


cdef int _opt_slot_names(int rule, const double* h, bint flag, PyObject** names) noexcept:
    """The slots the rule reads and rewrites, in the order _opt_update keeps them in s; as
    get_slot_names() of the optimizer. Returns their number."""
    cdef int n = 0
    if rule == _RULE_SGD:
        if h[0] != 0:
            names[0] = <PyObject*>_SLOT_MOMENTUM
            n = 1
    elif rule == _RULE_ADAM:
        names[0] = <PyObject*>_SLOT_MOMENTUM
        names[1] = <PyObject*>_SLOT_VELOCITY
        n = 2
        if flag:
            names[2] = <PyObject*>_SLOT_VELOCITY_HAT
            n = 3
    elif rule == _RULE_RMSPROP:
        names[0] = <PyObject*>_SLOT_VELOCITY
        n = 1
        if h[1] > 0:
            names[n] = <PyObject*>_SLOT_MOMENTUM
            n += 1
        if flag:
            names[n] = <PyObject*>_SLOT_AVERAGE_GRADIENT
            n += 1
    else:
        names[0] = <PyObject*>_SLOT_ACCUMULATOR
        n = 1
    return n


cdef double _opt_update(int rule, const double* h, bint flag, bint f32, double lr, double t,
                        double w, double g, double* s) noexcept nogil:
    """The new value of variable w for gradient g at step t; rewrites its slots s (in the
    order of _opt_slot_names). h and flag: the rule's hyperparameters (see the callers)."""
    cdef double mu, m, v, a, alpha, denominator, increment
    cdef int k
    lr = _round(lr, f32)
    if rule == _RULE_SGD:  # h: momentum; flag: nesterov
        if h[0] == 0:
            return _opt(OP_SUB, w, _opt(OP_MUL, g, lr, f32), f32)
        mu = _round(h[0], f32)
        m = _opt(OP_SUB, _opt(OP_MUL, s[0], mu, f32), _opt(OP_MUL, g, lr, f32), f32)
        s[0] = m
        if flag:
            return _opt(OP_ADD, w, _opt(OP_SUB, _opt(OP_MUL, m, mu, f32),
                                        _opt(OP_MUL, g, lr, f32), f32), f32)
        return _opt(OP_ADD, w, m, f32)
    if rule == _RULE_ADAM:  # h: beta_1, beta_2, epsilon; flag: amsgrad
        t = _round(t, f32)
        alpha = _opt(OP_DIV,
                     _opt(OP_MUL, lr, _opt(OP_SQRT, _opt(OP_SUB, 1.0, _opt(
                         OP_POW, _round(h[1], f32), t, f32), f32), 0.0, f32), f32),
                     _opt(OP_SUB, 1.0, _opt(OP_POW, _round(h[0], f32), t, f32), f32), f32)
        m = _opt(OP_ADD, s[0], _opt(OP_MUL, _opt(OP_SUB, g, s[0], f32),
                                    _round(1.0 - h[0], f32), f32), f32)
        v = _opt(OP_ADD, s[1], _opt(OP_MUL, _opt(OP_SUB, _opt(OP_MUL, g, g, f32), s[1], f32),
                                    _round(1.0 - h[1], f32), f32), f32)
        s[0] = m
        s[1] = v
        if flag:
            v = _opt(OP_MAXIMUM, s[2], v, f32)
            s[2] = v
        return _opt(OP_SUB, w, _opt(OP_DIV, _opt(OP_MUL, m, alpha, f32),
                                    _opt(OP_ADD, _opt(OP_SQRT, v, 0.0, f32), _round(h[2], f32),
                                         f32), f32), f32)
    if rule == _RULE_RMSPROP:  # h: rho, momentum, epsilon; flag: centered
        mu = _round(h[0], f32)  # rho
        a = _round(1.0 - h[0], f32)  # 1 - rho
        v = _opt(OP_ADD, _opt(OP_MUL, mu, s[0], f32),
                 _opt(OP_MUL, a, _opt(OP_MUL, g, g, f32), f32), f32)
        s[0] = v
        if flag:
            k = 2 if h[1] > 0 else 1  # average_gradient's place
            a = _opt(OP_ADD, _opt(OP_MUL, mu, s[k], f32), _opt(OP_MUL, a, g, f32), f32)
            s[k] = a
            denominator = _opt(OP_ADD, _opt(OP_SUB, v, _opt(OP_MUL, a, a, f32), f32),
                               _round(h[2], f32), f32)
        else:
            denominator = _opt(OP_ADD, v, _round(h[2], f32), f32)
        increment = _opt(OP_DIV, _opt(OP_MUL, lr, g, f32),
                         _opt(OP_SQRT, denominator, 0.0, f32), f32)
        if h[1] > 0:
            mu = _opt(OP_ADD, _opt(OP_MUL, _round(h[1], f32), s[1], f32), increment, f32)
            s[1] = mu
            return _opt(OP_SUB, w, mu, f32)
        return _opt(OP_SUB, w, increment, f32)
    # Adagrad; h: epsilon
    s[0] = _opt(OP_ADD, s[0], _opt(OP_MUL, g, g, f32), f32)
    return _opt(OP_SUB, w, _opt(OP_DIV, _opt(OP_MUL, lr, g, f32), _opt(
        OP_SQRT, _opt(OP_ADD, s[0], _round(h[0], f32), f32), 0.0, f32), f32), f32)


cdef inline bint _opt_scalar(object x, int kind):
    # a Variable of the core's C scalars (of `kind`, unless -1): exactly Variable, so that its
    # hash is its identity and no Python override runs
    return (type(x) is Variable and (<Tensor>x)._is_scalar and (<Tensor>x)._kind != K_OTHER
            and (kind < 0 or (<Tensor>x)._kind == kind))


cdef int _opt_collect(list pairs, dict tracked, PyObject** names, int n_slots,
                      PyObject** refs, Py_ssize_t* n_refs) except -1:
    """Strong references to each pair's Variable, gradient and slot Variables, in refs (_OPT_REFS
    per pair; n_refs counts them for the release). Returns 1, or 0 if the step needs the general
    path: an entry not a (gradient, Variable) tuple, a Variable not a float32/float64 scalar or
    not yet tracked (its first step makes its slots), a slot missing (the configuration
    changed), a gradient not a Python float or scalar Tensor, the same Variable twice. A slot
    lookup may run Python code (a key of a state restored by set_state): everything is held.
    names, n_slots: the rule's slots (_opt_slot_names)."""
    cdef Py_ssize_t i, k, n = PyList_GET_SIZE(pairs)
    cdef PyObject* found
    cdef object item, grad, var, slot_dict, slot
    for i in range(n):
        if i >= PyList_GET_SIZE(pairs):  # shrunk by Python code run by a lookup
            return 0
        item = <object>PyList_GET_ITEM(pairs, i)
        if not PyTuple_CheckExact(item) or PyTuple_GET_SIZE(item) != 2:
            return 0
        grad = <object>PyTuple_GET_ITEM(item, 0)
        var = <object>PyTuple_GET_ITEM(item, 1)
        if not _opt_scalar(var, -1):
            return 0
        if not (PyFloat_CheckExact(grad) or ((type(grad) is Tensor or type(grad) is Variable)
                                             and (<Tensor>grad)._is_scalar
                                             and (<Tensor>grad)._kind != K_OTHER)):
            return 0
        Py_INCREF(var)
        refs[i * _OPT_REFS] = <PyObject*>var
        Py_INCREF(grad)
        refs[i * _OPT_REFS + 1] = <PyObject*>grad
        n_refs[0] = i + 1
        for k in range(n_slots):  # (NULL until found: released by the caller)
            refs[i * _OPT_REFS + 2 + k] = NULL
        found = PyDict_GetItemWithError(tracked, var)
        if found == NULL:
            return 0
        slot_dict = <object>found
        if type(slot_dict) is not dict:
            return 0
        for k in range(n_slots):
            found = PyDict_GetItemWithError(slot_dict, <object>names[k])
            if found == NULL:
                return 0
            slot = <object>found
            if not _opt_scalar(slot, (<Tensor>var)._kind):
                return 0
            Py_INCREF(slot)
            refs[i * _OPT_REFS + 2 + k] = found
    return 1


cdef int _opt_compare_pointers(const void* a, const void* b) noexcept nogil:
    cdef size_t x = <size_t>(<PyObject**>a)[0], y = <size_t>(<PyObject**>b)[0]
    return (x > y) - (x < y)


cdef bint _opt_distinct(PyObject** refs, Py_ssize_t n) except -1:
    """Whether the Variables of refs (every _OPT_REFS-th entry) are n different objects."""
    cdef Py_ssize_t i, j
    cdef PyObject** sorted_vars
    cdef bint distinct = True
    if n <= 16:
        for i in range(1, n):
            for j in range(i):
                if refs[i * _OPT_REFS] == refs[j * _OPT_REFS]:
                    return False
        return True
    sorted_vars = <PyObject**>PyMem_Malloc(n * sizeof(PyObject*))
    if sorted_vars == NULL:
        raise MemoryError()
    for i in range(n):
        sorted_vars[i] = refs[i * _OPT_REFS]
    qsort(sorted_vars, n, sizeof(PyObject*), _opt_compare_pointers)
    for i in range(1, n):
        if sorted_vars[i] == sorted_vars[i - 1]:
            distinct = False
            break
    PyMem_Free(sorted_vars)
    return distinct


cdef inline void _opt_assign(Variable v, double value, PyObject** old) noexcept:
    # v._set_from(new_scalar(value)) without running Python code: the array v may have cached
    # moves to *old (a new reference), released once every assignment is done
    old[0] = <PyObject*>v._arr
    Py_INCREF(v._arr)
    v._arr = None  # (its reference in *old keeps it alive)
    v._d = value


cdef object _opt_step(int rule, list pairs, dict tracked, Variable steps, double lr,
                      const double* h, bint flag):
    """One step of the rule on the scalar Variables of `pairs`, or None if it needs the general
    path (nothing changed then). Returns the new step count."""
    cdef Py_ssize_t n = PyList_GET_SIZE(pairs), n_refs = 0, n_old = 0, i, k, at
    cdef PyObject* stack_refs[_OPT_STACK_PAIRS * _OPT_REFS]
    cdef PyObject* stack_old[_OPT_STACK_PAIRS * _OPT_REFS + 1]
    cdef double stack_values[_OPT_STACK_PAIRS * _OPT_REFS]
    cdef PyObject** refs = stack_refs
    cdef PyObject** old = stack_old  # the arrays the assigned Variables had cached
    cdef double* values = stack_values
    cdef PyObject* names[_OPT_MAX_SLOTS]
    cdef int n_slots = _opt_slot_names(rule, h, flag, names)
    cdef Variable var
    cdef double t, g
    cdef bint f32
    if n == 0 or _check_numerics or (_n_tracing and _state().tracer is not None):
        return None  # no-op, NaN checks, or recorded into a program: the general path
    t = steps._d + 1.0  # the number of this step
    if not (steps._is_scalar and steps._kind == K_F64 and 1.0 <= t < 9007199254740992.0):
        return None
    if n > _OPT_STACK_PAIRS:
        refs = <PyObject**>PyMem_Malloc(n * _OPT_REFS * sizeof(PyObject*))
        old = <PyObject**>PyMem_Malloc((n * _OPT_REFS + 1) * sizeof(PyObject*))
        values = <double*>PyMem_Malloc(n * _OPT_REFS * sizeof(double))
        if refs == NULL or old == NULL or values == NULL:
            PyMem_Free(refs)
            PyMem_Free(old)
            PyMem_Free(values)
            raise MemoryError()
    try:
        if not _opt_collect(pairs, tracked, names, n_slots, refs, &n_refs):
            return None
        if not _opt_distinct(refs, n):
            return None  # the same Variable twice: the general path names it
        # From here to the return no Python code runs: read, compute, then assign everything.
        for i in range(n):
            at = i * _OPT_REFS
            var = <Variable>refs[at]
            f32 = var._kind == K_F32
            if PyFloat_CheckExact(<object>refs[at + 1]):  # a float converts to float32 first
                g = <double>(<float>PyFloat_AS_DOUBLE(<object>refs[at + 1]))
            else:  # a Tensor of the other float dtype is cast to the variable's
                g = _round((<Tensor>refs[at + 1])._d, f32)
            for k in range(n_slots):
                values[at + 2 + k] = (<Tensor>refs[at + 2 + k])._d
            values[at] = _opt_update(rule, h, flag, f32, lr, t, var._d, g, &values[at + 2])
        for i in range(n):
            at = i * _OPT_REFS
            _opt_assign(<Variable>refs[at], values[at], &old[n_old])
            n_old += 1
            for k in range(n_slots):
                _opt_assign(<Variable>refs[at + 2 + k], values[at + 2 + k], &old[n_old])
                n_old += 1
        _opt_assign(steps, steps._d + 1.0, &old[n_old])  # after the variables, as assign_add
        n_old += 1
        return PyLong_FromLongLong(<long long>t)  # (t < 2**53: exact)
    finally:
        for i in range(n_refs):
            for k in range(2 + n_slots):
                Py_XDECREF(refs[i * _OPT_REFS + k])
        for i in range(n_old):
            Py_XDECREF(old[i])
        if refs != stack_refs:
            PyMem_Free(refs)
            PyMem_Free(old)
            PyMem_Free(values)


# --------------------------------------------------------------------------------------------
# dualad.optimizers: committing a step on array Variables in place
# --------------------------------------------------------------------------------------------
# The optimizer computes each new value (of a Variable or of a slot Variable) into a buffer it
# owns; commit_in_place then writes them all in one C loop that runs no Python code and never
# releases the GIL, so no other thread sees a half-written array and no exception arrives
# between two writes. A Variable's array is overwritten only when the Variable is provably its
# one user: the array's only reference is the Variable's (no snapshot recorded by an op or a
# tape, no Tensor, numpy view, memoryview or other Variable holds it), it owns its memory (it
# is no view of another array) and it is a plain C-contiguous ndarray of the buffer's dtype and
# shape. Otherwise the Variable adopts the buffer (made read-only, and taken from the
# optimizer's list, which then makes a new one): copy-on-write.
# A target may also leave SGD's step w - lr·g to the commit (it cannot fail): computed straight
# into the Variable's array where it is the sole owner, one pass and no copy, else into the
# buffer, which the Variable adopts.

cdef inline bint _buffer_matches(cnp.ndarray buf, cnp.ndarray arr) noexcept:
    # `buf` holds a value of `arr`'s dtype and shape, as a C-contiguous array (arr's own
    # layout is _sole_owner's concern)
    cdef int i
    if cnp.PyArray_NDIM(buf) != cnp.PyArray_NDIM(arr):
        return False
    for i in range(cnp.PyArray_NDIM(arr)):
        if cnp.PyArray_DIMS(buf)[i] != cnp.PyArray_DIMS(arr)[i]:
            return False
    return (cnp.PyArray_EquivTypes(<cnp.dtype>cnp.PyArray_DESCR(buf),
                                   <cnp.dtype>cnp.PyArray_DESCR(arr))
            and cnp.PyArray_CHKFLAGS(buf, cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED))


cdef inline bint _sole_owner(Variable v) noexcept:
    # Whether v's array may be overwritten with a buffer's bytes: referenced by v alone, owning
    # its memory, a plain C-contiguous ndarray (dtype and shape: checked by _check_target)
    cdef object arr = v._arr  # (a second reference, besides v's)
    return (Py_REFCNT(arr) == 2 and type(arr) is _np_ndarray
            and cnp.PyArray_CHKFLAGS(<cnp.ndarray>arr, cnp.NPY_ARRAY_OWNDATA
                                     | cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED)
            and cnp.PyArray_BASE(<cnp.ndarray>arr) == NULL)


cdef object _check_target(object target):
    """The buffer of one commit_in_place target, a (Variable, buffer list, index) tuple, a
    (Variable, buffer list, index, gradient, learning rate) one or a (Variable, buffer list,
    index, gradient, fused rule, slot Variables) one, checked, or raise."""
    if not (PyTuple_CheckExact(target) and 3 <= PyTuple_GET_SIZE(target) <= 6
            and PyTuple_GET_SIZE(target) != 4):
        raise TypeError("commit_in_place: each target is a (Variable, list, index) tuple")
    var, buffers, index = (<tuple>target)[:3]
    if type(var) is not Variable or type(buffers) is not list or type(index) is not int:
        raise TypeError("commit_in_place: each target is a (Variable, list, index) tuple")
    if not 0 <= index < PyList_GET_SIZE(buffers):
        raise IndexError(f"commit_in_place: index {index} out of range")
    cdef str name = (<Variable>var).name
    if (<Variable>var)._is_scalar:  # its value is the C double, not the array
        raise TypeError(f"commit_in_place: Variable '{name}' is a scalar")
    # the list's reference is the only one (besides this check's): the Variable may adopt
    # the buffer as its immutable value, so nothing else may go on writing it
    if Py_REFCNT(<object>PyList_GET_ITEM(buffers, index)) != 1:
        raise ValueError(f"commit_in_place: the buffer for Variable '{name}' is referenced "
                         "elsewhere")
    buf = <object>PyList_GET_ITEM(buffers, index)
    arr = (<Variable>var)._arr
    if type(buf) is not _np_ndarray or type(arr) is not _np_ndarray or buf is arr:
        raise TypeError(f"commit_in_place: no buffer for Variable '{name}'")
    if not (_buffer_matches(<cnp.ndarray>buf, <cnp.ndarray>arr)
            and cnp.PyArray_CHKFLAGS(<cnp.ndarray>buf, cnp.NPY_ARRAY_OWNDATA
                                     | cnp.NPY_ARRAY_WRITEABLE)
            and cnp.PyArray_BASE(<cnp.ndarray>buf) == NULL):
        raise ValueError(f"commit_in_place: the buffer for Variable '{name}' is not a "
                         "C-contiguous array of its dtype and shape")
    if PyTuple_GET_SIZE(target) == 5:
        _check_descent(<tuple>target, <cnp.ndarray>arr, name)
    elif PyTuple_GET_SIZE(target) == 6:
        _check_fused(<tuple>target, <cnp.ndarray>arr, name)
    return buf


cdef _check_descent(tuple target, cnp.ndarray arr, str name):
    # a (.., gradient, learning rate) target: a gradient array of the variable's float dtype
    # and shape, C-contiguous, sharing no memory with its array (or being it), a C-contiguous
    # value, and a learning rate that is a numpy scalar of that dtype
    g, lr = target[3], target[4]
    cdef int t = cnp.PyArray_TYPE(arr)
    if not ((t == cnp.NPY_FLOAT and type(lr) is np.float32)
            or (t == cnp.NPY_DOUBLE and type(lr) is np.float64)):
        raise TypeError(f"commit_in_place: the step of Variable '{name}' needs a float32 or "
                        "float64 Variable and a learning rate of its dtype")
    _check_step_gradient(g, arr, name)


cdef _check_step_gradient(object g, cnp.ndarray arr, str name):
    # the gradient of a step computed by the commit: an array of the variable's float dtype
    # and shape, C-contiguous, sharing no memory with its array (or being it), and the
    # variable's value C-contiguous
    if not (type(g) is _np_ndarray and _buffer_matches(<cnp.ndarray>g, arr)):
        raise ValueError(f"commit_in_place: the gradient for Variable '{name}' is not a "
                         "C-contiguous array of its dtype and shape")
    if not cnp.PyArray_ISCARRAY_RO(arr):  # (the step reads w as one contiguous run)
        raise ValueError(f"commit_in_place: the step of Variable '{name}' needs its value "
                         "C-contiguous")
    if not _apart_or_same(arr, <cnp.ndarray>g):
        raise ValueError(f"commit_in_place: the gradient for Variable '{name}' overlaps its "
                         "array")


cdef inline bint _apart_or_same(cnp.ndarray x, cnp.ndarray y) noexcept:
    # two arrays of one size: the same memory, or no shared byte
    cdef char* a = <char*>cnp.PyArray_DATA(x)
    cdef char* b = <char*>cnp.PyArray_DATA(y)
    cdef Py_ssize_t nbytes = cnp.PyArray_NBYTES(x)
    return a == b or a + nbytes <= b or b + nbytes <= a


cdef _check_fused(tuple target, cnp.ndarray arr, str name):
    # a (.., gradient, (rule, parameters...), slot Variables) target: a float32 or float64
    # Variable, a gradient as _check_step_gradient takes it, a known rule with its float
    # parameters, and its slot Variables: arrays of the variable's dtype and shape,
    # C-contiguous, each with a buffer after the variable's in the list
    g, rule, slots = target[3], target[4], target[5]
    buffers, index = target[1], target[2]
    cdef int t = cnp.PyArray_TYPE(arr)
    if t != cnp.NPY_FLOAT and t != cnp.NPY_DOUBLE:
        raise TypeError(f"commit_in_place: the step of Variable '{name}' needs a float32 or "
                        "float64 Variable")
    _check_step_gradient(g, arr, name)
    if not (type(rule) is tuple and 2 <= len(rule) <= 1 + DUALAD_FUSED_MAX_PARAMS
            and type(rule[0]) is int and DUALAD_FUSED_SGD_MOMENTUM <= rule[0] < DUALAD_FUSED_RULES_END
            and all(type(p) is float for p in rule[1:])):
        raise TypeError(f"commit_in_place: the rule of Variable '{name}' is not a (rule code, "
                        "float parameters...) tuple")
    if not (type(slots) is tuple and len(slots) == _fused_slot_count(rule[0])):
        raise TypeError(f"commit_in_place: the rule of Variable '{name}' needs a tuple of "
                        f"{_fused_slot_count(rule[0])} slot Variables")
    if index + len(slots) >= PyList_GET_SIZE(buffers):
        raise IndexError(f"commit_in_place: no buffers for the slots of Variable '{name}'")
    for k, slot in enumerate(slots):
        if slot is target[0] or any(slot is other for other in slots[:k]):
            raise ValueError(f"commit_in_place: the slots of Variable '{name}' are not "
                             "distinct Variables")
        if type(slot) is not Variable or (<Variable>slot)._is_scalar:
            raise TypeError(f"commit_in_place: a slot of Variable '{name}' is not an array "
                            "Variable")
        slot_arr = (<Variable>slot)._arr
        if not (type(slot_arr) is _np_ndarray and _buffer_matches(<cnp.ndarray>slot_arr, arr)):
            raise ValueError(f"commit_in_place: a slot of Variable '{name}' is not a "
                             "C-contiguous array of its dtype and shape")
        if not _apart_or_same(<cnp.ndarray>slot_arr, <cnp.ndarray>g):
            raise ValueError(f"commit_in_place: the gradient for Variable '{name}' overlaps "
                             "a slot's array")
        _check_target((slot, buffers, index + 1 + k))  # its buffer


def commit_in_place(list targets, Variable steps):
    """Write each (Variable, buffers, index) target's new value, buffers[index], into the
    Variable's array if the Variable is that array's sole owner (see above), else make the
    Variable adopt the buffer (buffers[index] becomes None); then add 1 to `steps`, a float64
    scalar Variable. A (Variable, buffers, index, g, lr) target's new value is w - g * lr
    (w: the Variable's value), computed here: in place for a sole owner, else into
    buffers[index], adopted as above. Every target is checked before anything is written
    (TypeError, ValueError or IndexError, nothing changed); the writes run no Python code.
    Returns how many targets were written in place."""
    cdef Py_ssize_t i, index, n = PyList_GET_SIZE(targets), in_place = 0
    cdef Variable var
    cdef list buffers
    cdef tuple target
    cdef cnp.ndarray buf, g = None
    cdef double lr = 0.0
    cdef bint descent
    if not (steps._is_scalar and steps._kind == K_F64):
        raise TypeError("commit_in_place: the step count must be a float64 scalar Variable")
    cdef set seen = set()
    cdef Py_ssize_t n_slots = 0, k
    for i in range(n):
        target = <tuple>PyList_GET_ITEM(targets, i)
        buffer_ids = [id(_check_target(target))]
        if PyTuple_GET_SIZE(target) == 6:  # and its slots' buffers
            for k in range(len(target[5])):
                buffer_ids.append(id(target[1][target[2] + 1 + k]))
            n_slots += len(target[5])
        for buffer_id in buffer_ids:
            if buffer_id in seen:  # (adopted by the first, it would be gone for the second)
                raise ValueError("commit_in_place: two targets name the same buffer")
            seen.add(buffer_id)
    # the arrays the Variables drop, released once everything is written (allocated first)
    cdef list released = [None] * (n + n_slots + 1)
    # the learning rates of the descent targets, as C doubles (exact for float32 rates)
    cdef list rates = [None] * n
    for i in range(n):
        target = <tuple>PyList_GET_ITEM(targets, i)
        if PyTuple_GET_SIZE(target) == 5:
            rates[i] = float(<object>PyTuple_GET_ITEM(target, 4))
    cdef double p[DUALAD_FUSED_MAX_PARAMS]
    cdef void* slots_out[DUALAD_FUSED_MAX_SLOTS]
    cdef const void* slots_in[DUALAD_FUSED_MAX_SLOTS]
    cdef Py_ssize_t n_released = n
    # From here to the return no Python code runs and nothing fails: the checks still hold.
    for i in range(n):
        target = <tuple>PyList_GET_ITEM(targets, i)
        var = <Variable>PyTuple_GET_ITEM(target, 0)
        buffers = <list>PyTuple_GET_ITEM(target, 1)
        index = <object>PyTuple_GET_ITEM(target, 2)
        buf = <cnp.ndarray>PyList_GET_ITEM(buffers, index)
        if PyTuple_GET_SIZE(target) == 6:
            in_place += _commit_fused(target, var, buffers, index, released, &n_released,
                                      p, slots_out, slots_in)
            continue
        descent = PyTuple_GET_SIZE(target) == 5
        if descent:
            g = <cnp.ndarray>PyTuple_GET_ITEM(target, 3)
            lr = PyFloat_AS_DOUBLE(<object>PyList_GET_ITEM(rates, i))
        if _sole_owner(var):
            if descent:
                _descent_step(<cnp.ndarray>var._arr, <cnp.ndarray>var._arr, g, lr)
            else:
                memcpy(cnp.PyArray_DATA(<cnp.ndarray>var._arr), cnp.PyArray_DATA(buf),
                       cnp.PyArray_NBYTES(buf))
            in_place += 1
        else:
            if descent:  # (the buffer shares no memory with w or g: no one else holds it)
                _descent_step(buf, <cnp.ndarray>var._arr, g, lr)
            _freeze(buf)
            released[i] = var._arr
            var._arr = buf
            buffers[index] = None  # (the Variable's reference keeps it)
    released[n_released] = steps._arr  # after the variables, as assign_add
    steps._arr = None
    steps._d = steps._d + 1.0
    return in_place


cdef Py_ssize_t _commit_fused(tuple target, Variable var, list buffers, Py_ssize_t index,
                              list released, Py_ssize_t* n_released, double* p,
                              void** slots_out, const void** slots_in) except -1:
    # commit_in_place's write of a checked fused target (nothing here fails): the rule's pass
    # writes the value and each slot into its Variable's own array where the Variable is its
    # sole owner, else into its buffer, which the Variable then adopts. Returns how many were
    # written in place.
    cdef tuple rule = <tuple>PyTuple_GET_ITEM(target, 4)
    cdef tuple slot_vars = <tuple>PyTuple_GET_ITEM(target, 5)
    cdef Py_ssize_t k, n_slots = PyTuple_GET_SIZE(slot_vars), in_place = 0
    cdef int code = <object>PyTuple_GET_ITEM(rule, 0)
    cdef bint sole[1 + DUALAD_FUSED_MAX_SLOTS]
    cdef Variable holder
    cdef cnp.ndarray buf
    # (first, before this function holds any of the arrays: _sole_owner counts references)
    sole[0] = _sole_owner(var)
    for k in range(n_slots):
        sole[1 + k] = _sole_owner(<Variable>PyTuple_GET_ITEM(slot_vars, k))
    for k in range(DUALAD_FUSED_MAX_PARAMS):
        p[k] = (PyFloat_AS_DOUBLE(<object>PyTuple_GET_ITEM(rule, k + 1))
                if k + 1 < PyTuple_GET_SIZE(rule) else 0.0)
    for k in range(DUALAD_FUSED_MAX_SLOTS):
        slots_out[k] = NULL
        slots_in[k] = NULL
    for k in range(n_slots):
        holder = <Variable>PyTuple_GET_ITEM(slot_vars, k)
        slots_in[k] = cnp.PyArray_DATA(<cnp.ndarray>holder._arr)
        slots_out[k] = (cnp.PyArray_DATA(<cnp.ndarray>holder._arr) if sole[1 + k] else
                        cnp.PyArray_DATA(<cnp.ndarray>PyList_GET_ITEM(buffers, index + 1 + k)))
    _fused_step(code, <cnp.ndarray>var._arr if sole[0]
                else <cnp.ndarray>PyList_GET_ITEM(buffers, index),
                <cnp.ndarray>var._arr, <cnp.ndarray>PyTuple_GET_ITEM(target, 3),
                slots_out, slots_in, p)
    for k in range(1 + n_slots):
        if sole[k]:
            in_place += 1
            continue
        holder = var if k == 0 else <Variable>PyTuple_GET_ITEM(slot_vars, k - 1)
        buf = <cnp.ndarray>PyList_GET_ITEM(buffers, index + k)
        _freeze(buf)
        released[n_released[0]] = holder._arr
        n_released[0] += 1
        holder._arr = buf
        buffers[index + k] = None  # (the Variable's reference keeps it)
    return in_place


cdef extern from *:
    """
    /* a type's own attribute dict (read only here) */
    static PyObject* dualad_type_dict(PyObject* type) { return ((PyTypeObject*)type)->tp_dict; }
    /* a type's attribute cache tag: 0 while unassigned; every change of the type's (or a
       base's) attributes sets it to 0, and a tag once assigned is never given again */
    static unsigned int dualad_type_version(PyObject* type) {
        return ((PyTypeObject*)type)->tp_version_tag;
    }
    """
    PyObject* dualad_type_dict(object type)
    unsigned int dualad_type_version(object type)
    dict PyObject_GenericGetDict(object o, void* context)


# The attributes the C step reads of a built-in optimizer (dualad.optimizers) live in its
# StepGuard's `_fields`, behind OptimizerField descriptors on the classes: the step reads them
# without a lookup, and no instance dict entry can shadow them (a data descriptor wins).
cdef enum:
    _FIELD_LR = 0          # _lr: a float, or a schedule
    _FIELD_HYPER = 1       # 1, 2, 3: the hyperparameters _opt_update takes as h
    _FIELD_FLAG = 4        # nesterov, amsgrad or centered
    _FIELD_SLOTS = 5       # _slots
    _FIELD_STEPS = 6       # _steps
    _N_FIELDS = 7

cdef object _UNSET = object()  # a field not assigned yet


cdef StepGuard _guard_of(object optimizer):
    # the optimizer's StepGuard, from its instance dict
    cdef PyObject* found = PyDict_GetItemWithError(PyObject_GenericGetDict(optimizer, NULL),
                                                   "_guard")
    if found == NULL or type(<object>found) is not StepGuard:
        raise AttributeError(f"{type(optimizer).__name__} has no StepGuard in its '_guard' "
                             "attribute (Optimizer.__init__ makes it first)")
    return <StepGuard>found


cdef class OptimizerField:
    """A data descriptor of the built-in optimizer classes: the attribute is kept in the
    optimizer's StepGuard, where the C step on scalar Variables reads it."""
    cdef Py_ssize_t _index
    cdef str _name

    def __cinit__(self, Py_ssize_t index):
        if not 0 <= index < _N_FIELDS:
            raise ValueError(f"OptimizerField: index {index} out of range")
        self._index = index
        self._name = "?"

    def __set_name__(self, owner, name):
        self._name = name

    def __get__(self, instance, owner):
        if instance is None:
            return self
        value = <object>PyList_GET_ITEM(_guard_of(instance)._fields, self._index)
        if value is _UNSET:
            raise AttributeError(f"'{type(instance).__name__}' object has no attribute "
                                 f"'{self._name}'")
        return value

    def __set__(self, instance, value):
        _guard_of(instance)._fields[self._index] = value

    def __delete__(self, instance):
        raise AttributeError(f"the optimizer attribute '{self._name}' cannot be deleted")


cdef tuple _builtin_optimizer_types = ()


def register_builtin_optimizers(*classes):
    """Declare the optimizer classes whose attributes the C step reads from the StepGuard's
    fields (dualad.optimizers calls this once: its classes keep them in OptimizerFields)."""
    global _builtin_optimizer_types
    _builtin_optimizer_types = classes


cdef inline bint _is_builtin_optimizer(object optimizer) noexcept:
    cdef Py_ssize_t i
    cdef PyObject* cls = <PyObject*>Py_TYPE(optimizer)
    for i in range(PyTuple_GET_SIZE(_builtin_optimizer_types)):
        if cls == PyTuple_GET_ITEM(_builtin_optimizer_types, i):
            return True
    return False


cdef inline bint _opt_float(object value, double* out) noexcept:
    # a hyperparameter the C step can use: a Python float (anything else: the general path)
    if not PyFloat_CheckExact(value):
        return False
    out[0] = PyFloat_AS_DOUBLE(value)
    return True


cdef inline int _opt_bool(object value) noexcept:
    # a boolean option as 0/1, or -1 when it is not a bool (its truth test could run Python code)
    return 1 if value is True else (0 if value is False else -1)


# the last built-in optimizer class whose own `_scalar_rule` was read, at its version tag:
# while the tag is unchanged, the class's dict is too (no lookup per step)
cdef PyObject* _rule_cache_type = NULL
cdef unsigned int _rule_cache_version = 0
cdef object _rule_cache_code = None


cdef object _own_scalar_rule(object cls):
    # cls.__dict__.get("_scalar_rule") (None when absent)
    global _rule_cache_type, _rule_cache_version, _rule_cache_code
    cdef unsigned int version = dualad_type_version(cls)
    if version != 0 and <PyObject*>cls == _rule_cache_type and version == _rule_cache_version:
        return _rule_cache_code
    cdef PyObject* found = PyDict_GetItemWithError(<object>dualad_type_dict(cls), "_scalar_rule")
    code = None if found == NULL else <object>found
    if version != 0 and version == dualad_type_version(cls):  # (the lookup ran no code)
        _rule_cache_code = code
        _rule_cache_type = <PyObject*>cls
        _rule_cache_version = version
    return code


cdef object _optimizer_scalar_step(object optimizer, list fields, list pairs):
    # StepGuard.scalar_step's work, with the guard held; `fields`: the guard's fields for a
    # built-in optimizer, else None (its attributes are read with getattr)
    cdef double h[_OPT_MAX_SLOTS]
    cdef double lr
    cdef int rule, flag = 0
    cdef Py_ssize_t k, n_hyper
    cdef PyObject* found
    if fields is not None:  # the class's own rule (None: a subclass, see Optimizer)
        rule_code = _own_scalar_rule(type(optimizer))
    else:
        rule_code = optimizer._scalar_rule
    if type(rule_code) is not int:  # None: no C rule for this class
        return None
    rule = rule_code
    if fields is None:
        return _optimizer_scalar_step_getattr(optimizer, rule, pairs)
    if not _opt_float(<object>PyList_GET_ITEM(fields, _FIELD_LR), &lr):
        return None  # a schedule
    if rule == _RULE_SGD or rule == _RULE_ADAGRAD:
        n_hyper = 1
    elif rule == _RULE_ADAM or rule == _RULE_RMSPROP:
        n_hyper = 3
    else:
        return None
    for k in range(n_hyper):
        if not _opt_float(<object>PyList_GET_ITEM(fields, _FIELD_HYPER + k), &h[k]):
            return None
    if rule != _RULE_ADAGRAD:
        flag = _opt_bool(<object>PyList_GET_ITEM(fields, _FIELD_FLAG))
        if flag < 0:
            return None
    slots = <object>PyList_GET_ITEM(fields, _FIELD_SLOTS)
    steps = <object>PyList_GET_ITEM(fields, _FIELD_STEPS)
    if type(slots) is not dict or type(steps) is not Variable:
        return None
    return _opt_step(rule, pairs, <dict>slots, <Variable>steps, lr, h, flag)


cdef object _optimizer_scalar_step_getattr(object optimizer, int rule, list pairs):
    # _optimizer_scalar_step of another optimizer class, its attributes read with getattr
    cdef double h[_OPT_MAX_SLOTS]
    cdef double lr
    cdef int flag = 0
    if not _opt_float(optimizer._lr, &lr):
        return None  # a schedule
    if rule == _RULE_SGD:
        if not _opt_float(optimizer.momentum, &h[0]):
            return None
        flag = _opt_bool(optimizer.nesterov)
    elif rule == _RULE_ADAM:
        if not (_opt_float(optimizer.beta_1, &h[0]) and _opt_float(optimizer.beta_2, &h[1])
                and _opt_float(optimizer.epsilon, &h[2])):
            return None
        flag = _opt_bool(optimizer.amsgrad)
    elif rule == _RULE_RMSPROP:
        if not (_opt_float(optimizer.rho, &h[0]) and _opt_float(optimizer.momentum, &h[1])
                and _opt_float(optimizer.epsilon, &h[2])):
            return None
        flag = _opt_bool(optimizer.centered)
    elif rule == _RULE_ADAGRAD:
        if not _opt_float(optimizer.epsilon, &h[0]):
            return None
    else:
        return None
    if flag < 0:
        return None
    slots = optimizer._slots
    steps = optimizer._steps
    if type(slots) is not dict or type(steps) is not Variable:
        return None
    return _opt_step(rule, pairs, <dict>slots, <Variable>steps, lr, h, flag)


cdef extern from "pythread.h":
    ctypedef void* PyThread_type_lock
    ctypedef enum PyLockStatus:
        PY_LOCK_FAILURE, PY_LOCK_ACQUIRED, PY_LOCK_INTR
    PyThread_type_lock PyThread_allocate_lock()
    void PyThread_free_lock(PyThread_type_lock lock)
    PyLockStatus PyThread_acquire_lock_timed(PyThread_type_lock lock, long long microseconds,
                                             int intr_flag) nogil
    void PyThread_release_lock(PyThread_type_lock lock) nogil

from cpython.exc cimport PyErr_CheckSignals


cdef class StepGuard:
    """An optimizer's exclusion: one step or state change at a time (threads take turns), and
    no step while one of its own is being computed (a callback calling back in). Compiled, so
    that no exception (an asynchronous KeyboardInterrupt) can arrive between taking the lock
    and setting the flag, or between clearing the flag and releasing the lock: either would
    leave the optimizer refusing every later step, or its lock held. The lock is re-entrant
    (as threading.RLock) and kept in C: taking it free costs no Python call."""
    cdef PyThread_type_lock _lock
    cdef unsigned long long _holder  # the thread state id of the thread holding it, 0 if none
    cdef Py_ssize_t _depth           # the holder's nested acquisitions
    cdef readonly bint busy          # a step is being computed
    cdef str _reentry_message
    cdef list _fields                # a built-in optimizer's OptimizerFields

    def __cinit__(self, str reentry_message):
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError("StepGuard: no lock could be allocated")
        self._reentry_message = reentry_message
        self._fields = [_UNSET] * _N_FIELDS

    def __dealloc__(self):
        if self._lock != NULL:
            PyThread_free_lock(self._lock)

    cdef int _acquire(self) except -1:
        # Waiting releases the GIL and lets signal handlers run: one that raises interrupts
        # the wait, and the lock is not taken then (as with threading.RLock's acquire).
        cdef unsigned long long me = PyThreadState_GetID(PyThreadState_Get())
        cdef PyLockStatus got
        if self._holder == me:
            self._depth += 1
            return 0
        if PyThread_acquire_lock_timed(self._lock, 0, 0) != PY_LOCK_ACQUIRED:
            while True:
                with nogil:
                    got = PyThread_acquire_lock_timed(self._lock, -1, 1)
                if got == PY_LOCK_ACQUIRED:
                    break
                PyErr_CheckSignals()
        self._holder = me
        self._depth = 1
        return 0

    cdef void _release(self) noexcept:
        # by the holder only (each _acquire's finally)
        self._depth -= 1
        if self._depth == 0:
            self._holder = 0
            PyThread_release_lock(self._lock)

    def scalar_step(self, object optimizer, object pairs):
        """apply_gradients' C path on scalar Variables: `optimizer`'s rule (its class's
        `_scalar_rule`, reading its hyperparameters, `_lr`, `_slots` and `_steps`) applied to
        the list `pairs` under this guard, or None when the step needs the general path
        (nothing changed then; the general path also raises the re-entry error)."""
        if type(pairs) is not list:
            return None
        return self._scalar_step(optimizer, pairs)

    cdef object _scalar_step(self, object optimizer, list pairs):
        # scalar_step (a built-in optimizer's attributes read from this guard's fields)
        if self.busy:
            return None
        self._acquire()  # (interrupted while waiting, it has not taken the lock)
        try:
            if self.busy:  # this thread is inside one of its steps: the general path refuses
                return None
            self.busy = True
            try:  # (the state is read under the lock: set_state may replace it)
                return _optimizer_scalar_step(
                    optimizer, self._fields if _is_builtin_optimizer(optimizer) else None,
                    pairs)
            finally:
                self.busy = False
        finally:
            self._release()

    def step(self, fn, a, b):
        """fn(a, b) holding the lock, with `busy` set; RuntimeError if `busy` already."""
        self._acquire()  # (interrupted while waiting, it has not taken the lock)
        try:
            if self.busy:
                raise RuntimeError(self._reentry_message)
            self.busy = True
            try:
                return fn(a, b)
            finally:
                self.busy = False
        finally:
            self._release()

    def locked(self, fn, *args):
        """fn(*args) holding the lock."""
        self._acquire()
        try:
            return fn(*args)
        finally:
            self._release()

    def __reduce__(self):
        raise TypeError("an optimizer's StepGuard cannot be pickled")


def apply_gradients(self, grads_and_vars):
    """Apply one step to each (gradient, variable) pair and return the new `iterations`.

    Variables must be float `dualad.Variable` objects (TypeError otherwise); a gradient must
    have its variable's shape (ValueError naming the variable). A None gradient skips its
    variable with a warning; a call whose gradients are all None raises ValueError. An empty
    list is a no-op. Everything is checked before any variable changes."""
    # (Optimizer.apply_gradients, compiled: a step on scalar Variables runs no Python frame)
    if type(grads_and_vars) is not list:  # a zip (TensorFlow's idiom), a tuple, a generator:
        grads_and_vars = list(grads_and_vars)  # as the list the C path takes (iterated once)
    # (a built-in optimizer's from its instance dict: no class and descriptor lookups)
    cdef PyObject* found = (PyDict_GetItemWithError(PyObject_GenericGetDict(self, NULL), "_guard")
                            if _is_builtin_optimizer(self) else NULL)
    guard = <object>found if found != NULL else self._guard
    if type(guard) is StepGuard:
        # tracked float32/float64 scalars: checked, computed and committed in one C call
        step = (<StepGuard>guard)._scalar_step(self, <list>grads_and_vars)
        if step is not None:
            return step
    # (no Python frame of its own here: the caller's is the warnings' stacklevel 2)
    return guard.step(self._apply_locked, grads_and_vars, 2)
