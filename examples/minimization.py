"""The "30 days of TensorFlow 2" chapter on automatic differentiation (2-3), run with dualad:
derivatives of f(x) = a x^2 + b x + c, then its minimum found with an optimizer's
apply_gradients, with minimize, and with the loop compiled by dualad.function (the chapter's
tf.function, with `for _ in tf.range(n)` written `for _ in dualad.range(n)`).

Each result is printed next to the value the chapter shows, one line per result:

    ok  <label> | dualad <value as dualad.print shows it> | tutorial <the chapter's value>

Lines starting with two spaces are information (timings, the per-step trace the chapter prints
without showing its output). The script exits 1 if any result differs.

    python examples/minimization.py
"""
import io
import sys
import time
import warnings

import numpy as np

import dualad as tf  # the chapter's code runs with this one change

failures: list[str] = []


def fmt(*values):
    """Values as dualad.print (tf.print) shows them, on one line."""
    buf = io.StringIO()
    tf.print(*values, output_stream=buf)
    return " ".join(buf.getvalue().split())


def show(label, got, expected):
    """A value against the chapter's (numbers compared exactly, in the value's dtype)."""
    ok = np.array_equal(np.asarray(got), np.asarray(expected, dtype=np.asarray(got).dtype))
    report(label, ok, fmt(got), expected)


def show_printed(label, printed, expected):
    """A line printed by dualad.print against the line the chapter's tf.print shows."""
    report(label, printed == expected, printed, expected)


def report(label, ok, got_text, expected):
    print(f"{'ok ' if ok else 'BAD'} {label} | dualad {got_text} | tutorial {expected}")
    if not ok:
        failures.append(label)


def info(text):
    print(f"  {text}")


def section(title):
    print(f"\n{title}")


# ---- 1. derivatives with a tape ------------------------------------------------------------
section("1. f(x) = a x^2 + b x + c with a = 1, b = -2, c = 1: derivatives at x = 0")
x = tf.Variable(0.0, name="x", dtype=tf.float32)
a = tf.constant(1.0)
b = tf.constant(-2.0)
c = tf.constant(1.0)

with tf.GradientTape() as tape:
    y = a * tf.pow(x, 2) + b * x + c
dy_dx = tape.gradient(y, x)
show("dy/dx", dy_dx, -2.0)

# constants are differentiated too once watched
with tf.GradientTape() as tape:
    tape.watch([a, b, c])
    y = a * tf.pow(x, 2) + b * x + c
dy_dx, dy_da, dy_db, dy_dc = tape.gradient(y, [x, a, b, c])
show("dy/da", dy_da, 0.0)
show("dy/db", dy_db, 0.0)
show("dy/dc", dy_dc, 1.0)

# second derivative with nested tapes
with tf.GradientTape() as tape2:
    with tf.GradientTape() as tape1:
        y = a * tf.pow(x, 2) + b * x + c
    dy_dx = tape1.gradient(y, x)
dy2_dx2 = tape2.gradient(dy_dx, x)
show("d2y/dx2", dy2_dx2, 2.0)


# the same derivative inside a compiled function (the chapter's autograph example)
@tf.function
def f(x):
    a = tf.constant(1.0)
    b = tf.constant(-2.0)
    c = tf.constant(1.0)
    x = tf.cast(x, tf.float32)  # the argument converted to float32
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = a * tf.pow(x, 2) + b * x + c
    dy_dx = tape.gradient(y, x)
    return (dy_dx, y)


show_printed("tf.print(f(0.0)) (compiled)", fmt(f(tf.constant(0.0))), "(-2, 1)")
show_printed("tf.print(f(1.0)) (compiled)", fmt(f(tf.constant(1.0))), "(0, 0)")
info(f"f was traced {f.trace_count} time(s); the call at 1.0 replayed the program")

# ---- 2. minimum with apply_gradients ------------------------------------------------------
section("2. minimum of f with SGD(learning_rate=0.01).apply_gradients, 1000 steps")
time1 = time.perf_counter()
x = tf.Variable(0.0, name="x", dtype=tf.float32)
a = tf.constant(1.0)
b = tf.constant(-2.0)
c = tf.constant(1.0)
optimizer = tf.optimizers.SGD(learning_rate=0.01)
for _ in range(1000):
    with tf.GradientTape() as tape:
        y = a * tf.pow(x, 2) + b * x + c
    dy_dx = tape.gradient(y, x)
    optimizer.apply_gradients(grads_and_vars=[(dy_dx, x)])  # x <- x - 0.01 * dy_dx
show_printed("apply_gradients x1000", fmt("y =", y, "; x =", x), "y = 0 ; x = 0.999998569")
info(f"1000 eager steps: {(time.perf_counter() - time1) * 1e3:.1f} ms")

# x has stalled short of 1 in float32; a larger rate moves it on
x_stalled = x.numpy()
optimizer.learning_rate = 0.1
for _ in range(10):
    with tf.GradientTape() as tape:
        y = a * tf.pow(x, 2) + b * x + c
    dy_dx = tape.gradient(y, x)
    info(fmt("y =", y, "; x =", x, "; dy_dx =", dy_dx))
    optimizer.apply_gradients(grads_and_vars=[(dy_dx, x)])
info(fmt("y =", y, "; x =", x))
show("10 steps at 0.1 bring x closer to 1", bool(abs(1 - x.numpy()) < abs(1 - x_stalled)), True)

