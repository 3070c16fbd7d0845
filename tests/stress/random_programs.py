"""A seeded generator of random programs over dualad ops, and a checker that differentiates
each program in one of several ways (reverse, persistent, forward, reverse-over-reverse,
forward-over-reverse) with the garbage collector forced at every allocation, comparing the
derivatives with central finite differences of the same program run in numpy (float64).

A program is a list of instructions over a pool of values: the inputs (watched constants,
trainable Variables, and inputs that must get no gradient: unwatched constants and
non-trainable Variables), then one value per instruction. The target is the sum of a few of
the values, so gradients flow along many paths. Values stay O(1) (the ops are bounded or grow
slowly), so finite differences are accurate to ~1e-8 relative."""
import gc
import random

import numpy as np

import dualad as dd

from stress.budget import memory_blocks, rounds

SHAPES = [(), (3,), (2, 3), (3, 2), (1, 3)]
H = 1e-6  # the finite-difference step


@dd.custom_gradient
def custom_softplus(x):
    def grad(dy):
        return dy * dd.sigmoid(x)  # in dualad ops: differentiable again (nested tapes)
    return dd.log1p(dd.exp(x)), grad


def _np_logsumexp(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name: (dualad function, numpy function); operators work on both kinds of value
UNARY = {
    "sin": (dd.sin, np.sin),
    "cos": (dd.cos, np.cos),
    "tanh": (dd.tanh, np.tanh),
    "sigmoid": (dd.sigmoid, _np_sigmoid),
    "negative": (lambda x: -x, lambda x: -x),
    "hypot1": (lambda x: dd.sqrt(1.0 + dd.square(x)), lambda x: np.sqrt(1 + x * x)),
    "log1p_sq": (lambda x: dd.log1p(x * x), lambda x: np.log1p(x * x)),
    "gauss": (lambda x: dd.exp(-(x * x)), lambda x: np.exp(-(x * x))),
    "np_sin": (np.sin, np.sin),  # numpy's ufunc on a Tensor: recorded like dd.sin
    "custom_softplus": (custom_softplus, lambda x: np.log1p(np.exp(x))),
}
BINARY = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "safe_divide": lambda a, b: a / (1.0 + b * b),
}
REDUCE = {
    "sum": (dd.reduce_sum, lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims)),
    "mean": (dd.reduce_mean, lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims)),
    "logsumexp": (dd.reduce_logsumexp, _np_logsumexp),
}
# Forward mode has no rule for custom_gradient (it raises): left out of forward programs.
FORWARD_UNSUPPORTED = {"custom_softplus"}
KINDS = ("watched", "variable", "unwatched", "frozen_variable")
MODES = ("reverse", "persistent", "forward", "reverse_over_reverse", "forward_over_reverse")


def generate(seed, mode):
    """A random program (a dict of plain data) for `mode`, reproducible from `seed`."""
    rng = random.Random(seed)
    n_inputs = rng.randint(1, 4)
    inputs = [(rng.choice(SHAPES), rng.choice(KINDS)) for _ in range(n_inputs)]
    inputs[0] = (inputs[0][0], rng.choice(("watched", "variable")))  # at least one source
    shapes = [s for s, _ in inputs]
    instrs = []
    unary = [u for u in UNARY if not (mode in ("forward", "forward_over_reverse")
                                      and u in FORWARD_UNSUPPORTED)]
    for _ in range(rng.randint(3, 14)):
        kind = rng.choices(("unary", "binary", "reduce", "matmul", "reshape"),
                           weights=(4, 4, 2, 1, 1))[0]
        a = rng.randrange(len(shapes))
        sa = shapes[a]
        if kind == "unary":
            instrs.append(("unary", rng.choice(unary), (a,), None))
            shapes.append(sa)
        elif kind == "binary":
            partners = [b for b, sb in enumerate(shapes) if _broadcasts(sa, sb)]
            b = rng.choice(partners)
            instrs.append(("binary", rng.choice(list(BINARY)), (a, b), None))
            shapes.append(np.broadcast_shapes(sa, shapes[b]))
        elif kind == "reduce":
            axis = None if not sa or rng.random() < 0.4 else rng.randrange(len(sa))
            keepdims = rng.random() < 0.3
            instrs.append(("reduce", rng.choice(list(REDUCE)), (a,), (axis, keepdims)))
            shapes.append(np.sum(np.zeros(sa), axis=axis, keepdims=keepdims).shape)
        elif kind == "matmul":
            lefts = [i for i, s in enumerate(shapes) if len(s) == 2]
            if not lefts:
                continue
            a = rng.choice(lefts)
            rights = [i for i, s in enumerate(shapes) if 1 <= len(s) <= 2 and s[0] == shapes[a][1]]
            if not rights:
                continue
            b = rng.choice(rights)
            instrs.append(("matmul", "matmul", (a, b), None))
            shapes.append((np.zeros(shapes[a]) @ np.zeros(shapes[b])).shape)
        else:
            how = rng.choice(("flatten", "expand", "transpose"))
            if how == "transpose" and len(sa) != 2:
                how = "flatten"
            instrs.append(("reshape", how, (a,), None))
            shapes.append(_reshape_np(how, np.zeros(sa)).shape)
    # the target sums the last value and a few random others (at least one path per value)
    n_values = len(shapes)
    extra = rng.sample(range(n_values - 1), k=min(n_values - 1, rng.randint(0, 3)))
    values = [rng.uniform(-1.5, 1.5) if not s else
              np.array([rng.uniform(-1.5, 1.5) for _ in range(int(np.prod(s)))]).reshape(s)
              for s in shapes[:n_inputs]]
    return {"seed": seed, "mode": mode, "inputs": inputs, "instrs": instrs,
            "summed": [n_values - 1] + extra, "values": values,
            "raise_inside": rng.random() < 0.15}


