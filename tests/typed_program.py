"""A small user program written against dualad's public API with type annotations: mypy checks
it (`mypy`, configured in pyproject.toml; tests/test_packaging.py), so the names dualad
generates at import (dualad.exp, dualad.pow, ...) must be visible to a type checker with their
signatures. It also runs (tests/test_packaging.py), so what it claims is checked at run time.
"""
import numpy as np

import dualad
from dualad import Tensor, Variable


def loss(w: Variable, x: Tensor, y: Tensor) -> Tensor:
    prediction: Tensor = dualad.sigmoid(dualad.matmul(x, w))
    error = dualad.subtract(prediction, y)
    return dualad.reduce_mean(dualad.square(error))


def smooth(t: Tensor) -> Tensor:
    # the generated ops (a stub) and the hand-written ones, through dualad and dualad.math
    return dualad.math.log1p(dualad.exp(-dualad.abs(t))) + dualad.maximum(t, 0.0)


def main() -> float:
    x = dualad.constant(np.linspace(-1.0, 1.0, 6).reshape(3, 2), dtype=dualad.float32)
    y = dualad.constant([[0.0], [1.0], [1.0]])
    w = Variable(dualad.zeros((2, 1)), name="w")
    optimizer = dualad.optimizers.SGD(learning_rate=0.5)
    first = last = 0.0
    for step in range(20):
        with dualad.GradientTape() as tape:
            value = loss(w, x, y)
        gradient = tape.gradient(value, w)
        optimizer.apply_gradients([(gradient, w)])
        if step == 0:
            first = float(value)
        last = float(value)
    assert last < first, (first, last)

    z: Tensor = dualad.pow(dualad.constant(2.0), 3) + smooth(dualad.constant([-1.0, 2.0]))
    assert z.shape == (2,)
    derivative = dualad.grad(lambda t: dualad.sin(t) * dualad.cos(t))(dualad.constant(0.0))
    assert float(derivative) == 1.0
    return last


if __name__ == "__main__":
    print(f"final loss {main():.4f}")
