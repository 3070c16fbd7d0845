"""A tour of dualad: every GradientTape example of the tutorials listed in
conformance/identities.md (TensorFlow's automatic differentiation tutorial, Dive into Deep
Learning §2.3, eat_tensorflow2_in_30_days 2-3), run with
dualad, each result printed next to the value the tutorial shows. Exits 1 on any mismatch.

    python examples/tour.py
"""
import io
import sys
import time
import warnings

import numpy as np

import dualad as tf  # the tutorials' code runs with this one change

failures: list[str] = []


def show(label, got, expected, exact=True):
    """One line per result: `ok  <label> | dualad <value> | tutorial <value>` (BAD if they
    differ); the value as dualad.print shows it, on one line."""
    got_v = np.asarray(got)
    ok = np.array_equal(got_v, expected) if exact else np.allclose(got_v, expected, rtol=1e-6)
    buf = io.StringIO()
    tf.print(got if isinstance(got, tf.Tensor) else tf.constant(got_v), output_stream=buf)
    shown = " ".join(buf.getvalue().split())
    print(f"{'ok ' if ok else 'BAD'} {label} | dualad {shown} | tutorial {expected}")
    if not ok:
        failures.append(label)


def section(title):
    print(f"\n{title}")


section("Gradient of z = (sum x)^2 for x = ones((2, 2))")
x = tf.ones((2, 2))
with tf.GradientTape() as t:
    t.watch(x)
    y = tf.reduce_sum(x)
    z = tf.multiply(y, y)
show("y", y, 4.0)
show("z", z, 16.0)
show("dz/dx", t.gradient(z, x), [[8.0, 8.0], [8.0, 8.0]])

section("Gradient with respect to an intermediate value")
x = tf.ones((2, 2))
with tf.GradientTape() as t:
    t.watch(x)
    y = tf.reduce_sum(x)
    z = tf.multiply(y, y)
show("dz/dy", t.gradient(z, y), 8.0)

section("A persistent tape gives several gradients")
x = tf.constant(3.0)
with tf.GradientTape(persistent=True) as t:
    t.watch(x)
    y = x * x
    z = y * y
show("dz/dx = 4x^3 at 3", t.gradient(z, x), 108.0)
show("dy/dx = 2x at 3", t.gradient(y, x), 6.0)
del t

section("Python control flow: multiply by x for 1 < i < 5, i in range(y)")


def f(x, y):
    output = 1.0
    for i in range(y):
        if i > 1 and i < 5:
            output = tf.multiply(output, x)
    return output


def grad(x, y):
    with tf.GradientTape() as t:
        t.watch(x)
        out = f(x, y)
    return t.gradient(out, x)


x = tf.convert_to_tensor(2.0)
for steps, expected in ((6, 12.0), (7, 12.0), (5, 12.0), (4, 4.0)):
    show(f"grad(x=2, y={steps})", grad(x, steps), expected)
for steps, expected in ((6, 8.0), (5, 8.0), (4, 4.0)):
    show(f"f(x=2, y={steps})", f(x, steps), expected)

section("Higher-order gradients with nested tapes: y = x^3 at x = 1")
x = tf.Variable(1.0)
with tf.GradientTape() as t:
    with tf.GradientTape() as t2:
        y = x * x * x
    dy_dx = t2.gradient(y, x)
d2y_dx2 = t.gradient(dy_dx, x)
show("dy/dx = 3x^2 at 1", dy_dx, 3.0)
show("d2y/dx2 = 6x at 1", d2y_dx2, 6.0)

section("y = 2 x^T x for x = [0, 1, 2, 3]^T: gradient 4x")
x = tf.reshape(tf.Variable(range(4), dtype=tf.float32), (4, 1))
with tf.GradientTape() as t:
    t.watch(x)
    y = 2 * tf.matmul(tf.transpose(x), x)
show("dy/dx = 4x", t.gradient(y, x), [[0.0], [4.0], [8.0], [12.0]])

