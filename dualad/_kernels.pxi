# Parallel elementwise kernels for large float arrays (OpenMP through Cython's prange).
# (included by _core.pyx: one extension module, assembled from these files)
#
# Used by the sweep's cotangent sums (a += b in a buffer the sweep owns) and by multiply's
# impl (the VJPs of multiply, exp and tanh multiply the cotangent by a derivative). Each
# element is one IEEE operation, as numpy's loop does it (setup.py builds with
# -ffp-contract=off: no fused multiply-add), so the result is bit-identical to numpy's whatever
# the thread count: there is no reduction. Below the size threshold, at one thread, or without
# OpenMP, numpy runs the operation itself (its SIMD loops are at least as fast on one core),
# except on small arrays, where serial loops here (_small_arith) save numpy's call overhead.

from cython.parallel cimport prange

cdef extern from *:
    """
    #ifdef _OPENMP
    #define DUALAD_HAVE_OPENMP 1
    #else
    #define DUALAD_HAVE_OPENMP 0
    #endif
    """
    int DUALAD_HAVE_OPENMP

ctypedef fused _float_t:
    float
    double

# Elements below which a kernel is not worth a thread team (~the cost of waking the threads).
cdef Py_ssize_t _PARALLEL_MIN_SIZE = 1 << 16
# Threads per kernel; 1 = numpy's serial loops. Read by kernels started from any Python thread:
# an int written and read under the GIL.
cdef int _kernel_threads = 1
# the kernels also at one thread (for tests and measurements; numpy runs them otherwise)
cdef bint _kernels_at_one_thread = False
cdef int _MAX_THREADS = 256
cdef object _np_multiply = np.multiply
cdef object _np_empty_like = np.empty_like


def _default_threads():
    """DUALAD_NUM_THREADS if set, else OMP_NUM_THREADS (its first level), else 1 (and 1
    without OpenMP). Parallel kernels are asked for, not assumed: on the 2-core development
    machine two threads made W2 n=1e6's gradient 2x faster with both cores free, and 11x
    slower (8.0 ms against 0.72 ms) when another process held one core, because the team
    waits for its second thread to be scheduled."""
    import os
    if not DUALAD_HAVE_OPENMP:
        return 1
    text = os.environ.get("DUALAD_NUM_THREADS", "").strip()
    if not text:
        omp = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
        if omp.isdigit() and int(omp) >= 1:
            return min(int(omp), _MAX_THREADS)
    if text:
        try:
            n = int(text)
        except ValueError:
            raise ValueError(f"DUALAD_NUM_THREADS must be a positive integer, got {text!r}") from None
        if n < 1:
            raise ValueError(f"DUALAD_NUM_THREADS must be a positive integer, got {text!r}")
        return min(n, _MAX_THREADS)
    return 1


def set_num_threads(n):
    """Set how many threads dualad's elementwise kernels on large float arrays use (1: serial).
    Without OpenMP in the build, only 1 is accepted. Returns the previous count."""
    global _kernel_threads
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: expected a positive int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n}")
    if n > 1 and not DUALAD_HAVE_OPENMP:
        raise ValueError("set_num_threads: this build of dualad has no OpenMP (its compiler did "
                         "not accept -fopenmp); only 1 thread is available")
    previous = _kernel_threads
    _kernel_threads = min(n, _MAX_THREADS)
    return previous


def get_num_threads():
    """The number of threads dualad's elementwise kernels on large float arrays use."""
    return _kernel_threads


def has_openmp():
    """Whether this build of dualad runs its large elementwise kernels on several threads."""
    return bool(DUALAD_HAVE_OPENMP)


cdef int _kernel_dtype(object a, object b, Py_ssize_t* size, bint* b_single):
    # 1 (float64) or 2 (float32) when a and b are aligned C-contiguous float arrays of one
    # dtype, large enough for a parallel kernel, and either of one shape or (where b_single is
    # given) b a single element of no more axes than a (numpy broadcasts it to a's shape);
    # else 0 (numpy's loop runs)
    cdef cnp.ndarray x, y
    cdef int t
    if type(a) is not _np_ndarray or type(b) is not _np_ndarray:
        return 0
    x = <cnp.ndarray>a
    y = <cnp.ndarray>b
    size[0] = cnp.PyArray_SIZE(x)
    if size[0] < _PARALLEL_MIN_SIZE:
        return 0
    t = cnp.PyArray_TYPE(x)
    if (t != cnp.NPY_DOUBLE and t != cnp.NPY_FLOAT) or cnp.PyArray_TYPE(y) != t:
        return 0
    if not (cnp.PyArray_ISCARRAY_RO(x) and cnp.PyArray_ISCARRAY_RO(y)):
        return 0
    if cnp.PyArray_NDIM(x) == cnp.PyArray_NDIM(y) and cnp.PyArray_SAMESHAPE(x, y):
        if b_single != NULL:
            b_single[0] = False
    elif b_single != NULL and cnp.PyArray_SIZE(y) == 1 and cnp.PyArray_NDIM(y) <= cnp.PyArray_NDIM(x):
        b_single[0] = True
    else:
        return 0
    return 1 if t == cnp.NPY_DOUBLE else 2


cdef void _k_add_into(_float_t* a, const _float_t* b, Py_ssize_t n, int threads) noexcept nogil:
    cdef Py_ssize_t i
    for i in prange(n, num_threads=threads, schedule="static"):
        a[i] = a[i] + b[i]


cdef void _k_multiply(_float_t* out, const _float_t* a, const _float_t* b, Py_ssize_t n,
                      bint b_single, int threads) noexcept nogil:
    cdef Py_ssize_t i
    cdef _float_t s
    if b_single:
        s = b[0]
        for i in prange(n, num_threads=threads, schedule="static"):
            out[i] = a[i] * s
    else:
        for i in prange(n, num_threads=threads, schedule="static"):
            out[i] = a[i] * b[i]


