"""SGD minimising a·x² + b·x + c (GT-SGD-01 .. GT-SGD-04); several variables, momentum (GT-OPT-01, 02); Adam, RMSprop, Adagrad (GT-OPT-03 .. 05)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.harness import make, to_numpy
from conformance.strategies import Domain, arrays, as_dtype, float_dtypes, floats, learning_rates, shapes
from conformance.tolerances import assert_close, assert_sgd_step
from conformance.tutorial_functions import quadratic

TUTORIAL_ABC = (1.0, -2.0, 1.0)
TUTORIAL_MINIMUM_AFTER_1000_STEPS = 0.999998569  # float32, lr = 0.01, from x = 0
CURVATURE = Domain(0.5, 2.0)  # a > 0: the quadratic has a minimum


class Quadratic:
    """A variable x and the loss a·x² + b·x + c, with the library's own gradient."""

    def __init__(self, impl, x0, abc, dtype):
        self.impl, self.dtype = impl, dtype
        self.x = impl.variable(as_dtype(x0, dtype), dtype)
        self.abc = [make(impl, v, dtype) for v in abc]

    def loss(self):
        return quadratic(self.impl, self.x, *self.abc)

    def gradient(self):
        with self.impl.tape() as tape:
            y = self.loss()
        return tape.gradient(y, self.x)

    def value(self):
        return to_numpy(self.impl, self.x)


def apply_gradient_step(problem, optimizer):
    """One tutorial step: gradient on a tape, then apply_gradients. Returns (x before, g)."""
    before, g = problem.value(), problem.gradient()
    optimizer.apply_gradients([(g, problem.x)])
    return before, to_numpy(problem.impl, g)


# GT-SGD-01 ----------------------------------------------------------------------


@pytest.mark.identity("GT-SGD-01")
@pytest.mark.requires("variables", "sgd")
@given(
    dtype=float_dtypes(),
    xg=shapes().flatmap(lambda s: st.tuples(arrays(s), arrays(s))),
    learning_rate=learning_rates(),
)
def test_apply_gradients_updates_x_by_minus_lr_times_g(impl, dtype, xg, learning_rate):
    x0, g = xg
    x = impl.variable(as_dtype(x0, dtype), dtype)
    impl.sgd(learning_rate).apply_gradients([(make(impl, g, dtype), x)])
    assert_sgd_step(to_numpy(impl, x), x0, learning_rate, g, dtype, "x after one step")


# GT-SGD-02 ----------------------------------------------------------------------


@pytest.mark.identity("GT-SGD-02")
@pytest.mark.requires("variables", "sgd")
@given(
    dtype=float_dtypes(),
    x0=floats(),
    a=floats(CURVATURE),
    b=floats(),
    learning_rate=floats(Domain(2.0**-8, 0.25)),
    steps=st.integers(1, 30),
)
def test_sgd_on_a_quadratic_converges_to_minus_b_over_2a(impl, dtype, x0, a, b, learning_rate, steps):
    # Each step maps x - x* to (1 - 2a·lr)(x - x*), with x* = -b/2a.
    problem = Quadratic(impl, x0, [a, b, 0.0], dtype)
    optimizer = impl.sgd(learning_rate)
    for _ in range(steps):
        apply_gradient_step(problem, optimizer)
    minimum = -b / (2 * a)
    contraction = 1 - 2 * a * learning_rate
    expected = minimum + contraction**steps * (x0 - minimum)
    assert_close(problem.value(), expected, dtype, f"x after {steps} steps vs x* + (1-2a·lr)^n (x0 - x*)")


@pytest.mark.identity("GT-SGD-02")
@pytest.mark.requires("variables", "sgd")
def test_sgd_apply_gradients_tutorial_example(impl):
    problem = Quadratic(impl, 0.0, TUTORIAL_ABC, "float32")
    optimizer = impl.sgd(0.01)
    for _ in range(1000):
        apply_gradient_step(problem, optimizer)
    assert_close(problem.value(), TUTORIAL_MINIMUM_AFTER_1000_STEPS, "float32", "x after 1000 steps")


# GT-SGD-03 ----------------------------------------------------------------------


