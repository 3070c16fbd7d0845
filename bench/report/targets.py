"""Performance targets as data.

Each workload module (bench/test_wN_*.py) declares its targets in a module-level `TARGETS`
list, next to its `Suite`: the threshold is written there and nowhere else (the target's text
is a template filled with it). `collect()` imports the modules and returns every target in
report order, plus "faster than every installed peer's eager mode" for each workload with an
eager peer row.

A target's `evaluate(rows, memory)` returns (met, figure): met is True / False, or None when
a row it needs has no result ("not measured"). `rows` is workload -> impl -> row (median in
seconds, extra_info fields), `memory` the W9 memory probes.
"""
import importlib

from bench.report.units import fmt_ratio, fmt_time

#: the workload modules, in report order
MODULES = ["test_w1_minimisation", "test_w2_quadratic", "test_w3_chain",
           "test_w4_second_derivative", "test_w5_hvp", "test_w6_jacobian", "test_w7_mlp",
           "test_w8_control_flow", "test_w9_long_chain", "test_w10_dispatch"]


class Missing(Exception):
    """A row or probe a target needs has no result."""


def median(rows, workload, impl):
    row = rows.get(workload, {}).get(impl)
    return row["median"] if row else None


def need(rows, workload, impl):
    m = median(rows, workload, impl)
    if m is None:
        raise Missing(f"{workload}[{impl}] has no result")
    if not m > 0:           # a ratio to it would divide by zero (or compare NaN)
        raise Missing(f"{workload}[{impl}] has no positive time ({m})")
    return m


def per_iteration(rows, workload, impl):
    """Median time of one loop iteration: the row's median over its `iterations`."""
    t = need(rows, workload, impl)
    iterations = rows[workload][impl].get("iterations")
    if not iterations:
        raise Missing(f"{workload}[{impl}] does not say its iteration count")
    return t / iterations


class Target:
    """One target of one workload. `text` may name the threshold as {limit}."""
    limit = None

    def __init__(self, suite, text):
        self.workload = suite.workload
        self.suite = suite
        self.template = text

    @property
    def text(self):
        return self.template.format(limit=self.limit)

    def result(self, rows, memory):
        try:
            return self.evaluate(rows, memory)
        except Missing as e:
            return None, f"not measured ({e})"

    def evaluate(self, rows, memory):
        raise NotImplementedError


class RatioAtMost(Target):
    """The judged row's median ≤ `limit` × the floor's median (the workload's floor and
    judged row unless `impl` / `reference` name others)."""

    def __init__(self, suite, limit, text, impl=None, reference=None):
        super().__init__(suite, text)
        self.limit = limit
        self.impl = impl or suite.judged
        self.reference = reference or suite.floor

    @property
    def of_judged_to_floor(self):
        """True when this is the judged row against the floor (the ratio plot draws it)."""
        return self.impl == self.suite.judged and self.reference == self.suite.floor

    def evaluate(self, rows, memory):
        w = self.workload
        mine, ref = need(rows, w, self.impl), need(rows, w, self.reference)
        r = mine / ref
        return r <= self.limit, f"{fmt_ratio(r)} ({fmt_time(mine)} / {fmt_time(ref)})"


class PerIterationAtMost(Target):
    """The judged row's time per loop iteration ≤ `limit` microseconds."""

    def __init__(self, suite, limit, text):
        super().__init__(suite, text)
        self.limit = limit

    def evaluate(self, rows, memory):
        t = per_iteration(rows, self.workload, self.suite.judged)
        return t <= self.limit * 1e-6, f"{t * 1e6:.3f} µs per iteration"


class SpeedupPerIterationAtLeast(Target):
    """The judged row is ≥ `limit` × faster per iteration than `baseline`'s judged row."""

    def __init__(self, suite, limit, text, baseline):
        super().__init__(suite, text)
        self.limit, self.baseline = limit, baseline

    def evaluate(self, rows, memory):
        slow = per_iteration(rows, self.baseline.workload, self.baseline.judged)
        fast = per_iteration(rows, self.workload, self.suite.judged)
        return slow / fast >= self.limit, (f"{slow / fast:.1f}× faster ({slow * 1e6:.2f} → "
                                           f"{fast * 1e6:.3f} µs per iteration)")


