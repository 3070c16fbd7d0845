"""Build the compiled core. Everything else about the package lives in pyproject.toml.

DUALAD_CHECKED_BUILD=1 builds a checked core (Cython's boundscheck, wraparound and
initializedcheck on), so that an index out of range raises IndexError instead of corrupting
memory; CI runs the tests against it. Its C file is generated under build/checked/, apart from
the normal dualad/_core.c, so switching between the two never reuses the other's C code; pass
--force to build_ext so that the extension is recompiled:

    DUALAD_CHECKED_BUILD=1 python setup.py build_ext --inplace --force
"""
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "initializedcheck": False,
    "cdivision": True,
    "embedsignature": True,
}

CHECKED = os.environ.get("DUALAD_CHECKED_BUILD", "").strip().lower() not in ("", "0", "false", "no")
if CHECKED:
    DIRECTIVES.update(boundscheck=True, wraparound=True, initializedcheck=True)

# numpy's C API: the core marks the arrays it wraps read-only without a Python-level call
# The core (one extension assembled from dualad/_*.pxi) and the trace/replay machine of
# dualad.function (its own extension, calling the core through _core.pxd).
extensions = [Extension(f"dualad.{name}", [f"dualad/{name}.pyx"], extra_compile_args=["-O2"],
                        include_dirs=[numpy.get_include()],
                        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")])
              for name in ("_core", "_trace", "_special")]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES,
                            **({"build_dir": "build/checked"} if CHECKED else {})))
