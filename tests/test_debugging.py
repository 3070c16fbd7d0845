"""dualad.debugging: check_numerics names the first op that makes a NaN or infinity, in the
forward pass and in gradient computations, and leaves the library usable."""
import numpy as np
import pytest

import dualad as dd


@pytest.fixture
def checking():
    dd.debugging.enable_check_numerics()
    yield
    dd.debugging.disable_check_numerics()


def test_without_checks_nan_propagates_silently():
    assert np.isnan(dd.log(dd.constant(-1.0)).numpy())


def test_forward_op_producing_nan_is_named(checking):
    with pytest.raises(FloatingPointError, match="op 'log' produced NaN"):
        dd.log(dd.constant([1.0, -1.0]))
    with pytest.raises(FloatingPointError, match="op 'divide' produced infinity"):
        dd.constant(1.0) / dd.constant(0.0)


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("value", [0.0, np.zeros(2)], ids=["scalar", "array"])
def test_gradient_producing_infinity_names_the_primitive(checking, persistent, value):
    x = dd.constant(value, dtype=dd.float64)
    with dd.GradientTape(persistent=persistent) as tape:
        tape.watch(x)
        y = dd.reduce_sum(dd.sqrt(x))  # finite value, infinite derivative at 0
    with pytest.raises(FloatingPointError, match="gradient of 'sqrt'"):
        tape.gradient(y, x)
    # the library stays usable: no tape left active, later gradients work
    assert dd.GradientTape is not None and not dd._core.active_transformations()
    z = dd.constant(4.0, dtype=dd.float64)
    with dd.GradientTape() as tape:
        tape.watch(z)
        w = dd.sqrt(z)
    assert tape.gradient(w, z).numpy() == 0.25


def test_compiled_functions_are_checked_too(checking):
    @dd.function
    def f(x):
        return dd.log(x)

    with pytest.raises(FloatingPointError, match="'log'"):
        f(dd.constant(-1.0))


def test_check_numerics_on_one_tensor():
    t = dd.constant([1.0, 2.0])
    assert dd.debugging.check_numerics(t, "fine") is t
    with pytest.raises(FloatingPointError, match="loss went bad"):
        dd.debugging.check_numerics(dd.constant([1.0, np.inf]), "loss went bad")


def test_an_optimizer_step_with_nan_gradient_is_applied_unless_checked():
    w = dd.Variable(1.0)
    dd.optimizers.SGD(0.1).apply_gradients([(dd.constant(np.nan), w)])
    assert np.isnan(w.numpy())
