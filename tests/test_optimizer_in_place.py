"""The optimizers' in-place steps on array Variables (Optimizer._array_step and
_core.commit_in_place): a step overwrites a Variable's array only when the Variable is that
array's sole owner, else the Variable gets a new array (copy-on-write); the optimizer's own
slots are updated in place; the bits are those of the general path; steps stay atomic; threads
never see a half-written array."""
import threading

import numpy as np
import pytest

import dualad as dd
import dualad.optimizer_base as optimizer_base
import dualad.optimizers as optimizers
from dualad import _core
from dualad.optimizers import SGD, Adagrad, Adam, RMSprop
from helpers import interrupt_at_every_line

CONFIGS = [
    (SGD, {}), (SGD, {"momentum": 0.9}), (SGD, {"momentum": 0.37, "nesterov": True}),
    (Adam, {}), (Adam, {"amsgrad": True}),
    (RMSprop, {}), (RMSprop, {"momentum": 0.3}), (RMSprop, {"centered": True}),
    (RMSprop, {"rho": 0.6, "momentum": 0.8, "epsilon": 1e-3, "centered": True}),
    (Adagrad, {}),
]
CONFIG_IDS = [f"{cls.__name__}{hyper}" for cls, hyper in CONFIGS]


def address(value):
    """Where an array's (or an array Variable's) data lives."""
    return np.asarray(value).__array_interface__["data"][0]


def slot_addresses(optimizer, var):
    return {name: address(slot) for name, slot in optimizer._slots[var].items()}


def bits(value):
    value = np.asarray(value)
    return np.where(np.isnan(value), np.nan, value).astype(value.dtype).tobytes()


def started(cls, hyper, dtype=np.float32, shape=(3, 4), seed=0):
    """An optimizer and two array Variables after one step (which makes the slots)."""
    rng = np.random.default_rng(seed)
    variables = [dd.Variable(rng.normal(size=shape).astype(dtype), name="w"),
                 dd.Variable(rng.normal(size=shape[-1]).astype(dtype), name="b")]
    optimizer = cls(learning_rate=0.1, **hyper)
    optimizer.apply_gradients([(np.ones(v.shape, dtype), v) for v in variables])
    return optimizer, variables


def gradients(variables, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=v.shape).astype(v.dtype.np) for v in variables]


# ---- the in-place path is taken when it is safe ---------------------------------------------

@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
def test_a_step_writes_into_the_variables_and_slots_own_arrays(cls, hyper):
    optimizer, variables = started(cls, hyper)
    before = [address(v) for v in variables]
    slots_before = [slot_addresses(optimizer, v) for v in variables]
    old_values = [np.array(v) for v in variables]
    for seed in range(3):
        optimizer.apply_gradients(list(zip(gradients(variables, seed), variables)))
    assert [address(v) for v in variables] == before
    assert [slot_addresses(optimizer, v) for v in variables] == slots_before
    assert all(not np.array_equal(np.asarray(v), old) for v, old in zip(variables, old_values))
    assert not np.asarray(variables[0]).flags.writeable  # still an immutable Tensor value


def test_a_step_allocates_no_array_once_warm():
    optimizer, variables = started(Adam, {}, shape=(256, 256))
    optimizer.apply_gradients(list(zip(gradients(variables, 1), variables)))
    grads = list(zip(gradients(variables, 2), variables))
    import tracemalloc
    tracemalloc.start()
    try:
        for _ in range(5):
            optimizer.apply_gradients(grads)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 256 * 4 // 4  # not even a quarter of one variable's array


# ---- whoever holds the old array keeps the old value ------------------------------------------

def _held_read_value(v):
    return v.read_value()


def _held_identity(v):
    return dd.identity(v)


def _held_numpy_view(v):
    return np.asarray(v)


def _held_numpy_copy(v):
    return v.numpy()


def _held_memoryview(v):
    return memoryview(np.asarray(v))


def _held_other_variable(v):
    return dd.Variable(v)


HOLDERS = [_held_read_value, _held_identity, _held_numpy_view, _held_numpy_copy,
           _held_memoryview, _held_other_variable]