# ---- 3. minimum with minimize --------------------------------------------------------------
section("3. minimum of f with SGD(learning_rate=0.01).minimize(f, [x]), 1000 steps")
x = tf.Variable(0.0, name="x", dtype=tf.float32)


def f():  # type: ignore[no-redef]  # no argument: minimize calls it under its own tape
    a = tf.constant(1.0)
    b = tf.constant(-2.0)
    c = tf.constant(1.0)
    y = a * tf.pow(x, 2) + b * x + c
    return y


optimizer = tf.optimizers.SGD(learning_rate=0.01)
for _ in range(1000):
    optimizer.minimize(f, [x])
show_printed("minimize x1000", fmt("y =", f(), "; x =", x), "y = 0 ; x = 0.999998569")

# ---- 4. the loop compiled, apply_gradients -------------------------------------------------
section("4. the 10000-step loop inside dualad.function, with apply_gradients")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", tf.FunctionFallbackWarning)
    time1 = time.perf_counter()
    x = tf.Variable(0.0, name="x", dtype=tf.float32)
    optimizer = tf.optimizers.SGD(learning_rate=0.01)

    @tf.function
    def minimizef():
        a = tf.constant(1.0)
        b = tf.constant(-2.0)
        c = tf.constant(1.0)
        for _ in tf.range(10000):  # dualad.range, as tf.range in the chapter
            with tf.GradientTape() as tape:
                y = a * tf.pow(x, 2) + b * x + c
            dy_dx = tape.gradient(y, x)
            optimizer.apply_gradients(grads_and_vars=[(dy_dx, x)])
        y = a * tf.pow(x, 2) + b * x + c
        return y

    printed_y = fmt(minimizef())
    printed_x = fmt(x)
    elapsed = time.perf_counter() - time1
compiled_x = x.numpy()
show_printed("compiled apply_gradients x10000: tf.print(minimizef())", printed_y, "0")
show_printed("compiled apply_gradients x10000: tf.print(x)", printed_x, "0.999998569")
info(f"first call (tracing included): {elapsed * 1e3:.1f} ms")
for w in caught:
    info(f"{w.category.__name__}: {w.message}")

# the same 10000 steps eagerly: the compiled x must be the same float32, to the last bit
x = tf.Variable(0.0, name="x", dtype=tf.float32)
optimizer = tf.optimizers.SGD(learning_rate=0.01)
a, b, c = tf.constant(1.0), tf.constant(-2.0), tf.constant(1.0)
for _ in range(10000):
    with tf.GradientTape() as tape:
        y = a * tf.pow(x, 2) + b * x + c
    optimizer.apply_gradients(grads_and_vars=[(tape.gradient(y, x), x)])
show("compiled x == eager x (same bits)",
     compiled_x.tobytes() == x.numpy().tobytes(), True)

# The chapter's manual update x <- x - 0.01 dy/dx compiles into one loop of the program
x = tf.Variable(0.0, name="x", dtype=tf.float32)


@tf.function
def minimize_by_hand(steps):
    a = tf.constant(1.0)
    b = tf.constant(-2.0)
    c = tf.constant(1.0)
    for _ in tf.range(steps):
        with tf.GradientTape() as tape:
            y = a * tf.pow(x, 2) + b * x + c
        x.assign_sub(0.01 * tape.gradient(y, x))
    return a * tf.pow(x, 2) + b * x + c


time1 = time.perf_counter()
printed = fmt("y =", minimize_by_hand(10000), "; x =", x)
traced_ms = (time.perf_counter() - time1) * 1e3
show_printed("compiled assign_sub x10000, first call", printed, "y = 0 ; x = 0.999998569")
x.assign(0.0)
time1 = time.perf_counter()
printed = fmt("y =", minimize_by_hand(10000), "; x =", x)
replay_ms = (time.perf_counter() - time1) * 1e3
show_printed("compiled assign_sub x10000, replayed", printed, "y = 0 ; x = 0.999998569")
info(f"trace: {traced_ms:.1f} ms, replay: {replay_ms:.1f} ms, "
     f"trace_count {minimize_by_hand.trace_count}")

# ---- 5. the loop compiled, minimize --------------------------------------------------------
section("5. minimize inside dualad.function: train(1000) with a compiled loss f")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", tf.FunctionFallbackWarning)
    time1 = time.perf_counter()
    x = tf.Variable(0.0, name="x", dtype=tf.float32)
    optimizer = tf.optimizers.SGD(learning_rate=0.01)

    @tf.function
    def f():
        a = tf.constant(1.0)
        b = tf.constant(-2.0)
        c = tf.constant(1.0)
        y = a * tf.pow(x, 2) + b * x + c
        return y

    @tf.function
    def train(epoch):
        for _ in tf.range(epoch):
            optimizer.minimize(f, [x])
        return f()

    printed_y = fmt(train(1000))
    printed_x = fmt(x)
    elapsed = time.perf_counter() - time1
show_printed("compiled minimize x1000: tf.print(train(1000))", printed_y, "0")
show_printed("compiled minimize x1000: tf.print(x)", printed_x, "0.999998569")
info(f"first call (tracing included): {elapsed * 1e3:.1f} ms")
for w in caught:
    info(f"{w.category.__name__}: {w.message}")

print()
if failures:
    print(f"{len(failures)} result(s) differ from the chapter: {', '.join(failures)}")
    sys.exit(1)
print("every result matches the chapter")
