"""ForwardAccumulator semantics (TensorFlow's): nested accumulators keep their levels, tangents
never leak between accumulators or threads, and an accumulator cannot be entered twice.

A float scalar's tangent may be kept as a C double on the Tensor (dualad/_transform.pxi) rather
than as a tangent Tensor: these tests pin that both stores give the same answers."""
import copy
import gc
import math
import pickle
import threading

import numpy as np
import pytest

import dualad as dd
from dualad import ForwardAccumulator


def c(v, dtype=np.float64):
    return dd.constant(np.asarray(v, dtype=dtype))


def value(t):
    return float(t.numpy())


# ---- nesting ------------------------------------------------------------------------------

def test_outer_sees_the_inner_tangent_computation_second_order():
    x = c(1.5)
    with ForwardAccumulator(x, c(1.0)) as outer:
        with ForwardAccumulator(x, c(1.0)) as inner:
            y = x ** 3
    inner_jvp = inner.jvp(y)
    assert value(inner_jvp) == pytest.approx(3 * 1.5 ** 2)
    assert value(outer.jvp(y)) == pytest.approx(3 * 1.5 ** 2)
    assert value(outer.jvp(inner_jvp)) == pytest.approx(6 * 1.5)
    # the inner accumulator does not see the outer one's tangent computation (TensorFlow's
    # forwardprop tests pin the same)
    assert inner.jvp(outer.jvp(y)) is None


def test_third_order_through_three_accumulators():
    x = c(0.7)
    with ForwardAccumulator(x, c(1.0)) as a3:
        with ForwardAccumulator(x, c(1.0)) as a2:
            with ForwardAccumulator(x, c(1.0)) as a1:
                y = dd.sin(x) * x
    d1 = a1.jvp(y)
    d2 = a2.jvp(d1)
    d3 = a3.jvp(d2)
    # y = x sin x: y' = sin x + x cos x, y'' = 2 cos x - x sin x, y''' = -3 sin x - x cos x
    assert value(d1) == pytest.approx(math.sin(0.7) + 0.7 * math.cos(0.7))
    assert value(d2) == pytest.approx(2 * math.cos(0.7) - 0.7 * math.sin(0.7))
    assert value(d3) == pytest.approx(-3 * math.sin(0.7) - 0.7 * math.cos(0.7))


def test_third_order_of_a_chain_with_scalar_opcodes_and_array_rules():
    # scalar ops (the C path where it applies) mixed with an op that has no scalar kernel
    # (reduce_sum over a stack): both stores of a tangent meet in one computation
    x = c(1.3)
    with ForwardAccumulator(x, c(1.0)) as a3:
        with ForwardAccumulator(x, c(1.0)) as a2:
            with ForwardAccumulator(x, c(1.0)) as a1:
                h = x * x
                y = dd.reduce_sum(dd.stack([h, x])) * x     # x**3 + x**2
    d3 = a3.jvp(a2.jvp(a1.jvp(y)))
    assert value(a1.jvp(y)) == pytest.approx(3 * 1.3 ** 2 + 2 * 1.3)
    assert value(a2.jvp(a1.jvp(y))) == pytest.approx(6 * 1.3 + 2)
    assert value(d3) == pytest.approx(6.0)


def test_perturbation_confusion():
    # d/dx [x * d/dy (x + y)] at any point is 1: the inner derivative is 1, whatever x is
    x, y = c(2.0), c(5.0)
    with ForwardAccumulator(x, c(1.0)) as ax:
        with ForwardAccumulator(y, c(1.0)) as ay:
            s = x + y
        inner = ay.jvp(s)
        z = x * inner
    assert value(inner) == 1.0
    assert value(ax.jvp(z)) == 1.0


def test_perturbation_confusion_same_primal_watched_by_both():
    # d/dx [x * d/dx' (x + x')]|x'=x with both accumulators watching x: the inner derivative
    # (1 + 1 = 2) is a constant for the outer one, so the result is 2
    x = c(2.0)
    with ForwardAccumulator(x, c(1.0)) as outer:
        with ForwardAccumulator(x, c(1.0)) as inner:
            s = x + x
        z = x * inner.jvp(s)
    assert value(inner.jvp(s)) == 2.0
    assert value(outer.jvp(z)) == 2.0


