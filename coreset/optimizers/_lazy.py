"""Lazy greedy (Minoux's accelerated greedy)."""

from __future__ import annotations

import heapq

import numpy as np

from ._base import Optimizer

__all__ = ["LazyGreedy"]


class LazyGreedy(Optimizer):
    """Minoux's accelerated greedy: stale gains are upper bounds kept in a
    priority queue; returns exactly what :class:`NaiveGreedy` returns (ties to
    the lowest index) for objectives whose gains only shrink (submodular)."""

    name = "lazy_greedy"

    def _kernel(self, run, rng, cands=None):
        from ._kernels import lazy_steps, tree_init

        cands = np.arange(run.n, dtype=np.int64) if cands is None else np.sort(cands)
        nk, ns, M, size = tree_init(run.f.state, cands, run.costs, run.use_costs)
        fresh = np.full(run.n, -1, np.int64)
        fresh_gain = np.zeros(run.n, np.float64)
        stamp = 0
        while run.n_out < run.n_select and size > 0:
            # without a progress callback, all steps in one compiled call (same picks: the state carries over)
            steps = run.steps_left() if run.callback else run.n_select - run.n_out
            size, stamp, run.budget, run.n_out = lazy_steps(
                run.f.state, cands, nk, ns, M, size, fresh, fresh_gain, stamp, run.costs, run.use_costs, run.budget,
                steps, run.out_idx, run.out_gain, run.n_out)
            run.report(force=True)

    def _python(self, run, rng, cands=None):
        c = np.flatnonzero(run.remaining) if cands is None else cands
        g0 = np.asarray(run.f.gains(c), dtype=np.float64)
        costs, use_costs = run.costs, run.use_costs
        heap = [(-(g0[t] / costs[j] if use_costs else g0[t]), int(j), 0, g0[t]) for t, j in enumerate(c)]
        heapq.heapify(heap)
        stamp = 0
        while run.n_out < run.n_select and heap:
            _, j, when, g = heap[0]
            if use_costs and costs[j] > run.budget:
                heapq.heappop(heap)
                continue
            if when == stamp:
                heapq.heappop(heap)
                run.take(j, g)
                stamp += 1
                continue
            g = float(run.f.gains(np.array([j]))[0])
            heapq.heapreplace(heap, (-(g / costs[j] if use_costs else g), j, stamp, g))
