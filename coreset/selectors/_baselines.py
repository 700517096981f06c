"""Baselines with the same return type as the submodular selectors."""

from __future__ import annotations

import time

import numpy as np

from .._registry import METRICS, check_name
from ..exceptions import ValidationError
from ._base import BaseSelector, GroupResult

__all__ = ["RandomSelector", "StratifiedRandomSelector", "KCenterSelector", "k_center_greedy"]


def k_center_greedy(X: np.ndarray, n_select: int, rng: np.random.Generator, *, metric="cosine", initial=None):
    """Farthest-first traversal (Gonzalez; Sener & Savarese's core-set baseline):
    start at a seeded random point, or at the centres ``initial`` (distinct
    indices, taken first in their order: Sener & Savarese grow the labelled
    pool this way), then repeatedly take the point farthest from its nearest
    pick. Distances are euclidean in the metric's space (rows normalised for
    cosine). Returns (indices, radii, cluster sizes): ``radii[t]`` is the
    covering radius just before pick t (inf for the first).
    O(N * n_select * d) time, O(N) memory."""
    Z = np.asarray(X, dtype=np.float64)
    if metric == "cosine":
        scale = np.abs(Z).max(axis=1, keepdims=True)
        scale[scale == 0] = 1.0
        Z = Z / scale
        Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    Z = Z.astype(np.float32) if np.abs(Z).max() < 1e18 else Z
    n = Z.shape[0]
    sq = np.einsum("ij,ij->i", Z, Z)
    initial = np.zeros(0, np.int64) if initial is None else np.asarray(initial, np.int64)
    first = int(initial[0]) if initial.size else int(rng.integers(0, n))
    sel = np.empty(n_select, np.int64)
    radii = np.empty(n_select, np.float64)
    owner = np.zeros(n, np.int64)
    dist = np.full(n, np.inf)
    nxt, r = first, np.inf
    for t in range(n_select):
        if t < initial.size:  # a given centre instead of the farthest point
            nxt = int(initial[t])
        sel[t], radii[t] = nxt, r
        d = np.maximum(sq + sq[nxt] - 2.0 * (Z @ Z[nxt]), 0.0)
        d[nxt] = 0.0
        closer = d < dist
        dist[closer] = d[closer]
        owner[closer] = t
        dist[sel[: t + 1]] = -1.0  # never pick twice
        nxt = int(np.argmax(dist))
        r = float(np.sqrt(max(dist[nxt], 0.0)))
        dist[sel[: t + 1]] = 0.0
    weights = np.bincount(owner, minlength=n_select).astype(np.float64)
    return sel, radii, weights


class RandomSelector(BaseSelector):
    """A seeded uniform sample without replacement; weights n / n_select each
    (every pick stands for the same share), gains NaN. With ``initial_subset``
    in ``fit`` (a warm start), those rows come first and the rest are drawn
    from the other rows.

    ``label_filter`` (None by default: the plain baseline) draws only from the
    rows the label filter keeps, as :class:`SubmodularSelector` does: "random
    with the same budget from the filtered rows" (``docs/label-noise.md``)."""

    method_name = "random"
    supports_label_filter = True

    def __init__(self, n_select=None, *, fraction=None, random_state=None, label_filter=None,
                 label_filter_threshold=None):
        self.n_select = n_select
        self.fraction = fraction
        self.random_state = random_state
        self.label_filter = label_filter
        self.label_filter_threshold = label_filter_threshold

    def _select_group(self, group, n_select, rng):
        t = time.perf_counter()
        n = group.n
        initial = group.initial if group.initial is not None else np.zeros(0, np.int64)
        draw = n_select - initial.size  # a warm start is kept first; the rest drawn from the other rows
        if group.candidates is not None and not group.candidates.all():  # the label filter's suspects
            from ._label_noise import guard_candidates

            cand, score = group.candidates.copy(), group.suspect_score.copy()
            cand[initial], score[initial] = False, -np.inf  # in already
            pool = np.setdiff1d(np.flatnonzero(guard_candidates(cand, score, draw)), initial)
        else:
            pool = np.setdiff1d(np.arange(n), initial) if initial.size else n
        sel = np.sort(rng.choice(pool, size=draw, replace=False)).astype(np.int64)
        sel = np.concatenate([initial, sel]) if initial.size else sel
        group.timings["optimize"] += time.perf_counter() - t
        group.progress("optimize", n_select, n_select)
        return GroupResult(sel, np.full(n_select, np.nan), np.full(n_select, n / n_select))

    def _describe(self):
        return {"method": self.method_name}


class StratifiedRandomSelector(RandomSelector):
    """Random within each class, class shares proportional to class sizes:
    ``ClassBalanced(RandomSelector(), policy="proportional")``."""

    method_name = "stratified_random"
    needs_labels = True

    def fit(self, X, y=None, **fit_params):
        from ._class_balanced import ClassBalanced

        if y is None:
            raise ValidationError("method='stratified_random' needs labels y; got y=None")
        inner = ClassBalanced(RandomSelector(label_filter=self.label_filter,
                                             label_filter_threshold=self.label_filter_threshold),
                              policy="proportional", n_select=self.n_select, fraction=self.fraction,
                              random_state=self.random_state)
        inner.fit(X, y, **fit_params)
        sel = inner.selection_
        meta = dict(sel.meta, method=self.method_name, class_budget=None, min_per_class=None, alpha=None)
        self.selection_ = sel.with_meta(**meta)
        self.ranking_, self.weights_, self.gains_ = sel.indices, sel.weights, sel.gains
        self.n_features_in_ = inner.n_features_in_
        return self


class KCenterSelector(BaseSelector):
    """k-center greedy (farthest-first traversal) in the metric's space;
    weights are the sizes of the Voronoi cells, gains the covering radius
    just before each pick (inf for the first). With ``initial_subset`` in
    ``fit``, the traversal starts from those centres (kept first, in order)
    instead of a random point."""

    method_name = "k_center_greedy"
    accepts_precomputed = False

    def __init__(self, n_select=None, *, fraction=None, metric="cosine", random_state=None):
        self.n_select = n_select
        self.fraction = fraction
        self.metric = metric
        self.random_state = random_state

    def _is_precomputed(self):
        if self.metric == "precomputed":
            raise ValidationError("method='k_center_greedy' needs embeddings; got metric='precomputed'")
        check_name("metric", self.metric, METRICS)
        return False

    def _select_group(self, group, n_select, rng):
        t = time.perf_counter()
        sel, radii, weights = k_center_greedy(group.data, n_select, rng, metric=self.metric, initial=group.initial)
        group.timings["optimize"] += time.perf_counter() - t
        group.progress("optimize", n_select, n_select)
        return GroupResult(sel, radii, weights)

    def _describe(self):
        return {"method": self.method_name, "metric": self.metric}
