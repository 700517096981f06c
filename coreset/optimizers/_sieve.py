"""Sieve-Streaming++ (Kazemi, Mitrovic, Zadimoghaddam, Lattanzi, Karbasi 2019;
Sieve-Streaming, Badanidiyuru et al. 2014): one pass over the elements.

Thresholds are ``tau = (1 + epsilon) ** i`` for every integer ``i`` with
``max(LB, Delta) / (2 k) <= tau <= Delta``, where ``Delta`` is the largest
singleton value seen so far and ``LB`` the best value any sieve holds. Each
threshold keeps one set (a *sieve*); an element joins every sieve that has
room and where its marginal gain is at least the threshold. Sieves whose
threshold falls below the lower end are dropped, new ones start empty when
``Delta`` grows. At most ``log(2 k) / log(1 + epsilon) + 2`` sieves live at once.

Two forms share these rules:

* :class:`SieveStreaming` is the registered optimizer over any in-memory
  :class:`~coreset.objectives.Objective` (elements seen once, in index order).
  Each sieve holds its own copy of the objective's state (``O(sieves x n)``
  memory): it is for small inputs and for checking the rules.
* :func:`sieve_chunk` is the compiled kernel ``coreset.select_stream`` runs on
  chunks of rows: facility location against a fixed reservoir, each row given
  by its top-``m`` reservoir neighbours; a sieve is a coverage vector over the
  reservoir plus its members' ids, never a copy of the rows.

Finishing (both forms): greedy over the union of the candidates the sieves kept
(plus the first ``n_select`` elements, so a selection always has ``n_select``
picks); the result is whichever of that greedy set and the best sieve has the
higher value (the best sieve on ties).
"""

from __future__ import annotations

import copy
import logging
import math

import numpy as np

from .._validation import check_float, check_int
from ._base import Optimizer

__all__ = ["SieveStreaming", "n_slots", "sieve_chunk", "greedy_sparse", "EMPTY"]

EMPTY = -(2 ** 62)
log = logging.getLogger(__name__)


def n_slots(k: int, epsilon: float) -> int:
    """How many sieves can be alive at once for ``k`` picks."""
    return int(math.floor(math.log(2 * k) / math.log1p(epsilon))) + 3


def _window(delta, lb, k, epsilon):
    """Exponents ``[lo, hi]`` of the live thresholds (``hi < lo``: none)."""
    if delta <= 0:
        return 1, 0
    base = math.log1p(epsilon)
    lo = math.ceil(math.log(max(delta, lb) / (2 * k)) / base - 1e-12)
    hi = math.floor(math.log(delta) / base + 1e-12)
    return lo, hi


