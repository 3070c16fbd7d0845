# The per-thread stack of transformations, recording on tapes and tangent propagation; Transformation and Accumulator.
# (included by _core.pyx: one extension module, assembled from these files)

# --------------------------------------------------------------------------------------------
# Per-thread transformation stacks
# --------------------------------------------------------------------------------------------

cdef class _ThreadState:
    """One thread's stack of transformations. It lives in a threading.local, so it dies with
    its thread: a thread that ends inside `with tape:` takes that tape with it."""
    cdef list stack
    cdef TraceSink tracer   # the trace being taken on this thread (dualad.function), or None
    cdef object quiet       # this thread's context for numpy ufuncs (see _call_ufunc_quietly)
    cdef bint quiet_entered # a ufunc is running in it (a finalizer re-entering takes the slow path)

    def __dealloc__(self):
        global _n_live, _n_tracing, _cached_tsid, _cached_state
        if <PyObject*>self == _cached_state:
            _cached_tsid = 0
            _cached_state = NULL
        cdef Transformation tr
        if self.stack is not None:
            _n_live -= len(self.stack)
            for tr in self.stack:       # the dead thread's objects may be entered elsewhere
                tr._owner = 0
        if self.tracer is not None:
            _n_tracing -= 1


cdef object _tls = threading.local()
# The last thread's state, cached by the interpreter's unique thread-state id (OS thread
# idents are reused by new threads; these ids never are). Borrowed: the threading.local owns
# the state, and its __dealloc__ clears the cache.
cdef unsigned long long _cached_tsid = 0
cdef PyObject* _cached_state = NULL
cdef Py_ssize_t _n_live = 0          # transformations on any thread's stack: 0 means no work
cdef Py_ssize_t _n_tracing = 0       # traces being taken on any thread
cdef long long _next_id = 0


# The ids of the tapes holding slots (from a tape's first slot to its release), to recycle stale
# slot fields: a C hash set of nonzero ids (open addressing, linear probing, at most half full),
# as every tape that watches joins and leaves it (a Python set cost a boxed int and two hashed
# set operations per tape). Used with the GIL held; no Python code runs inside.
cdef extern from *:
    """
    static long long* dualad_live_ids = NULL;   /* 0: an empty slot */
    static size_t dualad_live_mask = 0;         /* capacity - 1 (a power of two), 0 before use */
    static size_t dualad_live_count = 0;

    static inline size_t dualad_live_home(long long id, size_t mask) {
        return (size_t)(((unsigned long long)id * 0x9E3779B97F4A7C15ull) >> 32) & mask;
    }

    static inline int dualad_live_contains(long long id) {
        size_t i;
        if (dualad_live_count == 0)
            return 0;
        for (i = dualad_live_home(id, dualad_live_mask); dualad_live_ids[i] != 0;
             i = (i + 1) & dualad_live_mask)
            if (dualad_live_ids[i] == id)
                return 1;
        return 0;
    }

    static inline void dualad_live_put(long long* ids, size_t mask, long long id) {
        size_t i = dualad_live_home(id, mask);
        while (ids[i] != 0)
            i = (i + 1) & mask;
        ids[i] = id;
    }

    /* adds a nonzero id not already in the set; -1 with MemoryError set if it cannot grow */
    static int dualad_live_add(long long id) {
        if (2 * (dualad_live_count + 1) > dualad_live_mask + 1) {
            size_t i, cap = dualad_live_mask ? 2 * (dualad_live_mask + 1) : 16;
            long long* ids = (long long*)PyMem_Calloc(cap, sizeof(long long));
            if (ids == NULL) {
                PyErr_NoMemory();
                return -1;
            }
            if (dualad_live_ids != NULL) {
                for (i = 0; i <= dualad_live_mask; i++)
                    if (dualad_live_ids[i] != 0)
                        dualad_live_put(ids, cap - 1, dualad_live_ids[i]);
                PyMem_Free(dualad_live_ids);
            }
            dualad_live_ids = ids;
            dualad_live_mask = cap - 1;
        }
        dualad_live_put(dualad_live_ids, dualad_live_mask, id);
        dualad_live_count++;
        return 0;
    }

    /* removes id if present; the probe runs after it move back over the freed slot */
    static void dualad_live_discard(long long id) {
        size_t i, j, k, mask = dualad_live_mask;
        if (dualad_live_count == 0)
            return;
        for (i = dualad_live_home(id, mask); dualad_live_ids[i] != id; i = (i + 1) & mask)
            if (dualad_live_ids[i] == 0)
                return;
        for (j = i;;) {
            j = (j + 1) & mask;
            if (dualad_live_ids[j] == 0)
                break;
            k = dualad_live_home(dualad_live_ids[j], mask);
            /* the entry at j stays if its home lies cyclically in (i, j] */
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                continue;
            dualad_live_ids[i] = dualad_live_ids[j];
            i = j;
        }
        dualad_live_ids[i] = 0;
        dualad_live_count--;
    }
    """
    bint dualad_live_contains(long long id)
    int dualad_live_add(long long id) except -1
    void dualad_live_discard(long long id)


