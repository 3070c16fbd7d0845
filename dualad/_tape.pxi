# Tape: the reverse-mode record and its backward sweep.
# (included by _core.pyx: one extension module, assembled from these files)

from libc.stdlib cimport realloc
from cpython.ref cimport Py_REFCNT
from cpython.dict cimport PyDict_Size

cdef extern from *:
    """
    /* whether o is the referent of a live weak reference (its type's weak list is non-empty) */
    static inline int dualad_has_weakrefs(PyObject* o) {
        Py_ssize_t offset = Py_TYPE(o)->tp_weaklistoffset;
        return offset > 0 && *(PyObject**)((char*)o + offset) != NULL;
    }
    """
    bint dualad_has_weakrefs(object o)

cdef class Tape(Transformation):
    """The reverse-mode record. GradientTape (dualad.tape) adds the public API on top."""

    def __cinit__(self, *args, **kwargs):
        # the arguments are parsed by __init__, whose errors name the public class
        self.is_tape = True
        self.watch_accessed_variables = True

    def __init__(self, *args, **kwargs):
        # GradientTape(persistent=False, watch_accessed_variables=True), parsed here so that
        # constructing a tape runs no Python frame; the errors are Python's for that signature
        # (GradientTape.__signature__ gives inspect the same)
        cdef Py_ssize_t n = len(args)
        persistent = args[0] if n > 0 else False
        watch_accessed_variables = args[1] if n > 1 else True
        if n > 2:
            raise TypeError(f"{type(self).__name__}.__init__() takes from 1 to 3 positional "
                            f"arguments but {n + 1} were given")
        if kwargs:
            for key, value in kwargs.items():
                if key == "persistent" and n < 1:
                    persistent = value
                elif key == "watch_accessed_variables" and n < 2:
                    watch_accessed_variables = value
                elif key in ("persistent", "watch_accessed_variables"):
                    raise TypeError(f"{type(self).__name__}.__init__() got multiple values "
                                    f"for argument '{key}'")
                else:
                    raise TypeError(f"{type(self).__name__}.__init__() got an unexpected "
                                    f"keyword argument '{key}'")
        self.persistent = bool(persistent)
        self.watch_accessed_variables = bool(watch_accessed_variables)

    def __dealloc__(self):
        if self._listed:
            dualad_live_discard(self.id)
        self._clear_watched_slots()

    cdef int _clear_watched_slots(self) except -1:
        cdef Tensor t
        cdef object watched = self._watched
        if type(watched) is list:
            for t in <list>watched:
                _clear_slot(t, self.id)
        elif watched is not None:
            _clear_slot(<Tensor>watched, self.id)
        return 0

    cdef bint _watch(self, Tensor t) except -1:
        if _slot_of(t, self.id) >= 0:
            return False
        if not self._listed:
            # every slot under this id starts here (a recorded op needs an input with a slot),
            # so the id joins the live ones only now: a tape that watches nothing costs no set
            # operations
            dualad_live_add(self.id)
            self._listed = True
        _set_slot(t, self.id, self._n_slots)
        self._n_slots += 1
        watched = self._watched
        if watched is None:
            self._watched = t
        elif type(watched) is list:
            (<list>watched).append(t)
        else:
            self._watched = [watched, t]
        return True

    def _watch_tensor(self, Tensor t):
        """Give `t` a slot on this tape. Returns False if it already had one."""
        _refuse_active_elsewhere(self, "watch")
        if self.released:
            self._reopen()
        return self._watch(t)

    # ---- the common path of GradientTape, in C ------------------------------------------------
    # Each method handles the usual argument shapes here and hands anything else (nests,
    # output_gradients, unconnected 'zero', warnings, errors) to GradientTape's Python methods
    # (_watch_general, _gradient_general), which hold the policy.

    def __enter__(self):
        if self._used:
            raise RuntimeError("this non-persistent GradientTape has already computed a gradient; "
                               "create a new tape")
        _enter_transformation(self)
        return self

    def __exit__(self, exc_type, exc, tb):
        _leave_transformation(self)
        return False

    def watch(self, tensor):
        """Watch a tensor, Variable, or nested list/tuple/dict of them."""
        if isinstance(tensor, Tensor) and is_float(<Tensor>tensor):
            # the slot counter and watched list are the recording thread's: a slot given here
            # meanwhile could be given to a recorded output too (a silently wrong gradient)
            _refuse_active_elsewhere(self, "watch")
            if self.released:
                self._reopen()
            self._watch(<Tensor>tensor)
            return
        self._watch_general(tensor)

    def watched_variables(self):
        """The Variables this tape watches, in the order it began watching them. After a
        non-persistent tape has computed its gradient, the ones it watched then (as in
        TensorFlow)."""
        if self._used:
            return tuple(self._variables_at_release) if self._variables_at_release is not None else ()
        return tuple(self._released_variables())

    cdef object _released_variables(self):
        # The watched Variables, for a release about to drop the watched list: that list itself
        # when it holds only Variables (no copy), else a tuple of them
        cdef Tensor t
        cdef Py_ssize_t n_vars = 0
        cdef object watched = self._watched
        if watched is None:
            return ()
        if type(watched) is not list:
            return (watched,) if (<Tensor>watched)._is_var else ()
        for t in <list>watched:
            if t._is_var:
                n_vars += 1
        if n_vars == 0:
            return ()
        if n_vars == len(<list>watched):
            return watched
        return tuple([t for t in <list>watched if (<Tensor>t)._is_var])

    def _refuse_other_thread(self, what):
        """AlreadyActiveError if this tape is active on another thread (see
        _refuse_active_elsewhere)."""
        _refuse_active_elsewhere(self, what)

    def _end_use(self):
        """After a gradient or Jacobian: a non-persistent tape releases its record."""
        self._finish_use()

    def _abandon_use(self):
        """After a gradient or Jacobian that raised: a non-persistent tape keeps its record
        and can be asked again (TensorFlow releases it only once a gradient is computed)."""
        if not self.persistent:
            self._used = False

    cdef int _finish_use(self) except -1:
        if not self.persistent:
            self._variables_at_release = self._released_variables()
            self._used = True
            self._drop_record()
        return 0

    def gradient(self, target, sources, output_gradients=None, unconnected_gradients="none"):
        """d(sum of targets)/d(sources), shaped like `sources` (a tensor or nested structure).

        A source the targets do not depend on through recorded float operations gets None, or
        zeros with unconnected_gradients='zero'. `output_gradients` weights each target (the
        vector of a vector-Jacobian product). A target that is not floating gives no gradient
        (None for every source) with a NonFloatTargetWarning, as in TensorFlow."""
        cdef Tensor t
        cdef list flat, grads
        cdef Py_ssize_t i
        cdef bint single = isinstance(sources, Tensor)
        cdef bint active
        # the fast path: one float target, a Tensor or a flat list/tuple of Tensors as sources,
        # default options, and nothing to warn about or refuse
        if (output_gradients is not None or type(unconnected_gradients) is not str
                or unconnected_gradients != "none" or not isinstance(target, Tensor)
                or not is_float(<Tensor>target) or self._used):
            return self._gradient_general(target, sources, output_gradients,
                                          unconnected_gradients)
        if type(sources) is list or type(sources) is tuple:
            flat = list(sources)
            for i in range(len(flat)):
                if not isinstance(flat[i], Tensor):
                    return self._gradient_general(target, sources, output_gradients,
                                                  unconnected_gradients)
        elif not single:
            return self._gradient_general(target, sources, output_gradients,
                                          unconnected_gradients)
        active = _active_here(self)
        if active and self.persistent:
            # GradientInContextWarning, raised where the caller's line is known
            return self._gradient_general(target, sources, output_gradients,
                                          unconnected_gradients)
        t = <Tensor>target
        if active:
            self.recording = False  # as in TensorFlow: a non-persistent tape stops recording
        if not self.persistent:
            self._used = True   # a grad_fn asking this tape again mid-sweep: the one-use error
        if _active_elsewhere(self):
            # checked after _used is set: from then on its owner cannot enter it either
            self._used = False
            _refuse_active_elsewhere(self, "gradient")
        try:
            if single:
                # one source: no lists, the seed of ones made only where the sweep needs it
                g = _sweep_visible(self, None, None, None, -1, t, <Tensor>sources)
            else:
                grads = _sweep_visible(self, [t], [filled_like(t, 1.0, None)], flat, -1,
                                       None, None)
        except BaseException:
            self._abandon_use()
            raise
        self._finish_use()
        if single:
            return g if g is None or is_float(<Tensor>sources) else None
        # grads has one entry per element of flat, a list no one else holds
        for i in range(len(grads)):
            if grads[i] is not None and not is_float(<Tensor>flat[i]):
                grads[i] = None
        return grads if type(sources) is list else tuple(grads)

    def _reopen(self):
        # A new identity: tensors recorded before the release still carry slot numbers under
        # the old one, which the reopened record hands out again.
        global _next_id
        if self._listed:
            dualad_live_discard(self.id)
            self._listed = False
        _next_id += 1
        self.id = _next_id
        self.released = False

    def _has_slot(self, Tensor t):
        return _slot_of(t, self.id) >= 0

    def _watched_tensors(self):
        watched = self._watched
        if type(watched) is list:
            return list(watched)
        return [] if watched is None else [watched]

    @property
    def _n_entries(self):
        return _n_recorded(self)

    def _release(self):
        """Drop the record; the tape's slots on tensors it watched are cleared."""
        _refuse_active_elsewhere(self, "reset")
        self._drop_record()

    cdef int _drop_record(self) except -1:
        self._clear_watched_slots()
        self._watched = None    # (the lists stay whole: a sweep or a release may hold them)
        self._entries = None
        self._scalars = None
        self._n_slots = 0
        self.released = True
        if self._listed:
            dualad_live_discard(self.id)
            self._listed = False
        return 0

    def _sweep(self, list targets, list seeds, list sources, Py_ssize_t batch=-1):
        """Backpropagate `seeds` (one per target) through the record and return the gradient
        of each source (None where unconnected).

        With batch = k >= 0, each seed carries k cotangents (shape (k,) + its target's shape)
        and so does each gradient: one sweep gives k rows of a Jacobian. It returns None,
        having run nothing, if a recorded primitive's VJP rules cannot take such a batch
        (see allow_batched_vjps): the caller then sweeps once per row.

        The sweep runs at this tape's level: tapes and accumulators nested inside it do not see
        it; outer ones (and this tape, if persistent and recording) do, which is how gradients
        of gradients work. When nothing sees it, the sweep is raw: scalar entries run on C
        doubles and nothing is recorded."""
        if len(seeds) != len(targets):
            raise ValueError(f"_sweep: {len(seeds)} seeds for {len(targets)} targets")
        for group, what in ((targets, "target"), (seeds, "seed"), (sources, "source")):
            for t in group:
                if not isinstance(t, Tensor):
                    raise TypeError(f"_sweep: every {what} must be a Tensor, got "
                                    f"{type(t).__name__}")
        if batch >= 0:
            for t, seed in zip(targets, seeds):
                if (<Tensor>seed).shape != (batch,) + (<Tensor>t).shape:
                    raise ValueError(f"_sweep: a seed of shape {seed.shape} for a batch of "
                                     f"{batch} cotangents of a target of shape {t.shape}")
        _refuse_active_elsewhere(self, "_sweep")
        return self._sweep_at_level(targets, seeds, sources, batch)

    cdef list _sweep_at_level(self, list targets, list seeds, list sources, Py_ssize_t batch=-1):
        # _sweep with its arguments checked (every element a Tensor, one seed per target)
        return <list>_sweep_visible(self, targets, seeds, sources, batch, None, None)


