"""Class budgets for long-tail data: split a total budget over classes.

Policies (weight w_c per class of size n_c):

* ``proportional``: w_c = n_c
* ``equal``: w_c = 1
* ``tempered``: w_c = n_c ** alpha, 0 <= alpha <= 1 (alpha=1 proportional, 0 equal)
* ``error``: w_c = e_c, the class's error rate on a preliminary model (DRoP,
  Vysogorets et al., ICLR 2025: classes the model gets wrong keep more);
  ``class_errors`` gives e_c. Classes with zero error get a vanishing share
  (n_c * 1e-9, so only their floor or leftovers); all zero -> proportional.

The budget b_c is ``clip(lambda * w_c, floor_c, n_c)`` with ``lambda`` chosen
so the total is met exactly, where ``floor_c = min(min_per_class, n_c)``: a
class smaller than its share gives all its points and the surplus moves to the
other classes in proportion to their weights. Integers by largest remainder
(ties: larger class, then lower class position).
"""

from __future__ import annotations

import numpy as np

from .._registry import CLASS_BUDGETS, check_name
from .._validation import check_float, check_int
from ..exceptions import ValidationError

__all__ = ["allocate_budget"]


def allocate_budget(class_sizes, total: int, policy: str = "proportional", *, alpha: float = 0.5,
                    min_per_class: int = 0, class_errors=None) -> np.ndarray:
    """Per-class counts summing to ``total`` (see the module doc)."""
    policy = check_name("class_budget", policy, CLASS_BUDGETS)
    sizes = np.asarray(class_sizes, dtype=np.int64)
    if sizes.ndim != 1 or sizes.size == 0 or (sizes < 1).any():
        raise ValidationError(f"class_sizes must be positive integers; got {sizes!r}")
    n = int(sizes.sum())
    total = check_int(total, "n_select", low=1, high=n)
    min_per_class = check_int(min_per_class, "min_per_class", low=0)
    if policy == "proportional":
        w = sizes.astype(np.float64)
    elif policy == "equal":
        w = np.ones(sizes.size)
    elif policy == "error":
        if class_errors is None:
            raise ValidationError("class_budget='error' needs class_errors (one error rate per class); got None")
        e = np.asarray(class_errors, dtype=np.float64)
        if e.shape != sizes.shape or not np.isfinite(e).all() or (e < 0).any():
            raise ValidationError(f"class_errors must be {sizes.size} finite rates >= 0 (one per class); got {e!r}")
        w = e + 1e-9 * sizes / sizes.sum() if e.sum() > 0 else sizes.astype(np.float64)
    else:
        alpha = check_float(alpha, "alpha", low=0.0, high=1.0)
        w = sizes.astype(np.float64) ** alpha
    floor = np.minimum(min_per_class, sizes)
    if floor.sum() > total:
        raise ValidationError(
            f"min_per_class={min_per_class} needs {int(floor.sum())} points over {sizes.size} classes "
            f"but n_select is {total}; lower min_per_class or raise n_select"
        )

    x = _water_fill(w, floor, sizes, total)
    b = np.floor(x + 1e-9).astype(np.int64)
    b = np.clip(b, floor, sizes)
    # largest remainder, among classes with room
    order = np.lexsort((np.arange(sizes.size), -sizes, -(x - b)))
    while b.sum() < total:
        for c in order:
            if b.sum() == total:
                break
            if b[c] < sizes[c]:
                b[c] += 1
    while b.sum() > total:  # numerical overshoot: take back from the smallest remainders
        for c in order[::-1]:
            if b.sum() == total:
                break
            if b[c] > floor[c]:
                b[c] -= 1
    return b


def _water_fill(w, floor, sizes, total):
    """``clip(lam * w, floor, sizes)`` at the ``lam`` where it sums to
    ``total``: the sum is piecewise linear in ``lam`` with breakpoints at
    ``floor / w`` and ``sizes / w``; a binary search finds the segment, then
    ``lam`` is solved on it (O(C log C), exact up to rounding)."""

    def filled(lam):
        return np.clip(lam * w, floor, sizes)

    bps = np.unique(np.concatenate([floor / w, sizes / w]))
    lo, hi = 0, bps.size - 1  # the sum at the last breakpoint is sizes.sum() >= total
    while lo < hi:
        mid = (lo + hi) // 2
        if filled(bps[mid]).sum() >= total:
            hi = mid
        else:
            lo = mid + 1
    b1 = bps[lo]
    f1 = filled(b1).sum()
    if f1 <= total or lo == 0:
        return filled(b1)
    b0 = bps[lo - 1]
    m = 0.5 * (b0 + b1)
    active = (floor < m * w) & (m * w < sizes)  # the classes growing on (b0, b1]
    lam = b0 + (total - filled(b0).sum()) / w[active].sum()
    return filled(min(max(lam, b0), b1))
