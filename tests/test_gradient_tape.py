"""GradientTape with TensorFlow's semantics: persistence, watching (explicit, nested structures,
accessed Variables), gradient() arguments and result structure, jacobian and batch_jacobian,
stop_recording, reset, watched_variables, warnings, memory release, nested tapes to high
order, Python control flow, and per-thread tapes."""
import gc
import math
import sys
import threading
import warnings
import weakref

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dualad as dd
from dualad import GradientInContextWarning, NonFloatWatchWarning
from helpers import (EXACT, FD, SETTINGS, arrays, fd_grad, fd_jvp, floats, npy, t64, value)


# ---- persistence ---------------------------------------------------------------------------

def test_persistent_tape_gives_many_gradients_and_jacobians():
    x = t64([1.0, 2.0])
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
        z = dd.reduce_sum(y * x)
    for _ in range(3):
        np.testing.assert_array_equal(npy(tape.gradient(z, x)), [3.0, 12.0])
        np.testing.assert_array_equal(npy(tape.gradient(y, x)), [2.0, 4.0])
        np.testing.assert_array_equal(npy(tape.jacobian(y, x)), [[2.0, 0.0], [0.0, 4.0]])
    assert tape.persistent


@pytest.mark.parametrize("second", ["gradient", "jacobian", "batch_jacobian"])
@pytest.mark.parametrize("first", ["gradient", "jacobian", "batch_jacobian"])
def test_non_persistent_tape_refuses_a_second_call(first, second):
    x = t64([[1.0, 2.0]])
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    calls = {"gradient": lambda: tape.gradient(y, x), "jacobian": lambda: tape.jacobian(y, x),
             "batch_jacobian": lambda: tape.batch_jacobian(y, x)}
    # d(x²)/dx = 2x at x = [[1, 2]] in each layout
    expected = {"gradient": [[2.0, 4.0]], "jacobian": [[[[2.0, 0.0]], [[0.0, 4.0]]]],
                "batch_jacobian": [[[2.0, 0.0], [0.0, 4.0]]]}
    np.testing.assert_array_equal(npy(calls[first]()), expected[first])
    with pytest.raises(RuntimeError, match="persistent"):
        calls[second]()
    with pytest.raises(RuntimeError, match="already computed a gradient"):
        with tape:
            pass


# ---- watching ------------------------------------------------------------------------------

def test_trainable_variables_are_watched_on_access_unless_disabled():
    v = dd.Variable(3.0)
    frozen = dd.Variable(4.0, trainable=False)
    assert v.trainable and not frozen.trainable
    with dd.GradientTape() as tape:
        y = v * frozen
    g_v, g_frozen = tape.gradient(y, [v, frozen])
    assert float(g_v) == 4.0 and g_frozen is None

    with dd.GradientTape(watch_accessed_variables=False) as tape:
        y = v * v
    assert tape.gradient(y, v) is None

    with dd.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(v)
        y = v * v * frozen
    assert float(tape.gradient(y, v)) == 24.0


def test_constants_need_watch():
    x = dd.constant(3.0)
    with dd.GradientTape() as tape:
        y = x * x
    assert tape.gradient(y, x) is None
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    assert float(tape.gradient(y, x)) == 6.0


def test_watch_accepts_nested_lists_tuples_and_dicts():
    a, b, c, d = (t64(v) for v in (1.0, 2.0, 3.0, 4.0))
    with dd.GradientTape() as tape:
        tape.watch([a, (b, {"k": c, "l": [d]})])
        y = a * b * c * d
    ga, gb, gc_, gd = tape.gradient(y, [a, b, c, d])
    assert [float(g) for g in (ga, gb, gc_, gd)] == [24.0, 12.0, 8.0, 6.0]


@pytest.mark.parametrize("bad", [3.0, np.ones(2), [dd.constant(1.0), "x"], {"a": None}])
def test_watch_rejects_non_tensors(bad):
    with dd.GradientTape() as tape:
        with pytest.raises(TypeError, match="expected Tensors or Variables, got"):
            tape.watch(bad)


@pytest.mark.parametrize("make", [lambda: dd.constant(3), lambda: dd.constant([1, 2]),
                                  lambda: dd.constant(True), lambda: dd.Variable(2)])
