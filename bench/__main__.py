"""Run the benchmark suite and write the report:

    python -m bench            # the full run (~10-15 min on 2 cores), writes bench/report/
    python -m bench --quick    # CI: every benchmark once, report to a temporary directory
    python -m bench --no-run   # rewrite bench/report/ from its results.json and extra.json

The run is `python -m pytest bench -v` with pytest-benchmark's JSON output: one progress line
per benchmark. The report (REPORT.md and PNG plots) gives per workload the median and IQR of
every row, its ratio to the workload's floor and to dualad, each target of the issue with
MET / MISSED and the figure, the W9 memory probes, cProfile profiles of dualad's rows that miss
a target, and the machine and library versions.
"""
import argparse
import cProfile
import datetime
import importlib
import importlib.metadata
import io
import json
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODULES = ["test_w1_minimisation", "test_w2_quadratic", "test_w3_chain",
           "test_w4_second_derivative", "test_w5_hvp", "test_w6_jacobian", "test_w7_mlp",
           "test_w8_control_flow", "test_w9_long_chain"]

#: the dualad row each workload is judged by
MAIN = {"W1": "dualad-eager", "W1c": "dualad-compiled", "W2 n=4": "dualad-gradient",
        "W2 n=1000": "dualad-gradient", "W2 n=1000000": "dualad-gradient",
        "W3": "dualad-gradient", "W4": "dualad-nested-tapes", "W5": "dualad-hvp",
        "W6 n=10 m=1000": "dualad-auto", "W6 n=1000 m=10": "dualad-auto", "W7": "dualad-step",
        "W8": "dualad-gradient", "W9": "dualad-gradient"}
ORDER = list(MAIN)
PEER_LIBS = [("tensorflow", ["tensorflow", "tensorflow-cpu"]), ("keras", ["keras"]),
             ("torch", ["torch"]), ("jax", ["jax"]), ("jaxlib", ["jaxlib"]),
             ("autograd", ["autograd"]), ("micrograd", ["micrograd"])]
TOOLS = [("dualad", ["dualad"]), ("numpy", ["numpy"]), ("Cython", ["Cython"]),
         ("pytest", ["pytest"]), ("pytest-benchmark", ["pytest-benchmark"]),
         ("matplotlib", ["matplotlib"])]


# ---------------------------------------------------------------------------------------------
# running

def run_pytest(out, quick, keyword):
    cmd = [sys.executable, "-m", "pytest", "bench", "-v", "-rs", "--color=no",
           f"--benchmark-json={os.path.join(out, 'results.json')}",
           f"--bench-extra-json={os.path.join(out, 'extra.json')}",
           "--benchmark-columns=median,iqr,rounds", "--benchmark-sort=name"]
    if quick:
        cmd += ["--bench-quick", "--benchmark-min-rounds=1", "--benchmark-max-time=0",
                "--benchmark-warmup=off"]
    else:
        cmd += ["--benchmark-min-rounds=5", "--benchmark-max-time=2.0"]
    if keyword:
        cmd += ["-k", keyword]
    print("$", " ".join(cmd), flush=True)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.call(cmd, cwd=ROOT, env=env)


# ---------------------------------------------------------------------------------------------
# loading

def load(out):
    with open(os.path.join(out, "results.json")) as f:
        results = json.load(f)
    try:
        with open(os.path.join(out, "extra.json")) as f:
            extra = json.load(f)
    except FileNotFoundError:
        extra = {"rows": {}, "outcomes": {}, "skipped": {}, "w9_memory": []}
    rows = {}        # workload -> impl -> row
    for b in results["benchmarks"]:
        info = b["extra_info"]
        if extra["outcomes"].get(b["fullname"], "passed") != "passed":
            continue         # its result check failed: no row
        s = b["stats"]
        rows.setdefault(info["workload"], {})[info["impl"]] = dict(
            info, median=s["median"], iqr=s["iqr"], rounds=s["rounds"], min=s["min"],
            mean=s["mean"], title=b["group"])
    skipped = {}     # workload -> [(impl, reason)]
    for nodeid, reason in extra["skipped"].items():
        row = extra["rows"].get(nodeid)
        if row:
            skipped.setdefault(row["workload"], []).append((row["impl"], reason))
    failed = [n for n, o in extra["outcomes"].items() if o == "failed"]
    return results, extra, rows, skipped, failed


# ---------------------------------------------------------------------------------------------
# targets