class WithinOfBest(Target):
    """The judged row ≤ `limit` × the fastest of `others`."""

    def __init__(self, suite, limit, text, others):
        super().__init__(suite, text)
        self.limit, self.others = limit, others

    def evaluate(self, rows, memory):
        best = min(need(rows, self.workload, o) for o in self.others)
        r = need(rows, self.workload, self.suite.judged) / best
        return r <= self.limit, f"{fmt_ratio(r)} the better forced mode ({fmt_time(best)})"


class FasterThan(Target):
    """The judged row's median is below `other`'s."""

    def __init__(self, suite, text, other):
        super().__init__(suite, text)
        self.other = other

    def evaluate(self, rows, memory):
        w, impl = self.workload, self.suite.judged
        mine, theirs = need(rows, w, impl), need(rows, w, self.other)
        return mine < theirs, (f"{impl.removeprefix('dualad-')} {fmt_time(mine)} vs "
                               f"{self.other.removeprefix('dualad-')} {fmt_time(theirs)}")


def probes_of(memory, runner):
    probes = sorted((p for p in memory if p.get("runner") == runner and "peak" in p),
                    key=lambda p: p["length"])
    if len(probes) < 2:
        raise Missing(f"fewer than two {runner.split('-')[0]} memory probes")
    return probes


class MemoryLinear(Target):
    """Peak memory per op of `runner`'s probes, at lengths ≥ `from_length` (all of them if
    none is that long), varies by at most a factor `limit`."""

    def __init__(self, suite, limit, text, runner, from_length):
        super().__init__(suite, text)
        self.limit, self.runner, self.from_length = limit, runner, from_length

    def evaluate(self, rows, memory):
        probes = probes_of(memory, self.runner)
        per_op = [p["peak"] / p["length"] for p in probes if p["length"] >= self.from_length] \
            or [p["peak"] / p["length"] for p in probes]
        spread = max(per_op) / min(per_op)
        text = ", ".join(f"{p['length']:,}: {p['peak'] / p['length']:.0f} B/op" for p in probes)
        start = f"{self.from_length:.0e}".replace("e+0", "e")       # 100000 -> 1e5
        return spread <= self.limit, (f"peak per op ({text}); largest/smallest at ≥{start} ops "
                                      f"{spread:.2f}")


class MemoryReleased(Target):
    """At `runner`'s longest probe, what is still held after the gradient (tape and output
    alive) is at most the fraction `limit` of the peak."""

    def __init__(self, suite, limit, text, runner):
        super().__init__(suite, text)
        self.limit, self.runner = limit, runner

    def evaluate(self, rows, memory):
        p = probes_of(memory, self.runner)[-1]
        frac = p["after_gradient"] / p["peak"] if p["peak"] > 0 else 0.0
        return frac <= self.limit, (
            f"at {p['length']:,} ops: peak {p['peak'] / 2**20:.1f} MiB, still held after the "
            f"gradient (tape and output alive) {p['after_gradient'] / 2**20:.1f} MiB ({frac:.1%})")


class FasterThanPeers(Target):
    """The judged row is faster than every eager peer row with a result."""

    def __init__(self, suite):
        super().__init__(suite, "faster than every installed peer's eager mode")

    def evaluate(self, rows, memory):
        w = self.workload
        mine = need(rows, w, self.suite.judged)
        peers = {k: r["median"] for k, r in rows.get(w, {}).items() if r["role"] == "peer"}
        if not peers:
            raise Missing("no peer installed")
        faster = [k for k, m in peers.items() if m <= mine]
        text = ", ".join(f"{k} {m / mine:.3g}×" for k, m in sorted(peers.items(),
                                                                    key=lambda kv: kv[1]))
        if faster:
            return False, f"faster peer(s): {', '.join(faster)}; peer / dualad: {text}"
        return True, f"peer / dualad: {text}"


def load_workloads():
    """Import every workload module; returns bench.common.SUITES (workload id -> Suite), in
    report order."""
    from bench import common
    for m in MODULES:
        importlib.import_module(f"bench.{m}")
    return common.SUITES


def collect():
    """Every target, in report order: the modules' TARGETS, then the peers target of each
    workload that has an eager peer row (installed or not)."""
    suites = load_workloads()
    targets = []
    for m in MODULES:
        targets += importlib.import_module(f"bench.{m}").TARGETS
    targets += [FasterThanPeers(s) for s in suites.values()
                if any(i.role == "peer" for i in s.impls.values())]
    return targets