cdef object _sweep_visible(Tape tape, list targets, list seeds, list sources, Py_ssize_t batch,
                           Tensor target, Tensor source):
    # _sweep at the tape's level: the levels it hides are hidden while it runs, and it is raw
    # when nothing that records sees it
    cdef _ThreadState st = _state()
    cdef list stack = st.stack
    cdef list hide = None     # the levels hidden (a copy: rules may change the stack)
    cdef Py_ssize_t i
    cdef Transformation tr
    cdef bint raw
    if len(stack) == 0:     # (a gradient outside every with block: nothing to hide or see it)
        return _sweep(tape, targets, seeds, sources, target, source,
                      not (_n_tracing and st.tracer is not None), batch)
    for i in range(len(stack)):
        if stack[i] is tape:
            hide = stack[i + 1:] if tape.persistent and tape.recording else stack[i:]
            break
    if hide is not None:
        for tr in hide:
            tr.hidden += 1
    try:
        raw = not (_n_tracing and st.tracer is not None)
        for tr in stack:
            if tr.hidden == 0 and tr.recording:
                raw = False
                break
        return _sweep(tape, targets, seeds, sources, target, source, raw, batch)
    finally:
        if hide is not None:
            for tr in hide:
                tr.hidden -= 1


cdef extern from *:
    """
    /* Cython's tp_init of Tape (its __init__ above), the general parser */
    static initproc dualad_tape_parse_init = NULL;
    static int dualad_tape_parse(PyObject* self, PyObject* args, PyObject* kwds) {
        return dualad_tape_parse_init(self, args, kwds);
    }
    /* Makes fn Tape's tp_init and what its __init__ slot wrapper calls (the heap subclasses,
       GradientTape, take their tp_init from that wrapper); the previous one stays the parser.
       Where __init__ is not the slot wrapper of tp_init (another CPython or Cython layout),
       nothing changes: the parser stays tp_init, and only the fast path is lost (returns 0). */
    static int dualad_install_tape_init(PyObject* tp, PyObject* descr, void* fn) {
        PyTypeObject* t = (PyTypeObject*)tp;
        if (!Py_IS_TYPE(descr, &PyWrapperDescr_Type)
                || ((PyWrapperDescrObject*)descr)->d_wrapped != (void*)t->tp_init)
            return 0;
        dualad_tape_parse_init = t->tp_init;
        ((PyWrapperDescrObject*)descr)->d_wrapped = fn;
        t->tp_init = (initproc)fn;
        PyType_Modified(t);
        return 1;
    }
    """
    int dualad_tape_parse(object self, object args, PyObject* kwds) except -1
    int dualad_install_tape_init(object tp, object descr, void* fn)


cdef int _tape_init(object self, tuple args, PyObject* kwds) except -1:
    # Tape.__init__ where each argument is given once, by position or by name: no kwargs dict
    # is built (Cython's parser of __init__(*args, **kwargs) makes one per tape). Anything else
    # goes to that parser, whose errors are Python's for the signature.
    cdef Py_ssize_t n = PyTuple_GET_SIZE(args), n_kw = 0
    cdef PyObject* persistent = NULL
    cdef PyObject* watch_accessed_variables = NULL
    if n > 0:
        persistent = PyTuple_GET_ITEM(args, 0)
    if n > 1:
        watch_accessed_variables = PyTuple_GET_ITEM(args, 1)
    if kwds != NULL and PyDict_Size(<object>kwds) > 0:
        n_kw = PyDict_Size(<object>kwds)
        if n < 1:
            persistent = PyDict_GetItemWithError(<object>kwds, "persistent")
            if persistent != NULL:
                n_kw -= 1
        if n < 2:
            watch_accessed_variables = PyDict_GetItemWithError(<object>kwds,
                                                               "watch_accessed_variables")
            if watch_accessed_variables != NULL:
                n_kw -= 1
    if n > 2 or n_kw != 0:
        return dualad_tape_parse(self, args, kwds)
    (<Tape>self).persistent = persistent != NULL and bool(<object>persistent)
    (<Tape>self).watch_accessed_variables = (watch_accessed_variables == NULL
                                             or bool(<object>watch_accessed_variables))
    return 0