def test_watching_an_integer_or_bool_tensor_warns_and_gives_none(make):
    i = make()
    with dd.GradientTape() as tape:
        with pytest.warns(NonFloatWatchWarning, match="tensor cannot have a gradient"):
            tape.watch(i)
        y = dd.reduce_sum(dd.cast(i, dd.float32) * 2.0)
    assert tape.gradient(y, i) is None


def test_integer_source_is_none_even_with_unconnected_zero():
    i = dd.constant(3)
    x = dd.constant(2.0)
    with dd.GradientTape() as tape:
        tape.watch(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NonFloatWatchWarning)
            tape.watch(i)
        y = x * dd.cast(i, dd.float32)
    gi, gx = tape.gradient(y, [i, x], unconnected_gradients="zero")
    assert gi is None and float(gx) == 3.0


def test_watched_variables_in_order_of_first_access():
    v1, v2 = dd.Variable(1.0, name="v1"), dd.Variable(2.0, name="v2")
    v3 = dd.Variable(3.0, name="frozen", trainable=False)
    x = dd.constant(1.0)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = v2 * v1 + v3 * x + v2
    assert [v.name for v in tape.watched_variables()] == ["v2", "v1"]
    grads = tape.gradient(y, tape.watched_variables())
    assert [float(g) for g in grads] == [2.0, 2.0]
    # still reported after the non-persistent tape has given its gradient (as in TensorFlow)
    assert [v.name for v in tape.watched_variables()] == ["v2", "v1"]
    with dd.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(v3)
        y = v1 * v3
    assert tape.watched_variables() == (v3,)


# ---- gradient(): sources, targets, output_gradients, unconnected -------------------------

LEAVES = st.integers(0, 3)
STRUCTURES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner),
                            st.dictionaries(st.sampled_from("abc"), inner, max_size=3)),
    max_leaves=8)


def _build(structure, pool):
    if isinstance(structure, int):
        return pool[structure]
    if isinstance(structure, list):
        return [_build(s, pool) for s in structure]
    if isinstance(structure, tuple):
        return tuple(_build(s, pool) for s in structure)
    return {k: _build(v, pool) for k, v in structure.items()}


def _same_structure(result, structure, expected):
    if isinstance(structure, int):
        assert float(result) == expected[structure]
    elif isinstance(structure, dict):
        assert isinstance(result, dict) and sorted(result) == sorted(structure)
        for k in structure:
            _same_structure(result[k], structure[k], expected)
    else:
        assert type(result) is type(structure) and len(result) == len(structure)
        for r, s in zip(result, structure):
            _same_structure(r, s, expected)


@SETTINGS
@given(structure=STRUCTURES)
def test_gradient_returns_the_structure_of_sources(structure):
    pool = [t64(v) for v in (1.0, 2.0, 3.0, 5.0)]
    with dd.GradientTape() as tape:
        tape.watch(pool)
        y = pool[0] * pool[1] * pool[2] * pool[3]
    expected = [30.0, 15.0, 10.0, 6.0]
    _same_structure(tape.gradient(y, _build(structure, pool)), structure, expected)


def test_unconnected_gradients_none_or_zero():
    x, unused = t64([1.0, 2.0]), t64([[1.0, 2.0, 3.0]])
    for mode, check in (("none", lambda g: g is None),
                        ("zero", lambda g: g.shape == (1, 3) and not np.any(npy(g)))):
        with dd.GradientTape() as tape:
            tape.watch([x, unused])
            y = dd.reduce_sum(x * x)
        gx, gu = tape.gradient(y, [x, unused], unconnected_gradients=mode)
        assert check(gu)
        np.testing.assert_array_equal(npy(gx), [2.0, 4.0])


def test_unconnected_gradients_rejects_other_values():
    x = t64(1.0)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = x * 2.0
    with pytest.raises(ValueError, match="unconnected_gradients"):
        tape.gradient(y, x, unconnected_gradients="zeros")


def test_source_computed_before_the_tape_and_target_independent_of_source_give_none():
    x = t64(2.0)
    before = x * 3.0
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = x * x
        c = t64(7.0) * 2.0
    g_before, g_c = tape.gradient([y, c], [before, x])
    assert g_before is None and float(g_c) == 4.0


