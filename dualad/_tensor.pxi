# Tensor: the immutable value, its operators and numpy interop, pickling.
# (included by _core.pyx: one extension module, assembled from these files)

# --------------------------------------------------------------------------------------------
# Tensor
# --------------------------------------------------------------------------------------------

# Comparisons of two float scalars (a Python number operand taking the tensor's dtype, as
# binary's conversion gives it) run on their C doubles: the comparison of the same two values
# numpy makes, NaN included. The bool results share two 0-d arrays, views of frozen arrays so
# that no one can make them writeable again.
cdef enum:
    _CMP_LT, _CMP_LE, _CMP_GT, _CMP_GE, _CMP_EQ, _CMP_NE

cdef object _FALSE_0D = np.array(False)
cdef object _TRUE_0D = np.array(True)
_freeze(_FALSE_0D)
_freeze(_TRUE_0D)
_FALSE_0D = _FALSE_0D.view()
_TRUE_0D = _TRUE_0D.view()
_freeze(_FALSE_0D)
_freeze(_TRUE_0D)
cdef object _BOOL_DTYPE = <object>cnp.PyArray_DESCR(<cnp.ndarray>_TRUE_0D)


cdef inline bint _compare_doubles(double x, double y, int code) noexcept:
    if code == _CMP_LT:
        return x < y
    if code == _CMP_LE:
        return x <= y
    if code == _CMP_GT:
        return x > y
    if code == _CMP_GE:
        return x >= y
    if code == _CMP_EQ:
        return x == y
    return x != y


cdef Tensor _compare(Tensor a, object other, str name, int code):
    """a <op> other: on C doubles for two float scalars outside any trace (the comparison
    primitives are not differentiable, so no tape or accumulator takes them; Variables are
    left to run_op, which makes tapes watch them), else the primitive's call."""
    cdef Tensor b, t
    cdef double y
    cdef bint truth
    if a._is_scalar and not a._is_var and not _n_tracing:
        if type(other) is float or type(other) is int:
            y = _round(<double>other, a._kind == K_F32)     # as _like converts it
        elif (isinstance(other, Tensor) and (<Tensor>other)._is_scalar
              and not (<Tensor>other)._is_var and (<Tensor>other)._kind == a._kind):
            y = (<Tensor>other)._d
        else:
            return binary(_P_CMP[name], a, other)
        truth = _compare_doubles(a._d, y, code)
        t = Tensor.__new__(Tensor)
        t._arr = _TRUE_0D if truth else _FALSE_0D
        t._dtype = _BOOL_DTYPE
        t._kind = K_OTHER
        return t
    return binary(_P_CMP[name], a, other)


