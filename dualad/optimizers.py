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
  The step writes a new value with `Variable.assign`; arrays a tape may hold are never
  modified, and nothing is recorded on active tapes or accumulators.
* A gradient of another float dtype than its variable is cast to the variable's dtype (Keras
  does the same). A None gradient skips its variable with a warning naming it; if every
  gradient is None the call raises ValueError.
* Gradients holding NaN or inf are applied like any other (Keras does not check them either):
  the variable and the optimizer's slots become NaN. Check gradients yourself if that matters.
* The learning rate is a float >= 0 or a schedule: a callable of the step count `iterations`
  (the number of steps applied so far), such as `schedules.ExponentialDecay`. A callable that
  takes no argument is called without one, as Keras 3 does.

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
Slots (momentum, Adam's m and v, ...) are kept per variable, keyed by the variable's identity,
and hold a reference to it. `get_state()` returns plain data (numpy arrays and numbers, plus the
learning-rate schedule object if there is one); `set_state(state, var_list)` restores it into
any optimizer built with the same configuration (`type(opt).from_config(opt.get_config())`),
attaching the slots to `var_list` in the order the original optimizer first saw its variables.
A restored run continues bit for bit like an uninterrupted one.
"""
import bisect
import contextlib
import inspect
import math
import numbers
import sys
import types
import warnings

import numpy as np

from . import _core, ops
from ._core import Tensor, Variable
from .tape import GradientTape

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "schedules"]


# ---- argument checks ----------------------------------------------------------------------

def _real(value, what):
    """`value` as a Python float: a real number, or a single-element tensor or array."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what} must be a number, got {value!r}")
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (Tensor, np.ndarray)):
        arr = np.asarray(value)
        if arr.shape == () and arr.dtype.kind in "iuf":
            return float(arr)
    raise TypeError(f"{what} must be a real number, got {type(value).__name__} ({value!r:.60})")


def _check_rate(value, what="learning_rate"):
    rate = _real(value, what)
    if not 0.0 <= rate < math.inf:  # also false for NaN
        raise ValueError(f"{what} must be a finite number >= 0, got {rate!r}")
    return rate


def _check_unit(value, what, below_one=False):
    x = _real(value, what)
    if not (0.0 <= x < 1.0 if below_one else 0.0 <= x <= 1.0):
        raise ValueError(f"{what} must lie in [0, 1{')' if below_one else ']'}, got {x!r}")
    return x


def _check_nonnegative(value, what):
    x = _real(value, what)
    if not 0.0 <= x < math.inf:
        raise ValueError(f"{what} must be a finite number >= 0, got {x!r}")
    return x


def _takes_step(fn):
    """Whether a learning-rate callable is called with the step count (else with nothing)."""
    if isinstance(fn, LearningRateSchedule):
        return True
    try:
        inspect.signature(fn).bind(0)
    except TypeError:
        return False
    except ValueError:  # no signature available (some builtins): assume it takes the step
        return True
    return True


_ONE = _core.scalar(1.0, np.float64)  # the step count's increment
_NOTHING = contextlib.nullcontext()
_C_SCALARS = (np.dtype(np.float32), np.dtype(np.float64))  # dtypes the core's scalar ops run on


def _scalar_type(w):
    """The numpy scalar type of w's dtype (w a numpy value or a dualad tensor)."""
    return w.dtype.np.type if isinstance(w, Tensor) else w.dtype.type


def _full_like(w, fill):
    """A slot's initial value: an array like `w`, or a numpy scalar for a scalar variable."""
    if isinstance(w, np.ndarray):
        return np.full(w.shape, fill, dtype=w.dtype)
    return w.dtype.type(fill)


# ---- learning-rate schedules ----------------------------------------------------------------

