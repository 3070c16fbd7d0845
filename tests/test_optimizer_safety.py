"""dualad.optimizers under hostile use: pickling and copying, steps interrupted halfway (bad
gradients, raising schedules, KeyboardInterrupt at any line), malformed set_state input,
re-entry, threads, and steps compiled by dualad.function that must see what eager code sets."""
import copy
import pickle
import threading
import warnings

import numpy as np
import pytest

import dualad as dd
import dualad.optimizer_base as optimizer_base
import dualad.optimizers as optimizers
from dualad.optimizers import SGD, Adagrad, Adam, RMSprop, schedules
from helpers import interrupted_at_line

CONFIGS = [
    (SGD, dict(momentum=0.9, nesterov=True)),
    (Adam, dict(amsgrad=True)),
    (RMSprop, dict(momentum=0.5, centered=True)),
    (Adagrad, dict()),
]
CONFIG_IDS = [cls.__name__ for cls, _ in CONFIGS]


def mixed_variables():
    """Five variables covering both eager paths: numpy arrays (also float16 scalars) and the
    core's C scalars (float32/float64 shape ())."""
    rng = np.random.default_rng(0)
    return [dd.Variable(rng.normal(size=3), name="a64"),
            dd.Variable(np.float32(0.5), name="s32"),
            dd.Variable(rng.normal(size=(2, 2)).astype(np.float32), name="m32"),
            dd.Variable(np.float16(1.5), name="s16"),
            dd.Variable(np.float64(-2.0), name="s64")]


def gradients_for(variables, scale=1.0):
    return [np.full(v.shape, scale * (i + 1), v.dtype.np) for i, v in enumerate(variables)]


def snapshot(optimizer, variables):
    """Everything a step may change, as bytes, so that equality means bit-identical."""
    values = [np.asarray(v).tobytes() for v in variables]
    slots = {}
    for v in optimizer.tracked_variables:
        for name in optimizer.get_slot_names():
            try:
                slots[v.name, name] = optimizer.get_slot(v, name).tobytes()
            except KeyError:
                slots[v.name, name] = None
    return values, slots, optimizer.iterations, tuple(map(id, optimizer.tracked_variables))


def warmed_up(cls, hyper):
    variables = mixed_variables()
    optimizer = cls(learning_rate=0.1, **hyper)
    optimizer.apply_gradients(zip(gradients_for(variables), variables))
    return optimizer, variables


# ---- pickling and copying ----------------------------------------------------------------------

@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
def test_pickling_or_copying_an_optimizer_raises_pointing_at_get_state(cls, hyper):
    # A copy's slots would be keyed by Variables (or ids) that are not the live ones.
    optimizer, variables = warmed_up(cls, hyper)
    for attempt in (lambda: pickle.dumps(optimizer), lambda: pickle.dumps((variables, optimizer)),
                    lambda: copy.deepcopy(optimizer), lambda: copy.copy(optimizer)):
        with pytest.raises(TypeError, match=r"get_state\(\).*set_state"):
            attempt()
    # the documented route works: config + state, attached to other variables
    restored_vars = [dd.Variable(np.asarray(v), name=v.name) for v in variables]
    restored = cls.from_config(pickle.loads(pickle.dumps(optimizer.get_config())))
    restored.set_state(pickle.loads(pickle.dumps(optimizer.get_state())), restored_vars)
    assert restored.tracked_variables == tuple(restored_vars)


def test_slots_belong_to_the_variable_object_not_an_equal_value_or_a_reused_id():
    x = dd.Variable(np.ones(2), name="x")
    optimizer = SGD(0.1, momentum=0.9)
    optimizer.apply_gradients([(np.ones(2), x)])
    twin = dd.Variable(np.asarray(x), name="x")  # same name, value, shape and dtype
    with pytest.raises(KeyError, match="no slot 'momentum'"):
        optimizer.get_slot(twin, "momentum")
    # new Variables created after a tracked one is dropped by the caller start fresh
    del x
    for _ in range(200):
        fresh = dd.Variable(np.ones(2))
        assert all(v is not fresh for v in optimizer.tracked_variables)
        with pytest.raises(KeyError, match="no slot 'momentum'"):
            optimizer.get_slot(fresh, "momentum")


def test_a_variable_subclass_hashing_by_value_is_refused():
    class ValueHashed(dd.Variable):
        def __hash__(self):
            return 0  # every instance collides, so a dict would compare them by value

    a = ValueHashed(np.float32(1.0), name="a")
    b = ValueHashed(np.float32(1.0), name="b")
    optimizer = SGD(0.1, momentum=0.9)
    with pytest.raises(TypeError, match="'a'.*__hash__"):
        optimizer.apply_gradients([(1.0, a), (1.0, b)])
    assert optimizer.iterations == 0 and optimizer.tracked_variables == ()