def test_gradient_of_target_with_respect_to_itself_is_one():
    x = t64([1.0, 2.0])
    with dd.GradientTape() as tape:
        tape.watch(x)
    np.testing.assert_array_equal(npy(tape.gradient(x, x)), [1.0, 1.0])


@SETTINGS
@given(x0=floats(-2, 2))
def test_gradients_with_respect_to_intermediate_values(x0):
    x = t64(x0)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = dd.sin(x)
        z = y * y + y
        w = dd.exp(z)
    s = math.sin(x0)
    assert math.isclose(float(tape.gradient(w, z)), math.exp(s * s + s), rel_tol=1e-12)
    assert math.isclose(float(tape.gradient(w, y)), math.exp(s * s + s) * (2 * s + 1), rel_tol=1e-12)
    gy, gx = tape.gradient(w, [y, x])
    assert math.isclose(float(gx), float(gy) * math.cos(x0), rel_tol=1e-12, abs_tol=1e-14)


@SETTINGS
@given(data=st.data())
def test_non_scalar_target_gives_gradient_of_its_sum(data):
    x = data.draw(arrays((2, 3)), label="x")
    tx = t64(x)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(tx)
        y = dd.sin(tx) * dd.reduce_sum(tx, axis=0)
        s = dd.reduce_sum(y)
    np.testing.assert_allclose(npy(tape.gradient(y, tx)), npy(tape.gradient(s, tx)), **EXACT)


@SETTINGS
@given(data=st.data())
def test_list_of_targets_gives_gradient_of_their_sum(data):
    x = data.draw(arrays((3,)), label="x")
    tx = t64(x)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(tx)
        a = dd.sin(tx)
        b = dd.reduce_sum(tx * tx)
        c = dd.exp(tx[0])
        total = dd.reduce_sum(a) + b + c
    np.testing.assert_allclose(npy(tape.gradient([a, b, c], tx)), npy(tape.gradient(total, tx)),
                               **EXACT)
    np.testing.assert_allclose(npy(tape.gradient({"a": a, "rest": (b, c)}, tx)),
                               npy(tape.gradient(total, tx)), **EXACT)


@SETTINGS
@given(data=st.data())
def test_output_gradients_weight_the_targets(data):
    x = data.draw(arrays((2, 2)), label="x")
    u = data.draw(arrays((2, 2)), label="u")
    k = data.draw(floats(-2, 2), label="k")
    tx = t64(x)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(tx)
        y = dd.tanh(tx) * tx
        s = dd.reduce_sum(tx * tx)
        weighted = dd.reduce_sum(y * t64(u)) + s * k
        yu = y * t64(u)
    g = tape.gradient([y, s], tx, output_gradients=[t64(u), t64(k)])
    np.testing.assert_allclose(npy(g), npy(tape.gradient(weighted, tx)), **EXACT)
    # None in output_gradients means ones; numpy arrays are accepted
    g = tape.gradient([y, s], tx, output_gradients=[u, None])
    expected = tape.gradient([yu, s], tx)
    np.testing.assert_allclose(npy(g), npy(expected), **EXACT)


# ---- jacobian and batch_jacobian ----------------------------------------------------------

def _fn(x, w):
    return dd.tanh(dd.matmul(w, x)) * dd.reduce_sum(x * x)


@SETTINGS
@given(data=st.data())
def test_jacobian_matches_finite_differences(data):
    x = data.draw(arrays((3,)), label="x")
    w = data.draw(arrays((2, 3)), label="w")
    tx, tw = t64(x), t64(w)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch([tx, tw])
        y = _fn(tx, tw)
    jx, jw = tape.jacobian(y, [tx, tw])
    assert jx.shape == (2, 3) and jw.shape == (2, 2, 3)
    for i in range(3):
        e = np.zeros(3)
        e[i] = 1
        np.testing.assert_allclose(npy(jx)[:, i], fd_jvp(lambda a: value(_fn, [a, w]), [x], [e]),
                                   **FD)
    for idx in np.ndindex(2, 3):
        e = np.zeros((2, 3))
        e[idx] = 1
        np.testing.assert_allclose(npy(jw)[(slice(None),) + idx],
                                   fd_jvp(lambda b: value(_fn, [x, b]), [w], [e]), **FD)


