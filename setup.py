"""Build the compiled core. Everything else about the package lives in pyproject.toml."""
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

extensions = [Extension("dualad._core", ["dualad/_core.pyx"], extra_compile_args=["-O2"])]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES))
