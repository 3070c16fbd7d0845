"""A traced function keys its trace cache by the shapes and dtypes of its tensor arguments only:
a call with another Python number replays the trace made with the first one."""
import numbers

from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "traced functions ignore a change of a Python-number argument"

    def function(self, f):
        traced = self.base.function(f)
        frozen = {}

        def call(*args):
            key = tuple(i for i, a in enumerate(args) if isinstance(a, numbers.Number))
            first = frozen.setdefault(key, {i: args[i] for i in key})
            return traced(*(first.get(i, a) for i, a in enumerate(args)))

        return call
