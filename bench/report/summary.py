"""Summary: from a run's raw results to plain data (dicts, lists, numbers, strings) that the
renderer and the plots read: per workload its rows with median, IQR, rounds and the ratios to
the floor and to dualad's judged row; every target with its verdict and figure; the W9 memory
probes; the failed tests; the workloads to profile."""


def rows_by_workload(results, extra):
    """workload -> impl -> row (pytest-benchmark's statistics and the row's extra_info), rows
    whose result check failed left out; workload -> [(impl, skip reason)]; failed node ids."""
    outcomes = extra.get("outcomes", {})
    rows = {}
    for b in results["benchmarks"]:
        if outcomes.get(b["fullname"], "passed") != "passed":
            continue         # its result check failed: no row
        info, s = b["extra_info"], b["stats"]
        rows.setdefault(info["workload"], {})[info["impl"]] = dict(
            info, median=s["median"], iqr=s["iqr"], rounds=s["rounds"], min=s["min"],
            mean=s["mean"], title=b["group"])
    skipped = {}
    for nodeid, reason in extra.get("skipped", {}).items():
        row = extra.get("rows", {}).get(nodeid)
        if row:
            skipped.setdefault(row["workload"], []).append((row["impl"], reason))
    failed = [n for n, o in outcomes.items() if o == "failed"]
    return rows, skipped, failed


def workload_table(suite, data, skipped):
    """One workload's table: its rows in the order they ran, with the per-op / per-iteration
    time and the ratios to the floor and to the judged row."""
    any_row = next(iter(data.values()), None)
    floor_name = any_row["floor"] if any_row else "?"
    floor = data[floor_name]["median"] if floor_name in data else None
    judged = data[suite.judged]["median"] if suite.judged in data else None
    per = None
    if any_row and any_row.get("iterations"):
        per = ["per iteration", any_row["iterations"]]
    elif any_row and any_row.get("ops"):
        per = ["per op", any_row["ops"]]
    rows = []
    for r in data.values():
        rows.append(dict(r, judged=r["impl"] == suite.judged,
                         per_unit=r["median"] / per[1] if per else None,
                         x_floor=r["median"] / floor if floor else None,
                         x_dualad=r["median"] / judged if judged else None))
    return dict(workload=suite.workload, title=any_row["title"] if any_row else suite.workload,
                floor=floor_name, floor_median=floor, judged=suite.judged, per=per, rows=rows,
                skipped=[list(s) for s in skipped])


def summarise(results, extra, suites, targets):
    """The plain-data summary of one run. `suites`: workload id -> Suite, in report order;
    `targets`: bench.report.targets.collect()."""
    rows, skipped, failed = rows_by_workload(results, extra)
    memory = extra.get("w9_memory", [])
    workloads = [workload_table(s, rows.get(w, {}), skipped.get(w, []))
                 for w, s in suites.items() if w in rows or w in skipped]
    verdicts = []
    for t in targets:
        met, figure = t.result(rows, memory)
        verdicts.append(dict(workload=t.workload, text=t.text, met=met, figure=figure))
    to_profile = []
    for v in verdicts:
        w = v["workload"]
        judged = suites[w].judged
        if v["met"] is False and judged in rows.get(w, {}) and [w, judged] not in to_profile:
            to_profile.append([w, judged])
    # the ratio plot draws each judged-row-to-floor limit
    ratio_limits = {t.workload: t.limit for t in targets
                    if getattr(t, "of_judged_to_floor", False)}
    return dict(workloads=workloads, targets=verdicts,
                met=sum(1 for v in verdicts if v["met"]),
                measured=sum(1 for v in verdicts if v["met"] is not None),
                missed=[v for v in verdicts if v["met"] is False],
                failed=failed, memory=memory, ratio_limits=ratio_limits, to_profile=to_profile)
