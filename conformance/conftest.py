"""pytest wiring: implementation selection, Hypothesis profiles, identity markers, JSON results."""
from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
from pathlib import Path

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
settings.load_profile("ci")  # --hypothesis-profile=thorough overrides this

#: The suite's tests of itself (conformance/meta/): independent of --impl.
META = Path(__file__).resolve().parent / "meta"


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


#: Warnings that peers' own internals raise (the project's pytest settings make warnings errors):
#: torch 2.13 deprecates torch.jit.script, which torch.func uses itself, and torch.compile
#: (Dynamo) trips over warnings of the code it traces. Not about the tested behaviour.
PEER_INTERNAL_WARNINGS = [
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning",
    "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning",
    "ignore:The .grad attribute of a Tensor that is not a leaf Tensor is being accessed:UserWarning",
    "ignore:To copy construct from a tensor:UserWarning",
]


def pytest_configure(config):
    for line in PEER_INTERNAL_WARNINGS:
        config.addinivalue_line("filterwarnings", line)
    config.addinivalue_line("markers", "identity(*ids): the catalogue identities (identities.md) this test checks")
    config.addinivalue_line("markers", "requires(*capabilities): adapter capabilities this test needs")
    try:
        adapters.select(config.getoption("--impl"))
    except ValueError as e:   # a typo in --impl: one line, not pytest's INTERNALERROR dump
        raise pytest.UsageError(f"--impl: {e}") from None
    path = config.getoption("--conformance-json")
    if path:
        config.pluginmanager.register(JsonResults(path, config), "conformance-json")


def _in_meta(path) -> bool:
    path = Path(path).resolve()
    return path == META or META in path.parents


def pytest_ignore_collect(collection_path, config):
    """A run that records an implementation's results (--conformance-json: the report's runs,
    the meta tests' own runs) leaves the meta tests out: they say nothing about the
    implementation, and test_catches_bugs would start runs of the suite from inside one."""
    if config.getoption("--conformance-json") and _in_meta(collection_path):
        return True
    return None


def _skip_meta_for_other_implementations(items):
    """The meta tests check the suite itself and pick their implementations themselves, so a
    run against a peer (--impl=autograd) would only repeat them: they run with the default."""
    if adapters.resolve(adapters.selected_spec()) == adapters.resolve(adapters.DEFAULT_IMPL):
        return
    skip = pytest.mark.skip(
        reason=f"conformance/meta checks the suite itself, not an implementation: it runs with "
        f"the default --impl={adapters.DEFAULT_IMPL} only"
    )
    for item in items:
        if _in_meta(item.path):
            item.add_marker(skip)


def pytest_collection_modifyitems(config, items):
    _mark_known_deviations(items)
    _skip_meta_for_other_implementations(items)
    wanted = config.getoption("--identities")
    if not wanted:
        return
    wanted = set(wanted.split(","))
    keep, drop = [], []
    for item in items:
        ids = {i for m in item.iter_markers("identity") for i in m.args}
        (keep if ids & wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def test_key(nodeid: str) -> str:
    """``file.py::test_name[params]``: how adapters name a test in ``known_deviations``."""
    return nodeid.rsplit("/", 1)[-1]


def _mark_known_deviations(items):
    """Turn the selected adapter's known deviations into strict xfails carrying its reason.

    Strict: if the library stops deviating, the test reports XPASS(strict) as a
    failure, so the declaration cannot outlive the deviation unnoticed.
    """
    try:
        deviations = getattr(adapters.selected(), "known_deviations", {}) or {}
    except adapters.AdapterUnavailable:
        return
    for item in items:
        reason = deviations.get(test_key(item.nodeid))
        if reason:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"known deviation: {reason}"))


def _describe_impl() -> str:
    try:
        impl = adapters.selected()
    except adapters.AdapterUnavailable as exc:
        return f"unavailable: {exc}"
    versions = ", ".join(f"{k} {v}" for k, v in impl.versions.items())
    return f"{impl.name} ({versions})"


def pytest_report_header(config):
    return [f"conformance implementation: {adapters.selected_spec()} -> {_describe_impl()}"]


@pytest.fixture(scope="session")
def impl():
    """The adapter under test; skips everything if its library is unavailable."""
    try:
        adapter = adapters.selected()
    except adapters.AdapterUnavailable as exc:
        pytest.skip(str(exc))
    missing = adapters.missing_ops(adapter)
    if missing:
        pytest.fail(f"adapter {adapters.selected_spec()} lacks ops {missing}", pytrace=False)
    return adapter


@pytest.fixture(autouse=True)
def _check_capabilities(request):
    """Skip, with the adapter's own reason, tests needing capabilities it lacks."""
    # all requires markers: the function's and its parameters' (pytest.param(..., marks=...))
    needed = [c for m in request.node.iter_markers("requires") for c in m.args]
    if request.node.get_closest_marker("identity") is None and not needed:
        return
    adapter = request.getfixturevalue("impl")
    for capability in needed:
        if not adapter.supports(capability):
            reason = adapter.unsupported.get(capability, "not among the capabilities the adapter claims")
            pytest.skip(f"{adapter.name} lacks {capability}: {reason}")


def _skips_fail() -> bool:
    """Whether the implementation under test must not skip anything (dualad: it claims every
    capability, so a skip there is a capability lost or a library that failed to import)."""
    if adapters.resolve(adapters.selected_spec()) == adapters.resolve(adapters.DEFAULT_IMPL):
        return True
    try:
        return bool(getattr(adapters.selected(), "skips_fail", False))
    except adapters.AdapterUnavailable:
        return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and not _in_meta(item.path) and _skips_fail():
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"AssertionError: skipped on {adapters.selected_spec()}, which must run every conformance test "
            f"(a skip is not a pass): {reason}"
        )
    if report.failed and call.when == "call":
        command = (
            f"{adapters.ENV_VAR}={shlex.quote(adapters.selected_spec())} "
            f"python -m pytest {shlex.quote(item.nodeid)} -p no:cacheprovider"
        )
        report.sections.append(
            ("conformance reproduction", f"{command}\n(Hypothesis' @reproduce_failure blob above replays the exact draw.)")
        )


class JsonResults:
    """Collects one record per test (identities, outcome, skip reason, failure summary)."""

    def __init__(self, path, config):
        self.path = path
        self.config = config
        self.records = {}
        self.identities = {}

    def pytest_collection_modifyitems(self, items):
        for item in items:
            ids = [i for m in item.iter_markers("identity") for i in m.args]
            self.identities[item.nodeid] = ids

    def pytest_runtest_logreport(self, report):
        record = self.records.setdefault(
            report.nodeid,
            {"nodeid": report.nodeid, "identities": self.identities.get(report.nodeid, []), "outcome": "passed"},
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
            "hypothesis_profile": settings.get_current_profile_name(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "exitstatus": int(exitstatus),
            "results": list(self.records.values()),
        }
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "w") as f:
            json.dump(data, f, indent=2)


def _failure_summary(report) -> str:
    """The assertion line(s) of a failure, not the whole traceback."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return text.strip()[:600]
