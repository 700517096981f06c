"""What every optimizer shares: validation of ``n_select``, ``initial``,
``costs`` / ``budget``; the warm start; output buffers and progress.

``Optimizer.maximize(f, n_select, *, rng=None, initial=None, costs=None,
budget=None, callback=None, candidates=None) -> (indices, gains)``:

* ``f`` is any :class:`~coreset.objectives.Objective`; a bound
  :class:`~coreset.objectives.KernelObjective` runs in the compiled loops
  (``_kernels.py``), anything else through ``gains`` / ``update`` in Python.
  Both paths make the same picks.
* ``n_select`` new picks are made (fewer when the budget runs out).
* ``initial`` (warm start): these elements are added to ``f`` first, in the
  given order, and never picked again; gains are counted from there. The
  budget, if any, covers the new picks only.
* ``candidates`` (indices): only these may be picked; the others still count
  in the objective (a restriction of the ground set's *candidates*, not of
  what must be covered).
* ``costs`` (one positive cost per element) and ``budget``: the greedy rule
  becomes gain / cost among the elements that still fit (the cost-benefit
  greedy of knapsack-constrained submodular maximisation).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from .._pace import Pacer
from .._validation import check_float, check_int
from ..exceptions import ValidationError

__all__ = ["Optimizer", "Run"]

log = logging.getLogger(__name__)


def _check_costs(costs, budget, n):
    if costs is None:
        if budget is not None:
            raise ValidationError(f"budget={budget!r} needs costs=; got costs=None")
        return np.ones(1), False, math.inf
    c = np.asarray(costs, dtype=np.float64)
    if c.shape != (n,):
        raise ValidationError(f"costs must have shape ({n},) (one per element); got {c.shape}")
    if not np.isfinite(c).all() or (c <= 0).any():
        raise ValidationError(f"costs must be finite and > 0; got minimum {np.nanmin(c)!r}")
    if budget is None:
        raise ValidationError("costs= needs a budget= (total cost allowed); got budget=None")
    budget = check_float(budget, "budget", low=0.0, low_open=True)
    return c, True, budget


def check_initial(initial, n) -> np.ndarray:
    """``initial`` as unique int64 indices in [0, n), order kept."""
    if initial is None:
        return np.zeros(0, np.int64)
    a = np.asarray(initial)
    if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
        raise ValidationError(f"initial_subset must be a 1-D array of integer indices; got dtype {a.dtype}, shape {a.shape}")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= n):
        bad = a[(a < 0) | (a >= n)][0]
        raise ValidationError(f"initial_subset indices must be in [0, {n - 1}]; got {int(bad)}")
    if np.unique(a).size != a.size:
        raise ValidationError("initial_subset must not repeat an index")
    return a


def check_candidates(candidates, n) -> np.ndarray | None:
    """``candidates`` (indices in [0, n)) as a mask over the ``n`` elements; None stays None."""
    if candidates is None:
        return None
    a = np.asarray(candidates)
    if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
        raise ValidationError(f"candidates must be a 1-D array of integer indices; got dtype {a.dtype}, shape {a.shape}")
    if a.size and (a.min() < 0 or a.max() >= n):
        bad = a[(a < 0) | (a >= n)][0]
        raise ValidationError(f"candidates must be in [0, {n - 1}]; got {int(bad)}")
    mask = np.zeros(n, bool)
    mask[a] = True
    return mask


def is_kernel(f) -> bool:
    from ..objectives._base import KernelObjective

    return isinstance(f, KernelObjective) and f.is_bound


class Run:
    """One maximisation's validated settings and outputs."""

    def __init__(self, f, n_select, initial, costs, budget, callback, candidates=None):
        self.f = f
        self.n = n = int(f.n)
        self.initial = check_initial(initial, n)
        #: elements that may be picked (None: all); the others still count in the objective
        self.allowed = check_candidates(candidates, n)
        room = n - self.initial.size if self.allowed is None else \
            int(self.allowed.sum() - self.allowed[self.initial].sum())
        self.n_select = check_int(n_select, "n_select", low=0 if self.initial.size else 1, high=room)
        self.costs, self.use_costs, self.budget = _check_costs(costs, budget, n)
        self.out_idx = np.empty(self.n_select, np.int64)
        self.out_gain = np.empty(self.n_select, np.float64)
        self.n_out = 0
        self.callback = callback
        self.chunk = max(1, self.n_select // 50)
        self.pacer = Pacer()
        self.kernel = is_kernel(f)
        self.initial_gains = np.empty(self.initial.size, np.float64)
        for t, j in enumerate(self.initial):  # the warm start, gains counted in its order
            self.initial_gains[t] = float(np.asarray(f.gains(np.array([j], np.int64)))[0])
            f.update(int(j))
        if self.kernel:
            self.remaining = ~f.selected
        else:
            self.remaining = np.ones(n, bool)
            self.remaining[self.initial] = False
        if self.allowed is not None:
            self.remaining = self.remaining & self.allowed

    def call_steps(self) -> int:
        """Picks for the next compiled call of a loop: as many as take about
        ``CALL_SECONDS`` (``coreset._pace``: Python regains control between
        calls, so Ctrl-C stops a long run within a fraction of a second), and
        at most a chunk (1/50 of the run) when a callback wants progress. The
        picks do not depend on the split: the loops carry their state over."""
        steps = min(self.pacer.next(), self.n_select - self.n_out)
        return min(steps, self.chunk) if self.callback else steps

    def report(self, force=False):
        if self.callback and (force or self.n_out % self.chunk == 0):
            self.callback("optimize", self.n_out, self.n_select)

    def take(self, j, g):
        """Python path: add ``j`` (gain ``g``) to the set and the output."""
        self.f.update(int(j))
        self.remaining[j] = False
        self.out_idx[self.n_out], self.out_gain[self.n_out] = j, g
        self.n_out += 1
        if self.use_costs:
            self.budget -= self.costs[j]
        self.report()

    def fits(self) -> np.ndarray:
        """Python path: mask of remaining elements that still fit the budget."""
        return self.remaining & (self.costs <= self.budget) if self.use_costs else self.remaining

    def result(self):
        return self.out_idx[:self.n_out].copy(), self.out_gain[:self.n_out].copy()


class Optimizer:
    """Base class: subclasses implement ``_kernel(run, rng)`` and ``_python(run, rng)``."""

    name = ""
    #: supports costs= / budget= (knapsack)
    supports_costs = True

    def maximize(self, f, n_select, *, rng=None, initial=None, costs=None, budget=None, callback=None,
                 candidates=None):
        """Add ``n_select`` elements to ``f`` greedily; ``(indices, gains)``.
        ``candidates`` (indices): only these may be picked; every element still
        counts in the objective (the label filter's suspects, for instance)."""
        run = Run(f, n_select, initial, costs, budget, callback, candidates)
        #: the marginal gains of the ``initial`` elements as they were added
        self.warm_start_gains_ = run.initial_gains
        if run.n_select == 0:
            return run.result()
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        log.info("%s: %d picks among %d elements (%s)", self.name or type(self).__name__, run.n_select, run.n,
                 "compiled" if run.kernel else "python")
        (self._kernel if run.kernel else self._python)(run, rng)
        run.report(force=True)
        return run.result()

    #: the name the first version used; same call
    select = maximize

    def get_params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
