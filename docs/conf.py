"""Sphinx configuration of dualad's documentation.

Build (warnings are errors, as in CI):  python -m sphinx -W --keep-going -b html docs <outdir>
autodoc imports dualad, so the compiled core must be built first (pip install -e . or
python setup.py build_ext --inplace).
"""
import os
import sys

# the checkout's dualad (built in place), not another installed copy
sys.path.insert(0, os.path.abspath(".."))

import dualad  # noqa: E402

project = "dualad"
author = "the dualad authors"
copyright = "the dualad authors"
release = dualad.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",   # the Markdown READMEs of conformance/ and bench/
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]

# The compiled classes carry Cython's embedded signature as the first docstring line
# ("Tensor.numpy(self)"): autodoc reads it from there (inspect cannot see into the core).
autodoc_docstring_signature = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = True

html_theme = "alabaster"
html_title = f"dualad {release}"


def _drop_self(app, what, name, obj, options, signature, return_annotation):
    """Cython's embedded signatures of methods name ``self`` ("Tensor.numpy(self)"), which
    Python-defined methods never show: drop it so both kinds read alike."""
    if what in ("method", "property") and signature and signature.startswith("(self"):
        rest = signature[len("(self"):]
        signature = "(" + rest.lstrip(", ") if rest.startswith((",", ")")) else signature
    return signature, return_annotation


def setup(app):
    app.connect("autodoc-process-signature", _drop_self)
