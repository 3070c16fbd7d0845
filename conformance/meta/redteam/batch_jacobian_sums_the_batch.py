"""batch_jacobian differentiates the batch-summed target and gives every row that sum: each row
is Σᵢ ∂Y[i]/∂X[i] instead of its own block."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


class SummingTape(TapeWrapper):
    def __init__(self, context, base):
        super().__init__(context)
        self.base = base

    def batch_jacobian(self, target, source):
        rows = np.asarray(self.base.to_numpy(self.inner.batch_jacobian(target, source)))
        summed = np.broadcast_to(rows.sum(axis=0), rows.shape)
        return self.base.constant(np.ascontiguousarray(summed), rows.dtype.name)


class Adapter(PlantedAdapter):
    bug = "batch_jacobian sums over the batch"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return SummingTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables), self.base)
