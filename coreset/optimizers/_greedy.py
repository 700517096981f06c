"""Greedy maximisers: naive, lazy (priority queue) and stochastic.

``select(objective, n_select, *, rng=None, costs=None, budget=None,
callback=None) -> (indices, gains)``. Objectives exposing ``kernel_args()``
(facility location) run in fused numba kernels; any other object following the
:class:`~coreset.objectives.Objective` protocol runs through ``gains`` /
``update`` in Python. Both paths make the same choices.

With ``costs`` (one positive cost per element) and ``budget``, the greedy rule
becomes gain / cost among the elements that still fit (the cost-benefit
greedy of knapsack-constrained submodular maximisation), stopping at
``n_select`` picks or when nothing fits.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from .._validation import check_float, check_int
from ..exceptions import ValidationError

__all__ = ["Optimizer", "NaiveGreedy", "LazyGreedy", "StochasticGreedy"]


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


def _chunk(n_select):
    return max(1, n_select // 50)


class Optimizer:
    name = ""

    def _prepare(self, objective, n_select, costs, budget):
        """Validated (n, n_select, costs, use_costs, budget) and empty output arrays."""
        n = int(objective.n)
        n_select = check_int(n_select, "n_select", low=1, high=n)
        costs, use_costs, budget = _check_costs(costs, budget, n)
        out = np.empty(n_select, np.int64), np.empty(n_select, np.float64)
        return n, n_select, costs, use_costs, budget, out

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({params})"


class NaiveGreedy(Optimizer):
    """Every remaining candidate's gain at every step; O(N) evaluations a step."""

    name = "naive_greedy"

    def select(self, objective, n_select, *, rng=None, costs=None, budget=None, callback=None):
        n, n_select, costs, use_costs, budget, (out_idx, out_gain) = self._prepare(objective, n_select, costs, budget)
        n_out = 0
        if hasattr(objective, "kernel_args"):
            from ._kernels import naive_steps

            mode, S, indptr, idx, data, cur, assign = objective.kernel_args()
            selected = objective.selected
            while n_out < n_select:
                before = n_out
                budget, n_out = naive_steps(mode, S, indptr, idx, data, cur, assign, selected, costs,
                                            use_costs, budget, min(_chunk(n_select), n_select - n_out),
                                            out_idx, out_gain, n_out)
                if callback:
                    callback("optimize", n_out, n_select)
                if n_out == before:
                    break
            return out_idx[:n_out].copy(), out_gain[:n_out].copy()
        remaining = np.ones(n, bool)
        while n_out < n_select:
            cands = np.flatnonzero(remaining & ((costs <= budget) if use_costs else True))
            if cands.size == 0:
                break
            g = objective.gains(cands)
            key = g / costs[cands] if use_costs else g
            t = int(np.argmax(key))  # first maximum: lowest index
            j = int(cands[t])
            objective.update(j)
            remaining[j] = False
            out_idx[n_out], out_gain[n_out] = j, g[t]
            n_out += 1
            if use_costs:
                budget -= costs[j]
            if callback and n_out % _chunk(n_select) == 0:
                callback("optimize", n_out, n_select)
        return out_idx[:n_out].copy(), out_gain[:n_out].copy()


