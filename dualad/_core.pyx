# cython: allow_none_for_extension_args=False
"""The compiled core of dualad.

Tensor and Variable values, the primitive call (`run_op`), the linear tape record and its
backward sweep, forward-mode tangent propagation, and the per-thread stack of active
transformations (tapes and forward accumulators).

Policy (derivative rules, public op names, argument checking) lives in Python modules;
this module owns the hot paths: scalar arithmetic on C doubles, recording, and the sweep.
"""
cimport cython
from libc.math cimport sin, cos, tan, exp, log, log1p, tanh, sqrt, pow, fabs, isfinite, copysign
from libc.stdlib cimport calloc, malloc, free
from libc.string cimport memset
from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF

import threading
import numpy as np
cimport numpy as cnp

cnp.import_array()

cdef extern from "Python.h":
    ctypedef struct PyThreadState
    PyThreadState* PyThreadState_Get()
    unsigned long long PyThreadState_GetID(PyThreadState* tstate)

cdef enum:
    K_F32 = 0
    K_F64 = 1
    K_OTHER = 2

# Scalar opcodes: primitives whose value and partial derivatives the core computes on C doubles.
cdef enum:
    OP_NONE = 0
    OP_ADD = 1
    OP_SUB = 2
    OP_MUL = 3
    OP_DIV = 4
    OP_NEG = 5
    OP_POW = 6
    OP_SQUARE = 7
    OP_SQRT = 8
    OP_EXP = 9
    OP_LOG = 10
    OP_LOG1P = 11
    OP_SIN = 12
    OP_COS = 13
    OP_TAN = 14
    OP_TANH = 15
    OP_SIGMOID = 16
    OP_RELU = 17
    OP_ABS = 18
    OP_MAXIMUM = 19
    OP_MINIMUM = 20

SCALAR_OPCODES = {
    "add": OP_ADD, "subtract": OP_SUB, "multiply": OP_MUL, "divide": OP_DIV,
    "negative": OP_NEG, "pow": OP_POW, "square": OP_SQUARE, "sqrt": OP_SQRT, "exp": OP_EXP,
    "log": OP_LOG, "log1p": OP_LOG1P, "sin": OP_SIN, "cos": OP_COS, "tan": OP_TAN,
    "tanh": OP_TANH, "sigmoid": OP_SIGMOID, "relu": OP_RELU, "abs": OP_ABS,
    "maximum": OP_MAXIMUM, "minimum": OP_MINIMUM,
}

cdef object F32 = np.dtype(np.float32)
cdef object F64 = np.dtype(np.float64)
cdef object _np_asarray = np.asarray
cdef object _np_array = np.array
cdef object _np_ndarray = np.ndarray

DEFAULT_FLOAT = F32
DEFAULT_INT = np.dtype(np.int32)


cdef inline int _kind_of(object dtype):
    if dtype is F32:
        return K_F32
    if dtype is F64:
        return K_F64
    if dtype == F32:
        return K_F32
    if dtype == F64:
        return K_F64
    return K_OTHER


cdef inline double _round(double v, bint f32) noexcept nogil:
    # float32 values are kept as the nearest float32, so scalar and array paths agree
    return <double>(<float>v) if f32 else v


cdef double _scalar_value(int code, double a, double b) noexcept nogil:
    cdef double z
    if code == OP_ADD:
        return a + b
    if code == OP_SUB:
        return a - b
    if code == OP_MUL:
        return a * b
    if code == OP_DIV:
        return a / b
    if code == OP_NEG:
        return -a
    if code == OP_POW:
        return pow(a, b)
    if code == OP_SQUARE:
        return a * a
    if code == OP_SQRT:
        return sqrt(a)
    if code == OP_EXP:
        return exp(a)
    if code == OP_LOG:
        return log(a)
    if code == OP_LOG1P:
        return log1p(a)
    if code == OP_SIN:
        return sin(a)
    if code == OP_COS:
        return cos(a)
    if code == OP_TAN:
        return tan(a)
    if code == OP_TANH:
        return tanh(a)
    if code == OP_SIGMOID:
        if a >= 0:
            return 1.0 / (1.0 + exp(-a))
        z = exp(a)
        return z / (1.0 + z)
    if code == OP_RELU:
        return a if a > 0 else (a if a != a else 0.0)
    if code == OP_ABS:
        return fabs(a)
    if code == OP_MAXIMUM:
        if a != a or a >= b:
            return a
        return b
    if code == OP_MINIMUM:
        if a != a or a <= b:
            return a
        return b
    return 0.0


cdef void _scalar_vjp(int code, double g, double a, double b, double y, bint f32,
                      double* ga, double* gb) noexcept nogil:
    # The cotangents g·∂y/∂a and g·∂y/∂b, computed with exactly the operations, order and
    # rounding of the VJP rules in rules.py (each step rounded to the dtype as an op would be),
    # so that the C path gives the same bits as the rules run as ops (what a traced function
    # replays, and what a tape recording the gradient computes). Kinks as in rules.py.
    gb[0] = 0.0
    if code == OP_ADD:
        ga[0] = g
        gb[0] = g
    elif code == OP_SUB:
        ga[0] = g
        gb[0] = -g
    elif code == OP_MUL:
        ga[0] = _round(g * b, f32)
        gb[0] = _round(g * a, f32)
    elif code == OP_DIV:
        ga[0] = _round(g / b, f32)
        gb[0] = -_round(_round(g * y, f32) / b, f32)
    elif code == OP_NEG:
        ga[0] = -g
    elif code == OP_POW:
        ga[0] = _round(g * _round(b * _round(pow(a, _round(b - 1.0, f32)), f32), f32), f32)
        if a > 0:
            gb[0] = _round(g * _round(_round(log(a), f32) * y, f32), f32)
        else:
            gb[0] = _round(g * 0.0, f32)
    elif code == OP_SQUARE:
        ga[0] = _round(g * _round(a * 2.0, f32), f32)
    elif code == OP_SQRT:
        ga[0] = _round(g / _round(y * 2.0, f32), f32)
    elif code == OP_EXP:
        ga[0] = _round(g * y, f32)
    elif code == OP_LOG:
        ga[0] = _round(g / a, f32)
    elif code == OP_LOG1P:
        ga[0] = _round(g / _round(a + 1.0, f32), f32)
    elif code == OP_SIN:
        ga[0] = _round(g * _round(cos(a), f32), f32)
    elif code == OP_COS:
        ga[0] = -_round(g * _round(sin(a), f32), f32)
    elif code == OP_TAN:
        ga[0] = _round(g * _round(_round(y * y, f32) + 1.0, f32), f32)
    elif code == OP_TANH:
        ga[0] = _round(g * _round(1.0 - _round(y * y, f32), f32), f32)
    elif code == OP_SIGMOID:
        ga[0] = _round(g * _round(y * _round(1.0 - y, f32), f32), f32)
    elif code == OP_RELU:
        ga[0] = g if a > 0 else 0.0
    elif code == OP_ABS:
        ga[0] = _round(g * (1.0 if a > 0 else (-1.0 if a < 0 else (a if a != a else 0.0))), f32)
    elif code == OP_MAXIMUM:
        ga[0] = g if a >= b else 0.0
        gb[0] = 0.0 if a >= b else g
    elif code == OP_MINIMUM:
        ga[0] = g if a <= b else 0.0
        gb[0] = 0.0 if a <= b else g
    else:
        ga[0] = 0.0


# --------------------------------------------------------------------------------------------
# Tensor construction
# --------------------------------------------------------------------------------------------

cdef inline Tensor _new_scalar(double v, int kind):
    cdef Tensor t = Tensor.__new__(Tensor)
    t._is_scalar = True
    t._kind = kind
    t._dtype = F32 if kind == K_F32 else F64
    t._d = _round(v, kind == K_F32)
    return t


cdef inline void _freeze(object arr):
    # Tensors are immutable: a buffer a Tensor holds is never writeable through numpy
    cnp.PyArray_CLEARFLAGS(<cnp.ndarray>arr, cnp.NPY_ARRAY_WRITEABLE)


cdef Tensor _wrap(object raw):
    """A Tensor around a raw result (ndarray, numpy scalar, Python number); no copy. The array
    becomes read-only: it must not be one the caller goes on writing."""
    cdef Tensor t = Tensor.__new__(Tensor)
    cdef object arr = raw if type(raw) is _np_ndarray else _np_asarray(raw)
    _freeze(arr)
    t._dtype = arr.dtype
    t._kind = _kind_of(t._dtype)
    t._arr = arr
    if t._kind != K_OTHER and arr.ndim == 0:
        t._is_scalar = True
        t._d = float(arr)
    return t


def wrap(raw):
    """Wrap a raw numpy result as a Tensor without copying (internal; the array becomes
    read-only, so it must not be shared with code that writes it)."""
    return _wrap(raw)


def raw_value(Tensor t):
    """The numpy value of `t` (0-d array for scalars), shared, read-only."""
    return t._value()


# numpy arrays have at most this many dimensions; deeper nesting is refused before any
# recursive walk could exhaust the C stack
cdef int MAX_NESTING = 64


cdef void _too_deep() except *:
    raise ValueError(f"a value nested more than {MAX_NESTING} levels deep cannot be a tensor "
                     f"(numpy arrays have at most {MAX_NESTING} dimensions)")


def scalar(double value, dtype):
    """A float scalar Tensor on the C-double fast path."""
    cdef int kind = _kind_of(np.dtype(dtype))
    if kind == K_OTHER:
        raise TypeError(f"scalar() takes a float dtype, got {dtype}")
    return _new_scalar(value, kind)


cdef object _normalize_dtype(object dtype):
    if dtype is None:
        return None
    if isinstance(dtype, DType):
        return (<DType>dtype).np
    return np.dtype(dtype)


