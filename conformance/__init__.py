"""dualad's conformance suite: the GradientTape tutorials' identities as Hypothesis properties.

See README.md in this directory; the identities are catalogued in identities.md.
"""
