"""The conformance suite must fail on deliberately wrong implementations (conformance/meta/planted/).

For every planted bug and every identity it breaks, the suite is run in a
subprocess twice: on a genuine implementation (it must pass that identity)
and on the planted one wrapping it (it must fail that identity, by an
assertion rather than a crash). The genuine implementation is dualad when
dualad passes the identity, else the first installed peer that does. BREAKS
must cover every identity of conformance/identities.md, so each identity is
shown to fail on a wrong implementation; and every conformance test that
passes somewhere must fail on at least one planted bug. Runs are narrowed
with --identities and use the CI profile with a fixed seed (~25 s in all).
"""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLANTED = Path(__file__).resolve().parent / "planted"
GENUINE_CANDIDATES = ["dualad", "autograd", "tensorflow", "jax", "torch"]
SEED = "20251124"  # fixed, so that CI sees the same draws every run

#: planted module -> the identities (conformance/identities.md) it must break
BREAKS = {
    "wrong_sin": ["GT-OPS-01", "FWD-JVP-01", "FWD-VJP-01", "FWD-HVP-01", "FWD-HESS-01"],
    "second_gradient_allowed": ["GT-PERSIST-02"],
    "forgetful_persistent_tape": ["GT-PERSIST-01", "GT-INCONTEXT-01"],
    "off_by_one_loop": ["GT-FLOW-01", "GT-FLOW-02", "GT-SUMSQ-01", "GT-INTERMEDIATE-01", "GT-SOURCES-01", "GT-OPS-01"],
    "first_order_only": ["GT-NESTED-01", "GT-NESTED-02", "GT-INCONTEXT-01", "FWD-HVP-01", "FWD-HESS-01"],
    "matmul_ignores_left_operand": ["GT-MATVEC-01"],
    "variables_not_watched": ["GT-VAR-01"],
    "everything_watched": ["GT-VAR-02", "GT-VAR-03"],
    "stale_function": ["GT-FUNC-01", "GT-FUNC-02", "GT-FUNC-03"],
    "sgd_weight_decay": ["GT-SGD-01", "GT-SGD-02", "GT-SGD-03"],
    "sgd_ignores_learning_rate_change": ["GT-SGD-04"],
    "jvp_wrong_sign": ["FWD-JVP-01"],
    "vjp_transposed": ["FWD-VJP-01"],
    "hessian_asymmetric": ["FWD-HESS-01"],
    "stops_leak": ["GT-STOP-01", "GT-UNCONN-01"],
    "unconnected_flag_inverted": ["GT-UNCONN-01"],
    "gradients_reversed": ["GT-STRUCT-01", "GT-UNCONN-01"],
    "jacobian_source_axes_first": ["GT-JAC-01", "FWD-HESS-02"],
    "reflected_subtract_sign": ["GT-OPER-01"],
    "float32_derivatives_upcast": ["GT-DTYPE-01", "GT-OPER-01"],
    "assign_sub_adds": ["GT-VAR-04"],
    "persistent_tapes_watch_everything": ["GT-VAR-02"],
    "sgd_first_pair_only": ["GT-OPT-01"],
    "momentum_ignored": ["GT-OPT-02"],
    "jvp_drops_later_tangents": ["FWD-JVP-02"],
    "perturbation_confusion": ["FWD-NEST-01"],
    "jvp_tangent_not_differentiable": ["FWD-SECOND-01", "FWD-NEST-01"],
    "frozen_arguments": ["GT-FUNC-03", "GT-FUNC-01"],
    "adam_epsilon_after_bias_correction": ["GT-OPT-03"],
    "rmsprop_epsilon_outside_sqrt": ["GT-OPT-04"],
    "adagrad_accumulator_starts_at_zero": ["GT-OPT-05"],
    "batched_matmul_first_left_matrix": ["GT-OPS-01", "GT-JAC-01"],
    "float16_derivatives_as_float32": ["GT-DTYPE-01"],
    "jvp_watches_accessed_variables": ["FWD-WATCH-01"],
}


@functools.cache
def run_conformance(impl: str, base: str | None = None, identities: tuple[str, ...] = ()) -> dict:
    """Run ``pytest conformance/`` on ``impl``; return its JSON results."""
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.json"
        command = [
            sys.executable, "-m", "pytest", "conformance", f"--impl={impl}", "-q", "-p", "no:cacheprovider",
            "--hypothesis-profile=ci", f"--hypothesis-seed={SEED}", f"--conformance-json={results}",
        ]
        if identities:
            command.append("--identities=" + ",".join(identities))
        env = dict(os.environ)
        env.pop("CONFORMANCE_IMPL", None)
        if base:
            env["CONFORMANCE_PLANTED_BASE"] = base
        completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        if not results.exists():
            pytest.fail(f"conformance run crashed: {' '.join(command)}\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}")
        data = json.loads(results.read_text())
    data["returncode"] = completed.returncode
    data["output"] = completed.stdout[-5000:]
    return data


