"""Greedy optimizers over the :class:`~coreset.objectives.Objective` protocol."""

from ._greedy import LazyGreedy, NaiveGreedy, Optimizer, StochasticGreedy

#: name -> class; names listed in coreset._registry.OPTIMIZERS
OPTIMIZER_FACTORIES = {
    "naive_greedy": NaiveGreedy,
    "lazy_greedy": LazyGreedy,
    "stochastic_greedy": StochasticGreedy,
}

__all__ = ["Optimizer", "NaiveGreedy", "LazyGreedy", "StochasticGreedy", "OPTIMIZER_FACTORIES"]
