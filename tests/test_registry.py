"""The registry of primitives (dualad/rules.py declarations) and what is derived from it:
every differentiable primitive has a derivative test case, every scalar opcode's C kernel
gives the bits of its declared rules, a missing VJP rule is an error (not a silent None), and
check_numerics names the primitive whose scalar gradient overflowed."""
import itertools

import numpy as np
import pytest

import dualad as dd
from dualad import _core, extend, rules

from test_op_derivatives import CASES


# ---- (a) every differentiable primitive has a derivative test case -------------------------

def _has_case(name):
    # a case is named after its primitive, or is a variant of it ("pow_tensor_exponent")
    return any(case == name or case.startswith(name + "_") for case in CASES)


def test_every_differentiable_primitive_has_a_derivative_case():
    missing = sorted(name for name, decl in rules.DECLARATIONS.items()
                     if decl.primitive.differentiable and not _has_case(name))
    assert not missing, (f"primitives without a case in tests/test_op_derivatives.py CASES: "
                         f"{missing}")


def test_the_registry_check_sees_a_primitive_without_a_case():
    # the check above must be able to fail: a name no case covers is reported
    assert not _has_case("test_registry_uncovered_primitive")
    assert _has_case("pow") and _has_case("sin")


# ---- derived tables ----------------------------------------------------------------------

def test_every_scalar_opcode_is_declared_by_exactly_one_primitive():
    owners = {}
    for decl in rules.DECLARATIONS.values():
        if decl.primitive.code:
            owners.setdefault(decl.primitive.code, []).append(decl.primitive.name)
    assert sorted(owners) == sorted(_core.SCALAR_OPCODES.values())
    assert all(len(names) == 1 for names in owners.values()), owners


def test_exports_and_ufuncs_come_from_the_declarations():
    for decl in rules.DECLARATIONS.values():
        if decl.export is None:
            continue
        assert getattr(dd, decl.export) is getattr(dd.ops, decl.export)
        for ufunc in decl.ufuncs:
            assert dd.ops.UFUNCS[ufunc] is getattr(dd.ops, decl.export)


def test_a_declaration_naming_an_unknown_or_mismatched_opcode_is_refused():
    with pytest.raises(ValueError, match="no scalar opcode 'OP_CUBE'"):
        rules.declare("test_registry.cube", lambda x: x ** 3, opcode="OP_CUBE")
    with pytest.raises(ValueError, match="takes 1 inputs.*OP_ADD takes 2"):
        rules.declare("test_registry.one_input_add", np.positive,
                      deriv=lambda x, ans: dd.ones_like(x), opcode="OP_ADD")
    with pytest.raises(ValueError, match="no scalar opcode"):
        dd.Primitive("test_registry.bad_code", np.negative, opcode="OP_NOPE")


def test_the_core_is_installed_once():
    with pytest.raises(RuntimeError, match="already installed"):
        _core.install(dict(rules.PRIMITIVES), dict(dd.ops.CORE_FUNCTIONS), {}, {},
                      rules.unbroadcast)


# ---- (b) the C scalar kernels give the bits of the declared rules -------------------------

# kinks (0, ties, the bounds of pow's and log's domains) and ordinary points, both signs
GRID = [-2.0, -1.0, -0.5, -0.0, 0.0, 0.25, 0.5, 1.0, 1.5, 3.0]
# kernels whose value is one correctly rounded operation, as numpy's is; the transcendental
# ones call libm on doubles (rounded to float32), numpy its own routines: within an ulp
EXACT_VALUE = {"OP_ADD", "OP_SUB", "OP_MUL", "OP_DIV", "OP_NEG", "OP_SQUARE", "OP_SQRT",
               "OP_RELU", "OP_ABS", "OP_MAXIMUM", "OP_MINIMUM"}


def _declared(opcode_name):
    code = _core.SCALAR_OPCODES[opcode_name]
    (decl,) = [d for d in rules.DECLARATIONS.values() if d.primitive.code == code]
    return decl


def _bits(t):
    v = np.asarray(t)
    return v.dtype, v.tobytes()


def _gradients(prim, values, dtype, outer):
    """prim's value and gradients at scalar `values`: a raw sweep (the C kernel), or with an
    outer tape recording (the sweep then runs the declared rules as ops)."""
    xs = [dd.constant(np.asarray(v, dtype)) for v in values]
    with dd.GradientTape() as tape:
        tape.watch(xs)
        y = prim(*xs)
    if not outer:
        return y, tape.gradient(y, xs)
    with dd.GradientTape():
        return y, tape.gradient(y, xs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opcode", sorted(_core.SCALAR_OPCODES))
def test_scalar_kernel_gradient_bits_equal_the_rules(opcode, dtype):
    decl = _declared(opcode)
    mismatches = []
    for values in itertools.product(GRID, repeat=decl.arity):
        y_raw, raw = _gradients(decl.primitive, values, dtype, outer=False)
        y_rule, ruled = _gradients(decl.primitive, values, dtype, outer=True)
        assert _bits(y_raw) == _bits(y_rule)
        for k, (a, b) in enumerate(zip(raw, ruled)):
            if _bits(a) != _bits(b):
                mismatches.append((values, k, np.asarray(a), np.asarray(b)))
    assert not mismatches, f"{decl.primitive.name} {dtype.__name__}: C vs rule {mismatches[:5]}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opcode", sorted(_core.SCALAR_OPCODES))