def fmt_time(seconds):
    if seconds is None:
        return "–"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            v = seconds / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"


def fmt_ratio(r):
    if r is None:
        return "–"
    return f"{r:.2f}×" if r < 10 else f"{r:.3g}×" if r < 1000 else f"{r:,.0f}×"


def med(rows, w, impl):
    r = rows.get(w, {}).get(impl)
    return r["median"] if r else None


class Target:
    def __init__(self, workload, text, evaluate):
        self.workload, self.text, self.evaluate = workload, text, evaluate

    def result(self, rows, memory):
        try:
            return self.evaluate(rows, memory)
        except _Missing as e:
            return None, f"not measured ({e})"


class _Missing(Exception):
    pass


def need(rows, w, impl):
    m = med(rows, w, impl)
    if m is None:
        raise _Missing(f"{w}[{impl}] has no result")
    return m


def ratio_target(w, impl, floor, limit):
    def evaluate(rows, memory):
        r = need(rows, w, impl) / need(rows, w, floor)
        return r <= limit, f"{fmt_ratio(r)} ({fmt_time(med(rows, w, impl))} / " \
                           f"{fmt_time(med(rows, w, floor))})"
    return evaluate


def w1_compiled_per_iteration(rows, memory):
    t = need(rows, "W1c", "dualad-compiled") / 10_000
    return t <= 0.1e-6, f"{t * 1e6:.3f} µs per iteration"


def w1_compiled_speedup(rows, memory):
    eager = need(rows, "W1", "dualad-eager") / 1000
    compiled = need(rows, "W1c", "dualad-compiled") / 10_000
    return eager / compiled >= 5, (f"{eager / compiled:.1f}× faster ({eager * 1e6:.2f} → "
                                   f"{compiled * 1e6:.3f} µs per iteration)")


def w6_auto_vs_best(w):
    def evaluate(rows, memory):
        best = min(need(rows, w, "dualad-forward"), need(rows, w, "dualad-reverse"))
        r = need(rows, w, "dualad-auto") / best
        return r <= 1.2, f"{fmt_ratio(r)} the better forced mode ({fmt_time(best)})"
    return evaluate


def w6_auto_beats(w, other):
    def evaluate(rows, memory):
        a, o = need(rows, w, "dualad-auto"), need(rows, w, other)
        return a < o, f"auto {fmt_time(a)} vs {other.removeprefix('dualad-')} {fmt_time(o)}"
    return evaluate


def dualad_probes(memory):
    probes = sorted((p for p in memory if p.get("runner") == "dualad-gradient" and "peak" in p),
                    key=lambda p: p["length"])
    if len(probes) < 2:
        raise _Missing("fewer than two dualad memory probes")
    return probes


def w9_linear(rows, memory):
    probes = dualad_probes(memory)
    per_op = [p["peak"] / p["length"] for p in probes if p["length"] >= 100_000] or \
        [p["peak"] / p["length"] for p in probes]
    spread = max(per_op) / min(per_op)
    text = ", ".join(f"{p['length']:,}: {p['peak'] / p['length']:.0f} B/op" for p in probes)
    return spread <= 1.25, f"peak per op ({text}); largest/smallest at ≥1e5 ops {spread:.2f}"


def w9_released(rows, memory):
    p = dualad_probes(memory)[-1]
    frac = p["after_gradient"] / p["peak"] if p["peak"] > 0 else 0.0
    return frac <= 0.1, (f"at {p['length']:,} ops: peak {p['peak'] / 2**20:.1f} MiB, still held "
                         f"after the gradient (tape and output alive) "
                         f"{p['after_gradient'] / 2**20:.1f} MiB ({frac:.1%})")


def faster_than_peers(w):
    def evaluate(rows, memory):
        me = need(rows, w, MAIN[w])
        peers = {k: r["median"] for k, r in rows.get(w, {}).items() if r["role"] == "peer"}
        if not peers:
            raise _Missing("no peer installed")
        slower = [k for k, m in peers.items() if m <= me]
        text = ", ".join(f"{k} {m / me:.3g}×" for k, m in sorted(peers.items(),
                                                                  key=lambda kv: kv[1]))
        if slower:
            text = f"faster peer(s): {', '.join(slower)}; peer / dualad: {text}"
        else:
            text = f"peer / dualad: {text}"
        return not slower, text
    return evaluate


