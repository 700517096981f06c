"""Near-duplicate removal, SemDeDup-style (Abbas et al., 2023):
:class:`DedupSelector` keeps one representative per group of near duplicates;
:class:`Deduplicated` removes near duplicates, then runs a selector on the
representatives. How groups are found: ``_dedup_groups`` and ``docs/dedup.md``.
"""

from __future__ import annotations

import time

import numpy as np

from .._validation import as_embeddings
from ..exceptions import ValidationError
from ..selection import Selection
from ._base import BaseSelector, Group, GroupResult, Progress, WrapperSelector
from ._dedup_groups import check_dedup_params, find_duplicate_groups

__all__ = ["DedupSelector", "Deduplicated"]


class DedupSelector(BaseSelector):
    """Near-duplicate removal: one representative per group (module doc).

    Parameters
    ----------
    threshold : similarity at or above which two points are near duplicates,
        in (0, 1]: cosine similarity, or for ``metric="euclidean"`` the RBF
        similarity ``exp(-gamma |x - y|^2)`` with gamma = 1 / the median
        squared distance (so ``t`` means ``|x - y|^2 <= -ln(t) * median``).
    metric : "cosine" or "euclidean".
    n_neighbors : at most this many near-duplicate edges per point (its most
        similar); larger groups connect through their members' edges.
    exact : None (exact search up to 20,000 distinct rows, partitioned above),
        True or False.
    n_probe : partitioned search: cells each point is compared with.
    device : "auto", "cpu", "cuda" or "cuda:N" (torch products on a GPU).
    random_state : seeds the partition's k-means.

    n_select, fraction : None (the default): keep every representative, the
        threshold decides the size. Given (one of them), the representatives
        are reduced further to that size by facility location, as
        ``Deduplicated(SubmodularSelector(...))`` does: the "dedup, then
        select" of ``coreset.select(X, k, method="dedup")``.

    ``fit(X, y)`` sets ``selection_``: the representatives in ascending row
    order, weights = group sizes (they sum to N), gains NaN (no objective),
    labels ``y`` of the representatives; ``meta`` adds ``threshold``,
    ``n_removed``, ``n_groups`` (groups of two or more points),
    ``n_exact_duplicates`` and ``largest_group``. Also ``labels_``: the group
    of every point (numbered like the selection). With ``n_select`` /
    ``fraction`` the selection is :class:`Deduplicated`'s (its meta with
    ``method="dedup"``) and ``labels_`` is not set.
    """

    method_name = "dedup"
    accepts_precomputed = False

    def __init__(self, threshold=0.95, *, metric="cosine", n_neighbors=16, exact=None, n_probe=3, device="auto",
                 n_select=None, fraction=None, random_state=None):
        self.threshold = threshold
        self.metric = metric
        self.n_neighbors = n_neighbors
        self.exact = exact
        self.n_probe = n_probe
        self.device = device
        self.n_select = n_select
        self.fraction = fraction
        self.random_state = random_state

    def _select_group(self, group, n_select, rng):
        raise ValidationError("DedupSelector cannot run inside a wrapper that splits the input (a class budget); "
                              "use ClassBalanced(Deduplicated(selector), n_select=...) to deduplicate within classes")

    def _describe(self):
        return {"method": self.method_name, "metric": self.metric, "n_neighbors": int(self.n_neighbors),
                "threshold": float(self.threshold)}

    def _fit_sized(self, X, y, callback, fit_params):
        from ..similarity import AutoSimilarity
        from ._submodular import SubmodularSelector

        inner = SubmodularSelector(similarity=AutoSimilarity(self.metric), random_state=self.random_state)
        wrapped = Deduplicated(inner, self.threshold, metric=self.metric, n_neighbors=self.n_neighbors,
                               exact=self.exact, n_probe=self.n_probe, device=self.device, n_select=self.n_select,
                               fraction=self.fraction, random_state=self.random_state)
        wrapped.fit(X, y, callback=callback, **fit_params)
        sel = wrapped.selection_
        self.selection_ = sel.with_meta(method=self.method_name, threshold=float(self.threshold))
        self.ranking_, self.weights_, self.gains_ = sel.indices, sel.weights, sel.gains
        self.n_features_in_ = wrapped.n_features_in_
        self.__dict__.pop("labels_", None)  # picks do not stand for whole groups here
        return self

    def fit(self, X, y=None, *, callback=None, **fit_params):
        """Find the near-duplicate groups of ``X`` and keep one point of each
        (then reduce to ``n_select`` / ``fraction`` when given)."""
        from .._provenance import build_meta
        from .._validation import check_labels, check_random_state

        if self.n_select is not None or self.fraction is not None:
            return self._fit_sized(X, y, callback, fit_params)
        for key in ("costs", "initial_subset"):
            if fit_params.pop(key, None) is not None:
                raise ValidationError(f"{key}= applies to method='dedup' only with n_select or fraction (without "
                                      "them every group's representative is kept)")
        if fit_params:
            raise TypeError(f"fit() got unexpected keyword arguments {sorted(fit_params)}")
        t_start = time.perf_counter()
        _, torch_device = check_dedup_params(self.threshold, self.metric, self.n_neighbors, self.exact,
                                             self.n_probe, self.device)
        given, X = X, as_embeddings(X)
        n = X.shape[0]
        if y is not None:
            y = check_labels(y, n)
        seed = int(check_random_state(self.random_state).integers(0, 2**31 - 1))
        group = Group(X, y, False, Progress(callback, {"graph": n}))
        group.timings["validate"] = time.perf_counter() - t_start
        res = find_duplicate_groups(X, self.threshold, metric=self.metric, n_neighbors=self.n_neighbors,
                                    exact=self.exact, n_probe=self.n_probe, device=self.device, random_state=seed,
                                    callback=group.progress, timings=group.timings, validate=False)
        group.info.update(res.info)
        group.progress.advance("graph", n)  # the search counted distinct rows; report all n as done
        reps = res.representatives
        result = GroupResult(reps, np.full(reps.size, np.nan), res.sizes.astype(np.float64))
        timings = {**group.timings, "total": time.perf_counter() - t_start}
        meta = build_meta(self, group, result, random_state=self.random_state, timings=timings, source=given)
        meta.update(backend="torch" if torch_device else "numpy", device=torch_device or "cpu", gamma=res.gamma,
                    n_removed=int(n - reps.size), n_groups=int((res.sizes > 1).sum()),
                    n_exact_duplicates=res.n_exact_duplicates, largest_group=int(res.sizes.max()))
        self.selection_ = Selection(indices=reps, weights=result.weights, gains=result.gains,
                                    labels=None if y is None else y[reps], meta=meta)
        self.labels_ = res.labels
        self.ranking_, self.weights_, self.gains_ = reps, self.selection_.weights, self.selection_.gains
        self.n_features_in_ = int(X.shape[1])
        return self