def _broadcasts(sa, sb):
    try:
        np.broadcast_shapes(sa, sb)
        return True
    except ValueError:
        return False


def _reshape_np(how, x):
    if how == "flatten":
        return np.reshape(x, (-1,))
    if how == "expand":
        return np.expand_dims(x, 0)
    return x.T


def _reshape_dd(how, x):
    if how == "flatten":
        return dd.reshape(x, (-1,))
    if how == "expand":
        return dd.expand_dims(x, 0)
    return dd.transpose(x)


def run(program, xs, backend):
    """The program's target (a scalar) on inputs xs, with dualad ops or numpy."""
    numpy = backend == "numpy"
    pool = list(xs)
    for kind, name, args, params in program["instrs"]:
        vals = [pool[i] for i in args]
        if kind == "unary":
            out = UNARY[name][1 if numpy else 0](vals[0])
        elif kind == "binary":
            out = BINARY[name](*vals)
        elif kind == "reduce":
            axis, keepdims = params
            out = REDUCE[name][1 if numpy else 0](vals[0], axis=axis, keepdims=keepdims)
        elif kind == "matmul":
            out = vals[0] @ vals[1]
        else:
            out = (_reshape_np if numpy else _reshape_dd)(name, vals[0])
        pool.append(out)
    total = 0.0
    for i in program["summed"]:
        total = total + (np.sum(pool[i]) if numpy else dd.reduce_sum(pool[i]))
    return total


def make_inputs(program, values):
    """Fresh dualad inputs: constants or Variables as the program says."""
    out = []
    for (shape, kind), v in zip(program["inputs"], values):
        v = np.asarray(v, dtype=np.float64)
        if kind in ("variable", "frozen_variable"):
            out.append(dd.Variable(v, trainable=kind == "variable"))
        else:
            out.append(dd.constant(v))
    return out


def sources_of(program):
    return [i for i, (_, kind) in enumerate(program["inputs"]) if kind in ("watched", "variable")]


def connected_inputs(program):
    """The inputs the target depends on through the program (structurally)."""
    n_inputs = len(program["inputs"])
    deps = [{i} for i in range(n_inputs)]
    for _, _, args, _ in program["instrs"]:
        deps.append(set().union(*(deps[a] for a in args)))
    return set().union(*(deps[i] for i in program["summed"]))


def numeric_gradient(program, values):
    """Central differences of the numpy program, per input (sources and non-sources)."""
    grads = []
    for k, v in enumerate(values):
        v = np.asarray(v, dtype=np.float64)
        g = np.zeros(v.shape)
        for idx in np.ndindex(*v.shape):
            up, down = [np.array(x, dtype=np.float64) for x in values], \
                       [np.array(x, dtype=np.float64) for x in values]
            up[k][idx] += H
            down[k][idx] -= H
            g[idx] = (run(program, up, "numpy") - run(program, down, "numpy")) / (2 * H)
        grads.append(g)
    return grads


class Interrupted(Exception):
    """Raised on purpose inside a tape's context, halfway through recording."""


def reverse_gradient(program, values, persistent=False):
    """d target / d inputs with one tape (None for the inputs that are not sources)."""
    xs = make_inputs(program, values)
    with dd.GradientTape(persistent=persistent) as tape:
        for i in sources_of(program):
            if program["inputs"][i][1] == "watched":
                tape.watch(xs[i])
        y = run(program, xs, "dualad")
    grads = tape.gradient(y, xs)
    if persistent:
        again = tape.gradient(y, xs)
        for g, h in zip(grads, again):
            assert (g is None) == (h is None), "a persistent tape's second gradient differs"
            if g is not None:
                assert np.array_equal(np.asarray(g), np.asarray(h)), \
                    "a persistent tape's second gradient differs"
    return y, grads


def _close(actual, expected, what, rtol=1e-5, atol=1e-7):
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    assert np.allclose(actual, expected, rtol=rtol, atol=atol * scale), \
        f"{what}:\n{actual}\n!= expected\n{expected}"


