"""A tape recording on one thread is swept, reset or released only by that thread: another
thread asking for a gradient, a Jacobian or a reset while it records gets AlreadyActiveError,
and the recording thread's record and numbers are untouched. A tape no thread has entered may
be used from any thread."""
import math
import threading

import pytest

import dualad as dd
from dualad import GradientTape
from dualad._core import AlreadyActiveError


def _record_on_other_thread(persistent):
    """A tape entered on a new thread that has recorded y = sin(x) * x on it and waits in its
    with block until `release` is set; the owner then takes its own gradient."""
    tape = GradientTape(persistent=persistent)
    recorded, release, out = threading.Event(), threading.Event(), {}

    def owner():
        try:
            x = dd.constant([0.3, 0.4], dtype=dd.float64)
            with tape:
                tape.watch(x)
                y = dd.sin(x) * x
                out["x"], out["y"] = x, y
                recorded.set()
                release.wait(20)
                z = y * 2.0     # still recording after the other thread's attempt
            out["grad"] = tape.gradient(z, x).numpy()
        except BaseException as e:  # noqa: BLE001 - checked by the test
            out["error"] = e
            recorded.set()

    th = threading.Thread(target=owner)
    th.start()
    assert recorded.wait(20)
    return tape, th, release, out


_CALLS = {
    "gradient": lambda tape, x, y: tape.gradient(y, x),
    "gradient_list": lambda tape, x, y: tape.gradient(y, [x]),
    "jacobian": lambda tape, x, y: tape.jacobian(y, x),
    "batch_jacobian": lambda tape, x, y: tape.batch_jacobian(dd.reshape(y, (2, 1)),
                                                             dd.reshape(x, (2, 1))),
    "reset": lambda tape, x, y: tape.reset(),
    # watch would take a slot number the recording thread may give to an output meanwhile
    "watch": lambda tape, x, y: tape.watch(dd.constant(1.0, dtype=dd.float64)),
    "watch_nested": lambda tape, x, y: tape.watch([dd.constant(1.0), dd.Variable(2.0)]),
}


@pytest.mark.parametrize("persistent", [False, True], ids=["one_use", "persistent"])
@pytest.mark.parametrize("call", list(_CALLS))
def test_using_a_tape_recording_on_another_thread_raises_and_leaves_the_owner_right(call,
                                                                                   persistent):
    tape, th, release, out = _record_on_other_thread(persistent)
    try:
        with pytest.raises(AlreadyActiveError, match="another thread"):
            _CALLS[call](tape, out["x"], out["y"])
    finally:
        release.set()
        th.join()
    assert "error" not in out, out.get("error")
    xs = [0.3, 0.4]
    assert out["grad"] == pytest.approx([2 * (math.cos(v) * v + math.sin(v)) for v in xs],
                                        rel=1e-14)


def test_a_tape_left_by_its_thread_can_be_used_from_another():
    tape, th, release, out = _record_on_other_thread(persistent=True)
    release.set()
    th.join()
    assert "error" not in out, out.get("error")
    g = tape.gradient(out["y"], out["x"]).numpy()
    assert g == pytest.approx([math.cos(v) * v + math.sin(v) for v in (0.3, 0.4)], rel=1e-14)
    tape.reset()
    assert tape._n_entries == 0