def test_jacobian_of_scalar_target_and_unconnected_sources():
    x, other = t64([1.0, 2.0]), t64([[0.0, 0.0]])
    with dd.GradientTape(persistent=True) as tape:
        tape.watch([x, other])
        y = dd.reduce_sum(x * x)
        doubled = x * 2.0
    np.testing.assert_array_equal(npy(tape.jacobian(y, x)), [2.0, 4.0])
    assert tape.jacobian(y, other) is None
    j = tape.jacobian(y, other, unconnected_gradients="zero")
    assert j.shape == (1, 2) and not np.any(npy(j))
    j = tape.jacobian(doubled, {"x": x})
    np.testing.assert_array_equal(npy(j["x"]), 2 * np.eye(2))


@SETTINGS
@given(data=st.data(), batch=st.integers(1, 3), inner=st.sampled_from([(1,), (2,), (2, 2)]))
def test_batch_jacobian_is_the_per_example_block_of_the_jacobian(data, batch, inner):
    x = data.draw(arrays((batch, 3)), label="x")
    w = data.draw(arrays((3,) + inner), label="w") if inner != (1,) else data.draw(arrays((3,)), label="w")
    tx = t64(x)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(tx)
        h = dd.sin(tx) * tx
        if inner == (1,):   # a reduction kept as a (batch, 1) target (rank 1 is refused)
            y = dd.reduce_sum(h * t64(w), axis=1, keepdims=True)
        else:
            y = dd.reshape(dd.matmul(h, dd.reshape(t64(w), (3, -1))), (batch,) + inner)
    bj = tape.batch_jacobian(y, tx)
    j = npy(tape.jacobian(y, tx))
    assert bj.shape == (batch,) + inner + (3,)
    for b in range(batch):
        block = j[(b,) + (slice(None),) * len(inner) + (b,)]
        np.testing.assert_allclose(npy(bj)[b], block, **EXACT)


def test_batch_jacobian_rejects_mismatched_batch():
    x = t64(np.ones((2, 3)))
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.reduce_sum(x)
    with pytest.raises(ValueError, match="batch"):
        tape.batch_jacobian(y, x)


# ---- stop_recording and reset ---------------------------------------------------------------

def test_stop_recording_hides_ops_from_the_tape():
    x = t64(2.0)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = x * x
        with tape.stop_recording():
            hidden = x * 10.0
            z = y * 3.0
        w = y + z + hidden
        recorded = x * 5.0
    gw, gh = tape.gradient([w, recorded], [x, hidden])
    # w's dependence through z and hidden is invisible: only y = x² and recorded = 5x count
    assert float(gw) == 4.0 + 5.0 and gh is None


def test_stop_recording_needs_an_active_tape_and_restores_recording():
    tape = dd.GradientTape()
    with pytest.raises(RuntimeError, match="needs the tape to be active"):
        with tape.stop_recording():
            pass
    x = t64(1.0)
    with tape:
        tape.watch(x)
        with pytest.raises(KeyError, match="boom"):
            with tape.stop_recording():
                raise KeyError("boom")
        y = x * 4.0
    assert float(tape.gradient(y, x)) == 4.0


def test_reset_forgets_the_record_and_keeps_recording():
    x = t64(2.0)
    v = dd.Variable(1.0, dtype=dd.float64)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x * v
        tape.reset()
        assert tape.watched_variables() == ()
        z = x * 3.0 * v
    assert tape.gradient(z, x) is None  # x is no longer watched
    assert float(tape.gradient(z, v)) == 6.0  # v is watched again on access
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
        tape.reset()
        tape.watch(x)
        z = x * 3.0
    assert float(tape.gradient(z, x)) == 3.0


def test_values_recorded_before_reset_are_unconnected():
    x = t64(2.0)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
        tape.reset()
        tape.watch(x)
        z = x * 3.0  # takes the slot y had
    assert float(tape.gradient(z, x)) == 3.0
    # y's record was forgotten: None, not 3.0 (z's gradient, through the slot y had)
    assert tape.gradient(y, x) is None


