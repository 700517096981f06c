"""The knee of a selection's gain curve: where adding picks stops paying.
(Beside :mod:`coreset.selection`, below ``report/``: ``Selection.knee`` and
the report both use it; ``coreset.report.knee`` re-exports it.)

Rule (Kneedle, Satopää et al. 2011, offline form without smoothing) on the
points ``(k, F_k)``, k = 1..K, where ``F_k = gains[0] + ... + gains[k-1]`` is
the objective of the first k picks (selection order): scale both axes to
[0, 1] by the points' range, ``x_k = (k - 1) / (K - 1)`` and
``y_k = (F_k - F_1) / (F_K - F_1)``, and take the k where ``y_k - x_k`` is
largest (the point farthest above the chord from the first pick to the last;
ties to the smallest k). For gains that never increase (what greedy
maximisation of a submodular objective produces) this is exactly 1 + the
number of picks after the first whose marginal gain exceeds the average gain
of those picks: each further pick adds less than an average one. (Scaling
from the first pick, not from the empty set, matters with dense similarities,
where the first pick alone lifts every row to the average similarity.)

The suggested budget is the first ``n_picks`` rows of the selection,
``sel.indices[:n_picks]``; ``fraction`` is ``n_picks / N``.

There is no knee (``n_picks`` None, a ``reason`` says why) when the selection
records no gains (random, dedup and other selectors without an objective),
has fewer than 3 picks, a non-finite curve or one that does not grow after
the first pick, or a curve that is nearly straight (``max(y_k - x_k) <
STRAIGHT``: every pick adds about the same). The knee lies inside the budget
that was run: to see whether a larger one pays, select more and look again.
"""

from __future__ import annotations

import numpy as np

__all__ = ["knee", "knee_of_gains", "STRAIGHT"]

#: below this largest lift of the normalised curve above its chord there is no knee
STRAIGHT = 0.01


def knee_of_gains(gains) -> dict:
    """Knee of a sequence of marginal gains (module doc): a dict with
    ``n_picks`` (or None), ``objective_share`` (``y`` at the knee), ``lift``
    (``y - x`` there) and ``reason`` (None when there is a knee)."""
    g = np.asarray(gains, dtype=np.float64).ravel()
    out = {"n_picks": None, "objective_share": None, "lift": None, "reason": None,
           "rule": "kneedle on the normalised cumulative objective"}
    K = g.shape[0]
    if K < 3:
        out["reason"] = f"{K} pick(s): a knee needs at least 3"
        return out
    if not np.all(np.isfinite(g)):
        out["reason"] = "the selection records no marginal gains (a selector without an objective)"
        return out
    F = np.cumsum(g)
    rise = F[-1] - F[0]
    if not rise > 0:
        out["reason"] = f"the objective does not grow after the first pick (gain {rise:.6g})"
        return out
    d = (F - F[0]) / rise - np.arange(K) / (K - 1)
    i = int(np.argmax(d))  # first maximum: ties to the smallest k
    if d[i] < STRAIGHT:
        out["reason"] = f"the objective grows about linearly (largest lift {d[i]:.3g} < {STRAIGHT}): no knee"
        return out
    k = i + 1
    out.update(n_picks=k, objective_share=float(F[i] / F[-1]) if F[-1] > 0 else None, lift=float(d[i]))
    return out


def knee(sel, n_samples: int | None = None) -> dict:
    """The knee of ``sel``'s gain curve (module doc) as a dict: ``n_picks``,
    ``fraction`` (``n_picks / N``, N = ``n_samples`` or ``sel.meta['n_samples']``;
    None when neither is known), ``n_select``, ``n_samples``,
    ``objective_share``, ``lift``, ``rule`` and ``reason`` (None when a knee
    was found)."""
    from ._validation import check_int

    out = knee_of_gains(sel.gains)
    if n_samples is None:
        n_samples = sel.meta.get("n_samples")
        n_samples = int(n_samples) if isinstance(n_samples, (int, np.integer)) and n_samples > 0 else None
    else:
        n_samples = check_int(n_samples, "n_samples", low=max(len(sel), 1))
    frac = None if out["n_picks"] is None or n_samples is None else out["n_picks"] / n_samples
    return {"n_picks": out["n_picks"], "fraction": frac, "n_select": len(sel), "n_samples": n_samples,
            "objective_share": out["objective_share"], "lift": out["lift"], "rule": out["rule"],
            "reason": out["reason"]}
