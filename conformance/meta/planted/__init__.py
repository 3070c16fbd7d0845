"""Deliberately wrong implementations, to show the conformance suite catches bugs.

Each module defines ``Adapter``: a genuine adapter (dualad by default; another
with ``CONFORMANCE_PLANTED_BASE=tensorflow`` etc., for an identity dualad does
not pass) with exactly one behaviour broken. Run one with
``pytest conformance/ --impl=conformance.meta.planted.wrong_sin:Adapter``.
"""