def test_reentering_an_active_accumulator_raises_value_error():
    x = c(1.0)
    acc = ForwardAccumulator(x, c(1.0))
    with acc:
        with pytest.raises(ValueError, match="already active"):
            with acc:
                pass
        # the failed entry left the accumulator active once, still working
        y = x * 3.0
        assert acc.active
    assert not acc.active
    assert value(acc.jvp(y)) == 3.0


def test_reentering_after_exit_is_allowed():
    x = c(1.0)
    acc = ForwardAccumulator(x, c(2.0))
    with acc:
        y = x * 3.0
    with acc:
        z = y * x
    assert value(acc.jvp(z)) == pytest.approx(2.0 * 3.0 * 1.0 + 3.0 * 2.0)


# ---- no leaks between accumulators ----------------------------------------------------------

def test_a_tensor_made_under_one_accumulator_has_no_tangent_under_another():
    x = c(0.5)
    with ForwardAccumulator(x, c(1.0)) as first:
        y = dd.sin(x)
    other = c(3.0)
    with ForwardAccumulator(other, c(1.0)) as second:
        z = y * y
    assert value(first.jvp(y)) == pytest.approx(math.cos(0.5))
    assert second.jvp(y) is None
    assert second.jvp(z) is None
    assert first.jvp(z) is None        # z was made after first exited


def test_an_exited_accumulator_follows_no_more_ops():
    x = c(0.5)
    with ForwardAccumulator(x, c(1.0)) as acc:
        y = x * x
    z = y * x
    assert value(acc.jvp(y)) == 1.0
    assert acc.jvp(z) is None


def test_two_live_accumulators_on_one_scalar_primal_keep_their_own_tangents():
    # the newest accumulator takes a scalar primal's C fields, the older one's tangent moves
    # to the dict: each still reads its own
    x = c(1.5)
    first = ForwardAccumulator(x, c(2.0))
    second = ForwardAccumulator(x, c(-3.0))
    with first:
        y1 = x * x
    with second:
        y2 = x * x
    assert value(first.jvp(x)) == 2.0
    assert value(second.jvp(x)) == -3.0
    assert value(first.jvp(y1)) == pytest.approx(2 * 1.5 * 2.0)
    assert value(second.jvp(y2)) == pytest.approx(2 * 1.5 * -3.0)
    del second
    gc.collect()
    with first:
        y3 = x * x
    assert value(first.jvp(y3)) == pytest.approx(2 * 1.5 * 2.0)


def test_a_dead_accumulator_leaves_its_primal_untracked():
    # numpy functions dualad cannot differentiate refuse tracked tensors while any tape or
    # accumulator is active: a primal of a dead accumulator must not count as tracked
    x = c(1.5)
    acc = ForwardAccumulator(x, c(2.0))
    with acc:
        pass
    del acc
    gc.collect()
    with ForwardAccumulator(c(0.0), c(1.0)):
        assert np.median(x) == 1.5    # no TypeError: x carries nothing any more


def test_a_scalar_tangent_marks_the_tensor_tracked():
    x = c(1.5)
    with ForwardAccumulator(x, c(1.0)):
        y = x * x
        with pytest.raises(TypeError, match="not differentiable by dualad"):
            np.median(y)


def test_copies_carry_no_tangent():
    x = c(0.5)
    with ForwardAccumulator(x, c(1.0)) as acc:
        y = dd.sin(x)
        deep = copy.deepcopy(y)
        pickled = pickle.loads(pickle.dumps(y))
        z = deep * 1.0 + pickled * 1.0
    assert acc.jvp(deep) is None
    assert acc.jvp(pickled) is None
    assert acc.jvp(z) is None
    # copy.copy of an immutable tensor is the tensor itself, tangent included
    assert value(acc.jvp(copy.copy(y))) == value(acc.jvp(y))


