# The C scalar kernels: dtype kinds, opcodes of the primitives whose value and partial
# derivatives the core computes on C doubles, and those computations. Inline, so that every
# module cimporting them runs them without a call.
from libc.math cimport sin, cos, tan, exp, log, log1p, tanh, sqrt, pow, fabs


cdef enum:
    K_F32 = 0
    K_F64 = 1
    K_OTHER = 2

# Scalar opcodes: primitives whose value and partial derivatives the core computes on C doubles.
cdef enum:
    OP_NONE = 0
    OP_ADD = 1
    OP_SUB = 2
    OP_MUL = 3
    OP_DIV = 4
    OP_NEG = 5
    OP_POW = 6
    OP_SQUARE = 7
    OP_SQRT = 8
    OP_EXP = 9
    OP_LOG = 10
    OP_LOG1P = 11
    OP_SIN = 12
    OP_COS = 13
    OP_TAN = 14
    OP_TANH = 15
    OP_SIGMOID = 16
    OP_RELU = 17
    OP_ABS = 18
    OP_MAXIMUM = 19
    OP_MINIMUM = 20


cdef inline double _round(double v, bint f32) noexcept nogil:
    # float32 values are kept as the nearest float32, as an array op would round them; the
    # transcendental kernels still differ from numpy's float32 loops by 1-3 ulp (README.md,
    # tests/test_float32_scalar_contract.py)
    return <double>(<float>v) if f32 else v


cdef inline double _scalar_value(int code, double a, double b) noexcept nogil:
    cdef double z
    if code == OP_ADD:
        return a + b
    if code == OP_SUB:
        return a - b
    if code == OP_MUL:
        return a * b
    if code == OP_DIV:
        return a / b
    if code == OP_NEG:
        return -a
    if code == OP_POW:
        return pow(a, b)
    if code == OP_SQUARE:
        return a * a
    if code == OP_SQRT:
        return sqrt(a)
    if code == OP_EXP:
        return exp(a)
    if code == OP_LOG:
        return log(a)
    if code == OP_LOG1P:
        return log1p(a)
    if code == OP_SIN:
        return sin(a)
    if code == OP_COS:
        return cos(a)
    if code == OP_TAN:
        return tan(a)
    if code == OP_TANH:
        return tanh(a)
    if code == OP_SIGMOID:
        if a >= 0:
            return 1.0 / (1.0 + exp(-a))
        z = exp(a)
        return z / (1.0 + z)
    if code == OP_RELU:
        return a if a > 0 else (a if a != a else 0.0)
    if code == OP_ABS:
        return fabs(a)
    if code == OP_MAXIMUM:
        if a != a or a >= b:
            return a
        return b
    if code == OP_MINIMUM:
        if a != a or a <= b:
            return a
        return b
    return 0.0


