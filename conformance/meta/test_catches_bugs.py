"""The conformance suite must fail on deliberately wrong implementations (conformance/meta/planted/).

For every planted bug and every identity it breaks, the suite is run twice:
on a genuine implementation (it must pass that identity) and on the planted
one wrapping it (it must fail that identity, by an assertion rather than a
crash). The runs share a few worker processes, one per core, each calling
pytest.main for its runs one after another (batch_runner.py). The genuine implementation is dualad when
dualad passes the identity, else the first installed peer that does. BREAKS
must cover every identity of conformance/identities.md, so each identity is
shown to fail on a wrong implementation; and every conformance test that
passes somewhere must fail on at least one planted bug. Runs are narrowed
with --identities and use the CI profile with a fixed seed.
"""
from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conformance.meta.planted._base import BASE_ENV

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
    # from the red-team set (conformance/meta/redteam/): bugs the suite missed until its identities were strengthened
    "duplicate_sources_second_none": ["GT-STRUCT-01"],
    "function_ignores_python_numbers": ["GT-FUNC-01"],
    "momentum_shared_by_shape": ["GT-OPT-02"],
    "torch_style_momentum": ["GT-OPT-02"],
    "jvp_swaps_equal_shaped_tangents": ["FWD-JVP-02"],
    "persistent_tape_stops_after_first_gradient": ["GT-INCONTEXT-01"],
}


def conformance_args(impl: str, identities: tuple[str, ...], results: Path) -> list[str]:
    """The pytest arguments of one recorded run of the suite on ``impl``."""
    args = [
        "conformance", f"--impl={impl}", "-q", "-p", "no:cacheprovider",
        "--hypothesis-profile=ci", f"--hypothesis-seed={SEED}", f"--conformance-json={results}",
    ]
    if identities:
        args.append("--identities=" + ",".join(identities))
    return args


#: (impl, base, identities) -> the run's JSON results, filled by run_batches
RESULTS: dict[tuple, dict] = {}
#: (impl, base, identities) -> the runs before it in its worker process, in order
RAN_BEFORE: dict[tuple, list[tuple]] = {}


def run_batches(batches: list[list[tuple]]) -> None:
    """Run each batch of ``(impl, base, identities)`` runs in one worker process
    (conformance/meta/batch_runner.py), the batches at once, and record every run's results."""
    with tempfile.TemporaryDirectory() as tmp:
        workers = []
        for number, batch in enumerate(batches):
            jobs = []
            for index, (impl, base, identities) in enumerate(batch):
                results = Path(tmp) / f"{number}-{index}.json"
                # a planted adapter wraps the base named by CONFORMANCE_PLANTED_BASE; the
                # implementation comes from --impl only
                env = {"CONFORMANCE_IMPL": None, BASE_ENV: base}
                jobs.append({"args": conformance_args(impl, identities, results), "env": env})
            (Path(tmp) / f"{number}.jobs.json").write_text(json.dumps(jobs))
            log = open(Path(tmp) / f"{number}.log", "w+")
            command = [sys.executable, "-m", "conformance.meta.batch_runner", str(Path(tmp) / f"{number}.jobs.json")]
            workers.append((batch, log, subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True)))
        outputs = []
        try:
            for _, log, worker in workers:
                worker.wait(timeout=900)
        finally:  # a timeout, or an interrupt: no worker outlives the test
            for _, log, worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
                log.seek(0)
                outputs.append(log.read())
                log.close()
        for number, ((batch, _, worker), output) in enumerate(zip(workers, outputs)):
            for index, key in enumerate(batch):
                results = Path(tmp) / f"{number}-{index}.json"
                if not results.exists():
                    pytest.fail(f"conformance run crashed: pytest {' '.join(conformance_args(key[0], key[2], results))}\n"
                                f"(its worker exited {worker.returncode}; the worker's output ends:)\n{output[-5000:]}")
                data = json.loads(results.read_text())
                data["returncode"] = data["exitstatus"]
                RESULTS[key] = data
                RAN_BEFORE[key] = list(batch[:index])


def run_conformance(impl: str, base: str | None = None, identities: tuple[str, ...] = ()) -> dict:
    """Run ``pytest conformance/`` on ``impl`` (once; later calls reuse it); return its JSON results."""
    key = (impl, base, identities)
    if key not in RESULTS:
        run_batches([[key]])
    return RESULTS[key]


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


