# Declarations of the compiled core, so that other Cython modules can cimport them.

from cpython.ref cimport PyObject

cdef class Tensor:
    cdef object _arr            # numpy array, or None for a scalar not yet materialised
    cdef double _d              # the value when _is_scalar (float32 values stay rounded to float32)
    cdef bint _is_scalar        # shape () and float dtype: arithmetic runs on C doubles
    cdef bint _is_var           # a Variable: read through a snapshot when recorded
    cdef int _kind              # K_F32, K_F64 or K_OTHER
    cdef object _dtype          # numpy dtype
    # reverse mode: the slot of this tensor on the tape that recorded it first, and on a
    # second one (nested tapes: a gradient of a gradient); slots on further tapes live in
    # _more_slots {tape id: slot}. A tape id field of 0 holds no slot.
    cdef long long _tape_id
    cdef Py_ssize_t _slot
    cdef long long _tape_id2
    cdef Py_ssize_t _slot2
    cdef dict _more_slots
    # forward mode: {accumulator id: tangent Tensor}; a float scalar's tangent under one
    # accumulator may instead be a C double (_tan_d for accumulator _tan_acc, 0: none), never
    # in both places. Readers go through _tangent_obj (_transform.pxi).
    cdef dict _tangents
    cdef long long _tan_acc
    cdef double _tan_d

    cdef object _value(self)


cdef class Variable(Tensor):
    cdef public bint trainable
    cdef public str name
    # dualad.function's replay stages assignments: the slot holding the staged value, valid
    # while _stage_gen is the running replay's generation
    cdef long long _stage_gen
    cdef Py_ssize_t _stage_slot
    # dualad.function holds Variables passed as arguments weakly (its cache dies with them)
    cdef object __weakref__
    # the last snapshot of a scalar Variable read by an op, for the next read to share (see
    # _read_snapshot)
    cdef Tensor _last_read
    cdef Tensor _snapshot(self)
    cdef Tensor _read_snapshot(self)
    cdef void _set_from(self, Tensor t)
    cdef Tensor _checked(self, object value, str what)


cdef class Primitive:
    cdef readonly str name
    cdef object _impl              # impl(*raw values, **params) -> raw value (the property impl)
    cdef bint _quiet               # _impl runs in the quiet per-thread context (_call_impl)
    cdef int _small_op             # _impl's operation in the core's small loops, or 0
    cdef Py_ssize_t _quiet_gen     # the _quiet_impls_gen _quiet was worked out at; -1: not yet
    cdef public tuple vjps         # per input: vjp(g, ans, args, params) -> cotangent, or None
    cdef public object variadic_vjp  # for any number of inputs: vjp(k, g, ans, args, params)
    cdef public object jvp         # jvp(tangents, ans, args, params) -> tangent of the output
    cdef readonly int code         # scalar opcode for the C fast path, 0 if none
    cdef public bint differentiable


cdef class Entry:
    cdef Primitive prim
    cdef tuple args
    cdef dict params
    cdef Tensor out
    cdef Py_ssize_t out_slot
    cdef Py_ssize_t s0, s1         # slots of the first two inputs, -1 when not on the tape
    cdef tuple more_slots          # slots of inputs beyond the second


# A tape's entry of a scalar opcode on float scalars, kept as a C struct (_record.pxi)
cdef struct ScalarRec:
    PyObject* prim                 # the Primitive (a reference owned by the record)
    PyObject* in0                  # its inputs and output: Tensors of exact type Tensor (owned;
    PyObject* in1                  #   in1 NULL for one input)
    PyObject* out
    double a, b, y                 # their values (b = a for one input): the sweep reads these
    Py_ssize_t s0, s1, out_slot
    Py_ssize_t pos                 # how many Entry objects the tape had recorded before it
    int code                       # the primitive's scalar opcode
    bint f32


cdef class ScalarRecord:
    cdef ScalarRec* recs
    cdef Py_ssize_t n, cap


cdef class Transformation:
    cdef readonly long long id
    cdef public bint recording     # False while stop_recording() or after a non-persistent gradient
    cdef int hidden                # > 0 while a derivative rule of this or an outer level runs
    cdef bint is_tape
    # the thread state id (PyThreadState_GetID, never 0) of the thread whose stack holds it,
    # 0 while inactive: one object is active on one thread at a time (its hidden counter and
    # recording flag are not per thread)
    cdef unsigned long long _owner


cdef class Tape(Transformation):
    cdef list _entries             # None until the first entry (and after a release)
    cdef ScalarRecord _scalars     # the entries of scalar ops, beside _entries (None until one)
    cdef Py_ssize_t _n_slots
    cdef readonly bint persistent
    cdef readonly bint watch_accessed_variables
    # the tensors given a slot by watch (explicit or variable access), in order: None until the
    # first (and after a release), that Tensor alone (no list for the usual one), then a list
    cdef object _watched
    cdef readonly bint released
    cdef public bint _used         # a non-persistent tape that has given its gradient
    # watched_variables() when a non-persistent tape released: a tuple, or the released
    # watched list itself when it held Variables only (no one else holds that list)
    cdef object _variables_at_release
    cdef bint _listed              # its id is in the live set (from its first slot to its release)

    cdef bint _watch(self, Tensor t) except -1
    cdef object _released_variables(self)
    cdef int _clear_watched_slots(self) except -1
    cdef int _finish_use(self) except -1
    cdef int _drop_record(self) except -1
    cdef list _sweep_at_level(self, list targets, list seeds, list sources, Py_ssize_t batch=*)


cdef class Accumulator(Transformation):
    cdef list _primals


# How a traced program changes a Variable (dualad.function)
cdef enum:
    ASSIGN_SET = 0
    ASSIGN_ADD = 1
    ASSIGN_SUB = 2


cdef class TraceSink:
    """The trace being taken on a thread, as the core sees it: every primitive call, Variable
    read and assignment, and Python decision on a tensor is reported to it. dualad._trace's
    Tracer implements it (the core never imports the trace machinery)."""
    cdef public object impure      # why the trace cannot be replayed, or None

    cdef bint follows(self, Tensor t) except -1       # t's value comes from the trace's inputs
    cdef void record_op(self, Primitive p, tuple args, dict params, Tensor out) except *
    cdef void record_read(self, Variable v, Tensor snap) except *
    cdef void record_assign(self, Variable v, Tensor value, int mode) except *
    cdef void record_guard(self, Tensor t, object outcome) except *
    cdef void record_alias(self, Tensor copy, Tensor orig) except *


# Functions other compiled modules (dualad._trace) call
cdef Tensor new_scalar(double v, int kind)
cdef Tensor run_op(Primitive p, tuple args, dict params)
cdef Tensor raw_arith(Tensor a, Tensor b, int sign)
cdef Tensor plain_copy(Tensor t)
