"""100,000-step training loops (tape, gradient, optimizer step), eager and compiled, in a child
interpreter: memory after the loop may exceed memory before it by at most 4 MiB of RSS (40
bytes a step) and 400 allocated blocks (one leaked object every 250 steps would be 400; the
count moves by up to ~190 between runs of the same 10,000 steps without growing with the
length: free lists and dict resizes, not leaks).
DUALAD_STRESS_STEPS changes the length."""
import pytest

from stress.budget import run_scenario, training_steps

pytestmark = pytest.mark.stress

BOUND_MIB = 4
BLOCK_SLACK = 400


@pytest.mark.parametrize("model, compiled, optimizer, steps", [
    ("scalar", False, "sgd", training_steps()),
    ("scalar", True, "adam", training_steps()),
    ("array", True, "adam", training_steps()),
    # eager array steps cost ~0.2 ms each: a tenth of the length keeps the suite short
    ("array", False, "sgd", training_steps() // 10),
])
def test_a_long_training_loop_keeps_memory_flat(model, compiled, optimizer, steps):
    out = run_scenario("training", "scenario_training", model, steps, compiled, optimizer,
                       BOUND_MIB, BLOCK_SLACK, timeout=600)
    assert out.startswith(f"{steps} steps"), out
