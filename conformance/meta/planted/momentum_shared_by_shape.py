"""SGD keeps one velocity slot per shape instead of per variable: variables of equal shapes share
(and update twice per step) the same velocity."""
from conformance.meta.planted._base import PlantedAdapter
from conformance.meta.planted._numpy_optimizer import NumpyRuleOptimizer


class SharedSlots(NumpyRuleOptimizer):
    def apply_gradients(self, grads_and_vars):
        for g, variable in grads_and_vars:
            shape = tuple(self.base.to_numpy(variable).shape)
            self.states[id(variable)] = self.states.setdefault(("slot",) + shape, {})
        super().apply_gradients(grads_and_vars)

    def minimize(self, loss_fn, var_list):
        with self.base.tape() as tape:
            loss = loss_fn()
        self.apply_gradients(zip(tape.gradient(loss, list(var_list)), var_list))


class Adapter(PlantedAdapter):
    bug = "momentum velocity shared by variables of the same shape"

    def sgd(self, learning_rate, momentum=0.0):
        if not momentum:
            return self.base.sgd(learning_rate)

        rate = [learning_rate]

        def rule(g, state, t):
            state["v"] = momentum * state.get("v", 0.0) - rate[0] * g
            return -state["v"]

        optimizer = SharedSlots(self.base, rule)
        optimizer.set_learning_rate = lambda value: rate.__setitem__(0, value)
        return optimizer