cdef bint _kernel_add_into(object acc, object other) except -1:
    """acc += other with the parallel kernel; False, doing nothing, where numpy should run it
    (one thread, small or non-contiguous arrays, dtypes or shapes that differ). acc must be a
    writeable array no one else can see (the sweep's own buffer)."""
    cdef Py_ssize_t n = 0
    cdef int threads = _kernel_threads
    if threads <= 1 and not _kernels_at_one_thread:
        return False
    cdef int kind = _kernel_dtype(acc, other, &n, NULL)
    if kind == 0:
        return False
    # the GIL is released: the arrays are held here, acc's buffer is the sweep's alone, and
    # other is read-only (frozen by the core)
    if kind == 1:
        with nogil:
            _k_add_into(<double*>cnp.PyArray_DATA(<cnp.ndarray>acc),
                        <const double*>cnp.PyArray_DATA(<cnp.ndarray>other), n, threads)
    else:
        with nogil:
            _k_add_into(<float*>cnp.PyArray_DATA(<cnp.ndarray>acc),
                        <const float*>cnp.PyArray_DATA(<cnp.ndarray>other), n, threads)
    return True


cdef extern from *:
    """
    /* the serial loops in C: ivdep tells gcc that out, read at i only (out may be acc), has
       no dependence between iterations, so it vectorises them without run-time alias checks
       (the same IEEE operations on each element: the same bits) */
    __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic", "fp-contract=off")))
    static void dualad_scaled_sum_serial(double* out, const double* acc, double s1,
                                         const double* b1, double s2, const double* b2,
                                         Py_ssize_t n) {
        Py_ssize_t i;
        if (acc != NULL) {
            #pragma GCC ivdep
            for (i = 0; i < n; i++) out[i] = acc[i] + s1 * b1[i];
        } else if (b2 != NULL) {
            #pragma GCC ivdep
            for (i = 0; i < n; i++) out[i] = s1 * b1[i] + s2 * b2[i];
        } else {
            #pragma GCC ivdep
            for (i = 0; i < n; i++) out[i] = s1 * b1[i];
        }
    }
    """
    void dualad_scaled_sum_serial(double* out, const double* acc, double s1, const double* b1,
                                  double s2, const double* b2, Py_ssize_t n) noexcept nogil


cdef void _k_scaled_sum(double* out, const double* acc, double s1, const double* b1, double s2,
                        const double* b2, Py_ssize_t n, int threads) noexcept nogil:
    # out = [acc +] s1·b1 [+ s2·b2] (acc, b2 NULL when absent), each product and each sum
    # rounded (-ffp-contract=off): the bits of numpy's products then numpy's sums, in one pass
    cdef Py_ssize_t i
    if threads <= 1 or n < _PARALLEL_MIN_SIZE:
        dualad_scaled_sum_serial(out, acc, s1, b1, s2, b2, n)
    elif acc != NULL:
        for i in prange(n, num_threads=threads, schedule="static"):
            out[i] = acc[i] + s1 * b1[i]
    elif b2 != NULL:
        for i in prange(n, num_threads=threads, schedule="static"):
            out[i] = s1 * b1[i] + s2 * b2[i]
    else:
        for i in prange(n, num_threads=threads, schedule="static"):
            out[i] = s1 * b1[i]


cdef extern from "numpy/arrayobject.h":
    # (commented out in numpy's own declarations) the numpy scalar of one element at data
    object _PyArray_Scalar "PyArray_Scalar"(void* data, cnp.PyArray_Descr* descr, object base)


cdef object _one_element_product(object a, object b):
    """a * b for two one-element native float64 (or float32) arrays of one dtype: one IEEE
    multiply in C, numpy's bits, shaped as numpy broadcasts them (every axis 1; a numpy scalar
    for two 0-d arrays). None for any other operands. On one element numpy's ufunc set-up
    costs ~10x the product (the (1, 1) cotangent chains of W8's loop)."""
    cdef cnp.ndarray x, y, out
    cdef int t
    cdef double u, v
    cdef float f, g
    if type(a) is not _np_ndarray or type(b) is not _np_ndarray:
        return None
    x = <cnp.ndarray>a
    y = <cnp.ndarray>b
    t = cnp.PyArray_TYPE(x)
    if ((t != cnp.NPY_DOUBLE and t != cnp.NPY_FLOAT) or cnp.PyArray_TYPE(y) != t
            or cnp.PyArray_SIZE(x) != 1 or cnp.PyArray_SIZE(y) != 1
            or not (cnp.PyArray_ISNOTSWAPPED(x) and cnp.PyArray_ISNOTSWAPPED(y))):
        return None
    if cnp.PyArray_NDIM(y) > cnp.PyArray_NDIM(x):
        x, y = y, x     # x: the operand with more axes (all of them 1), whose shape the product has
    # each element at its data pointer whatever the strides (copied: it may be unaligned)
    if t == cnp.NPY_DOUBLE:
        memcpy(&u, cnp.PyArray_DATA(x), sizeof(double))
        memcpy(&v, cnp.PyArray_DATA(y), sizeof(double))
        u = u * v
        if cnp.PyArray_NDIM(x) == 0:
            return _PyArray_Scalar(&u, cnp.PyArray_DESCR(x), None)
        out = cnp.PyArray_SimpleNew(cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), t)
        memcpy(cnp.PyArray_DATA(out), &u, sizeof(double))
        return out
    memcpy(&f, cnp.PyArray_DATA(x), sizeof(float))
    memcpy(&g, cnp.PyArray_DATA(y), sizeof(float))
    f = f * g
    if cnp.PyArray_NDIM(x) == 0:
        return _PyArray_Scalar(&f, cnp.PyArray_DESCR(x), None)
    out = cnp.PyArray_SimpleNew(cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), t)
    memcpy(cnp.PyArray_DATA(out), &f, sizeof(float))
    return out