class SieveStreaming(Optimizer):
    """Sieve-Streaming++: one pass in index order, then greedy over the kept
    candidates (see the module docstring).

    Parameters
    ----------
    epsilon : float in (0, 1)
        Threshold spacing: thresholds are powers of ``1 + epsilon``. Smaller
        is closer to greedy, with ``log(2 k) / epsilon`` sieves alive at once.
    reservoir : int
        (Streaming only) rows drawn as the ground set facility location
        measures coverage on; see ``docs/streaming.md``.
    n_neighbors : int
        (Streaming only) each row's gain is taken over its ``n_neighbors``
        most similar reservoir rows.
    final_greedy : bool
        Finish with greedy over the union of the candidates (default) or return
        the best sieve as is.
    """

    name = "sieve_streaming"
    supports_costs = False

    def __init__(self, epsilon: float = 0.1, reservoir: int = 10_000, n_neighbors: int = 32,
                 final_greedy: bool = True):
        self.epsilon = epsilon
        self.reservoir = reservoir
        self.n_neighbors = n_neighbors
        self.final_greedy = final_greedy

    def check(self):
        """Validated ``(epsilon, reservoir, n_neighbors)``."""
        eps = check_float(self.epsilon, "epsilon", low=0.0, high=1.0, low_open=True, high_open=True)
        r = check_int(self.reservoir, "reservoir", low=1)
        m = check_int(self.n_neighbors, "n_neighbors", low=1)
        return eps, r, m

    def _kernel(self, run, rng):
        self._python(run, rng)

    def _python(self, run, rng):
        from ..exceptions import ValidationError

        if run.use_costs:
            raise ValidationError("optimizer='sieve_streaming' does not take costs= / budget= (knapsack)")
        eps, _, _ = self.check()
        f, k = run.f, run.n_select
        if run.n > 50_000:
            log.warning("sieve_streaming over an in-memory objective of %d elements runs in Python, one objective "
                        "copy per sieve; for large data use coreset.select_stream (docs/streaming.md)", run.n)
        copy_of = f.copy if hasattr(f, "copy") else (lambda: copy.deepcopy(f))
        base_value = float(f.value)
        sieves: dict[int, list] = {}  # exponent -> [objective copy, members, value]
        delta = lb = 0.0
        kept = set(int(j) for j in range(min(run.n, k)) if run.remaining[j])  # the fallback candidates
        for j in np.flatnonzero(run.remaining):
            j = int(j)
            single = float(f.gains(np.array([j], np.int64))[0])
            delta = max(delta, single)
            lo, hi = _window(delta, lb, k, eps)
            for e in [e for e in sieves if e < lo]:
                del sieves[e]
            for e in range(lo, hi + 1):
                if e not in sieves:
                    sieves[e] = [copy_of(), [], 0.0]
            for e in sorted(sieves):
                g, members, _ = s = sieves[e]
                if len(members) >= k:
                    continue
                gain = float(g.gains(np.array([j], np.int64))[0])
                if gain >= (1.0 + eps) ** e:
                    g.update(j)
                    members.append(j)
                    s[2] = float(g.value) - base_value
                    kept.add(j)
                    lb = max(lb, s[2])
        best_members, best_value = [], -math.inf
        for e in sorted(sieves):
            if sieves[e][2] > best_value:
                best_value, best_members = sieves[e][2], sieves[e][1]
        picks = best_members
        if self.final_greedy or len(best_members) < k:
            cands = np.array(sorted(kept), np.int64)
            g = copy_of()
            greedy = _greedy_protocol(g, cands, k)
            if float(g.value) - base_value > best_value or len(best_members) < k:
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


# ---------------------------------------------------------------- compiled kernels

def _njit():
    import numba

    return numba.njit(cache=True, nogil=True)


_kernels = {}


def sieve_chunk(nbr, sims, rows, start, *state):
    """Run the sieve over the rows ``start..`` of one chunk (see
    :func:`_sieve_chunk_py`; ``state`` is its arguments after ``start``), in
    compiled calls of about ``CALL_SECONDS`` each (``coreset._pace``: Ctrl-C
    raises between them; the same result). Returns the first row not
    processed: the chunk's length, or earlier when the pool is full."""
    from .._pace import Pacer

    fn = _kernels.get("sieve")
    if fn is None:
        fn = _kernels["sieve"] = _njit()(_sieve_chunk_py)
    c = nbr.shape[0]
    pacer = Pacer(first=64)
    t = start
    while t < c:
        stop = min(c, t + pacer.next())
        t = fn(nbr, sims, rows, t, stop, *state)
        if t < stop:
            break  # the pool is full
    return t


def greedy_sparse(nbr, sims, cands, k, r, out, out_gain):
    """Naive greedy over pool slots ``cands`` (see :func:`_greedy_sparse_py`),
    in compiled calls of about ``CALL_SECONDS`` each (``coreset._pace``).
    Returns the number of picks written to ``out`` / ``out_gain``."""
    from .._pace import Pacer

    fn = _kernels.get("greedy")
    if fn is None:
        fn = _kernels["greedy"] = _njit()(_greedy_sparse_py)
    cur = np.zeros(r, np.float64)
    used = np.zeros(cands.shape[0], np.bool_)
    pacer = Pacer()
    n_out, done = 0, False
    while not done:
        n_out, done = fn(nbr, sims, cands, k, cur, used, n_out, pacer.next(), out, out_gain)
    return n_out