# for tests of the set itself, with ids far above any tape's
def _live_tape_ids_contains(long long tape_id):
    return dualad_live_contains(tape_id)


def _live_tape_ids_add(long long tape_id):
    if tape_id == 0:
        raise ValueError("tape ids are nonzero")
    if not dualad_live_contains(tape_id):
        dualad_live_add(tape_id)


def _live_tape_ids_discard(long long tape_id):
    dualad_live_discard(tape_id)


cdef inline _ThreadState _state():
    cdef unsigned long long tsid = PyThreadState_GetID(PyThreadState_Get())
    if tsid == _cached_tsid and _cached_state != NULL:
        return <_ThreadState>_cached_state
    return _state_of_thread(tsid)     # (apart: the check above stays small enough to inline)


cdef _ThreadState _state_of_thread(unsigned long long tsid):
    global _cached_tsid, _cached_state
    st = getattr(_tls, "state", None)
    if st is None:
        st = _ThreadState()
        (<_ThreadState>st).stack = []
        _tls.state = st
    _cached_tsid = tsid
    _cached_state = <PyObject*>st
    return st


def live_transformation_count():
    """How many tapes and accumulators are active on all threads together."""
    return _n_live


cdef class paused:
    """Context manager: no tape or accumulator of this thread sees the operations in the block."""
    cdef list _hidden

    def __enter__(self):
        cdef Transformation tr
        self._hidden = list(_state().stack)
        for tr in self._hidden:
            tr.hidden += 1
        return self

    def __exit__(self, *exc):
        cdef Transformation tr
        for tr in self._hidden:
            tr.hidden -= 1
        self._hidden = []
        return False


def active_transformations():
    """The tapes and accumulators active on this thread, outermost first."""
    return tuple(_state().stack)


# The last two tape ids boxed as the ints keying _more_slots: nested tapes look
# up both ids on every op, and a fresh int per lookup cost more than the lookup (ids are never
# reused, so a stale entry cannot match). Replacing an entry runs no Python code.
cdef long long _boxed_tape_ids[2]
cdef object _boxed_tape_id_0 = None
cdef object _boxed_tape_id_1 = None
cdef bint _boxed_tape_id_next = 0


cdef inline object _tape_key(long long tape_id):
    global _boxed_tape_id_0, _boxed_tape_id_1, _boxed_tape_id_next
    if _boxed_tape_id_0 is not None and _boxed_tape_ids[0] == tape_id:
        return _boxed_tape_id_0
    if _boxed_tape_id_1 is not None and _boxed_tape_ids[1] == tape_id:
        return _boxed_tape_id_1
    cdef object key = tape_id
    if _boxed_tape_id_next:
        _boxed_tape_ids[1] = tape_id
        _boxed_tape_id_1 = key
    else:
        _boxed_tape_ids[0] = tape_id
        _boxed_tape_id_0 = key
    _boxed_tape_id_next = not _boxed_tape_id_next
    return key