class LazyGreedy(Optimizer):
    """Minoux's accelerated greedy: stale gains are upper bounds kept in a
    priority queue; returns exactly what :class:`NaiveGreedy` returns (ties to
    the lowest index)."""

    name = "lazy_greedy"

    def select(self, objective, n_select, *, rng=None, costs=None, budget=None, callback=None):
        n, n_select, costs, use_costs, budget, (out_idx, out_gain) = self._prepare(objective, n_select, costs, budget)
        n_out = 0
        if hasattr(objective, "kernel_args"):
            from ._kernels import heap_init, lazy_steps

            mode, S, indptr, idx, data, cur, assign = objective.kernel_args()
            keys, ids, size = heap_init(mode, S, indptr, idx, data, cur, costs, use_costs, objective.selected)
            fresh = np.full(n, -1, np.int64)
            fresh_gain = np.zeros(n, np.float64)
            stamp = 0
            while n_out < n_select and size > 0:
                size, stamp, budget, n_out = lazy_steps(
                    mode, S, indptr, idx, data, cur, assign, keys, ids, size, fresh, fresh_gain, stamp, costs,
                    use_costs, budget, min(_chunk(n_select), n_select - n_out), out_idx, out_gain, n_out)
                if callback:
                    callback("optimize", n_out, n_select)
            objective.selected[out_idx[:n_out]] = True
            return out_idx[:n_out].copy(), out_gain[:n_out].copy()
        g0 = objective.gains(np.arange(n))
        heap = [(-(g0[j] / costs[j] if use_costs else g0[j]), j, 0) for j in range(n)]
        heapq.heapify(heap)
        stamp = 0
        while n_out < n_select and heap:
            negkey, j, when = heap[0]
            if use_costs and costs[j] > budget:
                heapq.heappop(heap)
                continue
            if when == stamp:
                heapq.heappop(heap)
                g = -negkey * costs[j] if use_costs else -negkey
                if use_costs:
                    g = float(objective.gains(np.array([j]))[0])
                objective.update(j)
                out_idx[n_out], out_gain[n_out] = j, g
                n_out += 1
                stamp += 1
                if use_costs:
                    budget -= costs[j]
                if callback and n_out % _chunk(n_select) == 0:
                    callback("optimize", n_out, n_select)
                continue
            g = float(objective.gains(np.array([j]))[0])
            heapq.heapreplace(heap, (-(g / costs[j] if use_costs else g), j, stamp))
        return out_idx[:n_out].copy(), out_gain[:n_out].copy()


class StochasticGreedy(Optimizer):
    """Stochastic greedy (Mirzasoleiman et al., AAAI 2015): each step takes the
    best of ``ceil(N / n_select * ln(1 / epsilon))`` random remaining
    candidates; (1 - 1/e - epsilon) in expectation with O(N ln(1/epsilon))
    evaluations in all. The default ``epsilon=0.01`` samples about 4.6 N /
    n_select candidates a step (apricot's 0.9 samples about one on small
    inputs: close to random)."""

    name = "stochastic_greedy"

    def __init__(self, epsilon: float = 0.01):
        self.epsilon = epsilon

    def sample_size(self, n, n_select):
        eps = check_float(self.epsilon, "epsilon", low=0.0, high=1.0, low_open=True, high_open=True)
        return max(1, min(n, int(math.ceil(n / n_select * math.log(1.0 / eps)))))

    def select(self, objective, n_select, *, rng=None, costs=None, budget=None, callback=None):
        if costs is not None:
            raise ValidationError("costs= is supported by naive_greedy and lazy_greedy; got optimizer='stochastic_greedy'")
        n, n_select, _, _, _, (out_idx, out_gain) = self._prepare(objective, n_select, None, None)
        s = self.sample_size(n, n_select)
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        n_out = 0
        if hasattr(objective, "kernel_args"):
            from ._kernels import stochastic_steps

            mode, S, indptr, idx, data, cur, assign = objective.kernel_args()
            pool = np.flatnonzero(~objective.selected).astype(np.int64)
            pool_size = pool.shape[0]
            while n_out < n_select and pool_size > 0:
                seed = int(rng.integers(0, 2**31 - 1))
                pool_size, n_out = stochastic_steps(mode, S, indptr, idx, data, cur, assign, pool, pool_size,
                                                    s, seed, min(_chunk(n_select), n_select - n_out),
                                                    out_idx, out_gain, n_out)
                if callback:
                    callback("optimize", n_out, n_select)
            objective.selected[out_idx[:n_out]] = True
            return out_idx[:n_out].copy(), out_gain[:n_out].copy()
        remaining = np.ones(n, bool)
        while n_out < n_select and remaining.any():
            pool = np.flatnonzero(remaining)
            cands = np.sort(rng.choice(pool, size=min(s, pool.size), replace=False))
            g = objective.gains(cands)
            t = int(np.argmax(g))
            j = int(cands[t])
            objective.update(j)
            remaining[j] = False
            out_idx[n_out], out_gain[n_out] = j, g[t]
            n_out += 1
        return out_idx[:n_out].copy(), out_gain[:n_out].copy()
