# Elementwise special functions on float arrays, one C loop each (libc), for rules.py.
cimport cython
from libc.math cimport erf as c_erf
import numpy as np
cimport numpy as cnp

cnp.import_array()


def erf(x):
    """erf of each element of a float64 or float32 numpy array (or numpy scalar): libc's erf
    on doubles, the function math.erf calls, so the bits are math.erf's (rounded to float32
    for float32). A new array of x's shape and dtype; TypeError for any other dtype."""
    cdef Py_ssize_t i, n
    cdef const double[::1] a64
    cdef double[::1] o64
    cdef const float[::1] a32
    cdef float[::1] o32
    dtype = x.dtype
    if dtype != np.float64 and dtype != np.float32:
        raise TypeError(f"erf kernel: float32 or float64 array expected, got {dtype}")
    src = np.asarray(x, dtype=dtype, order="C")     # a copy only when x is not contiguous
    out = np.empty(src.shape, dtype=dtype)
    if src.size == 0:
        return out
    if dtype == np.float64:
        a64 = src.reshape(-1)
        o64 = out.reshape(-1)
        n = a64.shape[0]
        with nogil:
            for i in range(n):
                o64[i] = c_erf(a64[i])
    else:
        a32 = src.reshape(-1)
        o32 = out.reshape(-1)
        n = a32.shape[0]
        with nogil:
            for i in range(n):
                o32[i] = <float>c_erf(<double>a32[i])
    return out