@pytest.mark.identity("GT-SGD-03")
@pytest.mark.requires("variables", "sgd_minimize")
@given(dtype=float_dtypes(), x0=floats(), abc=arrays((3,)), learning_rate=learning_rates())
def test_minimize_steps_by_minus_lr_times_the_gradient(impl, dtype, x0, abc, learning_rate):
    problem = Quadratic(impl, x0, abc, dtype)
    g = to_numpy(impl, problem.gradient())
    impl.sgd(learning_rate).minimize(problem.loss, [problem.x])
    assert_close(g, 2 * abc[0] * x0 + abc[1], dtype, "the gradient minimize uses")
    assert_sgd_step(problem.value(), x0, learning_rate, g, dtype, "x after minimize")


@pytest.mark.identity("GT-SGD-03")
@pytest.mark.requires("variables", "sgd_minimize")
def test_sgd_minimize_tutorial_example(impl):
    problem = Quadratic(impl, 0.0, TUTORIAL_ABC, "float32")
    optimizer = impl.sgd(0.01)
    for _ in range(1000):
        optimizer.minimize(problem.loss, [problem.x])
    assert_close(problem.value(), TUTORIAL_MINIMUM_AFTER_1000_STEPS, "float32", "x after 1000 minimize steps")


# GT-SGD-04 ----------------------------------------------------------------------


@pytest.mark.identity("GT-SGD-04")
@pytest.mark.requires("variables", "sgd", "learning_rate_change")
@given(
    dtype=float_dtypes(),
    x0=floats(),
    abc=arrays((3,)),
    rates=st.tuples(learning_rates(), learning_rates()).filter(lambda r: max(r) >= 2 * min(r)),  # clearly different
    steps_before=st.integers(0, 3),
)
def test_changed_learning_rate_is_used_by_the_next_step(impl, dtype, x0, abc, rates, steps_before):
    first_rate, second_rate = rates
    problem = Quadratic(impl, x0, abc, dtype)
    optimizer = impl.sgd(first_rate)
    for _ in range(steps_before):
        apply_gradient_step(problem, optimizer)
    optimizer.set_learning_rate(second_rate)
    before, g = apply_gradient_step(problem, optimizer)
    assert_sgd_step(problem.value(), before, second_rate, g, dtype, "x after the rate change")


@pytest.mark.identity("GT-SGD-04")
@pytest.mark.requires("variables", "sgd", "learning_rate_change")
def test_learning_rate_change_tutorial_example(impl):
    problem = Quadratic(impl, 0.0, TUTORIAL_ABC, "float32")
    optimizer = impl.sgd(0.01)
    for _ in range(1000):
        apply_gradient_step(problem, optimizer)
    stalled = problem.value()
    optimizer.set_learning_rate(0.1)
    for step in range(10):
        before, g = apply_gradient_step(problem, optimizer)
        assert_sgd_step(problem.value(), before, 0.1, g, "float32", f"x after step {step} at lr 0.1")
    assert abs(problem.value() - 1.0) < abs(stalled - 1.0), "the larger rate should move x past the float32 stall"


# GT-OPT-01 ----------------------------------------------------------------------


@st.composite
def several_variables(draw):
    """2–4 variables of any shapes (equal ones included), each with its own target and curvature."""
    n = draw(st.integers(2, 4), label="number of variables")
    shape_list = draw(st.lists(shapes(), min_size=n, max_size=n), label="shapes")
    if draw(st.booleans(), label="all the same shape"):
        shape_list = [shape_list[0]] * n
    starts = [draw(arrays(s), label=f"x{j}") for j, s in enumerate(shape_list)]
    targets = [draw(arrays(s), label=f"t{j}") for j, s in enumerate(shape_list)]
    curvatures = [draw(floats(CURVATURE), label=f"c{j}") for j in range(n)]
    return starts, targets, curvatures


class SeveralQuadratics:
    """Variables x_j and the loss Σ_j c_j Σ (x_j − t_j)²: each x_j contracts to t_j by 1 − 2c_j·lr per step."""

    def __init__(self, impl, problem, dtype):
        starts, targets, self.curvatures = problem
        self.impl, self.dtype = impl, dtype
        self.variables = [impl.variable(as_dtype(s, dtype), dtype) for s in starts]
        self.targets = [make(impl, t, dtype) for t in targets]

    def loss(self):
        impl, total = self.impl, None
        for c, x, t in zip(self.curvatures, self.variables, self.targets):
            term = impl.multiply(c, impl.reduce_sum(impl.square(impl.subtract(x, t))))
            total = term if total is None else impl.add(total, term)
        return total

    def expected(self, problem, learning_rate, steps):
        starts, targets, _ = problem
        rate = float(np.dtype(self.dtype).type(learning_rate))
        return [t + (1 - 2 * c * rate) ** steps * (s - t) for s, t, c in zip(starts, targets, self.curvatures)]