# whether constructing a tape takes _tape_init (a test pins it for the CPython versions built)
_tape_init_installed = bool(dualad_install_tape_init(Tape, Tape.__dict__["__init__"],
                                                     <void*>_tape_init))


# The primitives whose VJP rules accept a batched cotangent (a leading axis of k cotangents)
# and return one for their input: the built-in ones (dualad.rules), not users' primitives or
# custom gradients, which the batched sweep leaves to one sweep per row.
cdef set _batchable_vjps = set()


def allow_batched_vjps(primitives):
    """Declare that these primitives' VJP rules take batched cotangents."""
    for p in primitives:
        if not isinstance(p, Primitive):
            raise TypeError(f"allow_batched_vjps: expected Primitives, got {type(p).__name__}")
        _batchable_vjps.add(p)


def _largest_recorded_size(Tape tape):
    """The element count of the largest value the tape's record holds (an entry's output or
    input): what a batched sweep multiplies by its batch size."""
    cdef Entry e
    largest = 0
    for e in _entries_in_order(tape):
        largest = max(largest, e.out.size)
        for a in e.args:
            if isinstance(a, Tensor):
                largest = max(largest, a.size)
    return largest


cdef enum:
    HAS_D = 1       # the slot's gradient (or part of it) is in the C double array
    KEEP = 2        # a requested source: its gradient is kept after use
    OWNED = 4       # the slot's gradient is a sum this sweep made, seen by nothing else (no
                    # tape or trace saw the add, no rule has been handed it): further
                    # cotangents may be added into its buffer


cdef inline void _acc_d(double* dg, char* fl, Py_ssize_t s, double v, bint f32) noexcept:
    if fl[s] & HAS_D:
        dg[s] = _round(dg[s] + v, f32)
    else:
        dg[s] = v
        fl[s] |= HAS_D


cdef inline Tensor _add(object a, Tensor b):
    if a is None:
        return b
    return run_op(_P_ADD, (a, b), None)


cdef bint _add_in_place(Tensor acc, Tensor ct) except -1:
    """acc += ct in acc's buffer (acc must be OWNED); False, doing nothing, where a fresh sum
    is needed: scalars, or shapes or dtypes that differ (numpy's promotion then applies)."""
    cdef cnp.ndarray arr
    if acc._is_scalar or ct._is_scalar or acc._arr is None or ct._arr is None:
        return False
    if acc._dtype != ct._dtype or acc._arr.shape != ct._arr.shape:
        return False
    arr = acc._arr
    cnp.PyArray_ENABLEFLAGS(arr, cnp.NPY_ARRAY_WRITEABLE)
    try:
        if not (_small_add_into(arr, ct._arr) or _kernel_add_into(arr, ct._arr)):
            _add_into_quietly(arr, ct._arr)
    finally:
        _freeze(arr)
    global _n_sums_in_place
    _n_sums_in_place += 1
    return True


# elements up to which the sweep adds a cotangent into its own sum in a C loop: numpy's call
# costs more than the additions there
cdef Py_ssize_t _SMALL_SUM = 1024


cdef bint _small_add_into(cnp.ndarray acc, cnp.ndarray other) noexcept:
    """acc += other by one IEEE addition per element, as numpy's loop (the same bits); False,
    doing nothing, unless both are aligned C-contiguous float64 or float32 arrays of one
    shape and at most _SMALL_SUM elements."""
    cdef Py_ssize_t i, n = cnp.PyArray_SIZE(acc)
    cdef int t = cnp.PyArray_TYPE(acc)
    cdef double* da
    cdef const double* db
    cdef float* fa
    cdef const float* fb
    if (n > _SMALL_SUM or cnp.PyArray_TYPE(other) != t
            or not (cnp.PyArray_ISCARRAY_RO(acc) and cnp.PyArray_ISCARRAY_RO(other))
            or not _same_shape(acc, other)):
        return False
    if t == cnp.NPY_DOUBLE:
        da = <double*>cnp.PyArray_DATA(acc)
        db = <const double*>cnp.PyArray_DATA(other)
        for i in range(n):
            da[i] = da[i] + db[i]
        return True
    if t == cnp.NPY_FLOAT:
        fa = <float*>cnp.PyArray_DATA(acc)
        fb = <const float*>cnp.PyArray_DATA(other)
        for i in range(n):
            fa[i] = fa[i] + fb[i]
        return True
    return False


cdef Py_ssize_t _n_sums_in_place = 0


def _sums_in_place():
    """How many cotangent sums sweeps have made in their own buffers (for tests)."""
    return _n_sums_in_place


cdef inline bint _held_by_sweep_alone(object cur):
    """Whether cur, read from the sweep's list into one local, is a Tensor nothing else can
    reach: the list and the local are its only references (no rule, record, caller or weak
    reference holds it), and it is the only holder of its array, which owns its memory (no
    view, no other Tensor, no buffer export). Its buffer may then be written into: the first
    cotangent of a slot, fresh from a rule, becomes the sweep's own sum."""
    cdef Tensor t
    cdef cnp.ndarray arr
    # read before any local takes a reference: the caller's list slot and local (cur is
    # borrowed here)
    if Py_REFCNT(cur) != 2:
        return False
    t = <Tensor>cur
    if t._is_var or t._is_scalar or t._arr is None:
        return False
    if dualad_has_weakrefs(t):
        return False
    arr = t._arr
    # two references: the Tensor's field and the local arr
    return (Py_REFCNT(arr) == 2 and cnp.PyArray_BASE(arr) == NULL
            and cnp.PyArray_CHKFLAGS(arr, cnp.NPY_ARRAY_OWNDATA))


# ---- scaled cotangents: s·b kept lazily in the sweep's list ----------------------------------
# The matmul VJPs of a vector dot product (a (1,1) cotangent times a vector) are products
# s·b of a single element and a large array; summed at one slot they cost a pass each, plus
# one for the sum. A sweep nothing records keeps them as (s, b) pairs and writes the slot's
# gradient once, when it is taken: each product rounded, then the sum, as the rules and the
# add would have (same bits). Only the sweep's list holds a _Scaled: every rule, hook and
# caller gets the Tensor it becomes.

# elements above which matmul's impl multiplies an outer product elementwise
# (_SMALL_PRODUCT): below it ndarray.dot computes it, so no product is kept lazily there
cdef Py_ssize_t _SCALED_MIN_SIZE = 4096


@cython.final
cdef class _Scaled:
    cdef double s1, s2
    cdef cnp.ndarray b1, b2     # C-contiguous, aligned float64, of one shape; b2 None: one term


cdef _Scaled _scaled(double s, cnp.ndarray b):
    cdef _Scaled z = _Scaled.__new__(_Scaled)
    z.s1 = s
    z.b1 = b
    return z


cdef inline bint _fusable(cnp.ndarray arr):
    return (cnp.PyArray_TYPE(arr) == cnp.NPY_DOUBLE and cnp.PyArray_ISCARRAY_RO(arr)
            and cnp.PyArray_SIZE(arr) > _SCALED_MIN_SIZE)


