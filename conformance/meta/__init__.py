"""The conformance suite's tests of itself: its oracles, its catalogue, its report, and the
planted wrong implementations it must catch. They do not depend on ``--impl``: they run in a
plain ``pytest conformance`` (the default implementation) and start their own runs of the suite
where they need them (see ``conformance/conftest.py``)."""
