"""TensorFlow's GradientTape semantics where dualad used to differ: an integer or bool target,
re-entering an active tape, watching something that is not a tensor, a second gradient() of a
non-persistent tape. Also: the compiled fast path of gradient() and watch() gives exactly what
the general (Python) path gives, for every argument shape it takes."""
import warnings

import numpy as np
import pytest

import dualad as dd


# ---- an integer or bool target ------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
@pytest.mark.parametrize("sources_kind", ["single", "list", "tuple", "dict"])
def test_a_non_float_target_warns_and_gives_none_for_every_source(dtype, sources_kind):
    x = dd.Variable(3.0)
    c = dd.constant([1.0, 2.0])
    with dd.GradientTape() as tape:
        tape.watch(c)
        y = dd.cast(x * c, dtype)
    sources = {"single": x, "list": [x, c], "tuple": (x, c), "dict": {"x": x, "c": c}}[sources_kind]
    with pytest.warns(dd.NonFloatTargetWarning, match=f"dtype {dtype}") as record:
        grads = tape.gradient(y, sources)
    assert record[0].filename == __file__   # points at the caller's line
    expected = {"single": None, "list": [None, None], "tuple": (None, None),
                "dict": {"x": None, "c": None}}[sources_kind]
    assert grads == expected and type(grads) is type(expected)
    # the call used the non-persistent tape up, as a float target would have
    with pytest.raises(RuntimeError, match="only be used to compute one set of gradients"):
        tape.gradient(y, sources)


def test_a_non_float_target_gives_zeros_with_unconnected_zero():
    x = dd.constant([1.0, 2.0])
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = dd.cast(x, "int32")
    with pytest.warns(dd.NonFloatTargetWarning, match="int32"):
        g = tape.gradient(y, x, unconnected_gradients="zero")
    assert g.dtype == x.dtype
    np.testing.assert_array_equal(g.numpy(), [0.0, 0.0])


def test_a_non_float_target_beside_a_float_one_adds_nothing():
    x = dd.constant(2.0)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = x * x
        k = dd.cast(y, "int64")
    with pytest.warns(dd.NonFloatTargetWarning, match="int64"):
        g = tape.gradient([y, k], x)
    assert float(g) == 4.0


def test_the_warning_is_a_user_warning_that_can_be_silenced():
    assert issubclass(dd.NonFloatTargetWarning, UserWarning)
    x = dd.constant(2.0)
    with dd.GradientTape() as tape:
        tape.watch(x)
        k = dd.cast(x, "int32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", dd.NonFloatTargetWarning)
        assert tape.gradient(k, x) is None


# ---- re-entering an active tape --------------------------------------------------------------

@pytest.mark.parametrize("persistent", [False, True])
def test_re_entering_an_active_tape_raises_value_error(persistent):
    x = dd.constant(2.0)
    tape = dd.GradientTape(persistent=persistent)
    with tape:
        tape.watch(x)
        with pytest.raises(ValueError, match="GradientTape is already active"):
            with tape:
                pass
        # the failed entry left the tape active once, still recording
        assert dd._core.active_transformations() == (tape,)
        y = x * x
    assert dd._core.active_transformations() == ()
    assert float(tape.gradient(y, x)) == 4.0


def test_already_active_error_is_also_the_runtime_error_dualad_raised_before():
    assert issubclass(dd.tape.AlreadyActiveError, ValueError)
    assert issubclass(dd.tape.AlreadyActiveError, RuntimeError)


# ---- watching something that is not a tensor -------------------------------------------------

@pytest.mark.parametrize("bad, type_name", [
    (np.ones(2), "ndarray"), ("x", "str"), (None, "NoneType"), (3.0, "float"),
    ([dd.constant(1.0), "x"], "str"), ({"a": None}, "NoneType"),
])
def test_watch_of_a_non_tensor_raises_value_error_naming_its_type(bad, type_name):
    with dd.GradientTape() as tape:
        with pytest.raises(ValueError, match=f"expected Tensors or Variables, got {type_name}"):
            tape.watch(bad)
    assert issubclass(dd.tape.WatchError, TypeError)   # what dualad raised before


# ---- a second gradient() of a non-persistent tape --------------------------------------------

@pytest.mark.parametrize("sources_kind", ["single", "list", "nested"])
def test_a_second_gradient_call_says_to_use_a_persistent_tape(sources_kind):
    x = dd.constant(2.0)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = x * x
    sources = {"single": x, "list": [x], "nested": [[x]]}[sources_kind]
    tape.gradient(y, sources)
    with pytest.raises(RuntimeError, match=r"non-persistent GradientTape can only be used to "
                                           r"compute one set of gradients.*"
                                           r"GradientTape\(persistent=True\)"):
        tape.gradient(y, sources)


# ---- the compiled fast path gives what the general path gives ---------------------------------

