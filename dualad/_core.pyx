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
from libc.string cimport memset, memcpy
from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF
from cpython.float cimport PyFloat_AS_DOUBLE
from cpython.long cimport PyLong_AsDouble

import threading
import numpy as np
cimport numpy as cnp

cnp.import_array()

cdef extern from "Python.h":
    ctypedef struct PyThreadState
    PyThreadState* PyThreadState_Get()
    unsigned long long PyThreadState_GetID(PyThreadState* tstate)
from dualad._scalar cimport *


# The C scalar kernels of _scalar.pxd by name, and how many inputs each takes (the kernels' own
# _scalar_arity): a primitive's declaration (dualad/rules.py) names its kernel; dualad.install
# checks each is claimed once.
SCALAR_OPCODES = {
    "OP_ADD": OP_ADD, "OP_SUB": OP_SUB, "OP_MUL": OP_MUL, "OP_DIV": OP_DIV, "OP_NEG": OP_NEG,
    "OP_POW": OP_POW, "OP_SQUARE": OP_SQUARE, "OP_SQRT": OP_SQRT, "OP_EXP": OP_EXP,
    "OP_LOG": OP_LOG, "OP_LOG1P": OP_LOG1P, "OP_SIN": OP_SIN, "OP_COS": OP_COS, "OP_TAN": OP_TAN,
    "OP_TANH": OP_TANH, "OP_SIGMOID": OP_SIGMOID, "OP_RELU": OP_RELU, "OP_ABS": OP_ABS,
    "OP_MAXIMUM": OP_MAXIMUM, "OP_MINIMUM": OP_MINIMUM,
}
SCALAR_OPCODE_ARITY = {name: _scalar_arity(code) for name, code in SCALAR_OPCODES.items()}


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
include "_record.pxi"
include "_kernels.pxi"
include "_tape.pxi"
include "_tracing.pxi"