TARGETS = [
    Target("W1", "eager step ≤ 10× the hand-written pure-Python step",
           ratio_target("W1", "dualad-eager", "floor-python-step", 10)),
    Target("W1c", "compiled: ≤ 0.1 µs per iteration", w1_compiled_per_iteration),
    Target("W1c", "compiled ≥ 5× faster per iteration than eager dualad (issue 5)",
           w1_compiled_speedup),
    Target("W2 n=4", "gradient ≤ 3× the numpy forward",
           ratio_target("W2 n=4", "dualad-gradient", "floor-numpy-forward", 3)),
    Target("W2 n=1000000", "gradient ≤ 2× the numpy forward",
           ratio_target("W2 n=1000000", "dualad-gradient", "floor-numpy-forward", 2)),
    Target("W3", "gradient ≤ 5× the pure-Python forward evaluation",
           ratio_target("W3", "dualad-gradient", "floor-python-forward", 5)),
    Target("W4", "≤ 20× the pure-Python evaluation of x³",
           ratio_target("W4", "dualad-nested-tapes", "floor-python-forward", 20)),
    Target("W5", "HVP ≤ 4× the numpy forward",
           ratio_target("W5", "dualad-hvp", "floor-numpy-forward", 4)),
]
for _w in ("W6 n=10 m=1000", "W6 n=1000 m=10"):
    TARGETS += [
        Target(_w, "auto within 1.2× of the better of forced forward and forced reverse",
               w6_auto_vs_best(_w)),
        Target(_w, "auto ≤ 5× the hand-written numpy Jacobian",
               ratio_target(_w, "dualad-auto", "floor-numpy-jacobian", 5)),
    ]
TARGETS += [
    Target("W6 n=10 m=1000", "auto faster than forced reverse (issue 3)",
           w6_auto_beats("W6 n=10 m=1000", "dualad-reverse")),
    Target("W6 n=1000 m=10", "auto faster than forced forward (issue 3)",
           w6_auto_beats("W6 n=1000 m=10", "dualad-forward")),
    Target("W7", "≤ 1.15× the hand-written numpy step",
           ratio_target("W7", "dualad-step", "floor-numpy-step", 1.15)),
    Target("W8", "gradient ≤ 2× the numpy forward on the same (1, 1) arrays",
           ratio_target("W8", "dualad-gradient", "floor-numpy-forward", 2)),
    Target("W9", "peak memory linear in the chain length", w9_linear),
    Target("W9", "memory released after a non-persistent gradient", w9_released),
]
for _w in ORDER:
    if _w != "W1c":
        TARGETS.append(Target(_w, "faster than every installed peer's eager mode",
                              faster_than_peers(_w)))


def verdict(met):
    return "not measured" if met is None else "**MET**" if met else "**MISSED**"


# ---------------------------------------------------------------------------------------------
# profiles of dualad's rows that miss a target

def profile_row(workload, impl, seconds=0.6, top=12):
    from bench import common
    for m in MODULES:
        importlib.import_module(f"bench.{m}")
    fn = common.SUITES[workload].callable(impl)
    fn()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds / 4 or n < 1:
        fn()
        n += 1
    calls = max(1, n * 4)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    text = buf.getvalue()
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.strip().startswith("ncalls")), 0)
    body = "\n".join(l.replace(ROOT + "/", "").replace(sys.prefix, "<python>")
                     for l in lines[start:] if l.strip())
    return calls, body


# ---------------------------------------------------------------------------------------------
# machine and versions

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def version(dists):
    for d in dists:
        try:
            return importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True).stdout.strip() or None
    except OSError:
        return None


def machine_info():
    return dict(cpu=cpu_model(), cores=os.cpu_count(), platform=platform.platform(),
                python=platform.python_version(), implementation=platform.python_implementation(),
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                commit=RUN_COMMIT or git_commit(), loadavg=os.getloadavg())


RUN_COMMIT = None   # the commit checked out when the run started (others may commit meanwhile)


# ---------------------------------------------------------------------------------------------
# plots

