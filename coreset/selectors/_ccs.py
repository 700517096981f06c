"""Coverage-centric coreset selection (CCS; Zheng, Liu, Li, Prakash, ICLR 2023):
coverage over a difficulty score instead of its hardest rows.

Within each group it is run on (the whole input, or one class under
``class_budget=`` / :class:`ClassBalanced`), with ``k`` rows to pick:

1. **Hard cut.** Drop the hardest ``beta`` share of the group's rows:
   ``floor(beta * n)`` rows, at most ``n - k`` (ties at the cut broken at
   random, seeded). At high pruning the hardest rows are mostly noise.
   Default 0.4 (measured); ``beta="auto"`` takes :func:`auto_beta` of the
   group's kept share ``k / n`` (CCS's growth with the pruning rate).
2. **Strata.** Bin the remaining rows' scores into ``n_strata`` equal-width
   strata over [min, max] (a constant score makes one stratum).
3. **Smallest stratum first.** Visit the non-empty strata from the smallest
   to the largest (equal sizes: the lower stratum first); each takes
   ``min(its size, remaining // strata left)`` (:func:`allocate_strata`). So
   every round gives every stratum an equal share of what remains, strata
   smaller than their share give all their rows, and their surplus goes to the
   larger ones; the budget is met exactly.
4. **Random inside a stratum** (seeded) for each stratum's count.

Picks come in stratum order, easiest stratum first, random order inside one.
Gains: each pick's score. **Weights**: a pick stands for an equal share of its
stratum (stratum size / picks in it), rescaled so a group's weights sum to the
group's size (the rows cut as hardest, and strata too small for a pick, spread
in proportion): summed over a class they give the class's size, as every other
selector's weights do; training with them restores the difficulty mix that
stratification flattened.

Scores (higher = harder): ``score=`` one of the training-free scores of
:mod:`._ccs_scores` (``label_consistency``, the default with labels;
``knn_density``, the default without; ``fl_gain``, ``centroid_distance``),
computed once on the whole input (per-class scores are computed within each
class of ``y``), or ``scores=`` an array of your own, one
per row: e.g. EL2N or forgetting counts from a few early epochs of a probe,
``coreset.pipelines.compute_scores(X, y, "el2n", epochs=5)``. Selectors do not
train models; that lives in ``coreset.pipelines``.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .._defaults import CCS_BETA, CCS_N_STRATA
from .._registry import check_name
from .._validation import check_float, check_int
from ..exceptions import ValidationError
from ._base import BaseSelector, GroupResult
from ._ccs_scores import DIFFICULTY_SCORES, SCORE_METRICS, difficulty_scores

__all__ = ["CCSSelector", "ccs_sample", "allocate_strata", "equal_width_strata", "auto_beta", "DEFAULT_SCORE",
           "DEFAULT_BETA", "DEFAULT_N_STRATA", "DEFAULT_N_NEIGHBORS"]

#: chosen on validation splits carved from the training data (benchmarks/bench_ccs.py, docs/ccs.md):
#: the best mean validation balanced accuracy over zipf_hard and digits-lt, clean and 10% flipped, 10% and 30%
DEFAULT_SCORE = "label_consistency"
#: the score without labels (label_consistency needs them; not measured)
DEFAULT_SCORE_UNLABELLED = "knn_density"
DEFAULT_BETA = CCS_BETA
#: CCS's code uses 50 strata
DEFAULT_N_STRATA = CCS_N_STRATA
#: neighbours of the kNN scores when ``n_neighbors="auto"``
DEFAULT_N_NEIGHBORS = 10


def auto_beta(kept: float) -> float:
    """The hard cut for a kept share ``kept`` of a group (``beta="auto"``):
    ``min(0.4, max(0, 0.5 * (0.9 - kept)))``: 0.4 at 10% kept and below, 0.3
    at 30%, 0.2 at 50%, 0 from 90% on (CCS grows beta with the pruning rate)."""
    return min(0.4, max(0.0, 0.5 * (0.9 - float(kept))))


def equal_width_strata(scores, n_strata: int) -> np.ndarray:
    """The stratum (0 .. n_strata-1) of each score: ``n_strata`` equal-width bins
    over [min, max], the maximum in the last; all in 0 when the scores are equal."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return np.zeros(0, np.int64)
    lo, hi = float(s.min()), float(s.max())
    if not hi > lo:
        return np.zeros(s.size, np.int64)
    b = np.floor((s - lo) / (hi - lo) * n_strata).astype(np.int64)
    return np.clip(b, 0, n_strata - 1)


