"""The estimator every selector is: ``fit(X, y)`` -> ``selection_``.

A selector implements one method, ``_select_group(group, n_select, rng)``,
that selects within one group of points (the whole input, one class, one
partition) and returns a :class:`GroupResult` in the group's own indices.
``fit`` validates once, runs it, and assembles the :class:`Selection` and its
provenance in one place (:func:`coreset._provenance.build_meta`). Wrappers
(:class:`ClassBalanced`; GreeDi later) call the inner selector's
``_select_group`` on each part and merge.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from .._validation import (
    as_embeddings,
    check_labels,
    check_not_all_identical,
    check_random_state,
    resolve_n_select,
)
from ..exceptions import ValidationError
from ..selection import Selection

log = logging.getLogger(__name__)

__all__ = ["BaseSelector", "WrapperSelector", "Group", "GroupResult", "Progress"]


class Progress:
    """Adds per-group offsets so the caller sees one running count per stage."""

    def __init__(self, callback, totals):
        self.callback, self.totals = callback, dict(totals)
        self.offset = defaultdict(int)

    def __bool__(self):
        # falsy without a callback: callers that test ``if callback:`` skip the
        # no-op calls (and deterministic optimizers run their steps in one chunk)
        return bool(self.callback)

    def __call__(self, stage, done, total):
        if self.callback:
            self.callback(stage, self.offset[stage] + done, self.totals.get(stage, total))

    def advance(self, stage, amount):
        self.offset[stage] += amount
        if self.callback:
            self.callback(stage, self.offset[stage], self.totals.get(stage, self.offset[stage]))


@dataclass
class Group:
    """One group of points to select from: ``data`` is the (n, d) embeddings, or
    the (n, n) similarity with a precomputed similarity; ``y`` their labels."""

    data: object
    y: np.ndarray | None
    precomputed: bool
    progress: Progress
    timings: dict = field(default_factory=lambda: defaultdict(float))
    info: dict = field(default_factory=dict)  # what the run learned (graph form, backend, ...)
    costs: np.ndarray | None = None
    initial: np.ndarray | None = None
    #: how many input points each row stands for (partial_fit's pooled picks); None = 1 each
    weights: np.ndarray | None = None
    #: each row's position in the fitted input (None = 0..n-1): lets a selector
    #: that resolved per-point values once in ``_prepare`` (scores) find them in a sub-group
    positions: np.ndarray | None = None
    #: rows that may be picked (a mask; None = all): the label filter keeps its
    #: suspects out of the candidates, never out of the rows to cover
    candidates: np.ndarray | None = None
    #: the label filter's score per row (higher = less suspect): which
    #: suspects come back first when a budget needs more candidates
    suspect_score: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.data.shape[0])

    def take(self, members: np.ndarray) -> "Group":
        """The sub-group of ``members`` (sharing progress, timings and info)."""
        if self.precomputed:
            d = self.data[members][:, members] if sp.issparse(self.data) else self.data[np.ix_(members, members)]
        else:
            d = self.data[members]
        return Group(d, None if self.y is None else self.y[members], self.precomputed, self.progress,
                     self.timings, self.info, None if self.costs is None else self.costs[members], None,
                     None if self.weights is None else self.weights[members],
                     _positions(self.positions, members),
                     None if self.candidates is None else self.candidates[members],
                     None if self.suspect_score is None else self.suspect_score[members])


def _positions(positions, members) -> np.ndarray:
    """``positions[members]``, where ``None`` stands for 0..n-1 (then the
    members themselves: no arange of the whole group per sub-group)."""
    if positions is not None:
        return positions[members]
    members = np.asarray(members)
    return np.flatnonzero(members) if members.dtype == bool else members.astype(np.int64)


@dataclass
class GroupResult:
    """A selection within one group, in the group's indices."""

    indices: np.ndarray
    gains: np.ndarray
    weights: np.ndarray
    objective: float = float("nan")


def gain_order(gains) -> np.ndarray:
    """The order picks merged from several groups take: by marginal gain,
    descending, NaN gains as 0, ties kept in their order."""
    return np.argsort(-np.nan_to_num(gains, nan=0.0), kind="stable")


def merge_groups(parts, *, by_gain: bool, objective: float = float("nan")) -> GroupResult:
    """The merge step of every split -> select -> merge (class budgets, the
    grouped facility location, GreeDi's partitions): ``parts`` are
    ``(indices, gains, weights)`` triples already in the parent's row numbers,
    in group order. They are concatenated; with ``by_gain`` (a selector whose
    picks are ordered by marginal gain) and more than one part, reordered by
    gain (:func:`gain_order`)."""
    if not parts:
        return GroupResult(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), objective)
    indices, gains, weights = (np.concatenate([p[i] for p in parts]) for i in range(3))
    if by_gain and len(parts) > 1:
        order = gain_order(gains)
        indices, gains, weights = indices[order], gains[order], weights[order]
    return GroupResult(indices, gains, weights, objective)