@pytest.mark.parametrize("hold", HOLDERS, ids=lambda f: f.__name__[6:])
@pytest.mark.parametrize("cls, hyper", CONFIGS[:4], ids=CONFIG_IDS[:4])
def test_a_value_held_before_a_step_keeps_its_old_value(cls, hyper, hold):
    optimizer, variables = started(cls, hyper)
    old = np.array(variables[0])
    held = hold(variables[0])
    optimizer.apply_gradients(list(zip(gradients(variables, 1), variables)))
    assert not np.array_equal(np.asarray(variables[0]), old)
    np.testing.assert_array_equal(np.asarray(held), old)
    # and the next step, the old array still held, leaves it alone too
    optimizer.apply_gradients(list(zip(gradients(variables, 2), variables)))
    np.testing.assert_array_equal(np.asarray(held), old)


def test_a_read_recorded_on_a_live_persistent_tape_keeps_its_value():
    optimizer, (w, b) = started(SGD, {"momentum": 0.5}, dtype=np.float64)
    old_w = np.array(w)
    with dd.GradientTape(persistent=True) as tape:
        loss = dd.reduce_sum(w * w)
    optimizer.apply_gradients([(np.ones(w.shape), w), (np.ones(b.shape), b)])
    assert not np.array_equal(np.asarray(w), old_w)
    # the gradient reads the value the tape recorded: 2 * the old w
    np.testing.assert_array_equal(np.asarray(tape.gradient(loss, w)), 2 * old_w)


def test_a_tensor_the_variable_was_assigned_from_keeps_its_value():
    optimizer, (w, b) = started(SGD, {})
    user_tensor = dd.constant(np.full(w.shape, 7.0, np.float32))
    w.assign(user_tensor)
    optimizer.apply_gradients([(np.ones(w.shape, np.float32), w), (np.ones(4, np.float32), b)])
    np.testing.assert_array_equal(np.asarray(user_tensor), 7.0)
    np.testing.assert_array_equal(np.asarray(w), np.float32(7.0) - np.float32(0.1))


def test_a_view_of_another_tensor_is_never_written():
    # After assign(base[:4]) the Variable's array is the only reference to that view, but its
    # memory is base's: writing it would change `base`.
    base = dd.constant(np.arange(8.0))
    v = dd.Variable(np.zeros(4))
    optimizer = SGD(1.0)
    optimizer.apply_gradients([(np.ones(4), v)])
    v.assign(base[:4])
    optimizer.apply_gradients([(np.ones(4), v)])
    np.testing.assert_array_equal(np.asarray(base), np.arange(8.0))
    np.testing.assert_array_equal(np.asarray(v), np.arange(4.0) - 1)


def test_the_adopted_buffer_is_never_written_again_by_the_optimizer():
    optimizer, (w, b) = started(SGD, {})
    held = w.read_value()  # the step cannot write w's array: w adopts the new value's buffer
    optimizer.apply_gradients([(np.ones(w.shape, np.float32), w), (np.ones(4, np.float32), b)])
    adopted = w.read_value()
    value = np.array(adopted)
    optimizer.apply_gradients([(np.ones(w.shape, np.float32), w), (np.ones(4, np.float32), b)])
    np.testing.assert_array_equal(np.asarray(adopted), value)
    del held


# ---- the same bits as the general path ---------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
def test_in_place_steps_give_the_bits_of_the_general_path(cls, hyper, dtype):
    class GeneralPath(cls):  # its own _update: the in-place rule is not used for it
        def _update(self, *args):
            return super()._update(*args)

    runs = []
    for kind in (cls, GeneralPath):
        optimizer, variables = started(kind, hyper, dtype=dtype, seed=3)
        for seed in range(6):
            grads = gradients(variables, seed)
            if seed == 4:  # special values, which must propagate the same way
                grads[0].flat[:5] = [np.inf, -np.inf, np.nan, 0.0, 3e38]
            optimizer.apply_gradients(list(zip(grads, variables)))
        runs.append(([bits(v) for v in variables],
                     [bits(optimizer.get_slot(v, name)) for v in variables
                      for name in optimizer.get_slot_names()], optimizer.iterations))
    assert runs[0] == runs[1]


