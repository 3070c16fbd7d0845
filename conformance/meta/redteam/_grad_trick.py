"""value(a) with the gradient of b: stop(a) + b − stop(b)."""


def value_of_gradient_of(ops, value, gradient_carrier):
    return ops.add(ops.stop_gradient(value), ops.subtract(gradient_carrier, ops.stop_gradient(gradient_carrier)))
