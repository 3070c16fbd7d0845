"""Broadcasting: values follow numpy's rules, and the gradient of each input is reduced back to
that input's shape (summed over the axes broadcasting added or stretched). Random broadcastable
shape pairs (and triples for where) come from Hypothesis; values are checked against central
finite differences in float64."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dualad as dd
from helpers import (EXACT, FD, SETTINGS, arrays, fd_grad, floats, npy, reverse_grads, t32,
                     t64, value, weighted)

FAR_FROM_ZERO = st.builds(lambda m, s: m * s, floats(0.5, 2), st.sampled_from([-1.0, 1.0]))

OPS = {
    "add": (dd.add, np.add, None),
    "subtract": (dd.subtract, np.subtract, None),
    "multiply": (dd.multiply, np.multiply, None),
    "divide": (dd.divide, np.divide, FAR_FROM_ZERO),
    "maximum": (dd.maximum, np.maximum, None),
    "minimum": (dd.minimum, np.minimum, None),
}

PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1,
                                          max_side=3)


@pytest.mark.parametrize("name", sorted(OPS))
@SETTINGS
@given(data=st.data(), shapes=PAIRS)
def test_binary_broadcast_gradients_have_input_shapes_and_match_fd(name, data, shapes):
    fn, ref, b_elements = OPS[name]
    sa, sb = shapes.input_shapes
    a = data.draw(arrays(sa), label="a")
    b = data.draw(arrays(sb, b_elements), label="b")
    if name in ("maximum", "minimum"):
        assume(np.all(np.abs(np.subtract(a, b)) > 1e-3))
    y = value(fn, [a, b])
    assert y.shape == shapes.result_shape
    np.testing.assert_allclose(y, ref(a, b), **EXACT)
    u = data.draw(arrays(y.shape), label="u")
    ga, gb = reverse_grads(fn, [a, b], u)
    assert ga.shape == sa and gb.shape == sb
    ea, eb = fd_grad(weighted(fn, u), [a, b])
    np.testing.assert_allclose(npy(ga), ea, **FD)
    np.testing.assert_allclose(npy(gb), eb, **FD)


@SETTINGS
@given(data=st.data(),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3))
def test_where_broadcast_gradients_have_input_shapes_and_match_fd(data, shapes):
    sc, sx, sy = shapes.input_shapes
    cond = data.draw(hnp.arrays(np.bool_, sc), label="cond")
    x, y = data.draw(arrays(sx), label="x"), data.draw(arrays(sy), label="y")

    def fn(x, y):
        return dd.where(dd.constant(cond), x, y)

    out = value(fn, [x, y])
    assert out.shape == shapes.result_shape
    np.testing.assert_array_equal(out, np.where(cond, x, y))
    u = data.draw(arrays(out.shape), label="u")
    gx, gy = reverse_grads(fn, [x, y], u)
    assert gx.shape == sx and gy.shape == sy
    ex, ey = fd_grad(weighted(fn, u), [x, y])
    np.testing.assert_allclose(npy(gx), ex, **FD)
    np.testing.assert_allclose(npy(gy), ey, **FD)
    # closed form: the cotangent where cond holds, summed back to x's shape
    full_cond = np.broadcast_to(cond, out.shape)
    np.testing.assert_allclose(npy(gx), _sum_to(np.where(full_cond, u, 0.0), sx), **EXACT)
    np.testing.assert_allclose(npy(gy), _sum_to(np.where(full_cond, 0.0, u), sy), **EXACT)


def _sum_to(g, shape):
    """numpy reference of gradient reduction: sum g down to `shape`."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


@SETTINGS
@given(data=st.data(), shapes=PAIRS)
def test_add_gradient_is_cotangent_summed_to_each_shape(data, shapes):
    sa, sb = shapes.input_shapes
    a, b = data.draw(arrays(sa), label="a"), data.draw(arrays(sb), label="b")
    u = data.draw(arrays(shapes.result_shape), label="u")
    ga, gb = reverse_grads(dd.add, [a, b], u)
    np.testing.assert_allclose(npy(ga), _sum_to(u, sa), **EXACT)
    np.testing.assert_allclose(npy(gb), _sum_to(u, sb), **EXACT)


@SETTINGS
@given(data=st.data(), shapes=PAIRS)
def test_broadcast_gradients_in_float32_keep_dtype_and_shape(data, shapes):
    sa, sb = shapes.input_shapes
    a = t32(data.draw(arrays(sa), label="a"))
    b = t32(data.draw(arrays(sb), label="b"))
    with dd.GradientTape() as tape:
        tape.watch([a, b])
        y = dd.reduce_sum(a * b + a)
    ga, gb = tape.gradient(y, [a, b])
    assert ga.shape == sa and gb.shape == sb
    assert ga.dtype == dd.float32 and gb.dtype == dd.float32
    np.testing.assert_allclose(np.asarray(ga), _sum_to(np.broadcast_to(np.asarray(b) + 1,
                                                                       shapes.result_shape), sa),
                               rtol=1e-5, atol=1e-5)


@SETTINGS
@given(data=st.data(), shapes=PAIRS)
def test_broadcast_jvp_has_output_shape(data, shapes):
    sa, sb = shapes.input_shapes
    a, b = data.draw(arrays(sa), label="a"), data.draw(arrays(sb), label="b")
    va = data.draw(arrays(sa), label="va")
    ta, tb = t64(a), t64(b)
    with dd.ForwardAccumulator(ta, t64(va)) as acc:
        y = ta * tb
    tangent = acc.jvp(y)
    assert tangent.shape == shapes.result_shape
    np.testing.assert_allclose(npy(tangent), va * b, **EXACT)


def _incompatible(sa, sb):
    try:
        np.broadcast_shapes(sa, sb)
    except ValueError:
        return True
    return False


@pytest.mark.parametrize("name", sorted(OPS))
@SETTINGS
@given(sa=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
       sb=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_incompatible_shapes_raise_value_error_naming_both(name, sa, sb):
    assume(_incompatible(sa, sb))
    with pytest.raises(ValueError, match="could not be broadcast") as info:
        OPS[name][0](dd.ones(sa, dd.float64), dd.ones(sb, dd.float64))
    assert str(sa) in str(info.value) and str(sb) in str(info.value)
