"""Attack pass: user callbacks that re-enter the library mid-sweep (a custom_gradient grad_fn
asking the tape being swept for another gradient, raising on a first try, assigning a
Variable), and pickles that cross a process boundary, whole or mangled."""
import math
import pickle
import sys

import numpy as np
import pytest

import dualad as dd
from dualad import GradientTape
from isolated import assert_runs_cleanly


def t64(v):
    return dd.constant(v, dtype=dd.float64)


# ---- a grad_fn re-entering the tape being swept ----------------------------------------------

def _asking_again(box):
    @dd.custom_gradient
    def triple(x):
        def grad(dy):
            try:
                box["inner"] = box["tape"].gradient(box["other"], box["x"])
            except Exception as e:  # noqa: BLE001 - checked by the test
                box["inner"] = e
            return dy * 3.0
        return x * 3.0, grad
    return triple


@pytest.mark.parametrize("ask", ["gradient", "jacobian"])
def test_a_grad_fn_asking_a_non_persistent_tape_again_gets_the_one_use_error(ask):
    box = {}
    triple = _asking_again(box)
    x = t64(2.0)
    with GradientTape() as tape:
        tape.watch(x)
        other = x * x
        y = triple(x)
    box.update(tape=tape, other=other, x=x)
    # before: the inner call swept the tape again, which called grad_fn again, without end
    outer = tape.gradient(y, x) if ask == "gradient" else tape.jacobian(y, x)
    assert float(outer) == 3.0
    assert isinstance(box["inner"], RuntimeError)
    assert "can only be used to compute one set of gradients" in str(box["inner"])


def test_a_grad_fn_asking_a_persistent_tape_again_gets_right_numbers():
    box = {}
    triple = _asking_again(box)
    x = t64(2.0)
    with GradientTape(persistent=True) as tape:
        tape.watch(x)
        other = x * x
        y = dd.sin(triple(x))
    box.update(tape=tape, other=other, x=x)
    assert float(tape.gradient(y, x)) == pytest.approx(3 * math.cos(6.0), rel=1e-15)
    assert float(box["inner"]) == 4.0
    assert float(tape.gradient(other, x)) == 4.0      # the record is intact afterwards


def test_a_grad_fn_raising_on_its_first_call_leaves_a_persistent_tape_reusable():
    calls = []

    @dd.custom_gradient
    def flaky(x):
        def grad(dy):
            calls.append(1)
            if len(calls) == 1:
                raise ArithmeticError("first call fails")
            return dy * 5.0
        return x * 5.0, grad

    x = t64(2.0)
    with GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = dd.sin(flaky(x) * x)
    with pytest.raises(ArithmeticError, match="first call fails"):
        tape.gradient(y, x)
    assert dd._core.active_transformations() == ()
    assert float(tape.gradient(y, x)) == pytest.approx(math.cos(20.0) * 20.0, rel=1e-14)


def test_a_grad_fn_assigning_a_variable_mid_sweep_does_not_change_this_gradient():
    v = dd.Variable(np.array([1.0, 2.0]))

    @dd.custom_gradient
    def doubled(a):
        def grad(dy):
            v.assign(np.array([100.0, 200.0]))     # after the reads the tape recorded
            return dy * 2.0
        return a * 2.0, grad

    with GradientTape() as tape:
        y = dd.reduce_sum(doubled(v * v) * v)
    # d/dv sum(2 v^2 * v) = 6 v^2 at the values read in the block
    np.testing.assert_array_equal(tape.gradient(y, v).numpy(), [6.0, 24.0])
    np.testing.assert_array_equal(v.numpy(), [100.0, 200.0])


# ---- pickles across processes --------------------------------------------------------------

FUNCTIONS_MODULE = '''
import dualad as dd

@dd.function
def scaled_sin(x):
    return dd.sin(x) * 3.0
'''


def test_a_dualad_function_pickles_by_reference_across_processes(tmp_path):
    (tmp_path / "traced_functions.py").write_text(FUNCTIONS_MODULE)
    out = tmp_path / "f.pickle"
    assert_runs_cleanly(f"""
        import sys, pickle
        sys.path.insert(0, {str(tmp_path)!r})
        import dualad as dd
        from traced_functions import scaled_sin
        scaled_sin(dd.constant(0.5))          # traced here: the programs stay in this process
        open({str(out)!r}, "wb").write(pickle.dumps(scaled_sin))
    """)
    sys.path.insert(0, str(tmp_path))
    try:
        f = pickle.loads(out.read_bytes())
        from traced_functions import scaled_sin
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("traced_functions", None)
    assert f is scaled_sin
    assert float(f(t64(0.5))) == pytest.approx(3 * math.sin(0.5), rel=1e-15)


def test_a_dualad_function_that_cannot_be_found_by_name_is_a_pickling_error():
    local = dd.function(lambda x: x * 2.0)
    local(dd.constant(1.0))
    # (Python 3.11 says so with an AttributeError, later versions with a PicklingError)
    with pytest.raises((pickle.PicklingError, AttributeError), match="pickle"):
        pickle.dumps(local)


def test_mangled_pickles_of_tensors_and_variables_never_crash():
    # every single-byte change of a pickle holding a Variable, an int tensor and a float
    # scalar: loading either raises or gives objects that work or raise (numpy's own
    # unpickler reports some mangled arrays late, as errors: still no crash). 800 changes
    # from seed 5: later ones include a length numpy's unpickler spends a minute on.
    assert_runs_cleanly("""
        import pickle, random, warnings
        import dualad as dd
        warnings.simplefilter("ignore")
        good = pickle.dumps([dd.Variable([1.0, 2.0]), dd.constant([[1, 2]]), dd.constant(3.0)])
        rng = random.Random(5)
        loaded = 0
        for _ in range(800):
            mangled = bytearray(good)
            mangled[rng.randrange(len(mangled))] = rng.randrange(256)
            try:
                objects = pickle.loads(bytes(mangled))
                for obj in (objects if isinstance(objects, list) else [objects]):
                    repr(obj)
                    if isinstance(obj, dd.Tensor) and obj.numpy().size <= 1000:
                        (obj + obj).numpy()
                        with dd.GradientTape() as tape:
                            tape.watch(obj)
                            y = obj * obj
                        tape.gradient(y, obj)
                loaded += 1
            except Exception:
                pass
        for cut in range(len(good)):        # every truncation
            try:
                pickle.loads(good[:cut])
            except Exception:
                pass
        assert loaded > 0
    """, timeout=300)


@pytest.mark.parametrize("value, message", [
    (np.array([object()]), "unsupported dtype object"),
    (np.array(["a"]), "unsupported dtype <U1"),
    (np.ones(2) * 1j, "unsupported dtype complex128"),
    (np.zeros(2, dtype=[("a", "f8")]), "unsupported dtype"),
    ([1.0, 2.0], "holds a numpy array, not list"),
])
def test_hostile_values_in_a_tensor_pickle_are_clear_errors(value, message):
    from dualad._core import _tensor_from_pickle, _variable_from_pickle, Variable
    with pytest.raises(TypeError, match=message):
        _tensor_from_pickle(value)
    with pytest.raises(TypeError, match=message):
        _variable_from_pickle(Variable, value, True, "v")
