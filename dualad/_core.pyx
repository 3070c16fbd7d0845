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
from dualad._scalar cimport *


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


include "_convert.pxi"
include "_tensor.pxi"
include "_variable.pxi"
include "_dispatch.pxi"
include "_transform.pxi"
include "_tape.pxi"
include "_tracing.pxi"