@cython.freelist(256)
@cython.no_gc  # a Tensor never references a Tensor that references it back (see _set_tangent)
cdef class Tensor:
    """An immutable value: a C double for float scalars, a numpy array otherwise."""

    def __init__(self, *args, **kwargs):
        raise TypeError("make tensors with dualad.constant(...) or dualad.convert_to_tensor(...)")

    cdef object _value(self):
        cdef double v
        cdef float f
        if self._arr is None:
            if self._dtype is None:
                _uninitialized()
            # made in C: np.array(d, dtype=...) costs ~3x as much
            if self._kind == K_F64:
                arr = cnp.PyArray_SimpleNew(0, NULL, cnp.NPY_DOUBLE)
                v = self._d
                memcpy(cnp.PyArray_DATA(<cnp.ndarray>arr), &v, sizeof(double))
            elif self._kind == K_F32:
                arr = cnp.PyArray_SimpleNew(0, NULL, cnp.NPY_FLOAT)
                f = <float>self._d      # exact: a float32 scalar's double is a float32 value
                memcpy(cnp.PyArray_DATA(<cnp.ndarray>arr), &f, sizeof(float))
            else:
                arr = _np_array(self._d, dtype=self._dtype)
            _freeze(arr)
            self._arr = arr
        return self._arr

    # ---- pickling and copying: the value only, never the tape slots or tangents, which
    # ---- name tapes and accumulators of the process (and thread) that made them

    def __reduce__(self):
        return (_tensor_from_pickle, (self._value(),))

    def __copy__(self):
        return self                     # immutable, as TensorFlow's eager tensors

    def __deepcopy__(self, memo):
        # like a pickle round trip: the value (shared, it is immutable) without tape state
        cdef Tensor c = Tensor.__new__(Tensor)
        c._arr = self._value()
        c._d = self._d
        c._is_scalar = self._is_scalar
        c._kind = self._kind
        c._dtype = self._dtype
        return c

    # ---- inspection ---------------------------------------------------------------------

    @property
    def dtype(self):
        return _as_dtype(self._dtype)

    @property
    def shape(self):
        """The shape as a TensorShape (a tuple of ints with TensorFlow's methods)."""
        if self._is_scalar:
            return _SCALAR_SHAPE
        return _tensor_shape(self._value())

    def get_shape(self):
        """The shape (TensorFlow's older name for `.shape`)."""
        return self.shape

    @property
    def ndim(self):
        return 0 if self._is_scalar else self._value().ndim

    @property
    def size(self):
        return 1 if self._is_scalar else self._arr.size

    def numpy(self):
        """The value as numpy: a numpy scalar for shape (), otherwise a fresh array."""
        if _n_tracing:
            _trace_concrete(self, "numpy()")
        if self._is_scalar:
            return self._dtype.type(self._d)
        if self._arr.ndim == 0:
            return self._arr[()]
        return self._arr.copy()

    def __array__(self, dtype=None, copy=None):
        if _n_tracing:
            _trace_concrete(self, "numpy.asarray")
        arr = self._value()
        if dtype is not None and np.dtype(dtype) != arr.dtype:
            return arr.astype(dtype)
        if copy:
            return arr.copy()
        return arr

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a scalar (shape ()) tensor")
        return self._arr.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a scalar (shape ()) tensor")
        for i in range(self._arr.shape[0]):
            yield self[i]

    def __bool__(self):
        cdef bint truth
        if self._is_scalar:
            truth = self._d != 0.0
        elif self._arr.size != 1:
            raise ValueError(f"the truth value of a tensor with shape {self._arr.shape} is "
                             "ambiguous; reduce it first (dualad.reduce_all / reduce_any)")
        elif (cnp.PyArray_NDIM(<cnp.ndarray>self._arr) == 0
              and cnp.PyArray_TYPE(<cnp.ndarray>self._arr) == cnp.NPY_BOOL):
            # a comparison's result: its one byte read directly (numpy's truth is byte != 0)
            truth = (<cnp.npy_bool*>cnp.PyArray_DATA(<cnp.ndarray>self._arr))[0] != 0
        else:
            truth = bool(self._arr.reshape(()))
        if _n_tracing:
            _trace_guard(self, truth)
        return truth

    def __float__(self):
        if _n_tracing:
            _trace_concrete(self, "float()")
        if self._is_scalar:
            return self._d
        return float(self._scalar_array("float"))

    def __int__(self):
        cdef object v = int(self._scalar_array("int"))
        if _n_tracing:
            _trace_guard(self, v)
        return v

    def __index__(self):
        if self._dtype.kind not in "iu":
            raise TypeError(f"only integer tensors can be used as an index, not {self._dtype}")
        cdef object v = int(self._scalar_array("an index"))
        if _n_tracing:
            _trace_guard(self, v)
        return v

    def _scalar_array(self, what):
        arr = self._value()
        if arr.size != 1:
            raise TypeError(f"only single-element tensors convert to {what}, got shape {arr.shape}")
        return arr.reshape(())

    def __hash__(self):
        # id(self) (the address, which an int hashes to unchanged), without calling id()
        return <Py_ssize_t><PyObject*>self

    def ref(self):
        """An object hashable by identity, for dictionaries keyed by tensors (as in TensorFlow)."""
        return self

    def __repr__(self):
        if self._dtype is None:
            return f"<dualad.{type(self).__name__} (uninitialized)>"
        return (f"<dualad.Tensor shape={self.shape} dtype={self._dtype.name} "
                f"numpy={_numpy_repr(self)}>")

    def __str__(self):
        if self._dtype is None:
            return self.__repr__()
        return f"dualad.Tensor({_numpy_repr(self)}, shape={self.shape}, dtype={self._dtype.name})"

    # ---- operators ----------------------------------------------------------------------

    def __add__(self, other):
        return binary(_P_ADD, self, other)

    def __radd__(self, other):
        return binary(_P_ADD, other, self)

    def __sub__(self, other):
        return binary(_P_SUB, self, other)

    def __rsub__(self, other):
        return binary(_P_SUB, other, self)

    def __mul__(self, other):
        return binary(_P_MUL, self, other)

    def __rmul__(self, other):
        return binary(_P_MUL, other, self)

    def __truediv__(self, other):
        return binary(_P_DIV, self, other)

    def __rtruediv__(self, other):
        return binary(_P_DIV, other, self)

    def __pow__(self, other, mod):
        if mod is not None:
            return NotImplemented
        return binary(_P_POW, self, other)

    def __rpow__(self, other, mod):
        if mod is not None:
            return NotImplemented
        return binary(_P_POW, other, self)

    def __floordiv__(self, other):
        return binary(_P_FLOORDIV, self, other)

    def __rfloordiv__(self, other):
        return binary(_P_FLOORDIV, other, self)

    def __mod__(self, other):
        return binary(_P_FLOORMOD, self, other)

    def __rmod__(self, other):
        return binary(_P_FLOORMOD, other, self)

    def __divmod__(self, other):
        return binary(_P_FLOORDIV, self, other), binary(_P_FLOORMOD, self, other)

    def __rdivmod__(self, other):
        return binary(_P_FLOORDIV, other, self), binary(_P_FLOORMOD, other, self)

    def __matmul__(self, other):
        return _ops_fn["matmul"](self, other)

    def __rmatmul__(self, other):
        return _ops_fn["matmul"](other, self)

    def __neg__(self):
        return unary(_P_NEG, self)

    def __pos__(self):
        return self

    def __abs__(self):
        return unary(_P_ABS, self)

    def __getitem__(self, key):
        return _ops_fn["getitem"](self, key)

    def __lt__(self, other):
        return _compare(self, other, "less", _CMP_LT)

    def __le__(self, other):
        return _compare(self, other, "less_equal", _CMP_LE)

    def __gt__(self, other):
        return _compare(self, other, "greater", _CMP_GT)

    def __ge__(self, other):
        return _compare(self, other, "greater_equal", _CMP_GE)

    def __eq__(self, other):
        if other is None:
            return False
        return _compare(self, other, "equal", _CMP_EQ)

    def __ne__(self, other):
        if other is None:
            return True
        return _compare(self, other, "not_equal", _CMP_NE)

    # ---- numpy interop: numpy functions on tensors are recorded, or refuse ----------------

    __array_priority__ = 100

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        fn = _ufunc_table.get(ufunc) if method == "__call__" and not kwargs else None
        if fn is not None:
            return fn(*inputs)
        name = f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else "." + method)
        if method == "at" and inputs and isinstance(inputs[0], Tensor):
            _refuse_write(name)
        return _numpy_fallback(name, lambda *a, **k: getattr(ufunc, method)(*a, **k), inputs,
                               kwargs)

    def __array_function__(self, func, types, args, kwargs):
        fn = _array_function_table.get(func)
        if fn is not None:
            return fn(*args, **kwargs)
        return _numpy_fallback(f"numpy.{func.__name__}", func, args, kwargs)

    # ---- TensorFlow-style conveniences --------------------------------------------------

    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        if dtype is not None or out is not None:
            raise TypeError("Tensor.sum does not take dtype or out")
        return _ops_fn["reduce_sum"](self, axis=axis, keepdims=keepdims)

    @property
    def T(self):
        return _ops_fn["transpose"](self)