def _sieve_chunk_py(nbr, sims, rows, start, stop, k, eps, scal, cur, size, members, val, expo,
                    pool_row, pool_nbr, pool_sim, pool_n, pool_slot_of_row):
    """Feed rows ``start..stop`` of a chunk to the sieves.

    ``nbr``/``sims`` (c x m): each row's reservoir neighbours and similarities;
    ``rows`` its global row numbers. Sieve state: ``scal = [Delta, LB]``,
    ``cur`` (T x r float32 coverage), ``size``, ``members`` (T x k pool slots),
    ``val``, ``expo`` (threshold exponent per slot, EMPTY when unused).
    Pool: rows some sieve accepted (or among the first ``k``), with their
    neighbour lists; ``pool_n[0]`` used. ``pool_slot_of_row[t]`` gets the pool
    slot of chunk row t (or -1). Returns the first row not processed:
    ``stop``, or earlier when the pool is full.
    """
    T = cur.shape[0]
    r = cur.shape[1]
    m = nbr.shape[1]
    base = np.log1p(eps)
    cap = pool_row.shape[0]
    for t in range(start, stop):
        if pool_n[0] >= cap:
            return t
        single = 0.0
        for p in range(m):
            s = sims[t, p]
            if s > 0:
                single += s
        if single > scal[0]:
            scal[0] = single
        delta = scal[0]
        slot_here = -1
        if rows[t] < k:  # the first k rows are kept as fallback candidates
            slot_here = pool_n[0]
            pool_n[0] += 1
            pool_row[slot_here] = rows[t]
            for p in range(m):
                pool_nbr[slot_here, p] = nbr[t, p]
                pool_sim[slot_here, p] = sims[t, p]
        if delta > 0:
            top = max(delta, scal[1])
            lo = np.int64(np.ceil(np.log(top / (2 * k)) / base - 1e-12))
            hi = np.int64(np.floor(np.log(delta) / base + 1e-12))
            for q in range(T):  # drop sieves below the window
                if expo[q] != EMPTY and expo[q] < lo:
                    expo[q] = EMPTY
            for e in range(lo, hi + 1):  # start the missing ones
                q = e % T
                if expo[q] != e:
                    expo[q] = e
                    size[q] = 0
                    val[q] = 0.0
                    for i in range(r):
                        cur[q, i] = 0.0
            for e in range(lo, hi + 1):
                q = e % T
                if size[q] >= k:
                    continue
                gain = 0.0
                for p in range(m):
                    d = sims[t, p] - cur[q, nbr[t, p]]
                    if d > 0:
                        gain += d
                if gain >= np.power(1.0 + eps, e) and gain > 0:
                    if slot_here < 0:
                        slot_here = pool_n[0]
                        pool_n[0] += 1
                        pool_row[slot_here] = rows[t]
                        for p in range(m):
                            pool_nbr[slot_here, p] = nbr[t, p]
                            pool_sim[slot_here, p] = sims[t, p]
                    for p in range(m):
                        i = nbr[t, p]
                        if sims[t, p] > cur[q, i]:
                            cur[q, i] = sims[t, p]
                    members[q, size[q]] = slot_here
                    size[q] += 1
                    val[q] += gain
                    if val[q] > scal[1]:
                        scal[1] = val[q]
        pool_slot_of_row[t] = slot_here
    return stop


def _greedy_sparse_py(nbr, sims, cands, k, cur, used, n_out, max_steps, out, out_gain):
    """Up to ``max_steps`` picks of naive greedy over pool slots ``cands``
    (ordered: ties to the earlier), facility location on their neighbour lists
    over the reservoir rows' coverage ``cur``; ``used`` marks the slots picked,
    ``n_out`` the picks written so far. Returns ``(n_out, finished)``."""
    m = nbr.shape[1]
    for step in range(max_steps):
        if n_out >= k:
            break
        best = -1.0
        bt = -1
        for t in range(cands.shape[0]):
            if used[t]:
                continue
            j = cands[t]
            g = 0.0
            for p in range(m):
                d = sims[j, p] - cur[nbr[j, p]]
                if d > 0:
                    g += d
            if g > best:
                best = g
                bt = t
        if bt < 0:
            return n_out, True
        used[bt] = True
        j = cands[bt]
        for p in range(m):
            i = nbr[j, p]
            if sims[j, p] > cur[i]:
                cur[i] = sims[j, p]
        out[n_out] = j
        out_gain[n_out] = best
        n_out += 1
    return n_out, n_out >= k
