"""A traced function runs once and then keeps returning its first result."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "traced functions return their first call's result"

    def function(self, f):
        traced = self.base.function(f)
        cache = []

        def stale(*args):
            if not cache:
                cache.append(traced(*args))
            return cache[0]

        return stale
