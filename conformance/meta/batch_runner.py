"""Several runs of the conformance suite, one after another, in one Python process.

Used by ``test_catches_bugs.py``: its ~30 planted-bug runs each paid a fresh interpreter
(importing pytest, Hypothesis, NumPy, dualad and the suite: most of each run's time). Here a
worker process imports them once and calls ``pytest.main`` per run:

    python -m conformance.meta.batch_runner JOBS.json

JOBS.json is a list of ``{"args": [pytest arguments], "env": {NAME: value or null}}``; each
run should write its results with ``--conformance-json``. What a run could leave behind for the
next is reset around each one: the environment variables it set, Hypothesis' profile and forced
seed (set from the command line by Hypothesis' pytest plugin), and the suite's adapter
selection. Test modules stay imported between runs; they keep no state of their own (the
adapter is a fresh object each run), and test_catches_bugs.py checks that a genuine run after
planted runs in the same process still passes.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from hypothesis import core, settings

from conformance import adapters


def run(args: list[str], env: dict[str, str | None]) -> int:
    """``pytest.main(args)`` with ``env`` applied, leaving the process as it found it."""
    saved_env = {name: os.environ.get(name) for name in env}
    saved_profile = settings.get_current_profile_name()
    saved_seed = core.global_force_seed
    try:
        _apply(env)
        # from the second run on, pytest's plugins (Hypothesis') are imported already, too
        # late for assertion rewriting: its warning would be an error under the project's
        # filterwarnings, and it is about pytest's plugins, not the suite
        return int(pytest.main([*args, "-W", "ignore::pytest.PytestAssertRewriteWarning"]))
    finally:
        _apply(saved_env)
        settings.load_profile(saved_profile)
        core.global_force_seed = saved_seed
        adapters.select(None)  # drop the run's adapter object; the next run selects its own


def _apply(env: dict[str, str | None]) -> None:
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def main(argv: list[str]) -> int:
    jobs = json.loads(Path(argv[1]).read_text())
    for number, job in enumerate(jobs, 1):
        print(f"=== batch_runner: run {number}/{len(jobs)}: pytest {' '.join(job['args'])}", flush=True)
        start = time.monotonic()
        status = run(job["args"], job.get("env", {}))
        print(f"=== batch_runner: run {number} exited {status} after {time.monotonic() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
