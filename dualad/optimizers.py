"""Gradient-descent optimizers with the update rules and defaults of Keras 3: SGD (with
momentum and Nesterov momentum), Adam (and AMSGrad), RMSprop (plain, centered, with momentum)
and Adagrad, plus learning-rate schedules in `dualad.optimizers.schedules`.

    opt = dualad.optimizers.SGD(learning_rate=0.01)
    with dualad.GradientTape() as tape:
        loss = f(x)
    opt.apply_gradients([(tape.gradient(loss, x), x)])    # or: opt.minimize(lambda: f(x), [x])
    opt.learning_rate = 0.1                                # takes effect at the next step

How a step is computed
----------------------
* Every update runs in the variable's dtype: the gradient, the learning rate and each
  hyperparameter are cast to that dtype first, and each operation rounds to it, as in Keras.
  Array variables are updated with numpy; float32/float64 scalars with the core's C scalar
  ops; inside `dualad.function` the same rule is recorded as dualad ops into the program.
  (The one place these can differ from numpy is Adam's float32 bias correction β**t, a C
  double power rounded to float32 rather than numpy's float32 power: at most one ulp, rarely.)
  Nothing is recorded on active tapes or accumulators. Eagerly, a step on float32/float64
  array Variables (once their slots exist) computes into buffers the optimizer owns and then
  writes each new value into the Variable's own array if nothing else holds that array (no
  Tensor or snapshot read from it, no tape entry, numpy view or memoryview of it, no other
  Variable sharing it), else gives the Variable a new array: a value read before the step
  never changes. Slots are updated in place the same way.
* A gradient of another float dtype than its variable is cast to the variable's dtype (Keras
  does the same). A None gradient skips its variable with a warning naming it; if every
  gradient is None the call raises ValueError.
* Gradients holding NaN or inf are applied like any other (Keras does not check them either):
  the variable and the optimizer's slots become NaN. Check gradients yourself if that matters.
* The learning rate is a float >= 0 or a schedule: a callable of the step count `iterations`
  (the number of steps applied so far), such as `schedules.ExponentialDecay`. A callable that
  takes no argument is called without one, as Keras 3 does.
* A step is atomic: every gradient is checked and every update computed before anything is
  assigned, so an exception or KeyboardInterrupt halfway (a bad gradient for the 5th variable,
  a raising schedule) leaves all variables, slots and `iterations` as they were; one arriving
  during the assignments themselves rolls them back. The same Variable twice in one call is a
  ValueError (Keras would apply both updates in turn); an entry that is not a (gradient,
  Variable) pair is a TypeError. A schedule (or gradient) that calls apply_gradients on the
  same optimizer is a RuntimeError; threads sharing an optimizer take turns.
* Once dualad.function has compiled steps with a constant learning rate, assigning a schedule
  to that optimizer is a ValueError: the compiled program reads the rate from a variable and
  would ignore it. Constant rates assigned later do reach the program.

Deliberate differences from Keras
---------------------------------
* Float64 variables get every constant at full precision. Keras stores the learning rate as a
  float32 variable and casts SGD's momentum, Adam's beta_1/beta_2 (in the bias correction) and
  Adagrad's initial accumulator through float32, so its float64 updates use those values
  rounded to float32. (With constants exactly representable in float32 the two agree bit for
  bit, as does every float32 update.) The built-in schedules compute in Python floats, where
  Keras computes them in float32.
* Keras accepts only Python floats as learning rate and momentum; here any real number is
  accepted. Negative, NaN or infinite learning rates (also from a schedule) and out-of-range
  hyperparameters are a ValueError here; Keras takes them.
* No clipping, weight decay, EMA or gradient accumulation options.

State
-----
Slots (momentum, Adam's m and v, ...) are kept per variable, keyed by the Variable object itself
(which hashes by identity; subclasses that override __hash__ are refused), so the optimizer keeps
it alive and a new Variable can never inherit a dead one's slots. `get_state()` returns plain data (numpy arrays and numbers, plus the
learning-rate schedule object if there is one); `set_state(state, var_list)` restores it into
any optimizer built with the same configuration (`type(opt).from_config(opt.get_config())`),
attaching the slots to `var_list` in the order the original optimizer first saw its variables.
A restored run continues bit for bit like an uninterrupted one. set_state checks the whole state
first (TypeError/ValueError naming the problem, optimizer unchanged) and assigns restored slots
into the slot Variables the optimizer already has for those variables, so steps compiled before
the restore see the restored values.

Optimizers cannot be pickled or copied (`pickle.dumps`, `copy.copy` and `copy.deepcopy` raise
TypeError): a copy's slots would belong to copies of the variables, not to the live ones. Save
`get_config()` and `get_state()` instead, as TensorFlow's Keras optimizers also require.
"""
import sys

