"""W7: one training step of a 784-256-10 tanh MLP with softmax cross-entropy, batch 128,
float32: forward, gradient of the mean cross-entropy in the four parameters, SGD update
(learning rate 0.1).

Floor: the hand-written numpy step (forward, hand-derived backward, in-place update), the
reference of the target below. Before timing, every implementation takes one step from the same initial
parameters and its loss and updated parameters are compared with the floor's."""
import numpy as np
import pytest

import dualad as dd
from bench.common import Suite, assert_close, need_autograd, need_jax, need_tf, need_torch
from bench.report.targets import RatioAtMost

BATCH, IN, HIDDEN, OUT, LR = 128, 784, 256, 10, 0.1
F32 = dict(rtol=2e-4, atol=2e-6)


def problem():
    rng = np.random.default_rng(7)
    f32 = np.float32
    x = rng.normal(size=(BATCH, IN)).astype(f32)
    labels = rng.integers(0, OUT, size=BATCH)
    onehot = np.eye(OUT, dtype=f32)[labels]
    params = [(rng.normal(size=(IN, HIDDEN)) / np.sqrt(IN)).astype(f32),
              np.zeros(HIDDEN, f32),
              (rng.normal(size=(HIDDEN, OUT)) / np.sqrt(HIDDEN)).astype(f32),
              np.zeros(OUT, f32)]
    return x, onehot, params


W7 = Suite("W7", "W7: training step of a 784-256-10 tanh MLP, batch 128 (float32)",
           floor="floor-numpy-step", judged="dualad-step", problem=problem)
TARGETS = [RatioAtMost(W7, 1.15, "≤ {limit}× the hand-written numpy step")]


def numpy_step_fn(x, onehot, params):
    w1, b1, w2, b2 = params = [p.copy() for p in params]
    lr = np.float32(LR)

    def step():
        h = np.tanh(x @ w1 + b1)
        z = h @ w2 + b2
        zmax = z.max(axis=1, keepdims=True)
        e = np.exp(z - zmax)
        s = e.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(s[:, 0]) + zmax[:, 0] - np.sum(onehot * z, axis=1))
        dz = (e / s - onehot) / np.float32(BATCH)
        dh = (dz @ w2.T) * (1 - h * h)
        np.subtract(w2, lr * (h.T @ dz), out=w2)      # in place, as the optimizers update
        np.subtract(b2, lr * dz.sum(axis=0), out=b2)
        np.subtract(w1, lr * (x.T @ dh), out=w1)
        np.subtract(b1, lr * dh.sum(axis=0), out=b1)
        return loss, params
    return step


@W7.add("floor-numpy-step", "floor")
def _(p):
    return numpy_step_fn(*p)


@W7.add("floor-numpy-forward", "floor")
def _(p):
    x, onehot, (w1, b1, w2, b2) = p

    def run():
        z = np.tanh(x @ w1 + b1) @ w2 + b2
        zmax = z.max(axis=1, keepdims=True)
        s = np.exp(z - zmax).sum(axis=1)
        return np.mean(np.log(s) + zmax[:, 0] - np.sum(onehot * z, axis=1)), p[2]  # unchanged
    return run


@W7.add("dualad-step", "dualad")
def _(p):
    x, onehot = dd.constant(p[0]), dd.constant(p[1])
    params = [dd.Variable(v) for v in p[2]]
    opt = dd.optimizers.SGD(learning_rate=LR)

    def step():
        w1, b1, w2, b2 = params
        with dd.GradientTape() as tape:
            h = dd.tanh(dd.matmul(x, w1) + b1)
            logits = dd.matmul(h, w2) + b2
            loss = -dd.reduce_mean(dd.reduce_sum(onehot * dd.nn.log_softmax(logits), axis=1))
        grads = tape.gradient(loss, params)
        opt.apply_gradients(zip(grads, params))
        return loss, params
    return step