@pytest.mark.identity("GT-OPT-01")
@pytest.mark.requires("variables", "sgd")
@given(
    dtype=float_dtypes(),
    problem=several_variables(),
    learning_rate=floats(Domain(2.0**-6, 0.25)),
    steps=st.integers(1, 5),
    data=st.data(),
)
def test_apply_gradients_updates_every_pair_at_every_step(impl, dtype, problem, learning_rate, steps, data):
    quadratics = SeveralQuadratics(impl, problem, dtype)
    optimizer = impl.sgd(learning_rate)
    order = data.draw(st.permutations(range(len(quadratics.variables))), label="order of the pairs")
    for _ in range(steps):
        with impl.tape() as tape:
            y = quadratics.loss()
        grads = tape.gradient(y, quadratics.variables)
        optimizer.apply_gradients([(grads[j], quadratics.variables[j]) for j in order])
    for j, (variable, want) in enumerate(zip(quadratics.variables, quadratics.expected(problem, learning_rate, steps))):
        assert_close(to_numpy(impl, variable), want, dtype, f"x{j} after {steps} steps")


@pytest.mark.identity("GT-OPT-01")
@pytest.mark.requires("variables", "sgd_minimize")
@given(
    dtype=float_dtypes(),
    problem=several_variables(),
    learning_rate=floats(Domain(2.0**-6, 0.25)),
    steps=st.integers(1, 5),
)
def test_minimize_updates_every_variable_of_the_var_list(impl, dtype, problem, learning_rate, steps):
    quadratics = SeveralQuadratics(impl, problem, dtype)
    optimizer = impl.sgd(learning_rate)
    for _ in range(steps):
        optimizer.minimize(quadratics.loss, quadratics.variables)
    for j, (variable, want) in enumerate(zip(quadratics.variables, quadratics.expected(problem, learning_rate, steps))):
        assert_close(to_numpy(impl, variable), want, dtype, f"x{j} after {steps} minimize steps")


# GT-OPT-02 ----------------------------------------------------------------------


@pytest.mark.identity("GT-OPT-02")
@pytest.mark.requires("variables", "sgd", "momentum")
@given(
    dtype=float_dtypes(),
    x0=arrays(shapes()),
    abc=arrays((3,)),
    a=floats(CURVATURE),
    learning_rate=floats(Domain(2.0**-6, 0.25)),
    momentum=floats(Domain(0.25, 0.875)),
    steps=st.integers(2, 8),
)
def test_sgd_with_momentum_follows_the_velocity_rule(impl, dtype, x0, abc, a, learning_rate, momentum, steps):
    _, b, c = abc
    problem = Quadratic(impl, x0, [a, b, c], dtype)
    optimizer = impl.sgd(learning_rate, momentum=momentum)
    x, velocity = np.array(x0, np.float64), np.zeros_like(x0)
    rate, m = (float(np.dtype(dtype).type(v)) for v in (learning_rate, momentum))
    for _ in range(steps):
        apply_gradient_step(problem, optimizer)
        velocity = m * velocity - rate * (2 * a * x + b)  # v ← m·v − lr·g, x ← x + v
        x = x + velocity
    assert_close(problem.value(), x, dtype, f"x after {steps} momentum steps")


