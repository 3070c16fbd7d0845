"""Run a snippet in a fresh interpreter, so that a crash (segfault, abort, C stack overflow)
fails the test that provoked it instead of killing the whole run."""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_isolated(code, timeout=120, env=None):
    """Run `code` (dedented) with this interpreter; returns the CompletedProcess. The child
    imports dualad from this checkout."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env["PYTHONFAULTHANDLER"] = "1"
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=ROOT)


def assert_runs_cleanly(code, timeout=120, env=None):
    """`code` exits with status 0 (a negative status is a signal: a crash)."""
    proc = run_isolated(code, timeout=timeout, env=env)
    assert proc.returncode == 0, (f"exit status {proc.returncode}\n--- stdout\n{proc.stdout}"
                                  f"\n--- stderr\n{proc.stderr[-4000:]}")
    return proc