section("gradient() inside a persistent tape's context (warns, as TensorFlow does)")
with warnings.catch_warnings():
    warnings.simplefilter("ignore", tf.GradientInContextWarning)
    with tf.GradientTape(persistent=True) as g:
        g.watch(x)
        y = x * x
        z = y * y
        dz_dx = g.gradient(z, x)
        dy_dx = g.gradient(y, x)
show("dz/dx = 4x^3 (in context)", dz_dx, [[0.0], [4.0], [32.0], [108.0]])
show("dy/dx = 2x (in context)", dy_dx, [[0.0], [2.0], [4.0], [6.0]])

section("while/if on tensor values: f(a) = k a, so df/da = c / a")


def f(a):  # type: ignore[no-redef]  # the tutorials' second f
    b = a * 2
    while tf.norm(b) < 1000:
        b = b * 2
    if tf.reduce_sum(b) > 0:
        c = b
    else:
        c = 100 * b
    return c


a = tf.random.normal((1, 1), dtype=tf.float32, seed=0)
with tf.GradientTape() as t:
    t.watch(a)
    c = f(a)  # type: ignore[call-arg]  # mypy keeps the first f's signature
show("gradient == c / a", t.gradient(c, a) == c / a, [[True]])

section("f(x) = a x^2 + b x + c with a = 1, b = -2, c = 1 at x = 0")
x = tf.Variable(0.0, name="x", dtype=tf.float32)
a = tf.constant(1.0)
b = tf.constant(-2.0)
c = tf.constant(1.0)
with tf.GradientTape() as tape:
    y = a * tf.pow(x, 2) + b * x + c
show("dy/dx = 2ax + b at 0", tape.gradient(y, x), -2.0)
with tf.GradientTape() as tape:
    tape.watch([a, b, c])
    y = a * tf.pow(x, 2) + b * x + c
dy_dx, dy_da, dy_db, dy_dc = tape.gradient(y, [x, a, b, c])
show("dy/da", dy_da, 0.0)
show("dy/db", dy_db, 0.0)
show("dy/dc", dy_dc, 1.0)
with tf.GradientTape() as tape2:
    with tf.GradientTape() as tape1:
        y = a * tf.pow(x, 2) + b * x + c
    dy_dx = tape1.gradient(y, x)
show("d2y/dx2 = 2a", tape2.gradient(dy_dx, x), 2.0)


def derivative_and_value(x):
    a, b, c = tf.constant(1.0), tf.constant(-2.0), tf.constant(1.0)
    x = tf.cast(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = a * tf.pow(x, 2) + b * x + c
    return tape.gradient(y, x), y


for x0, expected in ((0.0, (-2.0, 1.0)), (1.0, (0.0, 0.0))):
    dy, y = derivative_and_value(tf.constant(x0))
    show(f"(dy/dx, y) at x = {x0:g}", [dy, y], list(expected))

section("Minimising a x^2 + b x + c: 1000 float32 steps x <- x - 0.01 g, then 10 at 0.1")
x = tf.Variable(0.0, name="x", dtype=tf.float32)
learning_rate = np.float32(0.01)
start = time.perf_counter()
for _ in range(1000):
    with tf.GradientTape() as tape:
        y = a * tf.pow(x, 2) + b * x + c
    x.assign_sub(learning_rate * tape.gradient(y, x))
elapsed = time.perf_counter() - start
tf.print("  y =", y, "; x =", x)
show("x after 1000 steps (float32, exact)", x, np.float32(0.999998569))
show("y after 1000 steps", y, 0.0)
learning_rate = np.float32(0.1)
for _ in range(10):
    with tf.GradientTape() as tape:
        y = a * tf.pow(x, 2) + b * x + c
    x.assign_sub(learning_rate * tape.gradient(y, x))
show("x after 10 more steps at lr 0.1", x, 1.0, exact=False)
print(f"  (1000 eager steps took {elapsed * 1e3:.1f} ms)")

print()
if failures:
    print(f"{len(failures)} result(s) differ from the tutorials: {', '.join(failures)}")
    sys.exit(1)
print("every result matches the tutorials")