@pytest.mark.identity("GT-OPT-02")
@pytest.mark.requires("variables", "sgd", "momentum", "learning_rate_change")
@given(
    dtype=float_dtypes(),
    shape=shapes(),
    n=st.integers(2, 3),
    learning_rate=floats(Domain(2.0**-6, 0.25)),
    momentum=floats(Domain(0.25, 0.875)),
    steps=st.integers(2, 5),
    data=st.data(),
)
def test_sgd_keeps_a_velocity_per_variable_across_a_rate_change(impl, dtype, shape, n, learning_rate, momentum, steps, data):
    # n Variables of one shape (a velocity slot keyed by shape would be shared), drawn gradients,
    # and the learning rate changed before a drawn step: Keras carries the velocity over as it
    # is (v ← m·v − lr₂·g); a buffer of summed gradients scaled by the current rate does not.
    starts = [data.draw(arrays(shape, OPTIMIZER_START), label=f"x{j}") for j in range(n)]
    variables = [impl.variable(as_dtype(s, dtype), dtype) for s in starts]
    change_at = data.draw(st.integers(1, steps - 1), label="rate changed before step")
    factor = data.draw(st.sampled_from([0.25, 0.5, 2.0, 4.0]), label="rate factor")
    optimizer = impl.sgd(learning_rate, momentum=momentum)
    rate, m = (float(np.dtype(dtype).type(v)) for v in (learning_rate, momentum))
    xs = [as_dtype(s, dtype).astype(np.float64) for s in starts]
    velocities = [np.zeros(shape) for _ in range(n)]
    for step in range(steps):
        if step == change_at:
            rate *= factor  # exact: a power of two
            optimizer.set_learning_rate(rate)
        grads = [as_dtype(data.draw(arrays(shape, OPTIMIZER_GRADIENT), label=f"g{j} step {step}"), dtype) for j in range(n)]
        order = data.draw(st.permutations(range(n)), label=f"order at step {step}")
        optimizer.apply_gradients([(make(impl, grads[j], dtype), variables[j]) for j in order])
        for j in range(n):
            velocities[j] = m * velocities[j] - rate * grads[j].astype(np.float64)
            xs[j] = xs[j] + velocities[j]
    for j, (variable, want) in enumerate(zip(variables, xs)):
        assert_close(to_numpy(impl, variable), want, dtype, f"x{j} after {steps} momentum steps, rate ×{factor} at step {change_at}")


# GT-OPT-03 .. GT-OPT-05: Adam, RMSprop, Adagrad -----------------------------------
# Each is checked against Keras' update rule evaluated in float64 NumPy, on drawn gradients
# (no loss, so a rounding difference is not fed back through the gradient). Epsilon is drawn
# large enough (≥ 2⁻⁷) that where it enters the rule changes the result far beyond the
# tolerance: the identities pin Keras' placement, stated with each reference below.

OPTIMIZER_START = Domain(-1.0, 1.0)  # small, so a wrong step is large next to the tolerance's |x| term
OPTIMIZER_GRADIENT = Domain(-4.0, 4.0)
EPSILON = Domain(2.0**-7, 0.5)
DECAY = Domain(0.5, 0.9375)  # beta_1, rho (bounds exact in float32, as every drawn value is)


@st.composite
def gradient_sequences(draw):
    """2–4 variables of any shapes, their starting values, and a gradient for each at each of 1–5 steps."""
    n = draw(st.integers(2, 4), label="number of variables")
    steps = draw(st.integers(1, 5), label="steps")
    shape_list = draw(st.lists(shapes(), min_size=n, max_size=n), label="shapes")
    starts = [draw(arrays(s, OPTIMIZER_START), label=f"x{j}") for j, s in enumerate(shape_list)]
    gradients = [[draw(arrays(s, OPTIMIZER_GRADIENT), label=f"g{j} at step {k}") for j, s in enumerate(shape_list)]
                 for k in range(steps)]
    order = draw(st.permutations(range(n)), label="order of the pairs")
    return starts, gradients, order


def keras_adam(learning_rate, beta_1, beta_2, epsilon):
    """Keras' Adam, epsilon *hat* (added to √v before the bias correction of the step size):
    m ← m + (g − m)(1 − β₁), v ← v + (g² − v)(1 − β₂), x ← x − lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m/(√v + ε)."""

    def step(x, g, state, t):
        m, v = state.get("m", 0.0), state.get("v", 0.0)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g * g - v) * (1 - beta_2)
        state.update(m=m, v=v)
        alpha = learning_rate * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        return alpha * m / (np.sqrt(v) + epsilon)

    return step


def keras_rmsprop(learning_rate, rho, epsilon):
    """Keras' RMSprop (no momentum, not centred), epsilon inside the square root:
    v ← ρ·v + (1 − ρ)·g² (v₀ = 0), x ← x − lr·g/√(v + ε)."""

    def step(x, g, state, t):
        v = rho * state.get("v", 0.0) + (1 - rho) * g * g
        state["v"] = v
        return learning_rate * g / np.sqrt(v + epsilon)

    return step