cdef inline Py_ssize_t _slot_of(Tensor t, long long tape_id) except -2:
    # t's slot on the tape, -1 for none (-2, never a slot: an error, so that a -1 costs no
    # check of the error state)
    if t._tape_id == tape_id:
        return t._slot
    if t._tape_id2 == tape_id:
        return t._slot2
    if t._more_slots is not None:
        return _more_slot_of(t, tape_id)
    return -1


cdef Py_ssize_t _more_slot_of(Tensor t, long long tape_id) except -2:
    s = t._more_slots.get(_tape_key(tape_id))
    return -1 if s is None else <Py_ssize_t>s


cdef int _set_slot(Tensor t, long long tape_id, Py_ssize_t slot) except -1:
    # a free field first, then one holding a released tape's slot (set lookups), then the dict
    if t._tape_id2 == tape_id:
        t._slot2 = slot
        return 0
    if t._tape_id == 0 or t._tape_id == tape_id:
        t._tape_id = tape_id
        t._slot = slot
        return 0
    if t._tape_id2 == 0:
        t._tape_id2 = tape_id
        t._slot2 = slot
        return 0
    if not dualad_live_contains(t._tape_id):
        t._tape_id = tape_id
        t._slot = slot
        return 0
    if not dualad_live_contains(t._tape_id2):
        t._tape_id2 = tape_id
        t._slot2 = slot
        return 0
    if t._more_slots is None:
        t._more_slots = {}
    elif len(t._more_slots) >= 8:
        # slots of tapes dropped without a gradient: a long-lived tensor (a Variable watched
        # by a new tape every step) must not collect them
        for dead in [k for k in t._more_slots if not dualad_live_contains(k)]:
            del t._more_slots[dead]
    t._more_slots[_tape_key(tape_id)] = slot
    return 0


cdef void _clear_slot(Tensor t, long long tape_id) except *:
    if t._tape_id == tape_id:
        t._tape_id = 0
    elif t._tape_id2 == tape_id:
        t._tape_id2 = 0
    elif t._more_slots is not None:
        t._more_slots.pop(_tape_key(tape_id), None)


cdef void _transform(Primitive p, tuple args, dict params, Tensor out) except *:
    cdef _ThreadState st = _state()
    cdef list stack = st.stack
    cdef Py_ssize_t i, n = len(stack)
    cdef Transformation tr
    cdef Tensor a
    if n == 0:
        return
    for i in range(n):
        if i >= len(stack):
            break       # a rule (user code) left a tape or accumulator of this thread
        tr = stack[i]
        if tr.hidden or not tr.recording:
            continue
        if tr.is_tape:
            _record(<Tape>tr, p, args, params, out)
        else:
            _push_tangent(<Accumulator>tr, stack, i, p, args, params, out)


cdef void _record(Tape tape, Primitive p, tuple args, dict params, Tensor out) except *:
    cdef Py_ssize_t n = len(args), k
    cdef Py_ssize_t s0 = -1, s1 = -1
    cdef long long tid = tape.id
    cdef bint found
    cdef list more = None
    s0 = _slot_of(<Tensor>args[0], tid)
    if n > 1:
        s1 = _slot_of(<Tensor>args[1], tid)
    found = s0 >= 0 or s1 >= 0
    if n > 2:
        more = [_slot_of(<Tensor>args[k], tid) for k in range(2, n)]
        for k in range(n - 2):
            if more[k] >= 0:
                found = True
    if not found:
        return
    _append_entry(tape, p, args, params, out, s0, s1, None if more is None else tuple(more))


