"""The methods of :func:`coreset.pipelines.compare`: names, parsing, and how
each one chooses what a training run sees (a fixed selection, a schedule, or
the full data with a class-balanced loss), with which quotas and loss.
See docs/compare.md."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from .._registry import OBJECTIVES, SELECTORS
from ..exceptions import UnknownNameError, ValidationError

__all__ = ["COMPARE_METHODS", "POLICIES", "MethodSpec", "parse_method", "expand_methods", "run_selection",
           "EqualCompute", "make_schedule", "FULL_DATA", "objective_params", "LOSS_SUFFIXES", "validation_split",
           "drop_quotas", "drop_recall", "budget_counts"]

#: class budget policies a method name can carry (``random_budget:<policy>``, ``<objective>:<policy>``,
#: ``rs2:<policy>``): ``sqrt`` is tempered with alpha 0.5 whatever ALPHA is; ``drop`` is DRoP's error-driven quota
POLICIES = ("proportional", "equal", "tempered", "sqrt", "drop")
#: a method name ending in ``+la`` / ``+bs`` trains with that loss, matched to the class prior of what it trains on
LOSS_SUFFIXES = {"la": "logit_adjusted", "bs": "balanced_softmax"}
#: methods whose class shares are fixed (full_balanced already rebalances; the others' shares drift)
_NO_LOSS_SUFFIX = ("full_balanced", "adaptive", "pruning", "infobatch")
#: DRoP: share of each class carved from the training rows to measure the preliminary probe's recall
VAL_FRACTION = 0.2
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
    names += [f"random_kept:{p}" for p in POLICIES]
    for obj in _OBJECTIVES:
        for p in POLICIES:
            names += [f"{obj}:{p}", f"{obj}:{p}+weighted"]
    if "ccs" in SELECTORS:  # coverage-centric selection, once it is registered
        names += [f"ccs:{p}" for p in POLICIES if p != "drop"]
    names += ["k_center_greedy", *_SCORES, "adaptive", "pruning", "infobatch"]
    names += [f"rs2:{p}" for p in POLICIES]
    return tuple(names)


#: every method name ``compare`` accepts without a loss suffix (``"all"`` expands to these, in this order);
#: each but ``_NO_LOSS_SUFFIX`` also takes ``+la`` / ``+bs``
COMPARE_METHODS = _all_names()
_ACCEPTED = COMPARE_METHODS + tuple(f"{m}+{s}" for m in COMPARE_METHODS if m not in _NO_LOSS_SUFFIX
                                    for s in LOSS_SUFFIXES)


@dataclass(frozen=True)
class MethodSpec:
    """A parsed method name: ``kind`` is one of full, full_balanced,
    equal_compute, random, stratified_random, random_budget, objective, ccs,
    k_center_greedy, score, adaptive, pruning, infobatch, rs2; ``loss`` the
    training loss (``+la`` / ``+bs``: logit_adjusted / balanced_softmax)."""

    name: str
    kind: str
    objective: str | None = None
    policy: str | None = None
    weighted: bool = False
    loss: str = "cross_entropy"

    @property
    def full_data(self) -> bool:
        return self.kind in FULL_DATA

    @property
    def normalize(self) -> str:
        """How ``train`` scales the weights: CRAIG weights renormalised within
        each class (each class keeps its budget's mass), or none."""
        return "class" if self.weighted else "none"


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
    """A method name other than the ``+aug`` ones (those: ``_compare_augment.parse_any``)."""
    if not isinstance(name, str) or name not in _ACCEPTED:
        head, _, suffix = str(name).rpartition("+")
        if suffix in LOSS_SUFFIXES and head in _NO_LOSS_SUFFIX:
            raise ValidationError(f"method {name!r}: {head!r} takes no loss suffix (+la / +bs; its class shares are "
                                  "already balanced or drift); every other method does (docs/compare.md)")
        raise UnknownNameError("method", name, _ACCEPTED)
    base, loss = name, "cross_entropy"
    head, _, suffix = name.rpartition("+")
    if suffix in LOSS_SUFFIXES:
        base, loss = head, LOSS_SUFFIXES[suffix]
    if base in ("full", "full_balanced", "random", "stratified_random", "k_center_greedy", "adaptive", "pruning",
                "infobatch"):
        return MethodSpec(name, base, loss=loss)
    if base == "full_equal_compute":
        return MethodSpec(name, "equal_compute", loss=loss)
    if base in _SCORES:
        return MethodSpec(name, "score", loss=loss)
    base, weighted = (base[:-len("+weighted")], True) if base.endswith("+weighted") else (base, False)
    head, _, policy = base.partition(":")
    if head in ("random_budget", "random_kept", "rs2", "ccs"):
        return MethodSpec(name, head, policy=policy, loss=loss)
    assert head in OBJECTIVES
    return MethodSpec(name, "objective", objective=head, policy=policy, weighted=weighted, loss=loss)


@dataclass
class Chosen:
    """What a selection step produced: rows (None: full data), their CRAIG
    weights (None: uniform), and its cost."""

    indices: np.ndarray | None
    weights: np.ndarray | None
    seconds: float = 0.0
    gradients: int = 0          # sample-gradients spent choosing (score probes' training)
    forward: int = 0            # forward-only rows spent choosing
    quotas: np.ndarray | None = None   # per-class rows per epoch of a resampling schedule


def _budget_args(policy):
    """(class_budget, alpha) of ``coreset.select`` for a named policy (not drop)."""
    return ("tempered", 0.5) if policy == "sqrt" else (policy, ALPHA)


def _floor(y, n_classes, k):
    return min(MIN_PER_CLASS, k // int((np.bincount(y, minlength=n_classes) > 0).sum()))


def budget_counts(y, n_classes, k, policy, class_errors=None) -> np.ndarray:
    """Per-class counts of a ``policy`` class budget of ``k`` rows, exactly as
    ``coreset.select(..., class_budget=policy, alpha=ALPHA, min_per_class=MIN_PER_CLASS)`` allocates them
    (``sqrt``: tempered with alpha 0.5; ``error``: by ``class_errors``, DRoP)."""
    from ..selectors._budget import allocate_budget

    sizes = np.bincount(y, minlength=n_classes)
    present = sizes > 0
    counts = np.zeros(n_classes, dtype=np.int64)
    policy, alpha = _budget_args(policy)
    errs = None if class_errors is None else np.asarray(class_errors, dtype=np.float64)[present]
    counts[present] = allocate_budget(sizes[present], k, policy, alpha=alpha, min_per_class=_floor(y, n_classes, k),
                                      class_errors=errs)
    return counts


# ---------------------------------------------------------------- DRoP quotas
def validation_split(y, fraction=VAL_FRACTION, seed=0):
    """(fit_rows, val_rows): a stratified, seeded split of the **training**
    rows: ``round(fraction * n_c)`` rows of each class go to validation, at
    least 1 when the class has 2 rows or more and never its last row (a
    class of 1 row stays in the fit part)."""
    y = np.asarray(y)
    rng = np.random.default_rng([int(seed), 17])
    val = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        m = members.size
        n_val = 0 if m < 2 else min(m - 1, max(1, int(round(fraction * m))))
        val.append(members[:n_val])
    val = np.sort(np.concatenate(val)).astype(np.int64)
    fit = np.setdiff1d(np.arange(y.size, dtype=np.int64), val, assume_unique=True)
    return fit, val


def drop_recall(X, y, n_classes, seed):
    """DRoP's preliminary model: a linear probe (``SCORE_EPOCHS`` epochs)
    trained on the fit part of :func:`validation_split`, its recall per
    class measured on the validation part (NaN for a class with no
    validation row). Returns (recall, sample-gradients, forward rows)."""
    from ._scoring import fit_probe, predict_proba

    fit, val = validation_split(y, seed=seed)
    net = fit_probe(X[fit], y[fit], n_classes=n_classes, epochs=SCORE_EPOCHS, random_state=seed, device="cpu")
    pred = predict_proba(net, X[val]).argmax(1)
    hits = np.bincount(y[val], weights=(pred == y[val]).astype(np.float64), minlength=n_classes)
    count = np.bincount(y[val], minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(count > 0, hits / np.maximum(count, 1), np.nan)
    return recall, SCORE_EPOCHS * int(fit.size), int(val.size)


def drop_quotas(recall, class_sizes, k, min_per_class=MIN_PER_CLASS) -> np.ndarray:
    """DRoP quotas (Vysogorets et al., ICLR 2025): class ``c`` gets a share
    proportional to ``1 - recall_c``, capped at its size, the surplus
    redistributed to the others in proportion to their error; they sum to
    ``k``. A class without a measured recall (NaN) counts as error 1; a class
    of zero error keeps only its floor (``min_per_class``) unless rows are left."""
    sizes = np.asarray(class_sizes, dtype=np.int64)
    r = np.asarray(recall, dtype=np.float64)
    if r.shape != sizes.shape or (np.isfinite(r) & ((r < 0) | (r > 1))).any():
        raise ValidationError(f"recall must be {sizes.size} values in [0, 1] (NaN: not measured); got {recall!r}")
    from ..selectors._budget import allocate_budget

    err = np.where(np.isnan(r), 1.0, 1.0 - r)
    present = sizes > 0
    floor = min(int(min_per_class), int(k) // int(present.sum()))
    out = np.zeros(sizes.size, dtype=np.int64)
    out[present] = allocate_budget(sizes[present], int(k), "error", min_per_class=floor, class_errors=err[present])
    return out


def _objective_with_counts(method, X, y, counts, seed, params):
    """``method`` run within each class on its count (rows of a class whose
    count is its size are all taken, each standing for itself)."""
    from ..selectors import select

    idx, w = [], []
    for c in np.flatnonzero(counts):
        m = np.flatnonzero(y == c)
        if counts[c] >= m.size:
            idx.append(m)
            w.append(np.ones(m.size))
            continue
        sel = select(X[m], n_select=int(counts[c]), method=method, random_state=seed, **params)
        idx.append(m[np.asarray(sel.indices, dtype=np.int64)])
        w.append(np.asarray(sel.weights, dtype=np.float64))
    return np.concatenate(idx).astype(np.int64), np.concatenate(w)


def random_with_counts(y, counts, seed) -> np.ndarray:
    """Uniformly random rows of each class ``c``, ``counts[c]`` of them (seeded)."""
    rng = np.random.default_rng([seed, 11])
    parts = [rng.choice(np.flatnonzero(y == c), size=int(n), replace=False) for c, n in enumerate(counts) if n > 0]
    return np.sort(np.concatenate(parts)).astype(np.int64)


def random_kept_with_counts(X, y, counts, seed) -> np.ndarray:
    """``random_with_counts`` drawn from the rows the default label filter
    keeps (``coreset.find_label_suspects``, seeded by the cell's seed):
    what the filter alone adds to random with the same class budget. A class
    with fewer kept rows than its count takes back its least suspect rows, as
    the default selection does (``guard_candidates``)."""
    from ..selectors._label_noise import find_label_suspects, guard_candidates

    found = find_label_suspects(X, y, random_state=seed)
    kept = ~found.mask
    rng = np.random.default_rng([seed, 11])
    parts = []
    for c, n in enumerate(counts):
        if n <= 0:
            continue
        rows = np.flatnonzero(y == c)
        pool = rows[guard_candidates(kept[rows], found.score[rows], int(n))]
        parts.append(rng.choice(pool, size=int(n), replace=False))
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
    budgets, objectives, ccs, k-center, scores), or the per-class quotas of
    an ``rs2`` schedule; other kinds return full data. ``drop`` quotas train
    their probe here (counted in ``gradients`` / ``forward``)."""
    from ..selectors import select

    select_params = dict(select_params or {})
    t0 = time.perf_counter()
    kind = spec.kind
    if kind in ("random", "stratified_random", "k_center_greedy"):
        sel = select(X, n_select=k, y=y, method=kind, random_state=seed)
        return Chosen(np.asarray(sel.indices, dtype=np.int64), None, time.perf_counter() - t0)
    grads = fwd = 0
    counts = None
    if spec.policy == "drop":  # quotas from a preliminary probe's validation recall: selection compute
        recall, grads, fwd = drop_recall(X, y, n_classes, seed)
        counts = drop_quotas(recall, np.bincount(y, minlength=n_classes), k)
    elif kind in ("random_budget", "random_kept", "rs2"):
        counts = budget_counts(y, n_classes, k, spec.policy)
    if kind == "rs2":
        return Chosen(None, None, time.perf_counter() - t0, gradients=grads, forward=fwd, quotas=counts)
    if kind == "random_budget":
        idx = random_with_counts(y, counts, seed)
        return Chosen(idx, None, time.perf_counter() - t0, gradients=grads, forward=fwd)
    if kind == "random_kept":
        idx = random_kept_with_counts(X, y, counts, seed)
        return Chosen(idx, None, time.perf_counter() - t0, gradients=grads, forward=fwd)
    if kind in ("objective", "ccs"):
        method = spec.objective if kind == "objective" else "ccs"
        params = objective_params(method, select_params) if kind == "objective" else {}
        if counts is not None:
            idx, w = _objective_with_counts(method, X, y, counts, seed, params)
        else:
            budget, alpha = _budget_args(spec.policy)
            sel = select(X, n_select=k, y=y, method=method, class_budget=budget, alpha=alpha,
                         min_per_class=_floor(y, n_classes, k), random_state=seed, **params)
            idx, w = np.asarray(sel.indices, dtype=np.int64), np.asarray(sel.weights, dtype=np.float64)
        return Chosen(idx, w if spec.weighted else None, time.perf_counter() - t0, gradients=grads, forward=fwd)
    if kind == "score":
        sel = select(X, n_select=k, y=y, method=spec.name, random_state=seed, n_models=SCORE_MODELS,
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

    def attach(self, dataset, *, epochs, labels=None, random_state=0, **_):
        self.n, self.epochs, self.random_state = len(dataset), epochs, random_state
        self.labels = labels
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
        """Steps of the run: whole epochs, then the cut-short last one."""
        b = int(batch_size)
        return sum(-(-min(self.n, self.budget - e * self.n) // b) for e in range(self.epochs))

    def rescale(self, rows, losses):
        return losses

    def class_prior(self):
        """The full data's class frequencies (every epoch is a random order of all rows)."""
        return np.bincount(self.labels) / self.labels.size


def make_schedule(spec: MethodSpec, fraction, n, epochs, k, chosen=None):
    """(schedule, epochs to train) for the schedule methods; (None, epochs)
    otherwise. ``rs2`` takes its per-class quotas from ``chosen`` (what
    :func:`run_selection` decided)."""
    from ._adaptive import AdaptiveReselection
    from ._pruning import DynamicPruning
    from ._resample import ResampleSchedule

    if spec.kind == "rs2":
        if chosen is None or chosen.quotas is None:
            raise ValidationError(f"method {spec.name!r} needs its quotas from run_selection")
        return ResampleSchedule(quotas=chosen.quotas), epochs
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