class Deduplicated(WrapperSelector):
    """Wrap ``selector`` so it selects among near-duplicate representatives.

    1. :func:`find_duplicate_groups` (the groups of :class:`DedupSelector`,
       same parameters) on the input;
    2. ``selector`` runs on the representatives only, so it never picks two
       points of one group;
    3. the picks are mapped back to the input's rows and reweighted: every
       group goes to the pick most similar to its representative (a pick's
       own group goes to itself; others by an exact nearest-pick search in the
       dedup metric), and a pick's weight is the total size of its groups, so
       the weights count input points and sum to N. The inner selector's
       weights count representatives and are replaced; its gains and
       objective are kept (they are values on the representatives).

    ``n_select`` / ``fraction`` are the final size (``fraction`` of the input's
    N, as everywhere); they default to the inner selector's, and must not
    exceed the number of groups. ``costs`` and ``initial_subset`` are for the
    input's rows: a group is represented by its representative's cost, and an
    initial point by its group's representative.
    """

    accepts_precomputed = False

    def __init__(self, selector, threshold=0.95, *, metric="cosine", n_neighbors=16, exact=None, n_probe=3,
                 device="auto", n_select=None, fraction=None, random_state=None):
        self.selector = selector
        self.threshold = threshold
        self.metric = metric
        self.n_neighbors = n_neighbors
        self.exact = exact
        self.n_probe = n_probe
        self.device = device
        self.n_select = n_select
        self.fraction = fraction
        self.random_state = random_state

    @property
    def method_name(self):
        return getattr(self.selector, "method_name", type(self.selector).__name__)

    @property
    def needs_labels(self):
        return getattr(self.selector, "needs_labels", False)

    def _is_precomputed(self):
        if self.selector._is_precomputed():
            raise ValidationError("Deduplicated needs embeddings (near duplicates are found on X); the inner "
                                  "selector is configured for a precomputed similarity")
        return False

    def fit(self, X, y=None, **fit_params):
        if not isinstance(self.selector, BaseSelector) or isinstance(self.selector, DedupSelector):
            raise ValidationError(f"selector must be a coreset selector that selects a given number of points; "
                                  f"got {type(self.selector).__name__}")
        check_dedup_params(self.threshold, self.metric, self.n_neighbors, self.exact, self.n_probe, self.device)
        return self._fit_with_inner_size(X, y, fit_params) or super().fit(X, y, **fit_params)

    def _prepare(self, group, rng):
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._inner = self.selector._prepare(group, rng)
        new._stats = {"n_removed": 0, "n_groups": 0, "n_exact_duplicates": 0}
        return new

    def _describe(self):
        d = self._inner._describe()
        d.update(dedup_threshold=float(self.threshold), dedup_metric=self.metric,
                 **{f"dedup_{k}": v for k, v in self._stats.items()})
        return d

    def _select_group(self, group, n_select, rng):
        seed = int(rng.integers(0, 2**31 - 1))
        found = find_duplicate_groups(group.data, self.threshold, metric=self.metric, n_neighbors=self.n_neighbors,
                                      exact=self.exact, n_probe=self.n_probe, device=self.device,
                                      random_state=seed, timings=group.timings, validate=False)
        reps, labels = found.representatives, found.labels
        if n_select > reps.size:
            raise ValidationError(
                f"n_select={n_select} but only {reps.size} of {group.n} points remain after removing near "
                f"duplicates (threshold={self.threshold}); ask for at most {reps.size} points")
        self._stats["n_removed"] += group.n - reps.size
        self._stats["n_groups"] += int((found.sizes > 1).sum())
        self._stats["n_exact_duplicates"] += found.n_exact_duplicates
        sub = group.take(reps)
        if group.initial is not None:  # each initial point stands for its group: its representative
            sub.initial = np.asarray(list(dict.fromkeys(labels[group.initial].tolist())), np.int64)
        res = self._inner._select_group(sub, n_select, rng)
        picks = np.asarray(res.indices, np.int64)  # positions among the representatives = group ids
        weights = _group_weights(sub.data, picks, found.sizes, self.metric)
        return GroupResult(reps[picks], res.gains, weights, res.objective)


def _group_weights(R, picks, sizes, metric):
    """Total size of the groups each pick stands for: its own, and those whose
    representative (a row of ``R``) is most similar to it among the picks."""
    from ..similarity import nearest_among

    owner = np.empty(R.shape[0], np.int64)
    rest = np.ones(R.shape[0], bool)
    rest[picks] = False
    owner[picks] = np.arange(picks.size)
    others = np.flatnonzero(rest)
    if others.size:
        owner[others] = nearest_among(R, others, picks, metric=metric, backend=None)
    return np.bincount(owner, weights=sizes, minlength=picks.size).astype(np.float64)