def test_an_accumulator_on_another_thread_does_not_see_this_threads_ops():
    x = c(0.5)
    ready, done = threading.Event(), threading.Event()
    result = {}

    def other_thread():
        with ForwardAccumulator(x, c(1.0)) as acc:
            result["acc"] = acc
            ready.set()
            done.wait(10)
            result["own"] = acc.jvp(x * x)

    th = threading.Thread(target=other_thread)
    th.start()
    assert ready.wait(10)
    mine = x * x                     # on this thread, while the other one's accumulator is active
    done.set()
    th.join()
    acc = result["acc"]
    assert acc.jvp(mine) is None
    assert value(result["own"]) == pytest.approx(1.0)


def test_tensors_with_tangents_crossing_threads_get_only_that_threads_tangents():
    x = c(0.5)
    with ForwardAccumulator(x, c(1.0)) as main_acc:
        y = dd.sin(x)                # a C tangent under main_acc
    results = {}

    def other_thread():
        w = c(2.0)
        with ForwardAccumulator(w, c(1.0)) as acc:
            z = y * w
        results["z_own"] = acc.jvp(z)
        results["z_main"] = main_acc.jvp(z)

    th = threading.Thread(target=other_thread)
    th.start()
    th.join()
    assert value(results["z_own"]) == pytest.approx(math.sin(0.5))
    assert results["z_main"] is None


def test_many_threads_pushing_scalar_tangents_at_once():
    errors = []

    def work(k):
        try:
            x = c(0.1 * k + 0.1)
            for _ in range(200):
                with ForwardAccumulator(x, c(1.0)) as acc:
                    h = x
                    for _ in range(5):
                        h = dd.sin(h) * x
                expected = _chain_derivative(0.1 * k + 0.1)
                got = value(acc.jvp(h))
                if not math.isclose(got, expected, rel_tol=1e-12):
                    errors.append((k, got, expected))
        except Exception as e:          # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []


def _chain_derivative(x0):
    # h <- sin(h) * x five times, differentiated along dx = 1 on Python floats
    h, dh = x0, 1.0
    for _ in range(5):
        h, dh = math.sin(h) * x0, math.cos(h) * dh * x0 + math.sin(h)
    return dh


# ---- the C store against the rule path ------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_c_tangent_read_by_a_rule_is_the_tangent_value(dtype):
    x = c(0.3, dtype)
    with ForwardAccumulator(x, c(1.0, dtype)) as acc:
        y = dd.sin(x)                              # C path
        z = dd.reduce_sum(dd.stack([y, y]))        # the rule reads y's tangent as a Tensor
    assert acc.jvp(y).dtype == y.dtype
    assert acc.jvp(z).numpy().tobytes() == (acc.jvp(y) + acc.jvp(y)).numpy().tobytes()


def test_jvp_zero_mode_and_structures_still_work():
    x, w = c(0.5), c([1.0, 2.0])
    with ForwardAccumulator([x, w], [c(1.0), c([0.5, 0.5])]) as acc:
        y = x * 2.0
        v = w * x
    assert value(acc.jvp(y)) == 2.0
    np.testing.assert_allclose(acc.jvp(v).numpy(), [1.0 * 1.0 + 0.5 * 0.5, 2.0 + 0.25])
    unconnected = c(4.0)
    assert acc.jvp(unconnected) is None
    assert value(acc.jvp(unconnected, unconnected_gradients="zero")) == 0.0
    nested = acc.jvp({"a": y})
    assert list(nested) == ["a"] and value(nested["a"]) == 2.0


def test_bad_watch_arguments_still_get_their_errors():
    x = c(1.0)
    with pytest.raises(ValueError, match="more than once"):
        ForwardAccumulator([x, x], [c(1.0), c(1.0)])
    with pytest.raises(ValueError, match="does not match"):
        ForwardAccumulator(x, c(1.0, np.float32))
    with pytest.raises(ValueError, match="does not match"):
        ForwardAccumulator(c([1.0, 2.0]), c([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="primals but"):
        ForwardAccumulator([x], [c(1.0), c(2.0)])
