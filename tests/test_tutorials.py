"""The tutorials' GradientTape examples run with `import dualad as tf`, one test per example,
with the numbers the tutorials print (float32 throughout, as there)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dualad as tf
from dualad import GradientInContextWarning


# ---- automatic differentiation tutorial (TensorFlow docs; also its translation) ------------

def test_gradient_of_sum_squared_is_8_everywhere():
    x = tf.ones((2, 2))
    with tf.GradientTape() as t:
        t.watch(x)
        y = tf.reduce_sum(x)
        z = tf.multiply(y, y)
    assert y.numpy() == 4.0 and z.numpy() == 16.0
    dz_dx = t.gradient(z, x)
    assert dz_dx.shape == (2, 2) and dz_dx.dtype == tf.float32
    for i in [0, 1]:
        for j in [0, 1]:
            assert dz_dx[i][j].numpy() == 8.0


def test_gradient_with_respect_to_intermediate_value_is_8():
    x = tf.ones((2, 2))
    with tf.GradientTape() as t:
        t.watch(x)
        y = tf.reduce_sum(x)
        z = tf.multiply(y, y)
    dz_dy = t.gradient(z, y)
    assert dz_dy.numpy() == 8.0


def test_persistent_tape_108_and_6():
    x = tf.constant(3.0)
    with tf.GradientTape(persistent=True) as t:
        t.watch(x)
        y = x * x
        z = y * y
    dz_dx = t.gradient(z, x)  # 4 x^3
    dy_dx = t.gradient(y, x)  # 2 x
    assert dz_dx.numpy() == 108.0
    assert dy_dx.numpy() == 6.0
    del t


def _f(x, y):
    output = 1.0
    for i in range(y):
        if i > 1 and i < 5:
            output = tf.multiply(output, x)
    return output


def _grad(x, y):
    with tf.GradientTape() as t:
        t.watch(x)
        out = _f(x, y)
    return t.gradient(out, x)


def test_control_flow_grads_12_12_12_4_and_values_8_8_4():
    x = tf.convert_to_tensor(2.0)
    assert _grad(x, 6).numpy() == 12.0
    assert _grad(x, 7).numpy() == 12.0
    assert _grad(x, 5).numpy() == 12.0
    assert _grad(x, 4).numpy() == 4.0
    assert _f(x, 6).numpy() == 8.0
    assert _f(x, 5).numpy() == 8.0
    assert _f(x, 4).numpy() == 4.0


def test_control_flow_with_no_multiplication_is_unconnected():
    # y <= 2: the loop never multiplies, the output is the Python float 1.0
    x = tf.convert_to_tensor(2.0)
    assert _f(x, 2) == 1.0
    with tf.GradientTape() as t:
        t.watch(x)
        out = tf.convert_to_tensor(_f(x, 2))
    assert t.gradient(out, x) is None


def test_higher_order_x_cubed_at_1_gives_3_and_6():
    x = tf.Variable(1.0)
    with tf.GradientTape() as t:
        with tf.GradientTape() as t2:
            y = x * x * x
        dy_dx = t2.gradient(y, x)
    d2y_dx2 = t.gradient(dy_dx, x)
    assert dy_dx.numpy() == 3.0
    assert d2y_dx2.numpy() == 6.0


# ---- d2l (TensorFlow 2 edition) -----------------------------------------------------------

def _column():
    return tf.reshape(tf.Variable(range(4), dtype=tf.float32), (4, 1))


def test_gradient_of_2_xT_x_is_4x():
    x = _column()
    assert x.shape == (4, 1) and x.dtype == tf.float32
    with tf.GradientTape() as t:
        t.watch(x)
        y = 2 * tf.matmul(tf.transpose(x), x)
    dy_dx = t.gradient(y, x)
    assert dy_dx.shape == (4, 1)
    np.testing.assert_array_equal(dy_dx.numpy(), [[0.0], [4.0], [8.0], [12.0]])


def test_persistent_gradients_inside_the_context_warn_and_give_4x3_and_2x():
    x = _column()
    with tf.GradientTape(persistent=True) as g:
        g.watch(x)
        y = x * x
        z = y * y
        with pytest.warns(GradientInContextWarning, match="inside the context of its own persistent tape"):
            dz_dx = g.gradient(z, x)
        with pytest.warns(GradientInContextWarning, match="inside the context of its own persistent tape"):
            dy_dx = g.gradient(y, x)
    np.testing.assert_array_equal(dz_dx.numpy(), [[0.0], [4.0], [32.0], [108.0]])
    np.testing.assert_array_equal(dy_dx.numpy(), [[0.0], [2.0], [4.0], [6.0]])


def _d2l_f(a):
    b = a * 2
    while tf.norm(b) < 1000:
        b = b * 2
    if tf.reduce_sum(b) > 0:
        c = b
    else:
        c = 100 * b
    return c


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_while_and_if_on_tensor_values_gradient_is_c_over_a(seed):
    a = tf.random.normal((1, 1), dtype=tf.float32, seed=seed)
    with tf.GradientTape() as t:
        t.watch(a)
        c = _d2l_f(a)
    grad = t.gradient(c, a)
    assert grad.shape == (1, 1) and grad.dtype == tf.float32
    # f(a) = k * a with k = 2**n (or 100 * 2**n): the gradient is exactly k
    a0 = float(a.numpy()[0, 0])
    n = 1
    while abs(a0) * 2 ** n < 1000:
        n += 1
    k = 2.0 ** n if a0 > 0 else 100 * 2.0 ** n
    assert grad.numpy()[0, 0] == np.float32(k)
    if a0 > 0:
        # c = a * 2**n involves no rounding, so the tutorial's identity holds exactly
        assert bool(grad == c / a)
    else:
        # c = 100 * b is rounded to float32; c / a is k up to that rounding (TensorFlow too)
        assert abs(float((c / a).numpy()[0, 0]) - k) <= 2 * k * 2.0 ** -24


# ---- eat_tensorflow2_in_30_days: a*x**2 + b*x + c -----------------------------------------

def _abc():
    return tf.constant(1.0), tf.constant(-2.0), tf.constant(1.0)


def test_derivative_at_0_is_minus_2():
    x = tf.Variable(0.0, name="x", dtype=tf.float32)
    a, b, c = _abc()
    with tf.GradientTape() as tape:
        y = a * tf.pow(x, 2) + b * x + c
    dy_dx = tape.gradient(y, x)
    assert dy_dx.numpy() == -2.0 and dy_dx.dtype == tf.float32


def test_derivatives_with_respect_to_watched_constants_0_0_1():
    x = tf.Variable(0.0, name="x", dtype=tf.float32)
    a, b, c = _abc()
    with tf.GradientTape() as tape:
        tape.watch([a, b, c])
        y = a * tf.pow(x, 2) + b * x + c
    dy_dx, dy_da, dy_db, dy_dc = tape.gradient(y, [x, a, b, c])
    assert dy_dx.numpy() == -2.0
    assert dy_da.numpy() == 0.0
    assert dy_db.numpy() == 0.0
    assert dy_dc.numpy() == 1.0


def test_second_derivative_is_2():
    x = tf.Variable(0.0, name="x", dtype=tf.float32)
    a, b, c = _abc()
    with tf.GradientTape() as tape2:
        with tf.GradientTape() as tape1:
            y = a * tf.pow(x, 2) + b * x + c
        dy_dx = tape1.gradient(y, x)
    dy2_dx2 = tape2.gradient(dy_dx, x)
    assert dy2_dx2.numpy() == 2.0


def _value_and_derivative(x):
    a, b, c = _abc()
    x = tf.cast(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = a * tf.pow(x, 2) + b * x + c
    dy_dx = tape.gradient(y, x)
    return (dy_dx, y)


def test_function_with_cast_prints_minus2_1_and_0_0(capsys):
    tf.print(_value_and_derivative(tf.constant(0.0)))
    tf.print(_value_and_derivative(tf.constant(1.0)))
    assert capsys.readouterr().out == "(-2, 1)\n(0, 0)\n"
    # an integer input is cast first
    dy_dx, y = _value_and_derivative(tf.constant(1))
    assert dy_dx.numpy() == 0.0 and y.numpy() == 0.0


def _minimize(steps):
    x = tf.Variable(0.0, name="x", dtype=tf.float32)
    a, b, c = _abc()
    for _ in range(steps):
        with tf.GradientTape() as tape:
            y = a * tf.pow(x, 2) + b * x + c
        dy_dx = tape.gradient(y, x)
        x.assign_sub(0.01 * dy_dx)
    return x, y


def test_1000_sgd_steps_reach_exactly_0_999998569(capsys):
    x, y = _minimize(1000)
    assert x.numpy() == np.float32(0.999998569)
    assert x.dtype == tf.float32
    tf.print("y =", y, "; x =", x)
    assert capsys.readouterr().out == "y = 0 ; x = 0.999998569\n"


def test_sgd_stalls_at_0_999998569_in_float32(capsys):
    # the tutorial's 10000-step run prints the same x: the float32 update has stalled
    x, y = _minimize(10000)
    tf.print(y)
    tf.print(x)
    assert capsys.readouterr().out == "0\n0.999998569\n"