cdef extern from *:
    """
    /* an empty list with room for n items: a tape's record grows one entry at a time, and
       list.append would reallocate its array at 1, 5 and 9 entries (items past the size are
       never read: CPython's lists only keep 0 <= size <= allocated) */
    static PyObject* dualad_list_with_room(Py_ssize_t n) {
        PyObject* list = PyList_New(n);
        if (list != NULL)
            Py_SET_SIZE(list, 0);
        return list;
    }
    """
    list dualad_list_with_room(Py_ssize_t n)


cdef int _append_entry(Tape tape, Primitive p, tuple args, dict params, Tensor out,
                       Py_ssize_t s0, Py_ssize_t s1, tuple more_slots) except -1:
    # the entry of an op one of whose inputs has a slot on `tape` (s0, s1, more_slots)
    cdef Entry e = Entry.__new__(Entry)
    e.prim = p
    e.args = args
    e.params = params
    e.out = out
    e.s0 = s0
    e.s1 = s1
    e.more_slots = more_slots
    return _push_entry(tape, e, out)


cdef inline int _push_entry(Tape tape, Entry e, Tensor out) except -1:
    if tape._entries is None:
        tape._entries = dualad_list_with_room(8)
    e.out_slot = tape._n_slots
    tape._n_slots += 1
    _set_slot(out, tape.id, e.out_slot)
    tape._entries.append(e)
    return 0


cdef inline Tensor _operand(object x, int kind):
    # a scalar op's operand as a Tensor: a number becomes a scalar of the op's kind, as
    # binary() converts a rule's number operand
    return <Tensor>x if isinstance(x, Tensor) else new_scalar(<double>x, kind)


cdef inline bint _scalar_level_c_path(Transformation tr, list stack, Py_ssize_t level,
                                      Primitive p, Tensor a, Tensor b, Tensor out,
                                      Py_ssize_t s0, Py_ssize_t s1) except -1:
    # one recording level's C path for a scalar op on a and b (None: a alone) giving out: a
    # struct of a tape's compact record (s0, s1 the inputs' slots there, one of them set), or
    # an accumulator's tangent on C doubles (none without a JVP rule, as _push_tangent).
    # False, having done nothing, where the level needs the argument tuple.
    if tr.is_tape:
        if type(a) is Tensor and (b is None or type(b) is Tensor):
            _append_scalar_rec(<Tape>tr, p, a, b, out, s0, s1)
            return True
        return False
    return p.jvp is None or _push_scalar_tangent(<Accumulator>tr, stack, level, p, a, b, out)


cdef int _record_scalar(Primitive p, object x, object y, tuple args, int kind, Tensor out,
                        list stack) except -1:
    """_transform of a scalar opcode's op on x and y (y None: x alone), float scalar Tensors
    of `kind` (not Variables) or numbers of that kind, giving `out`; `stack` this thread's
    transformations. `args` is the op's argument tuple, or None: it is made (numbers made
    Tensors) only when an accumulator's JVP rule runs (not its C path) or a Tensor subclass is
    recorded. A tape holding a slot of an operand keeps the entry as a struct of its compact
    record."""
    cdef Transformation tr
    cdef Tensor t0 = None, t1 = None
    cdef Py_ssize_t i, n = len(stack), s0 = -1, s1 = -1
    for i in range(n):
        if i >= len(stack):
            break       # (as _transform: a rule or a finalizer left a level)
        tr = <Transformation>stack[i]
        if tr.hidden or not tr.recording:
            continue
        if tr.is_tape:
            s0 = _slot_of(<Tensor>x, tr.id) if isinstance(x, Tensor) else -1
            s1 = _slot_of(<Tensor>y, tr.id) if isinstance(y, Tensor) else -1
            if s0 < 0 and s1 < 0:
                continue
        if t0 is None:      # (one conversion shared by every level)
            t0 = _operand(x, kind)
            t1 = None if y is None else _operand(y, kind)
        if _scalar_level_c_path(tr, stack, i, p, t0, t1, out, s0, s1):
            continue
        if args is None:
            args = (t0,) if t1 is None else (t0, t1)
        if tr.is_tape:
            _append_entry(<Tape>tr, p, args, None, out, s0, s1, None)
        else:
            _push_tangent(<Accumulator>tr, stack, i, p, args, None, out)
    return 0


