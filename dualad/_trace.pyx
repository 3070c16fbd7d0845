# cython: allow_none_for_extension_args=False
"""The trace/replay machine of dualad.function, on top of the core.

A trace is the linear program of one run of a function: every primitive call (those of
derivative rules included, so tapes inside the function become explicit backward ops), every
read and assignment of a Variable, every constant, and a guard for every Python decision
taken on a traced value. Runs that took different decisions share their common prefix in a
tree whose branches are the guards' outcomes; a replay walks it with no Python per op.

The core reports what it does to the Tracer of the running thread through the TraceSink
methods declared in _core.pxd; the replay calls the core's declared functions (run_op,
new_scalar, ...). The policy (signatures, cache, fallbacks) is dualad/function.py.
"""
cimport cython
from libc.math cimport copysign
from libc.stdlib cimport calloc, malloc, realloc, free
from libc.string cimport memset
from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF

from dualad._scalar cimport *
from dualad._core cimport (Tensor, Variable, Primitive, TraceSink, ASSIGN_SET, ASSIGN_ADD,
                           ASSIGN_SUB, new_scalar, run_op, raw_arith, plain_copy)
from dualad import _core

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


def begin_trace():
    """Start taking a trace on this thread (dualad.function); returns the Tracer."""
    return _core.begin_trace(Tracer())


include "_program.pxi"
include "_replay.pxi"
