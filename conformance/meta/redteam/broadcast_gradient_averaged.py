"""add's gradient for a broadcast operand is averaged over the broadcast axes instead of summed."""
import numbers

import numpy as np

from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "add averages the gradient of a broadcast operand"

    def add(self, x, y):
        ops = self.base
        total = np.size(ops.to_numpy(ops.add(x, y)))
        operands, corrections = [], []
        for operand in (x, y):
            size = 1 if isinstance(operand, numbers.Number) else np.size(ops.to_numpy(operand))
            if isinstance(operand, numbers.Number) or size == total:
                operands.append(operand)
                continue
            operands.append(ops.stop_gradient(operand))
            # zero-valued; broadcasting sums its gradient, scaled to the mean
            corrections.append(ops.multiply(ops.subtract(operand, ops.stop_gradient(operand)), size / total))
        out = ops.add(*operands)
        for correction in corrections:
            out = ops.add(out, correction)
        return out