class LearningRateSchedule:
    """Base class of schedules: `schedule(step)` is the learning rate of step `step` (the
    optimizer's `iterations` before the step, so the first step is step 0)."""

    def __call__(self, step):
        raise NotImplementedError(f"{type(self).__name__} does not define __call__(step)")

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} does not define get_config()")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class ExponentialDecay(LearningRateSchedule):
    """initial_learning_rate * decay_rate ** (step / decay_steps); with staircase=True the
    exponent is floor(step / decay_steps), so the rate drops every decay_steps steps."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = _check_rate(initial_learning_rate, "initial_learning_rate")
        if not 0.0 < _real(decay_steps, "decay_steps") < math.inf:
            raise ValueError(f"decay_steps must be > 0, got {decay_steps!r}")
        self.decay_steps = decay_steps
        self.decay_rate = _check_nonnegative(decay_rate, "decay_rate")
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.initial_learning_rate * self.decay_rate ** p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] while step <= boundaries[0], values[i] while boundaries[i-1] < step <=
    boundaries[i], and values[-1] once step > boundaries[-1] (Keras' convention)."""

    def __init__(self, boundaries, values):
        boundaries, values = list(boundaries), list(values)
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"PiecewiseConstantDecay needs one value more than boundaries, got "
                             f"{len(boundaries)} boundaries and {len(values)} values")
        if any(b >= c for b, c in zip(boundaries, boundaries[1:])):
            raise ValueError(f"boundaries must be strictly increasing, got {boundaries}")
        self.boundaries = boundaries
        self.values = [_check_rate(v, "a PiecewiseConstantDecay value") for v in values]

    def __call__(self, step):
        # bisect_left counts the boundaries strictly below step
        return self.values[bisect.bisect_left(self.boundaries, step)]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values)}


schedules = types.ModuleType(__name__ + ".schedules", "Learning-rate schedules for "
                             "dualad.optimizers (callables of the optimizer's step count).")
for _cls in (LearningRateSchedule, ExponentialDecay, PiecewiseConstantDecay):
    setattr(schedules, _cls.__name__, _cls)
del _cls
# registered so that `from dualad.optimizers.schedules import ExponentialDecay` works too
sys.modules[schedules.__name__] = schedules


# ---- the optimizer base -----------------------------------------------------------------------

