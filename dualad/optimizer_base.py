"""The Optimizer base class of dualad.optimizers: checking a step's gradients, computing every
update before committing any, slots, the learning rate and step count as Variables, and
get_state/set_state. The update rules themselves are the subclasses in optimizers.py; the
semantics are described there."""
import contextlib
import inspect
import numbers
import sys
import warnings
from collections.abc import Mapping

import numpy as np

from . import _core, ops
from .arguments import check_rate
from .schedules import LearningRateSchedule
from ._core import Tensor, Variable
from .tape import GradientTape



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
_STATE_KEYS = ("iterations", "learning_rate", "variables", "slots")  # of get_state()
_MAX_STEPS = 2 ** 53  # the float64 step count is exact up to here
_NOT_COPYABLE = (
    "{} cannot be pickled or copied: its slots belong to live Variables, which a copy would "
    "not be attached to. Save opt.get_config() and opt.get_state() instead, and restore with "
    "type(opt).from_config(config) followed by .set_state(state, variables)")


def scalar_type(w):
    """The numpy scalar type of w's dtype (w a numpy value or a dualad tensor)."""
    return w.dtype.np.type if isinstance(w, Tensor) else w.dtype.type


def _full_like(w, fill):
    """A slot's initial value: an array like `w`, or a numpy scalar for a scalar variable."""
    if isinstance(w, np.ndarray):
        return np.full(w.shape, fill, dtype=w.dtype)
    return w.dtype.type(fill)


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
        # one step or state change at a time; a step refuses re-entry from a callback. (First:
        # the built-in classes keep attributes in it, see optimizers.py.)
        self._guard = _core.StepGuard(f"{type(self).__name__}.apply_gradients was called again "
                                      "while one of its steps was being computed")
        self.name = type(self).__name__.lower() if name is None else str(name)
        self._steps = _core.state_variable(np.float64(0), "iterations")  # exact to 2**53
        self._lr_vars = {}  # numpy dtype -> Variable holding the float learning rate
        # Variable -> {slot name: Variable}, in tracking order. Keyed by the Variable itself
        # (identity hash, checked by _check_variable), which keeps it alive, so a dead
        # Variable's id can never be inherited by a new one.
        self._slots = {}
        # Variable -> the buffers an array Variable's in-place steps compute into: its new value,
        # each slot's (in get_slot_names() order), a work array (see _array_step)
        self._buffers = {}
        self._compiled_constant_rate = False  # a program reads the rate from _lr_vars
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
            self._check_schedule_allowed()
            self._lr_takes_step = _takes_step(value)
            self._lr = value
        else:
            self._lr = check_rate(value)
            for dtype, var in self._lr_vars.items():
                var.assign(dtype.type(self._lr))

    def _check_schedule_allowed(self):
        if self._compiled_constant_rate:
            raise ValueError(
                "this optimizer's steps were compiled by dualad.function with a constant "
                "learning rate, which the compiled program reads from a variable; it would "
                "ignore a schedule set now. Give the schedule to a new optimizer (steps with a "
                "schedule run eagerly); get_state()/set_state() carry the slots over")

    def _current_learning_rate(self):
        lr = self._lr
        if type(lr) is float:
            return lr
        value = lr(self.iterations) if self._lr_takes_step else lr()
        return check_rate(value, f"the learning rate schedule's value at step {self.iterations}")

    # ---- steps -------------------------------------------------------------------------------

    # (compiled, _core.apply_gradients: its general path is _apply_locked)
    apply_gradients = _core.apply_gradients

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
        return self._apply(list(zip(grads, var_list)), stacklevel=3)

    def _apply(self, grads_and_vars, stacklevel):
        step = self._guard.scalar_step(self, grads_and_vars)
        if step is not None:
            return step
        # (the guard's frame is compiled: _apply_locked's warnings are stacklevel + 1 deep)
        return self._guard.step(self._apply_locked, grads_and_vars, stacklevel + 1)

    def _apply_locked(self, grads_and_vars, stacklevel):
        compiled = _core.tracing()
        pairs, missing, seen = [], [], set()
        for item in grads_and_vars:
            grad, var = _unpack_pair(item)
            dtype = _check_variable(var)
            if var in seen:  # its second update would silently compound the first
                raise ValueError(f"Variable '{var.name}' appears more than once in one "
                                 "apply_gradients call; sum its gradients first")
            seen.add(var)
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
            if not compiled and self._array_step(pairs, lr, step):
                return step
            # Every update is computed before anything is assigned, so an exception (a bad
            # value, a KeyboardInterrupt) while computing leaves variables, slots and the step
            # count as they were; the compiled program orders its reads and writes the same way.
            updates = [self._tensor_update(var, dtype, g, lr, step, scheduled)
                       if isinstance(g, Tensor) else self._numpy_update(var, dtype, g, lr, step)
                       for var, dtype, g in pairs]
            self._commit(updates, compiled)
        return self._steps if compiled else step

    def _commit(self, updates, compiled):
        """Assign every computed update and advance the step count. Eagerly, an exception
        arriving during the assignments (an asynchronous KeyboardInterrupt) rolls them back."""
        if compiled:  # recorded into the program; an exception here abandons the trace
            for var, new_value, slot_vars, new_slots, is_new in updates:
                var.assign(new_value)
                for name, value in new_slots.items():
                    slot_vars[name].assign(value)
                if is_new:
                    self._slots[var] = slot_vars
                else:
                    self._slots[var].update(slot_vars)
            self._steps.assign_add(_ONE)
            return
        old_steps = float(self._steps)
        undo = []  # (Variable, its value before this step), to restore in reverse
        added = []  # variables this step started tracking
        try:
            for var, new_value, slot_vars, new_slots, is_new in updates:
                undo.append((var, _current_value(var)))
                _store(var, new_value)
                for name, value in new_slots.items():
                    undo.append((slot_vars[name], _current_value(slot_vars[name])))
                    _store(slot_vars[name], value)
                if is_new:
                    added.append(var)
                    self._slots[var] = slot_vars
                else:
                    self._slots[var].update(slot_vars)
            self._steps.assign_add(_ONE)
        except BaseException:
            for var, value in reversed(undo):
                _restore(var, value)
            for var in added:
                self._slots.pop(var, None)
            self._steps.assign(np.float64(old_steps))
            raise

    def _tensor_update(self, var, dtype, g, lr, step, scheduled):
        """The update as dualad ops on the Variables (C doubles for scalars). Inside
        dualad.function they are recorded into the program, which then reads the learning
        rate (unless scheduled), the step count and the slots from their Variables.
        Returns the update for _commit; nothing is assigned here."""
        if scheduled:
            lr = _core.scalar(lr, dtype)
        else:
            lr_var = self._lr_vars.get(dtype)
            if lr_var is None:
                lr_var = self._lr_vars[dtype] = _core.state_variable(dtype.type(lr),
                                                                     "learning_rate")
            lr = lr_var
            if step is None:  # being compiled
                self._compiled_constant_rate = True
        t = None
        if self._uses_step:  # (a cast is not free in the replay loop)
            t = self._steps + np.float64(1) if step is None else _core.scalar(step, np.float64)
            t = t if dtype == np.float64 else ops.cast(t, dtype)
        tracked = self._slots.get(var)
        slot_vars = {} if tracked is None else dict(tracked)
        if len(slot_vars) < len(self.get_slot_names()):
            for name in self.get_slot_names():
                if name not in slot_vars:  # attached to the optimizer by _commit
                    slot_vars[name] = _core.state_variable(
                        _frozen(np.full(var.shape, self._slot_fill(name), dtype)), name)
        slots = dict(slot_vars)
        new_value = self._update(var, g, lr, slots, t)
        new_slots = {name: value for name, value in slots.items()
                     if value is not slot_vars[name]}
        return var, new_value, slot_vars, new_slots, tracked is None

    def _numpy_update(self, var, dtype, g, lr, step):
        """The update of an array Variable in numpy, eagerly. Returns the update for _commit;
        nothing is assigned here."""
        tracked = self._slots.get(var)
        slot_vars = {} if tracked is None else dict(tracked)
        slots = {name: np.asarray(v) for name, v in slot_vars.items()}
        # inf and NaN propagate as in Keras; numpy's overflow/invalid warnings would be noise
        with np.errstate(all="ignore"):
            new_value = self._update(np.asarray(var), g, dtype.type(lr), slots, dtype.type(step))
        new_slots = {}
        for name, value in slots.items():
            if name in slot_vars:
                new_slots[name] = value
            else:  # a new slot starts at its first value; attached by _commit
                slot_vars[name] = _core.state_variable(_frozen(value), name)
        return var, new_value, slot_vars, new_slots, tracked is None

    def _array_step(self, pairs, lr, step):
        """The step in place (eagerly) when every pair is a tracked float32/float64 array
        Variable and the class's `_update` is the rule its `_update_into` implements: each new
        value and slot is computed into this optimizer's buffers (`_buffers`), then
        _core.commit_in_place writes them into the Variables' own arrays where no one else
        holds those (else the Variable adopts the buffer) and advances the step count, in one
        C call that runs no Python code. Returns False, nothing changed, for the general
        path. An exception while computing leaves every Variable as it was."""
        rule = type(self)._update_into
        if rule is None or type(self)._update is not type(self)._rule_of_update_into:
            return False
        names = self.get_slot_names()
        for var, dtype, g in pairs:
            if var.ndim == 0 or dtype not in _C_SCALARS or not isinstance(g, np.ndarray):
                return False
            slot_vars = self._slots.get(var)
            if slot_vars is None or any(name not in slot_vars for name in names):
                return False  # its first step makes its slots (with _slot_fill)
        targets = []
        descends = self._descends_at_commit()
        fuses = type(self)._update_into is type(self)._fused_update_into
        fused_rules = {}  # dtype -> this step's fused rule (None: none)
        with np.errstate(all="ignore"):  # one error state for every pair's rule
            for var, dtype, g in pairs:
                buffers = self._buffers.get(var)
                if buffers is None or len(buffers) != len(names) + 2:
                    buffers = self._buffers[var] = [None] * (len(names) + 2)
                slot_vars = self._slots[var]
                if ((descends or fuses) and type(g) is np.ndarray and g.flags.c_contiguous
                        and g.flags.aligned and _contiguous_value(var)):
                    if descends:
                        # w - lr·g left to the commit: straight into the Variable's array when
                        # it is the sole owner (one pass, no copy), else into the buffer
                        self._fresh_buffers(var, dtype, buffers, 1)
                        targets.append((var, buffers, 0, g, dtype.type(lr)))
                        continue
                    if dtype not in fused_rules:
                        fused_rules[dtype] = self._fused_rule(dtype, lr, step)
                    slots = tuple(slot_vars[name] for name in names)
                    if fused_rules[dtype] is not None and all(map(_contiguous_value, slots)):
                        # the whole update left to the commit: one pass writing the value and
                        # the slots into the Variables' arrays where each is the sole owner,
                        # else into the buffers
                        self._fresh_buffers(var, dtype, buffers, 1 + len(names))
                        targets.append((var, buffers, 0, g, fused_rules[dtype], slots))
                        continue
                self._compute_into(rule, var, dtype, g, lr, step, slot_vars, names, buffers)
                targets.append((var, buffers, 0))
                targets.extend((slot_vars[name], buffers, i + 1)
                               for i, name in enumerate(names))
        _core.commit_in_place(targets, self._steps)
        return True

    def _compute_into(self, rule, var, dtype, g, lr, step, slot_vars, names, buffers):
        # (its own frame: the arrays read here are released on return, before the commit
        # counts the references to them)
        self._fresh_buffers(var, dtype, buffers,
                            len(buffers) if self._uses_work_buffer() else len(buffers) - 1)
        out = {name: buffers[i + 1] for i, name in enumerate(names)}
        out["value"], out["work"] = buffers[0], buffers[-1]
        slots = {name: np.asarray(slot_vars[name]) for name in names}
        # (under _array_step's error state)
        rule(self, np.asarray(var), g, dtype.type(lr), slots, dtype.type(step), out)

    @staticmethod
    def _fresh_buffers(var, dtype, buffers, count):
        """Make buffers[:count] arrays for var's values that no one else holds."""
        for i in range(count):
            # None: the first step here, or a Variable adopted the buffer; referenced also
            # elsewhere (2: the list's and the argument's): kept by the traceback of an
            # interrupted step. Either way a new one.
            if buffers[i] is None or sys.getrefcount(buffers[i]) != 2:
                buffers[i] = np.empty(var.shape, dtype)

    def _descends_at_commit(self):
        """Whether this step is w - lr·g with no slots, which commit_in_place can compute
        itself (only gradient descent's own _update_into, see SGD)."""
        return False

    # `_fused_rule(dtype, lr, step)`: the step of `_update_into` as one of commit_in_place's
    # fused rules, (_core.FUSED_RULES code, its parameters as Python floats), or None; used
    # only while the class's `_update_into` is `_fused_update_into` (the built-in one)
    _fused_update_into = None

    def _fused_rule(self, dtype, lr, step):
        return None

    _uses_step = False  # whether _update reads its `step` argument

    # `_scalar_rule`: the built-in rule this class's steps on scalar Variables run in C
    # (_core.OPTIMIZER_RULES, applied by StepGuard.scalar_step); None for a class without
    # one, and for every subclass that does not define its own (it may change the rule)
    _scalar_rule = None

    # `_update_into(w, g, lr, slots, step, out)`: `_update` for numpy arrays, writing the new
    # value into out["value"] and each new slot into out[name], with out["work"] as scratch,
    # reading w, g and `slots` only; the same operations in the same order, so the same bits.
    # It is used only while the class's `_update` is `_rule_of_update_into` (a subclass or a
    # patch that replaces `_update` gets the general path).
    _update_into = None
    _rule_of_update_into = None

    def _uses_work_buffer(self):
        """Whether _update_into needs out["work"] (else it is None)."""
        return True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "_scalar_rule" not in cls.__dict__:
            cls._scalar_rule = None

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
        _check_variable(var)
        slot_vars = self._slots.get(var)
        if slot_vars is None or name not in slot_vars:
            raise KeyError(f"no slot {name!r} for variable {var.name!r}; slots are created by "
                           "the first step that updates the variable")
        return np.array(slot_vars[name].numpy())

    @property
    def tracked_variables(self):
        """The variables this optimizer keeps slots for, in the order it first updated them."""
        return tuple(self._slots)

    def get_state(self):
        """Everything a restored optimizer needs to continue bit for bit: the step count, the
        learning rate (float or schedule object) and copies of every variable's slots, in the
        order of `tracked_variables`. Plain data: picklable if the schedule is."""
        return self._guard.locked(self._state_copy)

    def _state_copy(self):
        entries = list(self._slots.items())
        return {
            "iterations": self.iterations,
            "learning_rate": self._lr,
            "variables": [(var.name, tuple(var.shape), var.dtype.name) for var, _ in entries],
            "slots": [{k: np.array(v.numpy()) for k, v in slots.items()} for _, slots in entries],
        }

    def set_state(self, state, var_list=None):
        """Restore a `get_state()` result. The saved slots are attached, in order, to
        `var_list` (default: this optimizer's `tracked_variables`), which must match the saved
        variables in number, shape and dtype. Slots of other variables are dropped.

        The state is checked completely first: a malformed one raises TypeError or ValueError
        naming the problem and leaves the optimizer unchanged. Slot Variables that the
        optimizer already has for a restored variable are assigned in place, so steps compiled
        by dualad.function before the restore continue from the restored slots."""
        self._guard.locked(self._set_state_locked, state, var_list)

    def _set_state_locked(self, state, var_list):
        if self._guard.busy:
            raise RuntimeError("set_state was called while a step was being computed")
        variables = list(self.tracked_variables if var_list is None else var_list)
        iterations, lr, restored = self._checked_state(state, variables)
        old_lr, old_takes_step = self._lr, getattr(self, "_lr_takes_step", False)
        old_steps = self._steps.numpy()
        undo = []  # (slot Variable, value before), for a rollback
        new_slots = {}
        try:
            for var, values in restored.items():
                live = self._slots.get(var, {})
                slot_vars = new_slots[var] = {}
                for name, value in values.items():
                    existing = live.get(name)
                    if existing is None:
                        slot_vars[name] = _core.state_variable(value, name)
                    else:  # the same Variable, which compiled programs may read
                        undo.append((existing, _current_value(existing)))
                        existing.assign(value)
                        slot_vars[name] = existing
            self.learning_rate = lr
            self._steps.assign(np.float64(iterations))
            self._slots = new_slots
            self._buffers = {}  # (those of dropped variables would keep them alive)
        except BaseException:  # (an asynchronous KeyboardInterrupt)
            for slot_var, value in reversed(undo):
                _restore(slot_var, value)
            self._lr, self._lr_takes_step = old_lr, old_takes_step
            for dtype, lr_var in self._lr_vars.items():
                if type(old_lr) is float:
                    lr_var.assign(dtype.type(old_lr))
            self._steps.assign(old_steps)
            raise

    def _checked_state(self, state, variables):
        """(iterations, learning rate, {Variable: {slot name: value}}) from a get_state()
        result, or a TypeError/ValueError naming what is wrong with it."""
        if not isinstance(state, Mapping):
            raise TypeError(f"set_state: the state must be a dict returned by get_state(), got "
                            f"{type(state).__name__}")
        missing = [key for key in _STATE_KEYS if key not in state]
        if missing:
            raise ValueError(f"set_state: the state lacks the keys {missing} (a get_state() "
                             f"result has {list(_STATE_KEYS)})")
        iterations = state["iterations"]
        if isinstance(iterations, (bool, np.bool_)) or not isinstance(iterations, numbers.Integral):
            raise TypeError(f"set_state: iterations must be an integer, got "
                            f"{type(iterations).__name__} ({iterations!r:.60})")
        iterations = int(iterations)
        if not 0 <= iterations <= _MAX_STEPS:
            raise ValueError(f"set_state: iterations must be between 0 and 2**53, got {iterations}")
        lr = state["learning_rate"]
        if callable(lr):
            self._check_schedule_allowed()
        else:
            lr = check_rate(lr, "set_state: learning_rate")
        saved_vars, saved_slots = state["variables"], state["slots"]
        for key, value in (("variables", saved_vars), ("slots", saved_slots)):
            if not isinstance(value, (list, tuple)):
                raise TypeError(f"set_state: state[{key!r}] must be a list, got "
                                f"{type(value).__name__}")
        if len(saved_vars) != len(saved_slots):
            raise ValueError(f"set_state: the state lists {len(saved_vars)} variables but "
                             f"{len(saved_slots)} slot dicts")
        if len(variables) != len(saved_vars):
            raise ValueError(f"set_state: the state holds slots for {len(saved_vars)} variables, "
                             f"{len(variables)} were given")
        slot_names = self.get_slot_names()
        restored = {}
        for i, (var, saved, slots) in enumerate(zip(variables, saved_vars, saved_slots)):
            dtype = _check_variable(var)
            if var in restored:
                raise ValueError(f"set_state: Variable '{var.name}' is given more than once")
            name, shape, dtype_name = _saved_variable(saved, i)
            if tuple(var.shape) != shape or dtype.name != dtype_name:
                raise ValueError(f"set_state: Variable '{var.name}' has shape {var.shape} and "
                                 f"dtype {dtype.name}, the saved slots are for shape "
                                 f"{shape} and dtype {dtype_name} (saved as '{name}')")
            if not isinstance(slots, Mapping):
                raise TypeError(f"set_state: state['slots'][{i}] must be a dict of slot values, "
                                f"got {type(slots).__name__}")
            unknown = [k for k in slots if k not in slot_names]
            if unknown:
                raise ValueError(f"set_state: the slots saved for '{name}' include {unknown}, "
                                 f"which this {type(self).__name__} does not keep (its slots: "
                                 f"{list(slot_names)}); was the state saved by an optimizer "
                                 "of another configuration?")
            restored[var] = {k: _slot_value(v, var, dtype, k) for k, v in slots.items()}
        return iterations, lr, restored

    # ---- copies ------------------------------------------------------------------------------

    def __reduce_ex__(self, protocol):
        raise TypeError(_NOT_COPYABLE.format(type(self).__name__))

    def __copy__(self):
        raise TypeError(_NOT_COPYABLE.format(type(self).__name__))

    def __deepcopy__(self, memo):
        raise TypeError(_NOT_COPYABLE.format(type(self).__name__))

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


