"""Which sources a tape watches (GT-VAR-01, GT-VAR-02, GT-VAR-03)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.harness import make, reference_gradients, to_numpy
from conformance.strategies import arrays, as_dtype, float_dtypes, shapes
from conformance.tolerances import assert_close
from conformance.tutorial_functions import quadratic


def product_sum(ops, u, v):
    """sum(u·v + u): depends on both sources."""
    return ops.reduce_sum(ops.add(ops.multiply(u, v), u))


def same_shape_pair():
    return shapes().flatmap(lambda s: st.tuples(arrays(s), arrays(s)))


@pytest.mark.identity("GT-VAR-01")
@pytest.mark.requires("variables")
@given(dtype=float_dtypes(), x=arrays(shapes()), abc=arrays((3,)))
def test_trainable_variables_are_watched_automatically(impl, dtype, x, abc):
    xv = impl.variable(as_dtype(x, dtype), dtype)
    a, b, c = (make(impl, v, dtype) for v in abc)
    with impl.tape() as tape:  # no watch() call
        y = quadratic(impl, xv, a, b, c)
    grad = to_numpy(impl, tape.gradient(y, xv))
    a0, b0, c0 = (float(v) for v in abc)
    expected = reference_gradients(lambda ops, v: quadratic(ops, v, a0, b0, c0), [x])[0]
    assert_close(grad, expected, dtype, "dy/dx vs finite differences")
    assert_close(grad, 2 * a0 * x + b0, dtype, "dy/dx vs 2ax + b")


@pytest.mark.identity("GT-VAR-01")
@pytest.mark.requires("variables")
def test_trainable_variable_tutorial_example(impl):
    x = impl.variable(0.0, "float32")
    a, b, c = (impl.constant(v, "float32") for v in (1.0, -2.0, 1.0))
    with impl.tape() as tape:
        y = quadratic(impl, x, a, b, c)
    assert_close(to_numpy(impl, tape.gradient(y, x)), -2.0, "float32", "dy/dx at 0")


@pytest.mark.identity("GT-VAR-02")
@pytest.mark.requires("variables", "watch_accessed_variables")
@given(dtype=float_dtypes(), uv=same_shape_pair(), persistent=st.booleans())
def test_watch_accessed_variables_false_records_only_watched_sources(impl, dtype, uv, persistent):
    u, v = uv
    uv_vars = [impl.variable(as_dtype(w, dtype), dtype) for w in (u, v)]
    with impl.tape(persistent=persistent, watch_accessed_variables=False) as tape:
        tape.watch(uv_vars[0])
        y = product_sum(impl, *uv_vars)
    du, dv = tape.gradient(y, uv_vars)
    assert dv is None, f"unwatched variable got gradient {to_numpy(impl, dv)!r}, expected None (persistent={persistent})"
    assert_close(to_numpy(impl, du), reference_gradients(product_sum, [u, v])[0], dtype, "dy/du (watched)")
    if persistent:  # a second call sees the same recording
        du, dv = tape.gradient(y, uv_vars)
        assert dv is None, f"second call: unwatched variable got {to_numpy(impl, dv)!r}, expected None"
        assert_close(to_numpy(impl, du), reference_gradients(product_sum, [u, v])[0], dtype, "dy/du, second call")


@pytest.mark.identity("GT-VAR-02")
@pytest.mark.requires("variables", "watch_accessed_variables", "nested_tapes")
@given(dtype=float_dtypes(), uv=same_shape_pair(), outer_is_selective=st.booleans())
def test_watch_accessed_variables_false_in_nested_tapes(impl, dtype, uv, outer_is_selective):
    # One tape of the pair watches only u explicitly; the other watches every Variable it reads.
    # Each tape's setting governs that tape alone.
    u, v = uv
    uv_vars = [impl.variable(as_dtype(w, dtype), dtype) for w in (u, v)]
    with impl.tape(watch_accessed_variables=not outer_is_selective) as outer:
        with impl.tape(watch_accessed_variables=outer_is_selective) as inner:
            (outer if outer_is_selective else inner).watch(uv_vars[0])
            y = product_sum(impl, *uv_vars)
    selective, watching_all = (outer, inner) if outer_is_selective else (inner, outer)
    expected = reference_gradients(product_sum, [u, v])
    for name, grad, want in zip("uv", watching_all.gradient(y, uv_vars), expected):
        assert_close(to_numpy(impl, grad), want, dtype, f"dy/d{name} from the tape watching every Variable")
    du, dv = selective.gradient(y, uv_vars)
    assert dv is None, f"tape with watch_accessed_variables=False gave v the gradient {to_numpy(impl, dv)!r}"
    assert_close(to_numpy(impl, du), expected[0], dtype, "dy/du from the selective tape")


@pytest.mark.identity("GT-VAR-03")
@pytest.mark.requires("variables")
@given(dtype=float_dtypes(), uv=same_shape_pair(), watch=st.booleans())
def test_constants_and_non_trainable_variables_need_watch(impl, dtype, uv, watch):
    u, v = uv
    constant = make(impl, u, dtype)
    frozen = impl.variable(as_dtype(v, dtype), dtype, trainable=False)
    with impl.tape() as tape:
        if watch:
            tape.watch([constant, frozen])
        y = product_sum(impl, constant, frozen)
    grads = tape.gradient(y, [constant, frozen])
    if watch:
        for name, grad, want in zip(["constant", "non-trainable variable"], grads, reference_gradients(product_sum, [u, v])):
            assert_close(to_numpy(impl, grad), want, dtype, f"dy/d({name}), watched")
    else:
        assert grads[0] is None and grads[1] is None, (
            f"unwatched sources got gradients {[to_numpy(impl, g) for g in grads]!r}, expected [None, None]"
        )


# GT-VAR-04 ----------------------------------------------------------------------


def assert_rounded_once(actual, expected, dtype, what):
    """``actual`` equals NumPy's one-rounding result, or differs from it by at most 2·tiny
    (a subnormal input or result flushed to zero), as GT-SGD-01 allows."""
    error = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))
    bad = ~(error <= 2 * float(np.finfo(np.dtype(dtype)).tiny))
    assert not bad.any(), f"{what}: {actual!r}, expected exactly {expected!r} (up to flushed subnormals)"


@pytest.mark.identity("GT-VAR-04")
@pytest.mark.requires("variables", "variable_assign")
@given(dtype=float_dtypes(), values=shapes().flatmap(lambda s: st.tuples(arrays(s), arrays(s), arrays(s))))
def test_assign_add_and_assign_sub_update_in_place(impl, dtype, values):
    x0, d1, d2 = (as_dtype(w, dtype) for w in values)
    variable = impl.variable(x0, dtype)
    impl.assign_add(variable, make(impl, d1, dtype))
    after_add = to_numpy(impl, variable)
    impl.assign_sub(variable, make(impl, d2, dtype))
    after_sub = to_numpy(impl, variable)
    # one rounding each, in the variable's dtype: NumPy's own x + d and x - d are exact references,
    # up to subnormals flushed to zero (TensorFlow's CPU kernels do, by design: see tolerances.py)
    assert_rounded_once(after_add, x0 + d1, dtype, "after assign_add")
    assert_rounded_once(after_sub, after_add - d2, dtype, "after assign_sub")
    assert after_sub.dtype == np.dtype(dtype), f"{dtype} Variable became {after_sub.dtype}"
    with impl.tape() as tape:  # the tape reads the updated value
        y = impl.reduce_sum(impl.multiply(variable, variable))
    assert_close(to_numpy(impl, tape.gradient(y, variable)), 2 * after_sub.astype(np.float64), dtype, "d Σx²/dx after the updates")