# Small arrays: numpy's ufunc call costs ~3,000 instructions around a loop of a few elements
# (type resolution, its error-state context variable, the output's allocation); the core's
# serial loops give the same bits, one IEEE operation per element, and set no error state
# numpy would report (NaN and infinity pass silently, as the ops want).
cdef Py_ssize_t _SMALL_LOOP_MAX = 256
# the operations of the small loops (Primitive._small_op; 0: none)
cdef enum:
    SMALL_MUL = 1
    SMALL_ADD = 2
    SMALL_SUB = 3
    SMALL_DIV = 4


cdef extern from *:
    """
    /* op: SMALL_MUL 1, SMALL_ADD 2, SMALL_SUB 3, SMALL_DIV 4 */
    #define DUALAD_SMALL_LOOPS                                                           \
        switch (op) {                                                                     \
        case 1: for (Py_ssize_t i = 0; i < n; i++) out[i] = a[i] * b[i]; break;           \
        case 2: for (Py_ssize_t i = 0; i < n; i++) out[i] = a[i] + b[i]; break;           \
        case 3: for (Py_ssize_t i = 0; i < n; i++) out[i] = a[i] - b[i]; break;           \
        default: for (Py_ssize_t i = 0; i < n; i++) out[i] = a[i] / b[i]; break;          \
        }
    /* one operand a scalar s: out = s op a (s_first) or a op s */
    #define DUALAD_SMALL_SCALAR_LOOPS                                                    \
        if (s_first) {                                                                    \
            switch (op) {                                                                 \
            case 1: for (Py_ssize_t i = 0; i < n; i++) out[i] = s * a[i]; break;          \
            case 2: for (Py_ssize_t i = 0; i < n; i++) out[i] = s + a[i]; break;          \
            case 3: for (Py_ssize_t i = 0; i < n; i++) out[i] = s - a[i]; break;          \
            default: for (Py_ssize_t i = 0; i < n; i++) out[i] = s / a[i]; break;         \
            }                                                                             \
        } else {                                                                          \
            switch (op) {                                                                 \
            case 1: for (Py_ssize_t i = 0; i < n; i++) out[i] = a[i] * s; break;          \
            case 2: for (Py_ssize_t i = 0; i < n; i++) out[i] = a[i] + s; break;          \
            case 3: for (Py_ssize_t i = 0; i < n; i++) out[i] = a[i] - s; break;          \
            default: for (Py_ssize_t i = 0; i < n; i++) out[i] = a[i] / s; break;         \
            }                                                                             \
        }
    /* 1 where some element of out is NaN: where both operands are NaN, which payload and
       sign numpy keeps depends on its operand order, which C's commutative multiply and add
       do not fix, so the caller leaves such arrays to numpy */
    #define DUALAD_ANY_NAN                                                               \
        for (Py_ssize_t i = 0; i < n; i++) if (out[i] != out[i]) return 1;               \
        return 0;
    __attribute__((optimize("fp-contract=off")))
    static int dualad_small_f64(int op, double* out, const double* a, const double* b,
                                Py_ssize_t n) { DUALAD_SMALL_LOOPS DUALAD_ANY_NAN }
    __attribute__((optimize("fp-contract=off")))
    static int dualad_small_f32(int op, float* out, const float* a, const float* b,
                                Py_ssize_t n) { DUALAD_SMALL_LOOPS DUALAD_ANY_NAN }
    __attribute__((optimize("fp-contract=off")))
    static void dualad_small_scalar_f64(int op, double* out, const double* a, double s,
                                        int s_first, Py_ssize_t n) { DUALAD_SMALL_SCALAR_LOOPS }
    __attribute__((optimize("fp-contract=off")))
    static void dualad_small_scalar_f32(int op, float* out, const float* a, float s,
                                        int s_first, Py_ssize_t n) { DUALAD_SMALL_SCALAR_LOOPS }
    """
    int dualad_small_f64(int op, double* out, const double* a, const double* b,
                         Py_ssize_t n) noexcept nogil
    int dualad_small_f32(int op, float* out, const float* a, const float* b,
                         Py_ssize_t n) noexcept nogil
    void dualad_small_scalar_f64(int op, double* out, const double* a, double s, int s_first,
                                 Py_ssize_t n) noexcept nogil
    void dualad_small_scalar_f32(int op, float* out, const float* a, float s, int s_first,
                                 Py_ssize_t n) noexcept nogil


cdef object _small_arith_tensors(int op, Tensor a, Tensor b):
    """_small_arith on two Tensors' values; a float scalar Tensor with an array of its dtype
    is computed from its C double (no 0-d array made for it), as numpy broadcasts it."""
    if a._is_scalar != b._is_scalar:
        if a._is_scalar and a._kind == b._kind:
            return _small_arith_scalar(op, a._d, b._arr, True)
        if b._is_scalar and b._kind == a._kind:
            return _small_arith_scalar(op, b._d, a._arr, False)
    return _small_arith(op, a._value(), b._value())


cdef bint _small_array(object a) noexcept:
    # an aligned, C-contiguous, native-byte-order float64 or float32 array (numpy's "C array"
    # test includes the byte order) of at least one axis and at most _SMALL_LOOP_MAX elements
    if type(a) is not _np_ndarray:
        return False
    cdef cnp.ndarray x = <cnp.ndarray>a
    cdef int t = cnp.PyArray_TYPE(x)
    return ((t == cnp.NPY_DOUBLE or t == cnp.NPY_FLOAT) and cnp.PyArray_NDIM(x) != 0
            and cnp.PyArray_SIZE(x) <= _SMALL_LOOP_MAX and cnp.PyArray_ISCARRAY_RO(x))


