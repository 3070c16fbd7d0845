"""Test configuration: the `slow` marker, tests/ on the import path (for helpers.py), and a
guard that no test leaves a tape or accumulator active on the main thread."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
# the repository root, last, for conformance.numdiff (helpers' finite differences) when pytest is
# not started from the root; an installed dualad still comes first, as before
sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import dualad  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than 20 s on the 2-core machine")
    config.addinivalue_line("markers", "stress: randomized, threaded and long-running checks "
                                       "of the core's robustness (bounded budget)")


@pytest.fixture(autouse=True)
def no_active_transformation_leaks():
    """A test that leaves a tape or accumulator active would make every later test record
    into it: fail that test, and clean up so the failure does not cascade."""
    before = dualad._core.active_transformations()
    yield
    after = dualad._core.active_transformations()
    if after != before:
        for tr in after:
            if tr not in before:
                tr._pop()
        pytest.fail(f"test left transformations active: {after!r}")
