# Tracing and replay (dualad.function).
# (included by _core.pyx: one extension module, assembled from these files)

# ============================================================================================
# Tracing and replay (dualad.function)
# ============================================================================================
# A trace is the linear program of one run of a function: every primitive call (those of
# derivative rules included, so tapes inside the function become explicit backward ops), every
# read and assignment of a Variable, every constant, and a guard for every Python decision
# taken on a traced value. Runs that took different decisions share their common prefix in a
# tree whose branches are the guards' outcomes; a replay walks it with no Python per op.

cdef enum:
    I_OP = 0
    I_READ = 1
    I_ASSIGN = 2
    I_GUARD = 3
    I_CONST = 4
    I_LOOP = 5

cdef enum:
    ASSIGN_SET = 0
    ASSIGN_ADD = 1
    ASSIGN_SUB = 2

# Which slot references of an instruction in a loop body advance with the iteration
# (by the loop's slot stride); the others name values computed before the loop.
cdef enum:
    SH_A0 = 1
    SH_A1 = 2
    SH_OUT = 4


from libc.stdlib cimport realloc

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


# Instructions are followed by the cycle collector (a custom primitive's closures can lead back
# to the object owning the program) but never cleared by it: a packed Node borrows their
# Variables, so an Instr keeps its fields until it is freed. Nothing outside the tracer can
# build or change one (no pickling, no constructor), so packing validates them once.
@cython.final
@cython.no_gc_clear
@cython.auto_pickle(False)
cdef class Instr:
    """One instruction of a traced program."""
    cdef readonly int kind
    cdef Primitive prim
    cdef dict params
    cdef tuple ins              # argument slots
    cdef tuple ins_shift        # in a loop body: per argument, 1 if it advances per iteration
    cdef Py_ssize_t a0, a1      # the first two argument slots (-1 if absent)
    cdef readonly Py_ssize_t out
    cdef int sh                 # SH_* bits, in a loop body
    cdef Variable var           # a read or assignment of a Variable the program holds, or
    cdef Py_ssize_t vindex      # (var None) of the call's vindex-th Variable argument
    cdef int mode
    cdef readonly object expected   # a guard's outcome in the traced run (bool or int)
    cdef Tensor value           # a constant
    cdef object body            # a loop's body (a Node of straight-line instructions)
    cdef readonly Py_ssize_t count, stride   # a loop's iterations and slots per iteration

    @property
    def slot(self):
        return self.a0

    def __repr__(self):
        names = {I_OP: "op", I_READ: "read", I_ASSIGN: "assign", I_GUARD: "guard",
                 I_CONST: "const", I_LOOP: "loop"}
        detail = self.prim.name if self.kind == I_OP and self.prim is not None else ""
        if self.kind == I_LOOP:
            detail = f"x{self.count} of {len(self.body.instrs)} instructions"
        return f"<Instr {names[self.kind]} {detail} in={self.ins} out={self.out}>"


    def __init__(self, *args, **kwargs):
        raise TypeError("dualad._core.Instr: instructions are made by the tracer only")


cdef Instr _instr(int kind):
    cdef Instr i = Instr.__new__(Instr)
    i.kind = kind
    i.a0 = -1
    i.a1 = -1
    i.out = -1
    i.vindex = -1
    return i


cdef Instr _instr_copy(Instr x):
    """A copy of x (a loop body gets its own instructions: the traced ones are never changed
    once recorded, so a Node packed from them stays valid)."""
    cdef Instr i = _instr(x.kind)
    i.prim = x.prim
    i.params = x.params
    i.ins = x.ins
    i.ins_shift = x.ins_shift
    i.a0 = x.a0
    i.a1 = x.a1
    i.out = x.out
    i.sh = x.sh
    i.var = x.var
    i.vindex = x.vindex
    i.mode = x.mode
    i.expected = x.expected
    i.value = x.value
    i.body = x.body
    i.count = x.count
    i.stride = x.stride
    return i


cdef int _shift_of(Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t stride):
    """How a slot reference changes from one iteration to the next: 0 (fixed), 1 (advances by
    the stride), -1 (neither: the iterations differ)."""
    if r0 == r1:
        return 0
    if r1 - r0 == stride:
        return 1
    return -1


cdef bint _same_value(Tensor a, Tensor b):
    if a._is_scalar or b._is_scalar:
        return a._is_scalar and b._is_scalar and a._kind == b._kind and a._d == b._d
    return (a._dtype == b._dtype and a._arr.shape == b._arr.shape
            and a._arr.tobytes() == b._arr.tobytes())


