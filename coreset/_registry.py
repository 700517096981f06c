"""Registries: name -> ``"module:Class"``, imported on first use, so listing
the names (the CLI's choices, the docs' tables) loads neither numba nor torch
nor faiss. One registry per family; adding a member is one line here.

``coreset.testing`` runs its common checks over every entry, and the CLI and
``docs/`` build their lists from :meth:`Registry.names`.
"""

from __future__ import annotations

import importlib

from .exceptions import UnknownNameError, ValidationError

__all__ = [
    "Registry", "OBJECTIVES", "OPTIMIZERS", "SELECTORS", "METRICS", "BACKENDS", "CLASS_BUDGETS", "METHODS",
    "check_name", "EXECUTORS",
]


class Registry:
    """A named family of classes, imported lazily."""

    def __init__(self, family: str, entries: dict[str, str]):
        self.family = family
        self._entries = dict(entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self):
        return iter(self._entries)

    def target(self, name: str) -> str:
        return self._entries[check_name(self.family, name, self._entries)]

    def get(self, name: str) -> type:
        """The class registered as ``name`` (imported now)."""
        module, _, attr = self.target(name).partition(":")
        return getattr(importlib.import_module(module), attr)

    def create(self, spec, /, **params):
        """An instance from a name (with ``params``) or an instance as is."""
        if isinstance(spec, str):
            cls = self.get(spec)
            try:
                return cls(**params)
            except TypeError as exc:
                raise ValidationError(f"{self.family}={spec!r} does not take these parameters: {exc}") from None
        if params:
            raise ValidationError(
                f"{self.family} is an instance ({type(spec).__name__}); parameters {sorted(params)} cannot apply to it")
        return spec

    def register(self, name: str, target: str) -> None:
        """Add ``name`` -> ``"module:Class"`` (for plug-ins; the package's own
        members are listed below)."""
        if not isinstance(target, str) or ":" not in target:
            raise ValidationError(f"target must be 'module:Class'; got {target!r}")
        self._entries[name] = target


def check_name(parameter: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise UnknownNameError(parameter, value, choices)
    return value


OBJECTIVES = Registry("objective", {
    "facility_location": "coreset.objectives._facility_location:FacilityLocation",
    "feature_based": "coreset.objectives._feature_based:FeatureBased",
    "graph_cut": "coreset.objectives._graph_cut:GraphCut",
    "log_determinant": "coreset.objectives._log_determinant:LogDeterminant",
    "mixture": "coreset.objectives._mixture:Mixture",
    "saturated_coverage": "coreset.objectives._saturated_coverage:SaturatedCoverage",
    "sum_redundancy": "coreset.objectives._sum_redundancy:SumRedundancy",
})

OPTIMIZERS = Registry("optimizer", {
    "naive_greedy": "coreset.optimizers._naive:NaiveGreedy",
    "lazy_greedy": "coreset.optimizers._lazy:LazyGreedy",
    "stochastic_greedy": "coreset.optimizers._stochastic:StochasticGreedy",
    "modular": "coreset.optimizers._modular:ModularGreedy",
    "sample": "coreset.optimizers._sample:SampleGreedy",
    "sieve_streaming": "coreset.optimizers._sieve:SieveStreaming",
})

#: selection methods: "submodular" maximises an objective (any objective name
#: works as a method too); the rest are baselines with the same return type.
SELECTORS = Registry("method", {
    "submodular": "coreset.selectors._submodular:SubmodularSelector",
    "random": "coreset.selectors._baselines:RandomSelector",
    "stratified_random": "coreset.selectors._baselines:StratifiedRandomSelector",
    "k_center_greedy": "coreset.selectors._baselines:KCenterSelector",
    "dedup": "coreset.selectors._dedup:DedupSelector",
    "el2n": "coreset.selectors._scores:EL2NSelector",
    "grand": "coreset.selectors._scores:GraNdSelector",
    "forgetting": "coreset.selectors._scores:ForgettingSelector",
    "uncertainty": "coreset.selectors._scores:UncertaintySelector",
    "ccs": "coreset.selectors._ccs:CCSSelector",
})

#: where GreeDi's partition tasks run (coreset/executors)
EXECUTORS = Registry("executor", {
    "local": "coreset.executors._base:LocalExecutor",
    "ray": "coreset.executors._ray:RayExecutor",
})


class _Methods:
    """Every name ``method=`` accepts: the selectors and the objectives."""

    def __iter__(self):
        return iter(SELECTORS.names() + OBJECTIVES.names())

    def __contains__(self, name):
        return name in SELECTORS or name in OBJECTIVES

    def __len__(self):
        return len(SELECTORS.names() + OBJECTIVES.names())


METHODS = _Methods()
METRICS = ("cosine", "euclidean", "inner_product", "precomputed")
BACKENDS = ("auto", "faiss", "torch")
CLASS_BUDGETS = ("proportional", "equal", "tempered", "error")