cdef inline void _scalar_vjp(int code, double g, double a, double b, double y, bint f32,
                      double* ga, double* gb, bint need_b=True) noexcept nogil:
    # The cotangents g·∂y/∂a and g·∂y/∂b (*gb left 0 when not need_b: pow's exponent without
    # a slot, whose log would be wasted work), computed with exactly the operations, order and
    # rounding of the VJP rules in rules.py (each step rounded to the dtype as an op would be),
    # so that the C path gives the same bits as the rules run as ops (what a traced function
    # replays, and what a tape recording the gradient computes). Kinks as in rules.py.
    gb[0] = 0.0
    if code == OP_ADD:
        ga[0] = g
        gb[0] = g
    elif code == OP_SUB:
        ga[0] = g
        gb[0] = -g
    elif code == OP_MUL:
        ga[0] = _round(g * b, f32)
        gb[0] = _round(g * a, f32)
    elif code == OP_DIV:
        ga[0] = _round(g / b, f32)
        gb[0] = -_round(_round(g * y, f32) / b, f32)
    elif code == OP_NEG:
        ga[0] = -g
    elif code == OP_POW:
        ga[0] = _round(g * _round(b * _round(pow(a, _round(b - 1.0, f32)), f32), f32), f32)
        if not need_b:
            pass
        elif a > 0:
            gb[0] = _round(g * _round(_round(log(a), f32) * y, f32), f32)
        else:
            gb[0] = _round(g * 0.0, f32)
    elif code == OP_SQUARE:
        ga[0] = _round(g * _round(a * 2.0, f32), f32)
    elif code == OP_SQRT:
        ga[0] = _round(g / _round(y * 2.0, f32), f32)
    elif code == OP_EXP:
        ga[0] = _round(g * y, f32)
    elif code == OP_LOG:
        ga[0] = _round(g / a, f32)
    elif code == OP_LOG1P:
        ga[0] = _round(g / _round(a + 1.0, f32), f32)
    elif code == OP_SIN:
        ga[0] = _round(g * _round(cos(a), f32), f32)
    elif code == OP_COS:
        ga[0] = -_round(g * _round(sin(a), f32), f32)
    elif code == OP_TAN:
        ga[0] = _round(g * _round(_round(y * y, f32) + 1.0, f32), f32)
    elif code == OP_TANH:
        ga[0] = _round(g * _round(1.0 - _round(y * y, f32), f32), f32)
    elif code == OP_SIGMOID:
        ga[0] = _round(g * _round(y * _round(1.0 - y, f32), f32), f32)
    elif code == OP_RELU:
        ga[0] = g if a > 0 else 0.0
    elif code == OP_ABS:
        ga[0] = _round(g * (1.0 if a > 0 else (-1.0 if a < 0 else (a if a != a else 0.0))), f32)
    elif code == OP_MAXIMUM:
        ga[0] = g if a >= b else 0.0
        gb[0] = 0.0 if a >= b else g
    elif code == OP_MINIMUM:
        ga[0] = g if a <= b else 0.0
        gb[0] = 0.0 if a <= b else g
    else:
        ga[0] = 0.0


cdef inline int _scalar_arity(int code) noexcept nogil:
    # how many inputs the kernel of `code` reads (as SCALAR_OPCODE_ARITY in _core.pyx says)
    if (code == OP_ADD or code == OP_SUB or code == OP_MUL or code == OP_DIV or code == OP_POW
            or code == OP_MAXIMUM or code == OP_MINIMUM):
        return 2
    return 1


cdef inline double _scalar_jvp(int code, bint has_ta, double ta, bint has_tb, double tb,
                               double a, double b, double y, bint f32) noexcept nogil:
    # The output tangent from the input tangents ta, tb (has_t*: whether that input has one; at
    # least one does, and tb only for a two-input kernel), with exactly the operations, order
    # and rounding of the JVP rules in rules.py, so that the bits are the rule path's. Those
    # rules are the VJP rules' linear maps applied to each tangent present, summed in input
    # order (defjvp): each term is _scalar_vjp's, and an input without a tangent adds no term
    # (t + 0 would turn a -0.0 tangent into +0.0). maximum/minimum select one input's tangent
    # (zero standing in for a missing one) instead of summing terms.
    cdef double da = 0.0, db = 0.0, unused
    cdef bint first
    if code == OP_MAXIMUM or code == OP_MINIMUM:
        first = a >= b if code == OP_MAXIMUM else a <= b
        if first:
            return ta if has_ta else 0.0
        return tb if has_tb else 0.0
    if has_ta and has_tb:
        # the two terms of the commonest ops written out: no kernel call per tangent
        if code == OP_ADD:
            return _round(ta + tb, f32)
        if code == OP_SUB:
            return _round(ta + (-tb), f32)
        if code == OP_MUL:
            return _round(_round(ta * b, f32) + _round(tb * a, f32), f32)
    if has_ta:
        _scalar_vjp(code, ta, a, b, y, f32, &da, &unused, False)
        if not has_tb:
            return da
    _scalar_vjp(code, tb, a, b, y, f32, &unused, &db)
    if not has_ta:
        return db
    return _round(da + db, f32)
