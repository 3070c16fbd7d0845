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
    for stub in ("_core.pyi", "_trace.pyi"):
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