cdef object _numpy_repr(Tensor t):
    if t._is_scalar:
        return str(t._dtype.type(t._d))
    if t._arr.ndim == 0:
        return str(t._arr[()])
    return repr(t._arr)


cdef bint _is_tracked(Tensor t):
    return (t._tape_id != 0 or t._tape_id2 != 0 or bool(t._more_slots) or bool(t._tangents)
            or t._tan_acc != 0)


cdef void _refuse_write(str name) except *:
    raise TypeError(f"{name} would write into a tensor, and tensors are immutable; write into "
                    "a numpy array (t.numpy() is a copy) or use Variable.assign")


cdef bint _would_watch(Tensor t):
    """A trainable Variable that an active tape of this thread watches as soon as it is read:
    a numpy function on it would detach it silently even though no op has read it yet."""
    cdef Transformation tr
    if not t._is_var or not (<Variable>t).trainable:
        return False
    for tr in _state().stack:
        if _watches_accessed(tr):
            return True
    return False


def _numpy_fallback(str name, func, args, kwargs):
    """A numpy function dualad does not differentiate: fine on untracked tensors, an error on
    tensors a tape or accumulator follows (it would silently cut the gradient)."""
    flat = []
    _flatten_into(args, flat, 0)
    out = kwargs.get("out")
    if out is not None:
        outs = []
        _flatten_into(out, outs, 0)
        for v in outs:
            if isinstance(v, Tensor):
                _refuse_write(name)
    _flatten_into(list(kwargs.values()), flat, 0)
    if _n_live > 0:
        for v in flat:
            if isinstance(v, Tensor) and (_is_tracked(<Tensor>v) or _would_watch(<Tensor>v)):
                raise TypeError(f"{name} is not differentiable by dualad and would silently "
                                "detach a tensor that a tape or accumulator is following; use "
                                "dualad ops, or np.asarray(t) to detach it on purpose")
    return func(*_to_numpy_nested(args, 0),
                **{k: _to_numpy_nested(v, 0) for k, v in kwargs.items()})


