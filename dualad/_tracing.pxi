# The core's side of dualad.function: the trace being taken on this thread, if any, is told
# what the core does (dualad._trace records it into a program and replays it).
# (included by _core.pyx: one extension module, assembled from these files)

@cython.auto_pickle(False)   # a trace names objects of this process by identity
cdef class TraceSink:
    """The base of dualad._trace.Tracer: records nothing."""

    cdef bint follows(self, Tensor t) except -1:
        return False

    cdef void record_op(self, Primitive p, tuple args, dict params, Tensor out) except *:
        pass

    cdef void record_read(self, Variable v, Tensor snap) except *:
        pass

    cdef void record_assign(self, Variable v, Tensor value, int mode) except *:
        pass

    cdef void record_guard(self, Tensor t, object outcome) except *:
        pass

    cdef void record_alias(self, Tensor copy, Tensor orig) except *:
        pass


def begin_trace(TraceSink sink not None):
    """Make `sink` the trace being taken on this thread (dualad._trace.begin_trace)."""
    global _n_tracing
    st = _state()
    if st.tracer is not None:
        raise RuntimeError("a trace is already being taken on this thread")
    st.tracer = sink
    _n_tracing += 1
    return sink


def end_trace():
    global _n_tracing
    st = _state()
    if st.tracer is not None:
        st.tracer = None
        _n_tracing -= 1


def current_tracer():
    """The trace being taken on this thread, or None."""
    return _state().tracer if _n_tracing else None


def tracing():
    """True while a trace is being taken on this thread."""
    return _n_tracing > 0 and _state().tracer is not None


cdef inline TraceSink _tracer():
    return _state().tracer


cdef void _trace_alias(Tensor copy, Tensor orig) except *:
    cdef TraceSink tr = _tracer()
    if tr is not None:
        tr.record_alias(copy, orig)


cdef void _trace_impure(str why) except *:
    cdef TraceSink tr = _tracer()
    if tr is not None and tr.impure is None:
        tr.impure = why


def mark_impure(str why):
    """Make the trace being taken on this thread run eagerly instead, for this reason."""
    _trace_impure(why)


cdef void _trace_concrete(Tensor t, str what) except *:
    cdef TraceSink tr = _tracer()
    if tr is not None and tr.impure is None and tr.follows(t):
        tr.impure = f"{what} reads a traced value into Python"


cdef void _trace_guard(Tensor t, object outcome) except *:
    cdef TraceSink tr = _tracer()
    if tr is not None:
        tr.record_guard(t, outcome)


cdef void _trace_assign(Variable v, Tensor value, int mode) except *:
    cdef TraceSink tr = _tracer()
    if tr is not None:
        tr.record_assign(v, value, mode)
