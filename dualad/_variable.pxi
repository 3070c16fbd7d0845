# Variable: the mutable, trainable tensor.
# (included by _core.pyx: one extension module, assembled from these files)

# --------------------------------------------------------------------------------------------
# Variable
# --------------------------------------------------------------------------------------------

cdef class Variable(Tensor):
    """A mutable tensor. Tapes watch trainable Variables automatically when they are read."""

    def __init__(self, initial_value, dtype=None, trainable=True, name=None):
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