class Optimizer:
    """Base class: the step loop, learning rate, step counter and per-variable slots.

    A subclass defines `_update(w, g, lr, slots, step)`: w and g are the variable's value and
    gradient, lr the learning rate and step the 1-based number of this step, all in the
    variable's dtype, and `slots` the variable's dict of slot values (to read and rebind, never
    to modify in place). It returns the new value. Eagerly the values are numpy arrays (numpy
    scalars for shape-() variables); inside dualad.function they are dualad tensors, so the
    same rule is recorded into the compiled program. It also defines `get_slot_names()`,
    `get_config()` and, for slots that do not start at zero, `_slot_fill(name)`.

    The step count, the learning rate used inside dualad.function, and the slots live in
    non-trainable Variables, so that compiled steps and eager steps share one state."""

    def __init__(self, learning_rate, name=None):
        self.name = type(self).__name__.lower() if name is None else str(name)
        self._steps = _core.state_variable(np.float64(0), "iterations")  # exact to 2**53
        self._lr_vars = {}  # numpy dtype -> Variable holding the float learning rate
        self._slots = {}  # id(variable) -> (variable, {slot name: Variable}), in tracking order
        self.learning_rate = learning_rate

    # ---- learning rate and step count --------------------------------------------------------

    @property
    def iterations(self):
        """The number of steps applied so far (apply_gradients or minimize calls)."""
        return int(self._steps.numpy())

    @property
    def learning_rate(self):
        """The learning rate the next step will use (a schedule evaluated at `iterations`).
        Assign a float or a schedule to change it; it takes effect at the next step."""
        return self._current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value):
        if callable(value):
            self._lr_takes_step = _takes_step(value)
            self._lr = value
        else:
            self._lr = _check_rate(value)
            for dtype, var in self._lr_vars.items():
                var.assign(dtype.type(self._lr))

    def _current_learning_rate(self):
        lr = self._lr
        if type(lr) is float:
            return lr
        value = lr(self.iterations) if self._lr_takes_step else lr()
        return _check_rate(value, f"the learning rate schedule's value at step {self.iterations}")

    # ---- steps -------------------------------------------------------------------------------

    def apply_gradients(self, grads_and_vars):
        """Apply one step to each (gradient, variable) pair and return the new `iterations`.

        Variables must be float `dualad.Variable`s (TypeError otherwise); a gradient must have
        its variable's shape (ValueError naming the variable). A None gradient skips its variable
        with a warning; a call whose gradients are all None raises ValueError. An empty list is
        a no-op. Everything is checked before any variable changes."""
        return self._apply(grads_and_vars, stacklevel=3)

    def minimize(self, loss, var_list, tape=None):
        """Compute the gradients of `loss` with respect to `var_list` and apply them.

        `loss` is a zero-argument callable returning the loss tensor (run under a new
        GradientTape, or under `tape` if given), or an already computed loss Tensor together
        with the `tape` that recorded it. `var_list` is a list of Variables, or a zero-argument
        callable returning one (called after the loss, as in Keras 2). Returns the new
        `iterations`, like apply_gradients (Keras 2's minimize returned an op or None)."""
        if not callable(loss) and tape is None:
            raise ValueError("minimize: a Tensor loss needs the `tape` that recorded it; "
                             "or pass the loss as a zero-argument callable")
        if not callable(var_list):
            var_list = list(var_list)
            for v in var_list:
                _check_variable(v)
        if callable(loss):
            tape = GradientTape() if tape is None else tape
            with tape:
                if not callable(var_list):
                    tape.watch(var_list)
                loss = loss()
                if callable(var_list):
                    var_list = list(var_list())
        elif callable(var_list):
            var_list = list(var_list())
        grads = tape.gradient(loss, var_list)
        return self._apply(zip(grads, var_list), stacklevel=3)

    def _apply(self, grads_and_vars, stacklevel):
        compiled = _core.tracing()
        pairs, missing = [], []
        for grad, var in grads_and_vars:
            dtype = _check_variable(var)
            if grad is None:
                missing.append(var.name)
            elif compiled or (var.ndim == 0 and dtype in _C_SCALARS):
                pairs.append((var, dtype, _gradient_tensor(grad, var, dtype)))
            else:
                pairs.append((var, dtype, _gradient_value(grad, var, dtype)))
        if not pairs:
            if missing:
                raise ValueError(f"No gradients provided for any variable: {missing}")
            return self.iterations
        if missing:
            warnings.warn(f"Gradients do not exist for variables {missing} when minimizing the "
                          "loss; they were not updated", stacklevel=stacklevel)
        scheduled = type(self._lr) is not float
        if compiled and scheduled:  # this call then runs eagerly, the trace only gives values
            _core.mark_impure("a learning-rate schedule is Python code the program cannot run")
        lr = self._current_learning_rate() if scheduled else self._lr
        step = None if compiled else self.iterations + 1
        # an optimizer step is not differentiated: hide it from active tapes and accumulators
        with _core.paused() if _core.active_transformations() else _NOTHING:
            for var, dtype, g in pairs:
                if isinstance(g, Tensor):
                    self._tensor_step(var, dtype, g, lr, step, scheduled)
                else:
                    self._numpy_step(var, dtype, g, lr, step)
            self._steps.assign_add(_ONE)
        return self._steps if compiled else step

    def _tensor_step(self, var, dtype, g, lr, step, scheduled):
        """The update as dualad ops on the Variables (C doubles for scalars). Inside
        dualad.function they are recorded into the program, which then reads the learning
        rate (unless scheduled), the step count and the slots from their Variables."""
        if scheduled:
            lr = _core.scalar(lr, dtype)
        else:
            lr_var = self._lr_vars.get(dtype)
            if lr_var is None:
                lr_var = self._lr_vars[dtype] = _core.state_variable(dtype.type(lr),
                                                                     "learning_rate")
            lr = lr_var
        t = None
        if self._uses_step:  # (a cast is not free in the replay loop)
            t = self._steps + np.float64(1) if step is None else _core.scalar(step, np.float64)
            t = t if dtype == np.float64 else ops.cast(t, dtype)
        slot_vars = self._slot_vars(var)
        if len(slot_vars) < len(self.get_slot_names()):
            for name in self.get_slot_names():
                if name not in slot_vars:
                    slot_vars[name] = _core.state_variable(
                        _frozen(np.full(var.shape, self._slot_fill(name), dtype)), name)
        slots = dict(slot_vars)
        var.assign(self._update(var, g, lr, slots, t))
        for name, value in slots.items():
            if value is not slot_vars[name]:
                slot_vars[name].assign(value)

    def _numpy_step(self, var, dtype, g, lr, step):
        """The update of an array Variable in numpy, eagerly."""
        slot_vars = self._slot_vars(var)
        slots = {name: np.asarray(v) for name, v in slot_vars.items()}
        # inf and NaN propagate as in Keras; numpy's overflow/invalid warnings would be noise
        with np.errstate(all="ignore"):
            new = self._update(np.asarray(var), g, dtype.type(lr), slots, dtype.type(step))
        _store(var, new)
        for name, value in slots.items():
            if name in slot_vars:
                _store(slot_vars[name], value)
            else:
                slot_vars[name] = _core.state_variable(_frozen(value), name)

    def _slot_vars(self, var):
        entry = self._slots.get(id(var))
        if entry is None:
            entry = self._slots[id(var)] = (var, {})
        return entry[1]

    _uses_step = False  # whether _update reads its `step` argument

    def _slot_fill(self, name):
        """The initial value of slot `name`."""
        return 0.0

    def _update(self, w, g, lr, slots, step):
        raise NotImplementedError(f"{type(self).__name__} does not define _update")

    def _slot(self, slots, name, w):
        value = slots.get(name)
        return _full_like(w, self._slot_fill(name)) if value is None else value

    # ---- slots and state ---------------------------------------------------------------------

    def get_slot_names(self):
        """The names of the per-variable slots this configuration keeps."""
        return ()

    def get_slot(self, var, name):
        """A copy of slot `name` of variable `var` (KeyError if it has none)."""
        entry = self._slots.get(id(var))
        if entry is None or name not in entry[1]:
            raise KeyError(f"no slot {name!r} for variable {getattr(var, 'name', var)!r}; slots "
                           "are created by the first step that updates the variable")
        return np.array(entry[1][name].numpy())

    @property
    def tracked_variables(self):
        """The variables this optimizer keeps slots for, in the order it first updated them."""
        return tuple(var for var, _ in self._slots.values())

    def get_state(self):
        """Everything a restored optimizer needs to continue bit for bit: the step count, the
        learning rate (float or schedule object) and copies of every variable's slots, in the
        order of `tracked_variables`. Plain data: picklable if the schedule is."""
        entries = list(self._slots.values())
        return {
            "iterations": self.iterations,
            "learning_rate": self._lr,
            "variables": [(var.name, tuple(var.shape), var.dtype.name) for var, _ in entries],
            "slots": [{k: np.array(v.numpy()) for k, v in slots.items()} for _, slots in entries],
        }

    def set_state(self, state, var_list=None):
        """Restore a `get_state()` result. The saved slots are attached, in order, to
        `var_list` (default: this optimizer's `tracked_variables`), which must match the saved
        variables in number, shape and dtype. Slots of other variables are dropped."""
        variables = list(self.tracked_variables if var_list is None else var_list)
        saved_vars, saved_slots = state["variables"], state["slots"]
        if len(variables) != len(saved_vars):
            raise ValueError(f"set_state: the state holds slots for {len(saved_vars)} variables, "
                             f"{len(variables)} were given")
        restored = {}
        for var, (name, shape, dtype_name), slots in zip(variables, saved_vars, saved_slots):
            dtype = _check_variable(var)
            if tuple(var.shape) != tuple(shape) or dtype.name != dtype_name:
                raise ValueError(f"set_state: Variable '{var.name}' has shape {var.shape} and "
                                 f"dtype {dtype.name}, the saved slots are for shape "
                                 f"{tuple(shape)} and dtype {dtype_name} (saved as '{name}')")
            restored[id(var)] = (var, {k: _core.state_variable(_slot_value(v, var, dtype), k)
                                       for k, v in slots.items()})
        iterations = int(state["iterations"])
        if iterations < 0:
            raise ValueError(f"set_state: iterations must be >= 0, got {iterations}")
        self.learning_rate = state["learning_rate"]
        self._steps.assign(np.float64(iterations))
        self._slots = restored

    # ---- configuration -----------------------------------------------------------------------

    def get_config(self):
        """The constructor arguments (learning_rate as given: a float or the schedule)."""
        return {"name": self.name, "learning_rate": self._lr}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"<dualad.optimizers.{type(self).__name__} '{self.name}' {args}>"


