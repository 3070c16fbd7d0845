"""tape.jacobian / tape.batch_jacobian of an int or bool target behave as tape.gradient does:
a NonFloatTargetWarning and None (zeros under unconnected_gradients='zero'), not an error."""
import numpy as np
import pytest

import dualad as dd
from dualad import NonFloatTargetWarning

X = np.array([[0.5, 1.5, -2.0], [3.0, -0.25, 4.0]])


def _record(target_of):
    x = dd.constant(X)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        target = target_of(x)
    return tape, x, target


NON_FLOAT_TARGETS = {
    "int32": lambda x: dd.cast(x * 2.0, dd.int32),
    "int64": lambda x: dd.cast(x, dd.int64),
    "bool": lambda x: x > 1.0,
}


@pytest.mark.parametrize("kind", sorted(NON_FLOAT_TARGETS))
def test_jacobian_warns_and_gives_none_or_zeros(kind):
    tape, x, target = _record(NON_FLOAT_TARGETS[kind])
    with pytest.warns(NonFloatTargetWarning, match=target.dtype.name):
        assert tape.gradient(target, x) is None   # the behaviour jacobian now follows
    with pytest.warns(NonFloatTargetWarning, match="jacobian"):
        assert tape.jacobian(target, x) is None
    with pytest.warns(NonFloatTargetWarning, match="jacobian: the target has dtype"):
        assert tape.jacobian(target, [x, x]) == [None, None]
    with pytest.warns(NonFloatTargetWarning, match="jacobian: the target has dtype"):
        zeros = tape.jacobian(target, x, unconnected_gradients="zero")
    assert zeros.shape == target.shape + x.shape and zeros.dtype == x.dtype
    np.testing.assert_array_equal(np.asarray(zeros), 0.0)


@pytest.mark.parametrize("kind", sorted(NON_FLOAT_TARGETS))
def test_batch_jacobian_warns_and_gives_none_or_zeros(kind):
    tape, x, target = _record(NON_FLOAT_TARGETS[kind])
    with pytest.warns(NonFloatTargetWarning, match="batch_jacobian"):
        assert tape.batch_jacobian(target, x) is None
    with pytest.warns(NonFloatTargetWarning, match="batch_jacobian: the target has dtype"):
        zeros = tape.batch_jacobian(target, x, unconnected_gradients=dd.UnconnectedGradients.ZERO)
    assert zeros.shape == (2, 3, 3) and zeros.dtype == x.dtype
    np.testing.assert_array_equal(np.asarray(zeros), 0.0)


def test_batch_jacobian_still_rejects_bad_shapes_of_int_targets():
    tape, x, _ = _record(lambda x: x)
    with pytest.raises(ValueError, match="rank >= 2"):
        tape.batch_jacobian(dd.constant([1, 2]), x)
    with pytest.raises(ValueError, match="batch"):
        tape.batch_jacobian(dd.constant(np.ones((3, 2), dtype=np.int32)), x)


def test_non_persistent_tape_is_used_up_by_an_int_jacobian():
    # as gradient(): the call counts as the tape's one use, whatever the target's dtype
    x = dd.constant(X)
    with dd.GradientTape() as tape:
        tape.watch(x)
        target = dd.cast(x, dd.int32)
        y = x * 2.0
    with pytest.warns(NonFloatTargetWarning, match="jacobian: the target has dtype"):
        assert tape.jacobian(target, x) is None
    with pytest.raises(RuntimeError, match="second time"):
        tape.jacobian(y, x)


def test_jacrev_of_an_int_valued_function_gives_zeros():
    f = lambda x: dd.cast(x, dd.int32)
    with pytest.warns(NonFloatTargetWarning, match="jacobian: the target has dtype"):
        jac = dd.jacrev(f)(dd.constant(X))
    assert jac.shape == X.shape + X.shape
    np.testing.assert_array_equal(np.asarray(jac), 0)


def test_float_target_jacobian_is_unchanged_next_to_an_int_one():
    tape, x, target = _record(lambda x: x * x)
    with pytest.warns(NonFloatTargetWarning, match="jacobian: the target has dtype"):
        tape.jacobian(dd.cast(target, dd.int32), x)
    jac = np.asarray(tape.jacobian(target, x)).reshape(X.size, X.size)
    np.testing.assert_allclose(jac, np.diag(2 * X.ravel()))
