"""Options of the benchmark run (used by `python -m bench`):

    --bench-quick        every benchmark runs once (pair with --benchmark-disable or
                         --benchmark-min-rounds=1 --benchmark-max-time=0); slow probes shrink
    --bench-extra-json   where to write what pytest-benchmark's JSON cannot hold: the W9 memory
                         probes and the reason of every skipped row
"""
import json
import os

import pytest

from bench import common

EXTRA = common.EXTRA


def pytest_addoption(parser):
    group = parser.getgroup("dualad bench")
    group.addoption("--bench-quick", action="store_true", default=False,
                    help="check that the suites run: one round each, small memory probes")
    group.addoption("--bench-extra-json", default=None,
                    help="write the W9 memory probes and skip reasons to this JSON file")


def pytest_configure(config):
    common.QUICK = bool(config.getoption("--bench-quick"))
    # peers' own deprecation chatter (torch.autograd.functional uses torch.jit.script)
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:torch.*")


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        EXTRA["outcomes"][report.nodeid] = report.outcome
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        EXTRA["skipped"][report.nodeid] = reason.removeprefix("Skipped: ")


@pytest.fixture(scope="session")
def extra():
    """A session-wide dict for results that are not timings (written at the end)."""
    return EXTRA


def pytest_sessionfinish(session):
    path = session.config.getoption("--bench-extra-json")
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(EXTRA, f, indent=1)