def _check_variable(var):
    """The numpy dtype of `var`, which must be a float dualad.Variable."""
    if not isinstance(var, Variable):
        raise TypeError(f"optimizers update dualad.Variable objects, got {type(var).__name__} "
                        f"({var!r:.60}); wrap the value in dualad.Variable")
    dtype = var.dtype.np
    if dtype.kind != "f":
        raise TypeError(f"Variable '{var.name}' has dtype {dtype.name}; optimizers update only "
                        "float variables")
    return dtype


def _gradient_value(grad, var, dtype):
    """The gradient as a numpy array (numpy scalar for shape ()) in the variable's dtype."""
    if isinstance(grad, Tensor) and grad.ndim == 0:
        g = grad.numpy()  # skips materialising a 0-d array
    else:
        g = np.asarray(grad)  # a Tensor's own read-only array: never modified here
    if g.dtype.kind not in "biuf":
        raise TypeError(f"the gradient for Variable '{var.name}' has dtype {g.dtype}; "
                        "expected numbers")
    if g.shape != var.shape:
        raise ValueError(f"the gradient for Variable '{var.name}' has shape {g.shape}, but the "
                         f"variable has shape {var.shape}")
    if g.dtype != dtype:
        g = g.astype(dtype)
    if g.ndim == 0 and isinstance(g, np.ndarray):
        g = g[()]
    return g