def plots(out, rows, memory):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    colors = {"floor": "#888888", "dualad": "#d62728", "peer": "#1f77b4", "peer-jit": "#9ecae1"}

    # per-op overhead: W3 and W9, time per primitive op of every row
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, w in zip(axes, ("W3", "W9")):
        data = sorted(rows.get(w, {}).values(), key=lambda r: r["median"])
        if not data:
            ax.set_visible(False)
            continue
        ops = data[0].get("ops") or 1
        ax.barh([r["impl"] for r in data], [r["median"] / ops * 1e6 for r in data],
                color=[colors.get(r["role"], "k") for r in data])
        ax.set_xscale("log")
        ax.invert_yaxis()
        ax.set_xlabel("µs per primitive op (median / chain length, log scale)")
        ax.set_title(f"{w}: gradient of a {ops:,}-op scalar chain")
        for i, r in enumerate(data):
            ax.text(r["median"] / ops * 1e6, i, f" {r['median'] / ops * 1e6:.3g}",
                    va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "per_op_overhead.png"), dpi=110)
    plt.close(fig)
    written.append("per_op_overhead.png")

    # ratio to floor per workload: dualad's row, peers, and the target
    limits = {"W1": 10, "W2 n=4": 3, "W2 n=1000000": 2, "W3": 5, "W4": 20, "W5": 4,
              "W6 n=10 m=1000": 5, "W6 n=1000 m=10": 5, "W7": 1.15, "W8": 2}
    ws = [w for w in ORDER if w in rows and MAIN[w] in rows[w]]
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(ws) + 1.5))
    for i, w in enumerate(ws):
        floor = med(rows, w, rows[w][MAIN[w]]["floor"])
        if not floor:
            continue
        ax.barh(i, rows[w][MAIN[w]]["median"] / floor, color=colors["dualad"], height=0.6,
                label="dualad" if i == 0 else None)
        for r in rows[w].values():
            if r["role"] in ("peer", "peer-jit"):
                ax.plot(r["median"] / floor, i, "o" if r["role"] == "peer" else "s",
                        color=colors[r["role"]], ms=5,
                        label=({"peer": "peer (eager)", "peer-jit": "peer (jit/function)"}
                               [r["role"]] if r["role"] not in ax.get_legend_handles_labels()[1]
                               else None))
                ax.annotate(r["impl"].split("-")[0][:5], (r["median"] / floor, i),
                            textcoords="offset points", xytext=(0, 5), fontsize=6,
                            ha="center")
        if w in limits:
            ax.plot([limits[w]] * 2, [i - 0.4, i + 0.4], color="k", lw=2,
                    label="target" if "target" not in ax.get_legend_handles_labels()[1]
                    else None)
    ax.set_yticks(range(len(ws)))
    ax.set_yticklabels([f"{w} ({rows[w][MAIN[w]]['floor']})" for w in ws], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.axvline(1, color="#888888", lw=0.8)
    ax.set_xlabel("median / floor median (log scale; 1 = the floor)")
    ax.set_title("Ratio to the floor per workload")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "ratio_to_floor.png"), dpi=110)
    plt.close(fig)
    written.append("ratio_to_floor.png")

    # W2 scaling with n
    fig, ax = plt.subplots(figsize=(7, 5))
    impls = sorted({i for w in rows if w.startswith("W2 ") for i in rows[w]})
    for impl in impls:
        pts = sorted((rows[w][impl]["n"], rows[w][impl]["median"]) for w in rows
                     if w.startswith("W2 ") and impl in rows[w])
        if pts:
            role = next(rows[w][impl]["role"] for w in rows if w.startswith("W2 ")
                        and impl in rows[w])
            ax.plot(*zip(*pts), marker="o", label=impl, lw=2.5 if role == "dualad" else 1,
                    ls="--" if role == "floor" else "-")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n (x of shape (n, 1))")
    ax.set_ylabel("median time (s)")
    ax.set_title("W2: gradient of 2·xᵀx against n")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "scaling_w2.png"), dpi=110)
    plt.close(fig)
    written.append("scaling_w2.png")

    # W9 scaling with the chain length: time and peak memory (fresh processes)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    runners = sorted({p["runner"] for p in memory if "peak" in p})
    for name in runners:
        pts = sorted((p["length"], p["seconds"], p["peak"]) for p in memory
                     if p.get("runner") == name and "peak" in p)
        lengths = [p[0] for p in pts]
        style = dict(marker="o", label=name, lw=2.5 if name.startswith("dualad") else 1,
                     ls="--" if name.startswith("floor") else "-")
        axes[0].plot(lengths, [p[1] for p in pts], **style)
        axes[1].plot(lengths, [max(p[2], 1) / 2**20 for p in pts], **style)
    for ax, label in zip(axes, ("gradient time (s)", "peak resident memory (MiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("chain length (ops)")
        ax.set_ylabel(label)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[0].set_title("W9: time of one gradient against length")
    axes[1].set_title("W9: peak memory of one gradient against length")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "scaling_w9.png"), dpi=110)
    plt.close(fig)
    written.append("scaling_w9.png")
    return written