cdef object _small_arith_scalar(int op, double s, object a, bint s_first):
    """s (op) a, or a (op) s, for a float scalar s of a's dtype (float32 values exact in a
    double) and an array _small_array takes; None for any other array, and for a NaN s:
    where both operands are NaN, which payload and sign numpy's loop keeps depends on its
    operand order, which C's commutative multiply and add do not fix."""
    if s != s or not _small_array(a):
        return None
    cdef cnp.ndarray x = <cnp.ndarray>a
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef int t = cnp.PyArray_TYPE(x)
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), t, 0)
    if t == cnp.NPY_DOUBLE:
        dualad_small_scalar_f64(op, <double*>cnp.PyArray_DATA(out),
                                <const double*>cnp.PyArray_DATA(x), s, s_first, n)
    else:
        dualad_small_scalar_f32(op, <float*>cnp.PyArray_DATA(out),
                                <const float*>cnp.PyArray_DATA(x), <float>s, s_first, n)
    return out


cdef object _small_arith(int op, object a, object b):
    """a (op) b for two aligned, C-contiguous, native-byte-order float arrays of one dtype and
    one shape (at least one axis, at most _SMALL_LOOP_MAX elements), as numpy's ufunc would
    give it (a new C-ordered array); None for anything else, and where a result is NaN (numpy
    computes it)."""
    if not (_small_array(a) and _small_array(b)):
        return None
    cdef cnp.ndarray x = <cnp.ndarray>a, y = <cnp.ndarray>b
    cdef Py_ssize_t n = cnp.PyArray_SIZE(x)
    cdef int t = cnp.PyArray_TYPE(x)
    if (cnp.PyArray_TYPE(y) != t or cnp.PyArray_NDIM(x) != cnp.PyArray_NDIM(y)
            or not cnp.PyArray_SAMESHAPE(x, y)):
        return None
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), t, 0)
    cdef int nan
    if t == cnp.NPY_DOUBLE:
        nan = dualad_small_f64(op, <double*>cnp.PyArray_DATA(out),
                               <const double*>cnp.PyArray_DATA(x),
                               <const double*>cnp.PyArray_DATA(y), n)
    else:
        nan = dualad_small_f32(op, <float*>cnp.PyArray_DATA(out),
                               <const float*>cnp.PyArray_DATA(x),
                               <const float*>cnp.PyArray_DATA(y), n)
    return None if nan else out


def _multiply_impl(a, b):
    """multiply's numpy implementation: np.multiply, the core's loop for small float arrays
    of one shape and dtype, one multiply in C for one-element float arrays, or the parallel
    kernel for large ones (the same bits)."""
    cdef Py_ssize_t n = 0
    small = _small_arith(SMALL_MUL, a, b)
    if small is not None:
        return small
    cdef int threads = _kernel_threads
    cdef int kind
    cdef bint b_single = False
    cdef cnp.ndarray out
    one = _one_element_product(a, b)
    if one is not None:
        return one
    if threads > 1 or _kernels_at_one_thread:
        kind = _kernel_dtype(a, b, &n, &b_single)
        if kind == 0:
            kind = _kernel_dtype(b, a, &n, &b_single)
            if kind != 0:
                a, b = b, a     # a single element times a large array: the same bits either way
        if kind != 0:
            out = _np_empty_like(a)
            if kind == 1:
                with nogil:
                    _k_multiply(<double*>cnp.PyArray_DATA(out),
                                <const double*>cnp.PyArray_DATA(<cnp.ndarray>a),
                                <const double*>cnp.PyArray_DATA(<cnp.ndarray>b), n, b_single,
                                threads)
            else:
                with nogil:
                    _k_multiply(<float*>cnp.PyArray_DATA(out),
                                <const float*>cnp.PyArray_DATA(<cnp.ndarray>a),
                                <const float*>cnp.PyArray_DATA(<cnp.ndarray>b), n, b_single,
                                threads)
            return out
    return _np_multiply(a, b)


# it calls only numpy and the C loops above: it runs as numpy's own ufuncs do
_add_quiet_impls((_multiply_impl,))
_core_multiply_impl = _multiply_impl


cdef extern from *:
    """
    /* w - g*lr in one pass, each product and difference rounded (fp-contract=off): the bits
       of numpy's multiply into a buffer followed by its subtract (SGD's step). An AVX2 clone
       where gcc can dispatch on the CPU, as numpy's own loops do; the same IEEE operations
       either way. */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    #define DUALAD_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
    #else
    #define DUALAD_SIMD_CLONES
    #endif
    DUALAD_SIMD_CLONES
    __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic", "fp-contract=off")))
    static void dualad_sgd_step_f32(float* out, const float* w, const float* g, float lr,
                                    Py_ssize_t n) {
        Py_ssize_t i;
        #pragma GCC ivdep
        for (i = 0; i < n; i++) out[i] = w[i] - g[i] * lr;
    }
    DUALAD_SIMD_CLONES
    __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic", "fp-contract=off")))
    static void dualad_sgd_step_f64(double* out, const double* w, const double* g, double lr,
                                    Py_ssize_t n) {
        Py_ssize_t i;
        #pragma GCC ivdep
        for (i = 0; i < n; i++) out[i] = w[i] - g[i] * lr;
    }
    """
    void dualad_sgd_step_f32(float* out, const float* w, const float* g, float lr,
                             Py_ssize_t n) noexcept nogil
    void dualad_sgd_step_f64(double* out, const double* w, const double* g, double lr,
                             Py_ssize_t n) noexcept nogil


cdef inline void _descent_step(cnp.ndarray out, cnp.ndarray w, cnp.ndarray g, double lr) noexcept:
    # out = w - g * lr (arrays of one dtype, float32 or float64, and size, C-contiguous; out
    # either w itself or apart from both): SGD's step, for commit_in_place
    cdef Py_ssize_t n = cnp.PyArray_SIZE(out)
    if cnp.PyArray_TYPE(out) == cnp.NPY_FLOAT:
        dualad_sgd_step_f32(<float*>cnp.PyArray_DATA(out), <const float*>cnp.PyArray_DATA(w),
                            <const float*>cnp.PyArray_DATA(g), <float>lr, n)
    else:
        dualad_sgd_step_f64(<double*>cnp.PyArray_DATA(out), <const double*>cnp.PyArray_DATA(w),
                            <const double*>cnp.PyArray_DATA(g), lr, n)