cdef inline bint _same_shape(cnp.ndarray a, cnp.ndarray b):
    return cnp.PyArray_NDIM(a) == cnp.PyArray_NDIM(b) and cnp.PyArray_SAMESHAPE(a, b)


cdef Tensor _materialised(_Scaled z):
    cdef cnp.ndarray out = cnp.PyArray_SimpleNew(cnp.PyArray_NDIM(z.b1), cnp.PyArray_DIMS(z.b1),
                                                 cnp.NPY_DOUBLE)
    cdef const double* b2 = NULL if z.b2 is None else <const double*>cnp.PyArray_DATA(z.b2)
    cdef int threads = _kernel_threads
    with nogil:
        _k_scaled_sum(<double*>cnp.PyArray_DATA(out), NULL, z.s1,
                      <const double*>cnp.PyArray_DATA(z.b1), z.s2, b2,
                      cnp.PyArray_SIZE(out), threads)
    return _wrap(out)


cdef object _matmul_scaled_cotangent(Py_ssize_t k, object gobj, tuple args):
    """The cotangent of matmul's input k as a _Scaled where the declared rule would compute
    an outer product s·b elementwise (g of shape (1,1), float64 throughout, b large and
    C-contiguous), else None (the rule runs)."""
    cdef Tensor g, a, other
    cdef cnp.ndarray garr, base
    if type(gobj) is not Tensor or len(args) != 2:
        return None
    g = <Tensor>gobj
    if g._is_scalar or g._arr is None or g._kind != K_F64:
        return None
    garr = g._arr
    if (cnp.PyArray_NDIM(garr) != 2 or cnp.PyArray_SIZE(garr) != 1
            or not cnp.PyArray_ISALIGNED(garr)):
        return None
    if not (isinstance(args[0], Tensor) and isinstance(args[1], Tensor)):
        return None
    a = <Tensor>args[k]
    other = <Tensor>args[1 - k]
    # variables may be assigned (in place) by a callback before the slot is taken
    if a._is_var or other._is_var or other._arr is None or a._arr is None:
        return None
    if (cnp.PyArray_NDIM(other._arr) != 2 or cnp.PyArray_NDIM(a._arr) != 2
            or cnp.PyArray_SIZE(other._arr) <= _SCALED_MIN_SIZE):
        return None     # (the size first: small products skip the transposed view)
    base = other._arr.T
    if not _fusable(base) or not _same_shape(base, a._arr):
        return None
    global _n_scaled
    _n_scaled += 1
    return _scaled((<double*>cnp.PyArray_DATA(garr))[0], base)


cdef Py_ssize_t _n_scaled = 0


def _scaled_cotangents():
    """How many matmul cotangents sweeps have kept lazily as s·b (for tests)."""
    return _n_scaled


cdef void _accumulate_scaled(list og, char* fl, Py_ssize_t s, _Scaled z) except *:
    """og[s] += z (a sweep nothing records): kept lazily, or added in one pass."""
    cdef object cur = og[s]
    cdef _Scaled y
    cdef Tensor t
    cdef cnp.ndarray acc, out
    cdef int threads = _kernel_threads
    if cur is None:
        og[s] = z
        return
    if z.b2 is not None:
        _accumulate(og, fl, s, _materialised(z), True)
        return
    if type(cur) is _Scaled:
        y = <_Scaled>cur
        if y.b2 is None and _same_shape(y.b1, z.b1):
            y.s2 = z.s1
            y.b2 = z.b1
            return
        cur = og[s] = _materialised(y)
        fl[s] |= OWNED
    if not (fl[s] & OWNED) and _held_by_sweep_alone(cur):
        fl[s] |= OWNED
    t = <Tensor>cur
    if (t._is_scalar or t._arr is None or not _fusable(t._arr)
            or not _same_shape(t._arr, z.b1)):
        _accumulate(og, fl, s, _materialised(z), True)
        return
    acc = t._arr
    if fl[s] & OWNED:
        out = acc
        cnp.PyArray_ENABLEFLAGS(out, cnp.NPY_ARRAY_WRITEABLE)
    else:
        out = cnp.PyArray_SimpleNew(cnp.PyArray_NDIM(acc), cnp.PyArray_DIMS(acc), cnp.NPY_DOUBLE)
    try:
        with nogil:
            _k_scaled_sum(<double*>cnp.PyArray_DATA(out), <const double*>cnp.PyArray_DATA(acc),
                          z.s1, <const double*>cnp.PyArray_DATA(z.b1), 0.0, NULL,
                          cnp.PyArray_SIZE(out), threads)
    finally:
        _freeze(out)
    if out is not acc:
        og[s] = _wrap(out)
        fl[s] |= OWNED


cdef bint _transpose_scaled(list og, char* fl, Py_ssize_t so, Entry e) except -1:
    """The cotangent of a 2-D transpose's input, where its output's is a _Scaled (from og[so],
    then cleared): the same products of transposed views, added at the input's slot. False,
    doing nothing, where the declared rule must run on the materialised cotangent."""
    cdef _Scaled z = <_Scaled>og[so], t
    cdef object perm
    cdef cnp.ndarray b1, b2 = None
    if fl[so] & (HAS_D | KEEP) or e.s0 < 0 or len(e.args) != 1:
        return False
    if e.prim.variadic_vjp is not None or e.prim.vjps is not _TRANSPOSE_VJPS:
        return False
    if not isinstance(e.args[0], Tensor) or cnp.PyArray_NDIM(z.b1) != 2:
        return False
    perm = e.params.get("perm") if e.params is not None else None
    # a 2-D permutation is its own inverse: swap or keep the two axes
    if perm is None:
        swap = True
    elif type(perm) in (tuple, list) and len(perm) == 2 and all(type(a) is int for a in perm):
        if perm[0] % 2 == 1 and perm[1] % 2 == 0:
            swap = True
        elif perm[0] % 2 == 0 and perm[1] % 2 == 1:
            swap = False
        else:
            return False
    else:
        return False
    b1 = z.b1.T if swap else z.b1
    if z.b2 is not None:
        b2 = z.b2.T if swap else z.b2
        if not cnp.PyArray_ISCARRAY_RO(b2):
            return False
    if not cnp.PyArray_ISCARRAY_RO(b1) or (<object>b1).shape != (<Tensor>e.args[0])._value().shape:
        return False
    og[so] = None
    fl[so] &= ~OWNED
    t = _scaled(z.s1, b1)
    t.s2 = z.s2
    t.b2 = b2
    _accumulate_scaled(og, fl, e.s0, t)
    return True


cdef inline void _accumulate(list og, char* fl, Py_ssize_t s, Tensor ct, bint in_place) except *:
    """og[s] += ct: into og[s]'s own buffer when the sweep owns it, else as a fresh sum, which
    the sweep owns when nothing watches it (`in_place`)."""
    cdef object cur = og[s]
    if cur is None:
        og[s] = ct      # possibly a tensor a rule or the caller holds: written into only if
                        # a later cotangent finds it held by the sweep alone
        return
    if type(cur) is _Scaled:
        cur = og[s] = _materialised(<_Scaled>cur)
        fl[s] |= OWNED
    if in_place and not (fl[s] & OWNED) and _held_by_sweep_alone(cur):
        fl[s] |= OWNED
    if not ((fl[s] & OWNED) and not _check_numerics and _add_in_place(<Tensor>cur, ct)):
        # (check_numerics checks each sum run_op makes: then every sum is a fresh one)
        og[s] = run_op(_P_ADD, (cur, ct), None)
        if in_place:
            fl[s] |= OWNED