def planted_spec(module: str) -> str:
    return f"conformance.meta.planted.{module}:Adapter"


def planted_run(module: str, base: str) -> dict:
    """The planted module over ``base``, on every identity it breaks that ``base`` passes.

    Over the first candidate (dualad) the module has already run on all its identities (the
    runs start before the genuine run says which identities dualad passes): its results are
    narrowed to the tests that --identities would have selected."""
    identities = tuple(i for i in BREAKS[module] if genuine_base(i) == base)
    speculative = (planted_spec(module), base, tuple(BREAKS[module]))
    if speculative in RESULTS:
        data = dict(RESULTS[speculative])
        data["results"] = [r for r in data["results"] if set(r["identities"]) & set(identities)]
        return data
    return run_conformance(planted_spec(module), base, identities)


CASES = [(module, identity) for module, identities in BREAKS.items() for identity in identities]


FIRST = GENUINE_CANDIDATES[0]


def worker_count() -> int:
    return min(max(2, os.cpu_count() or 2), 8)


def split(runs: list[tuple], weight, workers: int) -> list[list[tuple]]:
    """The runs in ``workers`` batches of about equal total weight (heaviest first, each to the
    lightest batch)."""
    batches: list[list[tuple]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for run in sorted(runs, key=weight, reverse=True):
        lightest = loads.index(min(loads))
        batches[lightest].append(run)
        loads[lightest] += weight(run)
    return [batch for batch in batches if batch]


@pytest.fixture(scope="module", autouse=True)
def _planted_runs_started_together():
    """All runs in a few worker processes (one per core), each running its share one after
    another in-process (batch_runner.py). Every planted module runs over the first candidate
    (dualad) on all its identities at once, together with dualad's genuine run, which goes last
    in its worker: after planted runs in the same process, so that it shows they leave nothing
    behind (test_a_genuine_run_after_planted_runs_in_its_process_passes). The identities
    dualad does not pass then get their genuine and planted runs over the next candidates.
    The tests read the recorded results."""
    genuine = (FIRST, None, ())
    planted = [(planted_spec(module), FIRST, tuple(identities)) for module, identities in BREAKS.items()]
    everything = len(catalogue_ids())
    batches = split([genuine] + planted, lambda run: everything if run == genuine else len(run[2]), worker_count())
    with_genuine = next(batch for batch in batches if genuine in batch)
    if len(with_genuine) == 1:  # many cores: give it the lightest planted run of another batch
        donor = min((b for b in batches if b is not with_genuine and len(b) > 1), key=len)
        with_genuine.append(donor.pop())
    with_genuine.remove(genuine)
    with_genuine.append(genuine)  # last, after planted runs
    run_batches(batches)
    # the identities dualad does not pass: their genuine runs (genuine_base) and planted runs
    # over the implementation that passes them
    others = []
    for module, identities in BREAKS.items():
        for base in sorted({genuine_base(i) for i in identities} - {None, FIRST}):
            others.append((planted_spec(module), base, tuple(i for i in identities if genuine_base(i) == base)))
    if others:
        run_batches(split(others, lambda run: len(run[2]), worker_count()))


def test_a_genuine_run_after_planted_runs_in_its_process_passes():
    """The planted runs share worker processes: none may leave state (Hypothesis' settings or
    seed, the adapter selection, environment, module caches, dualad's own) that changes a later
    run. dualad's genuine run, last in its worker, must pass every test as it does alone
    (`python -m pytest conformance`: dualad runs every test and passes)."""
    genuine = (FIRST, None, ())
    before = [run for run in RAN_BEFORE[genuine] if run[1] is not None]
    assert before, f"the genuine {FIRST} run was not preceded by planted runs in its worker: {RAN_BEFORE[genuine]}"
    data = RESULTS[genuine]
    failed = [r for r in data["results"] if r["outcome"] == "failed"]
    assert data["results"] and not failed, (
        f"{FIRST}'s genuine run, after {len(before)} planted runs in the same process, failed:\n"
        + "\n".join(f"  {r['nodeid']}: {r.get('message', '')[:300]}" for r in failed)
    )


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
