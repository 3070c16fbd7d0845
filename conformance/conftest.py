"""pytest wiring: implementation selection, identity markers, capabilities, strict skips.

The options, the Hypothesis profiles and the JSON results are conformance.plugin's: they must
also exist in a process that never loads this file (a pytest-xdist controller running
`pytest --pyargs conformance -n N`, whose workers alone collect the installed suite)."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from hypothesis import settings

from conformance import adapters, plugin

#: The suite's tests of itself (conformance/meta/): independent of --impl.
META = Path(__file__).resolve().parent / "meta"


def pytest_addoption(parser, pluginmanager):
    """The options live in conformance.plugin, which the installed distribution dualad-conformance
    registers as its pytest11 entry point `conformance` (pytest parses the command line of
    `pytest --pyargs conformance` before it finds this conftest). From a checkout, register it
    here unless that entry point is loaded already: an option added twice is an error."""
    if pluginmanager.get_plugin("conformance") is None and not pluginmanager.is_registered(plugin):
        pluginmanager.register(plugin)  # under its module name: -p no:conformance blocks only the entry point


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
    # as the checkout's pyproject.toml does, for an installed run (pytest --pyargs conformance) from
    # a project without that configuration: the suite takes this gradient in context on purpose
    config.addinivalue_line(
        "filterwarnings", "ignore:GradientTape.gradient was called inside the context of its own persistent tape"
    )
    plugin.select_implementation(config)
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile("ci")   # the default profile (conformance.plugin registers both)


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


def pytest_report_header(config):
    # an installed run (pytest --pyargs conformance) loads this file after the header: the plugin says it
    return None if plugin.runs_installed_suite(config) else plugin.implementation_header()


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
    # travels with the report (pytest-xdist serialises its attributes) to the JSON results
    report.conformance_identities = [i for m in item.iter_markers("identity") for i in m.args]
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
