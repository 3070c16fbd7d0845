"""The wrapper every planted bug starts from: delegate everything to a genuine adapter."""
from __future__ import annotations

import numbers
import os

from conformance import adapters

BASE_ENV = "CONFORMANCE_PLANTED_BASE"


class PlantedAdapter:
    bug = "none"
    skips_fail = False  # a skip must not count as the bug being caught

    def __init__(self):
        self.base = adapters.load(os.environ.get(BASE_ENV, "dualad"))
        self.name = f"{self.base.name} with a planted bug ({self.bug})"

    def __getattr__(self, attribute):
        return getattr(self.base, attribute)

    def stop(self, x):
        """stop_gradient that leaves Python numbers alone."""
        return x if isinstance(x, numbers.Number) else self.base.stop_gradient(x)


class TapeWrapper:
    """A protocol tape around the base adapter's tape; subclasses alter gradient()."""

    def __init__(self, context):
        self.context = context
        self.inner = None

    def __enter__(self):
        self.inner = self.context.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.context.__exit__(*exc_info)

    def watch(self, tensors):
        self.inner.watch(tensors)

    def gradient(self, target, sources, **options):
        return self.inner.gradient(target, sources, **options)

    def __getattr__(self, attribute):  # stop_recording, jacobian, batch_jacobian: unchanged
        return getattr(self.inner, attribute)
