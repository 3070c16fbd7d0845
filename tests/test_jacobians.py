"""GradientTape.jacobian / batch_jacobian and jacrev: layouts against finite differences, the
batched backward sweep (one sweep carries many rows' cotangents) against one sweep per row,
its fallback for primitives that cannot take a batch, higher order, and batch_jacobian's
shape checks and degenerate shapes (TensorFlow's rules: rank >= 2, equal batch sizes)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualad as dd
from helpers import EXACT, FD, FEW, SETTINGS, fd_jacobian, npy, t32, t64
from test_op_derivatives import CASES, NAMES


def _rows_one_at_a_time(fn, xs):
    """The reverse Jacobians of fn, built from one tape.gradient per output element (a
    one-hot output_gradients each): the reference the batched sweep must reproduce."""
    ts = [t64(x) for x in xs]
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(ts)
        y = fn(*ts)
    rows = []
    for idx in np.ndindex(y.shape):
        seed = np.zeros(y.shape)
        seed[idx] = 1
        rows.append(tape.gradient(y, ts, output_gradients=t64(seed),
                                  unconnected_gradients="zero"))
    return [np.stack([npy(r[i]) for r in rows]).reshape(y.shape + np.shape(x)) if rows
            else np.zeros(y.shape + np.shape(x)) for i, x in enumerate(xs)]


def _sweeps_counted(monkeypatch):
    """Count the backward sweeps the tape runs."""
    calls = []
    plain = dd.GradientTape._sweep

    def counting(self, *args):
        calls.append(args[3] if len(args) > 3 else None)
        return plain(self, *args)

    monkeypatch.setattr(dd.GradientTape, "_sweep", counting)
    return calls


# ---- layouts -------------------------------------------------------------------------------

A = np.linspace(-1, 1, 8).reshape(2, 4)
B = np.linspace(0.5, -0.7, 15).reshape(5, 3)


def _mixing(x, lib):
    """(4, 5) -> (2, 3), every output depending on many inputs."""
    if lib is np:
        return np.tanh(A @ np.sin(x) @ B) * np.sum(x * x)
    return dd.tanh(dd.matmul(dd.matmul(t64(A), dd.sin(x)), t64(B))) * dd.reduce_sum(x * x)


@FEW
@given(x=st.lists(st.floats(-1.5, 1.5), min_size=20, max_size=20))
def test_jacobian_layout_is_target_axes_then_source_axes(x):
    x = np.array(x).reshape(4, 5)
    tx = t64(x)
    with dd.GradientTape() as tape:
        tape.watch(tx)
        y = _mixing(tx, dd)
    j = tape.jacobian(y, tx)
    assert j.shape == (2, 3, 4, 5)
    # J[i, j, k, l] = d y[i, j] / d x[k, l]
    np.testing.assert_allclose(npy(j), fd_jacobian(lambda a: _mixing(a, np), x), **FD)
    jr = dd.jacrev(lambda a: _mixing(a, dd))(tx)
    np.testing.assert_allclose(npy(jr), npy(j), **EXACT)


def test_jacobian_of_an_empty_target_is_empty_and_shaped():
    x = t64(np.ones((2, 3)))
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x[:, :0] * 2.0
    j = tape.jacobian(y, x)
    assert j.shape == (2, 0, 2, 3)
    assert tape.jacobian(y, t64([1.0])) is None


# ---- the batched sweep -----------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_batched_sweep_equals_one_sweep_per_row(name, data):
    # every built-in VJP rule must handle a cotangent with a leading batch axis
    fn, xs = CASES[name](data)
    ts = [t64(x) for x in xs]
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(ts)
        y = fn(*ts)
    batched = tape.jacobian(y, ts, unconnected_gradients="zero")
    for j, expected in zip(batched, _rows_one_at_a_time(fn, xs)):
        np.testing.assert_allclose(npy(j), expected, **EXACT)


def test_one_sweep_gives_every_row(monkeypatch):
    x = t64(np.linspace(-1, 1, 30))
    w = t64(np.linspace(0, 1, 60).reshape(20, 3))
    calls = _sweeps_counted(monkeypatch)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.tanh(dd.matmul(dd.reshape(x, (10, 3)), dd.transpose(w)))  # (10, 20)
    j = tape.jacobian(y, x)
    assert calls == [200]   # one sweep, carrying the 200 rows
    expected = fd_jacobian(lambda a: np.tanh(a.reshape(10, 3) @ npy(w).T), npy(x))
    np.testing.assert_allclose(npy(j), expected, **FD)


def test_rows_are_swept_in_chunks_when_the_batch_would_be_large(monkeypatch):
    x = t64(np.linspace(-1, 1, 12))
    other = t64([3.0])
    monkeypatch.setattr(dd.GradientTape, "_BATCH_ELEMENTS", 12 * 5)  # 5 rows a sweep
    calls = _sweeps_counted(monkeypatch)
    with dd.GradientTape() as tape:
        tape.watch([x, other])
        y = dd.sin(x) * x
    jx, jo = tape.jacobian(y, [x, other])
    assert calls == [5, 5, 2]
    assert jo is None
    xs = npy(x)
    np.testing.assert_allclose(npy(jx), np.diag(np.cos(xs) * xs + np.sin(xs)), **EXACT)


def test_a_long_target_never_builds_its_whole_identity_seed(monkeypatch):
    # 4,000 outputs: the identity over them is 128 MB; chunks of 10 rows need ~0.3 MB each
    import tracemalloc
    n = 4000
    monkeypatch.setattr(dd.GradientTape, "_BATCH_ELEMENTS", 10 * n)
    x = t64([0.5, 2.0])
    scale = t64(np.linspace(-1, 1, n))
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = scale * x[0] + scale * scale * x[1]
    tracemalloc.start()
    try:
        j = tape.jacobian(y, x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2 ** 20, f"peak {peak / 2 ** 20:.0f} MB"
    s = npy(scale)
    np.testing.assert_array_equal(npy(j), np.stack([s, s * s], axis=1))


def test_broadcast_operands_sum_their_batched_cotangents_past_the_batch_axis():
    # x (3,) broadcast against (2, 3); a (2, 3) matrix against a batch of (4, 3, 2) matrices
    x, m = t64([0.3, -0.2, 0.9]), t64(np.linspace(-1, 1, 6).reshape(2, 3))
    stack = t64(np.linspace(0.2, 1.4, 24).reshape(4, 3, 2))
    with dd.GradientTape(persistent=True) as tape:
        tape.watch([x, m])
        y = dd.matmul(m * x, stack)             # (4, 2, 2)
    jx, jm = tape.jacobian(y, [x, m])
    assert jx.shape == (4, 2, 2, 3) and jm.shape == (4, 2, 2, 2, 3)
    s = npy(stack)
    np.testing.assert_allclose(npy(jx), fd_jacobian(lambda a: (npy(m) * a) @ s, npy(x)), **FD)
    np.testing.assert_allclose(npy(jm), fd_jacobian(lambda a: (a * npy(x)) @ s, npy(m)), **FD)


@pytest.mark.parametrize("key", [
    (np.array([0, 2]), slice(None), np.array([1, 3])),   # advanced indices apart
    (1, slice(None), np.array([0, 3, 3])),               # an int counts as one with arrays
    (slice(None), np.array([0, 2]), np.array([1, 1])),   # adjacent: stays in place
])
def test_indexing_keys_that_move_axes_take_batched_cotangents(key):
    x = np.linspace(-1, 1, 60).reshape(3, 4, 5)
    tx = t64(x)
    with dd.GradientTape() as tape:
        tape.watch(tx)
        y = dd.sin(tx[key])
    j = tape.jacobian(y, tx)
    np.testing.assert_allclose(npy(j), fd_jacobian(lambda a: np.sin(a[key]), x), **FD)


def test_custom_gradient_in_the_record_falls_back_to_one_sweep_per_row(monkeypatch):
    @dd.custom_gradient
    def cube(x):
        def grad_fn(g):
            assert g.shape == x.shape   # never handed a batch of cotangents
            return g * 3.0 * x * x
        return x * x * x, grad_fn

    x = t64([0.5, -1.0, 2.0])
    calls = _sweeps_counted(monkeypatch)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = cube(x) + x
    j = tape.jacobian(y, x)
    assert calls[0] == 3 and calls[1:] == [None] * 3   # the batched try, then row by row
    np.testing.assert_allclose(npy(j), np.diag(3 * npy(x) ** 2 + 1), **EXACT)


def test_a_batched_sweep_under_an_outer_tape_is_recorded():
    # d/dx of sum(J(x)) where J is the Jacobian of sin(x) * x**2 (diagonal)
    x = t64([0.3, -0.8, 1.1])
    with dd.GradientTape() as outer:
        outer.watch(x)
        with dd.GradientTape() as inner:
            inner.watch(x)
            y = dd.sin(x) * x * x
        j = inner.jacobian(y, x)
        total = dd.reduce_sum(j)
    g = outer.gradient(total, x)
    a = npy(x)
    # d/dx (cos(x) x² + 2x sin(x)) = -sin(x) x² + 4x cos(x) + 2 sin(x)
    np.testing.assert_allclose(npy(g), -np.sin(a) * a * a + 4 * a * np.cos(a) + 2 * np.sin(a),
                               **EXACT)


def test_float32_target_gives_float32_jacobian():
    x = t32([1.0, 2.0])
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    j = tape.jacobian(y, x)
    assert j.dtype == dd.float32
    np.testing.assert_array_equal(npy(j), [[2.0, 0.0], [0.0, 4.0]])


# ---- batch_jacobian ----------------------------------------------------------------------------

def _batch_tape(x_shape, fn):
    x = t64(np.linspace(-1, 1, int(np.prod(x_shape))).reshape(x_shape))
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = fn(x)
    return tape, x, y


def test_batch_jacobian_matches_finite_differences_per_example():
    w = np.linspace(-1, 1, 12).reshape(3, 2, 2)
    tape, x, y = _batch_tape((4, 3), lambda x: dd.reshape(
        dd.matmul(dd.sin(x), t64(w.reshape(3, 4))), (4, 2, 2)) * dd.reshape(x[:, :1], (4, 1, 1)))
    bj = tape.batch_jacobian(y, x)
    assert bj.shape == (4, 2, 2, 3)
    for b in range(4):
        f = lambda row: (np.sin(row) @ w.reshape(3, 4)).reshape(2, 2) * row[0]
        np.testing.assert_allclose(npy(bj)[b], fd_jacobian(f, npy(x)[b]), **FD)


@pytest.mark.parametrize("x_shape, fn, expected", [
    ((3, 2), lambda x: x[:, :0] * 2.0, (3, 0, 2)),          # zero-sized target example
    ((3, 0), lambda x: dd.sin(x), (3, 0, 0)),                 # zero-sized source example
    ((0, 2), lambda x: x * x, (0, 2, 2)),                     # an empty batch
    ((3, 2), lambda x: dd.reshape(x, (3, 2, 1))[:, :, :0] + 1.0, (3, 2, 0, 2)),
])
def test_batch_jacobian_of_degenerate_shapes_is_empty_and_shaped(x_shape, fn, expected):
    tape, x, y = _batch_tape(x_shape, fn)
    bj = tape.batch_jacobian(y, x)
    assert bj is not None and bj.shape == expected and bj.dtype == dd.float64


@pytest.mark.parametrize("y_rank, x_rank", [(1, 2), (0, 2), (2, 1), (2, 0)])
def test_batch_jacobian_refuses_rank_below_two_and_names_it(y_rank, x_rank):
    x = t64(np.ones((3, 2)[:x_rank]))
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.reshape(dd.reduce_sum(x), (1,) * y_rank) if y_rank else dd.reduce_sum(x)
    what, rank = ("target", y_rank) if y_rank < 2 else ("source", x_rank)
    with pytest.raises(ValueError, match=f"{what} must have rank >= 2.*got rank {rank}"):
        tape.batch_jacobian(y, x)


def test_batch_jacobian_names_both_mismatched_batch_sizes():
    x = t64(np.ones((3, 2)))
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.reshape(x, (2, 3))
    with pytest.raises(ValueError, match=r"2 \(target shape \(2, 3\)\) and 3 \(source shape "
                                         r"\(3, 2\)\)"):
        tape.batch_jacobian(y, x)


def test_batch_jacobian_sweeps_once_and_handles_unconnected_sources(monkeypatch):
    calls = _sweeps_counted(monkeypatch)
    tape, x, y = _batch_tape((5, 3), lambda x: dd.tanh(x) * 2.0)
    bj = tape.batch_jacobian(y, x)
    assert calls == [3]
    xs = npy(x)
    for b in range(5):
        np.testing.assert_allclose(npy(bj)[b], np.diag(2 / np.cosh(xs[b]) ** 2), **EXACT)
    other = t64(np.ones((5, 2)))
    assert tape.batch_jacobian(y, other) is None
    zero = tape.batch_jacobian(y, other, unconnected_gradients="zero")
    assert zero.shape == (5, 3, 2) and not np.any(npy(zero))


# ---- in-place accumulation of cotangents ------------------------------------------------------

def test_sums_the_sweep_adds_into_leave_every_handed_out_tensor_intact():
    # z's cotangent is a sum of three (a buffer the sweep owns); once handed to the custom
    # gradient, which keeps it and returns it to x, it must never be written into, although
    # x goes on receiving cotangents; nor may the caller's output_gradients be
    kept = []

    @dd.custom_gradient
    def keep(x):
        def grad_fn(g):
            kept.append(g)
            return g
        return dd.identity(x), grad_fn

    x = t64(np.linspace(-1, 1, 6))
    u = t64(np.linspace(0.5, 3, 6))
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        z = keep(x)
        y = z + z + z + x * 2.0 + x + dd.identity(x)
    before = dd._core._sums_in_place()
    first = tape.gradient(y, x, output_gradients=u)
    second = tape.gradient(y, x, output_gradients=u)
    assert dd._core._sums_in_place() > before   # the case this test is about happened
    np.testing.assert_array_equal(npy(u), np.linspace(0.5, 3, 6))
    np.testing.assert_array_equal(npy(kept[0]), 3 * npy(u))
    np.testing.assert_array_equal(npy(kept[1]), 3 * npy(u))
    np.testing.assert_allclose(npy(first), 7 * npy(u), **EXACT)
    np.testing.assert_array_equal(npy(first), npy(second))
    with pytest.raises(ValueError, match="read-only"):
        np.asarray(first)[0] = 1.0


def test_in_place_sums_give_the_bits_of_fresh_sums():
    # under an outer tape every sum is a fresh recorded op; without one, sums after the first
    # go into the sweep's own buffer: the same additions in the same order
    x = t64(np.linspace(-2, 2, 7))
    w = [t64(np.linspace(0.1, 0.7, 7) * (i + 1)) for i in range(5)]

    def loss(x):
        return dd.reduce_sum(dd.add_n([dd.sin(x * wi) for wi in w]) + dd.tanh(x) * x)

    with dd.GradientTape() as tape:
        tape.watch(x)
        y = loss(x)
    before = dd._core._sums_in_place()
    plain = tape.gradient(y, x)
    # x's 7 cotangents: the first, fresh from its rule and held by nothing else, is the sweep's
    # own buffer; the 6 others are added into it
    assert dd._core._sums_in_place() - before == 6
    with dd.GradientTape() as outer:
        outer.watch(x)
        with dd.GradientTape() as tape:
            tape.watch(x)
            y = loss(x)
        before = dd._core._sums_in_place()
        recorded = tape.gradient(y, x)
        assert dd._core._sums_in_place() == before   # seen by the outer tape: fresh sums only
    np.testing.assert_array_equal(npy(plain), npy(recorded))


def test_a_batched_sweep_refuses_seeds_that_do_not_carry_the_batch():
    x = t64([1.0, 2.0])
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
    for bad in (t64(np.ones((2,))), t64(np.ones((3, 2))), t64(np.ones((2, 2, 1)))):
        with pytest.raises(ValueError, match="batch of 2 cotangents"):
            tape._sweep([y], [bad], [x], 2)
    np.testing.assert_array_equal(npy(tape._sweep([y], [t64(np.eye(2))], [x], 2)[0]),
                                  [[2.0, 0.0], [0.0, 4.0]])

