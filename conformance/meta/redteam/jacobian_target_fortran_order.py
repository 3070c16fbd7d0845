"""tape.jacobian flattens a target of rank >= 2 in column-major order and unflattens it row-major:
the target axes of a matrix-shaped target come out scrambled (right for vectors and scalars)."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


class FortranJacobianTape(TapeWrapper):
    def __init__(self, context, base):
        super().__init__(context)
        self.base = base

    def jacobian(self, target, source):
        result = np.asarray(self.base.to_numpy(self.inner.jacobian(target, source)))
        target_shape = tuple(np.shape(self.base.to_numpy(target)))
        if len(target_shape) < 2:
            return result
        source_shape = result.shape[len(target_shape):]
        rows = result.reshape((-1,) + source_shape)
        scrambled = rows.reshape(target_shape[::-1] + source_shape, order="C")
        axes = tuple(reversed(range(len(target_shape)))) + tuple(range(len(target_shape), result.ndim))
        # the rows were taken in C order and read back as if F order
        fixed = np.transpose(scrambled, axes).reshape(target_shape + source_shape)
        return self.base.constant(np.ascontiguousarray(fixed), result.dtype.name)


class Adapter(PlantedAdapter):
    bug = "jacobian scrambles the target axes of matrix-shaped targets"

    def tape(self, persistent=False, watch_accessed_variables=True):
        return FortranJacobianTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables), self.base)
