"""Every public name of dualad is in the API reference (docs/api/*.rst): the top-level callables
(dualad.X, or the same object under the name a page documents it by) and every name of the
TensorFlow namespaces dualad.math, linalg, nn and autodiff under its namespace. Read from the
pages' autodoc directives, the way autodoc picks members, so no Sphinx build is needed."""
import importlib
import re
import types
from pathlib import Path

import pytest

import dualad

API_DOCS = Path(__file__).resolve().parent.parent / "docs" / "api"
NAMESPACES = ["math", "linalg", "nn", "autodiff"]

_DIRECTIVE = re.compile(r"^\.\. (?:py:)?([a-z-]+):: *(\S+)\s*$")
_OPTION = re.compile(r"^\s+:([a-z-]+):\s*(.*)$")
# directives that document one object, by a name relative to the current module
_ONE_OBJECT = {"autofunction", "autoclass", "autoexception", "autodata", "automethod",
               "function", "class", "exception", "data"}


def _resolve(full_name):
    """The object a dotted name names (None if nothing does)."""
    parts = full_name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _automodule_members(module_name, options):
    """The names autodoc documents for `automodule` with these options: the listed ones, or
    __all__ (else the public names), those defined in the module unless imported-members,
    and only those with a docstring unless undoc-members."""
    module = importlib.import_module(module_name)
    listed = options.get("members", "")
    if listed:
        names = [n.strip() for n in listed.split(",")]
    else:
        names = getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")])
        if "imported-members" not in options:
            names = [n for n in names
                     if getattr(getattr(module, n), "__module__", None) == module_name]
        if "undoc-members" not in options:
            names = [n for n in names if (getattr(getattr(module, n), "__doc__", "") or "").strip()]
    return [f"{module_name}.{n}" for n in names]


def documented_names():
    """Every dotted name the API pages document."""
    names = set()
    for page in sorted(API_DOCS.glob("*.rst")):
        lines = page.read_text().splitlines()
        current_module = "dualad"
        for i, line in enumerate(lines):
            match = _DIRECTIVE.match(line)
            if not match:
                continue
            kind, target = match.groups()
            options = {}
            for following in lines[i + 1:]:
                option = _OPTION.match(following)
                if not option:
                    break
                options[option.group(1)] = option.group(2)
            if kind in ("currentmodule", "module"):
                current_module = target
            elif kind == "automodule":
                names.add(target)
                if "members" in options:
                    names.update(_automodule_members(target, options))
            elif kind in _ONE_OBJECT:
                names.add(target if target.startswith("dualad.") else f"{current_module}.{target}")
    return names


DOCUMENTED = documented_names()
DOCUMENTED_OBJECTS = {id(obj) for obj in map(_resolve, DOCUMENTED) if obj is not None}


def _public_callables():
    return sorted(n for n, obj in vars(dualad).items()
                  if not n.startswith("_") and callable(obj)
                  and not isinstance(obj, (types.ModuleType, dualad.DType)))


def test_the_directives_name_objects_that_exist():
    # a misspelt name would document nothing (and autodoc only warns)
    assert not [n for n in DOCUMENTED if _resolve(n) is None]
    assert "dualad.GradientTape" in DOCUMENTED and "dualad.ops.sin" in DOCUMENTED


@pytest.mark.parametrize("name", _public_callables())
def test_every_top_level_callable_is_documented(name):
    obj = getattr(dualad, name)
    assert f"dualad.{name}" in DOCUMENTED or id(obj) in DOCUMENTED_OBJECTS, (
        f"dualad.{name} is in no autodoc directive of docs/api/*.rst")


@pytest.mark.parametrize("namespace,name", [(ns, n) for ns in NAMESPACES
                                            for n in getattr(dualad, ns).__all__])
def test_every_namespace_name_is_documented_under_its_namespace(namespace, name):
    assert f"dualad.{namespace}.{name}" in DOCUMENTED, (
        f"dualad.{namespace}.{name} is in no autodoc directive of docs/api/*.rst")
