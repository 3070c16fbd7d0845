# Replaying a program tree (dualad.function).
# (included by _trace.pyx)

cdef enum:
    # the binary float ops first: the replay loop tests them with one comparison
    S_ADD = 0
    S_SUB = 1
    S_MUL = 2
    S_DIV = 3
    S_POW = 4
    S_OP = 5
    S_CONST = 6
    S_READ = 7
    S_ASSIGN = 8
    S_LOOP = 9

# The replay rounds every op on its own, like eager ops: no fused multiply-add contraction of
# the separate operations (GCC contracts across statements by default where FMA exists).
cdef extern from *:
    """
    #if defined(__clang__)
    #pragma clang fp contract(off)
    #elif defined(__GNUC__)
    #pragma GCC optimize ("fp-contract=off")
    #endif
    """

ctypedef struct _Step:
    # An instruction packed for the replay loop: contiguous, so long programs stream through
    # the cache instead of chasing one Python object per instruction.
    int kind                # S_*
    int code                # S_OP: scalar opcode if it may run on C doubles; S_ASSIGN: mode
    int nargs
    int sh                  # SH_* bits (loop bodies)
    Py_ssize_t a0, a1, out
    Py_ssize_t m0, m1, mo   # -1 where a0, a1, out advance with the iteration, else 0: the
                            # replay adds (off & mask), no branch
    Py_ssize_t index        # the Instr in Node.instrs, for everything the C path cannot do
    double c                # S_CONST: a float scalar's value
    signed char ck          # S_CONST: 1 float32 scalar, 2 float64 scalar, 0 any other value
    int vindex              # S_READ/S_ASSIGN with var NULL: the replay's vindex-th Variable argument
    PyObject* var           # S_READ/S_ASSIGN: the Variable (owned by the Instr), or NULL
    unsigned char* dead     # S_LOOP: per body step, 1 if no slot it writes is ever read (owned;
                            # NULL: all live)