def check(program):
    """Differentiate `program` as its mode says and compare with finite differences."""
    values, mode = program["values"], program["mode"]
    sources = sources_of(program)
    expected_value = run(program, values, "numpy")
    if mode in ("reverse", "persistent"):
        y, grads = reverse_gradient(program, values, persistent=mode == "persistent")
        _close(y, expected_value, "value")
        fd = numeric_gradient(program, values)
        connected = connected_inputs(program)
        for i, g in enumerate(grads):
            if i in sources and i in connected:
                assert g is not None, f"input {i} is a source and got no gradient"
                _close(g, fd[i], f"gradient of input {i}")
            else:
                assert g is None, f"input {i} is not a connected source and got a gradient {g}"
        return
    rng = np.random.default_rng(program["seed"])
    direction = [rng.uniform(-1, 1, np.shape(values[i])) for i in sources]
    if mode == "forward":
        xs = make_inputs(program, values)
        with dd.ForwardAccumulator([xs[i] for i in sources],
                                   [dd.constant(d) for d in direction]) as acc:
            y = run(program, xs, "dualad")
        fd = numeric_gradient(program, values)
        expected = sum(float(np.sum(fd[i] * d)) for i, d in zip(sources, direction))
        _close(acc.jvp(y, unconnected_gradients="zero"), expected, "jvp")
        return
    # second order: the Hessian-vector product along `direction`, against central differences
    # of the (float64, exact up to rounding) reverse gradient
    xs = make_inputs(program, values)
    src = [xs[i] for i in sources]
    if mode == "reverse_over_reverse":
        with dd.GradientTape() as outer:
            outer.watch(src)
            with dd.GradientTape() as inner:
                inner.watch(src)
                y = run(program, xs, "dualad")
            grads = inner.gradient(y, src, unconnected_gradients="zero")
            g_dot_v = sum(dd.reduce_sum(g * dd.constant(d)) for g, d in zip(grads, direction))
        hv = outer.gradient(g_dot_v, src, unconnected_gradients="zero")
    else:
        with dd.ForwardAccumulator(src, [dd.constant(d) for d in direction]) as acc:
            with dd.GradientTape() as tape:
                tape.watch(src)
                y = run(program, xs, "dualad")
            grads = tape.gradient(y, src, unconnected_gradients="zero")
        hv = [acc.jvp(g, unconnected_gradients="zero") for g in grads]

    def shifted(sign):
        vals = [np.array(v, dtype=np.float64) for v in values]
        for i, d in zip(sources, direction):
            vals[i] = vals[i] + sign * H * d
        _, g = reverse_gradient(program, vals)
        return [np.zeros(np.shape(values[i])) if g[i] is None else np.asarray(g[i])
                for i in sources]

    up, down = shifted(1), shifted(-1)
    for k, i in enumerate(sources):
        _close(hv[k], (up[k] - down[k]) / (2 * H), f"Hessian-vector product, input {i}",
               rtol=1e-4, atol=1e-6)


def check_interrupted(program):
    """An exception raised halfway through recording inside nested tapes and an accumulator
    leaves nothing active, and the next computation is unaffected."""
    values = program["values"]
    xs = make_inputs(program, values)
    try:
        with dd.GradientTape(persistent=True) as outer:
            with dd.ForwardAccumulator(xs[0], dd.ones_like(xs[0])):
                with dd.GradientTape() as inner:
                    inner.watch(xs)
                    outer.watch(xs)
                    run(program, xs, "dualad")
                    raise Interrupted
    except (Interrupted, NotImplementedError):  # (forward mode refuses custom_gradient ops)
        pass
    assert dd._core.active_transformations() == (), \
        f"left active after an exception: {dd._core.active_transformations()}"


def scenario_random_programs(first_seed, n_programs, block_slack):
    """Check n_programs programs (more while the time budget lasts) twice over with gc forced
    at every allocation; the second pass, which repeats the first, must not grow memory by more
    than block_slack allocated blocks. The first pass makes its programs as it checks them, so
    that the budget bounds the checking (generating programs is fast; checking them is not)."""
    programs = []
    old_threshold = gc.get_threshold()
    counts = []

    def check_one(program):
        gc.set_threshold(1)  # a collection at every allocation of a tracked object
        try:
            if program["raise_inside"]:
                check_interrupted(program)
            check(program)
        except AssertionError as e:
            raise AssertionError(f"program seed={program['seed']} "
                                 f"mode={program['mode']}: {e}\n{program}") from None
        finally:
            gc.set_threshold(*old_threshold)
        active = dd._core.active_transformations()
        assert active == (), f"seed {program['seed']} left {active} active"

    try:
        for r in rounds(n_programs):
            seed = first_seed + r
            programs.append(generate(seed, MODES[seed % len(MODES)]))
            check_one(programs[-1])
        gc.collect()
        counts.append(memory_blocks())
        for program in programs:
            check_one(program)
        gc.collect()
        counts.append(memory_blocks())
    finally:
        gc.set_threshold(*old_threshold)
    growth = counts[1] - counts[0]
    print(f"{len(programs)} programs, memory blocks {counts[0]} -> {counts[1]}")
    assert growth <= block_slack, (f"memory grew by {growth} blocks over a repeat of the same "
                                   f"{len(programs)} programs (bound {block_slack})")
