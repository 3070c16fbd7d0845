"""The suite as an installed pytest plugin (the distribution packaging/dualad-conformance) and
under pytest-xdist.

`-p conformance.plugin` from an empty directory, with the checkout on PYTHONPATH, stands in for
the `pytest11` entry point of an installed dualad-conformance (the distribution is not installed
here; .ci/run installs it in a fresh virtual environment and runs the same from a temporary
directory). An empty directory has no pytest configuration, as another project's may not.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

import dualad
from conformance import adapters

REPO = Path(__file__).resolve().parents[2]
DISTRIBUTION = REPO / "packaging" / "dualad-conformance"
EXAMPLE = "conformance.examples.tinytape_adapter:Adapter"
AS_INSTALLED = ("-p", "no:conformance", "-p", "conformance.plugin", "--pyargs", "conformance")

needs_xdist = pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed")


def run_elsewhere(*arguments: str, python_code: str | None = None) -> subprocess.CompletedProcess:
    """pytest from an empty directory, importing the checkout's packages as installed ones;
    ``python_code`` (which must start pytest) replaces ``-m pytest``."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(adapters.ENV_VAR, None)
    start = ["-c", python_code] if python_code else ["-m", "pytest"]
    # the installed distribution has no meta/ (the suite's tests of itself)
    ignore_meta = f"--ignore={REPO / 'conformance' / 'meta'}"
    with tempfile.TemporaryDirectory() as empty:
        return subprocess.run(
            [sys.executable, *start, "-p", "no:cacheprovider", ignore_meta, *arguments],
            cwd=empty, env=env, capture_output=True, text=True, timeout=300,
        )


def outcomes(results_file: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    data = json.loads(results_file.read_text())
    return {r["nodeid"]: (r["outcome"], tuple(r["identities"])) for r in data["results"]}


def test_pyargs_run_from_another_directory_takes_impl_from_the_plugin():
    completed = run_elsewhere(*AS_INSTALLED, f"--impl={EXAMPLE}", "--identities=GT-SUMSQ-01")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert re.search(r"\b2 passed\b", completed.stdout), completed.stdout
    # the header names the implementation, although conftest.py loads only after it
    assert f"conformance implementation: {EXAMPLE} -> tinytape" in completed.stdout, completed.stdout


@pytest.fixture(scope="module")
def serial_example_run(tmp_path_factory):
    """The whole suite against the worked example, serially: its output and results file."""
    results = tmp_path_factory.mktemp("serial") / "results.json"
    completed = run_elsewhere(*AS_INSTALLED, f"--impl={EXAMPLE}", "-q", "-rs", f"--conformance-json={results}")
    return completed, results


def test_worked_example_passes_what_it_does_not_declare_unsupported(serial_example_run):
    completed, _ = serial_example_run
    assert completed.returncode == 0, completed.stdout + completed.stderr
    summary = completed.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    # every skip is one of tinytape's declared gaps with its reason, never a crash or a missing op
    skips = [line for line in completed.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skips
    for line in skips:
        assert "tinytape lacks" in line, line


def test_without_dualad_and_without_impl_the_error_is_one_line():
    # sys.modules[name] = None: importlib.util.find_spec says "not installed", import fails
    starter = "import sys, pytest; sys.modules['dualad'] = None; sys.exit(pytest.main(sys.argv[1:]))"
    completed = run_elsewhere(*AS_INSTALLED, "-q", python_code=starter)
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR, completed.stdout + completed.stderr
    errors = [line for line in (completed.stdout + completed.stderr).splitlines() if line.strip()]
    assert len(errors) == 1 and "dualad is not installed" in errors[0] and "--impl=" in errors[0], errors


def test_a_misspelled_impl_is_a_one_line_error_in_an_installed_run():
    completed = run_elsewhere(*AS_INSTALLED, "--impl=tinytap", "-q")
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR, completed.stdout + completed.stderr
    assert "INTERNALERROR" not in completed.stdout + completed.stderr
    assert "unknown implementation 'tinytap'" in completed.stderr


def test_plugin_and_checkout_conftest_together_register_the_options_once():
    # the situation of a checkout with dualad-conformance installed and its entry point allowed
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "conformance.plugin",
         "conformance/test_basics.py", "--impl=dualad", "--collect-only", "-q"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_distribution_does_not_move_the_checkouts_pytest_configuration():
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "conformance/test_basics.py", "--collect-only"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"rootdir: {REPO}" in completed.stdout, completed.stdout
    assert "configfile: pyproject.toml" in completed.stdout, completed.stdout


def test_the_entry_point_lives_in_its_own_distribution_only():
    own = tomllib.loads((DISTRIBUTION / "pyproject.toml").read_text())
    dualads = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert own["project"]["entry-points"]["pytest11"] == {"conformance": "conformance.plugin"}
    # in dualad's distribution it would add --impl to every pytest run of every project with
    # dualad installed, and have pytest rewrite the asserts of all of dualad's modules
    assert "pytest11" not in dualads["project"].get("entry-points", {})
    assert "dualad" not in own["project"]["dependencies"]   # only the default implementation
    assert own["project"]["version"] == dualad.__version__
    assert (DISTRIBUTION / "conformance").resolve() == REPO / "conformance"


def test_the_distribution_ships_every_package_of_the_suite_but_meta():
    packages = tomllib.loads((DISTRIBUTION / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    suite = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "conformance").rglob("__init__.py")
        if "meta" not in init.relative_to(REPO).parts
    }
    assert set(packages) == suite


@needs_xdist
def test_xdist_run_writes_the_same_results_as_a_serial_one(serial_example_run, tmp_path):
    # installed-style: the xdist controller never loads the suite's conftest.py, only the plugin
    completed, serial = serial_example_run
    assert completed.returncode == 0, completed.stdout + completed.stderr
    parallel = tmp_path / "parallel.json"
    completed = run_elsewhere(*AS_INSTALLED, f"--impl={EXAMPLE}", "-q", f"--conformance-json={parallel}", "-n", "2")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert outcomes(parallel) == outcomes(serial)
    assert list(outcomes(parallel)) == list(outcomes(serial))   # collection order, too
    assert {outcome for outcome, _ in outcomes(serial).values()} == {"passed", "skipped"}
    data = json.loads(parallel.read_text())
    assert data["impl"] == EXAMPLE and data["hypothesis_profile"] == "ci"