Optimizer.apply_gradients.__qualname__ = "Optimizer.apply_gradients"


def _check_variable(var):
    """The numpy dtype of `var`, which must be a float dualad.Variable."""
    if not isinstance(var, Variable):
        raise TypeError(f"optimizers update dualad.Variable objects, got {type(var).__name__} "
                        f"({var!r:.60}); wrap the value in dualad.Variable")
    if type(var) is not Variable and type(var).__hash__ is not Variable.__hash__:
        # slots are keyed by the Variable: a value-based hash could share them between two
        raise TypeError(f"Variable '{var.name}' is a {type(var).__name__}, which overrides "
                        "__hash__; optimizers need Variables that hash by identity")
    dtype = var.dtype.np
    if dtype.kind != "f":
        raise TypeError(f"Variable '{var.name}' has dtype {dtype.name}; optimizers update only "
                        "float variables")
    return dtype


def _unpack_pair(item):
    """(gradient, variable) from one entry of apply_gradients' list."""
    try:
        grad, var = item
    except (TypeError, ValueError):
        raise TypeError(f"apply_gradients takes (gradient, variable) pairs, got an entry "
                        f"{type(item).__name__} ({item!r:.60})") from None
    return grad, var


def _current_value(var):
    """The value a Variable holds now, to assign back in a rollback: a Python float for a
    scalar (exact for every float dtype, and cheaper than an array), else its immutable array."""
    return float(var) if var.ndim == 0 else np.asarray(var)


