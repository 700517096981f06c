"""The adaptive rule of the label filter (``label_filter="adaptive"``): how many
labels look flipped, and how many of the probe's out-voted rows may
therefore be suspects (none on clean labels). See ``docs/label-noise.md``,
"The adaptive rule"; :mod:`._label_noise` calls :func:`adaptive_suspects`."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["NOISE_MIN", "NOISE_CAP_FACTOR", "adaptive_suspects", "estimate_noise_rate", "suspect_cap",
           "cap_suspects"]

#: adaptive: below this estimated share of flipped labels (:func:`estimate_noise_rate`)
#: no row is a suspect: the filter's false alarms would cost more than the flips
NOISE_MIN = 0.01
#: adaptive: above it, the suspects are capped at this many times the estimated
#: flipped rows (:func:`suspect_cap`); None: every out-voted row (the probe's rule)
NOISE_CAP_FACTOR = 3.0
#: the tail ratios tried by :func:`estimate_noise_rate` (a slower tail looks like a floor)
NOISE_FIT_Q = np.linspace(0.02, 0.8, 40)


def adaptive_suspects(flag: np.ndarray, rank: np.ndarray, score: np.ndarray, n_classes: int):
    """The probe's out-voted rows ``flag`` kept as suspects by the adaptive
    rule, and the estimated share of flipped labels: ``(flag, noise_rate)``.
    ``rank``: where the probe ranks each row's own label (1 = first);
    ``score``: the vote ratio (lower = more suspect)."""
    noise_rate = estimate_noise_rate(rank, n_classes)
    if NOISE_CAP_FACTOR is None:
        return flag, noise_rate
    return cap_suspects(flag, rank, score, suspect_cap(noise_rate, rank.size)), noise_rate


def estimate_noise_rate(rank: np.ndarray, n_classes: int) -> float:
    """The share of rows whose label was flipped to a random other class,
    estimated from where the probe ranks each row's own label (1 = first).

    A flipped row's label is, to the probe, a uniformly drawn other class,
    so the flips put a flat floor ``f`` rows under every rank 2..C, while
    correctly labelled rows that the probe out-ranks (overlapping classes, a
    weak probe) pile up at rank 2 and thin out towards rank C. The counts
    ``h_r`` of rows at rank r are fitted by ``A q^r + f`` (:func:`_floor_fit`)
    over ranks 2..C and again over 3..C (without the rank-2 pile, which
    holds most of the natural overlap and can bend the fit), and the larger
    floor gives the rate ``f (C - 1) / N`` (an underestimate costs recall, an
    overestimate only a looser cap). So a weak probe on clean data
    (mnist1d_lt: a third of its rows out-ranked, a few even last) reads about
    0, not the 5% that the bottom ranks alone suggest."""
    n = rank.size
    if n_classes < 2 or n == 0:
        return 0.0
    h = np.bincount(rank, minlength=n_classes + 1)[2:n_classes + 1].astype(np.float64)  # ranks 2..C
    if h.size < 3:  # too few ranks to tell a tail from a floor: every out-ranked row counts
        return float(h.mean() * (n_classes - 1) / n)
    f = _floor_fit(h)
    if h.size >= 4:
        f = max(f, _floor_fit(h[1:]))
    return float(f * (n_classes - 1) / n)


def _floor_fit(h: np.ndarray) -> float:
    """The floor ``f`` of the fit ``h_r ~ A q^r + f`` (A, f >= 0; q on the
    grid ``NOISE_FIT_Q``; least squares weighted by ``1 / max(h_r, 1)``,
    Poisson's variance; the best q)."""
    w = 1.0 / np.maximum(h, 1.0)
    g = NOISE_FIT_Q[:, None] ** np.arange(h.size)[None, :]  # (q, rank) geometric tails
    # weighted normal equations of h ~ A g + f, per q
    sgg, sg, s1 = (w * g * g).sum(1), (w * g).sum(1), w.sum()
    sgh, sh = (w * g * h).sum(1), (w * h).sum()
    det = sgg * s1 - sg * sg
    ok = det > 1e-12 * np.maximum(sgg * s1, 1e-300)
    A = np.where(ok, (sgh * s1 - sg * sh) / np.where(ok, det, 1.0), 0.0)
    f = np.where(ok, (sgg * sh - sg * sgh) / np.where(ok, det, 1.0), 0.0)
    only_tail = ~ok | (f < 0)  # the constraints: f = 0 (tail only) or A = 0 (floor only)
    A = np.where(only_tail, np.maximum(sgh / sgg, 0.0), A)
    f = np.where(only_tail, 0.0, f)
    only_floor = A < 0
    A, f = np.where(only_floor, 0.0, A), np.where(only_floor, sh / s1, f)
    sse = (w * (h[None, :] - A[:, None] * g - f[:, None]) ** 2).sum(1)
    return float(f[int(np.argmin(sse))])


def suspect_cap(noise_rate: float, n: int) -> int:
    """How many suspects the adaptive probe keeps, from the estimated flipped
    rows ``F = noise_rate * n`` give or take two Poisson standard deviations
    (``2 sqrt(F)``): 0 unless even ``F - 2 sqrt(F)`` reaches ``NOISE_MIN`` of
    the rows (on a few hundred rows, a handful of out-ranked rows is no
    evidence of noise), else ``NOISE_CAP_FACTOR`` times ``F + 2 sqrt(F)`` (so
    that a low estimate does not cut recall)."""
    flips = noise_rate * n
    if flips - 2.0 * math.sqrt(flips) < NOISE_MIN * n:
        return 0
    return int(math.ceil(NOISE_CAP_FACTOR * (flips + 2.0 * math.sqrt(flips))))


def cap_suspects(flag: np.ndarray, rank: np.ndarray, score: np.ndarray, cap: int) -> np.ndarray:
    """``flag`` less all but its ``cap`` most suspect rows: the lowest rank
    of the row's own label first (a label the probe ranks last), then the
    lowest vote ``score``, then the lower row."""
    rows = np.flatnonzero(flag)
    if rows.size <= cap:
        return flag
    order = rows[np.lexsort((rows, score[rows], -rank[rows]))]
    out = np.zeros_like(flag)
    out[order[:max(cap, 0)]] = True
    return out