def test_reset_makes_a_used_non_persistent_tape_usable_again():
    x = t64(2.0)
    tape = dd.GradientTape()
    with tape:
        tape.watch(x)
        y = x * x
    assert float(tape.gradient(y, x)) == 4.0
    tape.reset()
    with tape:
        tape.watch(x)
        z = x * x * x
    assert float(tape.gradient(z, x)) == 12.0


# ---- gradient inside the context -------------------------------------------------------------

def test_gradient_inside_persistent_context_warns_and_is_recorded():
    x = t64(3.0)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x * x
        with pytest.warns(GradientInContextWarning, match="inside the context of its own persistent tape"):
            dy = tape.gradient(y, x)
        with pytest.warns(GradientInContextWarning, match="inside the context of its own persistent tape"):
            d2y = tape.gradient(dy, x)
    assert float(dy) == 27.0 and float(d2y) == 18.0
    assert float(tape.gradient(d2y, x)) == 6.0


def test_gradient_outside_the_context_does_not_warn():
    x = t64(3.0)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(tape.gradient(y, x)) == 6.0
    # and a non-persistent tape inside its own context does not warn either
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = x * x
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert float(tape.gradient(y, x)) == 6.0


# ---- memory ------------------------------------------------------------------------------

def test_deleting_the_tape_frees_what_only_it_held():
    x = t64(np.arange(4.0))
    baseline = sys.getrefcount(x)
    tape = dd.GradientTape(persistent=True)
    tape_ref = weakref.ref(tape)
    with tape:
        tape.watch(x)
        y = dd.sin(x)
        z = dd.reduce_sum(y * y)
    assert sys.getrefcount(x) > baseline  # the record holds x
    tape.gradient(z, x)
    y_array = np.asarray(y)  # the numpy value inside y (shared, not a copy)
    assert np.asarray(y) is y_array
    y_ref = weakref.ref(y_array)
    del y, z, y_array
    gc.collect()
    assert y_ref() is not None  # the tape still holds y
    del tape
    gc.collect()
    assert tape_ref() is None
    assert y_ref() is None
    assert sys.getrefcount(x) == baseline


def test_non_persistent_gradient_releases_the_record():
    x = t64(np.arange(3.0))
    baseline = sys.getrefcount(x)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.reduce_sum(dd.exp(x))
    assert sys.getrefcount(x) > baseline
    tape.gradient(y, x)
    del y
    gc.collect()
    assert sys.getrefcount(x) == baseline


def test_variable_refcount_returns_to_baseline():
    v = dd.Variable(np.ones(3))
    baseline = sys.getrefcount(v)
    for persistent in (False, True):
        with dd.GradientTape(persistent=persistent) as tape:
            y = dd.reduce_sum(v * v)
        tape.gradient(y, v)
        del tape, y
        gc.collect()
        assert sys.getrefcount(v) == baseline


# ---- nested tapes, any order ---------------------------------------------------------------

def nth_derivative(f, x0, n):
    """d^n f / dx^n at x0 through n nested tapes (the innermost gradient is taken first)."""
    x = t64(x0)
    tapes = [dd.GradientTape() for _ in range(n)]
    for tape in tapes:
        tape.__enter__()
        tape.watch(x)
    y = f(x)
    for tape in reversed(tapes):
        tape.__exit__(None, None, None)
        y = tape.gradient(y, x, unconnected_gradients="zero")
    return float(y)


@SETTINGS
@given(x0=floats(-2, 2))
def test_fourth_derivatives_through_four_nested_tapes(x0):
    assert math.isclose(nth_derivative(lambda x: x ** 5, x0, 4), 120 * x0, rel_tol=1e-12,
                        abs_tol=1e-12)
    assert math.isclose(nth_derivative(dd.sin, x0, 4), math.sin(x0), rel_tol=1e-12, abs_tol=1e-14)
    assert math.isclose(nth_derivative(dd.exp, x0, 4), math.exp(x0), rel_tol=1e-12)