# ---------------------------------------------------------------------------------------------
# the markdown report

def write_report(out, quick, elapsed, profile):
    results, extra, rows, skipped, failed = load(out)
    memory = extra.get("w9_memory", [])
    info = machine_info()
    lines = []
    add = lines.append
    add("# dualad benchmark report")
    add("")
    if quick:
        add("**Quick run (CI check): every benchmark ran once; the timings below mean nothing.**")
        add("")
    add(f"Generated by `python -m bench{' --quick' if quick else ''}` on {info['date']}"
        + (f" at commit `{info['commit']}` (checked out when the run started)"
           if info["commit"] else "")
        + (f", in {elapsed / 60:.1f} min." if elapsed else "."))
    add("")
    add("## Machine and versions")
    add("")
    add(f"- CPU: {info['cpu']}, {info['cores']} cores; {info['platform']}")
    add(f"- load average when the report was written: "
        f"{', '.join(f'{x:.2f}' for x in info['loadavg'])} (the machine is shared: the medians "
        "carry that noise; the IQR column shows how much)")
    add(f"- Python {info['python']} ({info['implementation']})")
    add("- " + ", ".join(f"{n} {version(d) or 'not installed'}" for n, d in TOOLS))
    add("- peers: " + ", ".join(f"{n} {version(d) or 'not installed'}" for n, d in PEER_LIBS))
    add("- JAX runs with `jax_enable_x64`; peers use their default threading. Each row's "
        "result was checked against the floor's value before it was timed.")
    add("")

    # targets
    add("## Targets")
    add("")
    add("| workload | target | verdict | figure |")
    add("| --- | --- | --- | --- |")
    missed = []
    for t in TARGETS:
        met, figure = t.result(rows, memory)
        add(f"| {t.workload} | {t.text} | {verdict(met)} | {figure} |")
        if met is False:
            missed.append((t, figure))
    add("")
    n_met = sum(1 for t in TARGETS if t.result(rows, memory)[0])
    n_measured = sum(1 for t in TARGETS if t.result(rows, memory)[0] is not None)
    add(f"{n_met} of {n_measured} measured targets met.")
    add("")
    if failed:
        add("**Failed tests (left out of the tables):** " + ", ".join(f"`{f}`" for f in failed))
        add("")

    # tables
    add("## Results per workload")
    add("")
    add("Median and interquartile range over the rounds; `× floor` is the row's median over "
        "the workload's floor (named in the heading); `× dualad` is the row's median over "
        "dualad's judged row (above 1: dualad is faster). Roles: floor, dualad, peer (eager), "
        "peer-jit (tf.function / jax.jit).")
    add("")
    for w in ORDER:
        if w not in rows and w not in skipped:
            continue
        data = rows.get(w, {})
        any_row = next(iter(data.values()), None)
        title = any_row["title"] if any_row else w
        floor_name = any_row["floor"] if any_row else "?"
        floor = med(rows, w, floor_name)
        me = med(rows, w, MAIN[w])
        per = None
        if any_row and any_row.get("iterations"):
            per = ("per iteration", any_row["iterations"])
        elif any_row and any_row.get("ops"):
            per = ("per op", any_row["ops"])
        add(f"### {title}")
        add("")
        add(f"Floor: `{floor_name}`; judged dualad row: `{MAIN[w]}`.")
        add("")
        head = "| row | role | median | IQR | rounds |" + (f" {per[0]} |" if per else "") + \
            " × floor | × dualad |"
        add(head)
        add("|" + " --- |" * (head.count("|") - 1))
        for r in sorted(data.values(), key=lambda r: r["median"]):
            name = f"**{r['impl']}**" if r["impl"] == MAIN[w] else r["impl"]
            cells = [name, r["role"], fmt_time(r["median"]), fmt_time(r["iqr"]),
                     str(r["rounds"])]
            if per:
                cells.append(fmt_time(r["median"] / per[1]))
            cells += [fmt_ratio(r["median"] / floor) if floor else "–",
                      fmt_ratio(r["median"] / me) if me else "–"]
            add("| " + " | ".join(cells) + " |")
        add("")
        notes = [(r["impl"], r["note"]) for r in data.values() if r.get("note")]
        for impl, note in notes:
            add(f"- `{impl}`: {note}")
        for impl, reason in skipped.get(w, []):
            add(f"- `{impl}` skipped: {reason}")
        if notes or skipped.get(w):
            add("")

    # W9 memory
    add("## W9 memory: one gradient in a fresh process")
    add("")
    add("Resident memory over the baseline before the call (`/proc/self/status`, freed memory "
        "handed back with `malloc_trim`): peak during the forward pass and the gradient; still "
        "held after the gradient while the user holds the tape and the output; after dropping "
        "them.")
    add("")
    add("| runner | ops | time | peak | peak per op | held after gradient | after release |")
    add("| --- | --- | --- | --- | --- | --- | --- |")
    for p in sorted(memory, key=lambda p: (p["runner"], p["length"])):
        if "peak" not in p:
            add(f"| {p['runner']} | {p['length']:,} | skipped: {p['skipped']} | | | | |")
            continue
        add(f"| {p['runner']} | {p['length']:,} | {fmt_time(p['seconds'])} | "
            f"{p['peak'] / 2**20:.1f} MiB | {p['peak'] / p['length']:.0f} B | "
            f"{p['after_gradient'] / 2**20:.1f} MiB | {p['after_release'] / 2**20:.1f} MiB |")
    add("")

    # plots
    add("## Plots")
    add("")
    captions = {"per_op_overhead.png": "Per-op cost of the scalar chains (W3, W9)",
                "ratio_to_floor.png": "Ratio to the floor per workload, with the targets",
                "scaling_w2.png": "W2 against n",
                "scaling_w9.png": "W9 time and peak memory against chain length"}
    for png in plots(out, rows, memory):
        add(f"![{captions[png]}]({png})")
        add("")

    # missed targets
    add("## Targets missed, and what limits them")
    add("")
    if not missed:
        add("None.")
    else:
        for t, figure in missed:
            add(f"- {t.workload}: {t.text} — {figure}")
        add("")
        if profile:
            add("cProfile of dualad's judged row for each workload with a missed ratio target "
                "(sorted by own time; the compiled core's functions show up as the Python "
                "calls that enter it).")
            add("")
            seen = set()
            for t, _ in missed:
                w = t.workload
                if w in seen or w == "W9" or MAIN.get(w) not in rows.get(w, {}):
                    continue
                seen.add(w)
                try:
                    calls, body = profile_row(w, MAIN[w])
                except Exception as e:   # a profile is an aid; the report stands without it
                    add(f"### {w}[{MAIN[w]}]: profile failed ({type(e).__name__}: {e})")
                    add("")
                    continue
                add(f"### {w}[{MAIN[w]}], {calls} calls")
                add("")
                add("```")
                add(body)
                add("```")
                add("")
    path = os.path.join(out, "REPORT.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, missed


def strip_round_data(path):
    """pytest-benchmark's JSON keeps every round's time (~100 MB for a full run): keep the
    statistics only, so that the committed report stays small."""
    with open(path) as f:
        results = json.load(f)
    for b in results["benchmarks"]:
        b["stats"].pop("data", None)
    with open(path, "w") as f:
        json.dump(results, f, indent=1)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="CI: every benchmark once, report to a temporary directory")
    ap.add_argument("--out", default=None,
                    help="report directory (default bench/report, or a temporary one with "
                         "--quick)")
    ap.add_argument("--no-run", action="store_true",
                    help="only rewrite the report from the results in --out")
    ap.add_argument("--no-profile", action="store_true",
                    help="do not profile dualad's rows that miss a target")
    ap.add_argument("-k", dest="keyword", default=None, help="pytest -k expression")
    args = ap.parse_args(argv)
    out = args.out or (tempfile.mkdtemp(prefix="dualad-bench-") if args.quick
                       else os.path.join(HERE, "report"))
    os.makedirs(out, exist_ok=True)
    sys.path.insert(0, ROOT)
    status, elapsed = 0, None
    if not args.no_run:
        global RUN_COMMIT
        RUN_COMMIT = git_commit()
        t0 = time.perf_counter()
        status = run_pytest(out, args.quick, args.keyword)
        elapsed = time.perf_counter() - t0
        if status not in (0, 1):
            print(f"pytest exited with {status}: no report", file=sys.stderr)
            return status
        strip_round_data(os.path.join(out, "results.json"))
    path, missed = write_report(out, args.quick, elapsed,
                                profile=not (args.quick or args.no_profile))
    print(f"\nreport: {path}" + (f" ({len(missed)} target(s) missed)" if not args.quick else ""))
    return status


if __name__ == "__main__":
    sys.exit(main())