def _run_kernels_at_one_thread(flag):
    """Run the kernels (not numpy) even at one thread: for tests and measurements. Returns the
    previous setting."""
    global _kernels_at_one_thread
    previous = _kernels_at_one_thread
    _kernels_at_one_thread = bool(flag)
    return previous


def _kernel_size_threshold():
    """The element count from which the parallel kernels run (for tests and the bench)."""
    return _PARALLEL_MIN_SIZE


_kernel_threads = _default_threads()


cdef extern from "numpy/arrayobject.h":
    # what ndarray.dot calls (for operands of rank 2 it returns the array as is)
    object PyArray_MatrixProduct2(object a, object b, cnp.PyArrayObject* out)


def _transpose_impl(x, perm):
    """transpose's numpy implementation (in C: a Python frame costs more than the view)."""
    return x.transpose(perm)


# the largest output (elements) _matmul_impl computes with ndarray.dot: beyond it, an outer
# product by BLAS (inner dimension 1) is far slower than the broadcast product
cdef Py_ssize_t _SMALL_PRODUCT = 4096


def _matmul_impl(a, b):
    """matmul's numpy implementation (in C: a Python frame costs more than a small product)."""
    cdef cnp.ndarray x, y
    cdef int nx, ny
    cdef Py_ssize_t m, p
    if type(a) is not _np_ndarray or type(b) is not _np_ndarray:
        a, b = _np_asarray(a), _np_asarray(b)
    x, y = a, b
    nx, ny = cnp.PyArray_NDIM(x), cnp.PyArray_NDIM(y)
    if nx < 2 or ny < 2:
        raise ValueError(f"the primitive takes operands of rank >= 2, got ranks {nx} and {ny} "
                         "(dualad.matmul takes vectors)")
    if cnp.PyArray_DIM(x, nx - 1) != cnp.PyArray_DIM(y, ny - 2):
        _inner_dimensions_differ(cnp.PyArray_DIM(x, nx - 1), cnp.PyArray_DIM(y, ny - 2))
    if nx == 2 and ny == 2:
        m, p = cnp.PyArray_DIM(x, 0), cnp.PyArray_DIM(y, 1)
        if m == 0 or p <= _SMALL_PRODUCT // m:     # m * p <= _SMALL_PRODUCT, without overflow
            # small matrices: ndarray.dot calls the same kernels as matmul without its
            # generalized-ufunc set-up (~5x the cost of the product itself at these sizes)
            return PyArray_MatrixProduct2(x, y, NULL)
    if cnp.PyArray_DIM(x, nx - 1) == 1:
        # an outer product (the VJP of a vector dot product makes these): numpy's matmul
        # takes ~10x longer than the broadcast product, which gives the same bits
        return _multiply_impl(x, y)
    return np.matmul(x, y)     # (looked up here: tests count its calls)


cdef void _inner_dimensions_differ(object inner_a, object inner_b) except *:
    raise ValueError(f"inner dimensions differ: {inner_a} (last axis of the first operand) vs "
                     f"{inner_b} (second-to-last axis of the second)")


def _norm_of_one(x, axis, keepdims):
    """norm's value over every axis (axis None or all of them, keepdims False) of a one-element
    native float64 or float32 array: sqrt(x * x) on C doubles, with numpy's
    bits (the product rounded to the dtype, then a correctly rounded square root: a float32
    root taken in double and rounded once more is the correctly rounded float32 root), as
    the numpy scalar numpy's reduction gives. None for any other call, which the numpy
    implementation then computes."""
    cdef cnp.ndarray arr
    cdef int typenum, ndim
    cdef double v
    cdef float f
    if keepdims is not False or type(x) is not _np_ndarray:
        return None
    arr = <cnp.ndarray>x
    typenum = cnp.PyArray_TYPE(arr)
    if ((typenum != cnp.NPY_DOUBLE and typenum != cnp.NPY_FLOAT) or cnp.PyArray_SIZE(arr) != 1
            or not cnp.PyArray_ISNOTSWAPPED(arr)):
        return None
    ndim = cnp.PyArray_NDIM(arr)
    if axis is not None and not _all_axes(axis, ndim):
        return None
    # one element: at the data pointer whatever the strides (copied: it may be unaligned)
    if typenum == cnp.NPY_DOUBLE:
        memcpy(&v, cnp.PyArray_DATA(arr), sizeof(double))
        v = sqrt(v * v)
        return _PyArray_Scalar(&v, cnp.PyArray_DESCR(arr), None)
    memcpy(&f, cnp.PyArray_DATA(arr), sizeof(float))
    f = <float>sqrt(<double>(f * f))
    return _PyArray_Scalar(&f, cnp.PyArray_DESCR(arr), None)


cdef bint _all_axes(object axis, int ndim) except -1:
    """`axis` is the tuple (0, 1, ..., ndim - 1) of Python ints."""
    cdef Py_ssize_t i
    if type(axis) is not tuple or len(<tuple>axis) != ndim:
        return False
    for i in range(ndim):
        item = (<tuple>axis)[i]
        if type(item) is not int or item != i:
            return False
    return True


# ---- the slot-keeping optimizers' steps, fused (commit_in_place's fused targets) -------------
# One pass per Variable computes the new value and every new slot of SGD with momentum
# (Nesterov or not), Adam (AMSGrad or not), RMSprop (centered, with momentum or not) and
# Adagrad, in the operations, the order and the dtype of their numpy formulations
# (optimizers.py `_update_into`): each product, sum, quotient and square root rounded to the
# dtype (fp-contract=off: no fused multiply-add; square root and division are correctly
# rounded in C as in numpy), so the bits are numpy's. (Where both operands of an addition are
# NaN, numpy itself keeps either payload depending on the array's length: only NaN-ness is
# defined there.) Each element's inputs are read before its outputs are written, so an output
# may be its input's own array (in place); otherwise no two arrays overlap.