# ---- atomic steps ---------------------------------------------------------------------------

@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("fail_at", range(1, 6))
def test_an_update_raising_halfway_changes_nothing(cls, hyper, fail_at, monkeypatch):
    optimizer, variables = warmed_up(cls, hyper)
    before = snapshot(optimizer, variables)
    calls = []
    real_update = type(optimizer)._update

    def interrupted(self, *args):
        calls.append(1)
        if len(calls) == fail_at:
            raise KeyboardInterrupt("interrupted update")
        return real_update(self, *args)

    monkeypatch.setattr(type(optimizer), "_update", interrupted)
    with pytest.raises(KeyboardInterrupt, match="interrupted update"):
        optimizer.apply_gradients(zip(gradients_for(variables, 2.0), variables))
    assert snapshot(optimizer, variables) == before
    monkeypatch.undo()
    # and the optimizer still works: the same step as an untouched twin
    twin, twin_vars = warmed_up(cls, hyper)
    twin.apply_gradients(zip(gradients_for(twin_vars, 2.0), twin_vars))
    optimizer.apply_gradients(zip(gradients_for(variables, 2.0), variables))
    assert snapshot(optimizer, variables)[:3] == snapshot(twin, twin_vars)[:3]


def test_a_first_step_raising_halfway_tracks_no_variable(monkeypatch):
    variables = mixed_variables()
    optimizer = Adam()
    real_update = Adam._update
    calls = []

    def interrupted(self, *args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt("interrupted update")
        return real_update(self, *args)

    monkeypatch.setattr(Adam, "_update", interrupted)
    before = snapshot(optimizer, variables)
    with pytest.raises(KeyboardInterrupt, match="interrupted update"):
        optimizer.apply_gradients(zip(gradients_for(variables), variables))
    assert snapshot(optimizer, variables) == before
    assert optimizer.tracked_variables == ()


@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
def test_a_bad_gradient_in_the_middle_changes_nothing(cls, hyper):
    optimizer, variables = warmed_up(cls, hyper)
    before = snapshot(optimizer, variables)
    grads = gradients_for(variables)
    grads[3] = np.ones(7)  # the 4th of 5 variables gets a gradient of the wrong shape
    with pytest.raises(ValueError, match="'s16'"):
        optimizer.apply_gradients(zip(grads, variables))
    assert snapshot(optimizer, variables) == before


class InterruptingGradient:
    """A gradient-like object whose conversion to an array is interrupted."""

    def __array__(self, dtype=None, copy=None):
        raise KeyboardInterrupt("interrupted gradient conversion")


@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
def test_an_interrupted_gradient_or_schedule_changes_nothing(cls, hyper):
    optimizer, variables = warmed_up(cls, hyper)
    before = snapshot(optimizer, variables)
    grads = gradients_for(variables)
    grads[2] = InterruptingGradient()
    with pytest.raises(KeyboardInterrupt, match="interrupted gradient conversion"):
        optimizer.apply_gradients(zip(grads, variables))
    assert snapshot(optimizer, variables) == before

    def interrupted_schedule(step):
        raise KeyboardInterrupt("interrupted schedule")

    optimizer.learning_rate = interrupted_schedule
    with pytest.raises(KeyboardInterrupt, match="interrupted schedule"):
        optimizer.apply_gradients(zip(gradients_for(variables), variables))
    assert snapshot(optimizer, variables) == before


@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
def test_a_keyboard_interrupt_at_any_line_of_a_step_leaves_it_all_or_nothing(cls, hyper):
    """A signal can interrupt between any two lines, including while the updates are being
    assigned: the step is then either wholly applied or not at all."""
    optimizer, variables = warmed_up(cls, hyper)
    reference, reference_vars = warmed_up(cls, hyper)
    before = snapshot(optimizer, variables)
    reference.apply_gradients(zip(gradients_for(reference_vars, 2.0), reference_vars))
    after = snapshot(reference, reference_vars)[:3]
    # the optimizer's code: the step machinery and the update rules
    sources = (optimizers.__file__, optimizer_base.__file__)
    fire_at = 1
    while True:
        interrupted = interrupted_at_line(
            lambda: optimizer.apply_gradients(zip(gradients_for(variables, 2.0), variables)),
            sources, fire_at)
        state = snapshot(optimizer, variables)
        if not interrupted:
            assert state[:3] == after
            break
        assert state == before or state[:3] == after, f"split by an interrupt at line {fire_at}"
        if state != before:  # completed before the interrupt arrived: undo for the next try
            optimizer, variables = warmed_up(cls, hyper)
        fire_at += 1
    assert fire_at > 20  # the interrupt was tried at many points


# ---- misuse in apply_gradients ----------------------------------------------------------------

def test_the_same_variable_twice_in_one_call_is_an_error():
    x = dd.Variable(np.ones(2), name="x")
    optimizer = SGD(0.1, momentum=0.9)
    with pytest.raises(ValueError, match="'x' appears more than once"):
        optimizer.apply_gradients([(np.ones(2), x), (np.ones(2), x)])
    with pytest.raises(ValueError, match="'x' appears more than once"):
        optimizer.minimize(lambda: dd.reduce_sum(x * x), [x, x])
    np.testing.assert_array_equal(x.numpy(), np.ones(2))
    assert optimizer.iterations == 0 and optimizer.tracked_variables == ()


def test_temporary_variables_from_a_generator_are_not_taken_for_duplicates():
    # a generator may free each Variable before making the next, which can then reuse its id
    optimizer = SGD(0.1)
    assert optimizer.apply_gradients((1.0, dd.Variable(np.float32(1.0))) for _ in range(50)) == 1


@pytest.mark.parametrize("entry", [np.ones(3), (np.ones(2),), "abc", 3.0, None])
def test_entries_that_are_not_pairs_are_type_errors(entry):
    optimizer = SGD()
    with pytest.raises(TypeError, match=r"\(gradient, variable\) pairs"):
        optimizer.apply_gradients([entry])
    assert optimizer.iterations == 0


def test_a_schedule_calling_apply_gradients_again_is_refused():
    x = dd.Variable(np.ones(2), name="x")
    optimizer = SGD(0.1, momentum=0.9)

    def reentrant_schedule(step):
        optimizer.apply_gradients([(np.ones(2), x)])
        return 0.1

    optimizer.learning_rate = reentrant_schedule
    with pytest.raises(RuntimeError, match="called again"):
        optimizer.apply_gradients([(np.ones(2), x)])
    np.testing.assert_array_equal(x.numpy(), np.ones(2))
    assert optimizer.iterations == 0 and optimizer.tracked_variables == ()


def test_threads_sharing_an_optimizer_lose_no_step():
    optimizer = Adam(0.01)
    variables = [dd.Variable(np.zeros(4), name=f"t{i}") for i in range(4)]
    steps_each = 50

    def work(var):
        for _ in range(steps_each):
            optimizer.apply_gradients([(np.ones(4), var)])

    threads = [threading.Thread(target=work, args=(v,)) for v in variables]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert optimizer.iterations == steps_each * len(variables)
    assert set(map(id, optimizer.tracked_variables)) == set(map(id, variables))


# ---- set_state -----------------------------------------------------------------------------

def saved_adam():
    x = dd.Variable(np.ones(2), name="x")
    optimizer = Adam(0.1)
    optimizer.apply_gradients([(np.ones(2), x)])
    return optimizer, x, optimizer.get_state()


def with_changes(state, **changes):
    state = dict(state)
    state.update(changes)
    return state


BAD_STATES = [
    (lambda s: [s], TypeError, "dict returned by get_state"),
    (lambda s: {"x": 1}, ValueError, r"lacks the keys \['iterations', 'learning_rate', "
                                     r"'variables', 'slots'\]"),
    (lambda s: {k: v for k, v in s.items() if k != "slots"}, ValueError, r"lacks.*'slots'"),
    (lambda s: with_changes(s, iterations=-1), ValueError, "iterations.*-1"),
    (lambda s: with_changes(s, iterations=2 ** 60), ValueError, "iterations"),
    (lambda s: with_changes(s, iterations=1.5), TypeError, "iterations must be an integer"),
    (lambda s: with_changes(s, iterations=True), TypeError, "iterations must be an integer"),
    (lambda s: with_changes(s, iterations="3"), TypeError, "iterations must be an integer"),
    (lambda s: with_changes(s, learning_rate=-0.1), ValueError, "learning_rate"),
    (lambda s: with_changes(s, learning_rate=float("nan")), ValueError, "learning_rate"),
    (lambda s: with_changes(s, learning_rate="fast"), TypeError, "learning_rate"),
    (lambda s: with_changes(s, variables="x"), TypeError, r"state\['variables'\] must be a list"),
    (lambda s: with_changes(s, slots={}), TypeError, r"state\['slots'\] must be a list"),
    (lambda s: with_changes(s, slots=[]), ValueError, "1 variables but 0 slot dicts"),
    (lambda s: with_changes(s, variables=[("x", (2,))]), TypeError, r"\(name, shape, dtype"),
    (lambda s: with_changes(s, variables=[("x", "2", "float64")]), TypeError, "triple"),
    (lambda s: with_changes(s, variables=[("x", (3,), "float64")]), ValueError, r"\(3,\)"),
    (lambda s: with_changes(s, variables=[("x", (2,), "float32")]), ValueError, "float32"),
    (lambda s: with_changes(s, slots=[[1, 2]]), TypeError, r"state\['slots'\]\[0\]"),
    (lambda s: with_changes(s, slots=[{"momentum": np.ones(3), "velocity": np.ones(2)}]),
     ValueError, r"'momentum'.*\(3,\)"),
    (lambda s: with_changes(s, slots=[{"momentum": np.array(["a", "b"])}]), TypeError,
     "'momentum'.*expected real numbers"),
    (lambda s: with_changes(s, slots=[{"momentum": np.ones(2) * 1j}]), TypeError,
     "expected real numbers"),
    (lambda s: with_changes(s, slots=[{"accumulator": np.ones(2)}]), ValueError,
     r"\['accumulator'\].*another configuration"),
]


@pytest.mark.parametrize("make_bad, error, message", BAD_STATES)
def test_malformed_states_are_clear_errors_that_change_nothing(make_bad, error, message):
    optimizer, x, state = saved_adam()
    optimizer.apply_gradients([(np.ones(2), x)])
    before = snapshot(optimizer, [x])
    with pytest.raises(error, match=message):
        optimizer.set_state(make_bad(state))
    assert snapshot(optimizer, [x]) == before and optimizer.learning_rate == 0.1


def test_set_state_refuses_bad_variable_lists():
    optimizer, x, state = saved_adam()
    before = snapshot(optimizer, [x])
    with pytest.raises(TypeError, match="dualad.Variable"):
        optimizer.set_state(state, [np.ones(2)])
    two = optimizer.get_state()
    two["variables"] *= 2
    two["slots"] *= 2
    with pytest.raises(ValueError, match="'x' is given more than once"):
        optimizer.set_state(two, [x, x])
    assert snapshot(optimizer, [x]) == before


def test_set_state_does_not_keep_a_reference_to_the_callers_arrays():
    optimizer, x, state = saved_adam()
    optimizer.set_state(state)
    state["slots"][0]["momentum"][:] = 42.0
    assert not np.any(optimizer.get_slot(x, "momentum") == 42.0)


# ---- steps compiled by dualad.function ----------------------------------------------------------

def compiled_and_eager_runs(act):
    """The same script run eagerly and with its step compiled; `act(optimizer, w, step)` drives
    it. Returns (w, momentum, iterations) of both runs."""
    results = []
    for compiled in (False, True):
        w = dd.Variable(np.array([1.0, 2.0]), name="w")
        optimizer = SGD(0.1, momentum=0.9)

        def step():
            with dd.GradientTape() as tape:
                loss = dd.reduce_sum(w * w)
            optimizer.apply_gradients([(tape.gradient(loss, w), w)])

        act(optimizer, w, dd.function(step) if compiled else step)
        results.append((w.numpy(), optimizer.get_slot(w, "momentum"), optimizer.iterations))
    return results


def test_set_state_reaches_steps_compiled_before_it():
    def act(optimizer, w, step):
        step()
        step()
        state, value = optimizer.get_state(), w.numpy()
        step()
        step()
        optimizer.set_state(state)
        w.assign(value)
        step()
        step()

    (w_eager, m_eager, it_eager), (w_compiled, m_compiled, it_compiled) = \
        compiled_and_eager_runs(act)
    np.testing.assert_array_equal(w_compiled, w_eager)
    np.testing.assert_array_equal(m_compiled, m_eager)
    assert it_compiled == it_eager == 4


def test_a_schedule_after_compiled_constant_rate_steps_is_refused():
    # the program reads the constant rate from a variable and would ignore the schedule
    w = dd.Variable(np.array([1.0, 2.0]))
    optimizer = SGD(0.1, momentum=0.9)

    @dd.function
    def step():
        optimizer.apply_gradients([(dd.constant([1.0, 1.0]), w)])

    step()
    schedule = schedules.PiecewiseConstantDecay([0], [0.1, 0.0])
    with pytest.raises(ValueError, match="compiled.*new optimizer"):
        optimizer.learning_rate = schedule
    with pytest.raises(ValueError, match="compiled.*new optimizer"):
        optimizer.set_state(with_changes(optimizer.get_state(), learning_rate=schedule))
    assert optimizer.learning_rate == 0.1
    optimizer.learning_rate = 0.05  # constant rates still reach the program
    before = w.numpy()
    step()
    assert not np.array_equal(w.numpy(), before)
    # eagerly the schedule is fine, and a new optimizer takes over the state
    fresh = SGD(schedule, momentum=0.9)
    fresh.set_state(with_changes(optimizer.get_state(), learning_rate=schedule), [w])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh.apply_gradients([(np.ones(2), w)])
    assert fresh.iterations == 3