def _restore(var, value):
    """Assign back a value taken by _current_value."""
    var.assign(var.dtype.np.type(value) if type(value) is float else value)


def _contiguous_value(var):
    """Whether var's array is C-contiguous and aligned (a Variable may hold a strided view)."""
    flags = np.asarray(var).flags
    return flags.c_contiguous and flags.aligned


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


def _saved_variable(saved, index):
    """(name, shape, dtype name) from entry `index` of a state's "variables" list."""
    try:
        name, shape, dtype_name = saved
        shape = tuple(shape)
        valid = (isinstance(name, str) and isinstance(dtype_name, str)
                 and all(isinstance(n, numbers.Integral) and n >= 0 for n in shape))
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise TypeError(f"set_state: state['variables'][{index}] must be a (name, shape, dtype "
                        f"name) triple as get_state() writes it, got {saved!r:.80}")
    return name, tuple(int(n) for n in shape), dtype_name


def _slot_value(saved, var, dtype, name):
    value = np.asarray(saved)
    if value.dtype.kind not in "iuf":
        raise TypeError(f"set_state: the saved slot {name!r} of Variable '{var.name}' has dtype "
                        f"{value.dtype}; expected real numbers")
    if value.shape != var.shape:
        raise ValueError(f"set_state: the saved slot {name!r} of Variable '{var.name}' has "
                         f"shape {value.shape}, the variable has shape {var.shape}")
    value = np.array(value, dtype=dtype)  # a copy: the caller's array stays theirs
    if value.ndim == 0:
        return value[()]
    value.flags.writeable = False
    return value


# ---- the optimizers -------------------------------------------------------------------------
