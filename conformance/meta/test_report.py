"""The conformance report and the known-deviation mechanism, end to end on small runs.

A known deviation declared by an adapter must show up as "known deviation"
with its reason (never as a pass), and a declaration the library no longer
deserves must fail (strict xfail). The aggregation of an identity's tests
into one cell is checked on synthetic records.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from conformance.report import aggregate, cell_text
from conformance.meta.planted._base import PlantedAdapter
from conformance.meta.planted.wrong_sin import Adapter as WrongSin

REPO = Path(__file__).resolve().parents[2]
MODULE = "conformance.meta.test_report"  # the adapters below, as the subprocesses import them
SIN = "test_basics.py::test_op_gradient_matches_finite_differences[sin]"
COS = "test_basics.py::test_op_gradient_matches_finite_differences[cos]"


class DeclaredWrongSin(WrongSin):
    """sin's derivative is wrong, and the adapter says so."""

    known_deviations = {SIN: "d sin/dx is 1.001 cos (declared)"}


class OutdatedDeclaration(PlantedAdapter):
    """A genuine dualad that claims a deviation it does not have."""

    bug = "none"
    known_deviations = {COS: "claimed but not true"}


def env():
    variables = dict(os.environ)
    variables.pop("CONFORMANCE_IMPL", None)
    variables.pop("CONFORMANCE_PLANTED_BASE", None)
    return variables


def test_report_shows_a_declared_deviation_as_a_known_failure():
    with tempfile.TemporaryDirectory() as tmp:
        completed = subprocess.run(
            [sys.executable, "-m", "conformance.report", f"--impl={MODULE}:DeclaredWrongSin",
             "--identities=GT-OPS-01,GT-SUMSQ-01", "--seed=1", f"--out={tmp}"],
            cwd=REPO, env=env(), capture_output=True, text=True, timeout=300,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
        payload = json.loads((Path(tmp) / "results.json").read_text())
        report = (Path(tmp) / "REPORT.md").read_text()
    (run,) = payload["runs"].values()
    outcomes = {r["nodeid"].rsplit("/", 1)[-1]: r for r in run["results"]}
    assert outcomes[SIN]["outcome"] == "xfailed"
    assert "1.001 cos (declared)" in outcomes[SIN]["reason"]
    assert outcomes[COS]["outcome"] == "passed"
    (cells,) = payload["table"].values()
    assert cells["GT-OPS-01"]["status"] == "known deviation"
    assert cells["GT-SUMSQ-01"]["status"] == "pass"
    assert cells["GT-FLOW-01"]["status"] == "not run"
    assert "| GT-OPS-01 |" in report and "fail (known: d sin/dx is 1.001 cos)" in report
    assert "d sin/dx is 1.001 cos (declared)" in report


def test_a_declared_deviation_that_passes_is_a_failure():
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.json"
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "conformance", f"--impl={MODULE}:OutdatedDeclaration", "-q",
             "-p", "no:cacheprovider", "--identities=GT-OPS-01", f"--conformance-json={results}",
             "-k", "cos", "--hypothesis-seed=1"],
            cwd=REPO, env=env(), capture_output=True, text=True, timeout=300,
        )
        data = json.loads(results.read_text())
    assert completed.returncode == 1, completed.stdout
    (record,) = [r for r in data["results"] if r["nodeid"].endswith("[cos]")]
    assert record["outcome"] == "failed"
    assert "XPASS(strict)" in record["message"] and "claimed but not true" in record["message"]
    assert aggregate([record])["status"] == "fail"


def record(outcome, reason=""):
    return {"nodeid": f"conformance/test_x.py::test_{outcome}", "identities": ["X"], "outcome": outcome, "reason": reason}


def test_an_identity_cell_fails_if_any_of_its_tests_fails():
    assert aggregate([record("passed"), record("failed"), record("xfailed", "known deviation: r")])["status"] == "fail"
    assert aggregate([record("passed"), record("xfailed", "known deviation: r")])["status"] == "known deviation"
    assert aggregate([record("passed"), record("skipped", "lib lacks sgd: why")])["status"] == "pass"
    skipped = aggregate([record("skipped", "lib lacks sgd: why")])
    assert skipped["status"] == "skipped" and skipped["reasons"] == ["lib lacks sgd: why"]
    assert aggregate([])["status"] == "not run"


def test_cell_texts_name_their_reasons():
    deviation = aggregate([record("xfailed", "known deviation: compile drops updates")])
    assert cell_text(deviation, short=False) == "fail (known: compile drops updates)"
    partial = aggregate([record("passed"), record("skipped", "lib lacks variables: none")])
    assert cell_text(partial, short=True) == "pass (1/2, 1 skipped)"
    assert cell_text(aggregate([record("failed")]), short=True).startswith("**FAIL**")


def test_a_partial_run_never_replaces_the_committed_report(monkeypatch, capsys):
    import conformance.report as report

    written = []
    monkeypatch.setattr(report, "run_impl", lambda impl, *a: {
        "impl": impl, "summary": "1 passed", "seconds": 0.0, "results": []})
    monkeypatch.setattr(report, "installed", lambda impl: True)
    monkeypatch.setattr(report, "write", lambda out, env, runs: written.append(out) or "")
    for argv in (["--impl", "dualad"], ["--identities", "GT-SUMSQ-01"]):
        assert report.main(argv) == 0
        assert written[-1] != report.HERE and written[-1].is_dir()
    assert report.main([]) == 0           # every implementation, every identity
    assert written[-1] == report.HERE
    monkeypatch.setattr(report, "installed", lambda impl: impl != "jax")
    assert report.main([]) == 0           # one peer missing: its column would be lost
    assert written[-1] != report.HERE
