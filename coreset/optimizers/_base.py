"""What every optimizer shares: validation of ``n_select``, ``initial``,
``costs`` / ``budget``; the warm start; output buffers and progress.

``Optimizer.maximize(f, n_select, *, rng=None, initial=None, costs=None,
budget=None, callback=None) -> (indices, gains)``:

* ``f`` is any :class:`~coreset.objectives.Objective`; a bound
  :class:`~coreset.objectives.KernelObjective` runs in the compiled loops
  (``_kernels.py``), anything else through ``gains`` / ``update`` in Python.
  Both paths make the same picks.
* ``n_select`` new picks are made (fewer when the budget runs out).
* ``initial`` (warm start): these elements are added to ``f`` first, in the
  given order, and never picked again; gains are counted from there. The
  budget, if any, covers the new picks only.
* ``costs`` (one positive cost per element) and ``budget``: the greedy rule
  becomes gain / cost among the elements that still fit (the cost-benefit
  greedy of knapsack-constrained submodular maximisation).
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_float, check_int
from ..exceptions import ValidationError

__all__ = ["Optimizer", "Run"]


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


def is_kernel(f) -> bool:
    from ..objectives._base import KernelObjective

    return isinstance(f, KernelObjective) and f.is_bound


class Run:
    """One maximisation's validated settings and outputs."""

    def __init__(self, f, n_select, initial, costs, budget, callback):
        self.f = f
        self.n = n = int(f.n)
        self.initial = check_initial(initial, n)
        room = n - self.initial.size
        self.n_select = check_int(n_select, "n_select", low=0 if self.initial.size else 1, high=room)
        self.costs, self.use_costs, self.budget = _check_costs(costs, budget, n)
        self.out_idx = np.empty(self.n_select, np.int64)
        self.out_gain = np.empty(self.n_select, np.float64)
        self.n_out = 0
        self.callback = callback
        self.chunk = max(1, self.n_select // 50)
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

    def steps_left(self) -> int:
        return min(self.chunk, self.n_select - self.n_out)

    def call_steps(self) -> int:
        """Picks for the next compiled call of a deterministic loop: a chunk
        when a callback wants progress, else all that are left (one call; the
        same picks either way, the state carries over)."""
        return self.steps_left() if self.callback else self.n_select - self.n_out

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

    def maximize(self, f, n_select, *, rng=None, initial=None, costs=None, budget=None, callback=None):
        """Add ``n_select`` elements to ``f`` greedily; ``(indices, gains)``."""
        run = Run(f, n_select, initial, costs, budget, callback)
        #: the marginal gains of the ``initial`` elements as they were added
        self.warm_start_gains_ = run.initial_gains
        if run.n_select == 0:
            return run.result()
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
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
