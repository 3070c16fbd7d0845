"""The sweep keeps the matmul cotangents of a vector dot product (a (1,1) cotangent times a
large vector) as lazy products s·b and writes the slot's gradient in one pass (issue 12, W2):
the same bits as the rules' products and sums, one n-sized buffer per gradient, and every
rule, custom gradient and caller still sees plain arrays."""
import tracemalloc

import numpy as np
import pytest

import dualad as dd

N = 20_000      # above matmul's small-product size (4096): the outer products are elementwise


def column(seed, n=N, dtype=np.float64):
    return np.random.default_rng(seed).normal(size=(n, 1)).astype(dtype)


def gradients(build, values, recorded):
    """Gradients of build(*tensors) for each tensor; with `recorded`, an outer tape records
    the sweep (then nothing is kept lazily: the rules and adds run as ops)."""
    tensors = [dd.constant(v) for v in values]

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


def quadratic(x):
    return 2.0 * dd.matmul(dd.transpose(x), x)


def three_terms(u, v):
    # u's slot gets s·v (matmul), s·v again through a transpose, and s·u twice: sums of lazy
    # products, of a lazy product and a materialised sum, of more than two terms
    return (1.3 * dd.matmul(dd.transpose(u), v) + 0.7 * dd.matmul(dd.transpose(v), u)
            + 0.1 * dd.matmul(dd.transpose(u), u))


def mixed(u, v):
    # u's slot also gets an elementwise cotangent (materialised) before and after the products
    return dd.reduce_sum(u * 1.7) + 3.3 * dd.matmul(dd.transpose(u), v) + dd.reduce_sum(dd.sin(u))


def rows(r, c):
    # row vectors: the products are (1, n) and the transpose runs the other way
    return 3.3 * dd.matmul(r, dd.transpose(r)) + 0.9 * dd.matmul(r, c)


CASES = [(quadratic, lambda: [column(1)]),
         (three_terms, lambda: [column(2), column(3) * 3.1]),
         (mixed, lambda: [column(4), column(5)]),
         (rows, lambda: [column(6).T.copy(), column(7)])]


@pytest.mark.parametrize("build, values", CASES, ids=[c[0].__name__ for c in CASES])
def test_lazy_products_give_the_bits_of_the_rules_ops(build, values):
    vals = values()
    before = dd._core._scaled_cotangents()
    lazy = gradients(build, vals, recorded=False)
    assert dd._core._scaled_cotangents() > before      # the case this test is about happened
    eager = gradients(build, vals, recorded=True)
    for a, b in zip(lazy, eager):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert a.tobytes() == b.tobytes()


def test_quadratic_gradient_is_each_product_rounded_then_summed():
    x = column(8)
    s = np.float64(2.0) * np.float64(1.0)
    expected = (x * s) + (x * s)
    (g,) = gradients(quadratic, [x], recorded=False)
    assert g.tobytes() == expected.tobytes()
    # a scale that rounds: s1·x + s2·x, not (s1 + s2)·x
    (g,) = gradients(lambda x: 0.1 * dd.matmul(dd.transpose(x), x), [x], recorded=False)
    s = np.float64(0.1)
    assert g.tobytes() == ((x * s) + (x * s)).tobytes()


def test_quadratic_gradient_allocates_one_n_sized_buffer():
    # before: two products and their sum (peak 2 n-sized buffers); now the one result
    x = dd.constant(column(9, n=200_000))
    nbytes = 200_000 * 8

    def run():
        with dd.GradientTape() as tape:
            tape.watch(x)
            y = quadratic(x)
        return tape.gradient(y, x)

    run()
    tracemalloc.start()
    try:
        g = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.asarray(g).nbytes == nbytes
    assert peak < 1.5 * nbytes


