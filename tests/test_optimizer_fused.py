"""The slot-keeping optimizers' fused steps (Optimizer._fused_rule, commit_in_place's fused
targets): one C pass per array Variable writes its new value and slots, in place where each
Variable is its array's sole owner, with the bits of the numpy formulation (`_update_into`)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import dualad as dd
from dualad import _core
from dualad.optimizers import SGD, Adagrad, Adam, RMSprop, schedules

CONFIGS = [
    (SGD, {"momentum": 0.9}), (SGD, {"momentum": 0.37, "nesterov": True}),
    (Adam, {}), (Adam, {"beta_1": 0.5, "beta_2": 0.75, "epsilon": 1e-3}),
    (Adam, {"amsgrad": True}),
    (RMSprop, {}), (RMSprop, {"momentum": 0.3}), (RMSprop, {"centered": True}),
    (RMSprop, {"rho": 0.6, "momentum": 0.8, "epsilon": 1e-3, "centered": True}),
    (Adagrad, {}), (Adagrad, {"initial_accumulator_value": 0.0, "epsilon": 0.0}),
]
CONFIG_IDS = [f"{cls.__name__}{hyper}" for cls, hyper in CONFIGS]
DTYPES = [np.float32, np.float64]


def bits(value):
    # the bytes, every NaN as one NaN: where both operands of an addition are NaN, numpy
    # itself keeps either payload depending on the array's length (see _kernels.pxi)
    value = np.asarray(value)
    return np.where(np.isnan(value), np.nan, value).astype(value.dtype).tobytes()


def numpy_path(cls):
    """cls with its own _update_into (the same numpy code): never fused by the commit."""
    class NumpyPath(cls):
        def _update_into(self, *args):
            return cls._update_into(self, *args)
    return NumpyPath


def special_values(dtype, size, rng):
    info = np.finfo(dtype)
    pool = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, info.max, -info.max, info.tiny,
                     info.tiny / 4, -info.smallest_subnormal, 1.0, -1.0, 1e-30, 3e38], dtype)
    return rng.choice(pool, size=size)


def run(cls, hyper, dtype, gradients, w0, lr=0.05):
    """The values and slots after applying `gradients` in turn (one Variable)."""
    w = dd.Variable(w0.copy(), name="w")
    optimizer = cls(learning_rate=lr, **hyper)
    for g in gradients:
        optimizer.apply_gradients([(g, w)])
    return bits(w), [bits(optimizer.get_slot(w, name)) for name in optimizer.get_slot_names()]


class FusedSpy:
    """Counts the fused targets commit_in_place receives."""
    def __init__(self, monkeypatch):
        self.fused = 0
        real = _core.commit_in_place

        def spy(targets, steps):
            self.fused += sum(len(target) == 6 for target in targets)
            return real(targets, steps)
        monkeypatch.setattr(_core, "commit_in_place", spy)


# ---- the bits of the numpy formulation ---------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
def test_fused_steps_give_the_bits_of_numpy_across_magnitudes(cls, hyper, dtype, monkeypatch):
    rng = np.random.default_rng(7)
    shape = (37, 5)  # (not a multiple of any vector width: the loops' tails too)
    scales = [1.0, 1e-3, 1e3, 1e-20, 1e20, 1e-38, 1e38]
    with np.errstate(over="ignore"):  # (float32 overflows to inf)
        gradients = [(rng.normal(size=shape) * rng.choice(scales, size=shape)).astype(dtype)
                     for _ in range(12)]
        w0 = (rng.normal(size=shape) * rng.choice(scales, size=shape)).astype(dtype)
    gradients[3][:] = 0.0
    gradients[5].flat[::7] = special_values(dtype, gradients[5].flat[::7].size, rng)
    gradients[9].flat[::3] = special_values(dtype, gradients[9].flat[::3].size, rng)
    w0.flat[::11] = special_values(dtype, w0.flat[::11].size, rng)
    spy = FusedSpy(monkeypatch)
    fused = run(cls, hyper, dtype, gradients, w0)
    assert spy.fused == len(gradients) - 1  # (the first step makes the slots)
    assert fused == run(numpy_path(cls), hyper, dtype, gradients, w0)
    assert spy.fused == len(gradients) - 1


@settings(max_examples=40, deadline=None)
@given(config=st.sampled_from(CONFIGS), dtype=st.sampled_from(DTYPES),
       size=st.integers(1, 40), seed=st.integers(0, 2 ** 32 - 1),
       lr=st.sampled_from([0.0, 1e-3, 0.5, 7.0]))
def test_fused_steps_give_the_bits_of_numpy_for_drawn_values(config, dtype, size, seed, lr):
    cls, hyper = config
    rng = np.random.default_rng(seed)
    def draw():
        with np.errstate(over="ignore"):  # (float32 overflows to inf)
            return np.where(rng.random(size) < 0.2, special_values(dtype, size, rng),
                            rng.normal(size=size) * 10.0 ** rng.integers(-40, 40, size)
                            ).astype(dtype)
    gradients = [draw() for _ in range(5)]
    w0 = draw()
    assert (run(cls, hyper, dtype, gradients, w0, lr)
            == run(numpy_path(cls), hyper, dtype, gradients, w0, lr))


@pytest.mark.parametrize("cls, hyper", [CONFIGS[2], CONFIGS[6], CONFIGS[9]],
                         ids=[CONFIG_IDS[2], CONFIG_IDS[6], CONFIG_IDS[9]])
def test_a_learning_rate_schedule_gives_the_bits_of_numpy(cls, hyper, monkeypatch):
    rng = np.random.default_rng(1)
    gradients = [rng.normal(size=(6, 3)).astype(np.float32) for _ in range(8)]
    w0 = rng.normal(size=(6, 3)).astype(np.float32)
    schedule = schedules.ExponentialDecay(0.3, decay_steps=2, decay_rate=0.5)
    spy = FusedSpy(monkeypatch)
    fused = run(cls, hyper, np.float32, gradients, w0, lr=schedule)
    assert spy.fused == len(gradients) - 1
    assert fused == run(numpy_path(cls), hyper, np.float32, gradients, w0, lr=schedule)


@pytest.mark.parametrize("dtype", DTYPES)
def test_several_variables_of_both_dtypes_in_one_step(dtype, monkeypatch):
    rng = np.random.default_rng(2)
    shapes = [(4, 3), (3,), (2, 2, 2)]

    def state(cls):
        variables = [dd.Variable(rng_values(s, dtype, 0), name=f"v{i}")
                     for i, s in enumerate(shapes)]
        variables.append(dd.Variable(rng_values((5,), np.float64, 9), name="d"))
        optimizer = cls(0.01, amsgrad=True)
        for step in range(4):
            optimizer.apply_gradients([(rng_values(v.shape, v.dtype.np, step + 1), v)
                                       for v in variables])
        return ([bits(v) for v in variables],
                [bits(optimizer.get_slot(v, n)) for v in variables
                 for n in optimizer.get_slot_names()])

    spy = FusedSpy(monkeypatch)
    assert state(Adam) == state(numpy_path(Adam))
    assert spy.fused == 3 * len(shapes) + 3


def rng_values(shape, dtype, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


# ---- in place only when safe -------------------------------------------------------------------

def address(value):
    return np.asarray(value).__array_interface__["data"][0]


def started(cls, hyper, dtype=np.float32):
    w = dd.Variable(rng_values((5, 4), dtype, 0), name="w")
    optimizer = cls(0.1, **hyper)
    optimizer.apply_gradients([(rng_values((5, 4), dtype, 1), w)])
    optimizer.apply_gradients([(rng_values((5, 4), dtype, 2), w)])  # (a buffer adopted: new)
    return optimizer, w


def reference_after(cls, hyper, held_step):
    """The value and slots after three steps, by the numpy path."""
    optimizer, w = started(numpy_path(cls), hyper)
    optimizer.apply_gradients([(rng_values((5, 4), np.float32, held_step), w)])
    return bits(w), [bits(optimizer.get_slot(w, n)) for n in optimizer.get_slot_names()]


HOLDERS = {
    "tensor": lambda w, slot: dd.identity(w),
    "numpy view": lambda w, slot: np.asarray(w)[1:],
    "memoryview": lambda w, slot: memoryview(np.asarray(w)),
    "read_value": lambda w, slot: w.read_value(),
    "second variable": lambda w, slot: dd.Variable(w),
    "slot view": lambda w, slot: np.asarray(slot)[:2],
}


@pytest.mark.parametrize("holder", sorted(HOLDERS))
@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
def test_a_held_value_or_slot_keeps_its_value_and_the_rest_is_written_in_place(cls, hyper,
                                                                             holder):
    optimizer, w = started(cls, hyper)
    slot = optimizer._slots[w][optimizer.get_slot_names()[0]]
    before = {"w": address(w), **{n: address(s) for n, s in optimizer._slots[w].items()}}
    held = HOLDERS[holder](w, slot)
    held_copy = np.array(held, copy=True)
    optimizer.apply_gradients([(rng_values((5, 4), np.float32, 3), w)])
    np.testing.assert_array_equal(np.asarray(held), held_copy)  # never written
    after = {"w": address(w), **{n: address(s) for n, s in optimizer._slots[w].items()}}
    copied = {name for name in before if before[name] != after[name]}
    if holder == "slot view":
        assert copied == {optimizer.get_slot_names()[0]}
    elif holder == "memoryview" or holder == "numpy view":
        assert copied == {"w"}
    else:
        assert copied <= {"w"}  # (dd.identity may return w's own array: then a copy too)
    assert (bits(w), [bits(optimizer.get_slot(w, n)) for n in optimizer.get_slot_names()]) \
        == reference_after(cls, hyper, 3)


def test_a_read_recorded_on_a_persistent_tape_keeps_its_value():
    optimizer, w = started(Adam, {})
    old = np.array(w)
    with dd.GradientTape(persistent=True) as tape:
        loss = dd.reduce_sum(w * w)
    optimizer.apply_gradients([(rng_values((5, 4), np.float32, 3), w)])
    np.testing.assert_array_equal(np.asarray(tape.gradient(loss, w)), 2 * old)
    assert bits(w) == reference_after(Adam, {}, 3)[0]


def test_a_step_allocates_no_array_once_warm():
    optimizer, w = started(Adam, {"amsgrad": True})
    optimizer.apply_gradients([(rng_values((5, 4), np.float32, 3), w)])  # buffers settle
    addresses = [address(w)] + [address(s) for s in optimizer._slots[w].values()]
    buffers = [id(b) for b in optimizer._buffers[w]]
    for step in range(4, 8):
        optimizer.apply_gradients([(rng_values((5, 4), np.float32, step), w)])
    assert addresses == [address(w)] + [address(s) for s in optimizer._slots[w].values()]
    assert buffers == [id(b) for b in optimizer._buffers[w]]


@pytest.mark.parametrize("cls, hyper", CONFIGS[::2], ids=CONFIG_IDS[::2])
def test_a_patched_update_into_is_used_instead_of_the_fused_rule(cls, hyper, monkeypatch):
    optimizer, w = started(cls, hyper)
    calls = []
    real = cls._update_into

    def counted(self, *args):
        calls.append(1)
        return real(self, *args)
    monkeypatch.setattr(cls, "_update_into", counted)
    spy = FusedSpy(monkeypatch)
    optimizer.apply_gradients([(rng_values((5, 4), np.float32, 3), w)])
    assert calls == [1] and spy.fused == 0
    assert bits(w) == reference_after(cls, hyper, 3)[0]


def test_a_strided_gradient_or_value_takes_the_numpy_path_with_the_same_bits(monkeypatch):
    base = rng_values((5, 8), np.float32, 3)
    optimizer, w = started(Adam, {})
    spy = FusedSpy(monkeypatch)
    optimizer.apply_gradients([(base[:, ::2], w)])
    assert spy.fused == 0
    reference, rw = started(numpy_path(Adam), {})
    reference.apply_gradients([(np.ascontiguousarray(base[:, ::2]), rw)])
    assert bits(w) == bits(rw)


# ---- state round trip --------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
def test_set_state_then_fused_steps_continue_bit_for_bit(cls, hyper, order):
    optimizer, w = started(cls, hyper)
    state = optimizer.get_state()
    state["slots"] = [{k: np.asarray(v, order=order) for k, v in s.items()}
                      for s in state["slots"]]
    restored = cls.from_config(optimizer.get_config())
    twin = dd.Variable(np.array(w), name="w")
    restored.set_state(state, [twin])
    for step in range(3, 6):
        g = rng_values((5, 4), np.float32, step)
        optimizer.apply_gradients([(g, w)])
        restored.apply_gradients([(g, twin)])
    assert bits(w) == bits(twin)
    assert ([bits(optimizer.get_slot(w, n)) for n in optimizer.get_slot_names()]
            == [bits(restored.get_slot(twin, n)) for n in restored.get_slot_names()])


# ---- commit_in_place's checks of a fused target ------------------------------------------------

def fused_target(**change):
    w = dd.Variable(np.zeros(3))
    slot = _core.state_variable(np.zeros(3), "momentum")
    parts = {"var": w, "buffers": [np.ones(3), np.ones(3), None], "g": np.ones(3),
             "rule": (_core.FUSED_RULES["SGD_MOMENTUM"], 0.5, 0.9), "slots": (slot,)}
    parts.update(change)
    return w, slot, [(parts["var"], parts["buffers"], 0, parts["g"], parts["rule"],
                      parts["slots"])]


@pytest.mark.parametrize("change, error, match", [
    ({"rule": (0, 0.5, 0.9)}, TypeError, "rule code"),
    ({"rule": (_core.FUSED_RULES["SGD_MOMENTUM"], 1, 0.9)}, TypeError, "rule code"),
    ({"rule": [_core.FUSED_RULES["SGD_MOMENTUM"], 0.5, 0.9]}, TypeError, "rule code"),
    ({"slots": ()}, TypeError, "1 slot Variables"),
    ({"slots": (np.zeros(3),)}, TypeError, "not an array Variable"),
    ({"slots": (dd.Variable(np.zeros(4)),)}, ValueError, "a slot of Variable"),
    ({"slots": (dd.Variable(np.zeros(6))[::2],)}, TypeError, "not an array Variable"),
    ({"buffers": [np.ones(3)]}, IndexError, "no buffers for the slots"),
    ({"buffers": [np.ones(3), np.ones(4), None]}, ValueError, "not a C-contiguous"),
    ({"g": np.ones(4)}, ValueError, "gradient .* is not a C-contiguous"),
    ({"g": np.ones(3, np.float32)}, ValueError, "gradient .* is not a C-contiguous"),
])
def test_commit_in_place_checks_a_fused_target_before_writing(change, error, match):
    w, slot, targets = fused_target(**change)
    steps = _core.state_variable(np.float64(0), "iterations")
    with pytest.raises(error, match=match):
        _core.commit_in_place(targets, steps)
    np.testing.assert_array_equal(np.asarray(w), 0.0)
    np.testing.assert_array_equal(np.asarray(slot), 0.0)
    assert float(steps) == 0.0


def test_commit_in_place_refuses_a_slot_that_is_the_variable_or_a_shared_buffer():
    w, slot, targets = fused_target()
    steps = _core.state_variable(np.float64(0), "iterations")
    with pytest.raises(ValueError, match="not distinct"):
        _core.commit_in_place([targets[0][:5] + ((w,),)], steps)
    buffers = targets[0][1]
    buffers[1] = buffers[0]
    with pytest.raises(ValueError, match="referenced elsewhere|same buffer"):
        _core.commit_in_place(targets, steps)
    assert float(steps) == 0.0


def test_commit_in_place_fused_writes_sole_owners_in_place_and_adopts_the_rest():
    w, slot, targets = fused_target()
    held = np.asarray(w)  # w's array is held: the value goes into the buffer, adopted
    w_address, slot_address = address(w), address(slot)
    steps = _core.state_variable(np.float64(0), "iterations")
    assert _core.commit_in_place(targets, steps) == 1  # the slot, in place
    np.testing.assert_array_equal(held, 0.0)
    np.testing.assert_array_equal(np.asarray(slot), -0.5)  # 0·0.9 − 1·0.5
    np.testing.assert_array_equal(np.asarray(w), -0.5)
    assert address(slot) == slot_address and address(w) != w_address
    assert targets[0][1][0] is None and not np.asarray(w).flags.writeable
    assert float(steps) == 1.0