cdef extern from *:
    """
    enum {
        DUALAD_FUSED_SGD_MOMENTUM = 1,      /* p: lr, momentum;         slots: momentum */
        DUALAD_FUSED_SGD_NESTEROV,          /* p: lr, momentum;         slots: momentum */
        DUALAD_FUSED_ADAM,                  /* p: alpha, 1-b1, 1-b2, eps; slots: m, v */
        DUALAD_FUSED_ADAM_AMSGRAD,          /* as Adam;                 slots: m, v, v_hat */
        DUALAD_FUSED_RMSPROP,               /* p: lr, rho, 1-rho, eps, momentum; slots: v */
        DUALAD_FUSED_RMSPROP_MOMENTUM,      /* slots: v, momentum */
        DUALAD_FUSED_RMSPROP_CENTERED,      /* slots: v, average gradient */
        DUALAD_FUSED_RMSPROP_CENTERED_MOMENTUM,  /* slots: v, momentum, average gradient */
        DUALAD_FUSED_ADAGRAD,               /* p: lr, eps;              slots: accumulator */
        DUALAD_FUSED_RULES_END
    };
    #define DUALAD_FUSED_MAX_SLOTS 3
    #define DUALAD_FUSED_MAX_PARAMS 5

    /* numpy's maximum: NaN-propagating, and b where a == b (so +0 or -0 as numpy gives it) */
    #define DUALAD_MAXIMUM(a, b) (((a) > (b) || (a) != (a)) ? (a) : (b))

    /* CENTERED, MOMENTUM: constants; AO, AI: the average gradient's slot (after the
       momentum's, if any) */
    #define DUALAD_RMSPROP_LOOP(T, SQRT, CENTERED, MOMENTUM, AO, AI)                       \
        _Pragma("GCC ivdep") for (i = 0; i < n; i++) {                                    \
            T w = wi[i], g = gi[i], v = i0[i], work, value, a = 0, mu = 0;                \
            if (CENTERED) a = AI[i];                                                      \
            if (MOMENTUM) mu = i1[i];                                                     \
            v = p1 * v; work = g * g; work = p2 * work; v = v + work;                     \
            if (CENTERED) {                                                               \
                a = p1 * a; work = p2 * g; a = a + work;                                  \
                work = a * a; work = v - work; work = work + p3;                          \
            } else {                                                                      \
                work = v + p3;                                                            \
            }                                                                             \
            value = p0 * g; work = SQRT(work); value = value / work;                      \
            if (MOMENTUM) { mu = p4 * mu; mu = mu + value; value = mu; }                  \
            o0[i] = v;                                                                    \
            if (CENTERED) AO[i] = a;                                                      \
            if (MOMENTUM) o1[i] = mu;                                                     \
            wo[i] = w - value;                                                            \
        }

    #define DUALAD_FUSED_LOOPS(T, SQRT)                                                   \
        const T p0 = (T)p[0], p1 = (T)p[1], p2 = (T)p[2], p3 = (T)p[3], p4 = (T)p[4];   \
        T* o0 = so[0]; T* o1 = so[1]; T* o2 = so[2];                                      \
        const T* i0 = si[0]; const T* i1 = si[1]; const T* i2 = si[2];                    \
        Py_ssize_t i;                                                                     \
        switch (rule) {                                                                   \
        case DUALAD_FUSED_SGD_MOMENTUM:                                                   \
            _Pragma("GCC ivdep") for (i = 0; i < n; i++) {                                \
                T w = wi[i], g = gi[i], m = i0[i];                                        \
                m = m * p1; m = m - g * p0;                                               \
                o0[i] = m; wo[i] = w + m;                                                 \
            } break;                                                                      \
        case DUALAD_FUSED_SGD_NESTEROV:                                                   \
            _Pragma("GCC ivdep") for (i = 0; i < n; i++) {                                \
                T w = wi[i], g = gi[i], m = i0[i], value;                                 \
                m = m * p1; m = m - g * p0;                                               \
                value = m * p1; value = value - g * p0;                                   \
                o0[i] = m; wo[i] = w + value;                                             \
            } break;                                                                      \
        case DUALAD_FUSED_ADAM:                                                           \
            _Pragma("GCC ivdep") for (i = 0; i < n; i++) {                                \
                T w = wi[i], g = gi[i], m0 = i0[i], v0 = i1[i], m, v, value, work;        \
                m = g - m0; m = m * p1; m = m0 + m;                                       \
                v = g * g; v = v - v0; v = v * p2; v = v0 + v;                            \
                value = m * p0; work = SQRT(v); work = work + p3; value = value / work;   \
                o0[i] = m; o1[i] = v; wo[i] = w - value;                                  \
            } break;                                                                      \
        case DUALAD_FUSED_ADAM_AMSGRAD:                                                   \
            _Pragma("GCC ivdep") for (i = 0; i < n; i++) {                                \
                T w = wi[i], g = gi[i], m0 = i0[i], v0 = i1[i], h0 = i2[i], m, v, h;      \
                T value, work;                                                            \
                m = g - m0; m = m * p1; m = m0 + m;                                       \
                v = g * g; v = v - v0; v = v * p2; v = v0 + v;                            \
                h = DUALAD_MAXIMUM(h0, v);                                                \
                value = m * p0; work = SQRT(h); work = work + p3; value = value / work;   \
                o0[i] = m; o1[i] = v; o2[i] = h; wo[i] = w - value;                       \
            } break;                                                                      \
        case DUALAD_FUSED_RMSPROP:                                                        \
            DUALAD_RMSPROP_LOOP(T, SQRT, 0, 0, o1, i1) break;                             \
        case DUALAD_FUSED_RMSPROP_MOMENTUM:                                               \
            DUALAD_RMSPROP_LOOP(T, SQRT, 0, 1, o1, i1) break;                             \
        case DUALAD_FUSED_RMSPROP_CENTERED:                                               \
            DUALAD_RMSPROP_LOOP(T, SQRT, 1, 0, o1, i1) break;                             \
        case DUALAD_FUSED_RMSPROP_CENTERED_MOMENTUM:                                      \
            DUALAD_RMSPROP_LOOP(T, SQRT, 1, 1, o2, i2) break;                             \
        default: /* DUALAD_FUSED_ADAGRAD */                                               \
            _Pragma("GCC ivdep") for (i = 0; i < n; i++) {                                \
                T w = wi[i], g = gi[i], acc = i0[i], work, value;                         \
                work = g * g; acc = acc + work; work = acc + p1;                          \
                value = p0 * g; work = SQRT(work); value = value / work;                  \
                o0[i] = acc; wo[i] = w - value;                                           \
            } break;                                                                      \
        }

    DUALAD_SIMD_CLONES
    __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic", "fp-contract=off")))
    static void dualad_fused_step_f32(int rule, Py_ssize_t n, float* wo, const float* wi,
                                      const float* gi, float** so, const float** si,
                                      const double* p) {
        DUALAD_FUSED_LOOPS(float, __builtin_sqrtf)
    }
    DUALAD_SIMD_CLONES
    __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic", "fp-contract=off")))
    static void dualad_fused_step_f64(int rule, Py_ssize_t n, double* wo, const double* wi,
                                      const double* gi, double** so, const double** si,
                                      const double* p) {
        DUALAD_FUSED_LOOPS(double, __builtin_sqrt)
    }
    """
    enum:
        DUALAD_FUSED_SGD_MOMENTUM
        DUALAD_FUSED_SGD_NESTEROV
        DUALAD_FUSED_ADAM
        DUALAD_FUSED_ADAM_AMSGRAD
        DUALAD_FUSED_RMSPROP
        DUALAD_FUSED_RMSPROP_MOMENTUM
        DUALAD_FUSED_RMSPROP_CENTERED
        DUALAD_FUSED_RMSPROP_CENTERED_MOMENTUM
        DUALAD_FUSED_ADAGRAD
        DUALAD_FUSED_RULES_END
        DUALAD_FUSED_MAX_SLOTS
        DUALAD_FUSED_MAX_PARAMS
    void dualad_fused_step_f32(int rule, Py_ssize_t n, float* wo, const float* wi,
                               const float* gi, float** so, const float** si,
                               const double* p) noexcept nogil
    void dualad_fused_step_f64(int rule, Py_ssize_t n, double* wo, const double* wi,
                               const double* gi, double** so, const double** si,
                               const double* p) noexcept nogil


