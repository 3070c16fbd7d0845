"""What a user meets around the build: the message when the compiled core cannot be imported,
and the distributions' metadata (the sdist and wheel themselves are built and installed by
.ci/run)."""
import re
import tomllib
from pathlib import Path

import dualad
from isolated import run_isolated

ROOT = Path(__file__).resolve().parents[1]


def test_a_core_that_fails_to_import_shows_the_underlying_error_first():
    proc = run_isolated("""
        import sys
        sys.modules["dualad._core"] = None      # as if the extension were missing or broken
        import dualad
    """)
    assert proc.returncode != 0
    message = proc.stderr[proc.stderr.rindex("ImportError"):]
    assert message.startswith("ImportError: import of dualad._core halted"), message
    assert "pip install -e ." in message and "3.3.1" in message
    assert "circular import" not in proc.stderr, proc.stderr


def test_one_version_and_the_build_requirements():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in meta["project"]["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dualad.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", dualad.__version__)
    requires = " ".join(meta["build-system"]["requires"])
    assert "Cython>=3.3.1" in requires       # 3.3.0 builds a core that does not import
    assert meta["project"]["license"] == "Apache-2.0"
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert not any("==" in dep for dep in meta["project"]["optional-dependencies"]["torch"])


def test_the_sdist_manifest_carries_the_cython_sources_not_generated_c():
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert "recursive-include dualad *.pyx *.pxd *.pxi" in manifest
    assert "exclude dualad/*.c" in manifest


def test_the_package_is_typed():
    package = ROOT / "dualad"
    assert (package / "py.typed").exists()
    for stub in ("_core.pyi", "_trace.pyi", "_generated_ops.pyi", "nn.pyi", "math.pyi",
                 "linalg.pyi"):
        assert (package / stub).exists(), stub
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert "*.pyi py.typed" in manifest


def test_every_public_function_has_a_docstring():
    import inspect
    missing = [name for name in dir(dualad) if not name.startswith("_")
               and callable(getattr(dualad, name)) and not inspect.isclass(getattr(dualad, name))
               and not (getattr(dualad, name).__doc__ or "").strip()]
    assert missing == []


def test_variable_signature_and_a_subclass_keeps_its_own():
    import inspect
    assert list(inspect.signature(dualad.Variable).parameters) == [
        "initial_value", "dtype", "trainable", "name"]

    class Scaled(dualad.Variable):
        def __init__(self, value, scale=2.0):
            super().__init__(value * scale)

    assert list(inspect.signature(Scaled).parameters) == ["value", "scale"]
    assert float(Scaled(3.0)) == 6.0


def test_a_misspelt_variable_keyword_names_the_public_call_and_the_likely_word():
    import pytest
    with pytest.raises(TypeError, match=r"^Variable\(\) got an unexpected keyword argument "
                                        r"'trainabel'; did you mean 'trainable'\?$"):
        dualad.Variable(1.0, trainabel=False)
    with pytest.raises(TypeError, match=r"'colour'; it takes initial_value, dtype, trainable"):
        dualad.Variable(1.0, colour="red")
    v = dualad.Variable(1.0, trainable=False, name="kept")     # the real keywords still work
    assert (v.trainable, v.name) == (False, "kept")


# ---- the typed API: what a type checker sees of the names dualad sets at import -------------

def _load(path, name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mypy(tmp_path, source):
    """mypy's exit status and report on `source`, with this checkout's dualad and config."""
    import os
    import subprocess
    import sys
    import textwrap
    import pytest
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(source))
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(program)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "MYPYPATH": str(ROOT)})
    return proc.returncode, proc.stdout + proc.stderr


def test_the_generated_stubs_are_up_to_date():
    generator = _load(ROOT / "tools" / "generate_op_stub.py", "generate_op_stub")
    for path, text in generator.stubs().items():
        assert path.read_text() == text, f"{path} is stale: run python tools/generate_op_stub.py"
    # every op dualad exports from a declaration is in the generated stub or written in ops.py
    stubbed = set(ast_names(ROOT / "dualad" / "_generated_ops.pyi"))
    declared = {d.export for d in dualad.rules.DECLARATIONS.values() if d.export is not None}
    hand_written = declared - stubbed
    assert all(getattr(dualad.ops, name).__module__ == "dualad.ops" for name in hand_written)


def ast_names(path):
    """The names a module or stub defines at its top level (functions)."""
    import ast
    return [node.name for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.FunctionDef)]


def test_every_public_name_set_at_import_is_visible_to_mypy(tmp_path):
    # each name dualad, dualad.ops and its namespaces set with globals().update, used once
    declared = sorted(d.export for d in dualad.rules.DECLARATIONS.values() if d.export)
    uses = [f"dualad.{name}" for name in declared] + [f"dualad.ops.{name}" for name in declared]
    uses += [f"dualad.{space}.{name}" for space in ("nn", "math", "linalg")
             for name in getattr(dualad, space).__all__]
    status, report = _mypy(tmp_path, "import dualad\n" + "".join(f"{u}\n" for u in uses))
    assert status == 0, report


def test_mypy_reports_a_misuse_of_an_op(tmp_path):
    status, report = _mypy(tmp_path, """\
        import dualad
        x = dualad.constant(1.0)
        y: dualad.Tensor = dualad.pow(x, 2.0) + dualad.math.log1p(x)   # fine
        bad_operand = dualad.exp("one")
        missing_operand = dualad.maximum(x)
        not_an_int: int = dualad.sigmoid(x)
        no_b = dualad.matmul(x)                    # a hand-written op (annotated in ops.py)
        not_a_bool = dualad.reduce_sum(x, keepdims="yes")
    """)
    assert status == 1, report
    lines = report.splitlines()
    assert any(':4: error: Argument 1 to "exp" has incompatible type "str"' in line
               for line in lines), report
    assert any(':5: error: Missing positional argument "y" in call to "maximum"' in line
               for line in lines), report
    assert any(':6: error: Incompatible types in assignment (expression has type "Tensor", '
               'variable has type "int")' in line for line in lines), report
    assert any(':7: error: Missing positional argument "b" in call to "matmul"' in line
               for line in lines), report
    assert any(':8: error: Argument "keepdims" to "__call__" of "_Reduction" has incompatible '
               'type "str"; expected "bool"' in line for line in lines), report
    assert not any(":3:" in line for line in lines), report


def test_the_typed_program_type_checks_and_runs(tmp_path):
    status, report = _mypy(tmp_path, (ROOT / "tests" / "typed_program.py").read_text())
    assert status == 0, report
    program = _load(ROOT / "tests" / "typed_program.py", "typed_program")
    assert program.main() < 0.25     # below the loss at w = 0 (every prediction 0.5)