# The last accumulator id converted to the int keying tangent dicts: one conversion per
# accumulator switch instead of one per op (ids are never reused, so a stale key cannot match)
cdef long long _tangent_key_id = 0
cdef object _tangent_key = None


cdef inline object _tangent_key_of(Accumulator acc):
    global _tangent_key_id, _tangent_key
    if acc.id != _tangent_key_id or _tangent_key is None:
        _tangent_key = acc.id
        _tangent_key_id = acc.id
    return _tangent_key


cdef object _tangent_obj(Tensor t, Accumulator acc):
    """t's tangent under `acc` as a Tensor, or None. A tangent kept as a C double is given as
    a fresh scalar Tensor (bits unchanged: it was rounded to t's kind when computed)."""
    if t._tan_acc == acc.id:
        return new_scalar(t._tan_d, t._kind)
    if t._tangents is None:
        return None
    return t._tangents.get(_tangent_key_of(acc))


cdef void _push_tangent(Accumulator acc, list stack, Py_ssize_t level, Primitive p, tuple args,
                        dict params, Tensor out) except *:
    cdef Tensor a
    cdef bint any_tangent = False
    cdef list tangents
    cdef object t
    if p.jvp is None:
        return
    if (p.code != OP_NONE and out._is_scalar and 0 < len(args) <= 2
            and _push_scalar_tangent(acc, stack, level, p, <Tensor>args[0],
                                     <Tensor>args[1] if len(args) == 2 else None, out)):
        return
    tangents = []
    for a in args:
        t = _tangent_obj(a, acc)
        if t is not None:
            any_tangent = True
        tangents.append(t)
    if not any_tangent:
        return
    # The rule runs at this accumulator's level: it and everything nested inside it do not
    # see the tangent computation, outer levels do (that is what makes nesting correct).
    cdef list inner = stack[level:]
    cdef Transformation tr
    for tr in inner:
        tr.hidden += 1
    try:
        tout = p.jvp(tuple(tangents), out, args, params)
    finally:
        for tr in inner:
            tr.hidden -= 1
    if tout is None:
        return
    if out._tangents is None:
        out._tangents = {}
    out._tangents[_tangent_key_of(acc)] = tout


cdef inline int _scalar_tangent_in(Tensor x, Accumulator acc, int kind, double* tangent) except -2:
    # 1 with *tangent set when x has a tangent under `acc`, 0 when it has none, -1 when x or
    # its tangent is not a plain float scalar of the given kind (the rule must run)
    cdef object t
    if not x._is_scalar or x._kind != kind:
        return -1
    if x._tan_acc == acc.id:
        tangent[0] = x._tan_d
        return 1
    if x._tangents is None:
        return 0
    t = x._tangents.get(_tangent_key_of(acc))
    if t is None:
        return 0
    if not isinstance(t, Tensor) or not (<Tensor>t)._is_scalar or (<Tensor>t)._kind != kind \
            or (<Tensor>t)._is_var:
        return -1
    tangent[0] = (<Tensor>t)._d
    return 1