cdef list _iteration_shifts(list instrs, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t n,
                            Py_ssize_t stride):
    """If the n instructions at i1 repeat those at i0 one iteration later (same operations on
    slots that are either the same or advanced by `stride`), the SH_* bits and per-argument
    shifts of each; else None. Bodies with guards or loops are not compressed."""
    cdef list out = []
    cdef Instr x, y
    cdef Py_ssize_t k, j
    cdef int sh, f
    for k in range(n):
        x = instrs[i0 + k]
        y = instrs[i1 + k]
        if x.kind != y.kind or x.kind == I_GUARD or x.kind == I_LOOP:
            return None
        if _shift_of(x.out, y.out, stride) != 1:
            return None
        sh = SH_OUT
        shifts = None
        if x.kind == I_OP:
            if x.prim is not y.prim or len(x.ins) != len(y.ins):
                return None
            try:
                if x.params != y.params:
                    return None
            except Exception:   # parameters that do not compare (arrays): not the same
                return None
            shifts = []
            for j in range(len(x.ins)):
                f = _shift_of(x.ins[j], y.ins[j], stride)
                if f < 0:
                    return None
                shifts.append(f)
                if f and j < 2:
                    sh |= SH_A0 if j == 0 else SH_A1
            shifts = tuple(shifts)
        elif x.kind == I_CONST:
            if not _same_value(x.value, y.value):
                return None
        elif x.kind == I_READ:
            if x.var is not y.var or x.vindex != y.vindex:
                return None
        elif x.kind == I_ASSIGN:
            if x.var is not y.var or x.vindex != y.vindex or x.mode != y.mode:
                return None
            f = _shift_of(x.a0, y.a0, stride)
            if f < 0:
                return None
            if f:
                sh |= SH_A0
        out.append((sh, shifts))
    return out


