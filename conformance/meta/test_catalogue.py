"""identities.md and the tests' identity markers describe the same identities."""
from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

SUITE = Path(__file__).resolve().parents[1]  # conformance/, whose test modules carry the markers
ROW = re.compile(r"^\| (?P<id>[A-Z]+-[A-Z]+-\d\d) \|.*\| (?P<tests>[^|]+) \|$")


def catalogue() -> dict[str, set[str]]:
    """identity ID -> the tests identities.md lists for it."""
    rows = {}
    for line in (SUITE / "identities.md").read_text().splitlines():
        match = ROW.match(line.strip())
        if match:
            rows[match["id"]] = {t.strip() for t in match["tests"].split("<br>")}
    return rows


def markers() -> dict[str, set[str]]:
    """identity ID -> the tests marked with it."""
    found: dict[str, set[str]] = {}
    for path in sorted(SUITE.glob("test_*.py")):
        module = importlib.import_module(f"conformance.{path.stem}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("test_") or function.__module__ != module.__name__:
                continue
            for mark in getattr(function, "pytestmark", []):
                if mark.name == "identity":
                    for identity in mark.args:
                        found.setdefault(identity, set()).add(f"{path.name}::{name}")
    return found


def test_catalogue_and_markers_agree():
    listed, marked = catalogue(), markers()
    assert listed, "no identities parsed from identities.md"
    assert set(listed) == set(marked), (
        f"in identities.md only: {sorted(set(listed) - set(marked))}; "
        f"marked in tests only: {sorted(set(marked) - set(listed))}"
    )
    for identity in listed:
        assert listed[identity] == marked[identity], (
            f"{identity}: identities.md lists {sorted(listed[identity])}, markers say {sorted(marked[identity])}"
        )


def test_every_identity_has_a_property_test():
    """Each identity is checked by at least one Hypothesis property, not only by examples."""
    for identity, tests in markers().items():
        functions = [getattr(importlib.import_module(f"conformance.{t.split('.py::')[0]}"), t.split("::")[1]) for t in tests]
        assert any(hasattr(f, "hypothesis") for f in functions), f"{identity} has no property test"
