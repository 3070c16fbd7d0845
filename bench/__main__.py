"""Run the benchmark suite and write the report:

    python -m bench            # the full run (~10-15 min on 2 cores), writes bench/report/
    python -m bench --quick    # CI: every benchmark once, report to a temporary directory
    python -m bench -k w3      # some workloads: report to a temporary directory too
    python -m bench --no-run   # re-render bench/report/ from its saved results and provenance

The run is `python -m pytest bench -v` with pytest-benchmark's JSON output: one progress line
per benchmark. The report (REPORT.md and PNG plots) gives per workload the median and IQR of
every row, its ratio to the workload's floor and to dualad, each performance target with
MET / MISSED and the figure, the W9 memory probes, cProfile profiles of dualad's rows that miss
a target, and the machine and library versions. The code is in bench/report/.
"""
import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="CI: every benchmark once, report to a temporary directory")
    ap.add_argument("--out", default=None,
                    help="report directory (default bench/report for a full run, a temporary "
                         "one with --quick or -k)")
    ap.add_argument("--no-run", action="store_true",
                    help="only rewrite the report from the results in --out")
    ap.add_argument("--no-profile", action="store_true",
                    help="do not profile dualad's rows that miss a target")
    ap.add_argument("--list-targets", action="store_true",
                    help="print every performance target and exit")
    ap.add_argument("-k", dest="keyword", default=None, help="pytest -k expression")
    args = ap.parse_args(argv)
    sys.path.insert(0, ROOT)
    from bench.report import HERE as REPORT_DIR, measurement, targets, write_report

    if args.list_targets:
        for t in targets.collect():
            print(f"{t.workload}: {t.text}")
        return 0
    # Only a full run writes the committed report: a quick or partial (-k) run would replace
    # it with partial results, so it goes to a temporary directory unless --out says where.
    partial = args.quick or args.keyword is not None
    out = args.out or (tempfile.mkdtemp(prefix="dualad-bench-") if partial and not args.no_run
                       else REPORT_DIR)
    os.makedirs(out, exist_ok=True)
    status, elapsed, commit = 0, None, None
    if not args.no_run:
        commit = measurement.git_commit()       # others may commit during the run
        t0 = time.perf_counter()
        status = measurement.run_pytest(out, args.quick, args.keyword)
        elapsed = time.perf_counter() - t0
        if status not in (0, 1):
            print(f"pytest exited with {status}: no report", file=sys.stderr)
            return status
        measurement.strip_round_data(os.path.join(out, "results.json"))
    try:
        path, summary = write_report(out, args.quick, elapsed,
                                     profile=not (args.quick or args.no_profile), commit=commit,
                                     rerender=args.no_run)
    except measurement.NoResults as e:
        print(f"python -m bench: {e}", file=sys.stderr)
        return 2
    n_missed = len(summary["missed"])
    print(f"\nreport: {path}" + (f" ({n_missed} target(s) missed)" if not args.quick else ""))
    return status


if __name__ == "__main__":
    sys.exit(main())
