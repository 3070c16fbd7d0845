"""One tape or accumulator object is active on one thread at a time (as in TensorFlow, where
entering an object that is already recording raises ValueError whichever thread asks): a
second thread entering it gets AlreadyActiveError, and the owner's numbers and state are
untouched. After the owner leaves, another thread may enter it."""
import math
import threading

import pytest

import dualad as dd
from dualad import ForwardAccumulator, GradientTape
from dualad._core import AlreadyActiveError, live_transformation_count


def _hold_on_other_thread(transformation):
    """Enter `transformation` on a new thread and keep it active until the returned release
    event is set; returns (thread, release, errors)."""
    entered, release, errors = threading.Event(), threading.Event(), []

    def owner():
        try:
            with transformation:
                entered.set()
                release.wait(20)
        except BaseException as e:  # noqa: BLE001 - checked by the test
            errors.append(e)
            entered.set()

    th = threading.Thread(target=owner)
    th.start()
    assert entered.wait(20)
    return th, release, errors


@pytest.mark.parametrize("make", [
    lambda: ForwardAccumulator(dd.constant(0.5), dd.constant(1.0)),
    lambda: GradientTape(persistent=True),
], ids=["accumulator", "tape"])
def test_entering_an_object_active_on_another_thread_raises(make):
    transformation = make()
    th, release, errors = _hold_on_other_thread(transformation)
    try:
        with pytest.raises(AlreadyActiveError, match="another thread"):
            with transformation:
                pass
        assert transformation not in dd._core.active_transformations()
    finally:
        release.set()
        th.join()
    assert errors == []
    # the owner left: now this thread may enter it
    with transformation:
        assert transformation.active


def test_an_accumulator_entered_from_two_threads_keeps_its_owners_tangents_right():
    x = dd.constant(0.3, dtype=dd.float64)
    acc = ForwardAccumulator(x, dd.constant(1.0, dtype=dd.float64))
    go, done, results = threading.Event(), threading.Event(), {}

    def owner():
        with acc:
            go.set()
            done.wait(20)
            y = dd.sin(x) * x       # d/dx = cos(x) x + sin(x)
            results["owner"] = acc.jvp(y)

    th = threading.Thread(target=owner)
    th.start()
    assert go.wait(20)
    with pytest.raises(AlreadyActiveError):
        acc.__enter__()
    done.set()
    th.join()
    assert results["owner"].numpy() == pytest.approx(math.cos(0.3) * 0.3 + math.sin(0.3),
                                                     rel=1e-14)


def test_a_thread_that_dies_inside_the_with_block_frees_the_object():
    tape = GradientTape(persistent=True)
    th = threading.Thread(target=tape.__enter__)   # ends with the tape entered
    th.start()
    th.join()
    del th
    import gc
    gc.collect()
    x = dd.constant(2.0)
    with tape:
        tape.watch(x)
        y = x * x
    assert tape.gradient(y, x).numpy() == 4.0


@pytest.mark.stress
def test_8_threads_racing_to_enter_one_accumulator_get_right_numbers_or_a_clear_error():
    x = dd.constant(0.7, dtype=dd.float64)
    acc = ForwardAccumulator(x, dd.constant(1.0, dtype=dd.float64))
    expected = math.cos(0.7) * 0.7 + math.sin(0.7)
    barrier = threading.Barrier(8)
    counts, errors = {"won": 0, "refused": 0}, []
    lock = threading.Lock()

    def work():
        try:
            barrier.wait(20)
            for _ in range(300):
                try:
                    acc.__enter__()
                except AlreadyActiveError:
                    with lock:
                        counts["refused"] += 1
                    continue
                try:
                    got = acc.jvp(dd.sin(x) * x).numpy()
                finally:
                    acc.__exit__(None, None, None)
                if not math.isclose(got, expected, rel_tol=1e-14):
                    errors.append(got)
                with lock:
                    counts["won"] += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    before = live_transformation_count()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert errors == []
    assert counts["won"] + counts["refused"] == 8 * 300 and counts["won"] > 0
    assert live_transformation_count() == before
    with acc:       # usable afterwards
        assert acc.jvp(x * x).numpy() == pytest.approx(1.4)


def test_a_tape_reset_inside_its_block_stays_owned_by_its_thread():
    # reset() gives the tape a new identity while it stays active: still refused elsewhere
    tape = GradientTape(persistent=True)
    entered, release, refused = threading.Event(), threading.Event(), []

    def owner():
        with tape:
            tape.reset()
            entered.set()
            release.wait(20)

    th = threading.Thread(target=owner)
    th.start()
    assert entered.wait(20)
    try:
        with pytest.raises(AlreadyActiveError, match="another thread"):
            tape.__enter__()
    finally:
        release.set()
        th.join()
    x = dd.constant(3.0, dtype=dd.float64)
    with tape:
        tape.watch(x)
        y = x * x
    assert tape.gradient(y, x).numpy() == 6.0