def allocate_strata(sizes, n_select: int) -> np.ndarray:
    """Picks per stratum: the non-empty strata, smallest first (ties: lower
    stratum first), each take ``min(size, remaining // strata left)``. Meets
    ``n_select`` exactly (at most ``sum(sizes)``); the result is the max-min
    fair allocation (no stratum can get more without a smaller one getting less)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if n_select > int(sizes.sum()):
        raise ValidationError(f"n_select must be at most the rows in the strata ({int(sizes.sum())}); got {n_select}")
    out = np.zeros(sizes.size, np.int64)
    order = [int(i) for i in np.argsort(sizes, kind="stable") if sizes[i] > 0]
    rest = int(n_select)
    for t, i in enumerate(order):
        take = min(int(sizes[i]), rest // (len(order) - t))
        out[i] = take
        rest -= take
    return out


def ccs_sample(scores, n_select: int, *, beta: float, n_strata: int, rng) -> tuple[np.ndarray, np.ndarray, int]:
    """CCS on one group (module doc): ``(positions, weights, n_dropped)``,
    positions into ``scores`` in stratum order, weights summing to ``len(scores)``."""
    s = np.asarray(scores, dtype=np.float64)
    n = s.size
    n_cut = min(int(math.floor(beta * n + 1e-9)), n - n_select)
    kept = np.arange(n)
    if n_cut > 0:  # hardest first; ties at the cut at random
        hardest = np.lexsort((rng.permutation(n), -s))[:n_cut]
        kept = np.setdiff1d(kept, hardest)
    strata = equal_width_strata(s[kept], n_strata)
    sizes = np.bincount(strata, minlength=n_strata)
    counts = allocate_strata(sizes, n_select)
    picks, weights = [], []
    for b in np.flatnonzero(counts):
        members = kept[strata == b]
        picks.append(rng.choice(members, size=int(counts[b]), replace=False))
        weights.append(np.full(int(counts[b]), sizes[b] / counts[b]))
    pos = np.concatenate(picks).astype(np.int64)
    w = np.concatenate(weights)
    return pos, w * (n / w.sum()), max(n_cut, 0)


class CCSSelector(BaseSelector):
    """Coverage over difficulty (CCS, Zheng and co-authors, ICLR 2023), strata of a difficulty score filled from
    the smallest up after the hardest ``beta`` are dropped. Module doc for the rule.

    Parameters
    ----------
    score : one of label_consistency (needs y), knn_density, fl_gain, centroid_distance;
        None (default): label_consistency with labels, knn_density without. Or give ``scores``.
    scores : array (N,) of finite difficulty scores (higher = harder), e.g. EL2N
        from ``coreset.pipelines.compute_scores``.
    beta : share of each group's hardest rows dropped, in [0, 1) (default 0.4), or "auto"
        (:func:`auto_beta` of the group's kept share).
    n_strata : equal-width strata, >= 1 (CCS: 50).
    n_neighbors : neighbours of knn_density, "auto" (10) or an int >= 1 (label_consistency
        uses the label-noise filter's 10).
    metric : distance of the scores, cosine (``1 - cos``) or euclidean.
    backend, device : where the kNN search of the scores runs.
    """

    method_name = "ccs"
    accepts_precomputed = False

    def __init__(self, n_select=None, *, fraction=None, score=None, scores=None, beta=DEFAULT_BETA,
                 n_strata=DEFAULT_N_STRATA, n_neighbors="auto", metric="cosine", backend="auto", device="auto",
                 random_state=None):
        self.n_select = n_select
        self.fraction = fraction
        self.score = score
        self.scores = scores
        self.beta = beta
        self.n_strata = n_strata
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.backend = backend
        self.device = device
        self.random_state = random_state

    @property
    def needs_labels(self):
        return self.scores is None and self.score == "label_consistency"

    def _score_name(self, labelled=None) -> str:
        if self.scores is not None:
            return "array"
        if self.score is None:
            if labelled is None:
                labelled = getattr(self, "_labelled", True)
            return DEFAULT_SCORE if labelled else DEFAULT_SCORE_UNLABELLED
        return check_name("score", self.score, DIFFICULTY_SCORES)

    def _n_neighbors(self) -> int:
        if isinstance(self.n_neighbors, str) and self.n_neighbors == "auto":
            return DEFAULT_N_NEIGHBORS
        if self.n_neighbors is None or isinstance(self.n_neighbors, str):
            raise ValidationError(f"n_neighbors must be 'auto' or an integer >= 1; got {self.n_neighbors!r}")
        return check_int(self.n_neighbors, "n_neighbors", low=1)

    def _check_params(self, labelled: bool):
        if not (isinstance(self.beta, str) and self.beta == "auto"):
            if isinstance(self.beta, str):
                raise ValidationError(f"beta must be 'auto' or a number in [0, 1); got {self.beta!r}")
            check_float(self.beta, "beta", low=0.0, high=1.0, high_open=True)
        check_int(self.n_strata, "n_strata", low=1)
        if self.scores is not None and self.score is not None:
            raise ValidationError(f"give score= (a name) or scores= (an array), not both; got score={self.score!r} "
                                  "and an array")
        name = self._score_name(labelled)
        if self.scores is None:
            check_name("metric", self.metric, SCORE_METRICS)
            self._n_neighbors()
        if not (isinstance(self.n_neighbors, str) and self.n_neighbors == "auto") and \
                name != "knn_density":
            raise ValidationError(f"n_neighbors applies to score='knn_density'; got n_neighbors={self.n_neighbors!r} "
                                  f"with score={name!r}")

    def _prepare(self, group, rng):
        self._check_params(group.y is not None)
        if group.costs is not None or group.initial is not None:
            raise ValidationError("method='ccs' takes neither costs= nor initial_subset=")
        t = time.perf_counter()
        info = {}
        if self.scores is not None:
            s = np.asarray(self.scores)
            if s.ndim != 1 or s.shape[0] != group.n:
                got = f"length {s.shape[0]}" if s.ndim == 1 else f"shape {s.shape}"
                raise ValidationError(f"scores must have length {group.n} (one per row of X); got {got}")
            if s.dtype.kind not in "biuf":
                raise ValidationError(f"scores must be numbers; got dtype {s.dtype}")
            s = s.astype(np.float64)
            bad = np.flatnonzero(~np.isfinite(s))
            if bad.size:
                raise ValidationError(f"scores must be finite; got {bad.size} non-finite value(s) (first at row "
                                      f"{int(bad[0])}: {s[bad[0]]})")
        else:
            s = difficulty_scores(group.data, group.y, self._score_name(group.y is not None),
                                  n_neighbors=self._n_neighbors(),
                                  metric=self.metric, backend=self.backend, device=self.device,
                                  random_state=int(rng.integers(0, 2**31 - 1)), info=info)
        group.timings["score"] += time.perf_counter() - t
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._scores, new._info, new._n_dropped, new._labelled = s, info, 0, group.y is not None
        self.scores_ = s
        return new

    def _select_group(self, group, n_select, rng):
        t = time.perf_counter()
        rows = np.arange(group.n) if group.positions is None else group.positions
        s = self._scores[rows]
        beta = auto_beta(n_select / group.n) if isinstance(self.beta, str) else float(self.beta)
        pos, weights, dropped = ccs_sample(s, n_select, beta=beta, n_strata=int(self.n_strata), rng=rng)
        self._n_dropped += dropped
        group.timings["optimize"] += time.perf_counter() - t
        group.progress("optimize", n_select, n_select)
        return GroupResult(pos, s[pos], weights)

    def _describe(self):
        name = self._score_name()
        d = {"method": self.method_name, "score": name, "score_source": "array" if name == "array" else "embeddings",
             "beta": self.beta if isinstance(self.beta, str) else float(self.beta), "n_strata": int(self.n_strata),
             "n_dropped": int(getattr(self, "_n_dropped", 0))}
        if name != "array":
            d["metric"] = self.metric
            if name == "knn_density":
                d["n_neighbors"] = self._n_neighbors()
            elif name == "label_consistency":
                from ._label_noise import KNN_NEIGHBORS

                d["n_neighbors"] = KNN_NEIGHBORS
            d.update({k: v for k, v in getattr(self, "_info", {}).items() if k in ("backend", "device")})
        return d
