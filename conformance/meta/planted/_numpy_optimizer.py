"""An optimizer whose update rule is written in NumPy and applied with the base's assign_sub:
how planted bugs change an adaptive optimizer's rule without touching the library."""
from __future__ import annotations

import numpy as np


class NumpyRuleOptimizer:
    def __init__(self, base, rule):
        self.base = base
        self.rule = rule  # (g, state dict, step t) -> the amount to subtract from x
        self.states: dict[int, dict] = {}
        self.steps: dict[int, int] = {}

    def apply_gradients(self, grads_and_vars):
        for g, variable in grads_and_vars:
            x = np.asarray(self.base.to_numpy(variable))
            t = self.steps[id(variable)] = self.steps.get(id(variable), 0) + 1
            delta = self.rule(np.asarray(self.base.to_numpy(g), np.float64), self.states.setdefault(id(variable), {}), t)
            self.base.assign_sub(variable, self.base.constant(np.asarray(delta, x.dtype), x.dtype.name))