@cython.auto_pickle(False)
cdef class Tracer:
    """Collects the program of one run (see dualad.function)."""

    def __cinit__(self):
        self._slot_of = {}
        self._keep = []
        self.instrs = []
        self.consts = {}
        self._const_slots = {}
        self._reads = {}
        self._var_args = {}
        self.n_slots = 0

    cdef Py_ssize_t _new_slot(self, Tensor t) except -1:
        cdef Py_ssize_t s = self.n_slots
        self.n_slots += 1
        self._slot_of[id(t)] = s
        self._keep.append(t)
        return s

    cdef Py_ssize_t _slot(self, Tensor t) except -1:
        """The slot holding `t`; a Variable is read, any other unseen tensor is a constant."""
        cdef object s = self._slot_of.get(id(t))
        cdef Instr i
        cdef Tensor snap
        if s is not None:
            return s
        if t._is_var:
            snap = (<Variable>t)._snapshot()
            self._read(<Variable>t, snap)
            return self._slot_of[id(snap)]
        if t._is_scalar:
            # equal scalar constants share one slot (`x * 2` makes a new 2 each time)
            key = (t._kind, t._d, copysign(1.0, t._d))
            s = self._const_slots.get(key)
            if s is not None:
                self._slot_of[id(t)] = s
                self._keep.append(t)
                return s
            self._const_slots[key] = self.n_slots
        i = _instr(I_CONST)
        i.value = t
        i.out = self._new_slot(t)
        self.consts[i.out] = t
        self.instrs.append(i)
        return i.out

    cdef bint _derived(self, Tensor t):
        s = self._slot_of.get(id(t))
        return s is not None and s not in self.consts

    def input(self, Tensor t not None):
        """Register an argument of the function; inputs take the first slots, in order."""
        if self.n_slots != len(self._keep) or self.instrs:
            raise RuntimeError("Tracer.input: inputs must be registered before anything else")
        return self._new_slot(t)

    def variable_input(self, Variable v not None):
        """Register a Variable argument of the function: the program names it by its index
        (in registration order) instead of holding it, and each replay is given the call's."""
        if self.instrs:
            raise RuntimeError("Tracer.variable_input: inputs must be registered before "
                               "anything else")
        return self._var_args.setdefault(id(v), len(self._var_args))

    def output(self, Tensor t not None):
        """The slot of a tensor the function returns."""
        return self._slot(t)

    def mark(self):
        """The position of the trace (instructions, slots): dualad.range marks each iteration."""
        return (len(self.instrs), self.n_slots)

    def compress_loop(self, list marks):
        """Replace runs of iterations that repeat one another by loop instructions.

        marks[k] is the mark() taken at the start of iteration k, the last one at the loop's
        end. Each iteration keeps its own slots (the stride apart), so values computed in the
        loop stay addressable after it; only the instructions are shared."""
        cdef Py_ssize_t n_it, k, j, size, stride
        cdef list shifts, nxt, rebuilt, pos, at
        cdef list instrs
        cdef Instr loop, x
        cdef Node body
        if marks is None:
            raise TypeError("Tracer.compress_loop: marks must be a list of mark() values")
        # the marks as ints first (converting them may run Python code), then a snapshot of
        # the instructions they must fit: every index below is proven in range against it
        pos = []
        at = []
        for m in marks:
            if not isinstance(m, tuple) or len(m) != 2:
                raise TypeError("Tracer.compress_loop: each mark must be a (position, slots) "
                                "pair from mark()")
            pos.append(<Py_ssize_t>m[0])
            at.append(<Py_ssize_t>m[1])
        instrs = list(self.instrs)
        n_it = len(pos) - 1
        for k in range(n_it + 1):
            if (pos[k] < (pos[k - 1] if k else 0) or pos[k] > len(instrs)
                    or at[k] < (at[k - 1] if k else 0) or at[k] > self.n_slots):
                raise ValueError("Tracer.compress_loop: the marks are not increasing positions "
                                 "of this trace")
        if n_it < 2 or pos[n_it] != len(instrs):
            return
        rebuilt = instrs[:pos[0]]
        k = 0
        while k < n_it:
            size = pos[k + 1] - pos[k]
            stride = at[k + 1] - at[k]
            shifts = None
            j = k + 1
            while j < n_it and size > 0 and pos[j + 1] - pos[j] == size \
                    and at[j + 1] - at[j] == stride:
                nxt = _iteration_shifts(instrs, pos[j - 1], pos[j], size, stride)
                if nxt is None or (shifts is not None and nxt != shifts):
                    break
                shifts = nxt
                j += 1
            if j - k < 2:
                rebuilt.extend(instrs[pos[k]:pos[k + 1]])
                k += 1
                continue
            body = Node()
            body.instrs = [_instr_copy(<Instr?>x) for x in instrs[pos[k]:pos[k + 1]]]
            for x, (sh, ins_shift) in zip(body.instrs, shifts):
                x.sh = sh
                x.ins_shift = ins_shift
            loop = _instr(I_LOOP)
            loop.body = body
            loop.count = j - k
            loop.stride = stride
            rebuilt.append(loop)
            k = j
        self.instrs[:] = rebuilt

    cdef void _op(self, Primitive p, tuple args, dict params, Tensor out) except *:
        cdef Instr i = _instr(I_OP)
        i.prim = p
        i.params = params
        i.ins = tuple([self._slot(<Tensor>a) for a in args])
        for s in i.ins:
            if s not in self.consts:
                break
        else:
            # constant folding: an op of constants gives the same value on every replay
            self._slot(out)
            return
        i.a0 = i.ins[0]
        if len(i.ins) > 1:
            i.a1 = i.ins[1]
        i.out = self._new_slot(out)
        self.instrs.append(i)

    cdef void _read(self, Variable v, Tensor snap) except *:
        # a Variable not assigned since its last read holds the same value: reuse that slot
        s = self._reads.get(id(v))
        if s is not None:
            self._slot_of[id(snap)] = s
            self._keep.append(snap)
            return
        cdef Instr i = _instr(I_READ)
        _set_var(self, i, v)
        i.out = self._new_slot(snap)
        self._reads[id(v)] = i.out
        self._keep.append(v)   # its id names it in _reads
        self.instrs.append(i)


cdef int _set_var(Tracer tr, Instr i, Variable v) except -1:
    """Name v in instruction i: by argument index if it is a Variable argument, else itself."""
    k = tr._var_args.get(id(v))
    if k is None:
        i.var = v
    else:
        i.vindex = k
    return 0


def begin_trace():
    """Start taking a trace on this thread (dualad.function); returns the Tracer."""
    global _n_tracing
    st = _state()
    if st.tracer is not None:
        raise RuntimeError("a trace is already being taken on this thread")
    st.tracer = Tracer()
    _n_tracing += 1
    return st.tracer


def end_trace():
    global _n_tracing
    st = _state()
    if st.tracer is not None:
        st.tracer = None
        _n_tracing -= 1


def current_tracer():
    """The Tracer taking a trace on this thread, or None."""
    return _state().tracer if _n_tracing else None


def tracing():
    """True while a trace is being taken on this thread."""
    return _n_tracing > 0 and _state().tracer is not None


cdef inline Tracer _tracer():
    return _state().tracer