def weights_from_assign(assign: np.ndarray, sel: np.ndarray, point_weights=None) -> np.ndarray:
    """Cluster sizes: how many points (or how much point weight) have each
    selected point as representative."""
    pos = np.full(assign.shape[0], -1, np.int64)
    pos[sel] = np.arange(sel.size)
    return np.bincount(pos[assign], weights=point_weights, minlength=sel.size).astype(np.float64)


class BaseSelector(BaseEstimator):
    """Base of every selector. Subclasses store their ``__init__`` parameters
    (scikit-learn rules) and implement ``_select_group``."""

    #: fit needs labels
    needs_labels = False
    #: accepts a precomputed similarity as X
    accepts_precomputed = True
    #: honours ``Group.candidates``: the label filter (``label_filter``) can
    #: keep its suspects out of what this selector picks
    supports_label_filter = False

    # -- to implement --------------------------------------------------------------
    def _select_group(self, group: Group, n_select: int, rng: np.random.Generator) -> GroupResult:
        raise NotImplementedError

    def _select_groups(self, group: Group, members, budgets, rng) -> GroupResult:
        """Split -> select -> merge: ``budgets[g]`` picks within each sub-group
        ``group.take(members[g])``, merged by :func:`merge_groups` (by gain for a
        selector whose picks are ordered by gain). The class budget's step
        (:class:`ClassBalanced`). Default: ``_select_group`` on each sub-group;
        a selector may do every group at once when that is cheaper and gives
        the same result (the submodular selector's dense facility location)."""
        parts = []
        objective = 0.0
        for m, b in zip(members, budgets):
            if b == 0:
                continue
            res = self._select_group(group.take(m), int(b), rng)
            group.progress.advance("graph", m.size)
            group.progress.advance("optimize", res.indices.size)
            objective += res.objective
            parts.append((m[res.indices], res.gains, res.weights))
        return merge_groups(parts, by_gain=getattr(self, "merge_by_gain", False), objective=objective)

    def _prepare(self, group: Group, rng) -> "BaseSelector":
        """A copy with what depends on the whole input resolved once (before any
        split into classes or partitions). Default: self."""
        return self

    def _describe(self) -> dict:
        """Provenance entries for ``Selection.meta``."""
        return {"method": getattr(self, "method_name", type(self).__name__)}

    def _is_precomputed(self) -> bool:
        return False

    # -- the estimator --------------------------------------------------------------
    def _validate(self, X, y, callback, costs=None, initial_subset=None):
        """Validate the input once; returns (group, n_select, rng)."""
        precomputed = self._is_precomputed()
        if precomputed:
            if not self.accepts_precomputed:
                raise ValidationError(f"{type(self).__name__} needs embeddings; got a precomputed similarity")
            from ..similarity import as_similarity

            data = as_similarity(X)
        else:
            data = as_embeddings(X)
            check_not_all_identical(data)
        n = data.shape[0]
        k = resolve_n_select(n, self.n_select, self.fraction)
        if y is not None:
            y = check_labels(y, n)
        elif self.needs_labels:
            raise ValidationError(f"{self._display_name()} needs labels y; got y=None")
        rng = check_random_state(self.random_state)
        group = Group(data, y, precomputed, Progress(callback, {"optimize": k, "graph": n}))
        if costs is not None:
            group.costs = np.asarray(costs, dtype=np.float64)
            if group.costs.shape != (n,):
                raise ValidationError(f"costs must have shape ({n},) (one per element); got {group.costs.shape}")
        if initial_subset is not None:
            from ..optimizers._base import check_initial

            group.initial = check_initial(initial_subset, n)
            if group.initial.size > k:
                raise ValidationError(
                    f"initial_subset has {group.initial.size} points but the selection's size is {k}; "
                    "n_select / fraction is the final size, initial points included")
        return group, k, rng

    def _display_name(self) -> str:
        return f"method={getattr(self, 'method_name', type(self).__name__)!r}"

    # -- the label filter (docs/label-noise.md) ------------------------------------
    def _label_filter_owner(self):
        """The selector whose ``label_filter`` / ``label_filter_threshold`` apply."""
        return self

    def _label_filter_spec(self):
        """``(detector, threshold)`` validated, or None when no filter applies:
        ``label_filter=None``, or ``"auto"`` on a selector that cannot keep rows
        out of its candidates (an explicit detector there is an error)."""
        from ._label_noise import check_label_filter

        owner = self._label_filter_owner()
        name, threshold = check_label_filter(getattr(owner, "label_filter", None),
                                             getattr(owner, "label_filter_threshold", None))
        if name is None or (name == "auto" and not self.supports_label_filter):
            return None
        if not self.supports_label_filter:
            raise ValidationError(f"label_filter={name!r} does not apply to {self._display_name()}: it keeps "
                                  "suspects out of the submodular and random selectors' candidates; "
                                  "use label_filter=None here")
        return name, threshold

    def _run_label_filter(self, spec, group: Group):
        """Find the label suspects of the whole input once, and keep them out
        of ``group``'s candidates (they stay in the rows to cover)."""
        if spec is None:
            return None
        name, threshold = spec
        if group.y is None:
            if name == "auto":
                return None
            raise ValidationError(f"label_filter={name!r} needs labels y; got y=None")
        from ._label_noise import detect

        rs = self.random_state
        seed = int(rs) if isinstance(rs, (int, np.integer)) and not isinstance(rs, bool) else 0
        found = detect(group.data, group.y, name, threshold, precomputed=group.precomputed, seed=seed)
        group.timings["label_filter"] += found.seconds
        if found.suspects.size:
            group.candidates = ~found.mask
            group.suspect_score = found.score
        log.info("label filter %s (threshold %g): %d suspects of %d rows", found.method, found.threshold,
                 found.suspects.size, group.n)
        return found

    def fit(self, X, y=None, *, costs=None, initial_subset=None, callback=None):
        """Select from ``X`` (embeddings, or a similarity when the selector is
        configured for a precomputed one). ``y``: labels, optional unless the
        selector needs them. ``costs``: one positive cost per point (knapsack,
        with the selector's ``budget``). ``initial_subset``: a warm start, kept
        and counted in the final size. ``callback(stage, done, total)``:
        progress. Sets ``selection_``, ``ranking_``, ``weights_``, ``gains_``,
        ``n_features_in_``."""
        t0 = time.perf_counter()
        spec = self._label_filter_spec()
        group, k, rng = self._validate(X, y, callback, costs, initial_subset)
        seed_state = self.random_state
        t_validate = time.perf_counter() - t0
        found = self._run_label_filter(spec, group)
        prepared = self._prepare(group, rng)
        res = prepared._select_group(group, k, rng)
        done = group.progress.offset["graph"]
        if done < group.n:
            group.progress.advance("graph", group.n - done)
        from .._provenance import build_meta

        timings = {"validate": t_validate, **group.timings, "total": time.perf_counter() - t0}
        meta = build_meta(prepared, group, res, random_state=seed_state, timings=timings, source=X)
        if found is not None:
            meta["label_filter"] = found.describe()
        self.selection_ = Selection(indices=res.indices, weights=res.weights, gains=res.gains,
                                    objective=res.objective,
                                    labels=None if group.y is None else group.y[res.indices], meta=meta,
                                    suspects=None if found is None else found.suspects)
        self.ranking_ = self.selection_.indices
        self.weights_ = self.selection_.weights
        self.gains_ = self.selection_.gains
        self.n_features_in_ = int(np.shape(X)[1])
        return self

    def transform(self, X):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "ranking_")
        return np.asarray(X)[self.ranking_]

    def fit_transform(self, X, y=None, **fit_params):
        return self.fit(X, y, **fit_params).transform(X)