cdef object _take(double* dg, char* fl, list og, Py_ssize_t s, int kind):
    """The gradient accumulated at slot s, as a Tensor (or None); freed unless kept. Once
    handed out, it is never written into again."""
    cdef object g = og[s]
    if type(g) is _Scaled:
        g = og[s] = _materialised(<_Scaled>g)
    fl[s] &= ~OWNED
    if fl[s] & HAS_D:
        g = _add(g, new_scalar(dg[s], kind))
    if not (fl[s] & KEEP):
        og[s] = None
        fl[s] &= ~HAS_D
    return g


cdef Tensor _as_cotangent(object c, Tensor arg, Primitive p, Py_ssize_t k, Py_ssize_t batch):
    cdef Tensor ct
    if not isinstance(c, Tensor):
        raise TypeError(f"the derivative rule of {p.name} returned {type(c).__name__} for input {k}")
    ct = c
    if batch >= 0:
        return _as_batched_cotangent(ct, arg, p, k, batch)
    if ct._is_scalar and arg._is_scalar:
        return ct
    if not (ct._is_scalar or arg._is_scalar) and _same_shape(ct._value(), arg._value()):
        return ct
    # numpy's shapes (plain tuples): cheaper than the TensorShape of Tensor.shape
    cdef tuple shape = arg._value().shape
    if ct._value().shape != shape:
        ct = _unbroadcast_fn(ct, shape)
    return ct


cdef Tensor _as_batched_cotangent(Tensor ct, Tensor arg, Primitive p, Py_ssize_t k,
                                  Py_ssize_t batch):
    cdef tuple shape = arg._value().shape
    cdef tuple expected = (batch,) + shape
    if ct._value().shape != expected and ct.ndim > arg.ndim:
        ct = _unbroadcast_fn(ct, shape, True)
    if ct._value().shape != expected:
        raise ValueError(f"the derivative rule of {p.name} returned a cotangent of shape "
                         f"{ct.shape} for input {k} of shape {arg.shape} in a batch of {batch}")
    return ct


cdef bint _all_batchable(list entries, Py_ssize_t n_entries, ScalarRecord scalars,
                         Py_ssize_t n_scalars):
    cdef Py_ssize_t i
    for i in range(n_entries):
        if (<Entry>entries[i]).prim not in _batchable_vjps:
            return False
    for i in range(n_scalars):
        if <object>scalars.recs[i].prim not in _batchable_vjps:
            return False
    return True


cdef inline Py_ssize_t _slot_below(Tensor t, long long tape_id, Py_ssize_t n):
    """t's slot on the tape if it is one of the first n (those the sweep has buffers for), else
    -1. A tensor watched during the sweep (by a derivative rule, a custom gradient) gets a
    later slot, so the targets of this sweep do not depend on it."""
    cdef Py_ssize_t s = _slot_of(t, tape_id)
    return s if s < n else -1


cdef object _scalar_vjp_as_ops(int code, Py_ssize_t k, Tensor g, tuple args, Tensor ans):
    """The cotangent of input k of a scalar opcode's primitive, by the very ops its declared
    VJP rule in rules.py runs (same primitives, order and constants: outer tapes record the
    same entries and the bits are the rule's) but without the Python calls of the rule; None
    where the rule must run (a rule not mirrored here). The caller has checked that g, ans and
    every input are float scalars of one kind and that the primitive's rules are the declared
    ones."""
    cdef Tensor a = <Tensor>args[0]
    cdef Tensor b
    cdef int kind = a._kind
    cdef list st = _state().stack     # this thread's: the list itself is never replaced
    if code == OP_ADD:
        return g
    if code == OP_NEG:
        return _derivative_op(_P_NEG, g, None, kind, st)
    if code == OP_SQUARE:   # g * (x * 2)
        return _derivative_op(_P_MUL, g, _derivative_op(_P_MUL, a, 2.0, kind, st), kind, st)
    if code == OP_SQRT:     # g / (ans * 2)
        return _derivative_op(_P_DIV, g, _derivative_op(_P_MUL, ans, 2.0, kind, st), kind, st)
    if code == OP_EXP:      # g * ans
        return _derivative_op(_P_MUL, g, ans, kind, st)
    if code == OP_LOG:      # g / x
        return _derivative_op(_P_DIV, g, a, kind, st)
    if code == OP_LOG1P:    # g / (x + 1)
        return _derivative_op(_P_DIV, g, _derivative_op(_P_ADD, a, 1.0, kind, st), kind, st)
    if code == OP_SIN:      # g * cos(x)
        return _derivative_op(_P_MUL, g, _derivative_op(_declared_prims[OP_COS], a, None, kind,
                                                        st), kind, st)
    if code == OP_COS:      # -(g * sin(x))
        return _derivative_op(_P_NEG, _derivative_op(_P_MUL, g, _derivative_op(
            _declared_prims[OP_SIN], a, None, kind, st), kind, st), None, kind, st)
    if code == OP_TAN:      # g * (square(ans) + 1)
        return _derivative_op(_P_MUL, g, _derivative_op(_P_ADD, _derivative_op(
            _declared_prims[OP_SQUARE], ans, None, kind, st), 1.0, kind, st), kind, st)
    if code == OP_TANH:     # g * (1 - square(ans))
        return _derivative_op(_P_MUL, g, _derivative_op(_P_SUB, 1.0, _derivative_op(
            _declared_prims[OP_SQUARE], ans, None, kind, st), kind, st), kind, st)
    if code == OP_SIGMOID:  # g * (ans * (1 - ans))
        return _derivative_op(_P_MUL, g, _derivative_op(_P_MUL, ans, _derivative_op(
            _P_SUB, 1.0, ans, kind, st), kind, st), kind, st)
    if len(args) != 2:
        return None
    b = <Tensor>args[1]
    if code == OP_SUB:
        return g if k == 0 else _derivative_op(_P_NEG, g, None, kind, st)
    if code == OP_MUL:
        return _derivative_op(_P_MUL, g, b if k == 0 else a, kind, st)
    if code == OP_DIV:      # g / y; -((g * ans) / y)
        if k == 0:
            return _derivative_op(_P_DIV, g, b, kind, st)
        return _derivative_op(_P_NEG, _derivative_op(_P_DIV, _derivative_op(
            _P_MUL, g, ans, kind, st), b, kind, st), None, kind, st)
    if code == OP_POW and k == 0:   # g * (y * x ** (y - 1))
        return _derivative_op(_P_MUL, g, _derivative_op(_P_MUL, b, _derivative_op(
            _P_POW, a, _derivative_op(_P_SUB, b, 1.0, kind, st), kind, st), kind, st), kind, st)
    return None


# ---- direct VJPs: a sweep nothing records ----------------------------------------------------
# The VJP rules of matmul, transpose, multiply, add, reduce_sum and log_softmax on arrays, as
# the numpy calls their ops end in: the same impls on the same arrays (so the same bits),
# without the rules' Python calls and op dispatch; tanh's rule as one fused pass of the same
# IEEE operations (W7's MLP step: these are all its VJPs). Only where
# nothing sees the rules' ops (no tape or accumulator records the sweep, no trace,
# check_numerics off) and the primitives' rules and transpose's impl are the declared ones;
# None where the rule must run.