cdef void _trace_alias(Tensor copy, Tensor orig) except *:
    cdef Tracer tr = _tracer()
    if tr is None:
        return
    s = tr._slot_of.get(id(orig))
    if s is not None:
        tr._slot_of[id(copy)] = s
        tr._keep.append(copy)


cdef void _trace_impure(str why) except *:
    cdef Tracer tr = _tracer()
    if tr is not None and tr.impure is None:
        tr.impure = why


def mark_impure(str why):
    """Make the trace being taken on this thread run eagerly instead, for this reason."""
    _trace_impure(why)


cdef void _trace_concrete(Tensor t, str what) except *:
    cdef Tracer tr = _tracer()
    if tr is not None and tr.impure is None and (t._is_var or tr._derived(t)):
        tr.impure = f"{what} reads a traced value into Python"


cdef void _trace_guard(Tensor t, object outcome) except *:
    cdef Tracer tr = _tracer()
    cdef Instr i
    if tr is None or not (t._is_var or tr._derived(t)):
        return
    i = _instr(I_GUARD)
    i.a0 = tr._slot(t)  # a Variable is read here, so the guard sees its value at replay
    i.expected = outcome
    tr.instrs.append(i)


cdef void _trace_assign(Variable v, Tensor value, int mode) except *:
    cdef Tracer tr = _tracer()
    cdef Instr i
    if tr is None:
        return
    i = _instr(I_ASSIGN)
    _set_var(tr, i, v)
    i.mode = mode
    i.a0 = tr._slot(value)
    tr._reads.pop(id(v), None)
    i.out = tr.n_slots      # the Variable's new value, for assign_add/assign_sub
    tr.n_slots += 1
    tr.instrs.append(i)


cdef enum:
    S_OP = 0
    S_CONST = 1
    S_READ = 2
    S_ASSIGN = 3
    S_LOOP = 4

ctypedef struct _Step:
    # An instruction packed for the replay loop: contiguous, so long programs stream through
    # the cache instead of chasing one Python object per instruction.
    int kind                # S_*
    int code                # S_OP: scalar opcode if it may run on C doubles; S_ASSIGN: mode
    int nargs
    int sh                  # SH_* bits (loop bodies)
    Py_ssize_t a0, a1, out
    Py_ssize_t index        # the Instr in Node.instrs, for everything the C path cannot do
    double c                # S_CONST: a float scalar's value
    signed char ck          # S_CONST: 1 float32 scalar, 2 float64 scalar, 0 any other value
    int vindex              # S_READ/S_ASSIGN with var NULL: the replay's vindex-th Variable argument
    PyObject* var           # S_READ/S_ASSIGN: the Variable (owned by the Instr), or NULL


cdef int _need_of(Py_ssize_t s, Py_ssize_t* need) except -1:
    """Count slot reference s towards a node's need (the buffer size it must find)."""
    if s < 0:
        raise ValueError(f"dualad.function: negative slot {s} in a program")
    if s >= need[0]:
        need[0] = s + 1
    return 0