def _gradient_tensor(grad, var, dtype):
    """The gradient as a dualad tensor in the variable's dtype (inside dualad.function)."""
    g = grad if isinstance(grad, Tensor) else _core.convert_to_tensor(grad)
    if g.dtype.np == dtype and g.shape == var.shape:
        return g
    if g.dtype.np.kind not in "biuf":
        raise TypeError(f"the gradient for Variable '{var.name}' has dtype {g.dtype.name}; "
                        "expected numbers")
    if tuple(g.shape) != tuple(var.shape):
        raise ValueError(f"the gradient for Variable '{var.name}' has shape {tuple(g.shape)}, "
                         f"but the variable has shape {tuple(var.shape)}")
    return g if g.dtype.np == dtype else ops.cast(g, dtype)


def _frozen(value):
    """A fresh update result made read-only, so that a Variable can adopt it without a copy."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
        return _core.wrap(value)
    return value


def _store(var, value):
    var.assign(_frozen(value))


def _slot_value(saved, var, dtype):
    value = np.array(saved, dtype=dtype)
    if value.shape != var.shape:
        raise ValueError(f"set_state: a saved slot of Variable '{var.name}' has shape "
                         f"{value.shape}, the variable has shape {var.shape}")
    if value.ndim == 0:
        return value[()]
    value.flags.writeable = False
    return value


# ---- the optimizers -------------------------------------------------------------------------

class SGD(Optimizer):
    """Gradient descent, optionally with momentum (Keras' formulation):

        momentum == 0:  w ← w − lr·g
        momentum > 0:   m ← momentum·m − lr·g;   w ← w + m
        nesterov:       m as above;              w ← w + momentum·m − lr·g
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name=None):
        super().__init__(learning_rate, name)
        self.momentum = _check_unit(momentum, "momentum")
        self.nesterov = bool(nesterov)

    def _update(self, w, g, lr, slots, step):
        if self.momentum == 0:
            return w - g * lr
        mu = _scalar_type(w)(self.momentum)
        m = self._slot(slots, "momentum", w) * mu - g * lr
        slots["momentum"] = m
        if self.nesterov:
            return w + (m * mu - g * lr)
        return w + m

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

    _uses_step = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, name=None):
        super().__init__(learning_rate, name)
        self.beta_1 = _check_unit(beta_1, "beta_1", below_one=True)
        self.beta_2 = _check_unit(beta_2, "beta_2", below_one=True)
        self.epsilon = _check_nonnegative(epsilon, "epsilon")
        self.amsgrad = bool(amsgrad)

    def _update(self, w, g, lr, slots, step):
        dt = _scalar_type(w)
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

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, name=None):
        super().__init__(learning_rate, name)
        self.rho = _check_unit(rho, "rho")
        self.momentum = _check_unit(momentum, "momentum")
        self.epsilon = _check_nonnegative(epsilon, "epsilon")
        self.centered = bool(centered)

    def _update(self, w, g, lr, slots, step):
        dt = _scalar_type(w)
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

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 name=None):
        super().__init__(learning_rate, name)
        self.initial_accumulator_value = _check_nonnegative(initial_accumulator_value,
                                                            "initial_accumulator_value")
        self.epsilon = _check_nonnegative(epsilon, "epsilon")

    def _update(self, w, g, lr, slots, step):
        accumulator = self._slot(slots, "accumulator", w) + g * g
        slots["accumulator"] = accumulator
        return w - lr * g / np.sqrt(accumulator + _scalar_type(w)(self.epsilon))

    def _slot_fill(self, name):
        return self.initial_accumulator_value

    def get_slot_names(self):
        return ("accumulator",)

    def get_config(self):
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}
