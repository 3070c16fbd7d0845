"""dualad's benchmark suite (pytest-benchmark) and its report command: `python -m bench`.

See bench/README.md. The suites are not part of the default test run (pyproject's testpaths is
`tests`); run them with `python -m pytest bench` or through the report command."""
