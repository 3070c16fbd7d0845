"""The suite's command-line options, Hypothesis profiles and JSON results, as a pytest plugin.

The distribution dualad-conformance (packaging/dualad-conformance) registers this module as its
``pytest11`` entry point ``conformance``, so that ``pytest --pyargs conformance --impl=...`` works
from any directory: pytest parses the command line before it finds the installed package's
conftest.py, so the options cannot live there, and a pytest-xdist controller never loads that
conftest at all (its workers collect), so the results file is written here. In a checkout,
conformance/conftest.py registers this module itself unless the entry point did.

It loads in every pytest run of an environment that has the distribution installed, so on its
own it only adds the options and registers (does not load) the profiles ``ci`` and ``thorough``;
the rest happens when ``--conformance-json`` is given or the suite's conftest.py loads.
``-p no:conformance`` switches it off (e.g. for a project with an ``--impl`` option of its own).
"""
from __future__ import annotations

import datetime
import importlib.util
import json
import os
import platform

import pytest
from hypothesis import HealthCheck, Phase, settings

from conformance import adapters

# Profiles. `ci` keeps the whole suite against one implementation well inside
# a minute on two cores: few examples and no shrinking (shrinking a failure
# that involves compiling can take Hypothesis' full five minutes; the printed
# blob still replays the failing draw). `thorough` is for hunting bugs.
settings.register_profile(
    "ci",
    max_examples=12,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
    deadline=None,  # first calls into TF/JAX/torch compile kernels
    print_blob=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=300,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
# conftest.py loads `ci` unless --hypothesis-profile names one


def pytest_addoption(parser):
    group = parser.getgroup("conformance")
    group.addoption(
        "--impl",
        default=None,
        help=(
            f"implementation to check: {', '.join(adapters.BUILTIN)} or package.module:Attribute "
            f"(default: ${adapters.ENV_VAR} or {adapters.DEFAULT_IMPL})"
        ),
    )
    group.addoption(
        "--identities",
        default=None,
        metavar="ID,ID",
        help="run only the tests of these catalogue identities (e.g. GT-FLOW-01,GT-SGD-02)",
    )
    group.addoption(
        "--conformance-json",
        default=None,
        metavar="PATH",
        help="write per-test results with identity IDs to PATH (used by python -m conformance.report)",
    )


def pytest_configure(config):
    # Checked here, at start-up, when the run names an implementation or is a run of the installed
    # suite: with --pyargs, conftest.py loads during collection, where a usage error is no longer
    # a one-line message. Other runs of the environment are left alone.
    if config.getoption("--impl") or config.getoption("--conformance-json") or runs_installed_suite(config):
        select_implementation(config)
    path = config.getoption("--conformance-json")
    # Under pytest-xdist the controller alone writes the file: each worker's reports (which carry
    # their identities, see conftest.pytest_runtest_makereport) reach the controller's hooks.
    if path and not hasattr(config, "workerinput"):
        config.pluginmanager.register(JsonResults(path, config), "conformance-json")


def runs_installed_suite(config) -> bool:
    """``pytest --pyargs conformance`` (or a module or test of it)."""
    return bool(config.getoption("pyargs", False)) and any(
        arg.split("::")[0].split(".")[0] == "conformance" for arg in config.args
    )


def pytest_report_header(config):
    if runs_installed_suite(config):
        return implementation_header()
    return None


def implementation_header() -> list[str]:
    try:
        impl = adapters.selected()
        described = f"{impl.name} ({', '.join(f'{k} {v}' for k, v in impl.versions.items())})"
    except adapters.AdapterUnavailable as exc:
        described = f"unavailable: {exc}"
    return [f"conformance implementation: {adapters.selected_spec()} -> {described}"]


def select_implementation(config) -> None:
    """Choose the implementation from --impl (or $CONFORMANCE_IMPL, or the default dualad), with a
    one-line error for a name that is no adapter or for the default when dualad is missing."""
    try:
        adapters.select(config.getoption("--impl"))
    except ValueError as e:   # a typo in --impl: one line, not pytest's INTERNALERROR dump
        raise pytest.UsageError(f"--impl: {e}") from None
    if adapters.selected_spec() == adapters.DEFAULT_IMPL and importlib.util.find_spec("dualad") is None:
        # without this, every test would fail on "dualad is not importable" (dualad must not skip)
        raise pytest.UsageError(
            "the conformance suite checks dualad by default and dualad is not installed: "
            "name your adapter with --impl=package.module:Adapter (or a built-in one), or install dualad"
        )


class JsonResults:
    """Collects one record per test (identities, outcome, skip reason, failure summary)."""

    def __init__(self, path, config):
        self.path = path
        self.config = config
        self.records = {}
        self.collected: list[str] = []   # node ids in collection order, whichever process collected

    def pytest_collection_modifyitems(self, items):
        self.collected = [item.nodeid for item in items]

    @pytest.hookimpl(optionalhook=True)   # pytest-xdist's hook: it is optional
    def pytest_xdist_node_collection_finished(self, node, ids):
        self.collected = list(ids)   # every worker collects the same tests

    def pytest_runtest_logreport(self, report):
        record = self.records.setdefault(
            report.nodeid,
            {"nodeid": report.nodeid, "identities": getattr(report, "conformance_identities", []), "outcome": "passed"},
        )
        if hasattr(report, "wasxfail"):  # a declared known deviation that did deviate
            record["outcome"] = "xfailed"
            record["reason"] = report.wasxfail.removeprefix("reason: ")
        elif report.skipped:
            record["outcome"] = "skipped"
            longrepr = report.longrepr
            record["reason"] = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            record["reason"] = record["reason"].removeprefix("Skipped: ")
        elif report.failed:
            record["outcome"] = "failed"
            record["message"] = _failure_summary(report)
            if getattr(report, "longrepr", None) is not None and "XPASS(strict)" in str(report.longrepr):
                record["message"] = f"passed although declared a known deviation: {report.longrepr}"
        if report.when == "call":
            record["duration"] = round(report.duration, 3)

    def pytest_sessionfinish(self, session, exitstatus):
        try:
            impl = adapters.selected()
            name, versions, unavailable = impl.name, impl.versions, None
            unsupported = dict(getattr(impl, "unsupported", {}))
            deviations = dict(getattr(impl, "known_deviations", {}) or {})
        except adapters.AdapterUnavailable as exc:
            name, versions, unavailable = adapters.selected_spec(), {}, str(exc)
            unsupported, deviations = {}, {}
        data = {
            "impl": adapters.selected_spec(),
            "name": name,
            "versions": versions,
            "unavailable": unavailable,
            "unsupported": unsupported,
            "known_deviations": deviations,
            "python": platform.python_version(),
            # the workers' profile (a pytest-xdist controller never loads conftest.py, which loads it)
            "hypothesis_profile": self.config.getoption("hypothesis_profile", None) or "ci",
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "exitstatus": int(exitstatus),
            "results": self._in_collection_order(),
        }
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "w") as f:
            json.dump(data, f, indent=2)


    def _in_collection_order(self) -> list[dict]:
        """The records in the order of collection, so that a run spread over pytest-xdist workers
        (whose reports arrive as they finish) writes the same file as a serial one."""
        rank = {nodeid: i for i, nodeid in enumerate(self.collected)}
        return sorted(self.records.values(), key=lambda record: rank.get(record["nodeid"], len(rank)))


def _failure_summary(report) -> str:
    """The assertion line(s) of a failure, not the whole traceback."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return text.strip()[:600]