def outcomes(data: dict, identity: str) -> list[dict]:
    return [r for r in data["results"] if identity in r["identities"]]


def passes(data: dict, identity: str) -> bool:
    records = outcomes(data, identity)
    return any(r["outcome"] == "passed" for r in records) and not any(r["outcome"] == "failed" for r in records)


@functools.cache
def genuine_base(identity: str) -> str | None:
    """The first implementation that passes ``identity`` genuinely."""
    for candidate in GENUINE_CANDIDATES:
        if passes(run_conformance(candidate), identity):
            return candidate
    return None


def planted_run(module: str, base: str) -> dict:
    """The planted module over ``base``, on every identity it breaks that ``base`` passes."""
    identities = tuple(i for i in BREAKS[module] if genuine_base(i) == base)
    return run_conformance(f"conformance.meta.planted.{module}:Adapter", base, identities)


CASES = [(module, identity) for module, identities in BREAKS.items() for identity in identities]


@pytest.fixture(scope="module", autouse=True)
def _planted_runs_started_together():
    """Each planted run is its own pytest process: start them all at once, one per core, so
    that the CI profile's wall time is not their sum. The tests then read the cached results."""
    bases = {identity: genuine_base(identity) for _, identity in CASES}  # the genuine runs first
    jobs = sorted({(module, bases[i]) for module, ids in BREAKS.items() for i in ids if bases[i] is not None})
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        list(pool.map(lambda job: planted_run(*job), jobs))


@pytest.mark.parametrize("module, identity", CASES, ids=[f"{m}-{i}" for m, i in CASES])
def test_planted_bug_fails_the_identity(module, identity):
    base = genuine_base(identity)
    if base is None:
        pytest.skip(f"no installed implementation passes {identity}, so the bug cannot be shown against a passing one")
    records = outcomes(planted_run(module, base), identity)
    failed = [r for r in records if r["outcome"] == "failed"]
    assert failed, (
        f"{identity} passed on conformance.meta.planted.{module} over {base}, a deliberately wrong implementation:\n"
        + "\n".join(f"  {r['nodeid']}: {r['outcome']}" for r in records)
    )
    crashes = [r for r in failed if not is_check_failure(r.get("message", ""))]
    assert not crashes, "the planted bug crashed the suite instead of failing a check:\n" + "\n".join(
        f"  {r['nodeid']}: {r['message'][:300]}" for r in crashes
    )


def is_check_failure(message: str) -> bool:
    """An assertion of the suite, or pytest.raises not seeing the expected error."""
    return message.startswith("AssertionError") or "DID NOT RAISE" in message


def catalogue_ids() -> set[str]:
    """The identity IDs of conformance/identities.md."""
    rows = re.findall(r"^\| ([A-Z]+-[A-Z]+-\d\d) \|", (REPO / "conformance" / "identities.md").read_text(), re.MULTILINE)
    return set(rows)


def test_planted_bugs_cover_every_identity():
    """Every identity of the catalogue is broken by at least one planted bug (and BREAKS names only real ones)."""
    ids = catalogue_ids()
    claimed = {identity for identities in BREAKS.values() for identity in identities}
    assert len(ids) >= 20, f"only {len(ids)} identities parsed from identities.md"
    assert not ids - claimed, f"identities no planted bug is shown to break: {sorted(ids - claimed)}"
    assert not claimed - ids, f"BREAKS names identities that are not in the catalogue: {sorted(claimed - ids)}"
    planted = {path.stem for path in PLANTED.glob("*.py") if not path.stem.startswith("_")}
    assert planted == set(BREAKS), f"planted modules without a BREAKS entry, or the reverse: {sorted(planted ^ set(BREAKS))}"


def test_every_conformance_test_fails_on_some_planted_bug():
    """Each conformance test that passes on a genuine implementation fails on some planted bug."""
    bases = {genuine_base(identity) for _, identity in CASES} - {None}
    expected = set()
    for base in bases:
        for record in run_conformance(base)["results"]:
            if record["outcome"] == "passed" and record["identities"] and genuine_base(record["identities"][0]) == base:
                expected.add(record["nodeid"])
    caught = set()
    for module in BREAKS:
        for base in {genuine_base(i) for i in BREAKS[module]} - {None}:
            caught |= {r["nodeid"] for r in planted_run(module, base)["results"] if r["outcome"] == "failed"}
    assert expected, "no conformance test passed on any implementation"
    assert not expected - caught, "conformance tests that no planted bug makes fail:\n" + "\n".join(
        sorted(expected - caught)
    )
