"""Build the compiled core. Everything else about the package lives in pyproject.toml."""
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

# numpy's C API: the core marks the arrays it wraps read-only without a Python-level call
extensions = [Extension("dualad._core", ["dualad/_core.pyx"], extra_compile_args=["-O2"],
                        include_dirs=[numpy.get_include()],
                        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")])]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES))
