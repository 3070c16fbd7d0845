"""dualad.optimizers: each optimizer against its update rule written out in numpy (random
shapes, dtypes, hyperparameters, gradient sequences and learning-rate changes), Keras' defaults,
apply_gradients / minimize behaviour and errors, schedules, save and restore, the real Keras 3
optimizers' trajectories recorded in tests/fixtures/keras_optimizers.json (by
tests/fixtures/make_keras_fixtures.py; these run everywhere) and, when TensorFlow is
installed, the live Keras optimizers.

The numpy rules below follow the Keras documentation and source: every constant is cast to the
variable's dtype and every operation rounds to it, in Keras' order of operations. dualad does
the same, so the comparisons are exact (bit for bit), not within a tolerance.
"""
import inspect
import json
import math
import os
import pathlib
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dualad as dd
from dualad.optimizers import SGD, Adagrad, Adam, RMSprop, schedules

RULE_SETTINGS = settings(max_examples=100, deadline=None)
FEW = settings(max_examples=15, deadline=None)

TUTORIAL_X_AFTER_1000_STEPS = np.float32(0.999998569)  # TensorFlow's result: SGD, lr 0.01, x0 = 0


# ---- the update rules, in numpy ------------------------------------------------------------

def sgd_rule(w, g, lr, slots, t, momentum=0.0, nesterov=False):
    dt = w.dtype.type
    lr = dt(lr)
    if momentum == 0:
        return w - g * lr
    m = slots.get("momentum", np.zeros_like(w)) * dt(momentum) - g * lr
    slots["momentum"] = m
    return w + (m * dt(momentum) - g * lr) if nesterov else w + m


def beta_power(beta, t, w):
    """beta**t in w's dtype as the step computes it. A float32 scalar Variable steps on the
    core's C scalar ops, whose power is a double power rounded to float32 (the one difference
    dualad.optimizers' docstring names): correctly rounded, where numpy's float32 power is off
    by one ulp now and then. Arrays step with numpy."""
    dt = w.dtype.type
    if w.ndim == 0 and dt is np.float32:
        return dt(math.pow(float(dt(beta)), float(dt(t))))
    return dt(beta) ** dt(t)


def adam_rule(w, g, lr, slots, t, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False):
    dt = w.dtype.type
    alpha = dt(lr) * np.sqrt(1 - beta_power(beta_2, t, w)) / (1 - beta_power(beta_1, t, w))
    m = slots.get("momentum", np.zeros_like(w))
    v = slots.get("velocity", np.zeros_like(w))
    m = m + (g - m) * dt(1 - beta_1)
    v = v + (g * g - v) * dt(1 - beta_2)
    slots["momentum"], slots["velocity"] = m, v
    if amsgrad:
        v = slots["velocity_hat"] = np.maximum(slots.get("velocity_hat", np.zeros_like(w)), v)
    return w - (m * alpha) / (np.sqrt(v) + dt(epsilon))