@pytest.mark.skipif(not dd._core.has_openmp(), reason="no OpenMP in this build")
def test_lazy_products_on_two_threads_give_the_same_bits():
    vals = [column(10, n=300_000), column(11, n=300_000)]
    one = gradients(three_terms, vals, recorded=False)
    previous = dd.set_num_threads(2)
    try:
        two = gradients(three_terms, vals, recorded=False)
    finally:
        dd.set_num_threads(previous)
    for a, b in zip(one, two):
        assert a.tobytes() == b.tobytes()


def test_a_custom_gradient_sees_a_materialised_cotangent():
    seen = []

    @dd.custom_gradient
    def double(x):
        def grad(dy):
            seen.append((type(dy), type(np.asarray(dy)), dy.shape))
            return dy * 2.0
        return x * 2.0, grad

    x = dd.constant(column(12))
    with dd.GradientTape() as tape:
        tape.watch(x)
        d = double(x)
        y = dd.matmul(dd.transpose(d), d)
    g = np.asarray(tape.gradient(y, x))
    assert seen == [(dd.Tensor, np.ndarray, (N, 1))]
    xv = np.asarray(x)
    d_val = xv * 2.0
    assert g.tobytes() == (((d_val * 1.0) + (d_val * 1.0)) * 2.0).tobytes()


def test_a_source_inside_the_chain_gets_a_materialised_gradient():
    # the transpose's output is itself a source: its slot is kept, not passed on lazily
    x = dd.constant(column(13))
    with dd.GradientTape() as tape:
        tape.watch(x)
        xt = dd.transpose(x)
        y = 0.3 * dd.matmul(xt, x)
    g_xt, g_x = tape.gradient(y, [xt, x])
    xv = np.asarray(x)
    s = np.float64(0.3)
    assert np.asarray(g_xt).tobytes() == (xv.T * s).tobytes()
    assert np.asarray(g_x).tobytes() == ((xv * s) + (xv * s)).tobytes()


def test_replaced_matmul_rules_run():
    p = dd.rules.PRIMITIVES["matmul"]
    declared = p.vjps
    calls = []

    def counting(rule):
        def run(g, ans, args, params):
            calls.append(1)
            return rule(g, ans, args, params)
        return run

    p.vjps = tuple(counting(r) for r in declared)
    try:
        (g,) = gradients(quadratic, [column(14)], recorded=False)
    finally:
        p.vjps = declared
    assert len(calls) == 2
    x = column(14)
    assert g.tobytes() == ((x * 2.0) + (x * 2.0)).tobytes()


@pytest.mark.parametrize("dtype, n", [(np.float32, N), (np.float64, 100)])
def test_float32_and_small_vectors_take_the_rules(dtype, n):
    before = dd._core._scaled_cotangents()
    x = column(15, n=n, dtype=dtype)
    (g,) = gradients(quadratic, [x], recorded=False)
    assert dd._core._scaled_cotangents() == before
    (expected,) = gradients(quadratic, [x], recorded=True)
    assert g.dtype == dtype and g.tobytes() == expected.tobytes()


def test_a_variable_assigned_mid_sweep_keeps_the_recorded_value():
    # a grad_fn run after matmul's cotangents were kept lazily, before they are written,
    # assigns the variable: the gradient is the one of the value the forward pass read
    x0 = column(16)
    v = dd.Variable(x0)
    w = dd.constant(1.0, dtype=dd.float64)

    @dd.custom_gradient
    def assigning(t):
        def grad(dy):
            v.assign(np.full((N, 1), 7.0))
            return dy
        return t * 1.0, grad

    before = dd._core._scaled_cotangents()
    with dd.GradientTape() as tape:
        tape.watch(w)
        y = dd.reduce_sum(assigning(w)) + 2.0 * dd.matmul(dd.transpose(v), v)
    g_w, g_v = tape.gradient(y, [w, v])
    assert dd._core._scaled_cotangents() > before
    assert float(np.asarray(v)[0, 0]) == 7.0       # the callback ran
    assert np.asarray(g_v).tobytes() == ((x0 * 2.0) + (x0 * 2.0)).tobytes()
    assert float(g_w) == 1.0