cdef void _free_steps(_Step* steps, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    if steps == NULL:
        return
    for i in range(n):
        if steps[i].kind == S_LOOP:
            free(steps[i].dead)
    free(steps)


cdef inline int _binary_step_kind(int code) noexcept:
    """The step kind of a two-argument op with a scalar opcode (S_OP: the generic kernel)."""
    if code == OP_ADD:
        return S_ADD
    if code == OP_SUB:
        return S_SUB
    if code == OP_MUL:
        return S_MUL
    if code == OP_DIV:
        return S_DIV
    if code == OP_POW:
        return S_POW
    return S_OP


cdef int _add_refs(Instr ins, list refs, bint in_body, Py_ssize_t owner) except -1:
    """Append (slot, advances, owner) for every slot instruction `ins` reads."""
    cdef Py_ssize_t j
    if ins.kind == I_OP:
        for j in range(len(ins.ins)):
            refs.append((<Py_ssize_t>ins.ins[j],
                         in_body and ins.ins_shift is not None and bool(ins.ins_shift[j]),
                         owner))
    elif ins.kind == I_ASSIGN:
        refs.append((ins.a0, in_body and bool(ins.sh & SH_A0), owner))
    return 0


cdef int _mark_dead_loop_steps(tuple code, _Step* steps, Py_ssize_t n, tuple outs) except -1:
    """Dead code in the one loop of a leaf: the body's float ops whose results no instruction
    of the leaf, no later iteration and no output reads (the loss a training step computes
    but only differentiates). A leaf is final (no guard, so no later branch reads its slots).
    The replay skips such a step only when it would run on C doubles (no side effect); any
    other operands run it as usual. Leaves with more loops are left alone."""
    cdef Py_ssize_t i, k, loop_at = -1, count, stride, out, r, d
    cdef Instr ins, loop = None
    cdef Node body
    cdef list refs = []
    cdef bint changed, live
    cdef unsigned char* dead
    for i in range(n):
        ins = <Instr>code[i]
        if ins.kind == I_LOOP:
            if loop is not None:
                return 0
            loop = ins
            loop_at = i
        else:
            _add_refs(ins, refs, False, -1)
    if loop is None or loop.count < 1 or loop.stride < 1:
        return 0
    for r in outs:
        refs.append((r, False, -1))
    body = <Node>loop.body
    count = loop.count
    stride = loop.stride
    for k in range(len(body._code)):
        _add_refs(<Instr>body._code[k], refs, True, k)
    if len(refs) * body.n_steps > 1000000:    # bound the packing time of huge programs
        return 0
    dead = <unsigned char*>calloc(body.n_steps + 1, 1)
    if dead == NULL:
        raise MemoryError("not enough memory to pack the program")
    steps[loop_at].dead = dead
    changed = True
    while changed:      # a step read only by dead steps is dead too
        changed = False
        for k in range(body.n_steps):
            if dead[k] or body.steps[k].kind > S_POW or not (body.steps[k].sh & SH_OUT):
                continue
            out = body.steps[k].out
            live = False
            for ref in refs:
                r, advances, owner = ref
                if owner >= 0 and dead[owner]:
                    continue
                d = r - out
                if advances:
                    # iteration j reads r + j*stride: some iteration's output when stride | d
                    live = d % stride == 0
                else:
                    live = d >= 0 and d % stride == 0 and d // stride < count
                if live:
                    break
            if not live:
                dead[k] = 1
                changed = True
    return 0


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
        _free_steps(self.steps, self.n_steps)

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
                        if nargs == 2:
                            st.kind = _binary_step_kind(st.code)
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
                st.m0 = -1 if st.sh & SH_A0 else 0
                st.m1 = -1 if st.sh & SH_A1 else 0
                st.mo = -1 if st.sh & SH_OUT else 0
            if guard is not None:
                if body or guard.kind != I_GUARD or not isinstance(guard.expected, (bool, int)):
                    raise ValueError(f"dualad.function: malformed guard {guard!r}")
                _need_of(guard.a0, &need)
            outs = tuple([<Py_ssize_t>o for o in outs])
            for s in outs:
                if s != -1:
                    _need_of(s, &need)
            if not body and guard is None:
                _mark_dead_loop_steps(code, steps, n, outs)
        except BaseException:
            _free_steps(steps, n)
            raise
        if self.n_steps >= 0:   # packed by another thread meanwhile: theirs stands
            _free_steps(steps, n)
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
    cdef bint has_obj           # some slot was given a Tensor since the last clear()

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
        if self.has_obj:    # a replay of float scalars only has no references to drop
            for i in range(self.n + 1):
                if self.dk[i] == 0:
                    Py_DECREF(<object>self.ov[i])
            self.has_obj = False
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
        return new_scalar(v.dv[s], K_F32 if k == 1 else K_F64)
    if k < 0:
        raise RuntimeError(f"dualad.function: slot {s} read before it was written (a bug in "
                           "the trace)")
    return <Tensor>v.ov[s]


cdef inline void _slot_put(_Slots v, Py_ssize_t s, Tensor t) noexcept:
    if v.dk[s] == 0:
        Py_DECREF(<object>v.ov[s])
    if t._is_scalar:
        v.dv[s] = t._d
        v.dk[s] = 1 if t._kind == K_F32 else 2
    else:
        Py_INCREF(t)
        v.ov[s] = <PyObject*>t
        v.dk[s] = 0
        v.has_obj = True


cdef inline void _slot_copy(_Slots v, Py_ssize_t dst, Py_ssize_t src) noexcept:
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


cdef inline double _pow_value(double x, double y, signed char k) noexcept nogil:
    """pow(x, y) as the scalar kernel gives it, without the libm call for the exponents of
    polynomials: pow(x, 1) is x, and a float32 x squares exactly in a double (48 significant
    bits), so x * x is the value pow returns for it (its error is under one ulp)."""
    if y == 2.0 and k == 1:
        return x * x
    if y == 1.0 and x == x:
        return x
    return pow(x, y)


cdef int _exec(Node node, _Slots v, Py_ssize_t off, _Staging stg,
               const unsigned char* dead) except -1:
    """Run a packed node's straight-line instructions (the caller has made v hold node.need
    slots, a loop's `need` covering its body's last iteration). In a loop body, slot references
    flagged as advancing are offset by `off` (iteration × stride); elsewhere off is 0.

    Variable assignments are staged, not applied (see _Staging), and later reads in the same
    replay see them. replay() commits them only once the whole path has been found."""
    cdef Py_ssize_t i, j, a0, a1, out, cur
    cdef _Step* st
    cdef signed char k0
    cdef int kind
    cdef Instr ins
    cdef Variable var
    cdef Tensor t
    cdef double cd, x, y
    cdef signed char ck
    # the buffers are only reallocated by replay() between nodes (v.grow), never while a node
    # runs: a nested replay in an op takes a buffer of its own
    cdef double* dv = v.dv
    cdef signed char* dk = v.dk
    cdef _Step* steps = node.steps     # frozen once packed: a local the stores cannot alias
    for i in range(node.n_steps):
        st = &steps[i]
        a0 = st.a0 + (off & st.m0)
        a1 = st.a1 + (off & st.m1)
        out = st.out + (off & st.mo)
        kind = st.kind
        if kind <= S_POW:
            # two float scalars of one kind: the op on C doubles, rounded like the eager op
            k0 = dk[a0]
            if k0 > 0 and dk[a1] == k0:
                if dead != NULL and dead[i]:
                    dk[out] = k0    # the kind only: the dead steps reading it skip too
                    continue
                x = dv[a0]
                y = dv[a1]
                if kind == S_ADD:
                    x = x + y
                elif kind == S_SUB:
                    x = x - y
                elif kind == S_MUL:
                    x = x * y
                elif kind == S_DIV:
                    x = x / y
                else:
                    x = _pow_value(x, y, k0)
                dv[out] = <double>(<float>x) if k0 == 1 else x
                dk[out] = k0
                continue
            _run_step(node, st, v, off, out)
        elif kind == S_OP:
            if st.code != OP_NONE:
                k0 = dk[a0]
                if k0 > 0 and (st.nargs == 1 or dk[a1] == k0):
                    dv[out] = _round(_scalar_value(st.code, dv[a0],
                                                   dv[a1] if st.nargs == 2 else 0.0), k0 == 1)
                    dk[out] = k0
                    continue
            _run_step(node, st, v, off, out)
        elif kind == S_CONST:
            if st.ck > 0:
                dv[out] = st.c
                dk[out] = st.ck
            else:
                _slot_put(v, out, (<Instr>node._code[st.index]).value)
        elif kind == S_READ:
            if st.var != NULL:
                var = <Variable>st.var
            else:
                var = <Variable>stg.variables[st.vindex]
            cur = _staged_slot(stg, var)
            if cur >= 0:
                _slot_copy(v, out, cur)
            elif var._is_scalar:
                dv[out] = var._d
                dk[out] = 1 if var._kind == K_F32 else 2
            else:
                _slot_put(v, out, plain_copy(var))
        elif kind == S_ASSIGN:
            if st.var != NULL:
                var = <Variable>st.var
            else:
                var = <Variable>stg.variables[st.vindex]
            cur = _staged_slot(stg, var)
            if st.code != ASSIGN_SET:
                # the current value: staged earlier in this replay, or the Variable's own
                if cur >= 0:
                    ck = dk[cur]
                    cd = dv[cur]
                elif var._is_scalar:
                    ck = 1 if var._kind == K_F32 else 2
                    cd = var._d
                else:
                    ck = 0
                if ck > 0 and dk[a0] == ck:
                    dv[out] = _round(cd + dv[a0] if st.code == ASSIGN_ADD else cd - dv[a0],
                                     ck == 1)
                    dk[out] = ck
                else:
                    t = raw_arith(_slot_get(v, cur) if cur >= 0 else var, _slot_get(v, a0),
                                   1 if st.code == ASSIGN_ADD else -1)
                    _slot_put(v, out, t)
                a0 = out
            _stage(stg, var, a0)
        else:  # S_LOOP
            ins = <Instr>node._code[st.index]
            for j in range(ins.count):
                _exec(<Node>ins.body, v, j * ins.stride, stg, st.dead)
    return 0


cdef int _run_step(Node node, _Step* st, _Slots v, Py_ssize_t off, Py_ssize_t out) except -1:
    """An op step through run_op (tensors, mixed kinds, ops without a scalar kernel)."""
    cdef Instr ins = <Instr>node._code[st.index]
    if ins.ins_shift is None:
        args = tuple([_slot_get(v, s) for s in ins.ins])
    else:
        args = tuple([_slot_get(v, s + off if f else s)
                      for s, f in zip(ins.ins, ins.ins_shift)])
    _slot_put(v, out, run_op(ins.prim, args, ins.params))
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
            _exec(node, v, 0, stg, NULL)
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