def test_a_subclass_replacing_the_rule_gets_its_own_rule():
    class Halving(SGD):
        def _update(self, w, g, lr, slots, step):
            return w / 2

    v = dd.Variable(np.full(3, 8.0))
    optimizer = Halving(0.1)
    for _ in range(2):
        optimizer.apply_gradients([(np.ones(3), v)])
    np.testing.assert_array_equal(np.asarray(v), 2.0)


# ---- atomic steps, threads -------------------------------------------------------------------

def state_of(optimizer, variables):
    return ([bits(v) for v in variables],
            [bits(optimizer.get_slot(v, name)) for v in optimizer.tracked_variables
             for name in optimizer.get_slot_names()], optimizer.iterations)


@pytest.mark.parametrize("cls, hyper", CONFIGS[2::3], ids=CONFIG_IDS[2::3])
def test_a_keyboard_interrupt_at_any_line_of_an_in_place_step_leaves_it_all_or_nothing(cls, hyper):
    def step(optimizer, variables):
        optimizer.apply_gradients([(np.full(v.shape, 2.0, np.float32), v) for v in variables])

    fire_at = interrupt_at_every_line(lambda: started(cls, hyper), step, state_of,
                                      (optimizers.__file__, optimizer_base.__file__))
    assert fire_at > 20  # the interrupt was tried at every line of the step


def test_a_step_interrupted_after_computing_leaves_nothing_changed_and_the_next_one_works(
        monkeypatch):
    optimizer, variables = started(Adam, {})
    reference, reference_vars = started(Adam, {})
    grads = [(np.full(v.shape, 2.0, np.float32), v) for v in variables]
    before = state_of(optimizer, variables)
    real_rule = Adam._update_into
    calls = []

    def interrupted(self, *args):
        real_rule(self, *args)
        calls.append(1)
        if len(calls) == 2:  # the second variable's update is computed, nothing committed
            raise KeyboardInterrupt("interrupted after the second update")

    monkeypatch.setattr(Adam, "_update_into", interrupted)
    with pytest.raises(KeyboardInterrupt, match="after the second update") as kept:  # its traceback holds the buffers
        optimizer.apply_gradients(grads)
    assert state_of(optimizer, variables) == before
    monkeypatch.undo()
    optimizer.apply_gradients(grads)
    reference.apply_gradients([(np.full(v.shape, 2.0, np.float32), v) for v in reference_vars])
    assert state_of(optimizer, variables) == state_of(reference, reference_vars)
    assert kept.traceback  # (alive until here)


def test_threads_stepping_two_optimizers_over_one_variable_never_see_a_torn_value():
    # Every element of w is equal and every gradient is uniform, so every value w ever holds
    # has all elements equal: a mix of an old and a new value would not.
    n = 1 << 18  # big enough that numpy releases the GIL in its loops
    w = dd.Variable(np.zeros(n, np.float32), name="w")
    grads = [np.full(n, 1.0, np.float32), np.full(n, -0.5, np.float32)]
    optimizers_ = [SGD(0.01, momentum=0.5), Adam(0.01)]
    torn = []

    def work(optimizer, grad):
        for _ in range(60):
            optimizer.apply_gradients([(grad, w)])
            value = np.asarray(w)
            if value.min() != value.max():
                torn.append(value.copy())

    def read():
        for _ in range(300):
            value = np.asarray(w)
            if value.min() != value.max():
                torn.append(value.copy())

    threads = [threading.Thread(target=work, args=(o, g)) for o, g in zip(optimizers_, grads)]
    threads.append(threading.Thread(target=read))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not torn
    assert [o.iterations for o in optimizers_] == [60, 60]


# ---- commit_in_place refuses what it cannot commit safely --------------------------------------

def _target_variable():
    v = dd.Variable(np.zeros(3))
    return v, [np.ones(3)]


NOT_ITS_BUFFER = "is not a C-contiguous array of its dtype and shape"