def _record(persistent=True):
    w = dd.Variable(0.5)
    b = dd.Variable([0.1, -0.2])
    frozen = dd.Variable(2.0, trainable=False)
    n = dd.constant(3)
    x = dd.constant([1.0, 2.0])
    with dd.GradientTape(persistent=persistent) as tape:
        tape.watch(x)
        loss = dd.reduce_sum((w * x + b) ** 2) * frozen
    return tape, loss, (w, b, frozen, n, x)


@pytest.mark.parametrize("shape", ["single", "list", "tuple", "duplicates"])
def test_fast_path_matches_the_general_path_bit_for_bit(shape):
    tape, loss, (w, b, frozen, n, x) = _record()
    sources = {"single": w, "list": [w, b, frozen, n, x], "tuple": (w, b, frozen, n, x),
               "duplicates": [b, w, b]}[shape]
    fast = tape.gradient(loss, sources)
    # the general path: the same call through a nested structure, and through output_gradients
    general = tape.gradient(loss, [sources])[0]
    weighted = tape.gradient(loss, sources, output_gradients=dd.ones_like(loss))
    assert type(fast) is type(general) is type(weighted)
    flat = lambda g: [g] if shape == "single" else list(g)
    for f, g, h in zip(flat(fast), flat(general), flat(weighted)):
        assert (f is None) == (g is None) == (h is None)
        if f is not None:
            assert f.dtype == g.dtype and f.numpy().tobytes() == g.numpy().tobytes()
            assert h.numpy().tobytes() == g.numpy().tobytes()
    if shape == "list":
        assert fast[2] is None and fast[3] is None   # not trainable; an integer source


def test_fast_path_of_a_non_persistent_tape_releases_it_and_keeps_its_variables():
    tape, loss, (w, b, frozen, n, x) = _record(persistent=False)
    assert tape.watched_variables() == (w, b)
    gw, gb = tape.gradient(loss, [w, b])
    # loss = frozen · Σ(w·x + b)², r = w·x + b = [0.6, 0.8]: d/dw = 2·frozen·Σ r·x, d/db = 2·frozen·r
    np.testing.assert_allclose(gw.numpy(), 4.0 * (0.6 * 1.0 + 0.8 * 2.0), rtol=1e-6)
    np.testing.assert_allclose(gb.numpy(), [4.0 * 0.6, 4.0 * 0.8], rtol=1e-6)
    assert tape.released and tape.watched_variables() == (w, b)
    with pytest.raises(RuntimeError, match="create a new tape"):
        with tape:
            pass


def test_fast_path_inside_a_non_persistent_tape_stops_its_recording():
    x = dd.constant(3.0)
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = x * x
        g = tape.gradient(y, x)
        assert not tape.recording
    assert float(g) == 6.0


def test_fast_watch_of_a_float_tensor_and_a_released_tape():
    x = dd.constant(3.0)
    with dd.GradientTape(persistent=True) as tape:
        tape.watch(x)
        tape.watch(x)           # a second watch changes nothing
        y = x * x
    assert float(tape.gradient(y, x)) == 6.0
    tape.reset()                # released: the next watch reopens the record
    with tape:
        tape.watch(x)
        z = x * x * x
    assert float(tape.gradient(z, x)) == 27.0
    with dd.GradientTape() as tape:
        with pytest.warns(dd.NonFloatWatchWarning, match="int32"):
            tape.watch(dd.constant(1))


@pytest.mark.parametrize("path", ["fast", "general"])
def test_sources_list_changed_by_a_custom_gradient_during_the_sweep(path):
    """A gradient function that empties the caller's source list must not shift or shorten
    the results: both paths take the list's length and items before the sweep."""
    x = dd.constant(2.0)
    z = dd.constant(5.0)
    sources = [x, z]

    @dd.custom_gradient
    def double(t):
        def grad(upstream):
            sources.clear()
            return upstream * 2.0
        return t * 2.0, grad

    with dd.GradientTape() as tape:
        tape.watch([x, z])
        y = double(x) * z
    weights = None if path == "fast" else dd.ones_like(y)
    gx, gz = tape.gradient(y, sources, output_gradients=weights)
    assert float(gx) == 10.0 and float(gz) == 4.0


def test_tapes_that_watch_nothing_and_tapes_reset_keep_slots_apart():
    """A tape joins the live-tape set only when it hands out its first slot: slots of a tape
    that was reset, dropped, or never watched must never be taken for a live tape's."""
    x = dd.Variable(2.0)
    outer = dd.GradientTape(persistent=True)
    with outer:
        with dd.GradientTape(watch_accessed_variables=False):
            pass                                  # never watches: never listed
        unused = dd.GradientTape()
        with unused:
            y = x * x                             # outer's slots only
        inner = dd.GradientTape(persistent=True)
        with inner:
            z = y * x
            inner.reset()                         # a new id, unlisted until its next watch
            inner.watch(y)
            w = y * 3.0
        del unused
    assert float(outer.gradient(z, x)) == 12.0    # d(x**3)/dx at 2
    assert float(inner.gradient(w, y)) == 3.0
    assert inner.gradient(w, x) is None
    assert outer.watched_variables() == (x,)
