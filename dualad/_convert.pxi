# Conversion of Python and numpy values to Tensors, dtypes, and the checks of binary ops.
# (included by _core.pyx: one extension module, assembled from these files)

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


# --------------------------------------------------------------------------------------------
# Tensor construction
# --------------------------------------------------------------------------------------------

cdef Tensor new_scalar(double v, int kind):
    cdef Tensor t = Tensor.__new__(Tensor)
    t._is_scalar = True
    t._kind = kind
    t._dtype = F32 if kind == K_F32 else F64
    t._d = _round(v, kind == K_F32)
    return t


cdef inline void _freeze(object arr):
    # Tensors are immutable: a buffer a Tensor holds is never writeable through numpy
    cnp.PyArray_CLEARFLAGS(<cnp.ndarray>arr, cnp.NPY_ARRAY_WRITEABLE)


cdef object _np_float64 = np.float64
cdef object _np_float32 = np.float32


cdef Tensor _wrap(object raw):
    """A Tensor around a raw result (ndarray, numpy scalar, Python number); no copy. The array
    becomes read-only: it must not be one the caller goes on writing."""
    cdef Tensor t
    cdef float f
    if type(raw) is _np_float64:
        # a numpy float scalar (what ufuncs and whole reductions give for 0-d results): a
        # scalar Tensor on its C double, the array made only if asked for (as new_scalar's)
        return new_scalar(PyFloat_AS_DOUBLE(raw), K_F64)
    if type(raw) is _np_float32:
        cnp.PyArray_ScalarAsCtype(raw, &f)
        return new_scalar(f, K_F32)
    t = Tensor.__new__(Tensor)
    cdef cnp.ndarray arr = raw if type(raw) is _np_ndarray else _np_asarray(raw)
    _freeze(arr)
    t._dtype = <object>cnp.PyArray_DESCR(arr)  # (the C fields, not Python attribute lookups)
    t._kind = _kind_of(t._dtype)
    t._arr = arr
    if t._kind != K_OTHER and cnp.PyArray_NDIM(arr) == 0:
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
    return new_scalar(value, kind)


cdef object _normalize_dtype(object dtype):
    if dtype is None:
        return None
    if isinstance(dtype, DType):
        return (<DType>dtype).np
    dtype = np.dtype(dtype)
    # '>f8' names float64 too, but tensors hold native byte order (see _from_python)
    return dtype if dtype.isnative else dtype.newbyteorder("=")


cdef Tensor _from_python(object value, object dtype):
    """Convert a non-Tensor value. Python floats default to float32 and ints to int32 (as in
    TensorFlow); numpy arrays keep their dtype unless one is asked for."""
    cdef object arr
    cdef int kind
    # (numpy float64 scalars are floats too, but keep their dtype like numpy arrays)
    if type(value) is float and (dtype is None or dtype is F32 or dtype is F64):
        return new_scalar(value, K_F64 if dtype is F64 else K_F32)
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
    if not cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>arr):
        # a big-endian array (a file or pickle from another machine): its dtype would equal
        # no dualad dtype, so every op with a native tensor would refuse it
        arr = arr.astype(arr.dtype.newbyteorder("="))
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
    if ref._kind != K_OTHER:
        if type(value) is int:
            # float(value)'s conversion (its OverflowError too), without the float object
            return new_scalar(PyLong_AsDouble(value), ref._kind)
        if type(value) is float or isinstance(value, np.floating):
            return new_scalar(<double>value, ref._kind)
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


cdef void _check_same_dtype(Tensor a, Tensor b, str opname) except *:
    # (called where the two dtypes are not one object)
    if a._dtype != b._dtype:
        if a._dtype is None or b._dtype is None:
            _uninitialized()
        raise TypeError(f"{opname}: operands have different dtypes, {dtype_name(a._dtype)} and "
                        f"{dtype_name(b._dtype)}; dualad does not promote silently, use "
                        f"dualad.cast on one of them")


