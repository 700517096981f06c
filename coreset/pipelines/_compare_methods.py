"""The methods of :func:`coreset.pipelines.compare`: names, parsing, and how
each one chooses what a training run sees (a fixed selection, a schedule, or
the full data with a class-balanced loss). See docs/compare.md."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .._registry import OBJECTIVES
from ..exceptions import UnknownNameError, ValidationError

__all__ = ["COMPARE_METHODS", "POLICIES", "MethodSpec", "parse_methods", "expand_methods", "run_selection",
           "EqualCompute", "make_schedule", "FULL_DATA", "objective_params"]

#: class budget policies a method name can carry (``random_budget:<policy>``, ``<objective>:<policy>``)
POLICIES = ("proportional", "equal", "tempered")
#: objectives compared (mixture needs its children, so it is left out)
_OBJECTIVES = ("facility_location", "graph_cut", "log_determinant", "saturated_coverage", "sum_redundancy")
_SCORES = ("el2n", "grand", "forgetting", "uncertainty")
#: full-data methods: trained once per seed, not per fraction (fraction recorded as 1.0)
FULL_DATA = ("full", "full_balanced")
#: alpha of the "tempered" policy and the floor of every class budget
ALPHA, MIN_PER_CLASS = 0.5, 1
#: score selectors' preliminary probes: models x epochs (their cost is counted as selection compute)
SCORE_MODELS, SCORE_EPOCHS = 1, 5


def _all_names() -> tuple[str, ...]:
    names = ["full", "full_balanced", "full_equal_compute", "random", "stratified_random"]
    names += [f"random_budget:{p}" for p in POLICIES]
    for obj in _OBJECTIVES:
        for p in POLICIES:
            names += [f"{obj}:{p}", f"{obj}:{p}+weighted"]
    names += ["k_center_greedy", *_SCORES, "adaptive", "pruning", "infobatch"]
    return tuple(names)


#: every method name ``compare`` accepts (``"all"`` expands to these, in this order)
COMPARE_METHODS = _all_names()


@dataclass(frozen=True)
class MethodSpec:
    """A parsed method name: ``kind`` is one of full, full_balanced,
    equal_compute, random, stratified_random, random_budget, objective,
    k_center_greedy, score, adaptive, pruning, infobatch."""

    name: str
    kind: str
    objective: str | None = None
    policy: str | None = None
    weighted: bool = False

    @property
    def full_data(self) -> bool:
        return self.kind in FULL_DATA


def expand_methods(methods) -> list[str]:
    """Method names from a list or a comma-separated string; ``"all"``
    expands to :data:`COMPARE_METHODS`; duplicates dropped, order kept."""
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    try:
        methods = list(methods)
    except TypeError:
        raise ValidationError(f"methods must be a list of method names; got {type(methods).__name__}") from None
    if not methods:
        raise ValidationError(f"methods must name at least one method; choose from {', '.join(COMPARE_METHODS)}")
    out = []
    for m in methods:
        for name in (COMPARE_METHODS if m == "all" else [m]):
            if name not in out:
                out.append(name)
    return out


def parse_method(name) -> MethodSpec:
    if not isinstance(name, str) or name not in COMPARE_METHODS:
        raise UnknownNameError("method", name, COMPARE_METHODS)
    if name in ("full", "full_balanced", "random", "stratified_random", "k_center_greedy", "adaptive", "pruning",
                "infobatch"):
        return MethodSpec(name, name)
    if name == "full_equal_compute":
        return MethodSpec(name, "equal_compute")
    if name in _SCORES:
        return MethodSpec(name, "score")
    base, weighted = (name[:-len("+weighted")], True) if name.endswith("+weighted") else (name, False)
    head, _, policy = base.partition(":")
    if head == "random_budget":
        return MethodSpec(name, "random_budget", policy=policy)
    assert head in OBJECTIVES
    return MethodSpec(name, "objective", objective=head, policy=policy, weighted=weighted)


def parse_methods(methods) -> list[MethodSpec]:
    """Validate and parse method names (did-you-mean on an unknown one)."""
    return [parse_method(m) for m in expand_methods(methods)]


@dataclass
class Chosen:
    """What a selection step produced: rows (None: full data), their CRAIG
    weights (None: uniform), and its cost."""

    indices: np.ndarray | None
    weights: np.ndarray | None
    seconds: float = 0.0
    gradients: int = 0          # sample-gradients spent choosing (score probes' training)
    forward: int = 0            # forward-only rows spent choosing


def budget_counts(y, n_classes, k, policy) -> np.ndarray:
    """Per-class counts of a ``policy`` class budget of ``k`` rows, exactly as
    ``coreset.select(..., class_budget=policy, alpha=ALPHA, min_per_class=MIN_PER_CLASS)`` allocates them."""
    from ..selectors._budget import allocate_budget

    sizes = np.bincount(y, minlength=n_classes)
    present = sizes > 0
    counts = np.zeros(n_classes, dtype=np.int64)
    counts[present] = allocate_budget(sizes[present], k, policy, alpha=ALPHA,
                                      min_per_class=min(MIN_PER_CLASS, k // int(present.sum())))
    return counts


def random_with_counts(y, counts, seed) -> np.ndarray:
    """Uniformly random rows of each class ``c``, ``counts[c]`` of them (seeded)."""
    rng = np.random.default_rng([seed, 11])
    parts = [rng.choice(np.flatnonzero(y == c), size=int(n), replace=False) for c, n in enumerate(counts) if n > 0]
    return np.sort(np.concatenate(parts)).astype(np.int64)


def objective_params(objective, select_params=None) -> dict:
    """``coreset.select`` arguments of an objective method: ``select_params``,
    and for log_determinant a dense euclidean (RBF) similarity: it refuses a
    kNN graph and needs a positive semi-definite kernel (cosine may not be)."""
    params = dict(select_params or {})
    if objective == "log_determinant":
        params.setdefault("n_neighbors", None)
        params.setdefault("metric", "euclidean")
    return params


def run_selection(spec: MethodSpec, X, y, n_classes, k, seed, select_params=None) -> Chosen:
    """Choose the training rows of a fixed-selection method (random, class
    budgets, objectives, k-center, scores); other kinds return full data."""
    import coreset

    select_params = dict(select_params or {})
    t0 = time.perf_counter()
    kind = spec.kind
    if kind in ("random", "stratified_random", "k_center_greedy"):
        sel = coreset.select(X, n_select=k, y=y, method=kind, random_state=seed)
        return Chosen(np.asarray(sel.indices, dtype=np.int64), None, time.perf_counter() - t0)
    if kind == "random_budget":
        idx = random_with_counts(y, budget_counts(y, n_classes, k, spec.policy), seed)
        return Chosen(idx, None, time.perf_counter() - t0)
    if kind == "objective":
        n_present = int((np.bincount(y, minlength=n_classes) > 0).sum())
        sel = coreset.select(X, n_select=k, y=y, method=spec.objective, class_budget=spec.policy,
                             alpha=ALPHA, min_per_class=min(MIN_PER_CLASS, k // n_present), random_state=seed,
                             **objective_params(spec.objective, select_params))
        w = np.asarray(sel.weights, dtype=np.float64) if spec.weighted else None
        return Chosen(np.asarray(sel.indices, dtype=np.int64), w, time.perf_counter() - t0)
    if kind == "score":
        sel = coreset.select(X, n_select=k, y=y, method=spec.name, random_state=seed, n_models=SCORE_MODELS,
                             epochs=SCORE_EPOCHS, device="cpu")
        n = int(y.size)
        fwd = 0 if spec.name == "forgetting" else SCORE_MODELS * n  # forgetting scores during training
        return Chosen(np.asarray(sel.indices, dtype=np.int64), None, time.perf_counter() - t0,
                      gradients=SCORE_MODELS * SCORE_EPOCHS * n, forward=fwd)
    return Chosen(None, None)


class EqualCompute:
    """A schedule for ``train``: the full data in fresh seeded orders until
    exactly ``budget`` sample-gradients are spent (the last epoch is cut
    short), i.e. full data for fewer epochs at the compute of a coreset."""

    def __init__(self, budget: int):
        self.budget = int(budget)
        self.reselections, self.selection_seconds, self.forward_samples = [], 0.0, 0

    @staticmethod
    def n_epochs(budget, n):
        return max(1, math.ceil(budget / n))

    def attach(self, dataset, *, epochs, random_state=0, **_):
        self.n, self.epochs, self.random_state = len(dataset), epochs, random_state
        if epochs != self.n_epochs(self.budget, self.n):
            raise ValidationError(f"EqualCompute: epochs must be {self.n_epochs(self.budget, self.n)}; got {epochs}")
        return self

    def on_epoch_start(self, epoch, model=None):
        self.epoch = epoch

    def epoch_indices(self):
        order = np.random.default_rng([self.random_state, self.epoch, 3]).permutation(self.n).astype(np.int64)
        left = self.budget - self.epoch * self.n
        return order[:min(self.n, left)]

    def total_steps(self, batch_size):
        return None

    def rescale(self, rows, losses):
        return losses


def make_schedule(spec: MethodSpec, fraction, n, epochs, k):
    """(schedule, epochs to train) for the schedule methods; (None, epochs) otherwise."""
    from ._adaptive import AdaptiveReselection
    from ._pruning import DynamicPruning

    if spec.kind == "equal_compute":
        budget = k * epochs
        return EqualCompute(budget), EqualCompute.n_epochs(budget, n)
    if spec.kind == "adaptive":
        if fraction >= 1.0:
            raise ValidationError("method 'adaptive' needs a fraction < 1; got 1.0")
        return AdaptiveReselection(fraction, every=max(1, epochs // 5), class_budget="tempered",
                                   min_per_class=MIN_PER_CLASS, normalize="none"), epochs
    if spec.kind in ("pruning", "infobatch"):
        rule = "class_aware" if spec.kind == "pruning" else "infobatch"
        return DynamicPruning(0.5, delta=0.125, rule=rule, min_per_class=MIN_PER_CLASS if rule == "class_aware"
                              else 0, fixed_length=True, epoch_size=max(1, k)), epochs
    return None, epochs
