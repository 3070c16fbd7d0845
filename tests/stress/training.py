"""Long training loops (tape + gradient + optimizer step), eager and compiled, whose memory
must stay flat (run in a child interpreter by test_long_training.py, so that the figures are
the loop's own and not the test run's)."""
import gc
import time

import numpy as np

import dualad as dd

from stress.budget import memory_blocks


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def scenario_training(model, steps, compiled, optimizer, bound_mib, block_slack):
    """`steps` steps of a small regression model ("array": a 3x2 layer, numpy arrays; or
    "scalar": every value a scalar, the core's C-double path) after a warm-up; memory may grow
    by at most bound_mib MiB of RSS and block_slack allocated blocks."""
    rng = np.random.default_rng(0)
    shapes = {"array": ((3, 2), (2,), (8, 3), (8, 2)), "scalar": ((), (), (), ())}[model]
    w = dd.Variable(rng.standard_normal(shapes[0]).astype(np.float32), name="w")
    b = dd.Variable(np.zeros(shapes[1], np.float32), name="b")
    scale = dd.Variable(np.float32(0.5), name="scale")  # a scalar: the core's C-double path
    x = dd.constant(rng.standard_normal(shapes[2]).astype(np.float32))
    target = dd.constant(rng.uniform(-0.5, 0.5, shapes[3]).astype(np.float32))
    matmul = (lambda a, c: a @ c) if model == "array" else (lambda a, c: a * c)
    opt = {"sgd": lambda: dd.optimizers.SGD(0.05, momentum=0.9),
           "adam": lambda: dd.optimizers.Adam(0.01)}[optimizer]()
    variables = [w, b, scale]

    def train_step():
        with dd.GradientTape() as tape:
            loss = dd.reduce_mean(dd.square(dd.tanh(matmul(x, w) + b) * scale - target))
        grads = tape.gradient(loss, variables)
        opt.apply_gradients(zip(grads, variables))
        return loss

    step = dd.function(train_step) if compiled else train_step
    first_loss = float(step())
    warmup = min(2000, steps // 10)
    for _ in range(warmup):  # caches, free lists and the allocator settle
        step()
    gc.collect()
    rss0, blocks0, t0 = rss_bytes(), memory_blocks(), time.perf_counter()
    for _ in range(steps):
        loss = step()
    elapsed = time.perf_counter() - t0
    gc.collect()
    rss1, blocks1 = rss_bytes(), memory_blocks()
    last_loss = float(loss)
    grown_mib, grown_blocks = (rss1 - rss0) / 2**20, blocks1 - blocks0
    print(f"{steps} steps ({model}, {'compiled' if compiled else 'eager'}, {optimizer}) in {elapsed:.1f} s; "
          f"loss {first_loss:.4f} -> {last_loss:.4f}; RSS +{grown_mib:.2f} MiB, "
          f"blocks +{grown_blocks}")
    assert np.isfinite(last_loss) and last_loss < first_loss, "the loop did not train"
    assert int(opt.iterations) == steps + warmup + 1
    if compiled:
        assert step.trace_count == 1, f"traced {step.trace_count} times"
    assert grown_blocks <= block_slack, \
        f"{grown_blocks} more memory blocks after {steps} steps (bound {block_slack})"
    assert grown_mib <= bound_mib, f"RSS grew {grown_mib:.2f} MiB in {steps} steps (bound {bound_mib})"
