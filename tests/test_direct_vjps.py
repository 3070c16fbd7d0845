"""In a sweep nothing records, the cotangents of matmul, transpose and multiply come from direct
numpy calls, not from their rules' ops (issue 12, W2 n=4): the same impls on the same arrays,
so the same bits as the rules, which still run wherever anything sees the sweep (an outer
tape, an accumulator, a trace, check_numerics) or the rules were replaced. Also the core's
matmul impl, the sweep's small in-place sums and the seed of ones."""
import threading
import warnings

import numpy as np
import pytest

import dualad as dd
from dualad import _core, rules

DTYPES = [np.float64, np.float32]


def values(seed, *shapes, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s).astype(dtype) for s in shapes]


def gradients(build, vals, recorded=False):
    """Gradients of build(*tensors) for each tensor; with `recorded`, an outer tape records
    the sweep, so the rules run as ops."""
    tensors = [dd.constant(v) for v in vals]

    def sweep():
        with dd.GradientTape() as tape:
            tape.watch(tensors)
            y = build(*tensors)
        return tape.gradient(y, tensors)

    if recorded:
        with dd.GradientTape(persistent=True):
            result = sweep()
    else:
        result = sweep()
    return [np.asarray(g) for g in result]


def assert_same_bits(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert a.tobytes() == b.tobytes()


def quadratic(x):
    return 2 * dd.matmul(dd.transpose(x), x)


def weighted_product(a, b, w):
    # multiply's cotangents broadcast back to w's (1, 5); matmul of two matrices
    return dd.reduce_sum(dd.matmul(a, b) * w)


def batched(a, b):
    # a stack times a matrix: b's cotangent is summed over the stack
    return dd.reduce_sum(dd.matmul(a, b) * 0.5)


def permuted(x):
    return dd.reduce_sum(dd.transpose(x, perm=(2, 0, 1)) * dd.transpose(x, perm=(2, 0, 1)))


def negative_perm(x):
    # the primitive called directly with a negative axis in its permutation
    return dd.reduce_sum(rules.transpose(x, perm=(-1, 0, 1)) * 3.0)


def scalar_times(s, x):
    # a watched scalar times an array: the scalar's cotangent is an array summed back
    return dd.reduce_sum(s * x) + dd.reduce_sum(x * s)


def reused(x):
    # x reaches its slot by four paths: sums of several cotangents in the sweep's buffer
    return dd.reduce_sum(dd.matmul(x, x) + dd.matmul(dd.transpose(x), x) * x)


def tanh_layer(x, w, b):
    # add's cotangent summed over the batch axis for the bias; tanh's VJP fused
    return dd.reduce_sum(dd.tanh(dd.matmul(x, w) + b) * 0.75)


def stacked_bias(x, b2, b1):
    # biases of rank 2 and 1 added to a stack (two and one leading axes summed); b2 also
    # added first, so add's cotangent of an input of its own shape is g itself
    return dd.reduce_sum(dd.tanh(b2 + x + b1) * x)


def stretched_bias(x, b):
    # b's (1, 5) stretched by broadcasting, the operands' order swapped: unbroadcast runs
    return dd.reduce_sum(dd.tanh(b + x) * 2.0)


def transposed_cotangent(x, w):
    # tanh's cotangent a transposed view: the rule runs on it
    return dd.reduce_sum(dd.transpose(dd.tanh(x)) * w)


def sums(x, w):
    # reduce_sum's cotangent reshaped and broadcast back: one axis, two, kept, all, none
    y = dd.reduce_sum(x * w, axis=1) * 2.0
    y = dd.reduce_sum(y, axis=(0, 1), keepdims=True) + dd.reduce_sum(x, axis=-1, keepdims=True)
    y = y * dd.reduce_mean(x * x) + dd.reduce_sum(rules.reduce_sum(x, axis=(), keepdims=False))
    return dd.reduce_sum(y)


def cross_entropy(z, onehot):
    # W7's loss: log_softmax's cotangent by its rule's impls, along each axis
    return (-dd.reduce_mean(dd.reduce_sum(onehot * dd.nn.log_softmax(z), axis=-1))
            + dd.reduce_sum(dd.nn.log_softmax(z, axis=0) * onehot)
            + dd.reduce_sum(rules.log_softmax(z, axis=1) * 0.5))


CASES = [(quadratic, [(4, 1)]), (quadratic, [(5, 3)]),
         (sums, [(2, 3, 4), (3, 4)]), (cross_entropy, [(8, 5), (8, 5)]),
         (cross_entropy, [(2, 8, 5), (8, 5)]),
         (tanh_layer, [(6, 4), (4, 3), (3,)]), (tanh_layer, [(300, 4), (4, 300), (300,)]),
         (stacked_bias, [(2, 3, 4), (3, 4), (4,)]), (stretched_bias, [(3, 5), (1, 5)]),
         (transposed_cotangent, [(3, 4), (4, 3)]),
         (weighted_product, [(3, 4), (4, 5), (1, 5)]),
         (batched, [(2, 3, 4), (4, 5)]), (batched, [(2, 3, 4), (2, 4, 1)]),
         (permuted, [(2, 3, 4)]), (negative_perm, [(2, 3, 4)]),
         (scalar_times, [(), (3, 2)]), (reused, [(3, 3)])]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("build, shapes", CASES,
                         ids=[f"{c[0].__name__}-{c[1]}" for c in CASES])
def test_direct_vjps_give_the_bits_of_the_rules(build, shapes, dtype):
    vals = values(len(shapes), *shapes, dtype=dtype)
    before = _core._direct_vjps()
    direct = gradients(build, vals)
    assert _core._direct_vjps() > before      # the case this test is about happened
    middle = _core._direct_vjps()
    by_rules = gradients(build, vals, recorded=True)
    assert _core._direct_vjps() == middle     # a recorded sweep runs the rules
    assert_same_bits(direct, by_rules)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_fused_tanh_vjp_keeps_the_rules_nans(dtype):
    # NaN cotangents meeting NaN outputs (distinct payloads): the rule's bits, whose NaN
    # operand order the fused pass does not fix; a NaN from inf * 0 and infinities besides
    bits = np.uint32 if dtype == np.float32 else np.uint64
    quiet = bits(0x7FC00000 if dtype == np.float32 else 0x7FF8000000000000)
    x = values(13, (4, 5), dtype=dtype)[0]
    w = values(14, (4, 5), dtype=dtype)[0]
    x.view(bits)[0, :2] = [quiet | 3, quiet | 5]
    w.view(bits)[0, 1:3] = [quiet | 7, quiet | bits(9) | (bits(1) << bits(x.itemsize * 8 - 1))]
    x[1, 0], w[1, 0] = 40.0, np.inf      # tanh(40) = 1: inf * 0
    w[2, 0] = -np.inf

    def build(x, w):
        return dd.reduce_sum(dd.tanh(x) * w)

    assert_same_bits(gradients(build, [x, w]), gradients(build, [x, w], recorded=True))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_fused_tanh_vjp_matches_numpy(dtype):
    x, g = values(15, (1000,), (1000,), dtype=dtype)
    x[:4] = [0.0, -0.0, 20.0, -20.0]
    got = _core._tanh_vjp_fused_for_tests(g, np.tanh(x))
    y = np.tanh(x)
    assert got.dtype == dtype and got.tobytes() == (g * (1 - np.square(y))).tobytes()
    # anything but two aligned C-ordered float arrays of one dtype and shape: not fused
    for a, b in [(g, y.astype(np.float16)), (g[::2], y[::2]), (g[:10], y[:11]),
                 (g.astype(int), y.astype(int))]:
        assert _core._tanh_vjp_fused_for_tests(a, b) is None


def test_quadratic_gradient_is_four_x():
    x = values(1, (4, 1))[0]
    (g,) = gradients(quadratic, [x])
    np.testing.assert_array_equal(g, 4 * x)


def test_second_order_takes_the_rules():
    # a persistent tape recording the sweep: the gradient of the gradient still exists
    x = dd.constant(values(2, (3, 1))[0])
    with dd.GradientTape() as outer:
        outer.watch(x)
        with dd.GradientTape() as inner:
            inner.watch(x)
            y = dd.reduce_sum(dd.matmul(dd.transpose(x), x) * 1.5)
        g = inner.gradient(y, x)      # 3x
        z = dd.reduce_sum(g * g)      # 9 x·x
    h = outer.gradient(z, x)
    np.testing.assert_allclose(np.asarray(h), 18 * np.asarray(x), rtol=1e-14)


def test_replaced_rules_run():
    original = rules.matmul.vjps
    calls = []

    def doubled(g, ans, args, p):
        calls.append(1)
        return 2 * original[0](g, ans, args, p)

    rules.defvjp(rules.matmul, doubled, original[1])
    try:
        a, b = (dd.constant(v) for v in values(3, (2, 3), (3, 2)))
        with dd.GradientTape() as tape:
            tape.watch(a)
            y = dd.reduce_sum(dd.matmul(a, b))
        g = tape.gradient(y, a)
    finally:
        rules.matmul.vjps = original    # the declared tuple itself: the core compares identity
    assert calls == [1]
    np.testing.assert_allclose(np.asarray(g), 2 * np.ones((2, 2)) @ np.asarray(b).T)


def test_check_numerics_takes_the_rules():
    vals = values(4, (4, 1))
    expected = gradients(quadratic, vals)
    dd.debugging.enable_check_numerics()
    try:
        before = _core._direct_vjps()
        got = gradients(quadratic, vals)
        assert _core._direct_vjps() == before
    finally:
        dd.debugging.disable_check_numerics()
    assert_same_bits(got, expected)


def test_check_numerics_names_the_rule_op():
    x = dd.constant(np.array([[1e200], [1e200]]))
    dd.debugging.enable_check_numerics()
    try:
        with dd.GradientTape() as tape:
            tape.watch(x)
            y = dd.matmul(dd.transpose(x), x * 1e-300)
        with pytest.raises(FloatingPointError):
            tape.gradient(y * 1e300, x)
    finally:
        dd.debugging.disable_check_numerics()


def test_forward_accumulator_over_the_sweep():
    # an accumulator outside the tape sees the sweep: forward over reverse, H·v = 2 * 2 * v
    x, v = (dd.constant(t) for t in values(5, (4, 1), (4, 1)))
    with dd.ForwardAccumulator(x, v) as acc:
        with dd.GradientTape() as tape:
            tape.watch(x)
            y = quadratic(x)
        g = tape.gradient(y, x)
    np.testing.assert_allclose(np.asarray(acc.jvp(g)), 4 * np.asarray(v), rtol=1e-15)


def test_accumulator_inside_the_tape_is_hidden():
    x, v = (dd.constant(t) for t in values(6, (4, 1), (4, 1)))
    with dd.GradientTape() as tape:
        tape.watch(x)
        with dd.ForwardAccumulator(x, v) as acc:
            y = quadratic(x)
            before = _core._direct_vjps()
            g = tape.gradient(y, x)
            assert _core._direct_vjps() > before
    np.testing.assert_array_equal(np.asarray(g), 4 * np.asarray(x))
    np.testing.assert_allclose(np.asarray(acc.jvp(y)), 4 * np.asarray(x).T @ np.asarray(v))


def test_inside_a_trace():
    x = values(7, (4, 1))[0]

    @dd.function
    def grad(t):
        with dd.GradientTape() as tape:
            tape.watch(t)
            y = quadratic(t)
        return tape.gradient(y, t)

    expected = gradients(quadratic, [x])[0]
    for _ in range(3):
        assert np.asarray(grad(dd.constant(x))).tobytes() == expected.tobytes()


def test_other_threads():
    vals = values(8, (6, 2))
    expected = gradients(quadratic, vals)
    results, failures = [], []

    def work():
        try:
            for _ in range(50):
                results.append(gradients(quadratic, vals))
        except Exception as e:  # reported below
            failures.append(e)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    for got in results:
        assert_same_bits(got, expected)


def test_variable_operands():
    w = dd.Variable(values(9, (3, 2))[0])
    x = dd.constant(values(10, (2, 1))[0])
    with dd.GradientTape() as tape:
        y = dd.reduce_sum(dd.matmul(w, x) * 2.0)
    g = tape.gradient(y, w)
    np.testing.assert_allclose(np.asarray(g), 2 * np.ones((3, 1)) @ np.asarray(x).T, rtol=1e-15)


# ---- the core's matmul impl ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("sa, sb, reference", [
    ((3, 4), (4, 5), lambda a, b: a.dot(b)),                 # small: ndarray.dot
    ((1, 4), (4, 1), lambda a, b: a.dot(b)),
    ((64, 64), (64, 64), lambda a, b: a.dot(b)),             # 4096 entries: still dot
    ((65, 64), (64, 64), np.matmul),                          # beyond: numpy's matmul
    ((5000, 1), (1, 3), np.multiply),                         # an outer product
    ((2, 3, 4), (4, 5), np.matmul), ((2, 3, 1), (1, 5), np.multiply),
    ((0, 3), (3, 7), lambda a, b: a.dot(b)), ((3, 0), (0, 7), lambda a, b: a.dot(b))])
