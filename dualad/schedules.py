"""Learning-rate schedules for dualad.optimizers: callables of the optimizer's step count
(also importable as `dualad.optimizers.schedules`, Keras' place for them)."""
import bisect as _bisect
import math as _math

from . import arguments as _arguments

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay"]


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
        self.initial_learning_rate = _arguments.check_rate(initial_learning_rate, "initial_learning_rate")
        if not 0.0 < _arguments.real(decay_steps, "decay_steps") < _math.inf:
            raise ValueError(f"decay_steps must be > 0, got {decay_steps!r}")
        self.decay_steps = decay_steps
        self.decay_rate = _arguments.check_nonnegative(decay_rate, "decay_rate")
        self.staircase = bool(staircase)

    def __call__(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = _math.floor(p)
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
        self.values = [_arguments.check_rate(v, "a PiecewiseConstantDecay value") for v in values]

    def __call__(self, step):
        # bisect_left counts the boundaries strictly below step
        return self.values[_bisect.bisect_left(self.boundaries, step)]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values)}
