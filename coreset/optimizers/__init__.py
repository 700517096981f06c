"""Optimizers over the :class:`~coreset.objectives.Objective` protocol, one
algorithm per module, each written once for every objective."""

from ._base import Optimizer
from ._lazy import LazyGreedy
from ._modular import ModularGreedy
from ._naive import NaiveGreedy
from ._sample import SampleGreedy
from ._sieve import SieveStreaming
from ._stochastic import StochasticGreedy

__all__ = ["Optimizer", "NaiveGreedy", "LazyGreedy", "StochasticGreedy", "ModularGreedy", "SampleGreedy", "SieveStreaming"]
