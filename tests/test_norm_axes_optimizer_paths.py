"""The cheaper paths of W7/W8 (issue 12): norm of a one-element tensor without numpy's
reduction, normalize_axes' plain-int and None paths, and the optimizer's array step under one
error state for all its Variables. Each must give what the general path gives, bit for bit."""
import warnings

import numpy as np
import pytest

import dualad as dd
from dualad import rules
from dualad.shapes import normalize_axes

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, 1e-310, 1e-160, 1e300, -0.3, 3.0]


def reference_norm(x, axis, keepdims):
    # the general path: numpy's reduction over the squares
    with np.errstate(all="ignore"):
        return np.sqrt(np.add.reduce(x * x, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(), (1,), (1, 1), (1, 1, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_one_element_norm_is_the_reductions_bits(dtype, shape, keepdims):
    axis = tuple(range(len(shape)))
    for value in SPECIAL:
        with np.errstate(all="ignore"):
            x = np.full(shape, value, dtype=dtype)
        expected = reference_norm(x, axis, keepdims)
        with np.errstate(all="ignore"):
            got = rules._norm_impl(x, axis=axis, keepdims=keepdims)
        assert type(got) is type(expected)
        assert np.shape(got) == np.shape(expected)
        assert np.asarray(got).dtype == np.asarray(expected).dtype
        assert np.asarray(got).tobytes() == np.asarray(expected).tobytes(), (value, got, expected)
        public = dd.norm(dd.constant(x), axis=None, keepdims=keepdims).numpy()
        assert public.tobytes() == np.asarray(expected).tobytes()


def test_one_element_norm_over_some_axes_and_other_axis_forms_take_the_general_path():
    x = np.full((1, 1, 1), -2.5)
    for axis, keepdims in [((0,), False), ((1, 2), True), ((0, 2), False)]:
        got = rules._norm_impl(x, axis=axis, keepdims=keepdims)
        assert np.shape(got) == np.shape(reference_norm(x, axis, keepdims))


def test_one_element_norm_gradient():
    for value in [-0.3, 2.0, 0.0]:
        a = dd.constant(np.full((1, 1), value))
        with dd.GradientTape() as tape:
            tape.watch(a)
            n = dd.norm(a)
        g = tape.gradient(n, a).numpy()
        assert g.shape == (1, 1)
        assert g[0, 0] == (np.sign(value) if value != 0 else 0.0)


def test_normalize_axes_plain_int_and_none():
    assert normalize_axes(None, 3) == (0, 1, 2)
    assert normalize_axes(None, 0) == ()
    assert normalize_axes(None, 40) == tuple(range(40))   # past the cached ranks
    assert normalize_axes(-1, 3) == (2,)
    assert normalize_axes(0, 0) == (0,)
    # a bool and an int subclass go the general way, with the same answers
    assert normalize_axes(True, 3) == (1,)
    assert normalize_axes(np.int64(-2), 3) == (1,)
    for bad in (3, -4):
        with pytest.raises(ValueError, match=f"axis {bad} is out of range for a tensor of rank 3"):
            normalize_axes(bad, 3)
    for bad in (1, -1):
        with pytest.raises(ValueError, match="out of range"):
            normalize_axes(bad, 0)
    with pytest.raises(TypeError, match="axis must be an integer"):
        normalize_axes(0.5, 3)


def test_array_step_overflow_is_silent_for_every_variable_and_restores_the_error_state():
    # every Variable's rule runs under the one quiet error state; the caller's is kept
    big = np.finfo(np.float32).max
    params = [dd.Variable(np.full((2, 3), big, np.float32)), dd.Variable(np.full((3,), -big, np.float32))]
    opt = dd.optimizers.SGD(learning_rate=4.0)
    grads = [dd.constant(np.full((2, 3), -big, np.float32)), dd.constant(np.full((3,), big, np.float32))]
    opt.apply_gradients(zip(grads, params))          # first step: slots, general path
    before = np.geterr()
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.apply_gradients(zip(grads, params))      # the in-place array step
        assert np.geterr() == {**before, **dict.fromkeys(before, "raise")}
    assert np.geterr() == before
    assert np.all(params[0].numpy() == np.inf) and np.all(params[1].numpy() == -np.inf)


def test_array_step_error_state_restored_after_an_exception_midway(monkeypatch):
    params = [dd.Variable(np.ones((2, 2))), dd.Variable(np.ones((2,)))]
    opt = dd.optimizers.SGD(learning_rate=0.5)
    grads = [dd.constant(np.ones((2, 2))), dd.constant(np.ones((2,)))]
    opt.apply_gradients(zip(grads, params))
    calls = []
    original = dd.optimizers.SGD._update_into

    def failing_second(self, *args):
        calls.append(np.geterr()["over"])
        if len(calls) == 2:
            raise RuntimeError("rule failed")
        return original(self, *args)

    monkeypatch.setattr(dd.optimizers.SGD, "_update_into", failing_second)
    values = [p.numpy().copy() for p in params]
    before = np.geterr()
    with pytest.raises(RuntimeError, match="rule failed"):
        opt.apply_gradients(zip(grads, params))
    assert calls == ["ignore", "ignore"]             # both rules ran quietly
    assert np.geterr() == before
    for p, v in zip(params, values):                  # nothing committed
        assert np.array_equal(p.numpy(), v)
