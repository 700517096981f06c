"""Naive greedy: every remaining candidate's gain at every step."""

from __future__ import annotations

import numpy as np

from ._base import Optimizer

__all__ = ["NaiveGreedy"]


class NaiveGreedy(Optimizer):
    """Every remaining candidate's gain at every step, the best taken (lowest
    index among ties); O(N) evaluations a step. The reference the others are
    tested against."""

    name = "naive_greedy"

    def _kernel(self, run, rng, cands=None):
        from ._kernels import naive_steps

        cands = np.flatnonzero(run.remaining) if cands is None else cands
        while run.n_out < run.n_select:
            before = run.n_out
            steps = run.call_steps()
            run.budget, run.n_out = naive_steps(run.f.state, cands, run.costs, run.use_costs, run.budget,
                                                steps, run.out_idx, run.out_gain, run.n_out)
            run.report(force=True)
            if run.n_out == before:
                break

    def _python(self, run, rng, cands=None):
        allowed = np.ones(run.n, bool) if cands is None else np.isin(np.arange(run.n), cands)
        while run.n_out < run.n_select:
            c = np.flatnonzero(run.fits() & allowed)
            if c.size == 0:
                break
            g = np.asarray(run.f.gains(c), dtype=np.float64)
            key = g / run.costs[c] if run.use_costs else g
            t = int(np.argmax(key))  # first maximum: lowest index
            run.take(int(c[t]), g[t])
