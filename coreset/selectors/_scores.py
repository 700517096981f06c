"""Score-based selectors: rank points by a difficulty score from a
preliminary model and keep the hardest, the easiest or a middle band.

Scores (higher = harder; definitions in :mod:`coreset.probes._scoring`
and ``docs/scores.md``): ``el2n``, ``grand`` (last-layer gradient norm),
``forgetting`` (forgetting events), and the uncertainty scores
``least_confidence``, ``entropy``, ``margin``.

``keep``:

* ``"hardest"`` (default): the ``n_select`` highest scores, hardest first;
* ``"easiest"``: the lowest scores, easiest first;
* ``"middle"``: the scores closest to the median ("moderate" coresets,
  Xia et al. 2023), closest first;
* ``prune_hardest`` (in [0, 1)): drop that share of the hardest points before
  applying ``keep`` (the hard cut of CCS, Zheng et al. 2023: the hardest points
  are often mislabelled).

Scores come from ``scores=`` (an array, one per point), from ``model=`` (a
trained torch module of yours), or by default from ``n_models`` small probes
trained for ``epochs`` on ``(X, y)`` (seeded by ``random_state``). Scores are
computed once on the whole input, so inside :class:`ClassBalanced` every class
is ranked by the same model. Ties go to the lower index. Weights: ``N / k``
each; gains: each pick's score. This module imports no torch until a model
is trained.
"""

from __future__ import annotations

import time

import numpy as np

from .._registry import check_name
from .._validation import check_float, check_int
from ..exceptions import ValidationError
from ._base import BaseSelector, GroupResult

__all__ = ["ScoreSelector", "EL2NSelector", "GraNdSelector", "ForgettingSelector", "UncertaintySelector",
           "rank_by_score", "KEEP"]

KEEP = ("hardest", "easiest", "middle")
_SCORES = ("el2n", "grand", "forgetting", "least_confidence", "entropy", "margin")


def rank_by_score(scores, n_select: int, keep: str = "hardest", prune_hardest: float = 0.0) -> np.ndarray:
    """Positions of the ``n_select`` points to keep, in keeping order (see the
    module doc); ties to the lower index."""
    s = np.asarray(scores, dtype=np.float64)
    n = s.size
    idx = np.arange(n)
    if prune_hardest > 0:
        n_cut = min(int(np.floor(prune_hardest * n)), n - n_select)
        if n_cut > 0:
            hardest = np.lexsort((idx, -s))[:n_cut]
            idx = np.setdiff1d(idx, hardest)
    sub = s[idx]
    if keep == "hardest":
        order = np.lexsort((idx, -sub))
    elif keep == "easiest":
        order = np.lexsort((idx, sub))
    else:
        order = np.lexsort((idx, np.abs(sub - np.median(sub))))
    return idx[order[:n_select]].astype(np.int64)


class ScoreSelector(BaseSelector):
    """Keep points by a difficulty score (module doc). ``score``: one of
    el2n, grand, forgetting, least_confidence, entropy, margin. ``hidden``:
    0 for a linear probe, else the width of a one-hidden-layer MLP."""

    method_name = "score"
    accepts_precomputed = False
    default_score = "el2n"

    def __init__(self, n_select=None, *, fraction=None, score=None, keep="hardest", prune_hardest=0.0,
                 scores=None, model=None, n_models=3, epochs=10, hidden=0, lr=5e-2, batch_size=32,
                 device="auto", random_state=None):
        self.n_select = n_select
        self.fraction = fraction
        self.score = score
        self.keep = keep
        self.prune_hardest = prune_hardest
        self.scores = scores
        self.model = model
        self.n_models = n_models
        self.epochs = epochs
        self.hidden = hidden
        self.lr = lr
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    @property
    def needs_labels(self):
        return self.scores is None

    def _score_name(self):
        name = self.default_score if self.score is None else self.score
        return check_name("score", name, _SCORES)

    def _prepare(self, group, rng):
        check_name("keep", self.keep, KEEP)
        check_float(self.prune_hardest, "prune_hardest", low=0.0, high=1.0, high_open=True)
        name = self._score_name()
        t = time.perf_counter()
        if self.scores is not None:
            s = np.asarray(self.scores, dtype=np.float64)
            if s.shape != (group.n,) or not np.isfinite(s).all():
                raise ValidationError(f"scores must be {group.n} finite numbers (one per point); got shape {s.shape}"
                                      + ("" if s.shape != (group.n,) else " with non-finite values"))
        else:
            from ..probes._scoring import compute_scores

            check_int(self.n_models, "n_models", low=1)
            seed = int(rng.integers(0, 2**31 - 1))
            s = compute_scores(group.data, group.y, name, model=self.model, n_models=self.n_models,
                               epochs=self.epochs, hidden=self.hidden, lr=self.lr, batch_size=self.batch_size,
                               random_state=seed, device=self.device, callback=group.progress)
        group.timings["score"] += time.perf_counter() - t
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._scores = s
        self.scores_ = s
        return new

    def _select_group(self, group, n_select, rng):
        t = time.perf_counter()
        rows = np.arange(group.n) if group.positions is None else group.positions
        s = self._scores[rows]
        picks = rank_by_score(s, n_select, self.keep, float(self.prune_hardest))
        group.timings["optimize"] += time.perf_counter() - t
        group.progress("optimize", n_select, n_select)
        return GroupResult(picks, s[picks], np.full(picks.size, group.n / picks.size))

    def _describe(self):
        d = {"method": self.method_name, "score": self._score_name(), "keep": self.keep,
             "prune_hardest": float(self.prune_hardest),
             "score_source": "array" if self.scores is not None else "model" if self.model is not None else "probe"}
        if self.scores is None and self.model is None:
            d.update(n_models=int(self.n_models), epochs=int(self.epochs), hidden=int(self.hidden))
        return d


class EL2NSelector(ScoreSelector):
    """EL2N, the error L2 norm of early-trained probes averaged over seeds (Paul, Ganguli, Dziugaite 2021)."""

    method_name = "el2n"
    default_score = "el2n"


class GraNdSelector(ScoreSelector):
    """GraNd, the expected gradient norm of the last layer in closed form (Paul, Ganguli, Dziugaite 2021)."""

    method_name = "grand"
    default_score = "grand"


class ForgettingSelector(ScoreSelector):
    """Forgetting events, never-learned points counted as most forgotten (Toneva and co-authors, ICLR 2019)."""

    method_name = "forgetting"
    default_score = "forgetting"

    def __init__(self, n_select=None, *, fraction=None, score=None, keep="hardest", prune_hardest=0.0,
                 scores=None, model=None, n_models=1, epochs=20, hidden=0, lr=5e-2, batch_size=32,
                 device="auto", random_state=None):
        super().__init__(n_select, fraction=fraction, score=score, keep=keep, prune_hardest=prune_hardest,
                         scores=scores, model=model, n_models=n_models, epochs=epochs, hidden=hidden, lr=lr,
                         batch_size=batch_size, device=device, random_state=random_state)


class UncertaintySelector(ScoreSelector):
    """Uncertainty of a preliminary model, by least_confidence, entropy (default) or margin (``score=``)."""

    method_name = "uncertainty"
    default_score = "entropy"

    def _score_name(self):
        name = self.default_score if self.score is None else self.score
        return check_name("score", name, ("least_confidence", "entropy", "margin"))
