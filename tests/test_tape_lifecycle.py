"""A tape's lifecycle paths in C: construction (the tp_init that builds no kwargs dict), the
thread's transformation stack (entered and left in place), and the C set of live tape ids
that recycles stale slot fields."""
import random

import numpy as np
import pytest

import dualad as dd
from dualad import _core


# ---- construction ---------------------------------------------------------------------------

ARGUMENTS = [((), {}), ((True,), {}), ((0, 0), {}), ((1, ""), {}), ((), {"persistent": 1}),
             ((), {"watch_accessed_variables": False}),
             ((), {"watch_accessed_variables": [], "persistent": [1]}),
             ((None,), {"watch_accessed_variables": 2})]


def test_the_constructor_without_a_kwargs_dict_is_installed():
    # on the CPython versions the project supports, Tape.__init__ is the slot wrapper of its
    # tp_init, so the C constructor takes over (elsewhere it would silently not, and be slower)
    assert _core._tape_init_installed
    assert dd.GradientTape.__init__ is _core.Tape.__init__


def expected_flags(args, kwargs):
    values = dict(zip(("persistent", "watch_accessed_variables"), args), **kwargs)
    return (bool(values.get("persistent", False)),
            bool(values.get("watch_accessed_variables", True)))


@pytest.mark.parametrize("args, kwargs", ARGUMENTS)
@pytest.mark.parametrize("cls", [dd.GradientTape, _core.Tape])
def test_each_way_of_passing_the_arguments_sets_the_flags(cls, args, kwargs):
    tape = cls(*args, **kwargs)
    assert (tape.persistent, tape.watch_accessed_variables) == expected_flags(args, kwargs)
    # the same through the __init__ wrapper, on a tape made with other flags
    other = cls(persistent=not tape.persistent,
                watch_accessed_variables=not tape.watch_accessed_variables)
    cls.__init__(other, *args, **kwargs)
    assert (other.persistent, other.watch_accessed_variables) == expected_flags(args, kwargs)


@pytest.mark.parametrize("args, kwargs, message", [
    ((), {"persistant": True}, "got an unexpected keyword argument 'persistant'"),
    ((), {"persistent": True, "other": 1}, "got an unexpected keyword argument 'other'"),
    ((True,), {"persistent": True}, "got multiple values for argument 'persistent'"),
    ((True, False), {"watch_accessed_variables": True},
     "got multiple values for argument 'watch_accessed_variables'"),
    ((1, 2, 3), {}, r"takes from 1 to 3 positional arguments but 4 were given"),
])
def test_bad_arguments_get_pythons_errors_naming_the_class(args, kwargs, message):
    with pytest.raises(TypeError, match=r"^GradientTape\.__init__\(\) " + message):
        dd.GradientTape(*args, **kwargs)


def test_a_flag_whose_truth_raises_raises():
    class NoTruth:
        def __bool__(self):
            raise ZeroDivisionError("no truth value")
    for kwargs in ({"persistent": NoTruth()}, {"watch_accessed_variables": NoTruth()}):
        with pytest.raises(ZeroDivisionError):
            dd.GradientTape(**kwargs)
    with pytest.raises(ZeroDivisionError):
        dd.GradientTape(NoTruth())


def test_subclasses_construct_and_keep_attributes():
    class Plain(dd.GradientTape):
        pass

    class Custom(dd.GradientTape):
        def __init__(self, label):
            super().__init__(persistent=True)
            self.label = label

    plain, custom = Plain(True), Custom("mine")
    assert plain.persistent and plain.watch_accessed_variables
    assert custom.persistent and custom.label == "mine"
    x = dd.constant(3.0)
    with custom:
        custom.watch(x)
        y = x * x
    assert float(custom.gradient(y, x)) == 6.0
    assert float(custom.gradient(y, x)) == 6.0      # persistent
    tape = dd.GradientTape()
    tape.note = 1                                   # users may set attributes on a tape
    assert tape.note == 1 and isinstance(tape, _core.Tape)


# ---- the transformation stack ---------------------------------------------------------------

def test_leaving_a_tape_that_is_not_innermost_keeps_the_others_active():
    outer, inner = dd.GradientTape(), dd.GradientTape()
    acc = dd.ForwardAccumulator(dd.constant(1.0), dd.constant(1.0))
    outer.__enter__()
    inner.__enter__()
    acc.__enter__()
    assert _core.active_transformations() == (outer, inner, acc)
    outer.__exit__(None, None, None)                # not the innermost
    assert _core.active_transformations() == (inner, acc)
    acc.__exit__(None, None, None)
    assert _core.active_transformations() == (inner,)
    inner.__exit__(None, None, None)
    assert _core.active_transformations() == ()
    assert _core.live_transformation_count() == 0
    for _ in range(3):                              # the emptied stack takes tapes again
        with dd.GradientTape() as tape:
            assert _core.active_transformations() == (tape,)
        assert _core.active_transformations() == ()


