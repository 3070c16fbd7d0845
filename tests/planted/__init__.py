"""Deliberately wrong implementations, to show the conformance suite catches bugs.

Each module defines ``Adapter``: a genuine adapter (dualad by default; another
with ``CONFORMANCE_PLANTED_BASE=tensorflow`` etc., for features dualad does not
have yet) with exactly one behaviour broken. Run one with
``pytest conformance/ --impl=tests.planted.wrong_sin:Adapter``.
"""