cdef bint _push_scalar_tangent(Accumulator acc, list stack, Py_ssize_t level, Primitive p,
                               Tensor a, Tensor b, Tensor out) except -1:
    """The C path of _push_tangent for p (which has a JVP rule) on a and b (None: a alone),
    giving out: a scalar opcode on float scalars of one kind with scalar
    tangents of that kind, and nothing outside this accumulator's level that would see its JVP
    rule run (a visible, recording outer tape or accumulator records the tangent computation:
    reverse-over-forward, forward-over-forward; a trace being taken replays it;
    check_numerics checks each of its ops). Then the output tangent is computed on C doubles,
    with the bits of the rule, and kept as a C double on `out` (a dual number: no tangent
    Tensor, no dict). Returns False, having done nothing, when the rule must run."""
    cdef Py_ssize_t n = 1 if b is None else 2, i
    cdef int kind = out._kind
    cdef int has_a, has_b = 0
    cdef Transformation tr
    cdef double ta = 0.0, tb = 0.0, va, vb
    if n != _scalar_arity(p.code) or _check_numerics:
        return False
    if _n_tracing and _state().tracer is not None:
        return False
    if level > len(stack):
        return False
    for i in range(level):
        tr = stack[i]
        if tr.hidden == 0 and tr.recording:
            return False
    has_a = _scalar_tangent_in(a, acc, kind, &ta)
    if has_a < 0:
        return False
    va = a._d
    vb = va
    if n == 2:
        has_b = _scalar_tangent_in(b, acc, kind, &tb)
        if has_b < 0:
            return False
        vb = b._d
    if not has_a and not has_b:
        return True     # no input tangent: no output tangent (as the rule path)
    cdef double d = _round(_scalar_jvp(p.code, has_a, ta, has_b, tb, va, vb, out._d,
                                       kind == K_F32), kind == K_F32)
    if out._tan_acc == 0:
        out._tan_acc = acc.id
        out._tan_d = d
    else:
        # out already carries another accumulator's tangent in its C fields
        if out._tangents is None:
            out._tangents = {}
        out._tangents[_tangent_key_of(acc)] = new_scalar(d, kind)
    return True


@cython.freelist(256)
cdef class Entry:
    """One recorded primitive call: residual inputs, output, and tape slots. The collector
    follows entries: a custom primitive's rules may close over objects that hold the tape."""
    pass


def _recorded_entries(Tape tape):
    """The tape's record as tuples (primitive, args, params, out, s0, s1, out_slot,
    more_slots), in the order recorded, for tests."""
    cdef Entry e
    return [(e.prim, e.args, e.params, e.out, e.s0, e.s1, e.out_slot, e.more_slots)
            for e in _entries_in_order(tape)]


# --------------------------------------------------------------------------------------------
# Transformations: tapes (reverse mode) and accumulators (forward mode)
# --------------------------------------------------------------------------------------------

cdef extern from *:
    """
    /* A thread's transformation stack keeps its buffer: entering and leaving the one tape of a
       with block would otherwise free the buffer on leaving and allocate it again on entering
       (list_resize gives back memory below half use). */
    static inline int dualad_stack_push(PyObject* list, PyObject* item) {
        PyListObject* l = (PyListObject*)list;
        Py_ssize_t n = Py_SIZE(l);
        if (n < l->allocated) {
            Py_INCREF(item);
            l->ob_item[n] = item;
            Py_SET_SIZE(l, n + 1);
            return 0;
        }
        return PyList_Append(list, item);
    }
    /* drops the last item (the list must not be empty) */
    static inline void dualad_stack_drop_last(PyObject* list) {
        Py_ssize_t n = Py_SIZE(list) - 1;
        PyObject* item = PyList_GET_ITEM(list, n);
        Py_SET_SIZE(list, n);
        Py_DECREF(item);
    }
    """
    int dualad_stack_push(list stack, object item) except -1
    void dualad_stack_drop_last(list stack)


class AlreadyActiveError(RuntimeError, ValueError):
    """A tape or accumulator was entered while already active: a ValueError as in TensorFlow,
    and a RuntimeError as dualad raised before."""


