# Declarations of the compiled core, so that other Cython modules can cimport them.

cdef class Tensor:
    cdef object _arr            # numpy array, or None for a scalar not yet materialised
    cdef double _d              # the value when _is_scalar (float32 values stay rounded to float32)
    cdef bint _is_scalar        # shape () and float dtype: arithmetic runs on C doubles
    cdef bint _is_var           # a Variable: read through a snapshot when recorded
    cdef int _kind              # K_F32, K_F64 or K_OTHER
    cdef object _dtype          # numpy dtype
    # reverse mode: the slot of this tensor on the tape that recorded it first;
    # slots on further tapes (nested tapes) live in _more_slots {tape id: slot}
    cdef long long _tape_id
    cdef Py_ssize_t _slot
    cdef dict _more_slots
    # forward mode: {accumulator id: tangent Tensor}
    cdef dict _tangents

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
    cdef Tensor _snapshot(self)
    cdef void _set_from(self, Tensor t)
    cdef Tensor _checked(self, object value, str what)


cdef class Primitive:
    cdef readonly str name
    cdef public object impl        # impl(*raw values, **params) -> raw value
    cdef public tuple vjps         # per input: vjp(g, ans, args, params) -> cotangent, or None
    cdef public object variadic_vjp  # for any number of inputs: vjp(k, g, ans, args, params)
    cdef public object jvp         # jvp(tangents, ans, args, params) -> tangent of the output
    cdef public int code           # scalar opcode for the C fast path, 0 if none
    cdef public bint differentiable


cdef class Entry:
    cdef Primitive prim
    cdef tuple args
    cdef dict params
    cdef Tensor out
    cdef Py_ssize_t out_slot
    cdef Py_ssize_t s0, s1         # slots of the first two inputs, -1 when not on the tape
    cdef tuple more_slots          # slots of inputs beyond the second


cdef class Transformation:
    cdef readonly long long id
    cdef public bint recording     # False while stop_recording() or after a non-persistent gradient
    cdef int hidden                # > 0 while a derivative rule of this or an outer level runs
    cdef bint is_tape


cdef class Tape(Transformation):
    cdef list _entries
    cdef Py_ssize_t _n_slots
    cdef readonly bint persistent
    cdef readonly bint watch_accessed_variables
    cdef list _watched             # tensors given a slot by watch (explicit or variable access)
    cdef readonly bint released
    cdef public bint _used         # a non-persistent tape that has given its gradient

    cdef bint _watch(self, Tensor t) except -1


cdef class Accumulator(Transformation):
    cdef list _primals


cdef class Tracer:
    cdef dict _slot_of             # id(tensor) -> slot of the program
    cdef list _keep                # the tensors in _slot_of, kept alive so their ids stay unique
    cdef readonly list instrs
    cdef readonly dict consts      # slot -> Tensor captured by value
    cdef dict _const_slots         # (kind, value, sign) -> slot of a scalar constant
    cdef dict _reads               # id(Variable) -> slot of its last read, until assigned
    cdef dict _var_args            # id(Variable) -> index, for Variables passed as arguments
    cdef readonly Py_ssize_t n_slots
    cdef public object impure      # why the trace cannot be replayed, or None

    cdef Py_ssize_t _new_slot(self, Tensor t) except -1
    cdef Py_ssize_t _slot(self, Tensor t) except -1
    cdef bint _derived(self, Tensor t)
    cdef void _op(self, Primitive p, tuple args, dict params, Tensor out) except *
    cdef void _read(self, Variable v, Tensor snap) except *
