"""pickle and copy.deepcopy of tensors, Variables and gradient results: same value and dtype,
no tape or accumulator state; a Tensor sent back by a multiprocessing worker is the parent's
plain value (across_processes.py). Tensors, copies included, are immutable."""
import copy
import pickle

import numpy as np
import pytest

import dualad as dd

from stress.budget import rounds, run_scenario

pytestmark = pytest.mark.stress

ROUND_TRIPS = {
    "pickle": lambda t: pickle.loads(pickle.dumps(t)),
    "pickle_protocol_0": lambda t: pickle.loads(pickle.dumps(t, protocol=0)),
    "deepcopy": copy.deepcopy,
}


def _values(rng):
    """Values of every dtype and awkward shape: 0-d, empty, non-contiguous, special floats."""
    out = [np.float32(1.1), np.float64(-0.0), np.float64(np.nan), np.float32(np.inf),
           np.float16(0.1), np.array(5, dtype=np.int64), np.array(True),
           np.zeros((0, 3), np.float32), np.arange(12, dtype=np.int8).reshape(3, 4).T,
           rng.standard_normal((2, 3, 4)).astype(np.float32)[:, ::2],
           np.array([0, 255], dtype=np.uint8), np.array([-2**31, 2**31 - 1], dtype=np.int32),
           rng.standard_normal(100_000)]
    return out


def _identical(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    assert a.tobytes() == b.tobytes(), f"{what}: values differ"  # bitwise: -0.0 and NaN too


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_tensor_round_trips_keep_value_and_dtype_and_stay_immutable(how):
    rng = np.random.default_rng(0)
    for value in _values(rng):
        t = dd.constant(value)
        back = ROUND_TRIPS[how](t)
        assert type(back) is dd.Tensor and back is not t
        assert back.dtype == t.dtype and back.shape == t.shape
        _identical(back, t, f"{how} of {value!r:.40}")
        assert not np.asarray(back).flags.writeable, f"{how}: the copy's array is writeable"
        assert not np.asarray(t).flags.writeable
    scalar = dd.constant(0.1)  # a float32 C scalar: rounded to float32, and stays so
    assert float(ROUND_TRIPS[how](scalar)) == float(np.float32(0.1))


def test_copy_of_a_tensor_is_the_tensor_itself():
    for value in (1.5, np.arange(3.0), np.array([1, 2], np.int16)):
        t = dd.constant(value)
        assert copy.copy(t) is t


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_a_copy_made_under_a_tape_and_an_accumulator_carries_neither(how):
    x = dd.Variable(np.array([1.0, 2.0, 3.0]))
    with dd.GradientTape(persistent=True) as tape:
        with dd.ForwardAccumulator(x, dd.constant(np.ones(3))) as acc:
            y = x * x
            y_copy = ROUND_TRIPS[how](y)
            x_copy = ROUND_TRIPS[how](x)  # a Variable: a new, trainable one
            z = y_copy * 2.0 + x_copy * 3.0
        assert acc.jvp(y_copy) is None, "the copy kept the accumulator's tangent"
        assert acc.jvp(z) is None
    _identical(y_copy, y, "value")
    assert tape.gradient(y_copy, x) is None, "the copy kept its place on the tape"
    assert tape.gradient(z, x) is None, "the gradient flowed through a copy"
    # the copied Variable is a Variable of its own, watched when read under the tape
    _identical(tape.gradient(z, x_copy), np.full(3, 3.0), "gradient of the copied Variable")


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_variable_round_trips_make_an_independent_variable(how):
    rng = np.random.default_rng(1)
    for value in _values(rng):
        for trainable in (True, False):
            v = dd.Variable(value, trainable=trainable, name="weights/kernel")
            back = ROUND_TRIPS[how](v)
            assert type(back) is dd.Variable and back is not v
            assert back.name == v.name and back.trainable == v.trainable
            _identical(back, v, f"{how} of a Variable holding {value!r:.40}")
            if np.asarray(v).size and v.dtype.is_floating:
                back.assign(back * 2.0 + 1.0)
                _identical(v, dd.constant(value), "assigning the copy changed the original")


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_gradients_and_optimizer_state_round_trip(how):
    for r in rounds(20):
        rng = np.random.default_rng(r)
        w = dd.Variable(rng.standard_normal((3, 2)).astype(np.float32))
        x = dd.constant(rng.standard_normal((4, 3)).astype(np.float32))
        opt = dd.optimizers.Adam(0.01)
        with dd.GradientTape(persistent=True) as tape:
            hidden = dd.tanh(x @ w)
            loss = dd.reduce_sum(hidden)
            row = hidden[0]
        grads = [tape.gradient(loss, w), tape.jacobian(row, w)]
        assert grads[1].shape == (2, 3, 2)
        for g in grads:
            back = ROUND_TRIPS[how](g)
            _identical(back, g, "gradient")
            assert not np.asarray(back).flags.writeable
        opt.apply_gradients([(ROUND_TRIPS[how](grads[0]), w)])
        state = ROUND_TRIPS[how](opt.get_state())
        restored = dd.optimizers.Adam(0.01)
        twin = ROUND_TRIPS[how](w)
        restored.set_state(state, [twin])
        opt.apply_gradients([(grads[0], w)])
        restored.apply_gradients([(grads[0], twin)])
        _identical(twin, w, "a step after restoring a copied state")


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_tensor_from_a_pool_worker_is_a_plain_value_in_the_parent(start_method):
    out = run_scenario("across_processes", "scenario_worker_results_in_parent_transformations",
                       start_method)
    assert out.strip() == "ok"
