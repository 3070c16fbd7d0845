# The compact record: a tape's entries of scalar ops as C structs.
# (included by _core.pyx: one extension module, assembled from these files)
#
# Most eager entries are one scalar opcode on one or two float scalars (a training step on
# scalars, a chain of sin, multiply and add). As Entry objects each cost an allocation, a
# collector link, a list slot and seven reference fields to clear. They are kept instead as
# structs in one growing C array beside the tape's list of Entry objects (everything else);
# each struct notes how many Entry objects came before it, which orders the two. The sweep
# reads a struct's values directly; where it needs an Entry (a sweep that something records,
# a batched one, the tests' view of the record) it makes one from the struct.

from cpython.ref cimport Py_XDECREF
from libc.stdlib cimport realloc

# one freed array kept for the next record: eager code makes a tape per step
cdef ScalarRec* _spare_recs = NULL
cdef Py_ssize_t _spare_cap = 0
cdef Py_ssize_t _RECS_KEPT = 1 << 12


@cython.final
@cython.no_gc   # holds built-in Primitives and Tensors of exact type Tensor, which are no_gc
@cython.freelist(8)
cdef class ScalarRecord:
    """The growing C array of a tape's scalar entries (the tape and a running sweep hold it)."""

    def __init__(self):
        raise TypeError("ScalarRecord is internal to the tape")

    def __dealloc__(self):
        global _spare_recs, _spare_cap
        cdef ScalarRec* recs = self.recs
        cdef Py_ssize_t i, n = self.n, cap = self.cap
        # detached first: a Tensor's release below may run a finalizer that records
        self.recs = NULL
        self.n = self.cap = 0
        for i in range(n):
            Py_XDECREF(recs[i].prim)
            Py_XDECREF(recs[i].in0)
            Py_XDECREF(recs[i].in1)
            Py_XDECREF(recs[i].out)
        if recs != NULL:
            if _spare_recs == NULL and cap <= _RECS_KEPT:
                _spare_recs = recs
                _spare_cap = cap
            else:
                free(recs)

    def __reduce__(self):
        raise TypeError("a tape's record cannot be pickled")


cdef int _grow_scalar_record(ScalarRecord record) except -1:
    global _spare_recs, _spare_cap
    cdef ScalarRec* recs
    cdef Py_ssize_t cap
    if record.recs == NULL and _spare_recs != NULL:
        record.recs = _spare_recs
        record.cap = _spare_cap
        _spare_recs = NULL
        _spare_cap = 0
        if record.cap > record.n:
            return 0
    cap = 16 if record.cap == 0 else 2 * record.cap
    recs = <ScalarRec*>realloc(record.recs, cap * sizeof(ScalarRec))
    if recs == NULL:
        raise MemoryError("not enough memory for the tape's record")
    record.recs = recs
    record.cap = cap
    return 0


cdef int _append_scalar_rec(Tape tape, Primitive p, Tensor in0, Tensor in1, Tensor out,
                            Py_ssize_t s0, Py_ssize_t s1) except -1:
    # _append_entry for a scalar opcode on float scalars of exact type Tensor (in1 None: one
    # input), one of which has a slot on `tape` (s0, s1)
    cdef ScalarRecord record = tape._scalars
    cdef ScalarRec* r
    if record is None:
        record = ScalarRecord.__new__(ScalarRecord)
        if tape._scalars is None:   # (the allocation may have run a finalizer that records)
            tape._scalars = record
        else:
            record = tape._scalars
    cdef Py_ssize_t out_slot = tape._n_slots
    tape._n_slots += 1
    _set_slot(out, tape.id, out_slot)
    # the room checked after the last step that can run Python code (an allocation may run a
    # finalizer recording on this tape); from here to the count nothing does
    if record.n == record.cap:
        _grow_scalar_record(record)
    r = &record.recs[record.n]
    r.prim = <PyObject*>p
    r.in0 = <PyObject*>in0
    r.in1 = NULL if in1 is None else <PyObject*>in1
    r.out = <PyObject*>out
    Py_INCREF(p)
    Py_INCREF(in0)
    if in1 is not None:
        Py_INCREF(in1)
    Py_INCREF(out)
    r.a = in0._d
    r.b = in0._d if in1 is None else in1._d
    r.y = out._d
    r.s0 = s0
    r.s1 = s1
    r.out_slot = out_slot
    r.pos = 0 if tape._entries is None else len(tape._entries)
    r.code = p.code
    r.f32 = out._kind == K_F32
    record.n += 1
    return 0


cdef Entry _entry_of_rec(ScalarRec r):
    """The Entry the struct stands for (taken by value: the allocations here may run a
    finalizer that records, moving the array)."""
    cdef Entry e = Entry.__new__(Entry)
    e.prim = <Primitive>r.prim
    e.args = (<Tensor>r.in0,) if r.in1 == NULL else (<Tensor>r.in0, <Tensor>r.in1)
    e.out = <Tensor>r.out
    e.s0 = r.s0
    e.s1 = r.s1
    e.out_slot = r.out_slot
    return e


cdef Py_ssize_t _n_recorded(Tape tape):
    return ((0 if tape._entries is None else len(tape._entries))
            + (0 if tape._scalars is None else tape._scalars.n))


cdef list _entries_in_order(Tape tape):
    """The whole record as Entry objects, in the order recorded."""
    cdef list entries = tape._entries if tape._entries is not None else []
    cdef ScalarRecord record = tape._scalars
    cdef Py_ssize_t i = 0, j = 0, n_entries = len(entries)
    cdef Py_ssize_t n_scalars = 0 if record is None else record.n
    cdef list out = []
    while i < n_entries or j < n_scalars:
        # struct j comes before entry i when fewer than i + 1 entries preceded it
        if j < n_scalars and (i == n_entries or record.recs[j].pos <= i):
            out.append(_entry_of_rec(record.recs[j]))
            j += 1
        else:
            out.append(entries[i])
            i += 1
    return out
