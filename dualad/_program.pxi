# Recording a trace: instructions and the Tracer.
# (included by _trace.pyx)

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

# Instruction kinds as Python sees them (Instr.kind): dualad/function.py splits traces at guards
INSTR_KINDS = {"op": I_OP, "read": I_READ, "assign": I_ASSIGN, "guard": I_GUARD,
               "const": I_CONST, "loop": I_LOOP}

# Which slot references of an instruction in a loop body advance with the iteration
# (by the loop's slot stride); the others name values computed before the loop.
cdef enum:
    SH_A0 = 1
    SH_A1 = 2
    SH_OUT = 4


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
        raise TypeError("dualad._trace.Instr: instructions are made by the tracer only")


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
cdef class Tracer(TraceSink):
    """Collects the program of one run (see dualad.function)."""
    cdef dict _slot_of             # id(tensor) -> slot of the program
    cdef list _keep                # the tensors in _slot_of, kept alive so their ids stay unique
    cdef readonly list instrs
    cdef readonly dict consts      # slot -> Tensor captured by value
    cdef dict _const_slots         # (kind, value, sign) -> slot of a scalar constant
    cdef dict _reads               # id(Variable) -> slot of its last read, until assigned
    cdef dict _var_args            # id(Variable) -> index, for Variables passed as arguments
    cdef readonly Py_ssize_t n_slots

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
            self.record_read(<Variable>t, snap)
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

    cdef void record_op(self, Primitive p, tuple args, dict params, Tensor out) except *:
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

    cdef void record_read(self, Variable v, Tensor snap) except *:
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

    cdef bint follows(self, Tensor t) except -1:
        return t._is_var or self._derived(t)

    cdef void record_alias(self, Tensor copy, Tensor orig) except *:
        s = self._slot_of.get(id(orig))
        if s is not None:
            self._slot_of[id(copy)] = s
            self._keep.append(copy)

    cdef void record_guard(self, Tensor t, object outcome) except *:
        cdef Instr i
        if not self.follows(t):
            return
        i = _instr(I_GUARD)
        i.a0 = self._slot(t)  # a Variable is read here, so the guard sees its value at replay
        i.expected = outcome
        self.instrs.append(i)

    cdef void record_assign(self, Variable v, Tensor value, int mode) except *:
        cdef Instr i = _instr(I_ASSIGN)
        _set_var(self, i, v)
        i.mode = mode
        i.a0 = self._slot(value)
        self._reads.pop(id(v), None)
        i.out = self.n_slots      # the Variable's new value, for assign_add/assign_sub
        self.n_slots += 1
        self.instrs.append(i)


cdef int _set_var(Tracer tr, Instr i, Variable v) except -1:
    """Name v in instruction i: by argument index if it is a Variable argument, else itself."""
    k = tr._var_args.get(id(v))
    if k is None:
        i.var = v
    else:
        i.vindex = k
    return 0


