"""The optimizers' C path for steps on float32/float64 scalar Variables (the core's
*_scalar_step): the same bits as the general path for every rule and option, and the same
guarantees (atomic steps, no re-entry, duplicates refused, subclasses' own rules honoured).

A step takes the C path when its list holds only (gradient, Variable) tuples of tracked scalar
Variables; the same pairs given as a tuple take the general path, which is the reference."""
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dualad as dd
import dualad.optimizer_base as optimizer_base
import dualad.optimizers as optimizers
from dualad.optimizers import SGD, Adagrad, Adam, RMSprop
from helpers import interrupt_at_every_line, interrupted_at_line
from isolated import assert_runs_cleanly

CONFIGS = [
    (SGD, {}), (SGD, {"momentum": 0.9}), (SGD, {"momentum": 0.37, "nesterov": True}),
    (Adam, {}), (Adam, {"amsgrad": True}),
    (Adam, {"beta_1": 0.5, "beta_2": 0.75, "epsilon": 0.3, "amsgrad": True}),
    (RMSprop, {}), (RMSprop, {"momentum": 0.3}), (RMSprop, {"centered": True}),
    (RMSprop, {"rho": 0.6, "momentum": 0.8, "epsilon": 1e-3, "centered": True}),
    (Adagrad, {}), (Adagrad, {"initial_accumulator_value": 0.0, "epsilon": 0.25}),
]
CONFIG_IDS = [f"{cls.__name__}{hyper}" for cls, hyper in CONFIGS]

finite = st.floats(-1e3, 1e3, width=32)
special = st.sampled_from([0.0, -0.0, 1e-30, -1e-30, 3e38, -3e38, 1e300, float("inf"),
                           float("nan")])


def bits(value):
    """The bytes of a value, every NaN made the same NaN: the C compiler may order the operands
    of an addition or product either way, which picks which NaN's sign and payload survive."""
    value = np.asarray(value)
    return np.where(np.isnan(value), np.nan, value).astype(value.dtype).tobytes()


def state_of(optimizer, variables):
    """Every value a step changes, as bytes: equal means bit-identical (up to NaN payloads)."""
    slots = [(name, bits(optimizer.get_slot(v, name)))
             for v in optimizer.tracked_variables for name in optimizer.get_slot_names()]
    return [bits(v) for v in variables], slots, optimizer.iterations


def as_gradient(value, kind, dtype):
    """A gradient as a user may give it: a Python float, a Tensor of the variable's dtype or of
    the other float dtype, or a Variable."""
    if kind == "float":
        return float(value)
    if kind == "same":
        return dd.constant(value, dtype=dtype)
    if kind == "other":
        return dd.constant(value, dtype=dd.float64 if dtype == dd.float32 else dd.float32)
    return dd.Variable(value, dtype=dtype, name="gradient variable")


def twins(cls, hyper, values, dtypes):
    """Two optimizers and their variables, one step taken (which makes the slots)."""
    made = []
    for _ in range(2):
        variables = [dd.Variable(v, dtype=dt, name=f"v{i}")
                     for i, (v, dt) in enumerate(zip(values, dtypes))]
        optimizer = cls(learning_rate=0.1, **hyper)
        optimizer.apply_gradients([(1.0, v) for v in variables])
        made.append((optimizer, variables))
    return made


def forbid_general_path(optimizer):
    def general_path(*args):
        raise AssertionError("the step took the general path")
    optimizer._tensor_update = optimizer._numpy_update = general_path


@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_the_c_path_gives_the_bits_of_the_general_path(cls, hyper, data):
    n = data.draw(st.integers(1, 4))
    dtypes = data.draw(st.lists(st.sampled_from([dd.float32, dd.float64]), min_size=n,
                                max_size=n))
    values = data.draw(st.lists(finite, min_size=n, max_size=n))
    (fast, fast_vars), (general, general_vars) = twins(cls, hyper, values, dtypes)
    forbid_general_path(fast)
    for _ in range(data.draw(st.integers(1, 4))):
        rate = data.draw(st.sampled_from([0.0, 1e-3, 0.1, 0.7, 2.5]))
        fast.learning_rate = general.learning_rate = rate
        grads = data.draw(st.lists(st.one_of(finite, special), min_size=n, max_size=n))
        kinds = data.draw(st.lists(st.sampled_from(["float", "same", "other", "variable"]),
                                   min_size=n, max_size=n))
        with np.errstate(all="ignore"):
            fast_step = fast.apply_gradients(
                [(as_gradient(g, k, v.dtype), v) for g, k, v in zip(grads, kinds, fast_vars)])
            general_step = general.apply_gradients(tuple(
                (as_gradient(g, k, v.dtype), v) for g, k, v in zip(grads, kinds, general_vars)))
        assert fast_step == general_step == general.iterations
        assert state_of(fast, fast_vars) == state_of(general, general_vars)