cdef Tensor _from_python(object value, object dtype):
    """Convert a non-Tensor value. Python floats default to float32 and ints to int32 (as in
    TensorFlow); numpy arrays keep their dtype unless one is asked for."""
    cdef object arr
    cdef int kind
    # (numpy float64 scalars are floats too, but keep their dtype like numpy arrays)
    if type(value) is float and (dtype is None or dtype is F32 or dtype is F64):
        return _new_scalar(value, K_F64 if dtype is F64 else K_F32)
    if isinstance(value, (np.ndarray, np.generic)):
        arr = _np_array(value, dtype=dtype, copy=True)
    else:
        if isinstance(value, range):
            value = list(value)
        # (numpy raises OverflowError for a Python int that does not fit an explicit dtype)
        arr = _np_array(value, dtype=dtype)
        if dtype is None:
            # numpy defaults are 64-bit; Python numbers become 32-bit as in TensorFlow, ints
            # int64 where int32 cannot hold them
            if arr.dtype.kind in "fuO" and (_only_python_ints(value) or (
                    arr.dtype.kind != "f" and _holds_int(value))):
                # numpy made floats, uint64 or objects of ints beyond int64
                raise OverflowError(f"Python int too large for int64: {value!r:.80}")
            if arr.dtype == F64:
                arr = arr.astype(F32)
            elif arr.dtype.kind == "i":
                if _fits(arr, DEFAULT_INT):
                    arr = arr.astype(DEFAULT_INT)
            elif arr.dtype.kind not in "biuf":
                raise TypeError(f"cannot convert {type(value).__name__} to a Tensor "
                                f"(numpy made dtype {arr.dtype} of it)")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"unsupported dtype {arr.dtype}: dualad tensors hold bool, int or float")
    return _wrap(arr)


cdef bint _fits(object arr, object int_dtype):
    """Every value of the integer array `arr` is representable in `int_dtype`."""
    if arr.size == 0:
        return True
    info = np.iinfo(int_dtype)
    return int(arr.min()) >= info.min and int(arr.max()) <= info.max


