"""Greedy on a random sample of the candidates."""

from __future__ import annotations

import numpy as np

from .._defaults import SAMPLE_FRACTION
from .._validation import check_float
from ._base import Optimizer
from ._lazy import LazyGreedy

__all__ = ["SampleGreedy"]


class SampleGreedy(Optimizer):
    """Draw a seeded uniform sample of ``fraction`` of the remaining
    candidates once, then run lazy greedy restricted to it (the gains are
    still measured on the whole ground set). Cheaper in proportion to the
    sample; the sample must hold at least ``n_select`` candidates."""

    name = "sample"

    def __init__(self, fraction: float = SAMPLE_FRACTION):
        self.fraction = fraction

    def _cands(self, run, rng):
        f = check_float(self.fraction, "fraction", low=0.0, high=1.0, low_open=True)
        pool = np.flatnonzero(run.remaining)
        m = min(pool.size, max(run.n_select, int(np.ceil(f * pool.size))))
        return np.sort(rng.choice(pool, size=m, replace=False)).astype(np.int64)

    def _kernel(self, run, rng):
        LazyGreedy()._kernel(run, rng, cands=self._cands(run, rng))

    def _python(self, run, rng):
        LazyGreedy()._python(run, rng, cands=self._cands(run, rng))