cdef int _enter_transformation(Transformation tr) except -1:
    # tr._owner is set exactly while tr is on its owner's stack (here and in
    # _leave_transformation, and cleared when that thread's state dies)
    global _n_live
    cdef list stack = _state().stack
    cdef unsigned long long me = PyThreadState_GetID(PyThreadState_Get())
    if tr._owner == me:
        raise AlreadyActiveError(f"this {type(tr).__name__} is already active; "
                                 "a tape or accumulator cannot be entered twice")
    if tr._owner != 0:
        raise AlreadyActiveError(f"this {type(tr).__name__} is already active on another thread; "
                                 "a tape or accumulator is used by one thread at a time "
                                 "(create one per thread)")
    # the append allocates before the claim: from the claim on, no Python code runs (two
    # threads racing here cannot both see the object free, and no exception separates the
    # claim from the stack entry)
    dualad_stack_push(stack, tr)
    tr._owner = me
    _n_live += 1
    return 0


cdef bint _leave_transformation(Transformation tr) except -1:
    global _n_live
    cdef list stack = _state().stack
    cdef Py_ssize_t i, n = len(stack)
    for i in range(n - 1, -1, -1):
        if stack[i] is tr:
            if i == n - 1:
                dualad_stack_drop_last(stack)   # tr: the caller holds another reference
            else:
                del stack[i]
            _n_live -= 1
            tr._owner = 0
            return True
    return False


cdef inline bint _active_elsewhere(Transformation tr):
    """Whether tr is active (entered) on a thread other than this one."""
    return tr._owner != 0 and tr._owner != PyThreadState_GetID(PyThreadState_Get())


cdef inline bint _active_here(Transformation tr):
    """Whether tr is on this thread's stack."""
    return tr._owner != 0 and tr._owner == PyThreadState_GetID(PyThreadState_Get())


cdef int _refuse_active_elsewhere(Transformation tr, str what) except -1:
    # A tape is used by the thread that records on it: a sweep, reset or release from another
    # thread would read a record still growing (a racy, partial gradient) or drop it under the
    # recording thread's feet. Once the tape is left, any thread may use it.
    if _active_elsewhere(tr):
        raise AlreadyActiveError(f"{type(tr).__name__}.{what}: this tape is active (recording) "
                                 "on another thread; use a tape from the thread that records "
                                 "on it, or after that thread has left its with block")
    return 0


cdef class Transformation:

    def __cinit__(self, *args, **kwargs):
        # (a star signature: Cython gives a no-star __cinit__ a vectorcall constructor, which
        # the subclasses' tp_new then reach through a conversion of their args tuple and dict)
        global _next_id
        _next_id += 1
        self.id = _next_id
        self.recording = True

    def _push(self):
        _enter_transformation(self)

    def _pop(self):
        return _leave_transformation(self)

    @property
    def active(self):
        return _active_here(self)


cdef dict _tangent_dict(Tensor t):
    # t's tangent dict, made if it has none; re-checked after the allocation, which can run
    # other code (a collection's finalizers, another thread) that may have made one meanwhile
    cdef dict d = t._tangents
    if d is None:
        d = {}
        if t._tangents is None:
            t._tangents = d
        else:
            d = t._tangents
    return d


cdef void _move_c_tangent_to_dict(Tensor t, long long keep_id) except *:
    # frees t's C tangent fields for a new accumulator: another accumulator's tangent there
    # moves to the dict. Everything that allocates is done first; the move itself runs no
    # other code, after checking that the fields did not change meanwhile.
    cdef long long old
    cdef dict store
    while True:
        old = t._tan_acc
        if old == 0 or old == keep_id:
            return
        moved = new_scalar(t._tan_d, t._kind)
        key = old
        store = _tangent_dict(t)
        if t._tan_acc == old and t._tangents is store:
            store[key] = moved
            t._tan_acc = 0
            return


