# Parallel elementwise kernels for large float arrays (OpenMP through Cython's prange).
# (included by _core.pyx: one extension module, assembled from these files)
#
# Used by the sweep's cotangent sums (a += b in a buffer the sweep owns) and by multiply's
# impl (the VJPs of multiply, exp and tanh multiply the cotangent by a derivative). Each
# element is one IEEE operation, as numpy's loop does it (setup.py builds with
# -ffp-contract=off: no fused multiply-add), so the result is bit-identical to numpy's whatever
# the thread count: there is no reduction. Below the size threshold, at one thread, or without
# OpenMP, numpy runs the operation itself (its SIMD loops are at least as fast on one core).

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


def _multiply_impl(a, b):
    """multiply's numpy implementation: np.multiply, or the parallel kernel for large float
    arrays of one shape and dtype (the same bits)."""
    cdef Py_ssize_t n = 0
    cdef int threads = _kernel_threads
    cdef int kind
    cdef bint b_single = False
    cdef cnp.ndarray out
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