cdef bint _holds_int(object value):
    """`value` (a number or nested lists) has a Python int among its leaves."""
    cdef list todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, (list, tuple)):
            todo.extend(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            return True
    return False


cdef bint _only_python_ints(object value):
    """`value` is a Python int (not bool) or nested lists of them: numpy may have made a float
    or object array of ints too large for int64, which must not pass as floats."""
    cdef list todo = [value]
    cdef bint any_int = False
    while todo:
        v = todo.pop()
        if isinstance(v, (list, tuple)):
            todo.extend(v)
        elif isinstance(v, int):
            any_int = any_int or not isinstance(v, bool)
        else:
            return False
    return any_int


cpdef Tensor convert_to_tensor(object value, object dtype=None):
    """Return `value` as a Tensor (Variables are returned as they are)."""
    cdef Tensor t
    dtype = _normalize_dtype(dtype)
    if isinstance(value, Tensor):
        t = value
        if dtype is not None and t._dtype != dtype:
            raise TypeError(f"convert_to_tensor: requested dtype {dtype_name(dtype)} for a "
                            f"Tensor of dtype {dtype_name(t._dtype)}; use dualad.cast to convert")
        return t
    if isinstance(value, (list, tuple)) and _contains_tensor(value):
        return _stack_fn(value, dtype)
    return _from_python(value, dtype)


cdef bint _contains_tensor(object seq, int depth=0) except -1:
    if depth >= MAX_NESTING:
        _too_deep()
    for v in seq:
        if isinstance(v, Tensor):
            return True
        if isinstance(v, (list, tuple)) and _contains_tensor(v, depth + 1):
            return True
    return False


cdef Tensor _like(object value, Tensor ref, str opname):
    """Convert the non-Tensor operand of a binary op to the dtype of the Tensor operand."""
    if ref._kind != K_OTHER and (type(value) is float or type(value) is int
                                 or isinstance(value, np.floating)):
        return _new_scalar(<double>value, ref._kind)
    if isinstance(value, (float, np.floating)) and ref._dtype.kind in "iub":
        raise TypeError(f"{opname}: cannot combine a {dtype_name(ref._dtype)} tensor with the "
                        f"float {value!r}; cast the tensor with dualad.cast first")
    if isinstance(value, (list, tuple)) and _contains_tensor(value):
        return convert_to_tensor(value)     # tensors inside a list: stacked, dtypes checked
    if ref._dtype.kind in "iu" and not isinstance(value, (np.ndarray, np.generic)) \
            and _only_python_ints(value):
        # numpy 2 raises OverflowError for a Python int out of the dtype's bounds
        return _from_python(_np_array(value, dtype=ref._dtype), ref._dtype)
    arr = _np_asarray(value)
    if arr.dtype.kind == "f" and ref._dtype.kind in "iub":
        raise TypeError(f"{opname}: cannot combine a {dtype_name(ref._dtype)} tensor with a "
                        f"{arr.dtype} array; cast one of them with dualad.cast first")
    if arr.dtype.kind not in "biuf":
        if arr.dtype.kind in "uO" and _holds_int(value):
            raise OverflowError(f"{opname}: Python int {value!r:.80} out of bounds for "
                                f"{dtype_name(ref._dtype)}")
        raise TypeError(f"{opname}: unsupported operand of type {type(value).__name__}")
    if ref._dtype.kind in "iu" and arr.dtype.kind in "iu" and not _fits(arr, ref._dtype):
        # numpy 2 refuses out-of-bounds Python ints too, rather than wrapping them
        raise OverflowError(f"{opname}: {value!r:.80} out of bounds for "
                            f"{dtype_name(ref._dtype)}")
    return _from_python(arr, ref._dtype)


def like(value, Tensor ref, str opname="op"):
    """`value` as a Tensor of `ref`'s dtype (the conversion binary ops apply)."""
    if isinstance(value, Tensor):
        return value
    return _like(value, ref, opname)


cdef inline void _check_same_dtype(Tensor a, Tensor b, str opname) except *:
    if a._dtype is not b._dtype and a._dtype != b._dtype:
        if a._dtype is None or b._dtype is None:
            _uninitialized()
        raise TypeError(f"{opname}: operands have different dtypes, {dtype_name(a._dtype)} and "
                        f"{dtype_name(b._dtype)}; dualad does not promote silently, use "
                        f"dualad.cast on one of them")


cpdef Tensor binary(Primitive p, object a, object b):
    """Apply a binary primitive, converting a non-Tensor operand to the other's dtype."""
    cdef Tensor ta, tb
    if isinstance(a, Tensor):
        ta = <Tensor>a
        tb = <Tensor>b if isinstance(b, Tensor) else _like(b, ta, p.name)
    elif isinstance(b, Tensor):
        tb = <Tensor>b
        ta = _like(a, tb, p.name)
    else:
        ta = convert_to_tensor(a)
        tb = _like(b, ta, p.name)
    _check_same_dtype(ta, tb, p.name)
    return run_op(p, (ta, tb), None)


def dtype_name(dtype):
    return np.dtype(dtype).name


# --------------------------------------------------------------------------------------------
# DType: TensorFlow-style dtype constants that compare equal to numpy dtypes
# --------------------------------------------------------------------------------------------

cdef class DType:
    cdef readonly object np

    def __init__(self, dtype):
        self.np = np.dtype(dtype)

    @property
    def name(self):
        return self.np.name

    @property
    def is_floating(self):
        return self.np.kind == "f"

    @property
    def is_integer(self):
        return self.np.kind in "iu"

    def as_numpy_dtype(self):
        return self.np.type

    def __eq__(self, other):
        if isinstance(other, DType):
            return self.np == (<DType>other).np
        try:
            return self.np == np.dtype(other)
        except TypeError:
            return False

    def __hash__(self):
        return hash(self.np)

    def __repr__(self):
        return f"dualad.{self.np.name}"


cdef dict _DTYPES = {}

cdef DType _as_dtype(object npdtype):
    d = _DTYPES.get(npdtype)
    if d is None:
        d = DType(npdtype)
        _DTYPES[npdtype] = d
    return d


def as_dtype(dtype):
    """The DType constant for a numpy dtype, a DType, or a name such as 'float32'."""
    return _as_dtype(_normalize_dtype(dtype))


# --------------------------------------------------------------------------------------------
# Tensor
# --------------------------------------------------------------------------------------------

@cython.freelist(256)
@cython.no_gc  # a Tensor never references a Tensor that references it back (see _set_tangent)
cdef class Tensor:
    """An immutable value: a C double for float scalars, a numpy array otherwise."""

    def __init__(self, *args, **kwargs):
        raise TypeError("make tensors with dualad.constant(...) or dualad.convert_to_tensor(...)")

    cdef object _value(self):
        if self._arr is None:
            if self._dtype is None:
                _uninitialized()
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
        if self._is_scalar:
            return ()
        return self._value().shape

    @property
    def ndim(self):
        return 0 if self._is_scalar else self._arr.ndim

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
        return id(self)

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

    def __matmul__(self, other):
        return _ops_fn["matmul"](self, other)

    def __rmatmul__(self, other):
        return _ops_fn["matmul"](other, self)

    def __neg__(self):
        return run_op(_P_NEG, (self,), None)

    def __pos__(self):
        return self

    def __abs__(self):
        return run_op(_P_ABS, (self,), None)

    def __getitem__(self, key):
        return _ops_fn["getitem"](self, key)

    def __lt__(self, other):
        return binary(_P_CMP["less"], self, other)

    def __le__(self, other):
        return binary(_P_CMP["less_equal"], self, other)

    def __gt__(self, other):
        return binary(_P_CMP["greater"], self, other)

    def __ge__(self, other):
        return binary(_P_CMP["greater_equal"], self, other)

    def __eq__(self, other):
        if other is None:
            return False
        return binary(_P_CMP["equal"], self, other)

    def __ne__(self, other):
        if other is None:
            return True
        return binary(_P_CMP["not_equal"], self, other)

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
    return t._tape_id != 0 or bool(t._more_slots) or bool(t._tangents)


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
        if tr.is_tape and tr.hidden == 0 and tr.recording and (<Tape>tr).watch_accessed_variables:
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
    cdef Variable v = cls.__new__(cls)
    Variable.__init__(v, _tensor_from_pickle(value), trainable=trainable, name=name)
    return v


cdef dict _ufunc_table = {}
cdef dict _array_function_table = {}
cdef dict _ops_fn = {}


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
        self._set_from(_raw_arith(self, t, 1))
        return self if read_value else None

    def assign_sub(self, delta, read_value=True):
        cdef Tensor t = self._checked(delta, "assign_sub")
        if _n_tracing:
            _trace_assign(self, t, ASSIGN_SUB)
        self._set_from(_raw_arith(self, t, -1))
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


cdef Tensor _raw_arith(Tensor a, Tensor b, int sign):
    """a + sign * b outside any tape, the update used by assign_add/assign_sub."""
    if a._is_scalar and b._is_scalar:
        return _new_scalar(a._d + sign * b._d, a._kind)
    if sign > 0:
        return _wrap(np.add(a._value(), b._value()))
    return _wrap(np.subtract(a._value(), b._value()))


cdef Tensor _cast_value(Tensor t, object dtype):
    if dtype is None or t._dtype == dtype:
        return t
    return _wrap(t._value().astype(dtype))


# --------------------------------------------------------------------------------------------
# Primitives and the op call
# --------------------------------------------------------------------------------------------

cdef class Primitive:
    """One differentiable operation: its numpy implementation and derivative rules.

    `vjps[i](g, ans, args, params)` gives the cotangent of input i (None: not differentiable
    there); primitives taking any number of inputs (concat) give one `variadic_vjp(k, g, ans,
    args, params)` instead. `jvp(tangents, ans, args, params)` gives the output tangent from the
    input tangents (None entries for inputs without one). Rules are written in dualad ops, so they are
    themselves recorded and differentiable."""

    def __init__(self, name, impl, vjps=(), jvp=None, differentiable=True):
        self.name = name
        self.impl = impl
        self.vjps = tuple(vjps)
        self.jvp = jvp
        self.code = SCALAR_OPCODES.get(name, OP_NONE)
        self.differentiable = differentiable

    def __repr__(self):
        return f"<dualad.Primitive {self.name}>"

    def __call__(self, *args, **params):
        if not args:
            raise TypeError(f"{self.name}: a primitive needs at least one tensor argument")
        return run_op(self, tuple([a if isinstance(a, Tensor) else convert_to_tensor(a)
                                   for a in args]), params or None)


# dualad.debugging.enable_check_numerics: every op result (forward, and inside gradient
# computations) is checked for NaN and infinity.
cdef bint _check_numerics = False
cdef Primitive _rule_of = None   # the primitive whose derivative rule is running, for messages


def set_check_numerics(bint enabled):
    global _check_numerics
    _check_numerics = enabled


def check_numerics_enabled():
    return _check_numerics


cdef void _numerics_failed(str opname, object value, tuple args, Primitive rule) except *:
    arr = _np_asarray(value)
    what = "NaN" if np.isnan(arr).any() else "infinity"
    where = f"op '{opname}'"
    if rule is None:
        rule = _rule_of
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
    cdef Tracer tracer = None
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
                out = _new_scalar(_scalar_value(p.code, a._d, 0.0), a._kind)
            elif n == 2:
                b = <Tensor>args[1]
                if b._is_scalar and b._kind == a._kind:
                    out = _new_scalar(_scalar_value(p.code, a._d, b._d), a._kind)
    if out is None:
        raw = _call_impl(p, args, params)
        out = _wrap(raw)
    if _check_numerics:
        _check_finite(p, out, args)
    if tracer is not None:
        tracer._op(p, args, params, out)
    if _n_live == 0 or not p.differentiable or (out._kind == K_OTHER
                                                 and out._dtype.kind != "f"):  # float16 goes on
        return out
    _transform(p, args, params, out)
    return out


cdef tuple _read_variables(tuple args, Tracer tracer):
    """Variables among an op's inputs become snapshots of their current value (the residual a
    tape keeps must not change when the Variable is assigned later). Tapes that watch accessed
    variables start watching them here; a trace records the read."""
    cdef Tensor a
    cdef Transformation tr
    if _n_live:
        for tr in _state().stack:
            if tr.is_tape and tr.hidden == 0 and tr.recording and (<Tape>tr).watch_accessed_variables:
                for a in args:
                    if a._is_var and (<Variable>a).trainable:
                        (<Tape>tr)._watch(a)
    cdef list out = []
    cdef Tensor snap
    for a in args:
        if a._is_var:
            snap = (<Variable>a)._snapshot()
            if tracer is not None:
                tracer._read(<Variable>a, snap)
            a = snap
        out.append(a)
    return tuple(out)


# numpy's floating-point error state while an op runs: NaN and inf propagate silently, as in
# TensorFlow (dualad.debugging reports them). np.errstate costs ~1 us per use; setting numpy's
# context variable directly costs ~0.1 us (numpy 2's internals, with errstate as fallback).
try:
    from numpy._core._ufunc_config import _extobj_contextvar as _np_errstate_var, _make_extobj
    _IGNORE_FP_ERRORS = _make_extobj(all="ignore")
except ImportError:
    _np_errstate_var = None


cdef object _call_impl(Primitive p, tuple args, dict params):
    cdef list raws = [(<Tensor>t)._value() for t in args]
    if _np_errstate_var is None:
        with np.errstate(all="ignore"):
            return _call_impl_raw(p, raws, params)
    token = _np_errstate_var.set(_IGNORE_FP_ERRORS)
    try:
        return _call_impl_raw(p, raws, params)
    finally:
        _np_errstate_var.reset(token)


cdef object _call_impl_raw(Primitive p, list raws, dict params):
    try:
        if params:
            return p.impl(*raws, **params)
        return p.impl(*raws)
    except ValueError as e:
        shapes = ", ".join(str(np.shape(r)) for r in raws)
        raise ValueError(f"{p.name}: {e} (input shapes {shapes})") from None


cpdef Tensor unary(Primitive p, Tensor x):
    """Apply a one-input primitive without parameters (the fast path of elementwise ops)."""
    return run_op(p, (x,), None)


def bind(Primitive p, *args, **params):
    """Apply primitive `p` to Tensor arguments (the entry point of ops.py)."""
    if not args:
        raise TypeError(f"{p.name}: a primitive needs at least one tensor argument")
    for a in args:
        if not isinstance(a, Tensor):
            raise TypeError(f"{p.name}: expected Tensors, got {type(a).__name__}")
    return run_op(p, args, params or None)


cdef Primitive _P_ADD, _P_SUB, _P_MUL, _P_DIV, _P_POW, _P_NEG, _P_ABS
cdef dict _P_CMP = {}
cdef object _unbroadcast_fn = None
cdef object _stack_fn = None


def install(dict primitives, dict ops_fns, dict ufuncs, dict array_functions, unbroadcast):
    """Connect the core to the rule table and the public ops (called once by dualad.ops)."""
    global _P_ADD, _P_SUB, _P_MUL, _P_DIV, _P_POW, _P_NEG, _P_ABS, _unbroadcast_fn, _stack_fn
    _P_ADD = primitives["add"]
    _P_SUB = primitives["subtract"]
    _P_MUL = primitives["multiply"]
    _P_DIV = primitives["divide"]
    _P_POW = primitives["pow"]
    _P_NEG = primitives["negative"]
    _P_ABS = primitives["abs"]
    for name in ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal"):
        _P_CMP[name] = primitives[name]
    _ops_fn.update(ops_fns)
    _ufunc_table.update(ufuncs)
    _array_function_table.update(array_functions)
    _unbroadcast_fn = unbroadcast
    _stack_fn = ops_fns["stack_converted"]


# --------------------------------------------------------------------------------------------
# Per-thread transformation stacks
# --------------------------------------------------------------------------------------------

cdef class _ThreadState:
    """One thread's stack of transformations. It lives in a threading.local, so it dies with
    its thread: a thread that ends inside `with tape:` takes that tape with it."""
    cdef list stack
    cdef Tracer tracer      # the trace being taken on this thread (dualad.function), or None

    def __dealloc__(self):
        global _n_live, _n_tracing, _cached_tsid, _cached_state
        if <PyObject*>self == _cached_state:
            _cached_tsid = 0
            _cached_state = NULL
        if self.stack is not None:
            _n_live -= len(self.stack)
        if self.tracer is not None:
            _n_tracing -= 1


cdef object _tls = threading.local()
# The last thread's state, cached by the interpreter's unique thread-state id (OS thread
# idents are reused by new threads; these ids never are). Borrowed: the threading.local owns
# the state, and its __dealloc__ clears the cache.
cdef unsigned long long _cached_tsid = 0
cdef PyObject* _cached_state = NULL
cdef Py_ssize_t _n_live = 0          # transformations on any thread's stack: 0 means no work
cdef Py_ssize_t _n_tracing = 0       # traces being taken on any thread
cdef long long _next_id = 0
cdef set _live_tapes = set()         # ids of tapes not yet released, to recycle stale slot fields


cdef inline _ThreadState _state():
    global _cached_tsid, _cached_state
    cdef unsigned long long tsid = PyThreadState_GetID(PyThreadState_Get())
    if tsid == _cached_tsid and _cached_state != NULL:
        return <_ThreadState>_cached_state
    st = getattr(_tls, "state", None)
    if st is None:
        st = _ThreadState()
        (<_ThreadState>st).stack = []
        _tls.state = st
    _cached_tsid = tsid
    _cached_state = <PyObject*>st
    return st


def live_transformation_count():
    """How many tapes and accumulators are active on all threads together."""
    return _n_live


cdef class paused:
    """Context manager: no tape or accumulator of this thread sees the operations in the block."""
    cdef list _hidden

    def __enter__(self):
        cdef Transformation tr
        self._hidden = list(_state().stack)
        for tr in self._hidden:
            tr.hidden += 1
        return self

    def __exit__(self, *exc):
        cdef Transformation tr
        for tr in self._hidden:
            tr.hidden -= 1
        self._hidden = []
        return False


def active_transformations():
    """The tapes and accumulators active on this thread, outermost first."""
    return tuple(_state().stack)


cdef inline Py_ssize_t _slot_of(Tensor t, long long tape_id):
    if t._tape_id == tape_id:
        return t._slot
    if t._more_slots is not None:
        s = t._more_slots.get(tape_id)
        if s is not None:
            return <Py_ssize_t>s
    return -1


cdef void _set_slot(Tensor t, long long tape_id, Py_ssize_t slot) except *:
    if t._tape_id == 0 or t._tape_id == tape_id or t._tape_id not in _live_tapes:
        t._tape_id = tape_id
        t._slot = slot
        return
    if t._more_slots is None:
        t._more_slots = {}
    elif len(t._more_slots) >= 8:
        # slots of tapes dropped without a gradient: a long-lived tensor (a Variable watched
        # by a new tape every step) must not collect them
        for dead in [k for k in t._more_slots if k not in _live_tapes]:
            del t._more_slots[dead]
    t._more_slots[tape_id] = slot


cdef void _clear_slot(Tensor t, long long tape_id) except *:
    if t._tape_id == tape_id:
        t._tape_id = 0
    elif t._more_slots is not None:
        t._more_slots.pop(tape_id, None)


cdef void _transform(Primitive p, tuple args, dict params, Tensor out) except *:
    cdef _ThreadState st = _state()
    cdef list stack = st.stack
    cdef Py_ssize_t i, n = len(stack)
    cdef Transformation tr
    cdef Tensor a
    if n == 0:
        return
    for i in range(n):
        if i >= len(stack):
            break       # a rule (user code) left a tape or accumulator of this thread
        tr = stack[i]
        if tr.hidden or not tr.recording:
            continue
        if tr.is_tape:
            _record(<Tape>tr, p, args, params, out)
        else:
            _push_tangent(<Accumulator>tr, stack, i, p, args, params, out)


cdef void _record(Tape tape, Primitive p, tuple args, dict params, Tensor out) except *:
    cdef Py_ssize_t n = len(args), k
    cdef Py_ssize_t s0 = -1, s1 = -1
    cdef long long tid = tape.id
    cdef bint found
    cdef list more = None
    s0 = _slot_of(<Tensor>args[0], tid)
    if n > 1:
        s1 = _slot_of(<Tensor>args[1], tid)
    found = s0 >= 0 or s1 >= 0
    if n > 2:
        more = [_slot_of(<Tensor>args[k], tid) for k in range(2, n)]
        for k in range(n - 2):
            if more[k] >= 0:
                found = True
    if not found:
        return
    cdef Entry e = Entry.__new__(Entry)
    e.prim = p
    e.args = args
    e.params = params
    e.out = out
    e.s0 = s0
    e.s1 = s1
    if more is not None:
        e.more_slots = tuple(more)
    e.out_slot = tape._n_slots
    tape._n_slots += 1
    _set_slot(out, tid, e.out_slot)
    tape._entries.append(e)


cdef void _push_tangent(Accumulator acc, list stack, Py_ssize_t level, Primitive p, tuple args,
                        dict params, Tensor out) except *:
    cdef Tensor a
    cdef bint any_tangent = False
    cdef list tangents = []
    cdef object t
    for a in args:
        t = a._tangents.get(acc.id) if a._tangents is not None else None
        if t is not None:
            any_tangent = True
        tangents.append(t)
    if not any_tangent or p.jvp is None:
        return
    # The rule runs at this accumulator's level: it and everything nested inside it do not
    # see the tangent computation, outer levels do (that is what makes nesting correct).
    cdef list inner = stack[level:]
    cdef Transformation tr
    for tr in inner:
        tr.hidden += 1
    try:
        tout = p.jvp(tuple(tangents), out, args, params)
    finally:
        for tr in inner:
            tr.hidden -= 1
    if tout is None:
        return
    if out._tangents is None:
        out._tangents = {}
    out._tangents[acc.id] = tout


@cython.freelist(256)
cdef class Entry:
    """One recorded primitive call: residual inputs, output, and tape slots. The collector
    follows entries: a custom primitive's rules may close over objects that hold the tape."""
    pass


# --------------------------------------------------------------------------------------------
# Transformations: tapes (reverse mode) and accumulators (forward mode)
# --------------------------------------------------------------------------------------------

cdef class Transformation:

    def __cinit__(self):
        global _next_id
        _next_id += 1
        self.id = _next_id
        self.recording = True

    def _push(self):
        global _n_live
        st = _state()
        if self in st.stack:
            raise RuntimeError(f"this {type(self).__name__} is already active; "
                               "a tape or accumulator cannot be entered twice")
        st.stack.append(self)
        _n_live += 1

    def _pop(self):
        global _n_live
        st = _state()
        for i in range(len(st.stack) - 1, -1, -1):
            if st.stack[i] is self:
                del st.stack[i]
                _n_live -= 1
                return True
        return False

    @property
    def active(self):
        return self in _state().stack


cdef class Tape(Transformation):
    """The reverse-mode record. GradientTape (dualad.tape) adds the public API on top."""

    def __cinit__(self, persistent=False, watch_accessed_variables=True):
        self.is_tape = True
        self.persistent = bool(persistent)
        self.watch_accessed_variables = bool(watch_accessed_variables)
        self._entries = []
        self._watched = []
        _live_tapes.add(self.id)

    def __dealloc__(self):
        cdef Tensor t
        if _live_tapes is not None:  # None only at interpreter shutdown
            _live_tapes.discard(self.id)
            if self._watched is not None:
                for t in self._watched:
                    _clear_slot(t, self.id)

    cdef bint _watch(self, Tensor t) except -1:
        if _slot_of(t, self.id) >= 0:
            return False
        _set_slot(t, self.id, self._n_slots)
        self._n_slots += 1
        self._watched.append(t)
        return True

    def _watch_tensor(self, Tensor t):
        """Give `t` a slot on this tape. Returns False if it already had one."""
        if self.released:
            self._reopen()
        return self._watch(t)

    def _reopen(self):
        # A new identity: tensors recorded before the release still carry slot numbers under
        # the old one, which the reopened record hands out again.
        global _next_id
        _next_id += 1
        self.id = _next_id
        self.released = False
        _live_tapes.add(self.id)

    def _has_slot(self, Tensor t):
        return _slot_of(t, self.id) >= 0

    def _watched_tensors(self):
        return list(self._watched)

    @property
    def _n_entries(self):
        return len(self._entries)

    def _release(self):
        """Drop the record; the tape's slots on tensors it watched are cleared."""
        cdef Tensor t
        for t in self._watched:
            _clear_slot(t, self.id)
        self._watched = []
        self._entries = []
        self._n_slots = 0
        self.released = True
        _live_tapes.discard(self.id)

    def _sweep(self, list targets, list seeds, list sources):
        """Backpropagate `seeds` (one per target) through the record and return the gradient
        of each source (None where unconnected).

        The sweep runs at this tape's level: tapes and accumulators nested inside it do not see
        it; outer ones (and this tape, if persistent and recording) do, which is how gradients
        of gradients work. When nothing sees it, the sweep is raw: scalar entries run on C
        doubles and nothing is recorded."""
        cdef list stack = _state().stack
        cdef list hide = []
        cdef Py_ssize_t i
        cdef Transformation tr
        cdef bint raw
        if len(seeds) != len(targets):
            raise ValueError(f"_sweep: {len(seeds)} seeds for {len(targets)} targets")
        for group, what in ((targets, "target"), (seeds, "seed"), (sources, "source")):
            for t in group:
                if not isinstance(t, Tensor):
                    raise TypeError(f"_sweep: every {what} must be a Tensor, got "
                                    f"{type(t).__name__}")
        for i in range(len(stack)):
            if stack[i] is self:
                hide = stack[i + 1:] if self.persistent and self.recording else stack[i:]
                break
        for tr in hide:
            tr.hidden += 1
        try:
            raw = not (_n_tracing and _state().tracer is not None)
            for tr in stack:
                if tr.hidden == 0 and tr.recording:
                    raw = False
                    break
            return _sweep(self, targets, seeds, sources, raw)
        finally:
            for tr in hide:
                tr.hidden -= 1


cdef enum:
    HAS_D = 1       # the slot's gradient (or part of it) is in the C double array
    KEEP = 2        # a requested source: its gradient is kept after use


cdef inline void _acc_d(double* dg, char* fl, Py_ssize_t s, double v, bint f32) noexcept:
    if fl[s] & HAS_D:
        dg[s] = _round(dg[s] + v, f32)
    else:
        dg[s] = v
        fl[s] |= HAS_D


cdef inline Tensor _add(object a, Tensor b):
    if a is None:
        return b
    return run_op(_P_ADD, (a, b), None)


cdef object _take(double* dg, char* fl, list og, Py_ssize_t s, int kind):
    """The gradient accumulated at slot s, as a Tensor (or None); freed unless kept."""
    cdef object g = og[s]
    if fl[s] & HAS_D:
        g = _add(g, _new_scalar(dg[s], kind))
    if not (fl[s] & KEEP):
        og[s] = None
        fl[s] &= ~HAS_D
    return g


cdef Tensor _as_cotangent(object c, Tensor arg, Primitive p, Py_ssize_t k):
    cdef Tensor ct
    if not isinstance(c, Tensor):
        raise TypeError(f"the derivative rule of {p.name} returned {type(c).__name__} for input {k}")
    ct = c
    if ct._is_scalar and arg._is_scalar:
        return ct
    if ct.shape != arg.shape:
        ct = _unbroadcast_fn(ct, arg.shape)
    return ct


cdef inline Py_ssize_t _slot_below(Tensor t, long long tape_id, Py_ssize_t n):
    """t's slot on the tape if it is one of the first n (those the sweep has buffers for), else
    -1. A tensor watched during the sweep (by a derivative rule, a custom gradient) gets a
    later slot, so the targets of this sweep do not depend on it."""
    cdef Py_ssize_t s = _slot_of(t, tape_id)
    return s if s < n else -1


cdef void _bad_record(Tape tape) except *:
    raise RuntimeError(f"GradientTape: the record of tape {tape.id} names a slot beyond its "
                       f"{tape._n_slots} slots (it was changed during the sweep); this is a bug")


cdef list _sweep(Tape tape, list targets, list seeds, list sources, bint raw):
    # Everything indexing the buffers is checked against n, fixed here: derivative rules run
    # Python code (custom gradients, user primitives) that can watch tensors and record new
    # entries while the sweep runs. Entries recorded from now on are past n_entries and never
    # visited; the ones visited were recorded before, with slots below n.
    global _rule_of
    cdef Primitive outer_rule = None
    cdef Py_ssize_t n = tape._n_slots, i, k, so, sk, nargs
    cdef list entries = tape._entries
    cdef Py_ssize_t n_entries = len(entries)
    cdef list source_slots
    sources = list(sources)     # a callback may change the caller's list; indices must not
    source_slots = [_slot_below(<Tensor>t, tape.id, n) for t in sources]
    cdef double* dg = <double*>calloc(n + 1, sizeof(double))
    cdef char* fl = <char*>calloc(n + 1, sizeof(char))
    cdef list og
    cdef Entry e
    cdef Primitive p
    cdef Tensor a, b, t, seed, ct
    cdef double g, da, db
    cdef bint f32
    cdef object gobj, rule, c
    cdef list results = []
    if dg == NULL or fl == NULL:
        free(dg)
        free(fl)
        raise MemoryError("not enough memory for the gradient sweep")
    og = [None] * n
    try:
        for sk in source_slots:
            if sk >= 0:
                fl[sk] |= KEEP
        for k in range(len(targets)):
            t = targets[k]
            so = _slot_below(t, tape.id, n)
            if so < 0:
                continue
            seed = seeds[k]
            if raw and seed._is_scalar:
                _acc_d(dg, fl, so, seed._d, seed._kind == K_F32)
            else:
                og[so] = _add(og[so], seed)
        for i in range(n_entries - 1, -1, -1):
            e = <Entry>entries[i]
            so = e.out_slot
            if so >= n or e.s0 >= n or e.s1 >= n:
                _bad_record(tape)
            if not (fl[so] & HAS_D) and og[so] is None:
                continue
            p = e.prim
            nargs = len(e.args)
            # C fast path: scalar primitive, gradient held as a double, nothing watching
            if raw and p.code != OP_NONE and og[so] is None and e.out._is_scalar:
                a = <Tensor>e.args[0]
                if a._is_scalar and (nargs == 1 or (<Tensor>e.args[1])._is_scalar):
                    b = <Tensor>e.args[1] if nargs == 2 else a
                    f32 = e.out._kind == K_F32
                    g = dg[so]
                    if not (fl[so] & KEEP):
                        fl[so] &= ~HAS_D
                    _scalar_vjp(p.code, g, a._d, b._d, e.out._d, f32, &da, &db)
                    if _check_numerics and not (isfinite(da) and isfinite(db)):
                        _numerics_failed("multiply", da if not isfinite(da) else db, e.args, p)
                    if e.s0 >= 0:
                        _acc_d(dg, fl, e.s0, da, f32)
                    if nargs == 2 and e.s1 >= 0:
                        _acc_d(dg, fl, e.s1, db, f32)
                    continue
            gobj = _take(dg, fl, og, so, e.out._kind)
            for k in range(nargs):
                if k == 0:
                    sk = e.s0
                elif k == 1:
                    sk = e.s1
                else:
                    sk = e.more_slots[k - 2]
                    if sk >= n:
                        _bad_record(tape)
                if sk < 0:
                    continue
                if _check_numerics:
                    outer_rule, _rule_of = _rule_of, p
                try:
                    if p.variadic_vjp is not None:
                        c = p.variadic_vjp(k, gobj, e.out, e.args, e.params)
                    else:
                        rule = p.vjps[k] if k < len(p.vjps) else None
                        if rule is None:
                            continue
                        c = rule(gobj, e.out, e.args, e.params)
                finally:
                    if _check_numerics:
                        _rule_of = outer_rule
                if c is None:
                    continue
                ct = _as_cotangent(c, <Tensor>e.args[k], p, k)
                if raw and ct._is_scalar and og[sk] is None:
                    _acc_d(dg, fl, sk, ct._d, ct._kind == K_F32)
                else:
                    og[sk] = _add(og[sk], ct)
        for k in range(len(sources)):
            sk = source_slots[k]
            results.append(None if sk < 0 else _take(dg, fl, og, sk, (<Tensor>sources[k])._kind))
        return results
    finally:
        free(dg)
        free(fl)


cdef Tensor _plain_copy(Tensor t):
    cdef Tensor c = Tensor.__new__(Tensor)
    c._arr = t._arr
    c._d = t._d
    c._is_scalar = t._is_scalar
    c._kind = t._kind
    c._dtype = t._dtype
    if _n_tracing:
        _trace_alias(c, t)
    return c


cpdef bint is_float(Tensor t):
    return t._kind != K_OTHER or t._dtype.kind == "f"


cpdef Tensor filled_like(Tensor t, double value, object dtype=None):
    """A constant tensor shaped like `t` (of `dtype`, default t's dtype), not recorded."""
    cdef object dt = t._dtype if dtype is None else _normalize_dtype(dtype)
    cdef int kind = _kind_of(dt)
    if t._is_scalar and kind != K_OTHER:
        return _new_scalar(value, kind)
    return _wrap(np.full(t.shape, value, dtype=dt))


cpdef Tensor float_tensor(object x, str opname):
    """`x` as a Tensor, which must have a float dtype (the check of float-only ops)."""
    cdef Tensor t = x if isinstance(x, Tensor) else convert_to_tensor(x)
    if t._kind == K_OTHER and t._dtype.kind != "f":
        raise TypeError(f"{opname}: expected a float tensor, got {t._dtype.name}; "
                        "cast it with dualad.cast first")
    return t


cdef class Accumulator(Transformation):
    """The forward-mode state. ForwardAccumulator (dualad.tape) adds the public API."""

    def __cinit__(self, *args, **kwargs):
        self.is_tape = False
        self._primals = []

    def _set_tangent(self, Tensor primal, Tensor tangent):
        # Tensors are not followed by the cycle collector: a tangent must never lead back to
        # its primal, so a caller's tangent is stored as a fresh tensor without tangents.
        tangent = _plain_copy(tangent)
        if primal._tangents is None:
            primal._tangents = {}
        primal._tangents[self.id] = tangent
        self._primals.append(primal)

    def _tangent_of(self, Tensor t):
        if t._tangents is None:
            return None
        return t._tangents.get(self.id)

    def __dealloc__(self):
        # the primals keep no tangent of a dead accumulator
        cdef Tensor t
        if self._primals is not None:
            for t in self._primals:
                if t._tangents is not None:
                    t._tangents.pop(self.id, None)


# ============================================================================================
# Tracing and replay (dualad.function)
# ============================================================================================
# A trace is the linear program of one run of a function: every primitive call (those of
# derivative rules included, so tapes inside the function become explicit backward ops), every
# read and assignment of a Variable, every constant, and a guard for every Python decision
# taken on a traced value. Runs that took different decisions share their common prefix in a
# tree whose branches are the guards' outcomes; a replay walks it with no Python per op.

cdef enum:
    I_OP = 0
    I_READ = 1
    I_ASSIGN = 2
    I_GUARD = 3
    I_CONST = 4
    I_LOOP = 5

cdef enum:
    ASSIGN_SET = 0
    ASSIGN_ADD = 1
    ASSIGN_SUB = 2

# Which slot references of an instruction in a loop body advance with the iteration
# (by the loop's slot stride); the others name values computed before the loop.
cdef enum:
    SH_A0 = 1
    SH_A1 = 2
    SH_OUT = 4


from libc.stdlib cimport realloc

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


# Instructions are followed by the cycle collector (a custom primitive's closures can lead back
# to the object owning the program) but never cleared by it: a packed Node borrows their
# Variables, so an Instr keeps its fields until it is freed. Nothing outside the tracer can
# build or change one (no pickling, no constructor), so packing validates them once.
@cython.final
@cython.no_gc_clear
@cython.auto_pickle(False)
cdef class Instr:
    """One instruction of a traced program."""
    cdef readonly int kind
    cdef Primitive prim
    cdef dict params
    cdef tuple ins              # argument slots
    cdef tuple ins_shift        # in a loop body: per argument, 1 if it advances per iteration
    cdef Py_ssize_t a0, a1      # the first two argument slots (-1 if absent)
    cdef readonly Py_ssize_t out
    cdef int sh                 # SH_* bits, in a loop body
    cdef Variable var           # a read or assignment of a Variable the program holds, or
    cdef Py_ssize_t vindex      # (var None) of the call's vindex-th Variable argument
    cdef int mode
    cdef readonly object expected   # a guard's outcome in the traced run (bool or int)
    cdef Tensor value           # a constant
    cdef object body            # a loop's body (a Node of straight-line instructions)
    cdef readonly Py_ssize_t count, stride   # a loop's iterations and slots per iteration

    @property
    def slot(self):
        return self.a0

    def __repr__(self):
        names = {I_OP: "op", I_READ: "read", I_ASSIGN: "assign", I_GUARD: "guard",
                 I_CONST: "const", I_LOOP: "loop"}
        detail = self.prim.name if self.kind == I_OP and self.prim is not None else ""
        if self.kind == I_LOOP:
            detail = f"x{self.count} of {len(self.body.instrs)} instructions"
        return f"<Instr {names[self.kind]} {detail} in={self.ins} out={self.out}>"


    def __init__(self, *args, **kwargs):
        raise TypeError("dualad._core.Instr: instructions are made by the tracer only")


cdef Instr _instr(int kind):
    cdef Instr i = Instr.__new__(Instr)
    i.kind = kind
    i.a0 = -1
    i.a1 = -1
    i.out = -1
    i.vindex = -1
    return i


cdef Instr _instr_copy(Instr x):
    """A copy of x (a loop body gets its own instructions: the traced ones are never changed
    once recorded, so a Node packed from them stays valid)."""
    cdef Instr i = _instr(x.kind)
    i.prim = x.prim
    i.params = x.params
    i.ins = x.ins
    i.ins_shift = x.ins_shift
    i.a0 = x.a0
    i.a1 = x.a1
    i.out = x.out
    i.sh = x.sh
    i.var = x.var
    i.vindex = x.vindex
    i.mode = x.mode
    i.expected = x.expected
    i.value = x.value
    i.body = x.body
    i.count = x.count
    i.stride = x.stride
    return i


cdef int _shift_of(Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t stride):
    """How a slot reference changes from one iteration to the next: 0 (fixed), 1 (advances by
    the stride), -1 (neither: the iterations differ)."""
    if r0 == r1:
        return 0
    if r1 - r0 == stride:
        return 1
    return -1


cdef bint _same_value(Tensor a, Tensor b):
    if a._is_scalar or b._is_scalar:
        return a._is_scalar and b._is_scalar and a._kind == b._kind and a._d == b._d
    return (a._dtype == b._dtype and a._arr.shape == b._arr.shape
            and a._arr.tobytes() == b._arr.tobytes())


cdef list _iteration_shifts(list instrs, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t n,
                            Py_ssize_t stride):
    """If the n instructions at i1 repeat those at i0 one iteration later (same operations on
    slots that are either the same or advanced by `stride`), the SH_* bits and per-argument
    shifts of each; else None. Bodies with guards or loops are not compressed."""
    cdef list out = []
    cdef Instr x, y
    cdef Py_ssize_t k, j
    cdef int sh, f
    for k in range(n):
        x = instrs[i0 + k]
        y = instrs[i1 + k]
        if x.kind != y.kind or x.kind == I_GUARD or x.kind == I_LOOP:
            return None
        if _shift_of(x.out, y.out, stride) != 1:
            return None
        sh = SH_OUT
        shifts = None
        if x.kind == I_OP:
            if x.prim is not y.prim or len(x.ins) != len(y.ins):
                return None
            try:
                if x.params != y.params:
                    return None
            except Exception:   # parameters that do not compare (arrays): not the same
                return None
            shifts = []
            for j in range(len(x.ins)):
                f = _shift_of(x.ins[j], y.ins[j], stride)
                if f < 0:
                    return None
                shifts.append(f)
                if f and j < 2:
                    sh |= SH_A0 if j == 0 else SH_A1
            shifts = tuple(shifts)
        elif x.kind == I_CONST:
            if not _same_value(x.value, y.value):
                return None
        elif x.kind == I_READ:
            if x.var is not y.var or x.vindex != y.vindex:
                return None
        elif x.kind == I_ASSIGN:
            if x.var is not y.var or x.vindex != y.vindex or x.mode != y.mode:
                return None
            f = _shift_of(x.a0, y.a0, stride)
            if f < 0:
                return None
            if f:
                sh |= SH_A0
        out.append((sh, shifts))
    return out


@cython.auto_pickle(False)
cdef class Tracer:
    """Collects the program of one run (see dualad.function)."""

    def __cinit__(self):
        self._slot_of = {}
        self._keep = []
        self.instrs = []
        self.consts = {}
        self._const_slots = {}
        self._reads = {}
        self._var_args = {}
        self.n_slots = 0

    cdef Py_ssize_t _new_slot(self, Tensor t) except -1:
        cdef Py_ssize_t s = self.n_slots
        self.n_slots += 1
        self._slot_of[id(t)] = s
        self._keep.append(t)
        return s

    cdef Py_ssize_t _slot(self, Tensor t) except -1:
        """The slot holding `t`; a Variable is read, any other unseen tensor is a constant."""
        cdef object s = self._slot_of.get(id(t))
        cdef Instr i
        cdef Tensor snap
        if s is not None:
            return s
        if t._is_var:
            snap = (<Variable>t)._snapshot()
            self._read(<Variable>t, snap)
            return self._slot_of[id(snap)]
        if t._is_scalar:
            # equal scalar constants share one slot (`x * 2` makes a new 2 each time)
            key = (t._kind, t._d, copysign(1.0, t._d))
            s = self._const_slots.get(key)
            if s is not None:
                self._slot_of[id(t)] = s
                self._keep.append(t)
                return s
            self._const_slots[key] = self.n_slots
        i = _instr(I_CONST)
        i.value = t
        i.out = self._new_slot(t)
        self.consts[i.out] = t
        self.instrs.append(i)
        return i.out

    cdef bint _derived(self, Tensor t):
        s = self._slot_of.get(id(t))
        return s is not None and s not in self.consts

    def input(self, Tensor t not None):
        """Register an argument of the function; inputs take the first slots, in order."""
        if self.n_slots != len(self._keep) or self.instrs:
            raise RuntimeError("Tracer.input: inputs must be registered before anything else")
        return self._new_slot(t)

    def variable_input(self, Variable v not None):
        """Register a Variable argument of the function: the program names it by its index
        (in registration order) instead of holding it, and each replay is given the call's."""
        if self.instrs:
            raise RuntimeError("Tracer.variable_input: inputs must be registered before "
                               "anything else")
        return self._var_args.setdefault(id(v), len(self._var_args))

    def output(self, Tensor t not None):
        """The slot of a tensor the function returns."""
        return self._slot(t)

    def mark(self):
        """The position of the trace (instructions, slots): dualad.range marks each iteration."""
        return (len(self.instrs), self.n_slots)

    def compress_loop(self, list marks):
        """Replace runs of iterations that repeat one another by loop instructions.

        marks[k] is the mark() taken at the start of iteration k, the last one at the loop's
        end. Each iteration keeps its own slots (the stride apart), so values computed in the
        loop stay addressable after it; only the instructions are shared."""
        cdef Py_ssize_t n_it, k, j, size, stride
        cdef list shifts, nxt, rebuilt, pos, at
        cdef list instrs
        cdef Instr loop, x
        cdef Node body
        if marks is None:
            raise TypeError("Tracer.compress_loop: marks must be a list of mark() values")
        # the marks as ints first (converting them may run Python code), then a snapshot of
        # the instructions they must fit: every index below is proven in range against it
        pos = []
        at = []
        for m in marks:
            if not isinstance(m, tuple) or len(m) != 2:
                raise TypeError("Tracer.compress_loop: each mark must be a (position, slots) "
                                "pair from mark()")
            pos.append(<Py_ssize_t>m[0])
            at.append(<Py_ssize_t>m[1])
        instrs = list(self.instrs)
        n_it = len(pos) - 1
        for k in range(n_it + 1):
            if (pos[k] < (pos[k - 1] if k else 0) or pos[k] > len(instrs)
                    or at[k] < (at[k - 1] if k else 0) or at[k] > self.n_slots):
                raise ValueError("Tracer.compress_loop: the marks are not increasing positions "
                                 "of this trace")
        if n_it < 2 or pos[n_it] != len(instrs):
            return
        rebuilt = instrs[:pos[0]]
        k = 0
        while k < n_it:
            size = pos[k + 1] - pos[k]
            stride = at[k + 1] - at[k]
            shifts = None
            j = k + 1
            while j < n_it and size > 0 and pos[j + 1] - pos[j] == size \
                    and at[j + 1] - at[j] == stride:
                nxt = _iteration_shifts(instrs, pos[j - 1], pos[j], size, stride)
                if nxt is None or (shifts is not None and nxt != shifts):
                    break
                shifts = nxt
                j += 1
            if j - k < 2:
                rebuilt.extend(instrs[pos[k]:pos[k + 1]])
                k += 1
                continue
            body = Node()
            body.instrs = [_instr_copy(<Instr?>x) for x in instrs[pos[k]:pos[k + 1]]]
            for x, (sh, ins_shift) in zip(body.instrs, shifts):
                x.sh = sh
                x.ins_shift = ins_shift
            loop = _instr(I_LOOP)
            loop.body = body
            loop.count = j - k
            loop.stride = stride
            rebuilt.append(loop)
            k = j
        self.instrs[:] = rebuilt

    cdef void _op(self, Primitive p, tuple args, dict params, Tensor out) except *:
        cdef Instr i = _instr(I_OP)
        i.prim = p
        i.params = params
        i.ins = tuple([self._slot(<Tensor>a) for a in args])
        for s in i.ins:
            if s not in self.consts:
                break
        else:
            # constant folding: an op of constants gives the same value on every replay
            self._slot(out)
            return
        i.a0 = i.ins[0]
        if len(i.ins) > 1:
            i.a1 = i.ins[1]
        i.out = self._new_slot(out)
        self.instrs.append(i)

    cdef void _read(self, Variable v, Tensor snap) except *:
        # a Variable not assigned since its last read holds the same value: reuse that slot
        s = self._reads.get(id(v))
        if s is not None:
            self._slot_of[id(snap)] = s
            self._keep.append(snap)
            return
        cdef Instr i = _instr(I_READ)
        _set_var(self, i, v)
        i.out = self._new_slot(snap)
        self._reads[id(v)] = i.out
        self._keep.append(v)   # its id names it in _reads
        self.instrs.append(i)


cdef int _set_var(Tracer tr, Instr i, Variable v) except -1:
    """Name v in instruction i: by argument index if it is a Variable argument, else itself."""
    k = tr._var_args.get(id(v))
    if k is None:
        i.var = v
    else:
        i.vindex = k
    return 0


def begin_trace():
    """Start taking a trace on this thread (dualad.function); returns the Tracer."""
    global _n_tracing
    st = _state()
    if st.tracer is not None:
        raise RuntimeError("a trace is already being taken on this thread")
    st.tracer = Tracer()
    _n_tracing += 1
    return st.tracer


def end_trace():
    global _n_tracing
    st = _state()
    if st.tracer is not None:
        st.tracer = None
        _n_tracing -= 1


def current_tracer():
    """The Tracer taking a trace on this thread, or None."""
    return _state().tracer if _n_tracing else None


def tracing():
    """True while a trace is being taken on this thread."""
    return _n_tracing > 0 and _state().tracer is not None


cdef inline Tracer _tracer():
    return _state().tracer


cdef void _trace_alias(Tensor copy, Tensor orig) except *:
    cdef Tracer tr = _tracer()
    if tr is None:
        return
    s = tr._slot_of.get(id(orig))
    if s is not None:
        tr._slot_of[id(copy)] = s
        tr._keep.append(copy)


cdef void _trace_impure(str why) except *:
    cdef Tracer tr = _tracer()
    if tr is not None and tr.impure is None:
        tr.impure = why


def mark_impure(str why):
    """Make the trace being taken on this thread run eagerly instead, for this reason."""
    _trace_impure(why)


cdef void _trace_concrete(Tensor t, str what) except *:
    cdef Tracer tr = _tracer()
    if tr is not None and tr.impure is None and (t._is_var or tr._derived(t)):
        tr.impure = f"{what} reads a traced value into Python"


cdef void _trace_guard(Tensor t, object outcome) except *:
    cdef Tracer tr = _tracer()
    cdef Instr i
    if tr is None or not (t._is_var or tr._derived(t)):
        return
    i = _instr(I_GUARD)
    i.a0 = tr._slot(t)  # a Variable is read here, so the guard sees its value at replay
    i.expected = outcome
    tr.instrs.append(i)


cdef void _trace_assign(Variable v, Tensor value, int mode) except *:
    cdef Tracer tr = _tracer()
    cdef Instr i
    if tr is None:
        return
    i = _instr(I_ASSIGN)
    _set_var(tr, i, v)
    i.mode = mode
    i.a0 = tr._slot(value)
    tr._reads.pop(id(v), None)
    i.out = tr.n_slots      # the Variable's new value, for assign_add/assign_sub
    tr.n_slots += 1
    tr.instrs.append(i)


cdef enum:
    S_OP = 0
    S_CONST = 1
    S_READ = 2
    S_ASSIGN = 3
    S_LOOP = 4

ctypedef struct _Step:
    # An instruction packed for the replay loop: contiguous, so long programs stream through
    # the cache instead of chasing one Python object per instruction.
    int kind                # S_*
    int code                # S_OP: scalar opcode if it may run on C doubles; S_ASSIGN: mode
    int nargs
    int sh                  # SH_* bits (loop bodies)
    Py_ssize_t a0, a1, out
    Py_ssize_t index        # the Instr in Node.instrs, for everything the C path cannot do
    double c                # S_CONST: a float scalar's value
    signed char ck          # S_CONST: 1 float32 scalar, 2 float64 scalar, 0 any other value
    int vindex              # S_READ/S_ASSIGN with var NULL: the replay's vindex-th Variable argument
    PyObject* var           # S_READ/S_ASSIGN: the Variable (owned by the Instr), or NULL


cdef int _need_of(Py_ssize_t s, Py_ssize_t* need) except -1:
    """Count slot reference s towards a node's need (the buffer size it must find)."""
    if s < 0:
        raise ValueError(f"dualad.function: negative slot {s} in a program")
    if s >= need[0]:
        need[0] = s + 1
    return 0


cdef class Node:
    """A branch of a program tree: straight-line instructions, then a guard choosing the next
    branch by its outcome, or (at a leaf) the slots of the function's outputs.

    function.py fills `instrs`, `guard`, `out_slots` and `children` before the node is
    replayed. The first replay packs it: the instructions are validated and frozen, with the
    number of slots they reference, and from then on only `children` may change (new paths)."""
    cdef readonly list instrs
    cdef Instr _guard_in
    cdef readonly dict children
    cdef tuple _out_in
    cdef public object finish      # Python-side: builds the function's result at a leaf
    # frozen when packed: replay reads only these
    cdef tuple _code               # the Instrs the steps index
    cdef Instr _guard
    cdef tuple _outs
    cdef _Step* steps
    cdef Py_ssize_t n_steps        # -1 until packed
    cdef Py_ssize_t need           # slots referenced by the steps, guard and outputs (max + 1)
    cdef Py_ssize_t need_shift     # in a loop body: max + 1 over the references that advance
    cdef Py_ssize_t need_vars      # Variable arguments referenced (max index + 1)
    cdef _Slots spare              # the root's slot buffer, reused by the next replay

    def __cinit__(self):
        self.instrs = []
        self.children = {}
        self._out_in = ()
        self.steps = NULL
        self.n_steps = -1

    def __dealloc__(self):
        free(self.steps)

    @property
    def guard(self):
        return self._guard_in

    @guard.setter
    def guard(self, Instr guard):
        self._frozen("guard")
        self._guard_in = guard

    @property
    def out_slots(self):
        return self._out_in

    @out_slots.setter
    def out_slots(self, tuple out_slots not None):
        self._frozen("out_slots")
        self._out_in = out_slots

    @property
    def slots_needed(self):
        """Slots a replay of this node needs (known once packed, else None)."""
        return self.need if self.n_steps >= 0 else None

    def _frozen(self, what):
        if self.n_steps >= 0:
            raise AttributeError(f"Node.{what}: a node cannot change once it has been replayed")

    cdef int _pack(self, bint body) except -1:
        """Validate and freeze the node, and pack its instructions for the replay loop.

        Python code may run meanwhile (the collector), so everything is built in locals and
        published at the end in one step: another thread sees the node packed or not at all."""
        cdef tuple code = tuple(self.instrs)
        cdef Instr guard = self._guard_in
        cdef tuple outs = self._out_in
        cdef Py_ssize_t n = len(code), i, j, nargs, s, reach
        cdef Py_ssize_t need = 0, need_shift = 0, need_vars = 0
        cdef Instr ins
        cdef Node loop_body
        cdef _Step* st
        cdef _Step* steps = <_Step*>calloc(n + 1, sizeof(_Step))
        if steps == NULL:
            raise MemoryError("not enough memory to pack the program")
        try:
            for i in range(n):
                if not isinstance(code[i], Instr):
                    raise TypeError(f"dualad.function: {type(code[i]).__name__} in a "
                                    "program's instructions")
                ins = <Instr>code[i]
                st = &steps[i]
                st.index = i
                st.a0 = -1
                st.a1 = -1
                if not (I_OP <= ins.kind <= I_ASSIGN or ins.kind == I_CONST
                        or (ins.kind == I_LOOP and not body)):
                    # a body is straight-line code (compress_loop never nests loops); guards
                    # end a node, they are not among its instructions
                    raise ValueError(f"dualad.function: unexpected instruction {ins!r} in a "
                                     f"{'loop body' if body else 'branch'}")
                st.out = ins.out
                if ins.kind != I_LOOP:
                    _need_of(ins.out, &need)
                    if body and ins.sh & SH_OUT:
                        _need_of(ins.out, &need_shift)
                if ins.kind == I_OP:
                    if ins.prim is None or ins.ins is None or (
                            ins.ins_shift is not None and len(ins.ins_shift) != len(ins.ins)):
                        raise ValueError(f"dualad.function: malformed instruction {ins!r}")
                    st.kind = S_OP
                    nargs = len(ins.ins)
                    for j in range(nargs):
                        s = ins.ins[j]
                        _need_of(s, &need)
                        if ins.ins_shift is not None and ins.ins_shift[j]:
                            if j < 2:
                                st.sh |= SH_A0 if j == 0 else SH_A1
                            if body:
                                _need_of(s, &need_shift)
                    if nargs >= 1:
                        st.a0 = ins.ins[0]
                    if nargs >= 2:
                        st.a1 = ins.ins[1]
                    if ins.prim.code != OP_NONE and 1 <= nargs <= 2:
                        st.code = ins.prim.code
                        st.nargs = nargs
                elif ins.kind == I_CONST:
                    if ins.value is None:
                        raise ValueError(f"dualad.function: malformed instruction {ins!r}")
                    st.kind = S_CONST
                    if ins.value._is_scalar:
                        st.c = ins.value._d
                        st.ck = 1 if ins.value._kind == K_F32 else 2
                elif ins.kind == I_READ or ins.kind == I_ASSIGN:
                    if ((ins.var is None) == (ins.vindex < 0) or ins.vindex >= 1 << 30
                            or not (ASSIGN_SET <= ins.mode <= ASSIGN_SUB)):
                        raise ValueError(f"dualad.function: malformed instruction {ins!r}")
                    st.kind = S_READ if ins.kind == I_READ else S_ASSIGN
                    st.code = ins.mode
                    if ins.var is not None:
                        st.var = <PyObject*>ins.var
                    else:
                        st.vindex = <int>ins.vindex
                        need_vars = max(need_vars, ins.vindex + 1)
                    if ins.kind == I_ASSIGN:
                        st.a0 = ins.a0
                        _need_of(ins.a0, &need)
                        if ins.sh & SH_A0:
                            st.sh |= SH_A0
                            if body:
                                _need_of(ins.a0, &need_shift)
                elif ins.kind == I_LOOP:
                    if not isinstance(ins.body, Node) or ins.count < 0 or ins.stride < 0:
                        raise ValueError(f"dualad.function: malformed instruction {ins!r}")
                    loop_body = <Node>ins.body
                    if loop_body.n_steps < 0:
                        loop_body._pack(True)
                    st.kind = S_LOOP
                    st.out = -1
                    need = max(need, loop_body.need)
                    need_vars = max(need_vars, loop_body.need_vars)
                    if ins.count > 0 and loop_body.need_shift > 0:
                        # the last iteration's advancing references: need_shift + (count-1)*stride
                        if ins.stride and (ins.count - 1) > (PY_SSIZE_T_MAX // 2
                                                             - loop_body.need_shift) // ins.stride:
                            raise MemoryError("dualad.function: a loop addresses too many slots")
                        reach = loop_body.need_shift + (ins.count - 1) * ins.stride
                        need = max(need, reach)
                if st.kind != S_LOOP and ins.sh & SH_OUT:
                    st.sh |= SH_OUT
            if guard is not None:
                if body or guard.kind != I_GUARD or not isinstance(guard.expected, (bool, int)):
                    raise ValueError(f"dualad.function: malformed guard {guard!r}")
                _need_of(guard.a0, &need)
            outs = tuple([<Py_ssize_t>o for o in outs])
            for s in outs:
                if s != -1:
                    _need_of(s, &need)
        except BaseException:
            free(steps)
            raise
        if self.n_steps >= 0:   # packed by another thread meanwhile: theirs stands
            free(steps)
            return 0
        self._code = code
        self._guard = guard
        self._outs = outs
        self.need = need
        self.need_shift = need_shift
        self.need_vars = need_vars
        self.steps = steps
        self.n_steps = n
        return 0


@cython.final
cdef class _Slots:
    """The values of a replay: float scalars as C doubles, other values as Tensors."""
    cdef double* dv
    cdef signed char* dk        # -1 unset, 0 Tensor in ov, 1 float32 double, 2 float64 double
    cdef PyObject** ov          # owned references where dk == 0
    cdef Py_ssize_t n

    def __cinit__(self, Py_ssize_t n):
        if n < 0 or n > PY_SSIZE_T_MAX // 16:
            raise MemoryError(f"dualad.function: cannot replay a program of {n} slots")
        self.n = n
        self.dv = <double*>malloc((n + 1) * sizeof(double))
        self.dk = <signed char*>malloc((n + 1) * sizeof(signed char))
        self.ov = <PyObject**>malloc((n + 1) * sizeof(PyObject*))
        if self.dv == NULL or self.dk == NULL or self.ov == NULL:
            raise MemoryError("not enough memory to replay the program")
        memset(self.dk, -1, (n + 1) * sizeof(signed char))

    cdef int grow(self, Py_ssize_t n) except -1:
        """Make room for n slots, keeping the values held (a path longer than the buffer)."""
        cdef void* p
        if n <= self.n:
            return 0
        if n > PY_SSIZE_T_MAX // 16:
            raise MemoryError(f"dualad.function: cannot replay a program of {n} slots")
        p = realloc(self.dv, (n + 1) * sizeof(double))
        if p == NULL:
            raise MemoryError("not enough memory to replay the program")
        self.dv = <double*>p
        p = realloc(self.ov, (n + 1) * sizeof(PyObject*))
        if p == NULL:
            raise MemoryError("not enough memory to replay the program")
        self.ov = <PyObject**>p
        p = realloc(self.dk, (n + 1) * sizeof(signed char))
        if p == NULL:
            raise MemoryError("not enough memory to replay the program")
        self.dk = <signed char*>p
        memset(self.dk + self.n + 1, -1, (n - self.n) * sizeof(signed char))
        self.n = n
        return 0

    cdef void clear(self):
        cdef Py_ssize_t i
        for i in range(self.n + 1):
            if self.dk[i] == 0:
                Py_DECREF(<object>self.ov[i])
        memset(self.dk, -1, (self.n + 1) * sizeof(signed char))

    def __dealloc__(self):
        if self.dk != NULL and self.ov != NULL:
            self.clear()
        free(self.dv)
        free(self.dk)
        free(self.ov)


cdef inline Tensor _slot_get(_Slots v, Py_ssize_t s):
    cdef signed char k = v.dk[s]
    if k > 0:
        return _new_scalar(v.dv[s], K_F32 if k == 1 else K_F64)
    if k < 0:
        raise RuntimeError(f"dualad.function: slot {s} read before it was written (a bug in "
                           "the trace)")
    return <Tensor>v.ov[s]


cdef inline void _slot_put(_Slots v, Py_ssize_t s, Tensor t):
    if v.dk[s] == 0:
        Py_DECREF(<object>v.ov[s])
    if t._is_scalar:
        v.dv[s] = t._d
        v.dk[s] = 1 if t._kind == K_F32 else 2
    else:
        Py_INCREF(t)
        v.ov[s] = <PyObject*>t
        v.dk[s] = 0


cdef inline void _slot_copy(_Slots v, Py_ssize_t dst, Py_ssize_t src):
    if v.dk[src] == 0:
        _slot_put(v, dst, <Tensor>v.ov[src])
    else:
        v.dv[dst] = v.dv[src]
        v.dk[dst] = v.dk[src]


cdef long long _replay_generation = 0


@cython.final
@cython.freelist(8)
cdef class _Staging:
    """The Variable assignments one replay has staged (committed only when it completes).

    The fast path uses the Variable's own fields: `_stage_gen` is the generation of the one
    live replay that stages it there (0: none), `_stage_slot` the slot of its staged value. A
    replay that finds them held by another live replay (another thread, or a replay nested in
    an op of this one) stages that Variable in its side table instead."""
    cdef long long gen
    cdef tuple variables            # the call's Variable arguments (Instr.vindex)
    cdef list owned                 # Variables whose fields this replay holds
    cdef dict side                  # id(Variable) -> (Variable, slot); None until needed


cdef inline Py_ssize_t _staged_slot(_Staging stg, Variable var) except -2:
    """The slot of var's value staged by this replay, or -1 if it has staged none."""
    if var._stage_gen == stg.gen:
        return var._stage_slot
    if stg.side is None:
        return -1
    return _side_slot(stg, var)


cdef Py_ssize_t _side_slot(_Staging stg, Variable var) except -2:
    e = stg.side.get(id(var))
    return -1 if e is None else (<tuple>e)[1]


cdef int _stage(_Staging stg, Variable var, Py_ssize_t slot) except -1:
    if var._stage_gen == stg.gen:
        var._stage_slot = slot
    elif var._stage_gen == 0:
        stg.owned.append(var)
        var._stage_gen = stg.gen
        var._stage_slot = slot
        if stg.side is not None:
            stg.side.pop(id(var), None)
    else:
        if stg.side is None:
            stg.side = {}
        stg.side[id(var)] = (var, slot)
    return 0


cdef int _exec(Node node, _Slots v, Py_ssize_t off, _Staging stg) except -1:
    """Run a packed node's straight-line instructions (the caller has made v hold node.need
    slots, a loop's `need` covering its body's last iteration). In a loop body, slot references
    flagged as advancing are offset by `off` (iteration × stride); elsewhere off is 0.

    Variable assignments are staged, not applied (see _Staging), and later reads in the same
    replay see them. replay() commits them only once the whole path has been found."""
    cdef Py_ssize_t i, j, a0, a1, out, cur
    cdef _Step* st
    cdef signed char k0
    cdef Instr ins
    cdef Variable var
    cdef Tensor t
    cdef double cd
    cdef signed char ck
    for i in range(node.n_steps):
        st = &node.steps[i]
        a0 = st.a0 + off if st.sh & SH_A0 else st.a0
        a1 = st.a1 + off if st.sh & SH_A1 else st.a1
        out = st.out + off if st.sh & SH_OUT else st.out
        if st.kind == S_OP:
            if st.code != OP_NONE:
                k0 = v.dk[a0]
                if k0 > 0 and (st.nargs == 1 or v.dk[a1] == k0):
                    v.dv[out] = _round(_scalar_value(st.code, v.dv[a0],
                                                     v.dv[a1] if st.nargs == 2 else 0.0), k0 == 1)
                    v.dk[out] = k0
                    continue
            ins = <Instr>node._code[st.index]
            if ins.ins_shift is None:
                args = tuple([_slot_get(v, s) for s in ins.ins])
            else:
                args = tuple([_slot_get(v, s + off if f else s)
                              for s, f in zip(ins.ins, ins.ins_shift)])
            _slot_put(v, out, run_op(ins.prim, args, ins.params))
        elif st.kind == S_CONST:
            if st.ck > 0:
                v.dv[out] = st.c
                v.dk[out] = st.ck
            else:
                _slot_put(v, out, (<Instr>node._code[st.index]).value)
        elif st.kind == S_READ:
            if st.var != NULL:
                var = <Variable>st.var
            else:
                var = <Variable>stg.variables[st.vindex]
            cur = _staged_slot(stg, var)
            if cur >= 0:
                _slot_copy(v, out, cur)
            elif var._is_scalar:
                v.dv[out] = var._d
                v.dk[out] = 1 if var._kind == K_F32 else 2
            else:
                _slot_put(v, out, _plain_copy(var))
        elif st.kind == S_ASSIGN:
            if st.var != NULL:
                var = <Variable>st.var
            else:
                var = <Variable>stg.variables[st.vindex]
            cur = _staged_slot(stg, var)
            if st.code != ASSIGN_SET:
                # the current value: staged earlier in this replay, or the Variable's own
                if cur >= 0:
                    ck = v.dk[cur]
                    cd = v.dv[cur]
                elif var._is_scalar:
                    ck = 1 if var._kind == K_F32 else 2
                    cd = var._d
                else:
                    ck = 0
                if ck > 0 and v.dk[a0] == ck:
                    v.dv[out] = _round(cd + v.dv[a0] if st.code == ASSIGN_ADD else cd - v.dv[a0],
                                       ck == 1)
                    v.dk[out] = ck
                else:
                    t = _raw_arith(_slot_get(v, cur) if cur >= 0 else var, _slot_get(v, a0),
                                   1 if st.code == ASSIGN_ADD else -1)
                    _slot_put(v, out, t)
                a0 = out
            _stage(stg, var, a0)
        else:  # S_LOOP
            ins = <Instr>node._code[st.index]
            for j in range(ins.count):
                _exec(<Node>ins.body, v, j * ins.stride, stg)
    return 0


def replay(Node root not None, inputs, Py_ssize_t n_slots=0, variables=()):
    """Run a program tree on `inputs` (the Tensors of the input slots, in order) and
    `variables` (the Variable arguments the program names by index). Returns
    (leaf, output Tensors), or None when a guard meets an outcome no trace has taken yet; then
    nothing has been changed (Variable assignments are committed only at the end).

    The slot buffer starts with n_slots (a hint) and grows to what each node on the path
    needs, whatever paths other threads add to the tree meanwhile."""
    global _replay_generation
    cdef tuple args = tuple(inputs)
    cdef tuple var_args = tuple(variables)
    cdef Py_ssize_t i, n_in = len(args)
    cdef _Slots v
    cdef Node node = root
    cdef Instr guard
    cdef Tensor t
    cdef Variable var
    cdef object outcome
    cdef _Staging stg
    for i in range(n_in):
        if not isinstance(args[i], Tensor):
            raise TypeError(f"replay: input {i} is a {type(args[i]).__name__}, not a Tensor")
    for i in range(len(var_args)):
        if not isinstance(var_args[i], Variable):
            raise TypeError(f"replay: variable {i} is a {type(var_args[i]).__name__}, not a "
                            "Variable")
    if n_slots < 0:
        raise ValueError(f"replay: n_slots must be >= 0, got {n_slots}")
    if root.n_steps < 0:
        root._pack(False)
    n_slots = max(n_slots, n_in, root.need)
    v = root.spare
    root.spare = None   # a replay on another thread (or nested) takes a buffer of its own
    if v is None:
        v = _Slots(n_slots)
    else:
        v.grow(n_slots)
    stg = _Staging.__new__(_Staging)
    stg.owned = []
    stg.variables = var_args
    _replay_generation += 1
    stg.gen = _replay_generation
    try:
        for i in range(n_in):
            _slot_put(v, i, <Tensor>args[i])
        while True:
            if node.n_steps < 0:
                node._pack(False)
            if node.need > v.n:
                v.grow(node.need)
            if node.need_vars > len(var_args):
                raise ValueError(f"replay: the program needs {node.need_vars} Variable "
                                 f"arguments, got {len(var_args)}")
            _exec(node, v, 0, stg)
            guard = node._guard
            if guard is None:
                break
            if v.dk[guard.a0] > 0:   # a float scalar: its truth value, or int() of it
                outcome = (v.dv[guard.a0] != 0.0 if type(guard.expected) is bool
                           else int(v.dv[guard.a0]))
            else:
                t = _slot_get(v, guard.a0)
                outcome = bool(t) if isinstance(guard.expected, bool) else int(t)
            node = node.children.get(outcome)
            if node is None:
                return None
        for var in stg.owned:
            var._set_from(_slot_get(v, var._stage_slot))
        if stg.side is not None:
            for e in list(stg.side.values()):
                (<Variable>(<tuple>e)[0])._set_from(_slot_get(v, (<tuple>e)[1]))
        return node, [None if s < 0 else _slot_get(v, s) for s in node._outs]
    finally:
        for var in stg.owned:
            if var._stage_gen == stg.gen:
                var._stage_gen = 0
        v.clear()
        root.spare = v
