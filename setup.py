"""Build the compiled core. Everything else about the package lives in pyproject.toml.

DUALAD_CHECKED_BUILD=1 builds a checked core (Cython's boundscheck, wraparound and
initializedcheck on), so that an index out of range raises IndexError instead of corrupting
memory; CI runs the tests against it. Its C file is generated under build/checked/, apart from
the normal dualad/_core.c, so switching between the two never reuses the other's C code; pass
--force to build_ext so that the extension is recompiled:

    DUALAD_CHECKED_BUILD=1 python setup.py build_ext --inplace --force
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

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



def openmp_flags():
    """-fopenmp for compiling and linking where the C compiler accepts it (a try-compile of a
    parallel loop), else none: the core's parallel kernels then build as serial loops.
    DUALAD_NO_OPENMP=1 forces the serial build."""
    if os.environ.get("DUALAD_NO_OPENMP", "").strip().lower() not in ("", "0", "false", "no"):
        return []
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    if not shutil.which(cc[0]):
        return []
    src = ("#include <omp.h>\nint main(void) { int s = 0;\n"
           "#pragma omp parallel for reduction(+:s)\n"
           "for (int i = 0; i < 4; i++) s += i;\nreturn s == 6 && omp_get_max_threads() > 0 ? 0 : 1; }\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "omp_check.c")
        with open(path, "w") as f:
            f.write(src)
        try:
            result = subprocess.run(cc + ["-fopenmp", path, "-o", os.path.join(tmp, "omp_check")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    timeout=60)
        except (OSError, subprocess.SubprocessError):
            return []
    if result.returncode != 0:
        print("dualad: the C compiler does not accept -fopenmp; building serial kernels",
              file=sys.stderr)
        return []
    return ["-fopenmp"]


OPENMP = openmp_flags()

# numpy's C API: the core marks the arrays it wraps read-only without a Python-level call
# The core (one extension assembled from dualad/_*.pxi) and the trace/replay machine of
# dualad.function (its own extension, calling the core through _core.pxd).
# -ffp-contract=off: no fused multiply-adds, so that the kernels round each operation as numpy
# does (their results are bit-identical to numpy's). -fno-math-errno (the core): the optimizer
# kernels' square roots vectorize (errno is the only difference: sqrt is correctly rounded, and
# libm's other functions stay the same calls; gcc's per-function optimize attribute does not
# take this option).
extensions = [Extension(f"dualad.{name}", [f"dualad/{name}.pyx"],
                        extra_compile_args=["-O2", "-ffp-contract=off"]
                        + (["-fno-math-errno"] + OPENMP if name == "_core" else []),
                        extra_link_args=OPENMP if name == "_core" else [],
                        include_dirs=[numpy.get_include()],
                        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")])
              for name in ("_core", "_trace", "_special")]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES,
                            **({"build_dir": "build/checked"} if CHECKED else {})))