def test_matmul_impl_calls_what_it_says(sa, sb, reference, dtype):
    a, b = values(11, sa, sb, dtype=dtype)
    got, expected = _core._matmul_impl(a, b), reference(a, b)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert got.tobytes() == expected.tobytes()


def test_matmul_impl_errors():
    with pytest.raises(ValueError, match="inner dimensions differ: 3 .* vs 2"):
        _core._matmul_impl(np.ones((2, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="rank >= 2"):
        _core._matmul_impl(np.ones(3), np.ones((3, 2)))
    with pytest.raises(ValueError, match="matmul: inner dimensions differ"):
        rules.matmul(dd.constant(np.ones((2, 3))), dd.constant(np.ones((2, 2))))


def test_matmul_overflow_is_silent():
    a = np.full((2, 2), 1e308)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = dd.matmul(dd.constant(a), dd.constant(a))
    assert np.isinf(np.asarray(out)).all()


# ---- sums in the sweep's buffer, the seed -------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("n", [1, 7, 1024, 1025])
def test_small_sums_give_numpys_bits(n, dtype):
    def build(x):
        return dd.reduce_sum(x * 1.25) + dd.reduce_sum(x * x) + dd.reduce_sum(dd.sin(x))

    vals = values(12, (n,), dtype=dtype)
    before = _core._sums_in_place()
    got = gradients(build, vals)
    assert _core._sums_in_place() > before
    assert_same_bits(got, gradients(build, vals, recorded=True))


@pytest.mark.parametrize("dtype", DTYPES + [np.float16], ids=["float64", "float32", "float16"])
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (0, 4), (5,)])
def test_seed_is_ones(shape, dtype):
    t = dd.constant(np.zeros(shape, dtype=dtype))
    for value in (1.0, 0.1, -0.0, 0.5, 3e38 if dtype == np.float32 else 1e300):
        with warnings.catch_warnings():     # (numpy's warning where a value overflows)
            warnings.simplefilter("ignore")
            s = np.asarray(_core.filled_like(t, value))
            expected = np.empty(shape, dtype=dtype)
            expected.fill(value)
        assert s.dtype == expected.dtype and s.shape == shape
        assert s.tobytes() == expected.tobytes()
    with dd.GradientTape() as tape:
        tape.watch(t)
        y = t * 1.0
    g = np.asarray(tape.gradient(y, t))
    assert g.dtype == dtype and (g == 1).all()