import numpy as np

from . import _core, arguments, optimizer_base, schedules
from .optimizer_base import Optimizer
# (ExponentialDecay and PiecewiseConstantDecay were defined here: they stay importable from here)
from .schedules import ExponentialDecay, LearningRateSchedule, PiecewiseConstantDecay  # noqa: F401

# `from dualad.optimizers.schedules import ExponentialDecay`, as in Keras: the module under its
# second name
sys.modules[__name__ + ".schedules"] = schedules

_FUSED = _core.FUSED_RULES  # the commit's fused rules (see Optimizer._fused_rule)
_Field = _core.OptimizerField  # an attribute kept where the C step reads it (its index there)


def __dir__():
    """The optimizers' namespace without the modules it imports (numpy, sys), except
    `schedules`, which belongs to it."""
    return sorted(name for name, value in globals().items()
                  if name == "schedules" or not isinstance(value, type(schedules)))


__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "schedules"]

class SGD(Optimizer):
    """Gradient descent, optionally with momentum (Keras' formulation):

        momentum == 0:  w ← w − lr·g
        momentum > 0:   m ← momentum·m − lr·g;   w ← w + m
        nesterov:       m as above;              w ← w + momentum·m − lr·g
    """

    # (the C step's fields: see _core.OptimizerField)
    _lr, momentum, nesterov = _Field(0), _Field(1), _Field(4)
    _slots, _steps = _Field(5), _Field(6)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name=None):
        super().__init__(learning_rate, name)
        self.momentum = arguments.check_unit(momentum, "momentum")
        self.nesterov = bool(nesterov)

    def _update(self, w, g, lr, slots, step):
        if self.momentum == 0:
            return w - g * lr
        mu = optimizer_base.scalar_type(w)(self.momentum)
        m = self._slot(slots, "momentum", w) * mu - g * lr
        slots["momentum"] = m
        if self.nesterov:
            return w + (m * mu - g * lr)
        return w + m

    _scalar_rule = _core.OPTIMIZER_RULES["SGD"]

    def _uses_work_buffer(self):
        return self.momentum != 0 and self.nesterov

    def _descends_at_commit(self):
        # (a subclass or a patch with its own _update_into gets it)
        return self.momentum == 0 and type(self)._update_into is _SGD_UPDATE_INTO

    def _update_into(self, w, g, lr, slots, step, out):
        value = out["value"]
        if self.momentum == 0:
            np.subtract(w, np.multiply(g, lr, out=value), out=value)
            return
        mu = optimizer_base.scalar_type(w)(self.momentum)
        m = out["momentum"]
        np.multiply(slots["momentum"], mu, out=m)
        np.subtract(m, np.multiply(g, lr, out=value), out=m)
        if self.nesterov:
            work = np.multiply(g, lr, out=out["work"])
            np.subtract(np.multiply(m, mu, out=value), work, out=value)
            np.add(w, value, out=value)
        else:
            np.add(w, m, out=value)

    def _fused_rule(self, dtype, lr, step):
        if self.momentum == 0:
            return None
        dt = dtype.type
        return (_FUSED["SGD_NESTEROV" if self.nesterov else "SGD_MOMENTUM"], float(dt(lr)),
                float(dt(self.momentum)))

    def get_slot_names(self):
        return ("momentum",) if self.momentum != 0 else ()

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam with Keras' bias correction folded into the step size (epsilon is 'epsilon hat'):

        m ← m + (1 − β₁)(g − m);   v ← v + (1 − β₂)(g² − v)
        amsgrad: v̂ ← max(v̂, v), used in place of v below
        α = lr·√(1 − β₂ᵗ) / (1 − β₁ᵗ),  t = iterations + 1
        w ← w − α·m / (√v + ε)
    """

    _lr, beta_1, beta_2, epsilon, amsgrad = _Field(0), _Field(1), _Field(2), _Field(3), _Field(4)
    _slots, _steps = _Field(5), _Field(6)

    _uses_step = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, name=None):
        super().__init__(learning_rate, name)
        self.beta_1 = arguments.check_unit(beta_1, "beta_1", below_one=True)
        self.beta_2 = arguments.check_unit(beta_2, "beta_2", below_one=True)
        self.epsilon = arguments.check_nonnegative(epsilon, "epsilon")
        self.amsgrad = bool(amsgrad)

    def _update(self, w, g, lr, slots, step):
        dt = optimizer_base.scalar_type(w)
        t = step
        alpha = lr * np.sqrt(1 - dt(self.beta_2) ** t) / (1 - dt(self.beta_1) ** t)
        m = self._slot(slots, "momentum", w)
        v = self._slot(slots, "velocity", w)
        m = m + (g - m) * dt(1 - self.beta_1)
        v = v + (g * g - v) * dt(1 - self.beta_2)
        slots["momentum"] = m
        slots["velocity"] = v
        if self.amsgrad:
            v = np.maximum(self._slot(slots, "velocity_hat", w), v)
            slots["velocity_hat"] = v
        return w - (m * alpha) / (np.sqrt(v) + dt(self.epsilon))

    _scalar_rule = _core.OPTIMIZER_RULES["Adam"]

    def _update_into(self, w, g, lr, slots, step, out):
        dt = optimizer_base.scalar_type(w)
        t = step
        alpha = lr * np.sqrt(1 - dt(self.beta_2) ** t) / (1 - dt(self.beta_1) ** t)
        m_old, v_old = slots["momentum"], slots["velocity"]
        m = np.subtract(g, m_old, out=out["momentum"])
        np.add(m_old, np.multiply(m, dt(1 - self.beta_1), out=m), out=m)
        v = np.multiply(g, g, out=out["velocity"])
        np.subtract(v, v_old, out=v)
        np.add(v_old, np.multiply(v, dt(1 - self.beta_2), out=v), out=v)
        if self.amsgrad:
            v = np.maximum(slots["velocity_hat"], v, out=out["velocity_hat"])
        value, work = out["value"], out["work"]
        np.multiply(m, alpha, out=value)
        np.add(np.sqrt(v, out=work), dt(self.epsilon), out=work)
        np.subtract(w, np.divide(value, work, out=value), out=value)

    def _fused_rule(self, dtype, lr, step):
        dt = dtype.type
        lr, t = dt(lr), dt(step)
        alpha = lr * np.sqrt(1 - dt(self.beta_2) ** t) / (1 - dt(self.beta_1) ** t)
        return (_FUSED["ADAM_AMSGRAD" if self.amsgrad else "ADAM"], float(alpha),
                float(dt(1 - self.beta_1)), float(dt(1 - self.beta_2)), float(dt(self.epsilon)))

    def get_slot_names(self):
        return ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class RMSprop(Optimizer):
    """RMSprop as in Keras:

        v ← ρ·v + (1 − ρ)·g²
        centered: a ← ρ·a + (1 − ρ)·g;  d = v − a² + ε      otherwise: d = v + ε
        Δ = lr·g / √d
        momentum > 0: μ ← momentum·μ + Δ;  w ← w − μ        otherwise: w ← w − Δ
    """

    _lr, rho, momentum, epsilon, centered = _Field(0), _Field(1), _Field(2), _Field(3), _Field(4)
    _slots, _steps = _Field(5), _Field(6)

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, name=None):
        super().__init__(learning_rate, name)
        self.rho = arguments.check_unit(rho, "rho")
        self.momentum = arguments.check_unit(momentum, "momentum")
        self.epsilon = arguments.check_nonnegative(epsilon, "epsilon")
        self.centered = bool(centered)

    def _update(self, w, g, lr, slots, step):
        dt = optimizer_base.scalar_type(w)
        rho, one_minus_rho = dt(self.rho), dt(1 - self.rho)
        v = rho * self._slot(slots, "velocity", w) + one_minus_rho * (g * g)
        slots["velocity"] = v
        if self.centered:
            a = rho * self._slot(slots, "average_gradient", w) + one_minus_rho * g
            slots["average_gradient"] = a
            denominator = v - a * a + dt(self.epsilon)
        else:
            denominator = v + dt(self.epsilon)
        increment = lr * g / np.sqrt(denominator)
        if self.momentum > 0:
            mu = dt(self.momentum) * self._slot(slots, "momentum", w) + increment
            slots["momentum"] = mu
            return w - mu
        return w - increment

    _scalar_rule = _core.OPTIMIZER_RULES["RMSprop"]

    def _update_into(self, w, g, lr, slots, step, out):
        dt = optimizer_base.scalar_type(w)
        rho, one_minus_rho = dt(self.rho), dt(1 - self.rho)
        value, work = out["value"], out["work"]
        v = np.multiply(rho, slots["velocity"], out=out["velocity"])
        np.add(v, np.multiply(one_minus_rho, np.multiply(g, g, out=work), out=work), out=v)
        if self.centered:
            a = np.multiply(rho, slots["average_gradient"], out=out["average_gradient"])
            np.add(a, np.multiply(one_minus_rho, g, out=work), out=a)
            np.subtract(v, np.multiply(a, a, out=work), out=work)
            np.add(work, dt(self.epsilon), out=work)  # the denominator
        else:
            np.add(v, dt(self.epsilon), out=work)
        increment = np.divide(np.multiply(lr, g, out=value), np.sqrt(work, out=work), out=value)
        if self.momentum > 0:
            mu = np.multiply(dt(self.momentum), slots["momentum"], out=out["momentum"])
            np.add(mu, increment, out=mu)
            np.subtract(w, mu, out=value)
        else:
            np.subtract(w, increment, out=value)

    def _fused_rule(self, dtype, lr, step):
        dt = dtype.type
        name = "RMSPROP" + ("_CENTERED" if self.centered else "") + (
            "_MOMENTUM" if self.momentum > 0 else "")
        return (_FUSED[name], float(dt(lr)), float(dt(self.rho)), float(dt(1 - self.rho)),
                float(dt(self.epsilon)), float(dt(self.momentum)))

    def get_slot_names(self):
        return (("velocity",) + (("momentum",) if self.momentum > 0 else ())
                + (("average_gradient",) if self.centered else ()))

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad as in Keras: the accumulator starts at initial_accumulator_value, then

        A ← A + g²;   w ← w − lr·g / √(A + ε)
    """

    _lr, epsilon = _Field(0), _Field(1)
    _slots, _steps = _Field(5), _Field(6)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 name=None):
        super().__init__(learning_rate, name)
        self.initial_accumulator_value = arguments.check_nonnegative(initial_accumulator_value,
                                                            "initial_accumulator_value")
        self.epsilon = arguments.check_nonnegative(epsilon, "epsilon")

    def _update(self, w, g, lr, slots, step):
        accumulator = self._slot(slots, "accumulator", w) + g * g
        slots["accumulator"] = accumulator
        return w - lr * g / np.sqrt(accumulator + optimizer_base.scalar_type(w)(self.epsilon))

    def _slot_fill(self, name):
        return self.initial_accumulator_value

    _scalar_rule = _core.OPTIMIZER_RULES["Adagrad"]

    def _update_into(self, w, g, lr, slots, step, out):
        accumulator = np.multiply(g, g, out=out["accumulator"])
        np.add(slots["accumulator"], accumulator, out=accumulator)
        work = np.add(accumulator, optimizer_base.scalar_type(w)(self.epsilon), out=out["work"])
        value = np.multiply(lr, g, out=out["value"])
        np.subtract(w, np.divide(value, np.sqrt(work, out=work), out=value), out=value)

    def _fused_rule(self, dtype, lr, step):
        dt = dtype.type
        return (_FUSED["ADAGRAD"], float(dt(lr)), float(dt(self.epsilon)))

    def get_slot_names(self):
        return ("accumulator",)

    def get_config(self):
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


# each built-in rule's in-place form, used while the class's _update is the one it implements,
# and fused by the commit while its _update_into is the built-in one
for _cls in (SGD, Adam, RMSprop, Adagrad):
    _cls._rule_of_update_into = _cls._update
    _cls._fused_update_into = _cls._update_into
del _cls
# their instances' OptimizerFields are read by the C step
_core.register_builtin_optimizers(SGD, Adam, RMSprop, Adagrad)
# the rule whose momentum-free step commit_in_place computes itself
_SGD_UPDATE_INTO = SGD._update_into