@pytest.mark.parametrize("make, error, match", [
    (lambda v, bufs: [(v, bufs)], TypeError, r"a \(Variable, list, index\) tuple"),
    (lambda v, bufs: [(v, tuple(bufs), 0)], TypeError, r"a \(Variable, list, index\) tuple"),
    (lambda v, bufs: [(v, bufs, 1)], IndexError, "index 1 out of range"),
    (lambda v, bufs: [(v, bufs, -1)], IndexError, "index -1 out of range"),
    (lambda v, bufs: [(v, [np.ones(4)], 0)], ValueError, NOT_ITS_BUFFER),
    (lambda v, bufs: [(v, [np.ones(3, np.float32)], 0)], ValueError, NOT_ITS_BUFFER),
    (lambda v, bufs: [(v, [np.ones(6)[::2]], 0)], ValueError, NOT_ITS_BUFFER),
    (lambda v, bufs: [(v, bufs, 0), (v, bufs, 0)], ValueError, "two targets name the same buffer"),
    (lambda v, bufs: [(dd.Variable(1.0), [np.ones(())], 0)], TypeError, "is a scalar"),
])
def test_commit_in_place_checks_every_target_before_writing(make, error, match):
    v, buffers = _target_variable()
    steps = _core.state_variable(np.float64(0), "iterations")
    with pytest.raises(error, match=match):
        _core.commit_in_place([(v, [np.full(3, 5.0)], 0)] + make(v, buffers), steps)
    np.testing.assert_array_equal(np.asarray(v), 0.0)
    assert float(steps) == 0.0


def test_commit_in_place_refuses_a_buffer_someone_else_holds():
    v, buffers = _target_variable()
    held = buffers[0]
    steps = _core.state_variable(np.float64(0), "iterations")
    with pytest.raises(ValueError, match="referenced elsewhere"):
        _core.commit_in_place([(v, buffers, 0)], steps)
    del held
    assert _core.commit_in_place([(v, buffers, 0)], steps) == 1
    np.testing.assert_array_equal(np.asarray(v), 1.0)
    assert float(steps) == 1.0