@settings(max_examples=10, deadline=None)
@given(x0=floats(-1.5, 1.5), n=st.integers(1, 6))
def test_nth_derivatives_of_closed_forms(x0, n):
    # d^n/dx^n sin = sin(x + nπ/2); d^n/dx^n x**6 = 6!/(6-n)! x**(6-n)
    assert math.isclose(nth_derivative(dd.sin, x0, n), math.sin(x0 + n * math.pi / 2),
                        rel_tol=1e-10, abs_tol=1e-12)
    expected = math.factorial(6) / math.factorial(6 - n) * x0 ** (6 - n)
    assert math.isclose(nth_derivative(lambda x: dd.pow(x, 6.0), x0, n) if x0 > 0 else
                        nth_derivative(lambda x: x ** 6, x0, n), expected, rel_tol=1e-10,
                        abs_tol=1e-10)


def test_higher_derivatives_beyond_the_polynomial_degree_are_zero():
    assert nth_derivative(lambda x: x ** 3, 1.3, 4) == 0.0
    assert nth_derivative(lambda x: x * 2.0 + 1.0, 1.3, 2) == 0.0


@SETTINGS
@given(x0=floats(-2, 2), y0=floats(-2, 2))
def test_mixed_second_partials_through_nested_tapes(x0, y0):
    x, y = t64(x0), t64(y0)
    with dd.GradientTape(persistent=True) as outer:
        outer.watch([x, y])
        with dd.GradientTape() as inner:
            inner.watch([x, y])
            f = dd.sin(x * y) + x * x * y
        gx, gy = inner.gradient(f, [x, y])
    hxy = float(outer.gradient(gx, y))
    hyx = float(outer.gradient(gy, x))
    expected = math.cos(x0 * y0) - x0 * y0 * math.sin(x0 * y0) + 2 * x0
    assert math.isclose(hxy, expected, rel_tol=1e-10, abs_tol=1e-12)
    assert math.isclose(hyx, expected, rel_tol=1e-10, abs_tol=1e-12)


# ---- Python control flow -------------------------------------------------------------------

STEPS = st.lists(st.sampled_from(["branch", "loop", "while", "sin", "affine"]), max_size=8)


@SETTINGS
@given(x0=floats(-2, 2), steps=STEPS, n=st.integers(0, 4))
def test_python_control_flow_on_tensor_values(x0, steps, n):
    """A program whose branches and loop counts depend on tensor values (through comparisons
    used in if/while); its derivative is tracked alongside by hand (forward chain rule)."""
    x = t64(x0)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y, d = x, 1.0
        for step in steps:
            v = float(y)
            if step == "branch":
                if y > 0.5:
                    y, d = y * y, 2 * v * d
                elif y < -0.5:
                    y, d = -y, -d
                else:
                    y, d = dd.sin(y) + 1.0, math.cos(v) * d
            elif step == "loop":
                for _ in range(n):
                    y, d = y * 0.5 + 0.25, 0.5 * d
            elif step == "while":
                count = 0
                while dd.abs(y) > 1.0 and count < 50:
                    y, d = y * 0.75, 0.75 * d
                    count += 1
            elif step == "sin":
                y, d = dd.sin(y), math.cos(v) * d
            else:
                y, d = 1.5 * y - 0.5, 1.5 * d
    g = tape.gradient(y, x)
    if not steps:
        assert float(g) == 1.0
    else:
        assert math.isclose(float(g), d, rel_tol=1e-12, abs_tol=1e-15)


def test_comparisons_give_bool_tensors_usable_in_if_and_while():
    x = dd.constant(3.0)
    c = x > 2.0
    assert c.dtype == dd.bool and bool(c) is True
    n = 0
    y = x
    while y < 100.0:
        y = y * 2.0
        n += 1
    assert n == 6 and float(y) == 192.0
    with pytest.raises(ValueError, match="ambiguous"):
        if dd.constant([1.0, 2.0]) > 0.0:
            pass


# ---- threads --------------------------------------------------------------------------------

def test_a_tape_does_not_record_ops_run_in_another_thread():
    a = t64(3.0)
    seen = {}
    go, done = threading.Event(), threading.Event()

    def other():
        go.wait()
        seen["stack"] = dd._core.active_transformations()
        seen["b"] = a * a
        done.set()

    with dd.GradientTape(persistent=True) as tape:
        tape.watch(a)
        thread = threading.Thread(target=other)
        thread.start()
        go.set()
        assert done.wait(10)
        c = a * 2.0
    thread.join()
    assert seen["stack"] == ()
    assert tape.gradient(seen["b"], a) is None
    assert float(tape.gradient(c, a)) == 2.0