@W7.add("tensorflow", "peer")
def _(p):
    tf = need_tf()
    x, onehot = tf.constant(p[0]), tf.constant(p[1])
    params = [tf.Variable(v) for v in p[2]]
    opt = tf.keras.optimizers.SGD(learning_rate=LR)

    def step():
        w1, b1, w2, b2 = params
        with tf.GradientTape() as tape:
            h = tf.tanh(tf.matmul(x, w1) + b1)
            logits = tf.matmul(h, w2) + b2
            loss = -tf.reduce_mean(tf.reduce_sum(onehot * tf.nn.log_softmax(logits), axis=1))
        grads = tape.gradient(loss, params)
        opt.apply_gradients(zip(grads, params))
        return loss, params
    return step


@W7.add("torch", "peer")
def _(p):
    torch = need_torch()
    x, onehot = torch.tensor(p[0]), torch.tensor(p[1])
    params = [torch.tensor(v, requires_grad=True) for v in p[2]]
    opt = torch.optim.SGD(params, lr=LR)

    def step():
        w1, b1, w2, b2 = params
        opt.zero_grad()
        h = torch.tanh(x @ w1 + b1)
        logits = h @ w2 + b2
        loss = -(onehot * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
        loss.backward()
        opt.step()
        return loss, params
    return step


def jax_step(jax, jnp, x, onehot):
    def loss_fn(params):
        w1, b1, w2, b2 = params
        h = jnp.tanh(x @ w1 + b1)
        logits = h @ w2 + b2
        return -jnp.mean(jnp.sum(onehot * jax.nn.log_softmax(logits, axis=1), axis=1))

    def step(params):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        return loss, [w - LR * g for w, g in zip(params, grads)]
    return step


def jax_runner(jit):
    def build(p):
        jax, jnp = need_jax()
        x, onehot = jnp.asarray(p[0]), jnp.asarray(p[1])
        step = jax_step(jax, jnp, x, onehot)
        step = jax.jit(step) if jit else step
        state = {"params": [jnp.asarray(v) for v in p[2]]}

        def run():
            loss, state["params"] = step(state["params"])
            if jit:
                jax.block_until_ready(state["params"])
            return loss, state["params"]
        return run
    return build


W7.add("jax-eager", "peer")(jax_runner(jit=False))
W7.add("jax-jit", "peer-jit")(jax_runner(jit=True))


@W7.add("autograd", "peer")
def _(p):
    autograd, anp = need_autograd()
    x, onehot = p[0], p[1]

    def loss_fn(params):
        w1, b1, w2, b2 = params
        logits = anp.dot(anp.tanh(anp.dot(x, w1) + b1), w2) + b2
        # log-softmax by hand: autograd.scipy's logsumexp needs scipy, which CI lacks
        shifted = logits - anp.max(logits, axis=1, keepdims=True)
        log_p = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
        return -anp.mean(anp.sum(onehot * log_p, axis=1))

    value_and_grad = autograd.value_and_grad(loss_fn)
    state = {"params": [v.copy() for v in p[2]]}

    def run():
        loss, grads = value_and_grad(state["params"])
        state["params"] = [w - np.float32(LR) * g for w, g in zip(state["params"], grads)]
        return loss, state["params"]
    return run


W7.skip("micrograd", "peer", "micrograd has scalar Values only: a 784-256-10 MLP on a batch of "
        "128 is ~26 million scalar nodes per step")


@pytest.mark.parametrize("impl", W7.names())
def test_w7(benchmark, impl):
    p = problem()
    loss0, params1 = numpy_step_fn(*p)()
    if impl == "floor-numpy-forward":
        expected = [loss0, [q.copy() for q in p[2]]]
    else:
        expected = [loss0, [q.copy() for q in params1]]

    def check(got):
        loss, params = got
        assert_close([loss, params], expected, **F32)
    W7.run(benchmark, impl, p, check)
