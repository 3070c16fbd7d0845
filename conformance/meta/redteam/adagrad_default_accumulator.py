"""Adagrad ignores initial_accumulator_value and starts every accumulator at Keras' default 0.1."""
from conformance.meta.planted._base import PlantedAdapter


class Adapter(PlantedAdapter):
    bug = "Adagrad's initial_accumulator_value ignored"

    def adagrad(self, learning_rate, initial_accumulator_value, epsilon):
        return self.base.adagrad(learning_rate, 0.1, epsilon)
