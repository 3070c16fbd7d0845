"""The first multiply recorded in each tape context is lost (its result is treated as a constant).

A loop that multiplies x in k times then gets (k-1)·x^(k-1) instead of k·x^(k-1).
"""
from conformance.meta.planted._base import PlantedAdapter, TapeWrapper


class FirstMultiplyTape(TapeWrapper):
    def __init__(self, context, adapter):
        super().__init__(context)
        self.adapter = adapter

    def __enter__(self):
        tape = super().__enter__()
        self.adapter.fresh_tapes += 1
        return tape

    def __exit__(self, *exc_info):
        self.adapter.fresh_tapes = 0
        return super().__exit__(*exc_info)


class Adapter(PlantedAdapter):
    bug = "the first multiply in a tape is not recorded"
    fresh_tapes = 0  # tapes opened that have not recorded a multiply yet

    def tape(self, persistent=False, watch_accessed_variables=True):
        return FirstMultiplyTape(self.base.tape(persistent=persistent, watch_accessed_variables=watch_accessed_variables), self)

    def multiply(self, a, b):
        product = self.base.multiply(a, b)
        if self.fresh_tapes:
            self.fresh_tapes = 0
            return self.base.stop_gradient(product)
        return product
