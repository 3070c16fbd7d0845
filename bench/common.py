"""Shared machinery of the benchmark suites.

Every workload file builds a `Suite`: a table of implementations (floors, dualad, peers), each a
builder that returns a zero-argument callable. `Suite.run` names the benchmark
`<workload>[<impl>]`, groups it per workload, records its role in `extra_info`, calls the
callable once and checks its result against the floor's value (so that a fast wrong
implementation cannot produce a row), then times it.

Roles: `floor` (pure Python / hand-written numpy), `dualad`, `peer` (a peer's eager mode),
`peer-jit` (a peer's compiled mode: tf.function, jax.jit). Peers that are not installed skip
through pytest.importorskip.
"""
import math
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter

#: set by bench/conftest.py from --bench-quick: every benchmark runs once, slow probes shrink
QUICK = False

#: what pytest-benchmark's JSON does not hold, written by bench/conftest.py (--bench-extra-json):
#: every row's workload/impl/role by node id, skip reasons by node id, the W9 memory probes
EXTRA = {"rows": {}, "outcomes": {}, "skipped": {}, "w9_memory": []}


# ---------------------------------------------------------------------------------------------
# peers, imported only when a row needs them

def need_tf():
    return pytest.importorskip("tensorflow")


def need_torch():
    return pytest.importorskip("torch")


def need_jax():
    """jax and jax.numpy with float64 enabled (the workloads are float64 unless said)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    return jax, jnp


def need_autograd():
    autograd = pytest.importorskip("autograd")
    import autograd.numpy as anp
    return autograd, anp


def need_micrograd():
    return pytest.importorskip("micrograd.engine").Value


def to_numpy(value):
    """Any library's result (tensor, array, Value, float, tuple of them) as numpy."""
    if isinstance(value, (tuple, list)):
        return [to_numpy(v) for v in value]
    if hasattr(value, "detach"):                      # torch
        return value.detach().cpu().numpy()
    if hasattr(value, "data") and type(value).__name__ == "Value":   # micrograd
        return np.asarray(value.data)
    return np.asarray(value)


def assert_close(got, expected, rtol, atol=0.0, what="result"):
    got, expected = to_numpy(got), to_numpy(expected)
    if isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), what
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_close(g, e, rtol, atol, f"{what}[{i}]")
        return
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.size == expected.size, f"{what}: shape {got.shape}, expected {expected.shape}"
    np.testing.assert_allclose(got.reshape(expected.shape), expected, rtol=rtol, atol=atol,
                               err_msg=f"{what} differs from the floor's value")


# ---------------------------------------------------------------------------------------------

#: every Suite by workload id (the report imports the test modules to fill it)
SUITES = {}


class Impl:
    def __init__(self, name, role, build, rounds=None, note=""):
        self.name, self.role, self.build, self.rounds, self.note = name, role, build, rounds, note


class Suite:
    """The implementations of one workload. `workload` is the id used in names and targets
    (e.g. "W3", "W2 n=1000"), `title` the group shown in tables, `judged` the dualad row its
    targets judge (bold in the report). Its performance targets are declared next to it, in
    the module's TARGETS list (bench/report/targets.py)."""

    def __init__(self, workload, title, floor, judged, problem=lambda: None, **info):
        self.workload, self.title, self.floor, self.info = workload, title, floor, info
        self.judged = judged
        self.problem = problem       # makes the inputs every implementation is built from
        self.impls = {}
        SUITES[workload] = self

    def callable(self, impl):
        """The zero-argument callable of one row, built outside pytest (the report profiles
        dualad's rows with it)."""
        return self.impls[impl].build(self.problem())

    def add(self, name, role, rounds=None, note=""):
        """Decorator: register `build(problem) -> callable`. `rounds` fixes the number of timed
        rounds (benchmark.pedantic) for slow rows (a built callable may carry its own `rounds`
        attribute instead); None lets pytest-benchmark calibrate."""
        def register(build):
            self.impls[name] = Impl(name, role, build, rounds, note)
            return build
        return register

    def skip(self, name, role, reason):
        """A row this peer cannot express: it shows as skipped, with the reason, in the report."""
        def build(problem):
            pytest.skip(reason)
        self.impls[name] = Impl(name, role, build, None, reason)

    def names(self):
        return list(self.impls)

    def run(self, benchmark, impl, problem, check):
        """Build `impl`, check its first result with `check(result)`, then time it. A row timed
        in a single round (slow peers of W9) is checked on the result of that round instead, so
        that it runs once; a wrong result still fails the test, and the report leaves out rows
        whose test did not pass."""
        spec = self.impls[impl]
        benchmark.group = self.title
        benchmark.name = f"{self.workload}[{impl}]"
        benchmark.extra_info.update(workload=self.workload, impl=impl, role=spec.role,
                                    floor=self.floor, note=spec.note, **self.info)
        EXTRA["rows"][benchmark.fullname] = dict(workload=self.workload, impl=impl,
                                                 role=spec.role, title=self.title)
        fn = spec.build(problem)
        rounds = getattr(fn, "rounds", spec.rounds)
        if rounds is not None and (QUICK or rounds == 1):
            result = benchmark.pedantic(fn, rounds=1, warmup_rounds=0)
            check(result)
            return result
        check(fn())
        if rounds is not None:
            return benchmark.pedantic(fn, rounds=rounds, warmup_rounds=0)
        return benchmark(fn)


# ---------------------------------------------------------------------------------------------
# the scalar chain of W3 and W9: sin, multiply by x, add x, repeated

def chain(x, length, sin):
    """h <- sin(h), h <- h * x, h <- h + x, ... `length` ops starting from h = x. Every op
    depends on the one before, and x enters every second op, so the gradient in x is a sum
    over the whole chain (it neither vanishes nor blows up)."""
    h = x
    for k in range(length):
        r = k % 3
        if r == 0:
            h = sin(h)
        elif r == 1:
            h = h * x
        else:
            h = h + x
    return h


def chain_python_gradient(x, length):
    """The hand-written reverse sweep of `chain` in pure Python floats: (value, d value / dx)."""
    values = [0.0] * length          # the input of each op
    h = x
    sin = math.sin
    for k in range(length):
        values[k] = h
        r = k % 3
        if r == 0:
            h = sin(h)
        elif r == 1:
            h = h * x
        else:
            h = h + x
    cos = math.cos
    dh, dx = 1.0, 0.0
    for k in range(length - 1, -1, -1):
        r = k % 3
        if r == 0:
            dh = dh * cos(values[k])
        elif r == 1:
            dx += dh * values[k]
            dh = dh * x
        else:
            dx += dh
    return h, dx + dh
