"""Sieve-Streaming++ (Kazemi, Mitrovic, Zadimoghaddam, Lattanzi, Karbasi 2019;
Sieve-Streaming, Badanidiyuru et al. 2014) as a registered optimizer: one pass
over the elements of an in-memory :class:`~coreset.objectives.Objective`, in
index order.

The rules (thresholds, sieve lifecycle, admission, finish) are written once in
:mod:`coreset.optimizers._sieve_kernels` and the sieves' bookkeeping is the
same :class:`~coreset.optimizers._sieve_state.SieveSlots` the streaming state
uses; here each sieve's coverage is its own copy of the objective's state
(``O(sieves x n)`` memory): this form is for small inputs and for checking the
rules. Data larger than memory goes through ``coreset.select_stream`` /
``SubmodularSelector(optimizer="sieve_streaming").partial_fit`` (facility
location against a reservoir, :class:`~coreset.optimizers._sieve_state.SieveState`).

Finishing (both forms): greedy over the union of the candidates the sieves kept
(plus the first ``n_select`` elements, so a selection always has ``n_select``
picks); the result is whichever of that greedy set and the best sieve has the
higher value (the best sieve on ties).
"""

from __future__ import annotations

import copy
import logging
import math
import warnings

import numpy as np

from .._validation import check_float, check_int
from ._base import Optimizer
from ._sieve_kernels import admits, open_slot, record, use_sieve
from ._sieve_state import N_NEIGHBORS, RESERVOIR, SieveSlots

__all__ = ["SieveStreaming"]

log = logging.getLogger(__name__)


class SieveStreaming(Optimizer):
    """Sieve-Streaming++: one pass in index order, then greedy over the kept
    candidates (see the module docstring).

    Parameters
    ----------
    epsilon : float in (0, 1)
        Threshold spacing: thresholds are powers of ``1 + epsilon``. Smaller
        is closer to greedy, with ``log(2 k) / epsilon`` sieves alive at once.
    reservoir : int or None
        The stream form only (``SubmodularSelector.partial_fit``): rows of the
        first chunk drawn as the ground set facility location measures
        coverage on (None: ``RESERVOIR``, 10,000); see ``docs/streaming.md``.
        Over an in-memory objective it does not apply: setting it there is
        deprecated (``DeprecationWarning``).
    n_neighbors : int or None
        The stream form only: each row's gain is taken over its
        ``n_neighbors`` most similar reservoir rows (None: 32). Over an
        in-memory objective, as ``reservoir``.
    final_greedy : bool
        Finish with greedy over the union of the candidates (default) or return
        the best sieve as is.
    """

    name = "sieve_streaming"
    supports_costs = False

    def __init__(self, epsilon: float = 0.1, reservoir: int | None = None, n_neighbors: int | None = None,
                 final_greedy: bool = True):
        self.epsilon = epsilon
        self.reservoir = reservoir
        self.n_neighbors = n_neighbors
        self.final_greedy = final_greedy

    def check(self):
        """Validated ``(epsilon, reservoir, n_neighbors)`` of the stream form (defaults filled in)."""
        eps = check_float(self.epsilon, "epsilon", low=0.0, high=1.0, low_open=True, high_open=True)
        r = check_int(RESERVOIR if self.reservoir is None else self.reservoir, "reservoir", low=1)
        m = check_int(N_NEIGHBORS if self.n_neighbors is None else self.n_neighbors, "n_neighbors", low=1)
        return eps, r, m

    def _kernel(self, run, rng):
        self._python(run, rng)

    def _python(self, run, rng):
        from ..exceptions import ValidationError

        if run.use_costs:
            raise ValidationError("optimizer='sieve_streaming' does not take costs= / budget= (knapsack)")
        eps, _, _ = self.check()
        given = [p for p in ("reservoir", "n_neighbors") if getattr(self, p) is not None]
        if given:
            warnings.warn(f"SieveStreaming({', '.join(f'{p}=...' for p in given)}) applies to the stream form only "
                          "(partial_fit); over an in-memory objective it is ignored, and setting it there is "
                          "deprecated (docs/streaming.md)", DeprecationWarning, stacklevel=4)
        f, k = run.f, run.n_select
        if run.n > 50_000:
            log.warning("sieve_streaming over an in-memory objective of %d elements runs in Python, one objective "
                        "copy per sieve; for large data use coreset.select_stream (docs/streaming.md)", run.n)
        copy_of = f.copy if hasattr(f, "copy") else (lambda: copy.deepcopy(f))
        base_value = float(f.value)
        slots = SieveSlots.empty(k, eps)
        state = [None] * slots.T  # each live sieve's objective copy, by slot
        kept = set(int(j) for j in range(min(run.n, k)) if run.remaining[j])  # the fallback candidates
        for j in np.flatnonzero(run.remaining):
            j = int(j)
            lo, hi = slots.observe(float(f.gains(np.array([j], np.int64))[0]))
            if slots.scal[0] <= 0:
                continue
            for e in range(lo, hi + 1):
                q, started = open_slot(e, slots.expo, slots.size, slots.val)
                if started:
                    state[q] = copy_of()
            for e in range(lo, hi + 1):
                q = e % slots.T
                if slots.size[q] >= k:
                    continue
                g = state[q]
                gain = float(g.gains(np.array([j], np.int64))[0])
                if admits(gain, e, eps):
                    g.update(j)
                    record(q, j, float(g.value) - base_value, slots.members, slots.size, slots.val, slots.scal)
                    kept.add(j)
        best_q, best_value = slots.best()
        best_size = int(slots.size[best_q]) if best_q >= 0 else 0
        greedy, greedy_value = None, -math.inf
        if self.final_greedy or best_size < k:
            g = copy_of()
            greedy = _greedy_protocol(g, np.array(sorted(kept), np.int64), k)
            greedy_value = float(g.value) - base_value
        if best_q >= 0 and use_sieve(best_size, k, self.final_greedy, best_value, greedy_value):
            picks = [int(j) for j in slots.members[best_q, :k]]
        else:
            picks = greedy
        for j in picks:
            run.take(int(j), float(f.gains(np.array([j], np.int64))[0]))


def _greedy_protocol(f, cands, k):
    """Naive greedy over ``cands`` through the protocol (ties: lowest index)."""
    left = list(int(c) for c in cands)
    out = []
    while left and len(out) < k:
        g = np.asarray(f.gains(np.array(left, np.int64)), np.float64)
        t = int(np.argmax(g))
        j = left.pop(t)
        f.update(j)
        out.append(j)
    return out