class WrapperSelector(BaseSelector):
    """A selector around another one (``self.selector``): ClassBalanced,
    Deduplicated, GreeDi. Without a size of its own it takes the inner
    selector's ``n_select`` / ``fraction`` (and ``random_state``)."""

    def _label_filter_owner(self):
        inner = getattr(self, "selector", None)
        return inner._label_filter_owner() if isinstance(inner, BaseSelector) else self

    def _fit_with_inner_size(self, X, y, fit_params):
        """``self`` fitted with the inner selector's size, or None when this
        wrapper has a size of its own."""
        if self.n_select is not None or self.fraction is not None:
            return None
        inner_size = (getattr(self.selector, "n_select", None), getattr(self.selector, "fraction", None))
        if inner_size == (None, None):
            raise ValidationError(f"give exactly one of n_select or fraction (to {type(self).__name__} or to the "
                                  "selector it wraps); got neither")
        from sklearn.base import clone

        wrapped = clone(self)
        wrapped.n_select, wrapped.fraction = inner_size
        if wrapped.random_state is None:
            wrapped.random_state = getattr(self.selector, "random_state", None)
        wrapped.fit(X, y, **fit_params)
        self.__dict__.update({k: v for k, v in wrapped.__dict__.items() if k.endswith("_")})
        return self