def test_tapes_in_several_threads_at_once_are_independent():
    n_threads = 4
    barrier = threading.Barrier(n_threads)
    shared = t64(1.5)
    results, errors = {}, []

    def work(k):
        try:
            with dd.GradientTape() as tape:
                tape.watch(shared)
                barrier.wait(10)  # every thread's tape is active now
                y = shared
                for _ in range(200):
                    y = y * 1.0 + 0.0
                y = y ** (k + 1)
                barrier.wait(10)
            results[k] = (float(tape.gradient(y, shared)), dd._core.active_transformations())
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(n_threads):
        g, stack = results[k]
        assert math.isclose(g, (k + 1) * 1.5 ** k, rel_tol=1e-12)
        assert stack == ()


def test_a_tape_cannot_be_entered_twice():
    tape = dd.GradientTape(persistent=True)
    with tape:
        with pytest.raises(RuntimeError, match="already active"):
            tape.__enter__()
    assert dd._core.active_transformations() == ()


def test_tapes_dropped_without_gradient_leave_nothing_on_a_long_lived_variable():
    """A Variable read under a new tape every step, while another tape holds its first slot,
    must not keep one slot entry per dropped tape (memory and read time grew without bound)."""
    import gc
    import tracemalloc

    x = dd.Variable(1.0)
    keeper = dd.GradientTape(persistent=True)
    with keeper:
        keeper_y = x * x

    def step():
        with dd.GradientTape() as tape:
            y = x * 2.0
        return y

    for _ in range(100):
        step()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(5000):
        step()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 20_000, f"{grown} bytes kept by 5000 dropped tapes"
    assert float(keeper.gradient(keeper_y, x)) == 2.0


def test_gradient_in_context_warning_points_at_the_callers_line():
    x = dd.constant(3.0)
    for sources in (x, [x]):    # the one-source fast path and the general path
        with dd.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = x * x
            with pytest.warns(dd.GradientInContextWarning, match="inside the context of its own persistent tape") as record:
                tape.gradient(y, sources)
        assert record[0].filename == __file__


def test_gradient_tape_signature_and_a_misspelt_keyword():
    import inspect
    params = inspect.signature(dd.GradientTape).parameters
    assert list(params) == ["persistent", "watch_accessed_variables"]
    with pytest.raises(TypeError, match=r"GradientTape.__init__\(\) got an unexpected keyword "
                                        r"argument 'persistant'"):
        dd.GradientTape(persistant=True)
    tape = dd.GradientTape(True, watch_accessed_variables=False)
    assert tape.persistent and not tape.watch_accessed_variables


@pytest.mark.parametrize("ask", ["gradient", "gradient-list", "jacobian", "batch_jacobian"])
def test_a_non_persistent_gradient_that_raised_can_be_asked_again(ask):
    # TensorFlow releases a non-persistent tape only once a gradient is computed: a grad_fn
    # that fails once (a transient error, a KeyboardInterrupt) leaves the record for a retry
    failures = [1]

    @dd.custom_gradient
    def flaky_square(x):
        def grad(dy):
            if failures[0]:
                failures[0] -= 1
                raise ValueError("transient failure in grad_fn")
            return dy * 2.0 * x
        return x * x, grad

    x = t64([[1.0, 2.0]])
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = flaky_square(x)
    calls = {"gradient": lambda: tape.gradient(y, x),
             "gradient-list": lambda: tape.gradient(y, [x])[0],
             "jacobian": lambda: tape.jacobian(y, x),
             "batch_jacobian": lambda: tape.batch_jacobian(y, x)}
    expected = {"gradient": [[2.0, 4.0]], "gradient-list": [[2.0, 4.0]],
                "jacobian": [[[[2.0, 0.0]], [[0.0, 4.0]]]],
                "batch_jacobian": [[[2.0, 0.0], [0.0, 4.0]]]}
    with pytest.raises(ValueError, match="transient failure"):
        calls[ask]()
    np.testing.assert_array_equal(npy(calls[ask]()), expected[ask])
    with pytest.raises(RuntimeError, match="persistent"):   # released by the success
        calls[ask]()
