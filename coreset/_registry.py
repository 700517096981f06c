"""Names of everything selectable, importable without numba/torch/faiss (the
CLI builds its choices from here). The factories live in the subpackages and
register under these names; a test checks both lists agree."""

from __future__ import annotations

from .exceptions import UnknownNameError

__all__ = ["METHODS", "OBJECTIVES", "OPTIMIZERS", "METRICS", "BACKENDS", "CLASS_BUDGETS", "check_name"]

#: selection methods: "submodular" maximises ``objective`` with ``optimizer``;
#: the rest are baselines returning the same Selection type.
METHODS = ("submodular", "random", "stratified_random", "k_center_greedy")
OBJECTIVES = ("facility_location",)
OPTIMIZERS = ("naive_greedy", "lazy_greedy", "stochastic_greedy")
METRICS = ("cosine", "euclidean", "inner_product", "precomputed")
BACKENDS = ("auto", "faiss", "torch")
CLASS_BUDGETS = ("proportional", "equal", "tempered")


def check_name(parameter: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise UnknownNameError(parameter, value, choices)
    return value