def keras_adagrad(learning_rate, initial_accumulator_value, epsilon):
    """Keras' Adagrad, epsilon inside the square root: a ← a + g² (a₀ = initial_accumulator_value),
    x ← x − lr·g/√(a + ε)."""

    def step(x, g, state, t):
        accumulator = state.get("a", initial_accumulator_value) + g * g
        state["a"] = accumulator
        return learning_rate * g / np.sqrt(accumulator + epsilon)

    return step


def check_adaptive_optimizer(impl, optimizer, rule, problem, dtype, what):
    """Apply the drawn gradients step by step; compare every variable with ``rule`` run in float64."""
    starts, gradients, order = problem
    variables = [impl.variable(as_dtype(s, dtype), dtype) for s in starts]
    expected = [np.array(s, np.float64) for s in starts]
    magnitude = [np.abs(s) for s in starts]  # |x₀| + Σ|steps|: what the result is computed from
    states = [{} for _ in starts]
    for t, step_gradients in enumerate(gradients, start=1):
        optimizer.apply_gradients([(make(impl, step_gradients[j], dtype), variables[j]) for j in order])
        for j, g in enumerate(step_gradients):
            delta = rule(expected[j], g, states[j], t)
            expected[j] = expected[j] - delta
            magnitude[j] = magnitude[j] + np.abs(delta)
    for j, variable in enumerate(variables):
        got = to_numpy(impl, variable)
        assert got.dtype == np.dtype(dtype), f"{what}: {dtype} x{j} became {got.dtype}"
        assert_close(got, expected[j], dtype, f"{what}: x{j} after {len(gradients)} steps", scale=magnitude[j])


def as_stored(value, dtype):
    """A hyperparameter as the variable's dtype holds it (all are drawn float32-representable)."""
    return float(np.dtype(dtype).type(value))


@pytest.mark.identity("GT-OPT-03")
@pytest.mark.requires("variables", "adam")
@given(
    dtype=float_dtypes(),
    problem=gradient_sequences(),
    learning_rate=learning_rates(),
    beta_1=floats(DECAY),
    beta_2=floats(Domain(0.5, 0.998046875)),  # up to 1 − 2⁻⁹
    epsilon=floats(EPSILON),
)
def test_adam_follows_the_keras_update(impl, dtype, problem, learning_rate, beta_1, beta_2, epsilon):
    rule = keras_adam(*(as_stored(v, dtype) for v in (learning_rate, beta_1, beta_2, epsilon)))
    optimizer = impl.adam(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    check_adaptive_optimizer(impl, optimizer, rule, problem, dtype, "Adam")


@pytest.mark.identity("GT-OPT-04")
@pytest.mark.requires("variables", "rmsprop")
@given(dtype=float_dtypes(), problem=gradient_sequences(), learning_rate=learning_rates(),
       rho=floats(DECAY), epsilon=floats(EPSILON))
def test_rmsprop_follows_the_keras_update(impl, dtype, problem, learning_rate, rho, epsilon):
    rule = keras_rmsprop(*(as_stored(v, dtype) for v in (learning_rate, rho, epsilon)))
    optimizer = impl.rmsprop(learning_rate, rho=rho, epsilon=epsilon)
    check_adaptive_optimizer(impl, optimizer, rule, problem, dtype, "RMSprop")


@pytest.mark.identity("GT-OPT-05")
@pytest.mark.requires("variables", "adagrad")
@given(dtype=float_dtypes(), problem=gradient_sequences(), learning_rate=learning_rates(),
       initial_accumulator_value=floats(Domain(2.0**-4, 1.0)), epsilon=floats(EPSILON))
def test_adagrad_follows_the_keras_update(impl, dtype, problem, learning_rate, initial_accumulator_value, epsilon):
    rule = keras_adagrad(*(as_stored(v, dtype) for v in (learning_rate, initial_accumulator_value, epsilon)))
    optimizer = impl.adagrad(learning_rate, initial_accumulator_value=initial_accumulator_value, epsilon=epsilon)
    check_adaptive_optimizer(impl, optimizer, rule, problem, dtype, "Adagrad")