@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("n", [1, 9, 40])  # on the stack, allocated, and duplicates sorted
def test_many_variables_and_gradients_that_are_the_updated_variables(cls, hyper, n):
    # every gradient is read before any variable is assigned, on both paths
    values = np.linspace(-2.0, 3.0, n)
    dtypes = [dd.float32 if i % 3 else dd.float64 for i in range(n)]
    (fast, fast_vars), (general, general_vars) = twins(cls, hyper, values, dtypes)
    forbid_general_path(fast)
    for _ in range(3):
        fast.apply_gradients([(fast_vars[i - 1], v) for i, v in enumerate(fast_vars)])
        general.apply_gradients(tuple((general_vars[i - 1], v)
                                      for i, v in enumerate(general_vars)))
        assert state_of(fast, fast_vars) == state_of(general, general_vars)


@pytest.mark.parametrize("n", [2, 9, 40])
def test_the_same_variable_twice_is_still_refused(n):
    variables = [dd.Variable(float(i), name=f"v{i}") for i in range(n)]
    optimizer = SGD(0.1, momentum=0.9)
    optimizer.apply_gradients([(1.0, v) for v in variables])
    before = state_of(optimizer, variables)
    with pytest.raises(ValueError, match=f"'v{n // 2}' appears more than once"):
        optimizer.apply_gradients([(1.0, v) for v in variables] + [(1.0, variables[n // 2])])
    assert state_of(optimizer, variables) == before


def test_a_variable_read_as_an_array_before_the_step_reads_the_new_value_after():
    # the array a Variable caches for numpy must not outlive the value it was made from
    x = dd.Variable(np.float32(2.0))
    optimizer = Adam(0.1)
    optimizer.apply_gradients([(1.0, x)])
    before = np.asarray(x)
    momentum_before = optimizer.get_slot(x, "momentum")
    optimizer.apply_gradients([(1.0, x)])
    assert np.asarray(x) != before and x.numpy() == float(x)
    assert optimizer.get_slot(x, "momentum") != momentum_before
    assert np.asarray(x) == float(x) and optimizer.iterations == 2


def test_a_subclass_with_its_own_rule_is_honoured_for_scalars():
    class HalfStep(SGD):
        def _update(self, w, g, lr, slots, step):
            return w - g * lr * optimizer_base.scalar_type(w)(0.5)

    x = dd.Variable(1.0, dtype=dd.float64)
    optimizer = HalfStep(learning_rate=0.5)
    optimizer.apply_gradients([(dd.constant(1.0, dtype=dd.float64), x)])
    optimizer.apply_gradients([(dd.constant(1.0, dtype=dd.float64), x)])
    assert x.numpy() == 0.5


def test_check_numerics_still_stops_a_step_producing_nan():
    x = dd.Variable(1.0, dtype=dd.float64)
    optimizer = SGD(0.1)
    optimizer.apply_gradients([(1.0, x)])
    dd.debugging.enable_check_numerics()
    try:
        with pytest.raises(FloatingPointError, match="op 'cast' produced NaN"):
            optimizer.apply_gradients([(float("nan"), x)])
    finally:
        dd.debugging.disable_check_numerics()
    assert x.numpy() == 0.9 and optimizer.iterations == 1


def test_threads_sharing_an_optimizer_on_scalars_lose_no_step():
    optimizer = Adam(0.01)
    variables = [dd.Variable(0.0, name=f"t{i}") for i in range(4)]
    optimizer.apply_gradients([(1.0, v) for v in variables])
    steps_each = 200

    def work(var):
        for _ in range(steps_each):
            optimizer.apply_gradients([(1.0, var), (0.5, variables[0])] if var is not variables[0]
                                      else [(1.0, var)])

    threads = [threading.Thread(target=work, args=(v,)) for v in variables]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert optimizer.iterations == 1 + steps_each * len(variables)


@pytest.mark.parametrize("cls, hyper", CONFIGS[2::3], ids=CONFIG_IDS[2::3])
def test_a_keyboard_interrupt_at_any_line_of_a_scalar_step_leaves_it_all_or_nothing(cls, hyper):
    def fresh():
        variables = [dd.Variable(0.5, name="a"), dd.Variable(-2.0, dtype=dd.float64, name="b")]
        optimizer = cls(learning_rate=0.1, **hyper)
        optimizer.apply_gradients([(1.0, v) for v in variables])
        return optimizer, variables

    def step(optimizer, variables):
        return optimizer.apply_gradients([(2.0, variables[0]), (dd.constant(3.0), variables[1])])

    def not_busy(optimizer, variables):
        assert not optimizer._guard.busy  # and the optimizer takes further steps

    fire_at = interrupt_at_every_line(fresh, step, state_of,
                                      (optimizers.__file__, optimizer_base.__file__), not_busy)
    # the step runs no Python line at all (apply_gradients is compiled): a line of Python
    # would be Python work on the hot path
    assert fire_at == 1


def test_python_code_run_by_a_slot_lookup_cannot_reenter_or_crash_the_step():
    # A restored state may key a slot by a str subclass; looking the slot up then runs its
    # __eq__, in the middle of the C step. Re-entering is refused; dropping the optimizer's
    # slots there must not free anything the step still uses.
    assert_runs_cleanly("""
        import gc
        import dualad as dd
        from dualad.optimizers import SGD

        x = dd.Variable(1.0, dtype=dd.float64, name="x")
        optimizer = SGD(0.5, momentum=0.5)
        optimizer.apply_gradients([(1.0, x)])
        actions = []

        class Hostile(str):
            def __hash__(self):
                return str.__hash__(self)

            def __eq__(self, other):
                if actions:
                    actions.pop()()
                return str.__eq__(self, other)

        state = optimizer.get_state()
        state["slots"] = [{Hostile("momentum"): v for v in state["slots"][0].values()}]
        optimizer.set_state(state)
        assert any(type(k) is Hostile for k in optimizer._slots[x])

        def reenter():
            optimizer.apply_gradients([(1.0, x)])

        actions.append(reenter)
        try:
            optimizer.apply_gradients([(1.0, x)])
        except RuntimeError as e:
            assert "called again" in str(e), e
        else:
            raise AssertionError("re-entry was not refused")
        assert x.numpy() == 0.5 and optimizer.iterations == 1, (x.numpy(), optimizer.iterations)

        def drop_everything():
            optimizer._slots.clear()
            gc.collect()

        actions.append(drop_everything)
        optimizer.apply_gradients([(1.0, x)])
        gc.collect()
        print(x.numpy(), optimizer.iterations)
    """)


# ---- the guard: an interrupt must never leave the optimizer locked or refusing steps ----------

def can_step_from_another_thread(optimizer, variables):
    done = []
    worker = threading.Thread(target=lambda: done.append(
        optimizer.apply_gradients([(np.ones(v.shape), v) for v in variables])))
    worker.start()
    worker.join(timeout=10)
    return bool(done)


@pytest.mark.parametrize("shape", [(), (2,)], ids=["scalars", "arrays"])
@pytest.mark.parametrize("action", ["apply_gradients", "get_state", "set_state"])
def test_an_interrupt_at_any_line_leaves_the_optimizer_usable(action, shape):
    """A KeyboardInterrupt at a line of the step's locking (taking the lock, setting or
    clearing the re-entry flag) used to leave the lock held, so other threads hung, or the
    flag set, so every later step was refused as re-entry."""
    sources = (optimizers.__file__, optimizer_base.__file__)
    fire_at = 1
    while True:
        variables = [dd.Variable(np.full(shape, 0.5), name="a")]
        optimizer = SGD(0.1, momentum=0.5)
        optimizer.apply_gradients([(np.ones(shape), v) for v in variables])
        state = optimizer.get_state()
        grad = 2.0 if shape == () else np.full(shape, 2.0)  # (scalars take the C path)
        act = {"apply_gradients": lambda: optimizer.apply_gradients([(grad, variables[0])]),
               "get_state": optimizer.get_state,
               "set_state": lambda: optimizer.set_state(state)}[action]
        interrupted = interrupted_at_line(act, sources, fire_at)
        assert can_step_from_another_thread(optimizer, variables), f"locked by line {fire_at}"
        optimizer.apply_gradients([(np.ones(shape), v) for v in variables])  # no "called again"
        if not interrupted:
            break
        fire_at += 1
    if action == "apply_gradients" and shape == ():
        assert fire_at == 1  # a scalar step runs no Python line (apply_gradients is compiled)
    else:
        assert fire_at > 3


@pytest.mark.parametrize("container", [tuple, iter, lambda pairs: (p for p in pairs)],
                         ids=["tuple", "iterator", "generator"])
def test_pairs_given_as_a_tuple_or_a_generator_take_the_c_path(container):
    x = dd.Variable(1.0, dtype=dd.float64, name="x")
    y = dd.Variable(2.0, dtype=dd.float32, name="y")
    optimizer = Adam(0.25)
    optimizer.apply_gradients(container([(1.0, x), (1.0, y)]))  # the first step makes the slots
    reference, rx, ry = Adam(0.25), dd.Variable(1.0, dtype=dd.float64), dd.Variable(2.0)
    reference.apply_gradients([(1.0, rx), (1.0, ry)])
    forbid_general_path(optimizer)
    assert optimizer.apply_gradients(container([(1.0, x), (2.0, y)])) == 2
    reference.apply_gradients([(1.0, rx), (2.0, ry)])
    assert (x.numpy(), y.numpy()) == (rx.numpy(), ry.numpy())


def test_pairs_given_as_a_zip_take_the_c_path():
    x = dd.Variable(1.0, dtype=dd.float64, name="x")
    y = dd.Variable(2.0, dtype=dd.float64, name="y")
    optimizer = SGD(0.25)
    optimizer.apply_gradients(zip([1.0, 1.0], [x, y]))  # the first step makes the slots
    forbid_general_path(optimizer)
    assert optimizer.apply_gradients(zip([1.0, 2.0], [x, y])) == 2
    assert (x.numpy(), y.numpy()) == (0.5, 1.25)


@pytest.mark.parametrize("cls, hyper", CONFIGS, ids=CONFIG_IDS)
def test_a_class_rule_changed_between_steps_is_read_again(cls, hyper, monkeypatch):
    # the C step keeps the class's own `_scalar_rule` while the class is unchanged: a change
    # (or its removal) must be seen by the next step, of this optimizer or of another class's
    took_general_path = []

    def spying(optimizer):
        general = optimizer._apply_locked

        def spy(*args):
            took_general_path.append(optimizer)
            return general(*args)
        optimizer._apply_locked = spy
        return optimizer

    x = dd.Variable(0.5, dtype=dd.float32)
    optimizer = spying(cls(learning_rate=0.1, **hyper))
    other = spying(SGD(learning_rate=0.1) if cls is not SGD else Adam(learning_rate=0.1))
    y = dd.Variable(0.5, dtype=dd.float32)
    for opt, v in ((optimizer, x), (other, y)):
        opt.apply_gradients([(1.0, v)])  # the first step makes the slots: the general path
    for step in range(3):
        del took_general_path[:]
        optimizer.apply_gradients([(1.0, x)])
        other.apply_gradients([(1.0, y)])
        assert took_general_path == []
    monkeypatch.setattr(cls, "_scalar_rule", None)
    optimizer.apply_gradients([(1.0, x)])
    other.apply_gradients([(1.0, y)])
    assert took_general_path == [optimizer]
    monkeypatch.undo()
    del took_general_path[:]
    optimizer.apply_gradients([(1.0, x)])
    assert took_general_path == []
    monkeypatch.delattr(cls, "_scalar_rule")  # (Optimizer's None is not the class's own)
    optimizer.apply_gradients([(1.0, x)])
    assert took_general_path == [optimizer]
    monkeypatch.undo()
    # the two paths agree bit for bit across the changes
    twin = cls(learning_rate=0.1, **hyper)
    z = dd.Variable(0.5, dtype=dd.float32)
    twin.apply_gradients([(1.0, z)])
    monkeypatch.setattr(cls, "_scalar_rule", None)
    for _ in range(6):  # as many steps as x took
        twin.apply_gradients([(1.0, z)])
    monkeypatch.undo()
    assert bits(z) == bits(x) and twin.iterations == optimizer.iterations == 7


def test_threads_stepping_optimizers_of_different_classes_each_get_their_own_rule():
    # the class rule kept between steps is one entry: threads alternating classes replace it
    steps_each = 300

    def made():
        return [(cls(learning_rate=0.1, **hyper), dd.Variable(0.5, dtype=dd.float32))
                for cls, hyper in CONFIGS]

    def work(optimizer, var):
        for _ in range(steps_each):
            optimizer.apply_gradients([(1.0, var)])

    serial, threaded = made(), made()
    for optimizer, var in serial:
        work(optimizer, var)
    threads = [threading.Thread(target=work, args=pair) for pair in threaded]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (s_opt, s_var), (t_opt, t_var) in zip(serial, threaded):
        assert state_of(t_opt, [t_var]) == state_of(s_opt, [s_var])