def test_an_error_inside_nested_tapes_leaves_the_stack_empty_and_usable():
    x = dd.constant(2.0)
    with pytest.raises(KeyError):
        with dd.GradientTape() as outer:
            with dd.GradientTape() as inner:
                inner.watch(x)
                raise KeyError("inside")
    assert _core.active_transformations() == () and _core.live_transformation_count() == 0
    with dd.GradientTape() as tape:
        tape.watch(x)
        y = x ** 3
    assert float(tape.gradient(y, x)) == 12.0
    assert not outer.active and not inner.active


# ---- the set of live tape ids ---------------------------------------------------------------

BASE = 1 << 60      # far above any tape's id


@pytest.mark.parametrize("seed", range(4))
def test_live_id_set_matches_a_python_set(seed):
    rng = random.Random(seed)
    universe = [BASE + k for k in range(600)] + [BASE + rng.randrange(1 << 40) for _ in range(600)]
    model = set()
    try:
        for step in range(6000):
            key = rng.choice(universe)
            if rng.random() < 0.55:
                _core._live_tape_ids_add(key)
                model.add(key)
            else:
                _core._live_tape_ids_discard(key)
                model.discard(key)
            if step % 97 == 0:
                assert all(_core._live_tape_ids_contains(k) == (k in model) for k in universe)
        assert all(_core._live_tape_ids_contains(k) == (k in model) for k in universe)
    finally:
        for key in universe:
            _core._live_tape_ids_discard(key)
    assert not any(_core._live_tape_ids_contains(k) for k in universe)


def test_live_tapes_are_in_the_set_from_their_first_slot_to_their_release():
    x = dd.constant(1.5)
    tape = dd.GradientTape()
    assert not _core._live_tape_ids_contains(tape.id)
    with tape:
        tape.watch(x)
        y = x * x
    assert _core._live_tape_ids_contains(tape.id)
    tape.gradient(y, x)
    assert not _core._live_tape_ids_contains(tape.id)
    kept = dd.GradientTape(persistent=True)
    with kept:
        kept.watch(x)
    key = kept.id
    assert _core._live_tape_ids_contains(key)
    del kept
    assert not _core._live_tape_ids_contains(key)


def test_slot_fields_of_released_tapes_are_recycled_for_live_ones():
    # x carries two slot fields: with more live tapes than fields, the further slots go to a
    # dict, and a released tape's field is taken again by the next tape
    x = dd.constant(np.float64(0.5))
    live = []
    for k in range(5):
        tape = dd.GradientTape(persistent=True)
        with tape:
            tape.watch(x)
            y = x ** (k + 2)
        live.append((tape, y, k + 2))
    for tape, y, n in live:
        assert float(tape.gradient(y, x)) == n * 0.5 ** (n - 1)
    for i in (1, 3):
        live[i][0].reset()
    for n in (2, 3, 7):
        tape = dd.GradientTape()
        with tape:
            tape.watch(x)
            y = x ** n
        assert float(tape.gradient(y, x)) == n * 0.5 ** (n - 1)
    for tape, y, n in (live[0], live[2], live[4]):
        assert float(tape.gradient(y, x)) == n * 0.5 ** (n - 1)


# ---- the watched tensors (one held alone, more in a list) -----------------------------------

@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("persistent", [False, True])
def test_watched_tensors_keep_their_order_and_lose_their_slots_at_release(n, persistent):
    tensors = [dd.Variable(float(k + 1)) if k % 2 == 0 else dd.constant(float(k + 1))
               for k in range(n)]
    variables = tuple(t for t in tensors if isinstance(t, dd.Variable))
    tape = dd.GradientTape(persistent=persistent, watch_accessed_variables=False)
    with tape:
        for t in tensors:
            tape.watch(t)
            tape.watch(t)                           # a second watch adds nothing
        y = tensors[0]
        for t in tensors[1:]:
            y = y * t
    assert tape._watched_tensors() == tensors
    assert tape.watched_variables() == variables
    assert all(tape._has_slot(t) for t in tensors)
    grads = tape.gradient(y, tensors)
    product = float(np.prod([k + 1.0 for k in range(n)]))
    assert [float(g) for g in grads] == [product / (k + 1) for k in range(n)]
    assert tape.watched_variables() == variables    # after a release: the ones it watched then
    if persistent:
        tape.reset()
        assert tape.watched_variables() == ()
    assert tape._watched_tensors() == []
    assert not any(tape._has_slot(t) for t in tensors)
