"""The functions the tutorials differentiate, written once against an ``ops`` object.

``ops`` is either the adapter under test or ``reference.REFERENCE`` (float64
NumPy), so the implementation's derivative and the finite-difference
reference come from the same code.
"""
from __future__ import annotations


def square(ops, x):
    return ops.multiply(x, x)


def squared_sum(ops, x):
    """z = (sum x)²."""
    y = ops.reduce_sum(x)
    return ops.multiply(y, y)


def fourth_power(ops, x):
    """z = y·y with y = x·x."""
    return square(ops, square(ops, x))


def cube(ops, x):
    """y = x·x·x."""
    return ops.multiply(ops.multiply(x, x), x)


def quadratic(ops, x, a, b, c):
    """y = a·x² + b·x + c, with pow as in the tutorial."""
    return ops.add(ops.add(ops.multiply(a, ops.pow(x, 2)), ops.multiply(b, x)), c)


def twice_gram(ops, x):
    """y = 2·xᵀx for a column vector x."""
    return ops.multiply(2, ops.matmul(ops.transpose(x), x))


def power_in_a_loop(ops, x, y):
    """The tutorial's f(x, y): multiplies x in for i in range(y) when 1 < i < 5."""
    output = 1.0
    for i in range(y):
        if 1 < i < 5:
            output = ops.multiply(output, x)
    return output


def double_until_large(ops, a):
    """The tutorial's while-norm / if-sum function: f(a) = s·a for a scalar s depending on a."""
    b = ops.multiply(a, 2)
    while ops.norm(b) < 1000:
        b = ops.multiply(b, 2)
    if ops.reduce_sum(b) > 0:
        c = b
    else:
        c = ops.multiply(100, b)
    return c
