"""Jacobians are laid out source axes first (source.shape + target.shape), batch_jacobian as
(b, n, m), and Hessians flattened to (size, size): right values, wrong axes."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


class SwappedTape(TapeWrapper):
    def __init__(self, context, adapter):
        super().__init__(context)
        self.adapter = adapter

    def _relayout(self, tensor, reorder):
        values = np.asarray(self.adapter.base.to_numpy(tensor))
        return self.adapter.base.constant(np.ascontiguousarray(reorder(values)), str(values.dtype))

    def jacobian(self, target, source):
        jacobian = self.inner.jacobian(target, source)
        source_rank = len(np.shape(self.adapter.base.to_numpy(source)))
        rank = len(np.shape(self.adapter.base.to_numpy(jacobian)))
        order = [*range(rank - source_rank, rank), *range(rank - source_rank)]
        return self._relayout(jacobian, lambda v: np.transpose(v, order))

    def batch_jacobian(self, target, source):
        return self._relayout(self.inner.batch_jacobian(target, source), lambda v: np.swapaxes(v, 1, 2))


class Adapter(PlantedAdapter):
    bug = "jacobian axes source-first, batch_jacobian (b, n, m), Hessians flattened"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return SwappedTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables), self)

    def hessian(self, f, x):
        hessian = np.asarray(self.base.to_numpy(self.base.hessian(f, x)))
        n = int(np.sqrt(hessian.size))
        return self.base.constant(hessian.reshape(n, n), str(hessian.dtype))
