"""The benchmark report, written by `python -m bench` (bench/__main__.py): measure, summarise,
then render.

- measurement.py: runs `pytest bench` with pytest-benchmark's JSON output, reads the raw
  results back (with the W9 memory probes), profiles dualad's rows, describes the machine;
- targets.py: the kinds of performance target; each workload module declares its own
  (`TARGETS`, next to its Suite), and `collect()` gathers them;
- summary.py: medians, IQR, ratios to the floor and to dualad, target verdicts, as plain data;
- render.py: REPORT.md from the summary;
- plots.py: the PNG plots from the summary (skipped, with a note, without matplotlib).

This directory also holds the committed report of a full run: REPORT.md, results.json
(pytest-benchmark's JSON, round data stripped), extra.json, provenance.json (the run's
machine, date, commit, load and profiles) and the PNGs.
"""
import os

from bench.report import measurement, plots, render, summary, targets

HERE = os.path.dirname(os.path.abspath(__file__))


def build_summary(out):
    """The summary of the run whose raw results are in `out`."""
    results, extra = measurement.load(out)
    return summary.summarise(results, extra, targets.load_workloads(), targets.collect())


def write_report(out, quick=False, elapsed=None, profile=True, commit=None, rerender=False):
    """Summarise the run in `out`, then write REPORT.md (and the plots) there. A new run's
    provenance (machine, date, commit, load, profiles) is saved with it; `rerender` renders
    again from the saved results and provenance, measuring nothing. Returns (REPORT.md's path,
    the summary)."""
    data = build_summary(out)
    if rerender:
        saved = measurement.load_provenance(out)
        env, quick, elapsed, profiles = (saved["environment"], saved["quick"], saved["elapsed"],
                                         saved["profiles"])
    else:
        env = measurement.environment(commit)
        profiles = measurement.profile_missed(data) if profile and data["missed"] else None
        measurement.save_provenance(out, env, quick, elapsed, profiles)
    drawn = plots.draw(out, data)
    text = render.render(data, env, drawn, profiles, quick, elapsed)
    path = os.path.join(out, "REPORT.md")
    with open(path, "w") as f:
        f.write(text)
    return path, data