cdef class Node:
    """A branch of a program tree: straight-line instructions, then a guard choosing the next
    branch by its outcome, or (at a leaf) the slots of the function's outputs.

    function.py fills `instrs`, `guard`, `out_slots` and `children` before the node is
    replayed. The first replay packs it: the instructions are validated and frozen, with the
    number of slots they reference, and from then on only `children` may change (new paths)."""
    cdef readonly list instrs
    cdef Instr _guard_in
    cdef readonly dict children
    cdef tuple _out_in
    cdef public object finish      # Python-side: builds the function's result at a leaf
    # frozen when packed: replay reads only these
    cdef tuple _code               # the Instrs the steps index
    cdef Instr _guard
    cdef tuple _outs
    cdef _Step* steps
    cdef Py_ssize_t n_steps        # -1 until packed
    cdef Py_ssize_t need           # slots referenced by the steps, guard and outputs (max + 1)
    cdef Py_ssize_t need_shift     # in a loop body: max + 1 over the references that advance
    cdef Py_ssize_t need_vars      # Variable arguments referenced (max index + 1)
    cdef _Slots spare              # the root's slot buffer, reused by the next replay

    def __cinit__(self):
        self.instrs = []
        self.children = {}
        self._out_in = ()
        self.steps = NULL
        self.n_steps = -1

    def __dealloc__(self):
        free(self.steps)

    @property
    def guard(self):
        return self._guard_in

    @guard.setter
    def guard(self, Instr guard):
        self._frozen("guard")
        self._guard_in = guard

    @property
    def out_slots(self):
        return self._out_in

    @out_slots.setter
    def out_slots(self, tuple out_slots not None):
        self._frozen("out_slots")
        self._out_in = out_slots

    @property
    def slots_needed(self):
        """Slots a replay of this node needs (known once packed, else None)."""
        return self.need if self.n_steps >= 0 else None

    def _frozen(self, what):
        if self.n_steps >= 0:
            raise AttributeError(f"Node.{what}: a node cannot change once it has been replayed")

    cdef int _pack(self, bint body) except -1:
        """Validate and freeze the node, and pack its instructions for the replay loop.

        Python code may run meanwhile (the collector), so everything is built in locals and
        published at the end in one step: another thread sees the node packed or not at all."""
        cdef tuple code = tuple(self.instrs)
        cdef Instr guard = self._guard_in
        cdef tuple outs = self._out_in
        cdef Py_ssize_t n = len(code), i, j, nargs, s, reach
        cdef Py_ssize_t need = 0, need_shift = 0, need_vars = 0
        cdef Instr ins
        cdef Node loop_body
        cdef _Step* st
        cdef _Step* steps = <_Step*>calloc(n + 1, sizeof(_Step))
        if steps == NULL:
            raise MemoryError("not enough memory to pack the program")
        try:
            for i in range(n):
                if not isinstance(code[i], Instr):
                    raise TypeError(f"dualad.function: {type(code[i]).__name__} in a "
                                    "program's instructions")
                ins = <Instr>code[i]
                st = &steps[i]
                st.index = i
                st.a0 = -1
                st.a1 = -1
                if not (I_OP <= ins.kind <= I_ASSIGN or ins.kind == I_CONST
                        or (ins.kind == I_LOOP and not body)):
                    # a body is straight-line code (compress_loop never nests loops); guards
                    # end a node, they are not among its instructions
                    raise ValueError(f"dualad.function: unexpected instruction {ins!r} in a "
                                     f"{'loop body' if body else 'branch'}")
                st.out = ins.out
                if ins.kind != I_LOOP:
                    _need_of(ins.out, &need)
                    if body and ins.sh & SH_OUT:
                        _need_of(ins.out, &need_shift)
                if ins.kind == I_OP:
                    if ins.prim is None or ins.ins is None or (
                            ins.ins_shift is not None and len(ins.ins_shift) != len(ins.ins)):
                        raise ValueError(f"dualad.function: malformed instruction {ins!r}")
                    st.kind = S_OP
                    nargs = len(ins.ins)
                    for j in range(nargs):
                        s = ins.ins[j]
                        _need_of(s, &need)
                        if ins.ins_shift is not None and ins.ins_shift[j]:
                            if j < 2:
                                st.sh |= SH_A0 if j == 0 else SH_A1
                            if body:
                                _need_of(s, &need_shift)
                    if nargs >= 1:
                        st.a0 = ins.ins[0]
                    if nargs >= 2:
                        st.a1 = ins.ins[1]
                    if ins.prim.code != OP_NONE and 1 <= nargs <= 2:
                        st.code = ins.prim.code
                        st.nargs = nargs
                elif ins.kind == I_CONST:
                    if ins.value is None:
                        raise ValueError(f"dualad.function: malformed instruction {ins!r}")
                    st.kind = S_CONST
                    if ins.value._is_scalar:
                        st.c = ins.value._d
                        st.ck = 1 if ins.value._kind == K_F32 else 2
                elif ins.kind == I_READ or ins.kind == I_ASSIGN:
                    if ((ins.var is None) == (ins.vindex < 0) or ins.vindex >= 1 << 30
                            or not (ASSIGN_SET <= ins.mode <= ASSIGN_SUB)):
                        raise ValueError(f"dualad.function: malformed instruction {ins!r}")
                    st.kind = S_READ if ins.kind == I_READ else S_ASSIGN
                    st.code = ins.mode
                    if ins.var is not None:
                        st.var = <PyObject*>ins.var
                    else:
                        st.vindex = <int>ins.vindex
                        need_vars = max(need_vars, ins.vindex + 1)
                    if ins.kind == I_ASSIGN:
                        st.a0 = ins.a0
                        _need_of(ins.a0, &need)
                        if ins.sh & SH_A0:
                            st.sh |= SH_A0
                            if body:
                                _need_of(ins.a0, &need_shift)
                elif ins.kind == I_LOOP:
                    if not isinstance(ins.body, Node) or ins.count < 0 or ins.stride < 0:
                        raise ValueError(f"dualad.function: malformed instruction {ins!r}")
                    loop_body = <Node>ins.body
                    if loop_body.n_steps < 0:
                        loop_body._pack(True)
                    st.kind = S_LOOP
                    st.out = -1
                    need = max(need, loop_body.need)
                    need_vars = max(need_vars, loop_body.need_vars)
                    if ins.count > 0 and loop_body.need_shift > 0:
                        # the last iteration's advancing references: need_shift + (count-1)*stride
                        if ins.stride and (ins.count - 1) > (PY_SSIZE_T_MAX // 2
                                                             - loop_body.need_shift) // ins.stride:
                            raise MemoryError("dualad.function: a loop addresses too many slots")
                        reach = loop_body.need_shift + (ins.count - 1) * ins.stride
                        need = max(need, reach)
                if st.kind != S_LOOP and ins.sh & SH_OUT:
                    st.sh |= SH_OUT
            if guard is not None:
                if body or guard.kind != I_GUARD or not isinstance(guard.expected, (bool, int)):
                    raise ValueError(f"dualad.function: malformed guard {guard!r}")
                _need_of(guard.a0, &need)
            outs = tuple([<Py_ssize_t>o for o in outs])
            for s in outs:
                if s != -1:
                    _need_of(s, &need)
        except BaseException:
            free(steps)
            raise
        if self.n_steps >= 0:   # packed by another thread meanwhile: theirs stands
            free(steps)
            return 0
        self._code = code
        self._guard = guard
        self._outs = outs
        self.need = need
        self.need_shift = need_shift
        self.need_vars = need_vars
        self.steps = steps
        self.n_steps = n
        return 0