cdef inline bint _has_direct_vjp(Primitive p):
    if p.variadic_vjp is not None or _P_TRANSPOSE.impl is not _TRANSPOSE_IMPL:
        return False
    return ((p is _P_MATMUL and p.vjps is _MATMUL_VJPS)
            or (p is _P_TRANSPOSE and p.vjps is _TRANSPOSE_VJPS)
            or (p is _P_MUL and p.vjps is _declared_vjps[OP_MUL])
            or (p is _P_ADD and p.vjps is _declared_vjps[OP_ADD])
            or (p.code == OP_TANH and p.vjps is _declared_vjps[OP_TANH])
            or (p is _P_REDUCE_SUM and p.vjps is _REDUCE_SUM_VJPS)
            or (p is _P_LOG_SOFTMAX and p.vjps is _LOG_SOFTMAX_VJPS))


cdef inline bint _same_shape_as(Tensor g, Tensor out) except -1:
    # g has out's shape: a cotangent of out, not a batch of them
    if g._is_scalar or out._is_scalar:
        return g._is_scalar and out._is_scalar
    return _same_shape(g._value(), out._value())


cdef tuple _swap_last_axes(int ndim):
    # swap_last's permutation (rules.py): the last two of ndim > 2 axes exchanged
    cdef list perm = list(range(ndim))
    perm[ndim - 1], perm[ndim - 2] = ndim - 2, ndim - 1
    return tuple(perm)


cdef Py_ssize_t _n_direct = 0


def _direct_vjps():
    """How many cotangents sweeps have computed by direct numpy calls (for tests)."""
    return _n_direct


cdef object _direct_vjp(Primitive p, Py_ssize_t k, Tensor g, Entry e):
    """The cotangent of input k of e (primitive p, _has_direct_vjp), g of e's output's shape
    and not a Variable; None where the declared rule must run."""
    global _n_direct
    cdef object ct = _direct_vjp_of(p, k, g, e)
    if ct is not None:
        _n_direct += 1
    return ct


cdef object _direct_vjp_of(Primitive p, Py_ssize_t k, Tensor g, Entry e):
    cdef tuple args = e.args
    cdef Tensor other
    cdef cnp.ndarray garr, oarr
    cdef object ct
    if p is _P_MUL:
        # g * the other input, as run_op runs _mul(g, other) on arrays
        if len(args) != 2:
            return None
        other = <Tensor>args[1 - k]
        if other._is_var or (g._is_scalar and other._is_scalar):
            return None     # (two scalars: the C path of run_op)
        if g._dtype is not other._dtype and g._dtype != other._dtype:
            return None     # the rule's error
        return _wrap(_call_impl(_P_MUL, (g, other), None))
    if p is _P_REDUCE_SUM:
        return _direct_reduce_sum_vjp(g, e)
    if g._is_scalar or g._arr is None:
        return None
    if p is _P_LOG_SOFTMAX:
        return _direct_log_softmax_vjp(g, e)
    garr = g._arr
    if p is _P_TRANSPOSE:
        return _direct_transpose_vjp(garr, e)
    if p is _P_ADD:
        return _direct_add_vjp(k, g, garr, e)
    if p.code == OP_TANH:
        # g * (1 - square(ans)): the rule's three passes over memory in one
        if e.out._is_scalar:
            return None
        ct = _tanh_vjp_fused(garr, e.out._value())
        return None if ct is None else _wrap(ct)
    # matmul: g @ swap_last(b) for a, swap_last(a) @ g for b
    if len(args) != 2:
        return None
    other = <Tensor>args[1 - k]
    if other._is_var or other._is_scalar:
        return None
    oarr = other._value()
    if cnp.PyArray_NDIM(oarr) < 2 or cnp.PyArray_NDIM(garr) < 2:
        return None
    if cnp.PyArray_NDIM(oarr) == 2:
        other = _wrap(cnp.PyArray_Transpose(oarr, NULL))   # (the axes reversed: swapped)
    else:
        other = _wrap(oarr.transpose(_swap_last_axes(cnp.PyArray_NDIM(oarr))))
    if k == 0:
        return _wrap(_call_impl(_P_MATMUL, (g, other), None))
    return _wrap(_call_impl(_P_MATMUL, (other, g), None))


cdef object _direct_add_vjp(Py_ssize_t k, Tensor g, cnp.ndarray garr, Entry e):
    # g for an input of g's shape; summed over the leading axes broadcasting added (a bias), as
    # unbroadcast calls reduce_sum's impl for them; None otherwise (the rule and unbroadcast)
    cdef Tensor arg
    cdef cnp.ndarray aarr
    cdef int lead, i
    if len(e.args) != 2:
        return None
    arg = <Tensor>e.args[k]
    if arg._is_scalar:
        return None
    aarr = arg._value()
    lead = cnp.PyArray_NDIM(garr) - cnp.PyArray_NDIM(aarr)
    if lead < 0:
        return None
    for i in range(cnp.PyArray_NDIM(aarr)):
        if cnp.PyArray_DIM(aarr, i) != cnp.PyArray_DIM(garr, lead + i):
            return None     # an axis stretched by broadcasting
    if lead == 0:
        return g
    return _wrap(_call_impl(_P_REDUCE_SUM, (g,), {"axis": tuple(range(lead)), "keepdims": False}))


cdef object _direct_reduce_sum_vjp(Tensor g, Entry e):
    # g brought back to the input's shape (_expand_reduced): reshaped to the kept axes, then
    # broadcast (views), where the axes are a normalized tuple (what the public op passes)
    cdef object axis, keepdims, a, previous = -1
    cdef tuple shape, kept, reduced
    cdef list dims
    cdef Py_ssize_t ndim
    if len(e.args) != 1 or e.params is None or (<Tensor>e.args[0])._is_scalar:
        return None
    axis = e.params.get("axis")
    keepdims = e.params.get("keepdims", False)
    if type(axis) is not tuple or (keepdims is not False and keepdims is not True):
        return None
    shape = (<Tensor>e.args[0])._value().shape
    ndim = len(shape)
    dims = list(shape)
    for a in <tuple>axis:
        if type(a) is not int or not previous < a < ndim:
            return None     # (sorted, distinct and in range: as normalize_axes gives them)
        previous = a
        dims[a] = 1
    kept = tuple(dims)
    reduced = tuple([shape[j] for j in range(ndim) if j not in axis])
    if g._value().shape != (kept if keepdims else reduced):
        return None         # (a batch of cotangents: the rule)
    if not keepdims and kept != g._value().shape:
        g = _wrap(_call_impl(_P_RESHAPE, (g,), {"shape": kept}))
    if kept != shape:
        g = _wrap(_call_impl(_P_BROADCAST_TO, (g,), {"shape": shape}))
    return g


cdef object _direct_log_softmax_vjp(Tensor g, Entry e):
    # g - exp(ans) * sum(g, axis, keepdims): the rule's four ops by their impls
    cdef Tensor ans = e.out
    cdef object axis = e.params.get("axis") if e.params is not None else None
    if type(axis) is not int or ans._is_scalar or len(e.args) != 1:
        return None
    if g._dtype is not ans._dtype and g._dtype != ans._dtype:
        return None
    if not 0 <= axis < cnp.PyArray_NDIM(g._arr):
        return None         # (the rule normalizes other axes, or raises)
    total = _wrap(_call_impl(_P_REDUCE_SUM, (g,), {"axis": (axis,), "keepdims": True}))
    scaled = _wrap(_call_impl(_P_MUL, (_wrap(_call_impl(_P_EXP, (ans,), None)), total), None))
    return _wrap(_call_impl(_P_SUB, (g, scaled), None))