def test_scalar_kernel_values_equal_the_numpy_implementation(opcode, dtype):
    decl = _declared(opcode)
    for values in itertools.product(GRID, repeat=decl.arity):
        if opcode in ("OP_MAXIMUM", "OP_MINIMUM") and values[0] == values[1]:
            continue  # ties of zeros of either sign: the kernel keeps x, numpy's sign varies
        scalar = np.asarray(decl.primitive(*[dd.constant(np.asarray(v, dtype)) for v in values]))
        array = np.asarray(decl.primitive(*[dd.constant(np.asarray([v], dtype))
                                            for v in values]))[0]
        assert scalar.dtype == array.dtype == dtype
        if np.isnan(array):
            assert np.isnan(scalar), (values, scalar)
        elif opcode in EXACT_VALUE:
            assert scalar.tobytes() == array.tobytes(), (values, scalar, array)
        else:
            assert scalar == array or abs(scalar - array) <= np.spacing(np.abs(array)), \
                (values, scalar, array)


def test_the_kernel_check_tells_a_wrong_kernel_apart():
    # a primitive whose rule disagrees with the sin kernel's VJP (here: cos) gives other bits,
    # which the comparison above would report
    wrong = dd.Primitive("test_registry.sin_with_wrong_rule", np.sin, opcode="OP_SIN")
    wrong.vjps = (lambda g, ans, args, p: dd.multiply(g, dd.sin(args[0])),)
    _, raw = _gradients(wrong, [1.0], np.float64, outer=False)
    _, ruled = _gradients(wrong, [1.0], np.float64, outer=True)
    assert _bits(raw[0]) != _bits(ruled[0])


# ---- (c) a missing VJP rule is an error ---------------------------------------------------

def test_a_primitive_without_a_vjp_rule_raises_in_reverse_mode():
    no_rule = dd.Primitive("test_registry.no_rule", lambda x: x * 2.0)
    x = dd.constant(np.ones(3))
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = no_rule(x)
    with pytest.raises(NotImplementedError, match="'test_registry.no_rule' has no VJP rule "
                                                  "for its input 0"):
        tape.gradient(y, x)


def test_an_input_beyond_the_rules_given_raises_on_the_scalar_path_too():
    half_ruled = dd.Primitive("test_registry.half_ruled", np.add,
                              vjps=(lambda g, ans, args, p: g,))
    a, b = dd.constant(1.0), dd.constant(2.0)
    with dd.GradientTape() as tape:
        tape.watch([a, b])
        y = half_ruled(a, b)
    with pytest.raises(NotImplementedError, match="half_ruled.*input 1"):
        tape.gradient(y, [a, b])


def test_extend_primitive_without_vjp_raises_and_none_means_no_gradient():
    reverse_missing = extend.primitive("test_registry.forward_only", lambda x: x * 3.0,
                                       jvp=[lambda t, ans, args, p: dd.multiply(t, 3.0)])
    x = dd.constant(2.0)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = reverse_missing(x)
    with pytest.raises(NotImplementedError, match="forward_only"):
        tape.gradient(y, x)
    # documented: None in vjp=[...] is no gradient to that input, not an error
    first_only = extend.primitive("test_registry.first_only", lambda a, b: a * b,
                                  vjp=[lambda g, ans, args, p: dd.multiply(g, args[1]), None])
    a, b = dd.constant(2.0), dd.constant(5.0)
    with dd.GradientTape() as tape:
        tape.watch([a, b])
        y = first_only(a, b)
    ga, gb = tape.gradient(y, [a, b])
    assert float(ga) == 5.0 and gb is None


def test_no_gradient_marker_skips_the_input():
    # where's condition takes no gradient by design, even when it is watched
    cond = dd.constant(np.array([True, False]))
    x, y = dd.constant(np.array([1.0, 2.0])), dd.constant(np.array([3.0, 4.0]))
    with pytest.warns(dd.NonFloatWatchWarning, match="a bool tensor cannot have a gradient"):
        with dd.GradientTape() as tape:
            tape.watch([cond, x, y])
            out = dd.where(cond, x, y)
    g_cond, g_x, g_y = tape.gradient(out, [cond, x, y])
    assert g_cond is None
    np.testing.assert_array_equal(np.asarray(g_x), [1.0, 0.0])
    np.testing.assert_array_equal(np.asarray(g_y), [0.0, 1.0])


# ---- 4. check_numerics names the primitive on the scalar gradient path ---------------------

@pytest.fixture
def check_numerics():
    dd.debugging.enable_check_numerics()
    yield
    dd.debugging.disable_check_numerics()


# the value is finite, its derivative is not: sqrt at 0, log at the smallest subnormal
@pytest.mark.parametrize("op, at", [(dd.sqrt, 0.0), (dd.log, 5e-324)])
def test_check_numerics_names_the_primitive_of_a_scalar_gradient(op, at, check_numerics):
    x = dd.constant(np.float64(at))
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = op(x)
    with pytest.raises(FloatingPointError, match="the gradient of '.*' produced infinity") as info:
        tape.gradient(y, x)  # a raw sweep on a scalar: the C kernel computes the VJP
    message = str(info.value)
    assert f"the gradient of '{op.__name__}' produced infinity" in message
    assert "multiply" not in message


def test_check_numerics_names_the_rule_step_on_the_array_path(check_numerics):
    # the rule path runs sqrt's VJP as ops: the divide step is the one that overflows
    x = dd.constant(np.array([0.0]))
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.sqrt(x)
    with pytest.raises(FloatingPointError, match="op 'divide' \\(in the gradient of 'sqrt'\\)"):
        tape.gradient(y, x)
