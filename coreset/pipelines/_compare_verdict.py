"""Say what to use: the winner of a ``compare`` run at each compute level,
with its spread over seeds and the methods within noise of it.

Rule (docs/compare.md, "Which method wins"): per dataset and compute level,
the winner is the method with the highest mean of ``metric`` over seeds
(balanced accuracy by default; an exact tie goes to the method listed first).
Another method is **within noise** of it when the difference of the means is
at most the larger of the two standard deviations over seeds (ddof=0, as in
the summary): ``best_mean - mean <= max(best_std, std)``. With one seed the
stds are 0 and only exact ties are within noise.

Compute level: the fraction of a subset method (it trains on that share of
the rows for the same epochs). Methods that train on every row every epoch,
the full-data methods and the ``+aug`` methods (full data plus augmented
copies), form one level, ``1.0``; an ``+aug`` method's augmented share is
kept in its label (``full+aug:random@0.1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..exceptions import ValidationError

__all__ = ["Winner", "winners", "compute_level"]

#: slack on float round-off when comparing a difference of means with a std
_EPS = 1e-12


@dataclass(frozen=True)
class Winner:
    """The winner at one compute level: ``method`` (its label), ``mean`` and
    ``std`` of ``metric`` over ``n_seeds`` seeds, and ``within_noise``: the
    other methods within noise of it as ``(label, mean, std)``, best first."""

    dataset: str
    fraction: float
    method: str
    mean: float
    std: float
    n_seeds: int
    within_noise: tuple = ()
    metric: str = "balanced_accuracy"

    def as_dict(self) -> dict:
        return dict(dataset=self.dataset, fraction=self.fraction, metric=self.metric, method=self.method,
                    mean=self.mean, std=self.std, n_seeds=self.n_seeds,
                    within_noise=[dict(method=m, mean=a, std=s) for m, a, s in self.within_noise])


def compute_level(method: str, fraction: float) -> tuple[float, str]:
    """``(level, label)`` of a summary entry (see the module docstring)."""
    from ._compare_augment import is_augment_name
    from ._compare_methods import FULL_DATA

    fraction = float(fraction)
    if method in FULL_DATA or is_augment_name(method):
        return 1.0, method if fraction >= 1.0 else f"{method}@{fraction:g}"
    return fraction, method


def winners(summary, metric: str = "balanced_accuracy") -> list[Winner]:
    """One :class:`Winner` per (dataset, compute level), datasets in order of
    appearance, levels ascending, from summary entries (dicts with
    ``dataset``, ``method``, ``fraction``, ``n_seeds``, ``<metric>_mean`` and
    ``<metric>_std``; ``CompareResult.summary``). Entries whose mean is
    missing (None / NaN) are left out; a level with none is skipped."""
    groups: dict = {}
    for i, s in enumerate(summary):
        try:
            mean, std = s[f"{metric}_mean"], s[f"{metric}_std"]
            dataset, method, fraction = s["dataset"], s["method"], s["fraction"]
        except (KeyError, TypeError):
            raise ValidationError(f"summary[{i}] must be a summary entry with dataset, method, fraction, "
                                  f"{metric}_mean and {metric}_std; got {s!r}") from None
        if mean is None or not math.isfinite(float(mean)):
            continue
        std = 0.0 if std is None or not math.isfinite(float(std)) else float(std)
        level, label = compute_level(method, fraction)
        groups.setdefault(dataset, {}).setdefault(level, []).append(
            (label, float(mean), std, int(s.get("n_seeds") or 0)))
    out = []
    for dataset, levels in groups.items():
        for level in sorted(levels):
            entries = levels[level]
            best = max(entries, key=lambda e: e[1])  # max keeps the first of equal means
            close = [e for e in entries if e is not best and best[1] - e[1] <= max(best[2], e[2]) + _EPS]
            close.sort(key=lambda e: -e[1])
            out.append(Winner(dataset=dataset, fraction=level, method=best[0], mean=best[1], std=best[2],
                              n_seeds=best[3], within_noise=tuple((m, a, s) for m, a, s, _ in close),
                              metric=metric))
    return out