cpdef Tensor binary(Primitive p, object a, object b):
    """Apply a binary primitive, converting a non-Tensor operand to the other's dtype."""
    if p.code != OP_NONE and _scalar_arity(p.code) != 2:
        _wrong_arity(p, 2)
    # two float scalar Tensors of one dtype object, or one and a Python number: the C scalar
    # path first, with no dtype check or conversion to pass through; the rest in
    # _binary_converted
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            if ((<Tensor>a)._dtype is (<Tensor>b)._dtype
                    and _takes_scalar_path(p, <Tensor>a, <Tensor>b)):
                return _scalar_op(p, <Tensor>a, <Tensor>b, None)   # (no argument tuple)
        elif (type(b) is float or type(b) is int) and _takes_scalar_path(p, <Tensor>a, <Tensor>a):
            return _scalar_op_number(p, <Tensor>a, b, False)
    elif ((type(a) is float or type(a) is int) and isinstance(b, Tensor)
          and _takes_scalar_path(p, <Tensor>b, <Tensor>b)):
        return _scalar_op_number(p, <Tensor>b, a, True)
    return _binary_converted(p, a, b)


cdef Tensor _binary_converted(Primitive p, object a, object b):
    """binary's general case: a non-Tensor operand converted, the dtypes checked."""
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
    if ta._dtype is not tb._dtype:
        _check_same_dtype(ta, tb, p.name)
    if _takes_scalar_path(p, ta, tb):
        return _scalar_op(p, ta, tb, None)   # (no argument tuple unless the op is recorded)
    return run_op(p, (ta, tb), None)


def binary_op(Primitive p):
    """The public function of binary primitive `p` (ops.py names it): compiled, so that a call
    costs no Python frame on top of `binary`."""
    if p.code != OP_NONE and _scalar_arity(p.code) != 2:
        _wrong_arity(p, 2)
    def op(x, y, name=None):
        return binary(p, x, y)
    return op


def unary_op(Primitive p):
    """The public function of a one-input primitive taking any dtype (ops.py names it)."""
    def op(x, name=None):
        return unary(p, x if isinstance(x, Tensor) else convert_to_tensor(x))
    return op


def float_unary_op(Primitive p, str opname):
    """The public function of a float-only one-input primitive (ops.py names it)."""
    if p.code != OP_NONE and _scalar_arity(p.code) != 1:
        _wrong_arity(p, 1)
    def op(x, name=None):
        # (a float scalar Tensor is a float tensor: float_tensor's check is left to the rest)
        if isinstance(x, Tensor) and _takes_scalar_path(p, <Tensor>x, <Tensor>x):
            return _scalar_op(p, <Tensor>x, None, None)
        return run_op(p, (float_tensor(x, opname),), None)
    return op


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

    def __reduce__(self):
        # by name, back to the one constant of that dtype (Cython's default pickle of this
        # class could not be loaded, and copy.deepcopy of anything holding a dtype failed)
        return (as_dtype, (self.np.name,))


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


cpdef bint is_float(Tensor t):
    return t._kind != K_OTHER or t._dtype.kind == "f"


cpdef Tensor filled_like(Tensor t, double value, object dtype=None):
    """A constant tensor shaped like `t` (of `dtype`, default t's dtype), not recorded."""
    cdef object dt = t._dtype if dtype is None else _normalize_dtype(dtype)
    cdef int kind = _kind_of(dt)
    if t._is_scalar and kind != K_OTHER:
        return new_scalar(value, kind)
    cdef cnp.ndarray src, out
    cdef Py_ssize_t i, n
    cdef double* d
    cdef float* f
    if (dt is F64 or (dt is F32 and value == <float>value)) and t._arr is not None:
        # a gradient's seed, every step: filled in C (float32: values it holds exactly)
        src = t._arr
        out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(src), cnp.PyArray_DIMS(src),
                                cnp.NPY_DOUBLE if dt is F64 else cnp.NPY_FLOAT, 0)
        n = cnp.PyArray_SIZE(out)
        if dt is F64:
            d = <double*>cnp.PyArray_DATA(out)
            for i in range(n):
                d[i] = value
        else:
            f = <float*>cnp.PyArray_DATA(out)
            for i in range(n):
                f[i] = <float>value
        return _wrap(out)
    arr = np.empty(t._value().shape, dtype=dt)   # empty + fill: np.full is Python code
    arr.fill(value)
    return _wrap(arr)


cpdef Tensor float_tensor(object x, str opname):
    """`x` as a Tensor, which must have a float dtype (the check of float-only ops)."""
    cdef Tensor t = x if isinstance(x, Tensor) else convert_to_tensor(x)
    if t._kind == K_OTHER and t._dtype.kind != "f":
        raise TypeError(f"{opname}: expected a float tensor, got {t._dtype.name}; "
                        "cast it with dualad.cast first")
    return t