@cython.final
cdef class _Slots:
    """The values of a replay: float scalars as C doubles, other values as Tensors."""
    cdef double* dv
    cdef signed char* dk        # -1 unset, 0 Tensor in ov, 1 float32 double, 2 float64 double
    cdef PyObject** ov          # owned references where dk == 0
    cdef Py_ssize_t n

    def __cinit__(self, Py_ssize_t n):
        if n < 0 or n > PY_SSIZE_T_MAX // 16:
            raise MemoryError(f"dualad.function: cannot replay a program of {n} slots")
        self.n = n
        self.dv = <double*>malloc((n + 1) * sizeof(double))
        self.dk = <signed char*>malloc((n + 1) * sizeof(signed char))
        self.ov = <PyObject**>malloc((n + 1) * sizeof(PyObject*))
        if self.dv == NULL or self.dk == NULL or self.ov == NULL:
            raise MemoryError("not enough memory to replay the program")
        memset(self.dk, -1, (n + 1) * sizeof(signed char))

    cdef int grow(self, Py_ssize_t n) except -1:
        """Make room for n slots, keeping the values held (a path longer than the buffer)."""
        cdef void* p
        if n <= self.n:
            return 0
        if n > PY_SSIZE_T_MAX // 16:
            raise MemoryError(f"dualad.function: cannot replay a program of {n} slots")
        p = realloc(self.dv, (n + 1) * sizeof(double))
        if p == NULL:
            raise MemoryError("not enough memory to replay the program")
        self.dv = <double*>p
        p = realloc(self.ov, (n + 1) * sizeof(PyObject*))
        if p == NULL:
            raise MemoryError("not enough memory to replay the program")
        self.ov = <PyObject**>p
        p = realloc(self.dk, (n + 1) * sizeof(signed char))
        if p == NULL:
            raise MemoryError("not enough memory to replay the program")
        self.dk = <signed char*>p
        memset(self.dk + self.n + 1, -1, (n - self.n) * sizeof(signed char))
        self.n = n
        return 0

    cdef void clear(self):
        cdef Py_ssize_t i
        for i in range(self.n + 1):
            if self.dk[i] == 0:
                Py_DECREF(<object>self.ov[i])
        memset(self.dk, -1, (self.n + 1) * sizeof(signed char))

    def __dealloc__(self):
        if self.dk != NULL and self.ov != NULL:
            self.clear()
        free(self.dv)
        free(self.dk)
        free(self.ov)


cdef inline Tensor _slot_get(_Slots v, Py_ssize_t s):
    cdef signed char k = v.dk[s]
    if k > 0:
        return _new_scalar(v.dv[s], K_F32 if k == 1 else K_F64)
    if k < 0:
        raise RuntimeError(f"dualad.function: slot {s} read before it was written (a bug in "
                           "the trace)")
    return <Tensor>v.ov[s]