def rmsprop_rule(w, g, lr, slots, t, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    dt = w.dtype.type
    v = dt(rho) * slots.get("velocity", np.zeros_like(w)) + dt(1 - rho) * (g * g)
    slots["velocity"] = v
    if centered:
        a = dt(rho) * slots.get("average_gradient", np.zeros_like(w)) + dt(1 - rho) * g
        slots["average_gradient"] = a
        denominator = v - a * a + dt(epsilon)
    else:
        denominator = v + dt(epsilon)
    increment = dt(lr) * g / np.sqrt(denominator)
    if momentum > 0:
        mu = slots["momentum"] = dt(momentum) * slots.get("momentum", np.zeros_like(w)) + increment
        return w - mu
    return w - increment


def adagrad_rule(w, g, lr, slots, t, initial_accumulator_value=0.1, epsilon=1e-7):
    dt = w.dtype.type
    acc = slots.get("accumulator", np.full_like(w, initial_accumulator_value)) + g * g
    slots["accumulator"] = acc
    return w - dt(lr) * g / np.sqrt(acc + dt(epsilon))


# ---- random problems -----------------------------------------------------------------------

unit = st.floats(0.0, 1.0)


@st.composite
def problems(draw):
    """A start value, a gradient sequence and a learning rate per step, in one dtype."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    values = hnp.arrays(dtype, shape, elements=st.floats(-10, 10, width=32))
    steps = draw(st.integers(1, 6))
    return dict(w0=draw(values), grads=[draw(values) for _ in range(steps)],
                rates=[draw(st.floats(0.0, 2.0)) for _ in range(steps)],
                as_tensor=draw(st.booleans()))


def check_against_rule(optimizer, rule, hyper, problem):
    """Run `optimizer` and `rule` side by side, changing the learning rate before each step;
    the variable and every slot must agree exactly after every step."""
    w0 = problem["w0"]
    var = dd.Variable(w0, name="w")
    w, slots = np.asarray(w0), {}
    for t, (g, lr) in enumerate(zip(problem["grads"], problem["rates"]), start=1):
        optimizer.learning_rate = lr
        grad = dd.constant(g) if problem["as_tensor"] else g
        assert optimizer.apply_gradients([(grad, var)]) == t
        w = rule(w, g, lr, slots, t, **hyper)
        got = np.asarray(var)
        assert got.dtype == w0.dtype and got.shape == w0.shape
        np.testing.assert_array_equal(got, w, err_msg=f"w after step {t}")
        assert set(optimizer.get_slot_names()) == set(slots)
        for name, value in slots.items():
            np.testing.assert_array_equal(optimizer.get_slot(var, name), value,
                                          err_msg=f"slot {name} after step {t}")
    assert optimizer.iterations == len(problem["grads"])


@RULE_SETTINGS
@given(problem=problems(), momentum=st.one_of(st.just(0.0), unit), nesterov=st.booleans())
def test_sgd_follows_its_update_rule(problem, momentum, nesterov):
    hyper = dict(momentum=momentum, nesterov=nesterov)
    check_against_rule(SGD(**hyper), sgd_rule, hyper, problem)


@RULE_SETTINGS
@given(problem=problems(), beta_1=st.floats(0.0, 0.999), beta_2=st.floats(0.0, 0.9999),
       epsilon=st.floats(1e-8, 1e-2), amsgrad=st.booleans())
# a float32 scalar whose beta_1**3 numpy's float32 power rounds the wrong way (found in CI)
@example(problem={"w0": np.float32(0.17740336), "rates": [0.0, 1.8903623166041457, 1.263522313027395],
                  "grads": [np.float32(2.073411), np.float32(0.0), np.float32(-9.198755)],
                  "as_tensor": True},
         beta_1=0.8578598958798066, beta_2=0.7043697356482269, epsilon=0.008028797850372676,
         amsgrad=True)
def test_adam_follows_its_update_rule(problem, beta_1, beta_2, epsilon, amsgrad):
    hyper = dict(beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad)
    check_against_rule(Adam(**hyper), adam_rule, hyper, problem)


@RULE_SETTINGS
@given(problem=problems(), rho=unit, momentum=st.one_of(st.just(0.0), unit),
       epsilon=st.floats(1e-8, 1e-2), centered=st.booleans())
def test_rmsprop_follows_its_update_rule(problem, rho, momentum, epsilon, centered):
    hyper = dict(rho=rho, momentum=momentum, epsilon=epsilon, centered=centered)
    check_against_rule(RMSprop(**hyper), rmsprop_rule, hyper, problem)


@RULE_SETTINGS
@given(problem=problems(), initial=st.floats(0.0, 2.0), epsilon=st.floats(1e-8, 1e-2))
def test_adagrad_follows_its_update_rule(problem, initial, epsilon):
    hyper = dict(initial_accumulator_value=initial, epsilon=epsilon)
    check_against_rule(Adagrad(**hyper), adagrad_rule, hyper, problem)


@pytest.mark.parametrize("cls, rule", [(SGD, sgd_rule), (Adam, adam_rule),
                                       (RMSprop, rmsprop_rule), (Adagrad, adagrad_rule)])
def test_default_hyperparameters_give_the_documented_rule(cls, rule):
    rng = np.random.default_rng(1)
    problem = dict(w0=rng.normal(size=(2, 3)).astype(np.float32), as_tensor=True,
                   grads=[rng.normal(size=(2, 3)).astype(np.float32) for _ in range(4)])
    lr = cls().learning_rate
    problem["rates"] = [lr] * 4
    check_against_rule(cls(), rule, {}, problem)


KERAS_DEFAULTS = {
    SGD: dict(learning_rate=0.01, momentum=0.0, nesterov=False),
    Adam: dict(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False),
    RMSprop: dict(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False),
    Adagrad: dict(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7),
}


@pytest.mark.parametrize("cls", list(KERAS_DEFAULTS))
def test_defaults_are_keras_defaults(cls):
    config = cls().get_config()
    assert {k: config[k] for k in KERAS_DEFAULTS[cls]} == KERAS_DEFAULTS[cls]
    assert config["name"] == cls.__name__.lower()


# ---- the tutorial: minimising a·x² + b·x + c -------------------------------------------------

def quadratic(x, a=1.0, b=-2.0, c=1.0):
    return a * dd.pow(x, 2) + b * x + c


def sgd_tutorial_step(optimizer, x):
    with dd.GradientTape() as tape:
        y = quadratic(x)
    g = tape.gradient(y, x)
    optimizer.apply_gradients(grads_and_vars=[(g, x)])
    return g


def test_tutorial_apply_gradients_then_a_larger_learning_rate():
    x = dd.Variable(0.0, name="x", dtype=dd.float32)
    optimizer = SGD(learning_rate=0.01)
    for _ in range(1000):
        sgd_tutorial_step(optimizer, x)
    assert x.numpy() == TUTORIAL_X_AFTER_1000_STEPS  # bit for bit TensorFlow's float32 result
    assert optimizer.iterations == 1000

    optimizer.learning_rate = 0.1
    assert optimizer.learning_rate == 0.1
    for _ in range(10):
        before = x.numpy()
        g = sgd_tutorial_step(optimizer, x)
        # the float32 update: x − float32(0.1)·g, rounded after each operation
        assert x.numpy() == before - np.float32(0.1) * g.numpy()
    assert abs(x.numpy() - 1) < abs(TUTORIAL_X_AFTER_1000_STEPS - 1)


def test_tutorial_minimize():
    x = dd.Variable(0.0, name="x", dtype=dd.float32)
    optimizer = SGD(learning_rate=0.01)
    for _ in range(1000):
        optimizer.minimize(lambda: quadratic(x), [x])
    assert x.numpy() == TUTORIAL_X_AFTER_1000_STEPS
    assert optimizer.iterations == 1000


def test_float64_updates_use_the_full_precision_learning_rate():
    x = dd.Variable(1.0, dtype=dd.float64)
    SGD(learning_rate=0.1).apply_gradients([(np.float64(1 / 3), x)])
    assert x.numpy() == 1.0 - 0.1 * (1 / 3)
    assert x.numpy() != 1.0 - float(np.float32(0.1)) * (1 / 3)  # not a float32-rounded rate
    assert x.dtype == dd.float64


@FEW
@given(dtype=st.sampled_from([np.float32, np.float64]), a=st.floats(0.5, 2.0),
       b=st.floats(-5.0, 5.0), x0=st.floats(-5.0, 5.0), momentum=st.sampled_from([0.0, 0.5]))
def test_minimize_converges_to_minus_b_over_2a(dtype, a, b, x0, momentum):
    x = dd.Variable(x0, dtype=dtype)
    ca, cb = dd.constant(a, dtype=dtype), dd.constant(b, dtype=dtype)
    optimizer = SGD(learning_rate=0.1, momentum=momentum)
    for _ in range(300):
        optimizer.minimize(lambda: ca * x * x + cb * x, [x])
    minimum = -b / (2 * a)
    # float32 stalls once lr·g is below half an ulp of x (about 3e-7·|x| here)
    tol = 1e-9 if dtype is np.float64 else 1e-5
    assert abs(float(x.numpy()) - minimum) <= tol * (1 + abs(minimum))


def test_minimize_with_a_tensor_loss_and_its_tape():
    x = dd.Variable(np.array([1.0, -2.0]))
    with dd.GradientTape() as tape:
        loss = dd.reduce_sum(x * x)
    assert Adam(learning_rate=0.5).minimize(loss, [x], tape=tape) == 1
    # Adam's first step moves each weight by lr·g/(|g| + ε'), about lr, against the gradient
    np.testing.assert_allclose(x.numpy(), [0.5, -1.5], rtol=1e-5)


def test_minimize_takes_a_callable_var_list():
    x = dd.Variable(np.array([3.0]))
    SGD(learning_rate=0.25).minimize(lambda: dd.reduce_sum(x * x), lambda: [x])
    np.testing.assert_array_equal(x.numpy(), [3.0 - 0.25 * 6.0])


def test_minimize_errors():
    x = dd.Variable(1.0)
    with pytest.raises(ValueError, match="tape"):
        SGD().minimize(x * x, [x])
    with pytest.raises(TypeError, match="Variable"):
        SGD().minimize(lambda: x * x, [dd.constant(1.0)])


# ---- apply_gradients: None gradients, bad input, dtypes, NaN ---------------------------------

def test_none_gradient_skips_its_variable_with_a_warning_naming_it():
    frozen, free = dd.Variable(1.0, name="frozen"), dd.Variable(1.0, name="free")
    optimizer = SGD(learning_rate=0.5)
    with pytest.warns(UserWarning, match="frozen") as record:
        assert optimizer.apply_gradients([(None, frozen), (dd.constant(2.0), free)]) == 1
    assert record[0].filename == __file__  # attributed to the caller
    assert frozen.numpy() == 1.0
    assert free.numpy() == 0.0
    with pytest.raises(ValueError, match="No gradients provided.*frozen"):
        optimizer.apply_gradients([(None, frozen)])
    assert optimizer.iterations == 1


def test_minimize_warns_about_variables_the_loss_does_not_use():
    used, unused = dd.Variable(2.0, name="used"), dd.Variable(5.0, name="unused")
    with pytest.warns(UserWarning, match="unused") as record:
        SGD(learning_rate=0.25).minimize(lambda: used * used, [used, unused])
    assert record[0].filename == __file__
    assert (used.numpy(), unused.numpy()) == (1.0, 5.0)


def test_empty_gradient_list_is_a_no_op():
    optimizer = SGD()
    assert optimizer.apply_gradients([]) == 0
    assert optimizer.iterations == 0


def test_bad_inputs_raise_before_any_variable_changes():
    good = dd.Variable(np.ones(3), name="good")
    bad = dd.Variable(np.ones((2, 2)), name="bad")
    optimizer = Adam()
    with pytest.raises(ValueError, match=r"'bad'.*\(3,\).*\(2, 2\)"):
        optimizer.apply_gradients([(np.ones(3), good), (np.ones(3), bad)])
    np.testing.assert_array_equal(good.numpy(), np.ones(3))
    assert optimizer.iterations == 0 and optimizer.tracked_variables == ()

    for not_a_variable in (dd.constant([1.0, 2.0]), np.ones(2), [1.0, 2.0]):
        with pytest.raises(TypeError, match="dualad.Variable"):
            optimizer.apply_gradients([(np.ones(2), not_a_variable)])
    with pytest.raises(TypeError, match="'counter'.*int32"):
        optimizer.apply_gradients([(np.ones(2), dd.Variable([1, 2], name="counter"))])
    with pytest.raises(TypeError, match="'good'"):
        optimizer.apply_gradients([(np.array(["a", "b", "c"]), good)])


def test_gradients_are_cast_to_the_variable_dtype():
    x = dd.Variable(np.array([1.0, 2.0], np.float32))
    g64 = np.array([0.1, 1 / 3])
    SGD(learning_rate=0.5).apply_gradients([(dd.constant(g64), x)])
    assert x.dtype == dd.float32
    expected = np.array([1.0, 2.0], np.float32) - g64.astype(np.float32) * np.float32(0.5)
    np.testing.assert_array_equal(x.numpy(), expected)


def test_nan_gradients_are_applied():
    x = dd.Variable(np.array([1.0, 2.0]))
    optimizer = Adam()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning either
        assert optimizer.apply_gradients([(np.array([np.nan, 1.0]), x)]) == 1
    assert np.isnan(x.numpy()[0]) and np.isfinite(x.numpy()[1])
    assert np.isnan(optimizer.get_slot(x, "momentum")[0])


def test_steps_are_not_recorded_by_active_tapes_and_leave_recorded_values_alone():
    x = dd.Variable(np.array([1.0, 2.0]), name="x")
    s = dd.Variable(3.0, dtype=dd.float64, name="s")
    optimizer = RMSprop(learning_rate=0.1, momentum=0.5, centered=True)
    with dd.GradientTape(persistent=True) as tape:
        y = dd.reduce_sum(x * x) + s * s
        entries, watched = tape._n_entries, tape.watched_variables()
        optimizer.apply_gradients([(np.array([1.0, 1.0]), x), (dd.constant(1.0), s)])
        optimizer.minimize(lambda: dd.reduce_sum(x * x), [x])
        assert tape._n_entries > entries  # the loss inside minimize is the user's: recorded
        entries = tape._n_entries
        optimizer.apply_gradients([(np.array([1.0, 1.0]), x), (dd.constant(1.0), s)])
        assert tape._n_entries == entries
    assert tape.watched_variables() == watched
    assert x.numpy()[0] != 1.0
    # the tape still holds the values read before the steps: 2·x_old, 2·s_old
    gx, gs = tape.gradient(y, [x, s])
    np.testing.assert_array_equal(gx.numpy(), [2.0, 4.0])
    assert gs.numpy() == 6.0


# ---- learning rate and schedules ------------------------------------------------------------

@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), -1])
def test_invalid_learning_rates_are_value_errors(bad):
    with pytest.raises(ValueError, match="learning_rate"):
        SGD(learning_rate=bad)
    optimizer = SGD(learning_rate=0.5)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizer.learning_rate = bad
    assert optimizer.learning_rate == 0.5


def test_learning_rates_may_be_0_d_tensors_and_arrays():
    x = dd.Variable(np.zeros(2))
    optimizer = SGD(learning_rate=dd.constant(0.5))
    optimizer.apply_gradients([(np.ones(2), x)])
    optimizer.learning_rate = np.array(0.25)
    optimizer.apply_gradients([(np.ones(2), x)])
    optimizer.learning_rate = lambda step: dd.constant(0.125, dtype=dd.float64)
    optimizer.apply_gradients([(np.ones(2), x)])
    np.testing.assert_array_equal(x.numpy(), [-0.875, -0.875])
    with pytest.raises(TypeError, match="learning_rate must be a real number, got Tensor"):
        optimizer.learning_rate = dd.constant([0.1, 0.2])


def test_learning_rate_type_errors():
    with pytest.raises(TypeError, match="learning_rate must be a real number, got str"):
        SGD(learning_rate="0.1")
    with pytest.raises(TypeError, match="learning_rate must be a number, got True"):
        Adam(learning_rate=True)


@pytest.mark.parametrize("cls, kwargs", [
    (SGD, dict(momentum=1.5)), (SGD, dict(momentum=-0.1)), (Adam, dict(beta_1=1.0)),
    (Adam, dict(beta_2=float("nan"))), (Adam, dict(epsilon=-1e-7)), (RMSprop, dict(rho=2.0)),
    (RMSprop, dict(momentum=-1.0)), (Adagrad, dict(initial_accumulator_value=-0.1)),
])
def test_out_of_range_hyperparameters_are_value_errors(cls, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        cls(**kwargs)


def test_exponential_decay_values():
    smooth = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    stairs = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    for step in (0, 1, 9, 10, 15, 25):
        assert smooth(step) == pytest.approx(0.1 * 0.5 ** (step / 10), rel=1e-15)
        assert stairs(step) == 0.1 * 0.5 ** (step // 10)
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.ExponentialDecay(0.1, 0, 0.5)


def test_piecewise_constant_decay_values():
    schedule = schedules.PiecewiseConstantDecay([2, 5], [1.0, 0.5, 0.1])
    assert [schedule(s) for s in range(8)] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.1, 0.1]
    with pytest.raises(ValueError, match="one value more"):
        schedules.PiecewiseConstantDecay([2, 5], [1.0, 0.5])
    with pytest.raises(ValueError, match="increasing"):
        schedules.PiecewiseConstantDecay([5, 2], [1.0, 0.5, 0.1])


def test_schedules_is_a_module_file_reachable_by_every_import_path():
    import importlib
    import types

    import dualad.optimizers.schedules as by_dotted_path
    assert by_dotted_path is schedules is dd.optimizers.schedules is importlib.import_module("dualad.schedules")
    assert schedules.__file__.endswith("schedules.py")  # not a module object built at runtime
    assert dd.optimizers.ExponentialDecay is schedules.ExponentialDecay  # where it used to live
    assert isinstance(schedules.ExponentialDecay(0.1, 10, 0.5), schedules.LearningRateSchedule)
    modules = [name for name in dir(dd.optimizers) if isinstance(getattr(dd.optimizers, name), types.ModuleType)]
    assert modules == ["schedules"], f"dir(dualad.optimizers) lists imported modules: {modules}"
    public = [name for name in dir(schedules) if not name.startswith("_")]
    assert public == sorted(schedules.__all__)
    # a pickled schedule names a module path that imports
    restored = pickle.loads(pickle.dumps(schedules.PiecewiseConstantDecay([2], [0.5, 0.25])))
    assert restored.get_config() == {"boundaries": [2], "values": [0.5, 0.25]}


def test_a_schedule_is_evaluated_at_the_step_count():
    from dualad.optimizers.schedules import PiecewiseConstantDecay
    schedule = PiecewiseConstantDecay([1, 3], [0.5, 0.25, 0.125])
    x = dd.Variable(0.0, dtype=dd.float64)
    optimizer = SGD(learning_rate=schedule)
    used = []
    for step in range(5):
        assert optimizer.learning_rate == schedule(step)
        before = x.numpy()
        optimizer.apply_gradients([(np.float64(-1.0), x)])
        used.append(x.numpy() - before)
    assert used == [0.5, 0.5, 0.25, 0.25, 0.125]
    optimizer.learning_rate = 0.0625  # a float replaces the schedule
    optimizer.apply_gradients([(np.float64(-1.0), x)])
    assert x.numpy() - before - 0.125 == 0.0625


def test_callables_with_and_without_the_step_argument():
    x = dd.Variable(0.0, dtype=dd.float64)
    optimizer = SGD(learning_rate=lambda step: 0.5 ** (step + 1))
    for _ in range(3):
        optimizer.apply_gradients([(np.float64(-1.0), x)])
    assert x.numpy() == 0.5 + 0.25 + 0.125
    optimizer.learning_rate = lambda: 1.0  # Keras 3 calls argument-free callables without one
    optimizer.apply_gradients([(np.float64(-1.0), x)])
    assert x.numpy() == 1.875


def test_a_schedule_giving_a_negative_rate_fails_at_the_step():
    x = dd.Variable(1.0)
    optimizer = SGD(learning_rate=lambda step: 0.1 - step)
    optimizer.apply_gradients([(1.0, x)])
    with pytest.raises(ValueError, match="step 1"):
        optimizer.apply_gradients([(1.0, x)])
    assert optimizer.iterations == 1


# ---- slots, configuration, save and restore -----------------------------------------------

def test_adam_bias_correction_counts_the_optimizer_steps():
    # a variable first updated at step 3 is corrected with t = 3, as in Keras
    a, b = dd.Variable(0.0, dtype=dd.float64), dd.Variable(0.0, dtype=dd.float64)
    optimizer = Adam(learning_rate=0.1)
    for _ in range(2):
        optimizer.apply_gradients([(np.float64(1.0), a)])
    optimizer.apply_gradients([(np.float64(2.0), b)])
    slots = {}
    expected = adam_rule(np.float64(0.0), np.float64(2.0), 0.1, slots, 3)
    assert b.numpy() == expected
    assert optimizer.tracked_variables == (a, b)


def test_get_slot_errors():
    x, y = dd.Variable(1.0, name="x"), dd.Variable(1.0, name="y")
    optimizer = SGD(momentum=0.5)
    optimizer.apply_gradients([(1.0, x)])
    assert optimizer.get_slot(x, "momentum") == np.float32(-0.01)
    with pytest.raises(KeyError, match="'y'"):
        optimizer.get_slot(y, "momentum")
    with pytest.raises(KeyError, match="velocity"):
        optimizer.get_slot(x, "velocity")


@pytest.mark.parametrize("optimizer", [
    SGD(learning_rate=0.2, momentum=0.3, nesterov=True, name="s"),
    Adam(learning_rate=schedules.ExponentialDecay(0.1, 5, 0.9), beta_1=0.8, amsgrad=True),
    RMSprop(rho=0.8, momentum=0.1, epsilon=1e-6, centered=True), Adagrad(0.3, 0.2, 1e-5),
])
def test_config_round_trip(optimizer):
    clone = type(optimizer).from_config(optimizer.get_config())
    assert clone.get_config() == optimizer.get_config()
    assert type(optimizer).__name__ in repr(optimizer)


STATEFUL = [
    (SGD, dict(momentum=0.9, nesterov=True)),
    (SGD, dict()),
    (Adam, dict(amsgrad=True)),
    (RMSprop, dict(momentum=0.5, centered=True)),
    (Adagrad, dict()),
]


def start_values(seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(3, 4)).astype(np.float32), np.array(0.3),
            rng.normal(size=5)]


def loss_of(variables):
    """A non-convex loss over a float32 and two float64 variables: gradients depend on the
    values, so any difference between two runs grows instead of washing out."""
    w32, s, v = variables
    part32 = dd.reduce_sum(dd.sin(3.0 * w32) + 0.5 * w32 * w32)
    return dd.cast(part32, dd.float64) + dd.sin(s) * dd.reduce_sum(v * v) + dd.reduce_sum(dd.cos(v))


def run(optimizer, variables, steps):
    for _ in range(steps):
        optimizer.minimize(lambda: loss_of(variables), variables)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("cls, hyper", STATEFUL)
def test_an_interrupted_run_restored_from_its_saved_state_is_bit_identical(cls, hyper):
    schedule = schedules.ExponentialDecay(0.05, decay_steps=3, decay_rate=0.7)

    whole = [dd.Variable(v, name=f"v{i}") for i, v in enumerate(start_values(5))]
    whole_opt = cls(learning_rate=schedule, **hyper)
    run(whole_opt, whole, 10)

    first = [dd.Variable(v, name=f"v{i}") for i, v in enumerate(start_values(5))]
    first_opt = cls(learning_rate=schedule, **hyper)
    run(first_opt, first, 4)
    saved = pickle.dumps({"values": [np.array(v) for v in first],
                          "config": first_opt.get_config(), "state": first_opt.get_state()})
    del first, first_opt

    blob = pickle.loads(saved)
    resumed = [dd.Variable(v, name=f"v{i}") for i, v in enumerate(blob["values"])]
    resumed_opt = cls.from_config(blob["config"])
    resumed_opt.set_state(blob["state"], resumed)
    run(resumed_opt, resumed, 6)

    assert resumed_opt.iterations == whole_opt.iterations == 10
    for a, b in zip(whole, resumed):
        assert same_bits(a.numpy(), b.numpy())
        for name in whole_opt.get_slot_names():
            assert same_bits(whole_opt.get_slot(a, name), resumed_opt.get_slot(b, name))

    # the state is what makes this work: resuming without it ends elsewhere
    fresh = [dd.Variable(v, name=f"v{i}") for i, v in enumerate(blob["values"])]
    run(cls.from_config(blob["config"]), fresh, 6)
    assert not all(same_bits(a.numpy(), b.numpy()) for a, b in zip(whole, fresh))


def test_saved_state_is_a_copy():
    x = dd.Variable(np.ones(2))
    optimizer = SGD(momentum=0.5)
    optimizer.apply_gradients([(np.ones(2), x)])
    state = optimizer.get_state()
    state["slots"][0]["momentum"][:] = 99.0
    np.testing.assert_array_equal(optimizer.get_slot(x, "momentum"), [-0.01, -0.01])


def test_set_state_errors_leave_the_optimizer_unchanged():
    x = dd.Variable(np.ones(2), name="x")
    optimizer = Adam()
    optimizer.apply_gradients([(np.ones(2), x)])
    state = optimizer.get_state()
    other = Adam()
    with pytest.raises(ValueError, match="1 variables, 2 were given"):
        other.set_state(state, [x, dd.Variable(np.ones(2))])
    with pytest.raises(ValueError, match="'wrong'.*saved as 'x'"):
        other.set_state(state, [dd.Variable(np.ones(3), name="wrong")])
    with pytest.raises(ValueError, match="float32"):
        other.set_state(state, [dd.Variable(np.ones(2, np.float32))])
    assert other.iterations == 0 and other.tracked_variables == ()
    optimizer.apply_gradients([(np.ones(2), x)])
    optimizer.set_state(state)  # back to the saved step, same variables
    assert optimizer.iterations == 1
    np.testing.assert_array_equal(optimizer.get_slot(x, "momentum"), state["slots"][0]["momentum"])


# ---- against the real Keras optimizers ------------------------------------------------------

@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return pytest.importorskip("tensorflow")


# Hyperparameters exactly representable in float32: Keras rounds some of them (and the
# learning rate) to float32 even for float64 variables, dualad does not (see the module doc).
KERAS_CASES = [
    ("SGD", {}), ("SGD", dict(momentum=0.875)), ("SGD", dict(momentum=0.875, nesterov=True)),
    ("Adam", {}), ("Adam", dict(beta_1=0.75, beta_2=0.984375, epsilon=2.0**-20)),
    ("Adam", dict(beta_1=0.875, beta_2=0.9990234375, amsgrad=True)),
    ("RMSprop", {}), ("RMSprop", dict(rho=0.75, momentum=0.5)),
    ("RMSprop", dict(momentum=0.25, centered=True)),
    ("Adagrad", {}), ("Adagrad", dict(initial_accumulator_value=0.125, epsilon=2.0**-16)),
]


# Keras' default Adam betas and Adagrad initial accumulator are not float32 numbers
NOT_FOR_FLOAT64 = [("Adam", {}), ("Adagrad", {})]


@pytest.mark.parametrize("case", range(len(KERAS_CASES)))
def test_matches_keras_bit_for_bit(tf, case):
    name, hyper = KERAS_CASES[case]
    rng = np.random.default_rng(case)
    dtypes = (np.float32,) if (name, hyper) in NOT_FOR_FLOAT64 else (np.float32, np.float64)
    for dtype in dtypes:
        for shape in ((), (3, 4)):
            w0 = np.asarray(rng.normal(size=shape), dtype)  # 0-d arrays, not numpy scalars
            theirs, ours = tf.Variable(w0), dd.Variable(w0)
            k_opt = getattr(tf.keras.optimizers, name)(learning_rate=0.046875, **hyper)
            d_opt = getattr(dd.optimizers, name)(learning_rate=0.046875, **hyper)
            for step in range(5):
                if step == 3:  # a learning-rate change mid-run
                    k_opt.learning_rate = 0.1875
                    d_opt.learning_rate = 0.1875
                g = np.asarray(rng.normal(size=shape) * 3, dtype)
                k_opt.apply_gradients([(tf.constant(g), theirs)])
                d_opt.apply_gradients([(dd.constant(g), ours)])
                assert same_bits(theirs.numpy(), ours.numpy()), \
                    f"{name}{hyper} {np.dtype(dtype).name} {shape} step {step}"


def test_defaults_and_schedules_match_keras(tf):
    keras = tf.keras
    for cls, defaults in KERAS_DEFAULTS.items():
        theirs = inspect.signature(getattr(keras.optimizers, cls.__name__)).parameters
        assert {k: theirs[k].default for k in defaults} == defaults
    k_exp = keras.optimizers.schedules.ExponentialDecay(0.1, 7, 0.8, staircase=False)
    k_stairs = keras.optimizers.schedules.ExponentialDecay(0.1, 7, 0.8, staircase=True)
    k_piece = keras.optimizers.schedules.PiecewiseConstantDecay([3, 8], [0.3, 0.2, 0.1])
    d_exp = schedules.ExponentialDecay(0.1, 7, 0.8)
    d_stairs = schedules.ExponentialDecay(0.1, 7, 0.8, staircase=True)
    d_piece = schedules.PiecewiseConstantDecay([3, 8], [0.3, 0.2, 0.1])
    for step in range(0, 20):
        # Keras computes schedules in float32; ours are Python floats
        assert math.isclose(float(k_exp(step)), d_exp(step), rel_tol=3e-7)
        assert math.isclose(float(k_stairs(step)), d_stairs(step), rel_tol=3e-7)
        assert np.float32(k_piece(step)) == np.float32(d_piece(step))


# ---- against Keras trajectories recorded in tests/fixtures (runs without TensorFlow) ---------

KERAS_FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "keras_optimizers.json"


@pytest.fixture(scope="module")
def keras_recorded():
    return json.loads(KERAS_FIXTURES.read_text())


def test_recorded_keras_cases_are_the_live_ones(keras_recorded):
    # the fixture script keeps its own copy of the cases: they must not drift apart
    assert [(n, h) for n, h in keras_recorded["cases"]] == KERAS_CASES


@pytest.mark.parametrize("run_index", range(40))
def test_matches_recorded_keras_bit_for_bit(keras_recorded, run_index):
    run = keras_recorded["runs"][run_index]
    dtype = np.dtype(run["dtype"])
    w = dd.Variable(np.asarray(run["w0"], dtype))
    optimizer = getattr(dd.optimizers, run["optimizer"])(learning_rate=run["rates"][0],
                                                         **run["hyper"])
    for step, (rate, g, expected) in enumerate(zip(run["rates"], run["grads"], run["after"])):
        optimizer.learning_rate = rate
        optimizer.apply_gradients([(dd.constant(np.asarray(g, dtype)), w)])
        assert same_bits(w.numpy(), np.asarray(expected, dtype)), \
            f"{run['optimizer']}{run['hyper']} {dtype.name} {run['shape']} step {step}"


def test_recorded_runs_cover_every_case_dtype_and_shape(keras_recorded):
    seen = {(r["optimizer"], json.dumps(r["hyper"], sort_keys=True), r["dtype"], len(r["shape"]))
            for r in keras_recorded["runs"]}
    assert len(seen) == len(keras_recorded["runs"]) == 40


def test_defaults_and_schedules_match_recorded_keras(keras_recorded):
    for cls, defaults in KERAS_DEFAULTS.items():
        assert keras_recorded["defaults"][cls.__name__] == defaults
    recorded = keras_recorded["schedules"]
    ours = {"exponential": schedules.ExponentialDecay(0.1, 7, 0.8),
            "exponential_staircase": schedules.ExponentialDecay(0.1, 7, 0.8, staircase=True),
            "piecewise": schedules.PiecewiseConstantDecay([3, 8], [0.3, 0.2, 0.1])}
    for key, schedule in ours.items():
        assert len(recorded[key]) == 20
        for step, theirs in enumerate(recorded[key]):
            # Keras computes schedules in float32; ours are Python floats
            assert math.isclose(theirs, schedule(step), rel_tol=3e-7), (key, step)


# ---- steps inside dualad.function ------------------------------------------------------------

COMPILED_CONFIGS = [
    (SGD, {}), (SGD, {"momentum": 0.9}), (SGD, {"momentum": 0.5, "nesterov": True}),
    (Adam, {}), (Adam, {"amsgrad": True}), (RMSprop, {}),
    (RMSprop, {"momentum": 0.3, "centered": True}), (Adagrad, {}),
]


@pytest.mark.parametrize("make, config", COMPILED_CONFIGS,
                         ids=[f"{m.__name__}{c}" for m, c in COMPILED_CONFIGS])
@settings(max_examples=10, deadline=None)
@given(dtype=st.sampled_from(["float32", "float64"]), shape=st.sampled_from([(), (3,), (2, 2)]),
       steps=st.integers(1, 6), data=st.data())
def test_compiled_steps_equal_eager_steps_bit_for_bit(make, config, dtype, shape, steps, data):
    """The same optimizer steps, once eagerly and once inside dualad.function (traced on the
    first call, replayed after), give bit-identical variables, slots and step counts, also
    when the learning rate changes between calls."""
    values = hnp.arrays(dtype, shape, elements=st.floats(-3, 3, width=32))
    w0, target = data.draw(values), data.draw(values)
    rates = data.draw(st.lists(st.sampled_from([0.1, 0.01, 0.25]), min_size=steps,
                               max_size=steps))
    runs = []
    for compiled in (False, True):
        w = dd.Variable(w0.copy(), name="w")
        c = dd.constant(target)
        optimizer = make(**config)

        def step():
            with dd.GradientTape() as tape:
                loss = dd.reduce_sum((w - c) * (w - c) * w)
            optimizer.apply_gradients([(tape.gradient(loss, w), w)])
            return loss

        run = dd.function(step) if compiled else step
        for lr in rates:
            optimizer.learning_rate = lr
            run()
        if compiled:
            assert run.trace_count == 1  # later calls replayed the program
        slots = {name: optimizer.get_slot(w, name) for name in optimizer.get_slot_names()}
        runs.append((w.numpy(), slots, optimizer.iterations))
    (w_eager, slots_eager, it_eager), (w_compiled, slots_compiled, it_compiled) = runs
    np.testing.assert_array_equal(w_compiled, w_eager)
    assert it_compiled == it_eager == steps
    for name in slots_eager:
        np.testing.assert_array_equal(slots_compiled[name], slots_eager[name], err_msg=name)


def test_compiled_tutorial_loop_reproduces_the_eager_result_to_the_last_bit():
    x = dd.Variable(0.0, name="x")
    a, b, c = dd.constant(1.0), dd.constant(-2.0), dd.constant(1.0)
    optimizer = SGD(learning_rate=0.01)

    @dd.function
    def minimize():
        for _ in dd.range(1000):
            with dd.GradientTape() as tape:
                y = a * dd.pow(x, 2) + b * x + c
            optimizer.apply_gradients([(tape.gradient(y, x), x)])
        return a * dd.pow(x, 2) + b * x + c

    minimize()  # traced
    assert x.numpy() == TUTORIAL_X_AFTER_1000_STEPS and optimizer.iterations == 1000
    x.assign(0.0)
    minimize()  # replayed
    assert x.numpy() == TUTORIAL_X_AFTER_1000_STEPS and optimizer.iterations == 2000
    assert minimize.trace_count == 1


def test_a_learning_rate_schedule_runs_the_function_eagerly():
    w = dd.Variable(1.0)
    optimizer = SGD(learning_rate=schedules.ExponentialDecay(0.5, 1, 0.5))

    @dd.function
    def step():
        optimizer.apply_gradients([(dd.constant(1.0), w)])

    with pytest.warns(dd.FunctionFallbackWarning, match="schedule"):
        step()
    step()
    assert w.numpy() == np.float32(1.0 - 0.5 - 0.25)


def test_compiled_apply_gradients_checks_shapes():
    w = dd.Variable(np.zeros(3))

    @dd.function
    def step(g):
        SGD(0.1).apply_gradients([(g, w)])

    with pytest.raises(ValueError, match="shape"):
        step(dd.constant(np.zeros(2)))
