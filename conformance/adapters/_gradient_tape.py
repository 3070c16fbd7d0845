"""Shared mapping for libraries that expose TensorFlow's own API shape.

TensorFlow and dualad both have ``GradientTape``, ``Variable``, named ops and a
Keras-style SGD, so the protocol maps onto them almost one to one; each
adapter only says where its library keeps things and what it lacks.
"""
from __future__ import annotations

import numpy as np

from conformance.adapters import BaseAdapter


class GradientTapeAdapter(BaseAdapter):
    def __init__(self, lib, ops: dict, dtypes: dict, *, sgd_class=None, trace=None, forward_accumulator=None,
                 adam_class=None, rmsprop_class=None, adagrad_class=None):
        self.lib = lib
        self._dtypes = dtypes
        self._sgd_class = sgd_class
        self._adam_class, self._rmsprop_class, self._adagrad_class = adam_class, rmsprop_class, adagrad_class
        self._trace = trace
        self._forward_accumulator = forward_accumulator
        for name, function in ops.items():
            setattr(self, name, function)

    # tensors -------------------------------------------------------------
    def constant(self, value, dtype):
        return self.lib.constant(np.asarray(value, dtype=dtype), dtype=self._dtypes[dtype])

    def variable(self, value, dtype, trainable=True):
        return self.lib.Variable(np.asarray(value, dtype=dtype), dtype=self._dtypes[dtype], trainable=trainable)

    def to_numpy(self, tensor):
        return np.asarray(tensor.numpy())

    def assign_add(self, variable, value):
        variable.assign_add(value)

    def assign_sub(self, variable, value):
        variable.assign_sub(value)

    # tapes -----------------------------------------------------------------
    def tape(self, persistent=False, watch_accessed_variables=True):
        # The library's tape already is the protocol's tape.
        return self.lib.GradientTape(persistent=persistent, watch_accessed_variables=watch_accessed_variables)

    # functional transforms, built from tapes and forward accumulators ---------
    def jvp(self, f, primals, tangents):
        with self._forward_accumulator(primals, tangents) as accumulator:
            out = f(*primals)
        return out, accumulator.jvp(out)

    def vjp(self, f, primals, cotangent):
        with self.lib.GradientTape() as tape:
            tape.watch(primals)
            out = f(*primals)
        return out, tape.gradient(out, primals, output_gradients=cotangent)

    def hvp(self, f, x, v):
        # forward over reverse: push the tangent v through the gradient computation
        with self._forward_accumulator(x, v) as accumulator:
            with self.lib.GradientTape() as tape:
                tape.watch(x)
                y = f(x)
            g = tape.gradient(y, x)
        return accumulator.jvp(g)

    def hessian(self, f, x):
        with self.lib.GradientTape() as outer:
            outer.watch(x)
            with self.lib.GradientTape() as inner:
                inner.watch(x)
                y = f(x)
            g = inner.gradient(y, x)
        return outer.jacobian(g, x)

    # traced functions and optimizers ------------------------------------------
    def function(self, f):
        return self._trace(f)

    def sgd(self, learning_rate, momentum=0.0):
        return KerasStyleSGD(self._sgd_class(learning_rate=learning_rate, momentum=momentum))

    # Keras' own argument names and rules: the library's classes are the protocol's optimizers
    def adam(self, learning_rate, beta_1, beta_2, epsilon):
        return KerasStyleSGD(self._adam_class(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon))

    def rmsprop(self, learning_rate, rho, epsilon):
        return KerasStyleSGD(self._rmsprop_class(learning_rate=learning_rate, rho=rho, epsilon=epsilon))

    def adagrad(self, learning_rate, initial_accumulator_value, epsilon):
        return KerasStyleSGD(self._adagrad_class(
            learning_rate=learning_rate, initial_accumulator_value=initial_accumulator_value, epsilon=epsilon))


class KerasStyleSGD:
    """Protocol optimizer over an optimizer with apply_gradients/minimize/learning_rate."""

    def __init__(self, native):
        self.native = native

    def apply_gradients(self, grads_and_vars):
        self.native.apply_gradients(list(grads_and_vars))

    def minimize(self, loss_fn, var_list):
        self.native.minimize(loss_fn, var_list)

    def set_learning_rate(self, learning_rate):
        self.native.learning_rate = learning_rate