cdef inline void _slot_put(_Slots v, Py_ssize_t s, Tensor t):
    if v.dk[s] == 0:
        Py_DECREF(<object>v.ov[s])
    if t._is_scalar:
        v.dv[s] = t._d
        v.dk[s] = 1 if t._kind == K_F32 else 2
    else:
        Py_INCREF(t)
        v.ov[s] = <PyObject*>t
        v.dk[s] = 0


cdef inline void _slot_copy(_Slots v, Py_ssize_t dst, Py_ssize_t src):
    if v.dk[src] == 0:
        _slot_put(v, dst, <Tensor>v.ov[src])
    else:
        v.dv[dst] = v.dv[src]
        v.dk[dst] = v.dk[src]


cdef long long _replay_generation = 0


@cython.final
@cython.freelist(8)
cdef class _Staging:
    """The Variable assignments one replay has staged (committed only when it completes).

    The fast path uses the Variable's own fields: `_stage_gen` is the generation of the one
    live replay that stages it there (0: none), `_stage_slot` the slot of its staged value. A
    replay that finds them held by another live replay (another thread, or a replay nested in
    an op of this one) stages that Variable in its side table instead."""
    cdef long long gen
    cdef tuple variables            # the call's Variable arguments (Instr.vindex)
    cdef list owned                 # Variables whose fields this replay holds
    cdef dict side                  # id(Variable) -> (Variable, slot); None until needed


cdef inline Py_ssize_t _staged_slot(_Staging stg, Variable var) except -2:
    """The slot of var's value staged by this replay, or -1 if it has staged none."""
    if var._stage_gen == stg.gen:
        return var._stage_slot
    if stg.side is None:
        return -1
    return _side_slot(stg, var)


cdef Py_ssize_t _side_slot(_Staging stg, Variable var) except -2:
    e = stg.side.get(id(var))
    return -1 if e is None else (<tuple>e)[1]


cdef int _stage(_Staging stg, Variable var, Py_ssize_t slot) except -1:
    if var._stage_gen == stg.gen:
        var._stage_slot = slot
    elif var._stage_gen == 0:
        stg.owned.append(var)
        var._stage_gen = stg.gen
        var._stage_slot = slot
        if stg.side is not None:
            stg.side.pop(id(var), None)
    else:
        if stg.side is None:
            stg.side = {}
        stg.side[id(var)] = (var, slot)
    return 0


cdef int _exec(Node node, _Slots v, Py_ssize_t off, _Staging stg) except -1:
    """Run a packed node's straight-line instructions (the caller has made v hold node.need
    slots, a loop's `need` covering its body's last iteration). In a loop body, slot references
    flagged as advancing are offset by `off` (iteration × stride); elsewhere off is 0.

    Variable assignments are staged, not applied (see _Staging), and later reads in the same
    replay see them. replay() commits them only once the whole path has been found."""
    cdef Py_ssize_t i, j, a0, a1, out, cur
    cdef _Step* st
    cdef signed char k0
    cdef Instr ins
    cdef Variable var
    cdef Tensor t
    cdef double cd
    cdef signed char ck
    for i in range(node.n_steps):
        st = &node.steps[i]
        a0 = st.a0 + off if st.sh & SH_A0 else st.a0
        a1 = st.a1 + off if st.sh & SH_A1 else st.a1
        out = st.out + off if st.sh & SH_OUT else st.out
        if st.kind == S_OP:
            if st.code != OP_NONE:
                k0 = v.dk[a0]
                if k0 > 0 and (st.nargs == 1 or v.dk[a1] == k0):
                    v.dv[out] = _round(_scalar_value(st.code, v.dv[a0],
                                                     v.dv[a1] if st.nargs == 2 else 0.0), k0 == 1)
                    v.dk[out] = k0
                    continue
            ins = <Instr>node._code[st.index]
            if ins.ins_shift is None:
                args = tuple([_slot_get(v, s) for s in ins.ins])
            else:
                args = tuple([_slot_get(v, s + off if f else s)
                              for s, f in zip(ins.ins, ins.ins_shift)])
            _slot_put(v, out, run_op(ins.prim, args, ins.params))
        elif st.kind == S_CONST:
            if st.ck > 0:
                v.dv[out] = st.c
                v.dk[out] = st.ck
            else:
                _slot_put(v, out, (<Instr>node._code[st.index]).value)
        elif st.kind == S_READ:
            if st.var != NULL:
                var = <Variable>st.var
            else:
                var = <Variable>stg.variables[st.vindex]
            cur = _staged_slot(stg, var)
            if cur >= 0:
                _slot_copy(v, out, cur)
            elif var._is_scalar:
                v.dv[out] = var._d
                v.dk[out] = 1 if var._kind == K_F32 else 2
            else:
                _slot_put(v, out, _plain_copy(var))
        elif st.kind == S_ASSIGN:
            if st.var != NULL:
                var = <Variable>st.var
            else:
                var = <Variable>stg.variables[st.vindex]
            cur = _staged_slot(stg, var)
            if st.code != ASSIGN_SET:
                # the current value: staged earlier in this replay, or the Variable's own
                if cur >= 0:
                    ck = v.dk[cur]
                    cd = v.dv[cur]
                elif var._is_scalar:
                    ck = 1 if var._kind == K_F32 else 2
                    cd = var._d
                else:
                    ck = 0
                if ck > 0 and v.dk[a0] == ck:
                    v.dv[out] = _round(cd + v.dv[a0] if st.code == ASSIGN_ADD else cd - v.dv[a0],
                                       ck == 1)
                    v.dk[out] = ck
                else:
                    t = _raw_arith(_slot_get(v, cur) if cur >= 0 else var, _slot_get(v, a0),
                                   1 if st.code == ASSIGN_ADD else -1)
                    _slot_put(v, out, t)
                a0 = out
            _stage(stg, var, a0)
        else:  # S_LOOP
            ins = <Instr>node._code[st.index]
            for j in range(ins.count):
                _exec(<Node>ins.body, v, j * ins.stride, stg)
    return 0