cdef object _direct_transpose_vjp(cnp.ndarray garr, Entry e):
    # g transposed by the inverse of e's permutation (its entries taken modulo its length)
    cdef object perm = e.params.get("perm") if e.params is not None else None
    cdef Py_ssize_t n, i, a
    cdef list inverse
    if type(perm) is not tuple:
        return None
    n = len(perm)
    if n != cnp.PyArray_NDIM(garr) or n == 0:
        return None
    inverse = [None] * n
    for i in range(n):
        if type(perm[i]) is not int:
            return None
        a = (<object>perm[i]) % n
        if inverse[a] is not None:
            return None
        inverse[a] = i
    if n == 2 and inverse[0] == 1:
        return _wrap(cnp.PyArray_Transpose(garr, NULL))     # (the axes reversed: swapped)
    return _wrap(garr.transpose(tuple(inverse)))


cdef Tensor _derivative_op(Primitive p, object x, object y, int kind, list stack):
    """binary(p, x, y), or p on x alone when y is None, for the ops of _scalar_vjp_as_ops: p a
    built-in scalar opcode, x and y float scalar Tensors of `kind` (not Variables) or a float
    number; `stack` this thread's transformations. What run_op does, without its general
    checks: the value by p's scalar kernel, recorded as _record_scalar records, with a number
    operand made a Tensor only when something sees the op. check_numerics and a trace being
    taken go through run_op."""
    cdef double vx, vy = 0.0
    cdef Tensor out
    if _check_numerics or _n_tracing or not p.differentiable:
        return run_op(p, (<Tensor>x,), None) if y is None else binary(p, x, y)
    vx = (<Tensor>x)._d if isinstance(x, Tensor) else _round(<double>x, kind == K_F32)
    if y is not None:
        vy = (<Tensor>y)._d if isinstance(y, Tensor) else _round(<double>y, kind == K_F32)
    out = new_scalar(_scalar_value(p.code, vx, vy), kind)
    _record_scalar(p, x, y, None, kind, out, stack)
    return out


cdef bint _scalar_entry_of_kind(Entry e, object g) except -1:
    # g, the entry's output and inputs: float scalars (not Variables) of one kind, at most two
    # inputs: what _scalar_vjp_as_ops takes
    cdef Tensor t
    if not isinstance(g, Tensor):
        return False
    t = <Tensor>g
    cdef int kind = e.out._kind
    if (kind == K_OTHER or not e.out._is_scalar or not t._is_scalar or t._kind != kind
            or t._is_var or len(e.args) > 2):
        return False
    for t in e.args:
        if not t._is_scalar or t._kind != kind or t._is_var:
            return False
    return True


cdef void _no_vjp_rule(Primitive p, Py_ssize_t k) except *:
    raise NotImplementedError(
        f"primitive {p.name!r} has no VJP rule for its input {k}, which needs a gradient, so "
        "reverse mode (GradientTape.gradient, grad, vjp, jacrev) cannot go through it; give "
        "it a rule, or NO_GRADIENT (dualad.rules.NO_GRADIENT) for an input that takes none")


cdef void _bad_record(Tape tape) except *:
    raise RuntimeError(f"GradientTape: the record of tape {tape.id} names a slot beyond its "
                       f"{tape._n_slots} slots (it was changed during the sweep); this is a bug")


# One scratch buffer for the sweep's C arrays, reused from sweep to sweep (a step of eager
# training sweeps a small tape every iteration: no allocation then). A sweep that starts while
# it is lent out (a custom gradient running a tape inside the sweep, another thread while the
# first runs Python) gets its own. The check and the lending run under the GIL with no Python
# code between them. Buffers above _SCRATCH_KEPT bytes are not kept.
cdef void* _sweep_scratch = NULL
cdef size_t _sweep_scratch_size = 0
cdef bint _sweep_scratch_lent = False
cdef size_t _SCRATCH_KEPT = 1 << 20


cdef void* _scratch_take(size_t need, bint* lent) except NULL:
    """`need` zeroed bytes: the shared scratch buffer (*lent set) or a fresh allocation."""
    global _sweep_scratch, _sweep_scratch_size, _sweep_scratch_lent
    cdef void* buf
    if not _sweep_scratch_lent and need <= _SCRATCH_KEPT:
        if need > _sweep_scratch_size:
            buf = realloc(_sweep_scratch, need)
            if buf == NULL:
                raise MemoryError("not enough memory for the gradient sweep")
            _sweep_scratch = buf
            _sweep_scratch_size = need
        memset(_sweep_scratch, 0, need)
        _sweep_scratch_lent = True
        lent[0] = True
        return _sweep_scratch
    buf = calloc(need, 1)
    if buf == NULL:
        raise MemoryError("not enough memory for the gradient sweep")
    lent[0] = False
    return buf


cdef inline void _scratch_give_back(void* buf, bint lent) noexcept:
    global _sweep_scratch_lent
    if lent:
        _sweep_scratch_lent = False
    else:
        free(buf)


# The sweep's list of slot gradients, lent as the scratch buffer is: every item None between
# sweeps (a sweep sets back the ones it filled before giving it back). Lists above _OG_KEPT
# slots are not kept.
cdef list _sweep_og = []
cdef bint _sweep_og_lent = False
cdef Py_ssize_t _OG_KEPT = 1 << 12


cdef list _og_take(Py_ssize_t n, bint* lent):
    """A list of at least n Nones: the shared one (*lent set) or a fresh one."""
    global _sweep_og_lent
    if not _sweep_og_lent and n <= _OG_KEPT:
        # lent before it grows: the growth allocates, which may collect garbage and run a
        # finalizer that hands the GIL to another thread's sweep, which must take its own list
        _sweep_og_lent = True
        if len(_sweep_og) < n:
            try:
                _sweep_og.extend([None] * (n - len(_sweep_og)))
            except BaseException:
                _sweep_og_lent = False
                raise
        lent[0] = True
        return _sweep_og
    lent[0] = False
    return [None] * n


cdef void _og_give_back(list og, Py_ssize_t n, bint lent) noexcept:
    global _sweep_og_lent
    cdef Py_ssize_t i
    if lent:
        # still lent while the items go: a finalizer sweeping meanwhile gets its own list
        for i in range(n):
            if og[i] is not None:
                og[i] = None
        _sweep_og_lent = False