# the fused rules' codes and slot counts, for the optimizers (dualad/optimizers.py)
FUSED_RULES = {"SGD_MOMENTUM": DUALAD_FUSED_SGD_MOMENTUM,
               "SGD_NESTEROV": DUALAD_FUSED_SGD_NESTEROV,
               "ADAM": DUALAD_FUSED_ADAM, "ADAM_AMSGRAD": DUALAD_FUSED_ADAM_AMSGRAD,
               "RMSPROP": DUALAD_FUSED_RMSPROP,
               "RMSPROP_MOMENTUM": DUALAD_FUSED_RMSPROP_MOMENTUM,
               "RMSPROP_CENTERED": DUALAD_FUSED_RMSPROP_CENTERED,
               "RMSPROP_CENTERED_MOMENTUM": DUALAD_FUSED_RMSPROP_CENTERED_MOMENTUM,
               "ADAGRAD": DUALAD_FUSED_ADAGRAD}


cdef inline int _fused_slot_count(int rule) noexcept nogil:
    if rule == DUALAD_FUSED_ADAM or rule == DUALAD_FUSED_RMSPROP_MOMENTUM \
            or rule == DUALAD_FUSED_RMSPROP_CENTERED:
        return 2
    if rule == DUALAD_FUSED_ADAM_AMSGRAD or rule == DUALAD_FUSED_RMSPROP_CENTERED_MOMENTUM:
        return 3
    return 1


cdef void _fused_step(int rule, cnp.ndarray w_out, cnp.ndarray w, cnp.ndarray g,
                      void** slots_out, const void** slots_in, const double* p) noexcept:
    # one fused rule over arrays of one dtype (float32 or float64) and size, C-contiguous;
    # each output either its input's own array or apart from every array read
    cdef Py_ssize_t n = cnp.PyArray_SIZE(w)
    if cnp.PyArray_TYPE(w) == cnp.NPY_FLOAT:
        dualad_fused_step_f32(rule, n, <float*>cnp.PyArray_DATA(w_out),
                              <const float*>cnp.PyArray_DATA(w), <const float*>cnp.PyArray_DATA(g),
                              <float**>slots_out, <const float**>slots_in, p)
    else:
        dualad_fused_step_f64(rule, n, <double*>cnp.PyArray_DATA(w_out),
                              <const double*>cnp.PyArray_DATA(w),
                              <const double*>cnp.PyArray_DATA(g), <double**>slots_out,
                              <const double**>slots_in, p)


cdef extern from *:
    """
    /* tanh's VJP g * (1 - y*y) in one pass, each product and difference rounded
       (fp-contract=off): the bits of the rule's square, subtract and multiply. Returns
       whether any result is NaN: where g and y are both NaN, which payload numpy's multiply
       keeps depends on its operand order, which gcc may swap; the caller then runs the rule. */
    DUALAD_SIMD_CLONES
    __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic", "fp-contract=off")))
    static int dualad_tanh_vjp_f32(float* restrict out, const float* restrict g,
                                   const float* restrict y, Py_ssize_t n) {
        Py_ssize_t i;
        int nan = 0;
        for (i = 0; i < n; i++) {
            float v = g[i] * (1.0f - y[i] * y[i]);
            out[i] = v;
            nan |= v != v;
        }
        return nan;
    }
    DUALAD_SIMD_CLONES
    __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic", "fp-contract=off")))
    static int dualad_tanh_vjp_f64(double* restrict out, const double* restrict g,
                                   const double* restrict y, Py_ssize_t n) {
        Py_ssize_t i;
        int nan = 0;
        for (i = 0; i < n; i++) {
            double v = g[i] * (1.0 - y[i] * y[i]);
            out[i] = v;
            nan |= v != v;
        }
        return nan;
    }
    """
    int dualad_tanh_vjp_f32(float* out, const float* g, const float* y, Py_ssize_t n) noexcept nogil
    int dualad_tanh_vjp_f64(double* out, const double* g, const double* y,
                            Py_ssize_t n) noexcept nogil


