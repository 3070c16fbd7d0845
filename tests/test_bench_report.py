"""The benchmark report's code (bench/report/), on small fake pytest-benchmark results: no
benchmark runs. Verdicts come from the targets the workload modules declare; the expected
figures are computed from those declarations, not copied from them."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import measurement, plots, render, summary, targets  # noqa: E402
from bench.report.units import fmt_ratio, fmt_time  # noqa: E402
import dualad  # noqa: E402

SUITES = targets.load_workloads()
TARGETS = targets.collect()


def target(workload, kind):
    (t,) = [t for t in TARGETS if t.workload == workload and type(t) is kind]
    return t


def bench_entry(workload, impl, median, role=None, **info):
    suite = SUITES[workload]
    role = role or suite.impls[impl].role
    return dict(fullname=f"bench/fake.py::test[{workload}-{impl}]", group=suite.title,
                extra_info=dict(workload=workload, impl=impl, role=role, floor=suite.floor,
                                note=suite.impls[impl].note if impl in suite.impls else "",
                                **suite.info, **info),
                stats=dict(median=median, iqr=median / 10, rounds=7, min=median, mean=median))


def fake_run(entries, outcomes=None, skipped=None, memory=()):
    results = dict(benchmarks=entries)
    extra = dict(rows={e["fullname"]: dict(e["extra_info"]) for e in entries},
                 outcomes=dict(outcomes or {}), skipped={}, w9_memory=list(memory))
    for workload, impl, reason in skipped or []:
        nodeid = f"bench/fake.py::test[{workload}-{impl}]"
        extra["rows"][nodeid] = dict(workload=workload, impl=impl, role="peer")
        extra["skipped"][nodeid] = reason
    return results, extra


def summarise(results, extra):
    return summary.summarise(results, extra, SUITES, TARGETS)


def verdict_of(data, workload, text):
    (v,) = [v for v in data["targets"] if v["workload"] == workload and v["text"] == text]
    return v


# W3's target against its floor (W3 also judges forward mode against its gradient)
(W3,) = [t for t in TARGETS if t.workload == "W3" and type(t) is targets.RatioAtMost
         and t.of_judged_to_floor]
FLOOR = 5e-6


def w3_run(ratio, peer_ratio=None):
    entries = [bench_entry("W3", W3.reference, FLOOR),
               bench_entry("W3", W3.impl, FLOOR * ratio),
               bench_entry("W3", "floor-python-gradient", FLOOR * 2)]
    if peer_ratio is not None:
        entries.append(bench_entry("W3", "autograd", FLOOR * ratio * peer_ratio))
    return fake_run(entries, skipped=[("W3", "torch", "torch is not installed")])


def test_ratio_target_met_at_the_limit_and_missed_past_it():
    at = verdict_of(summarise(*w3_run(W3.limit)), "W3", W3.text)
    past = verdict_of(summarise(*w3_run(W3.limit * 1.01)), "W3", W3.text)
    assert at["met"] is True and past["met"] is False
    assert past["figure"] == (f"{fmt_ratio(W3.limit * 1.01)} ({fmt_time(FLOOR * W3.limit * 1.01)}"
                              f" / {fmt_time(FLOOR)})")


def test_a_zero_or_nan_time_is_not_measured_rather_than_a_division_error():
    for bad in (0.0, float("nan")):
        results, extra = w3_run(1.0)
        results["benchmarks"][0]["stats"]["median"] = bad       # the floor's
        v = verdict_of(summarise(results, extra), "W3", W3.text)
        assert v["met"] is None and "no positive time" in v["figure"]


def test_a_row_whose_result_check_failed_is_left_out_and_its_target_not_measured():
    results, extra = w3_run(W3.limit / 2)
    judged = results["benchmarks"][1]["fullname"]
    extra["outcomes"][judged] = "failed"
    data = summarise(results, extra)
    v = verdict_of(data, "W3", W3.text)
    assert v["met"] is None and "no result" in v["figure"]
    assert data["failed"] == [judged]
    (table,) = data["workloads"]
    assert W3.impl not in [r["impl"] for r in table["rows"]]


def test_faster_than_peers_names_the_faster_peer():
    peers = target("W3", targets.FasterThanPeers)
    slower_peer = verdict_of(summarise(*w3_run(1.0, peer_ratio=3.0)), "W3", peers.text)
    faster_peer = verdict_of(summarise(*w3_run(1.0, peer_ratio=0.5)), "W3", peers.text)
    no_peer = verdict_of(summarise(*w3_run(1.0)), "W3", peers.text)
    assert slower_peer["met"] is True
    assert faster_peer["met"] is False and "faster peer(s): autograd" in faster_peer["figure"]
    assert no_peer["met"] is None


def test_per_iteration_and_speedup_targets_use_the_declared_iteration_counts():
    per_iteration = target("W1c", targets.PerIterationAtMost)
    speedup = target("W1c", targets.SpeedupPerIterationAtLeast)
    steps_eager, steps_compiled = SUITES["W1"].info["iterations"], SUITES["W1c"].info["iterations"]
    compiled = per_iteration.limit * 1e-6 * steps_compiled           # exactly at the limit
    eager = per_iteration.limit * 1e-6 * (speedup.limit / 2) * steps_eager  # half the speedup
    data = summarise(*fake_run([bench_entry("W1", "dualad-eager", eager),
                                bench_entry("W1c", "dualad-compiled", compiled)]))
    assert verdict_of(data, "W1c", per_iteration.text)["met"] is True
    assert verdict_of(data, "W1c", speedup.text)["met"] is False


def probes(bytes_per_op):
    return [dict(runner="dualad-gradient", length=n, seconds=n * 1e-6, peak=n * b,
                 after_gradient=n * b * 0.01, after_release=0)
            for n, b in zip((10_000, 100_000, 1_000_000), bytes_per_op)]


def test_memory_targets():
    linear, released = target("W9", targets.MemoryLinear), target("W9", targets.MemoryReleased)
    flat = summarise(*fake_run([], memory=probes([400, 280, 280])))
    growing = summarise(*fake_run([], memory=probes([280, 280, 280 * linear.limit * 1.1])))
    one = summarise(*fake_run([], memory=probes([280])))
    assert verdict_of(flat, "W9", linear.text)["met"] is True   # below 1e5 ops is not judged
    assert verdict_of(flat, "W9", released.text)["met"] is True
    assert verdict_of(growing, "W9", linear.text)["met"] is False
    assert verdict_of(one, "W9", linear.text)["met"] is None


ENV = dict(cpu="test CPU", cores=2, platform="test", python="3", implementation="CPython",
           date="today", commit="abc1234", loadavg=[0.0, 0.0, 0.0],
           tools=[("numpy", "1")], peers=[("torch", None)])


def test_summary_is_plain_data_and_renders_the_tables():
    ratio = W3.limit / 2
    results, extra = w3_run(ratio, peer_ratio=3.0)
    by_median = [e["extra_info"]["impl"] for e in
                 sorted(results["benchmarks"], key=lambda e: e["stats"]["median"])]
    data = summarise(results, extra)
    assert json.loads(json.dumps(data)) == data
    text = render.render(data, ENV, ([], "no plots in this test"), profiles=None)
    assert (f"| W3 | {W3.text} | **MET** | {fmt_ratio(ratio)} ({fmt_time(FLOOR * ratio)} / "
            f"{fmt_time(FLOOR)}) |") in text
    lines = text.splitlines()
    head = lines.index("| row | role | median | IQR | rounds | per op | × floor | × dualad |")
    body = [line.split(" | ")[0].strip("| *") for line in lines[head + 2:head + 6]]
    assert body == by_median
    assert f"| **{W3.impl}** | dualad |" in text
    ops = SUITES["W3"].info["ops"]
    assert (f"| {W3.reference} | floor | {fmt_time(FLOOR)} | {fmt_time(FLOOR / 10)} | 7 | "
            f"{fmt_time(FLOOR / ops)} | {fmt_ratio(1.0)} | {fmt_ratio(1 / ratio)} |") in text
    assert "- `torch` skipped: torch is not installed" in text
    assert "Plots skipped: no plots in this test." in text
    assert f"{data['met']} of {data['measured']} measured targets met." in text


def test_each_target_is_stated_once():
    keys = [(t.workload, t.text) for t in TARGETS]
    assert len(keys) == len(set(keys))
    assert set(t.workload for t in TARGETS) <= set(SUITES)
    # a threshold is a number in its declaration only: the texts are filled from it, and no
    # "≤ N×" / "<= Nx" / "within N×" restates it in the README, the report code or a docstring
    sources = ([REPO / "bench" / "README.md"] + sorted((REPO / "bench" / "report").glob("*.py"))
               + sorted((REPO / "bench").glob("test_w*.py")))
    for t in TARGETS:
        if isinstance(t, targets.RatioAtMost):
            assert "{limit}" in t.template, t.text
        if t.limit is None:
            continue
        restated = re.compile(rf"(≤|≥|<=|>=|within)\s*{re.escape(str(t.limit))}\s*(×|x\b|µs|us\b)")
        for path in sources:
            found = restated.search(path.read_text())
            assert not found, f"{t.workload}: {found.group(0)!r} restated in {path.name}"
    # the ratio plot's limits are the declared ones
    data = summarise(*w3_run(1.0))
    assert data["ratio_limits"]["W3"] == W3.limit


def test_plots_from_the_summary(tmp_path):
    pytest.importorskip("matplotlib")
    data = summarise(*w3_run(2.0, peer_ratio=3.0))
    written, skipped = plots.draw(str(tmp_path), data)
    assert skipped is None
    assert sorted(name for name, _ in written) == sorted(plots.CAPTIONS)
    assert all((tmp_path / name).stat().st_size > 0 for name, _ in written)


def plot_data():
    """W2 at two sizes with dualad, torch (eager and compiled) and floors; W9 probes of which
    one measured nothing (peak and time 0)."""
    entries = []
    for n, scale in ((4, 1e-6), (1000, 1e-5)):
        w = f"W2 n={n}"
        entries += [bench_entry(w, "floor-numpy-forward", scale),
                    bench_entry(w, "floor-numpy-gradient", 2 * scale),
                    bench_entry(w, "dualad-gradient", 3 * scale),
                    bench_entry(w, "torch", 4 * scale, role="peer"),
                    bench_entry(w, "jax-jit", 5 * scale)]
    memory = [dict(runner=runner, length=length, seconds=seconds, peak=peak,
                   after_gradient=0)
              for runner in ("dualad-eager", "torch")
              for length, seconds, peak in ((10_000, 0.0, 0), (100_000, 0.1, 5 * 2**20),
                                            (1_000_000, 1.0, 50 * 2**20))]
    return summarise(*fake_run(entries, memory=memory))


def test_plots_give_each_library_one_colour_and_draw_no_zero_on_a_log_axis():
    plt = pytest.importorskip("matplotlib.pyplot")
    data = plot_data()
    tables = {t["workload"]: t for t in data["workloads"]}
    fig = plots.scaling_w2(plt, tables, data)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert {"dualad-gradient", "torch", "jax-jit", "floor-numpy-gradient"} <= set(lines)
    for label, line in lines.items():
        assert line.get_color() == plots.LIBRARY_COLORS[plots.library(label)], label
    plt.close(fig)
    colours = {plots.color(impl) for impl in ("dualad-eager", "torch", "jax-eager",
                                               "tensorflow", "autograd", "micrograd",
                                               "floor-numpy")}
    assert len(colours) == 7                              # libraries told apart
    assert plots.color("jax-jit") == plots.color("jax-eager")   # modes are markers

    fig = plots.scaling_w9(plt, tables, data)
    for ax in fig.axes:
        for line in ax.get_lines():
            xs, ys = line.get_data()
            assert list(xs) == [100_000, 1_000_000], line.get_label()   # the zero probe left out
            assert min(ys) > 0.05
            assert line.get_color() == plots.color(line.get_label())
    plt.close(fig)


def test_ratio_plot_names_libraries_in_full_in_a_legend_beside_the_axes():
    plt = pytest.importorskip("matplotlib.pyplot")
    data = plot_data()
    tables = {t["workload"]: t for t in data["workloads"]}
    fig = plots.ratio_to_floor(plt, tables, data)
    (ax,) = fig.axes
    assert len(ax.texts) == 0                 # no per-point labels to truncate or overlap
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "torch (eager)" in labels and "jax (jit/function)" in labels
    assert len(labels) == len(set(labels))
    plt.close(fig)


def run_cli(out, *args, block_matplotlib=False):
    paths = [str(REPO)]
    if block_matplotlib:          # a stand-in package that fails to import, as when absent
        stub = out.parent / "no_matplotlib" / "matplotlib"
        stub.mkdir(parents=True)
        (stub / "__init__.py").write_text("raise ImportError('matplotlib blocked by the test')\n")
        paths.insert(0, str(stub.parent))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    return subprocess.run([sys.executable, "-m", "bench", "--no-run", "--no-profile",
                           "--out", str(out), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def test_report_without_matplotlib_says_plots_were_skipped(tmp_path):
    """It used to end in ModuleNotFoundError before writing REPORT.md."""
    out = tmp_path / "report"
    out.mkdir()
    results, extra = w3_run(2.0)
    (out / "results.json").write_text(json.dumps(results))
    (out / "extra.json").write_text(json.dumps(extra))
    done = run_cli(out, block_matplotlib=True)
    assert done.returncode == 0, done.stderr[-2000:]
    text = (out / "REPORT.md").read_text()
    assert "Plots skipped: matplotlib is not installed" in text
    assert not list(out.glob("*.png"))


def test_no_run_without_results_is_a_clear_error(tmp_path):
    done = run_cli(tmp_path)
    assert done.returncode == 2
    assert "no benchmark results at" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(measurement.NoResults, match="no benchmark results"):
        measurement.load(str(tmp_path))


@pytest.mark.parametrize("argv", [["-k", "w3"], ["--quick"], ["--quick", "-k", "w3"]])
def test_partial_runs_never_write_the_committed_report(argv, monkeypatch):
    import bench.__main__ as cli
    from bench.report import HERE as committed, measurement

    used = []

    def fake_run(out, quick, keyword):
        used.append(out)
        return 5   # "no tests": the CLI stops before writing a report

    monkeypatch.setattr(measurement, "run_pytest", fake_run)
    assert cli.main(argv) == 5
    assert used and os.path.abspath(used[0]) != os.path.abspath(committed)


def test_no_run_keeps_the_runs_provenance(tmp_path):
    """--no-run used to stamp today's machine, date, commit and load onto old results (and
    profile again): it re-renders with what the run saved."""
    out = tmp_path / "report"
    out.mkdir()
    results, extra = w3_run(2.0)
    (out / "results.json").write_text(json.dumps(results))
    (out / "extra.json").write_text(json.dumps(extra))
    env = dict(measurement.environment("0123abcd"), date="2001-02-03 04:05 UTC",
               cpu="The Run's CPU", loadavg=[7.5, 7.25, 7.0])
    measurement.save_provenance(str(out), env, False, 123.0, None)
    done = run_cli(out)
    assert done.returncode == 0, done.stderr[-2000:]
    text = (out / "REPORT.md").read_text()
    for recorded in ("2001-02-03 04:05 UTC", "0123abcd", "The Run's CPU", "7.50, 7.25, 7.00",
                     "in 2.0 min"):
        assert recorded in text, recorded


def test_no_run_on_results_without_provenance_uses_what_pytest_benchmark_recorded(tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    results, extra = w3_run(2.0)
    results.update(datetime="2001-02-03T04:05:00+00:00", commit_info={"id": "feedbeef"},
                   machine_info={"cpu": {"brand_raw": "Old CPU", "count": 3},
                                 "python_version": "3.11.0", "python_implementation": "CPython"})
    (out / "results.json").write_text(json.dumps(results))
    (out / "extra.json").write_text(json.dumps(extra))
    done = run_cli(out)
    assert done.returncode == 0, done.stderr[-2000:]
    text = (out / "REPORT.md").read_text()
    for recorded in ("2001-02-03 04:05 UTC", "feedbeef", "Old CPU", "not recorded"):
        assert recorded in text, recorded


def test_the_report_and_its_guide_speak_of_workloads_not_issue_numbers():
    # issue numbers mean nothing to a reader of the report
    texts = [t.text for t in targets.collect()]
    texts += [p.read_text() for p in (REPO / "bench").rglob("*.py")]
    texts.append((REPO / "bench" / "README.md").read_text())
    for text in texts:
        assert not re.search(r"\bissue \d", text, re.IGNORECASE), text[:200]


def test_the_report_states_dualads_kernel_thread_count():
    results, extra = w3_run(2.0)
    data = summarise(results, extra)
    env = dict(measurement.environment("abc1234"), date="today", loadavg=[0.0, 0.0, 0.0])
    assert env["kernel_threads"] == dict(threads=dualad.get_num_threads(),
                                         openmp=dualad._core.has_openmp())
    env["kernel_threads"] = dict(threads=7, openmp=True)
    text = render.render(data, env, ([], "no plots in this test"), profiles=None)
    assert "- dualad's elementwise kernels on large float arrays: 7 thread(s) (OpenMP;" in text
    # results saved before the count was recorded say so
    text = render.render(data, ENV, ([], "no plots in this test"), profiles=None)
    assert "- dualad's kernel threads: not recorded with these results" in text