cdef object _sweep(Tape tape, list targets, list seeds, list sources, Tensor target,
                   Tensor source, bint raw, Py_ssize_t batch):
    # Returns a list, one gradient per source; with targets None (and seeds and sources), the
    # gradient of `target`, seeded with ones, for `source` alone: gradient()'s common call,
    # with no lists around it.
    # Everything indexing the buffers is checked against n, fixed here: derivative rules run
    # Python code (custom gradients, user primitives) that can watch tensors and record new
    # entries while the sweep runs. Entries recorded from now on are past n_entries and never
    # visited; the ones visited were recorded before, with slots below n. The sources' slots
    # and kinds are read once, here, into C arrays: a callback may change the caller's list.
    global _rule_of
    cdef Primitive outer_rule = None
    cdef Py_ssize_t n = tape._n_slots, i, k, so, sk, nargs
    cdef list entries = tape._entries
    cdef Py_ssize_t n_entries = len(entries) if entries is not None else 0
    # the struct entries: the array may move as entries are added (read through `scalars`)
    cdef ScalarRecord scalars = tape._scalars
    cdef Py_ssize_t n_scalars = scalars.n if scalars is not None else 0
    cdef Py_ssize_t j
    cdef ScalarRec r
    cdef Py_ssize_t n_sources = 1 if sources is None else len(sources)
    cdef bint in_place = raw   # nothing records the sweep: the sums it makes are its own
    # products s·b kept lazily (_Scaled): a sweep nothing records, of unbatched cotangents
    cdef bint lazy = raw and batch < 0
    if batch >= 0:
        if not _all_batchable(entries, n_entries, scalars, n_scalars):
            return None
        raw = False     # batched cotangents are arrays: no C doubles
    # one block: gradients as doubles (n + 1), source slots and kinds (n_sources each), flags
    cdef bint lent = False
    cdef void* scratch = _scratch_take(
        (n + 1) * sizeof(double) + n_sources * (sizeof(Py_ssize_t) + sizeof(int))
        + (n + 1) * sizeof(char), &lent)
    cdef double* dg = <double*>scratch
    cdef Py_ssize_t* source_slots = <Py_ssize_t*>(dg + n + 1)
    cdef int* source_kinds = <int*>(source_slots + n_sources)
    cdef char* fl = <char*>(source_kinds + n_sources)
    cdef bint og_lent = False
    cdef list og = None
    cdef Entry e
    cdef Primitive p
    cdef Tensor a, b, t, seed, ct
    cdef double g, da, db
    cdef bint f32, as_ops, direct
    cdef object gobj, rule, c
    cdef list results
    try:
        for k in range(n_sources):
            t = source if sources is None else <Tensor>sources[k]
            sk = _slot_below(t, tape.id, n)
            source_slots[k] = sk
            source_kinds[k] = t._kind
            if sk >= 0:
                fl[sk] |= KEEP
        og = _og_take(n, &og_lent)
        if targets is None:
            so = _slot_below(target, tape.id, n)
            if so >= 0:
                if raw and target._is_scalar and target._kind != K_OTHER:
                    _acc_d(dg, fl, so, 1.0, target._kind == K_F32)  # (filled_like's scalar)
                else:
                    og[so] = filled_like(target, 1.0, None)
        else:
            for k in range(len(targets)):
                t = targets[k]
                so = _slot_below(t, tape.id, n)
                if so < 0:
                    continue
                seed = seeds[k]
                if raw and seed._is_scalar:
                    _acc_d(dg, fl, so, seed._d, seed._kind == K_F32)
                else:
                    og[so] = _add(og[so], seed)
        i = n_entries - 1
        j = n_scalars - 1
        while i >= 0 or j >= 0:
            # the later of entry i and struct j (which came after pos entries)
            if j >= 0 and scalars.recs[j].pos > i:
                r = scalars.recs[j]     # (a copy: the array may move; scalars holds its objects)
                j -= 1
                so = r.out_slot
                if so >= n or r.s0 >= n or r.s1 >= n:
                    _bad_record(tape)
                if not (fl[so] & HAS_D) and og[so] is None:
                    continue
                if raw and og[so] is None:
                    # the C fast path of the scalar entries below, on the struct's values
                    g = dg[so]
                    if not (fl[so] & KEEP):
                        fl[so] &= ~HAS_D
                    _scalar_vjp(r.code, g, r.a, r.b, r.y, r.f32, &da, &db,
                                r.in1 != NULL and r.s1 >= 0)
                    if _check_numerics and not (isfinite(da) and isfinite(db)):
                        e = _entry_of_rec(r)
                        _numerics_failed(None, da if not isfinite(da) else db, e.args,
                                         e.prim)
                    if r.s0 >= 0:
                        _acc_d(dg, fl, r.s0, da, r.f32)
                    if r.in1 != NULL and r.s1 >= 0:
                        _acc_d(dg, fl, r.s1, db, r.f32)
                    continue
                e = _entry_of_rec(r)   # the general steps below
            else:
                e = <Entry>entries[i]
                i -= 1
                so = e.out_slot
                if so >= n or e.s0 >= n or e.s1 >= n:
                    _bad_record(tape)
                if not (fl[so] & HAS_D) and og[so] is None:
                    continue
            p = e.prim
            nargs = len(e.args)
            # C fast path: scalar primitive, gradient held as a double, nothing watching
            if raw and p.code != OP_NONE and og[so] is None and e.out._is_scalar:
                a = <Tensor>e.args[0]
                b = a if nargs == 1 else <Tensor>e.args[1]
                if a._is_scalar and b._is_scalar:
                    f32 = e.out._kind == K_F32
                    g = dg[so]
                    if not (fl[so] & KEEP):
                        fl[so] &= ~HAS_D
                    _scalar_vjp(p.code, g, a._d, b._d, e.out._d, f32, &da, &db,
                                nargs == 2 and e.s1 >= 0)
                    if _check_numerics and not (isfinite(da) and isfinite(db)):
                        # the kernel computed p's whole VJP: name p, not one of its steps
                        _numerics_failed(None, da if not isfinite(da) else db, e.args, p)
                    if e.s0 >= 0:
                        _acc_d(dg, fl, e.s0, da, f32)
                    if nargs == 2 and e.s1 >= 0:
                        _acc_d(dg, fl, e.s1, db, f32)
                    continue
            if (lazy and p is _P_TRANSPOSE and type(og[so]) is _Scaled
                    and _transpose_scaled(og, fl, so, e)):
                continue
            gobj = _take(dg, fl, og, so, e.out._kind)
            # a built-in scalar opcode whose rules are the declared ones: their ops run here
            as_ops = (p.code != OP_NONE and batch < 0 and p.code < len(_declared_vjps)
                      and p.vjps is _declared_vjps[p.code] and _scalar_entry_of_kind(e, gobj))
            direct = (lazy and not _check_numerics and type(gobj) is Tensor and not as_ops
                      and _has_direct_vjp(p) and _same_shape_as(<Tensor>gobj, e.out))
            for k in range(nargs):
                if k == 0:
                    sk = e.s0
                elif k == 1:
                    sk = e.s1
                else:
                    sk = e.more_slots[k - 2]
                    if sk >= n:
                        _bad_record(tape)
                if sk < 0:
                    continue
                if (lazy and p is _P_MATMUL and not _check_numerics and p.variadic_vjp is None
                        and p.vjps is _MATMUL_VJPS):
                    c = _matmul_scaled_cotangent(k, gobj, e.args)
                    if c is not None:
                        _accumulate_scaled(og, fl, sk, <_Scaled>c)
                        continue
                c = None
                if direct:
                    c = _direct_vjp(p, k, <Tensor>gobj, e)
                if c is None:
                    if _check_numerics:
                        outer_rule, _rule_of = _rule_of, p
                    try:
                        if p.variadic_vjp is not None:
                            c = p.variadic_vjp(k, gobj, e.out, e.args, e.params)
                        else:
                            rule = p.vjps[k] if k < len(p.vjps) else None
                            if rule is NO_GRADIENT:
                                continue
                            if rule is None:
                                _no_vjp_rule(p, k)
                            if as_ops:
                                c = _scalar_vjp_as_ops(p.code, k, <Tensor>gobj, e.args, e.out)
                            if c is None:
                                c = rule(gobj, e.out, e.args, e.params)
                    finally:
                        if _check_numerics:
                            _rule_of = outer_rule
                    if c is None:
                        continue
                ct = _as_cotangent(c, <Tensor>e.args[k], p, k, batch)
                if raw and ct._is_scalar and og[sk] is None:
                    _acc_d(dg, fl, sk, ct._d, ct._kind == K_F32)
                else:
                    _accumulate(og, fl, sk, ct, in_place)
        if sources is None:
            sk = source_slots[0]
            return _take(dg, fl, og, sk, source_kinds[0]) if sk >= 0 else None
        results = [None] * n_sources
        for k in range(n_sources):
            sk = source_slots[k]
            if sk >= 0:
                results[k] = _take(dg, fl, og, sk, source_kinds[k])
        return results
    finally:
        if og is not None:
            _og_give_back(og, n, og_lent)
        _scratch_give_back(scratch, lent)
