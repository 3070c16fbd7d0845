"""batch_runner.run leaves the worker process as it found it, whatever a run changed."""
from __future__ import annotations

import os

import pytest
from hypothesis import core, settings

from conformance import adapters
from conformance.meta import batch_runner

VARIABLE = "CONFORMANCE_BATCH_RUNNER_TEST"


def test_a_run_leaves_environment_hypothesis_and_adapter_selection_as_they_were(monkeypatch):
    monkeypatch.delenv(VARIABLE, raising=False)
    monkeypatch.setenv(adapters.ENV_VAR, "dualad")
    profile, seed = settings.get_current_profile_name(), core.global_force_seed
    spec, selected = adapters._selected_spec, adapters._selected
    seen = {}

    def a_run_that_changes_everything(args):
        """What a conformance run does to the process: Hypothesis' plugin loads the profile and
        forces the seed of the command line, conftest selects the adapter."""
        seen["env"] = os.environ.get(VARIABLE), os.environ.get(adapters.ENV_VAR)
        settings.load_profile("thorough")
        core.global_force_seed = 1234
        adapters.select("conformance.meta.planted.wrong_sin:Adapter")
        adapters._selected = object()
        return 1

    monkeypatch.setattr(pytest, "main", a_run_that_changes_everything)
    try:
        status = batch_runner.run(["conformance"], {VARIABLE: "set for the run", adapters.ENV_VAR: None})
        assert status == 1
        assert seen["env"] == ("set for the run", None)  # the run saw its environment
        assert VARIABLE not in os.environ and os.environ[adapters.ENV_VAR] == "dualad"
        assert settings.get_current_profile_name() == profile
        assert core.global_force_seed == seed
        assert adapters._selected is None and adapters.selected_spec() == "dualad"
    finally:  # this process's own selection, whatever happened above
        settings.load_profile(profile)
        core.global_force_seed = seed
        adapters._selected_spec, adapters._selected = spec, selected