def replay(Node root not None, inputs, Py_ssize_t n_slots=0, variables=()):
    """Run a program tree on `inputs` (the Tensors of the input slots, in order) and
    `variables` (the Variable arguments the program names by index). Returns
    (leaf, output Tensors), or None when a guard meets an outcome no trace has taken yet; then
    nothing has been changed (Variable assignments are committed only at the end).

    The slot buffer starts with n_slots (a hint) and grows to what each node on the path
    needs, whatever paths other threads add to the tree meanwhile."""
    global _replay_generation
    cdef tuple args = tuple(inputs)
    cdef tuple var_args = tuple(variables)
    cdef Py_ssize_t i, n_in = len(args)
    cdef _Slots v
    cdef Node node = root
    cdef Instr guard
    cdef Tensor t
    cdef Variable var
    cdef object outcome
    cdef _Staging stg
    for i in range(n_in):
        if not isinstance(args[i], Tensor):
            raise TypeError(f"replay: input {i} is a {type(args[i]).__name__}, not a Tensor")
    for i in range(len(var_args)):
        if not isinstance(var_args[i], Variable):
            raise TypeError(f"replay: variable {i} is a {type(var_args[i]).__name__}, not a "
                            "Variable")
    if n_slots < 0:
        raise ValueError(f"replay: n_slots must be >= 0, got {n_slots}")
    if root.n_steps < 0:
        root._pack(False)
    n_slots = max(n_slots, n_in, root.need)
    v = root.spare
    root.spare = None   # a replay on another thread (or nested) takes a buffer of its own
    if v is None:
        v = _Slots(n_slots)
    else:
        v.grow(n_slots)
    stg = _Staging.__new__(_Staging)
    stg.owned = []
    stg.variables = var_args
    _replay_generation += 1
    stg.gen = _replay_generation
    try:
        for i in range(n_in):
            _slot_put(v, i, <Tensor>args[i])
        while True:
            if node.n_steps < 0:
                node._pack(False)
            if node.need > v.n:
                v.grow(node.need)
            if node.need_vars > len(var_args):
                raise ValueError(f"replay: the program needs {node.need_vars} Variable "
                                 f"arguments, got {len(var_args)}")
            _exec(node, v, 0, stg)
            guard = node._guard
            if guard is None:
                break
            if v.dk[guard.a0] > 0:   # a float scalar: its truth value, or int() of it
                outcome = (v.dv[guard.a0] != 0.0 if type(guard.expected) is bool
                           else int(v.dv[guard.a0]))
            else:
                t = _slot_get(v, guard.a0)
                outcome = bool(t) if isinstance(guard.expected, bool) else int(t)
            node = node.children.get(outcome)
            if node is None:
                return None
        for var in stg.owned:
            var._set_from(_slot_get(v, var._stage_slot))
        if stg.side is not None:
            for e in list(stg.side.values()):
                (<Variable>(<tuple>e)[0])._set_from(_slot_get(v, (<tuple>e)[1]))
        return node, [None if s < 0 else _slot_get(v, s) for s in node._outs]
    finally:
        for var in stg.owned:
            if var._stage_gen == stg.gen:
                var._stage_gen = 0
        v.clear()
        root.spare = v
