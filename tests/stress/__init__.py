"""The stress suite: seeded random programs differentiated with gc forced at every allocation,
threads sharing Variables and compiled functions, pickling across processes, and long training
loops under a memory bound. Every module is marked `stress`; run only these with
`python -m pytest tests -m stress`. DUALAD_STRESS_SECONDS (see budget.py) lengthens them."""
