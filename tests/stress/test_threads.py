"""8 threads sharing Variables, compiled functions and an optimizer, each with its own tapes
(scenarios in threaded.py, each run in a child interpreter: a race that corrupts memory
crashes the child and fails the test). Results are compared with single-threaded eager runs."""
import pytest

from stress.budget import run_scenario

pytestmark = pytest.mark.stress


def test_first_calls_and_new_branches_from_8_threads_equal_eager_bit_for_bit():
    # a fresh function every round: 8 threads race to trace it, on 10 signatures whose inputs
    # take different branches, while some differentiate through it with their own tapes
    assert run_scenario("threaded", "scenario_first_calls", 30, False).strip() == "ok"


def test_tracing_races_do_not_make_a_deterministic_function_fall_back_to_eager():
    # two threads tracing the same new path at once must not be taken for nondeterminism
    assert run_scenario("threaded", "scenario_first_calls", 30, True).strip() == "ok"


def test_variables_shared_by_8_threads_always_hold_whole_values():
    assert run_scenario("threaded", "scenario_shared_variables", 4).strip() == "ok"


def test_8_threads_training_their_own_variable_of_one_model_with_one_optimizer():
    assert run_scenario("threaded", "scenario_optimizer_threads", 2, 100).strip() == "ok"


def test_a_new_thread_starts_without_the_tapes_a_dead_thread_left_active():
    out = run_scenario("threaded", "scenario_dead_threads_leave_no_tape", 20)
    assert out.startswith("ok")