cdef bint _plain_pair(Tensor primal, Tensor tangent) except -1:
    # a float primal and a tangent of its dtype and shape, not batched
    if primal._is_scalar:
        return tangent._is_scalar and tangent._kind == primal._kind
    if tangent._is_scalar or primal._dtype is None or tangent._dtype is None:
        return False
    if not is_float(primal) or not (tangent._dtype is primal._dtype
                                    or tangent._dtype == primal._dtype):
        return False
    return tangent._value().shape == primal._value().shape


cdef class Accumulator(Transformation):
    """The forward-mode state. ForwardAccumulator (dualad.tape) adds the public API."""

    def __cinit__(self, *args, **kwargs):
        self.is_tape = False
        self._primals = []

    def _set_tangent(self, Tensor primal, Tensor tangent):
        # Tensors are not followed by the cycle collector: a tangent must never lead back to
        # its primal, so a caller's tangent is stored as a fresh tensor without tangents, or,
        # for a float scalar that is not a Variable (a Variable's snapshots copy its dict),
        # as a C double. The newest accumulator takes the C fields: an older one's tangent
        # there moves to the dict.
        cdef dict store
        if primal._is_scalar and not primal._is_var and tangent._is_scalar \
                and tangent._kind == primal._kind:
            _move_c_tangent_to_dict(primal, self.id)
            if primal._tangents is not None:
                primal._tangents.pop(self.id, None)     # never in both places
            primal._tan_acc = self.id
            primal._tan_d = tangent._d
        else:
            tangent = plain_copy(tangent)
            store = _tangent_dict(primal)
            if primal._tan_acc == self.id:
                primal._tan_acc = 0
            store[self.id] = tangent
        self._primals.append(primal)

    def _watch_plain(self, primals, tangents):
        """Watch a Tensor, or a flat list or tuple of Tensors, along Tensor tangents when every
        primal is a float tensor listed once and its tangent has its dtype and shape (the
        common case, checked here in C): True. False, having watched nothing, otherwise:
        ForwardAccumulator's checks then say what is wrong."""
        cdef Tensor p, t
        cdef Py_ssize_t i, j, n
        if isinstance(primals, Tensor):
            if not isinstance(tangents, Tensor) or not _plain_pair(primals, tangents):
                return False
            self._set_tangent(primals, tangents)
            return True
        if type(primals) not in (list, tuple) or type(tangents) not in (list, tuple):
            return False
        primals = tuple(primals)        # copies: a caller's list cannot change under the loops
        tangents = tuple(tangents)
        n = len(primals)
        if n != len(tangents) or n > 16:
            return False
        for i in range(n):
            if not isinstance(primals[i], Tensor) or not isinstance(tangents[i], Tensor) \
                    or not _plain_pair(<Tensor>primals[i], <Tensor>tangents[i]):
                return False
            for j in range(i):
                if primals[j] is primals[i]:
                    return False
        for i in range(n):
            self._set_tangent(<Tensor>primals[i], <Tensor>tangents[i])
        return True

    def _tangent_of(self, Tensor t):
        return _tangent_obj(t, self)

    # ---- the common path of ForwardAccumulator, in C (anything else: its Python methods) ----

    def __enter__(self):
        _enter_transformation(self)     # AlreadyActiveError if active
        return self

    def __exit__(self, exc_type, exc, tb):
        _leave_transformation(self)
        return False

    def jvp(self, primals, unconnected_gradients="none"):
        """The tangent of each tensor in `primals` (None, or zeros with 'zero', if unconnected)."""
        if (isinstance(primals, Tensor) and type(unconnected_gradients) is str
                and unconnected_gradients == "none"):
            return _tangent_obj(<Tensor>primals, self)
        return self._jvp_general(primals, unconnected_gradients)

    def __dealloc__(self):
        # the primals keep no tangent of a dead accumulator
        cdef Tensor t
        if self._primals is not None:
            for t in self._primals:
                if t._tan_acc == self.id:
                    t._tan_acc = 0
                if t._tangents is not None:
                    t._tangents.pop(self.id, None)
