"""Batched matmul's gradient to its right operand uses the left operand's first matrix for every
batch (as if the left stack were broadcast from its first entry); values and 2-D matmul are right."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "batched matmul: right operand's gradient from the left operand's first matrix only"

    def matmul(self, a, b):
        base = self.base
        if len(tuple(a.shape)) <= 2:
            return base.matmul(a, b)
        values = np.asarray(base.to_numpy(a))
        first = np.zeros(values.shape)
        first[(0,) * (values.ndim - 2)] = 1.0
        a_first = base.multiply(a, base.constant(first, values.dtype.name))
        while len(tuple(a_first.shape)) > 2:  # the first matrix, without batch axes
            a_first = base.reduce_sum(a_first, axis=0)
        # value a·b; the gradient to b flows only through a_first·b, to a only through a·stop(b)
        return base.subtract(
            base.add(base.matmul(a, base.stop_gradient(b)), base.matmul(base.stop_gradient(a_first), b)),
            base.stop_gradient(base.matmul(a_first, b)),
        )
