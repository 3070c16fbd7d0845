"""The red-team set (conformance/meta/redteam/): plausible wrong implementations, each a dualad
adapter with one realistic bug, written without looking at which tests would catch them, to
measure the suite the way issue 14's hidden set did. The bugs the suite first missed were moved
to planted/ (with BREAKS entries in test_catches_bugs.py) once an identity caught them; the rest
stay here, and this test keeps the suite catching each, by an assertion, on the identities
named below (narrowed with --identities, in the batch runner's worker processes, CI profile)."""
from __future__ import annotations

from pathlib import Path

import pytest

from conformance.meta.test_catches_bugs import RESULTS, is_check_failure, run_batches, split, worker_count

REDTEAM = Path(__file__).resolve().parent / "redteam"

#: red-team module -> identities of which at least one test must fail on it
CAUGHT_BY = {
    "adagrad_default_accumulator": ["GT-OPT-05"],
    "adam_step_counted_per_variable": ["GT-OPT-03"],
    "assign_add_overwrites": ["GT-VAR-04"],
    "batch_jacobian_sums_the_batch": ["GT-JAC-01"],
    "broadcast_gradient_averaged": ["GT-OPS-01"],
    "jacobian_target_fortran_order": ["GT-JAC-01"],
    "matrix_hessian_axes_swapped": ["FWD-HESS-01", "FWD-HESS-02"],
    "multiply_same_operand_overwrites": ["GT-SUMSQ-01"],
    "nested_tapes_watch_everything": ["GT-VAR-02"],
    "persistent_gradients_not_recorded": ["GT-INCONTEXT-01"],
    "pow_exponent_constant": ["GT-OPS-01"],
    "reduce_mean_divides_by_first_axis": ["GT-OPS-01"],
    "rmsprop_first_step_uses_g_squared": ["GT-OPT-04"],
    "scalar_float32_gradients_upcast": ["GT-DTYPE-01", "GT-FUNC-01"],
    "sgd_reuses_first_gradient": ["GT-SGD-02", "GT-FUNC-02"],
    "unconnected_zero_scalar": ["GT-UNCONN-01"],
    "vjp_cotangent_scale_dropped": ["FWD-VJP-01"],
}


def spec(module: str) -> str:
    return f"conformance.meta.redteam.{module}:Adapter"


@pytest.fixture(scope="module")
def redteam_results():
    runs = [(spec(module), "dualad", tuple(identities)) for module, identities in CAUGHT_BY.items()]
    run_batches(split(runs, lambda run: len(run[2]), worker_count()))
    return {module: RESULTS[(spec(module), "dualad", tuple(identities))] for module, identities in CAUGHT_BY.items()}


def test_every_redteam_module_is_listed():
    modules = {path.stem for path in REDTEAM.glob("*.py") if not path.stem.startswith("_")}
    assert modules == set(CAUGHT_BY), f"red-team modules without a CAUGHT_BY entry, or the reverse: {sorted(modules ^ set(CAUGHT_BY))}"


@pytest.mark.parametrize("module", sorted(CAUGHT_BY))
def test_the_suite_catches_the_redteam_bug(redteam_results, module):
    records = redteam_results[module]["results"]
    failed = [r for r in records if r["outcome"] == "failed"]
    assert failed, f"the suite passed conformance.meta.redteam.{module} on {CAUGHT_BY[module]}, a wrong implementation"
    checks = [r for r in failed if is_check_failure(r.get("message", ""))]
    assert checks, f"{module} crashed the suite instead of failing a check:\n" + "\n".join(
        f"  {r['nodeid']}: {r['message'][:300]}" for r in failed)
