"""Where the meta tests run: in a plain run with the default implementation; skipped against
another implementation; left out of a run that records an implementation's results (else the
report would list them, and test_catches_bugs' own runs of the suite would start it again)."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def pytest_in_subprocess(*arguments: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("CONFORMANCE_IMPL", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *arguments],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )


def test_a_plain_run_collects_the_meta_tests():
    completed = pytest_in_subprocess("conformance", "--collect-only", "-q")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "conformance/meta/test_catches_bugs.py::" in completed.stdout


def test_a_recorded_run_leaves_the_meta_tests_out():
    with tempfile.TemporaryDirectory() as tmp:
        completed = pytest_in_subprocess(
            "conformance", "--collect-only", "-q", f"--conformance-json={Path(tmp) / 'results.json'}"
        )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "conformance/test_basics.py::" in completed.stdout
    assert "conformance/meta" not in completed.stdout


def test_another_implementation_skips_the_meta_tests():
    # a planted adapter is "another implementation" and needs no peer library installed
    completed = pytest_in_subprocess(
        "conformance/meta/test_catalogue.py", "-q", "-rs", "--impl=conformance.meta.planted.wrong_sin:Adapter"
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "2 skipped" in completed.stdout
    assert "conformance/meta checks the suite itself" in completed.stdout


def test_a_misspelt_implementation_is_a_one_line_usage_error():
    completed = pytest_in_subprocess("conformance", "--impl=tensorflw", "--collect-only", "-q")
    output = completed.stdout + completed.stderr
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "INTERNALERROR" not in output
    (line,) = [ln for ln in output.splitlines() if "unknown implementation" in ln]
    for name in ("dualad", "tensorflow", "torch", "jax", "autograd"):
        assert name in line


class DualadWithoutMomentum:
    """dualad's adapter with one capability declared missing: a run on it must fail, not skip."""

    def __new__(cls):
        from conformance.adapters.dualad_adapter import Adapter

        adapter = Adapter()
        adapter.unsupported = {"momentum": "declared missing by conformance/meta/test_selection.py"}
        return adapter


def test_dualad_claims_every_capability_explicitly():
    from conformance import adapters
    from conformance.adapters.dualad_adapter import Adapter

    assert Adapter.capabilities == frozenset(adapters.CAPABILITIES), (
        "dualad's adapter must list each capability of the protocol it has (or the gap is a bug to report): "
        f"{sorted(frozenset(adapters.CAPABILITIES) ^ Adapter.capabilities)}"
    )
    adapter = Adapter()
    assert adapter.skips_fail and not adapter.unsupported
    assert all(adapter.supports(c) for c in adapters.CAPABILITIES)


def test_a_skip_on_dualad_fails_the_run():
    completed = pytest_in_subprocess(
        "conformance/test_optimizers.py", "-q", "-k", "momentum", "--hypothesis-profile=ci",
        "--impl=conformance.meta.test_selection:DualadWithoutMomentum",
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == pytest.ExitCode.TESTS_FAILED, output
    summary = output.strip().splitlines()[-1]
    assert "skipped" not in summary and ("1 failed" in summary or "1 error" in summary), output  # error: in setup
    assert "a skip is not a pass" in output and "lacks momentum" in output, output


class PeerWithoutMomentum(DualadWithoutMomentum):
    """The same adapter posing as a peer, which may lack capabilities."""

    def __new__(cls):
        adapter = DualadWithoutMomentum.__new__(cls)
        adapter.skips_fail = False
        return adapter


def test_a_skip_on_a_peer_stays_a_skip():
    completed = pytest_in_subprocess(
        "conformance/test_optimizers.py", "-q", "-rs", "-k", "momentum", "--hypothesis-profile=ci",
        "--impl=conformance.meta.test_selection:PeerWithoutMomentum",
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == pytest.ExitCode.OK, output
    assert "1 skipped" in output and "lacks momentum" in output, output
