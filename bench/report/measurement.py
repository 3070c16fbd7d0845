"""Measurement: run the suites under pytest-benchmark, read back its raw results (and what
bench/conftest.py writes next to them: row roles, skip reasons, the W9 memory probes taken by
test_w9_memory in fresh processes), profile dualad's rows, and describe the machine."""
import cProfile
import datetime
import importlib.metadata
import io
import json
import os
import platform
import pstats
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

PEER_LIBS = [("tensorflow", ["tensorflow", "tensorflow-cpu"]), ("keras", ["keras"]),
             ("torch", ["torch"]), ("jax", ["jax"]), ("jaxlib", ["jaxlib"]),
             ("autograd", ["autograd"]), ("micrograd", ["micrograd"])]
TOOLS = [("dualad", ["dualad"]), ("numpy", ["numpy"]), ("Cython", ["Cython"]),
         ("pytest", ["pytest"]), ("pytest-benchmark", ["pytest-benchmark"]),
         ("matplotlib", ["matplotlib"])]

#: workloads whose judged row is not profiled: one W9 gradient takes about a second
UNPROFILED = {"W9"}

class NoResults(Exception):
    """The report directory holds no benchmark results to summarise."""


EMPTY_EXTRA = {"rows": {}, "outcomes": {}, "skipped": {}, "w9_memory": []}


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


def strip_round_data(path):
    """pytest-benchmark's JSON keeps every round's time (~100 MB for a full run): keep the
    statistics only, so that the committed report stays small."""
    with open(path) as f:
        results = json.load(f)
    for b in results["benchmarks"]:
        b["stats"].pop("data", None)
    with open(path, "w") as f:
        json.dump(results, f, indent=1)


# ---------------------------------------------------------------------------------------------
# loading

def load(out):
    """The raw results of a run in `out`: (pytest-benchmark's JSON, the extra JSON)."""
    path = os.path.join(out, "results.json")
    if not os.path.exists(path):
        raise NoResults(f"no benchmark results at {path}: run `python -m bench` "
                                "(without --no-run) first, or pass the right --out")
    with open(path) as f:
        results = json.load(f)
    try:
        with open(os.path.join(out, "extra.json")) as f:
            extra = json.load(f)
    except FileNotFoundError:
        extra = EMPTY_EXTRA
    return results, extra


# ---------------------------------------------------------------------------------------------
# profiles of dualad's rows

def profile_row(workload, impl, seconds=0.6, top=12):
    """cProfile of `seconds` worth of calls of one row: (calls, the stats table's text)."""
    from bench.report.targets import load_workloads
    fn = load_workloads()[workload].callable(impl)
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
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    lines = buf.getvalue().splitlines()
    start = next((i for i, l in enumerate(lines) if l.strip().startswith("ncalls")), 0)
    body = "\n".join(l.replace(ROOT + "/", "").replace(sys.prefix, "<python>")
                     for l in lines[start:] if l.strip())
    return calls, body


def profile_missed(summary):
    """Profiles of the judged row of each workload with a missed target (except
    UNPROFILED): [{workload, impl, calls, body} or {workload, impl, error}]."""
    profiles = []
    for workload, impl in summary["to_profile"]:
        if workload in UNPROFILED:
            continue
        try:
            calls, body = profile_row(workload, impl)
        except Exception as e:   # a profile is an aid; the report stands without it
            profiles.append(dict(workload=workload, impl=impl,
                                 error=f"{type(e).__name__}: {e}"))
            continue
        profiles.append(dict(workload=workload, impl=impl, calls=calls, body=body))
    return profiles


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


def environment(commit=None):
    """The machine, the versions and the date; `commit` is the one checked out when the run
    started (others may commit meanwhile), else the current one."""
    return dict(cpu=cpu_model(), cores=os.cpu_count(), platform=platform.platform(),
                python=platform.python_version(), implementation=platform.python_implementation(),
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                commit=commit or git_commit(), loadavg=list(os.getloadavg()),
                tools=[(name, version(d)) for name, d in TOOLS],
                peers=[(name, version(d)) for name, d in PEER_LIBS],
                kernel_threads=kernel_threads())


def kernel_threads():
    """dualad's thread count for its large elementwise kernels, and whether it has OpenMP."""
    import dualad
    return dict(threads=dualad.get_num_threads(), openmp=dualad._core.has_openmp())


PROVENANCE = "provenance.json"


def save_provenance(out, env, quick, elapsed, profiles):
    """What describes the run itself (machine, versions, date, commit, load, duration, the
    profiles taken after it), so that re-rendering the report later keeps it."""
    with open(os.path.join(out, PROVENANCE), "w") as f:
        json.dump(dict(environment=env, quick=quick, elapsed=elapsed, profiles=profiles), f,
                  indent=1)


def load_provenance(out):
    """The provenance a run saved; for results older than provenance.json, what
    pytest-benchmark recorded of the run (date, commit, CPU, Python), the rest marked as not
    recorded."""
    path = os.path.join(out, PROVENANCE)
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    with open(os.path.join(out, "results.json")) as f:
        raw = json.load(f)
    machine = raw.get("machine_info", {})
    cpu = machine.get("cpu", {})
    when = raw.get("datetime")
    when = ("not recorded" if when is None else datetime.datetime.fromisoformat(when)
            .astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    env = dict(cpu=cpu.get("brand_raw", "not recorded"), cores=cpu.get("count", "?"),
               platform=f"{machine.get('system', '?')} {machine.get('release', '')}".strip(),
               python=machine.get("python_version", "?"),
               implementation=machine.get("python_implementation", "?"),
               date=when,
               commit=raw.get("commit_info", {}).get("id"), loadavg=None, tools=[], peers=[])
    return dict(environment=env, quick=False, elapsed=None, profiles=None)
