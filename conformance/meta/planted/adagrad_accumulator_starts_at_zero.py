"""Adagrad ignores initial_accumulator_value: the accumulator starts at 0 (torch's default)."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "Adagrad's accumulator starts at 0"

    def adagrad(self, learning_rate, initial_accumulator_value, epsilon):
        return self.base.adagrad(learning_rate, initial_accumulator_value=0.0, epsilon=epsilon)