cdef void _flatten_into(object obj, list out, int depth) except *:
    if isinstance(obj, (list, tuple)):
        if depth >= MAX_NESTING:
            _too_deep()
        for v in obj:
            _flatten_into(v, out, depth + 1)
    else:
        out.append(obj)


cdef object _to_numpy_nested(object obj, int depth):
    if isinstance(obj, Tensor):
        return (<Tensor>obj)._value()
    if depth >= MAX_NESTING:
        return obj     # (already refused by _flatten_into, which walks the same values)
    if isinstance(obj, tuple):
        return tuple([_to_numpy_nested(v, depth + 1) for v in obj])
    if isinstance(obj, list):
        return [_to_numpy_nested(v, depth + 1) for v in obj]
    return obj


cdef void _uninitialized() except *:
    raise ValueError("this Tensor is uninitialized (made with Tensor.__new__); make tensors "
                     "with dualad.constant(...) or dualad.convert_to_tensor(...)")


def _tensor_from_pickle(value):
    """Rebuild a pickled Tensor from its value (a fresh, untracked tensor)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"a pickled Tensor holds a numpy array, not {type(value).__name__}")
    return _from_python(value, None)


def _variable_from_pickle(cls, value, trainable, name):
    """Rebuild a pickled (or deep-copied) Variable: a new Variable of class `cls` with the
    value, dtype, trainability and name of the original, and nothing of its tape state."""
    if not (isinstance(cls, type) and issubclass(cls, Variable)):
        raise TypeError(f"a pickled Variable names the class {cls!r}, which is not a Variable")
    # Variable() would take any truthy object and str() of anything: a forged pickle must not
    if not isinstance(trainable, (bool, np.bool_)):
        raise TypeError(f"a pickled Variable's trainable flag must be a bool, got "
                        f"{type(trainable).__name__}")
    if not isinstance(name, str):
        raise TypeError(f"a pickled Variable's name must be a str, got {type(name).__name__}")
    cdef Variable v = cls.__new__(cls)
    Variable.__init__(v, _tensor_from_pickle(value), trainable=trainable, name=name)
    return v


# Tensor.shape is a TensorShape (dualad/shapes.py: plain Python over numpy, imported by the core;
# shapes are read on the derivative rules' paths, so they are cached below).
from dualad.shapes import TensorShape as _TensorShape
cdef object _SCALAR_SHAPE = _TensorShape(())


# TensorShape's comparisons and indexing, called on the derivative rules' paths, run in C: its
# Python methods (the same semantics) would cost a Python call each. The slots of the class are
# set once, here, to functions that convert a list operand, or wrap a slice, and otherwise are
# tuple's own.
cdef extern from "Python.h":
    ctypedef object (*binaryfunc)(object, object)
    ctypedef object (*richcmpfunc)(object, object, int)
    ctypedef struct _MappingSlots "PyMappingMethods":
        binaryfunc mp_subscript
    ctypedef struct _TypeSlots "PyTypeObject":
        richcmpfunc tp_richcompare
        _MappingSlots* tp_as_mapping

cdef richcmpfunc _tuple_richcompare = (<_TypeSlots*>tuple).tp_richcompare
cdef binaryfunc _tuple_subscript = (<_TypeSlots*>tuple).tp_as_mapping.mp_subscript


cdef object _shape_richcompare(object a, object b, int op):
    # a is the TensorShape (CPython calls the subclass's slot with it first)
    if type(b) is list:
        b = tuple(b)
    return _tuple_richcompare(a, b, op)


cdef object _shape_subscript(object shape, object key):
    if type(key) is slice:
        return tuple.__new__(_TensorShape, _tuple_subscript(shape, key))
    return _tuple_subscript(shape, key)


(<_TypeSlots*>_TensorShape).tp_richcompare = _shape_richcompare
(<_TypeSlots*>_TensorShape).tp_as_mapping.mp_subscript = _shape_subscript


# The TensorShapes last made, in slots chosen by a hash of the dimensions: reading a shape
# reads the array's dimensions in C and, when the slot holds the same dimensions, allocates
# nothing (cheaper than numpy's own .shape, which builds a tuple each time).
cdef enum:
    _SHAPE_SLOTS = 256                         # a power of two: slot = hash & (slots - 1)
cdef list _shape_slots = [None] * _SHAPE_SLOTS  # never resized: every masked index is in range


cdef object _tensor_shape(object value):
    cdef cnp.ndarray arr
    cdef Py_ssize_t nd, i
    cdef cnp.npy_intp* dims
    cdef size_t h
    cdef object cached
    if not isinstance(value, _np_ndarray):
        return tuple.__new__(_TensorShape, value.shape)
    arr = <cnp.ndarray>value
    nd = cnp.PyArray_NDIM(arr)
    dims = cnp.PyArray_DIMS(arr)
    h = <size_t>nd
    for i in range(nd):
        h = (h * 1000003) ^ <size_t>dims[i]
    h &= _SHAPE_SLOTS - 1
    cached = _shape_slots[h]
    if cached is not None and len(<tuple>cached) == nd:
        for i in range(nd):
            if <cnp.npy_intp>(<tuple>cached)[i] != dims[i]:
                break
        else:
            return cached
    cached = tuple.__new__(_TensorShape, value.shape)   # numpy's dims: checked ints already
    _shape_slots[h] = cached
    return cached


cdef dict _ufunc_table = {}
cdef dict _array_function_table = {}
cdef dict _ops_fn = {}


cdef Tensor plain_copy(Tensor t):
    cdef Tensor c = Tensor.__new__(Tensor)
    c._arr = t._arr
    c._d = t._d
    c._is_scalar = t._is_scalar
    c._kind = t._kind
    c._dtype = t._dtype
    if _n_tracing:
        _trace_alias(c, t)
    return c
