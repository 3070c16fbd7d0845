"""Forward mode watches trainable Variables as a tape does: every Variable the adapter made is
also a primal of each jvp, with a tangent of ones, so a Variable read inside f adds its term."""
import numpy as np

from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "jvp perturbs the trainable Variables f reads"

    def __init__(self):
        super().__init__()
        self.trainable = []

    def variable(self, value, dtype, trainable=True):
        made = self.base.variable(value, dtype, trainable=trainable)
        if trainable:
            self.trainable.append((made, dtype))
        return made

    def jvp(self, f, primals, tangents):
        accumulator = getattr(self.base, "_forward_accumulator", None)
        if accumulator is None:  # only GradientTape libraries have an accumulator to misuse
            return self.base.jvp(f, primals, tangents)
        ones = [self.base.constant(np.ones(np.shape(self.base.to_numpy(v))), dtype) for v, dtype in self.trainable]
        with accumulator(list(primals) + [v for v, _ in self.trainable], list(tangents) + ones) as acc:
            out = f(*primals)
        return out, acc.jvp(out)