cdef object _tanh_vjp_fused(object g, object y):
    """g * (1 - y * y) for two aligned, C-contiguous, native float arrays of one dtype and
    shape, as tanh's rule computes it (a new array); None for anything else, or where a
    result is NaN (the rule then runs)."""
    if type(g) is not _np_ndarray or type(y) is not _np_ndarray:
        return None
    cdef cnp.ndarray ga = <cnp.ndarray>g, ya = <cnp.ndarray>y
    cdef int t = cnp.PyArray_TYPE(ga)
    cdef Py_ssize_t n = cnp.PyArray_SIZE(ga)
    cdef int nan
    if ((t != cnp.NPY_DOUBLE and t != cnp.NPY_FLOAT) or cnp.PyArray_TYPE(ya) != t
            or not (cnp.PyArray_ISCARRAY_RO(ga) and cnp.PyArray_ISCARRAY_RO(ya))
            or cnp.PyArray_NDIM(ga) != cnp.PyArray_NDIM(ya) or not cnp.PyArray_SAMESHAPE(ga, ya)):
        return None
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(ga), cnp.PyArray_DIMS(ga), t, 0)
    if t == cnp.NPY_DOUBLE:
        with nogil:
            nan = dualad_tanh_vjp_f64(<double*>cnp.PyArray_DATA(out),
                                      <const double*>cnp.PyArray_DATA(ga),
                                      <const double*>cnp.PyArray_DATA(ya), n)
    else:
        with nogil:
            nan = dualad_tanh_vjp_f32(<float*>cnp.PyArray_DATA(out),
                                      <const float*>cnp.PyArray_DATA(ga),
                                      <const float*>cnp.PyArray_DATA(ya), n)
    return None if nan else out


def _tanh_vjp_fused_for_tests(g, y):
    return _tanh_vjp_fused(g, y)


cdef extern from *:
    """
    /* The maximum of each run of n elements (the rows of a C-ordered array over its last
       axis), into out; 0, leaving out unfinished, where a row holds a NaN or its maximum is
       a zero: a maximum is exact, so only NaN payloads and the sign of a zero can depend on
       the order numpy compares in (numpy then computes it). */
    #define DUALAD_ROW_MAX(T)                                                             \\
        Py_ssize_t r, j;                                                                  \\
        for (r = 0; r < rows; r++) {                                                      \\
            const T* row = x + r * n;                                                     \\
            T m = row[0];                                                                 \\
            int nan = m != m;                                                             \\
            for (j = 1; j < n; j++) {                                                     \\
                T v = row[j];                                                             \\
                nan |= v != v;                                                            \\
                m = v > m ? v : m;                                                        \\
            }                                                                             \\
            if (nan || m == 0) return 0;                                                  \\
            out[r] = m;                                                                   \\
        }                                                                                 \\
        return 1;
    static int dualad_row_max_f32(float* out, const float* x, Py_ssize_t rows, Py_ssize_t n) {
        DUALAD_ROW_MAX(float)
    }
    static int dualad_row_max_f64(double* out, const double* x, Py_ssize_t rows,
                                  Py_ssize_t n) {
        DUALAD_ROW_MAX(double)
    }
    """
    int dualad_row_max_f32(float* out, const float* x, Py_ssize_t rows, Py_ssize_t n) noexcept nogil
    int dualad_row_max_f64(double* out, const double* x, Py_ssize_t rows,
                           Py_ssize_t n) noexcept nogil


def _last_axis_max(x):
    """np.maximum.reduce(x, axis=-1, keepdims=True) for an aligned, C-ordered, native float64
    or float32 array of at least one axis and one element, with numpy's bits; None for any
    other array, or where a row holds a NaN or has a zero maximum (numpy then computes it).
    numpy's reduction over a short last axis costs ~100 ns a row (~13 us for W7's 128x10
    logits); this loop a few ns."""
    if type(x) is not _np_ndarray:
        return None
    cdef cnp.ndarray a = <cnp.ndarray>x
    cdef int t = cnp.PyArray_TYPE(a)
    cdef int ndim = cnp.PyArray_NDIM(a)
    if ((t != cnp.NPY_DOUBLE and t != cnp.NPY_FLOAT) or ndim == 0 or ndim > 32
            or cnp.PyArray_SIZE(a) == 0 or not cnp.PyArray_ISCARRAY_RO(a)):
        return None     # (ndim > 32: beyond dims below)
    cdef Py_ssize_t n = cnp.PyArray_DIM(a, ndim - 1)
    cdef Py_ssize_t rows = cnp.PyArray_SIZE(a) // n
    cdef cnp.npy_intp dims[32]
    cdef int i, ok
    for i in range(ndim - 1):
        dims[i] = cnp.PyArray_DIM(a, i)
    dims[ndim - 1] = 1
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(ndim, dims, t, 0)
    if t == cnp.NPY_DOUBLE:
        ok = dualad_row_max_f64(<double*>cnp.PyArray_DATA(out),
                                <const double*>cnp.PyArray_DATA(a), rows, n)
    else:
        ok = dualad_row_max_f32(<float*>cnp.PyArray_DATA(out),
                                <const float*>cnp.PyArray_DATA(a), rows, n)
    return out if ok else None