def test_a_variable_holding_a_strided_view_gets_a_new_array():
    # (the transposed view is its only reference, but not C-contiguous: never overwritten)
    base = dd.constant(np.arange(6.0).reshape(2, 3))
    v = dd.Variable(np.zeros((3, 2)))
    optimizer = Adam(0.1)
    optimizer.apply_gradients([(np.ones((3, 2)), v)])
    expected = Adam(0.1)
    reference = dd.Variable(np.zeros((3, 2)))
    expected.apply_gradients([(np.ones((3, 2)), reference)])
    v.assign(dd.transpose(base))
    reference.assign(np.arange(6.0).reshape(2, 3).T.copy())
    for _ in range(2):
        optimizer.apply_gradients([(np.ones((3, 2)), v)])
        expected.apply_gradients([(np.ones((3, 2)), reference)])
    np.testing.assert_array_equal(np.asarray(base), np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(np.asarray(v), np.asarray(reference))


# ---- SGD without momentum: the commit computes w - lr·g itself ----------------------------------

def _descent_target(v, g, lr):
    return [(v, [np.empty(v.shape, v.dtype.np)], 0, g, lr)]


@pytest.mark.parametrize("make, error, match", [
    (lambda v: _descent_target(v, np.ones(3), 0.5), TypeError, "learning rate of its dtype"),
    (lambda v: _descent_target(v, np.ones(3), np.float32(0.5)), TypeError,
     "learning rate of its dtype"),
    (lambda v: _descent_target(v, np.ones(3, np.float32), np.float64(0.5)), ValueError,
     "gradient for Variable .* is not a C-contiguous array"),
    (lambda v: _descent_target(v, np.ones(4), np.float64(0.5)), ValueError,
     "gradient for Variable .* is not a C-contiguous array"),
    (lambda v: _descent_target(v, np.ones(6)[::2], np.float64(0.5)), ValueError,
     "gradient for Variable .* is not a C-contiguous array"),
    (lambda v: _descent_target(v, [1.0, 1.0, 1.0], np.float64(0.5)), ValueError,
     "gradient for Variable .* is not a C-contiguous array"),
    (lambda v: [(v, [np.empty(3)], 0, np.ones(3))], TypeError, r"\(Variable, list, index\) tuple"),
])
def test_commit_in_place_checks_a_descent_target_before_writing(make, error, match):
    v, _ = _target_variable()
    steps = _core.state_variable(np.float64(0), "iterations")
    with pytest.raises(error, match=match):
        _core.commit_in_place([(v, [np.full(3, 5.0)], 0)] + make(v), steps)
    np.testing.assert_array_equal(np.asarray(v), 0.0)
    assert float(steps) == 0.0


def test_commit_in_place_refuses_a_gradient_overlapping_the_variables_array():
    base = dd.constant(np.arange(8.0))
    v = dd.Variable(np.zeros(4))
    v.assign(base[0:4])                 # v holds a view of base's array
    g = np.asarray(base)[1:5]           # one element further on: partly the same memory
    assert np.shares_memory(np.asarray(v), g)
    steps = _core.state_variable(np.float64(0), "iterations")
    with pytest.raises(ValueError, match="overlaps its array"):
        _core.commit_in_place(_descent_target(v, g, np.float64(0.5)), steps)
    np.testing.assert_array_equal(np.asarray(v), [0.0, 1.0, 2.0, 3.0])
    assert float(steps) == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_commit_in_place_descent_writes_a_sole_owner_in_place_else_the_adopted_buffer(dtype):
    rng = np.random.default_rng(5)
    w0 = rng.normal(size=(4, 5)).astype(dtype)
    g = rng.normal(size=(4, 5)).astype(dtype)
    lr = dtype(0.3)
    expected = np.subtract(w0, np.multiply(g, lr))
    steps = _core.state_variable(np.float64(0), "iterations")
    v = dd.Variable(w0)
    where = address(v)
    buffers = [np.empty((4, 5), dtype)]
    assert _core.commit_in_place([(v, buffers, 0, g, lr)], steps) == 1
    assert address(v) == where and buffers[0] is not None
    assert bits(v) == bits(expected)
    held = v.read_value()                # now the array has a second owner
    assert _core.commit_in_place([(v, buffers, 0, g, lr)], steps) == 0
    assert buffers[0] is None and address(v) != where
    assert bits(held) == bits(expected)
    assert bits(v) == bits(np.subtract(expected, np.multiply(g, lr)))
    assert not np.asarray(v).flags.writeable
    assert float(steps) == 2.0


def _general_sgd():
    class GeneralPath(SGD):  # its own _update: the in-place rule is not used for it
        def _update(self, *args):
            return super()._update(*args)
    return GeneralPath


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_steps_give_the_bits_of_the_general_path_across_magnitudes(dtype):
    # values from subnormal to near overflow, signs and special values, with learning rates
    # whose products round (the commit's one pass against the general path's numpy ops)
    rng = np.random.default_rng(11)
    info = np.finfo(dtype)
    shape = (7, 9)
    exponents = rng.uniform(np.log2(float(info.smallest_subnormal)), np.log2(float(info.max)) - 1,
                            size=(2,) + shape)
    w0, g0 = (np.exp2(exponents) * rng.choice([-1.0, 1.0], size=(2,) + shape)).astype(dtype)
    w0.flat[:3] = [np.inf, -np.inf, np.nan]
    g0.flat[3:8] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    for lr in (0.1, 1e-3, 3.0, 0.0):
        runs = []
        for kind in (SGD, _general_sgd()):
            v = dd.Variable(w0)
            optimizer = kind(learning_rate=lr)
            for k in range(3):
                optimizer.apply_gradients([(g0 * dtype(k + 1), v)])
            runs.append(bits(v))
        assert runs[0] == runs[1], lr


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_with_a_strided_gradient_or_a_held_value_gives_the_same_bits(dtype):
    rng = np.random.default_rng(2)
    w0 = rng.normal(size=(3, 4)).astype(dtype)
    grads = [rng.normal(size=(4, 3)).astype(dtype).T for _ in range(3)]  # not C-contiguous
    grads[1] = np.ascontiguousarray(grads[1])
    results = []
    for kind in (SGD, _general_sgd()):
        v = dd.Variable(w0)
        optimizer = kind(learning_rate=0.25)
        held = []
        for g in grads:
            optimizer.apply_gradients([(g, v)])
            held.append((v.read_value(), np.array(v)))   # a holder each step: copy-on-write
        assert all(bits(h) == bits(copy) for h, copy in held)
        results.append([bits(copy) for _, copy in held])
    assert results[0] == results[1]


def test_a_sgd_step_on_a_watched_variable_under_a_tape_and_a_function():
    v = dd.Variable(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    optimizer = SGD(learning_rate=0.5)
    g = np.ones((2, 3), np.float32)
    optimizer.apply_gradients([(g, v)])
    with dd.GradientTape(persistent=True) as tape:
        y = dd.reduce_sum(v * v)
        optimizer.apply_gradients([(g, v)])           # not recorded; the read keeps its value
        z = dd.reduce_sum(v * v)
    expected_before = np.arange(6.0, dtype=np.float32).reshape(2, 3) - np.float32(0.5)
    np.testing.assert_array_equal(tape.gradient(y, v), 2 * expected_before)
    np.testing.assert_array_equal(tape.gradient(z, v), 2 * (expected_before - np.float32(0.5)))

    @dd.function
    def step():
        optimizer.apply_gradients([(dd.constant(g), v)])
    step()
    step()
    np.testing.assert_array_equal(np.asarray(v), expected_before - np.float32(1.5))


def test_threads_stepping_plain_sgd_over_one_variable_never_see_a_torn_value():
    # (the commit's own descent pass, in place, against a reader and a second optimizer)
    n = 1 << 18
    w = dd.Variable(np.zeros(n, np.float32), name="w")
    grads = [np.full(n, 1.0, np.float32), np.full(n, -0.5, np.float32)]
    optimizers_ = [SGD(0.01), SGD(0.03)]
    torn = []

    def work(optimizer, grad):
        for _ in range(60):
            optimizer.apply_gradients([(grad, w)])
            value = np.asarray(w)
            if value.min() != value.max():
                torn.append(value.copy())

    def read():
        for _ in range(300):
            value = np.asarray(w)
            if value.min() != value.max():
                torn.append(value.copy())

    threads = [threading.Thread(target=work, args=(o, g)) for o, g in zip(optimizers_, grads)]
    threads.append(threading.Thread(target=read))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not torn
    assert [o.iterations for o in optimizers_] == [60, 60]


def test_plain_sgd_on_a_variable_holding_a_strided_view_gives_the_right_values():
    base = dd.constant(np.arange(6.0).reshape(2, 3))
    v = dd.Variable(np.zeros((3, 2)))
    optimizer = SGD(0.5)
    optimizer.apply_gradients([(np.ones((3, 2)), v)])
    v.assign(dd.transpose(base))                     # a strided view of base's array
    expected = np.arange(6.0).reshape(2, 3).T.copy()
    g = np.arange(6.0).reshape(3, 2)
    for _ in range(2):
        optimizer.apply_gradients([(g, v)])
        expected = expected - g * 0.5
        np.testing.assert_array_equal(np.asarray(v), expected)
    np.testing.assert_array_equal(np.asarray(base), np.arange(6.0).reshape(2, 3))


def test_commit_in_place_refuses_a_descent_on_a_strided_value():
    base = dd.constant(np.arange(6.0).reshape(2, 3))
    v = dd.Variable(np.zeros((3, 2)))
    v.assign(dd.transpose(base))
    steps = _core.state_variable(np.float64(0), "iterations")
    with pytest.raises(ValueError, match="needs its value C-contiguous"):
        _core.commit_in_place(_descent_target(v, np.ones((3, 2)), np.float64(0.5)), steps)
    np.testing.assert_array_equal(np.asarray(v), np.arange(6.0).reshape(2, 3).T)
    assert float(steps) == 0.0
