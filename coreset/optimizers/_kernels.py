"""numba loops of the greedy optimizers, written once for every objective.

Each loop takes the objective's ``state`` (a named tuple, see
``coreset.objectives._base``) and calls the generic ``kernel_gain`` /
``commit``: numba compiles one specialisation per state type, with the
objective's own gain and update inlined, and caches it on disk.

Ties go to the lowest index everywhere: lazy greedy's loser tree orders by
(key desc, index asc), scans keep the first maximum.

Note for contributors: numba's cache is keyed on this file; after editing an
objective's kernels, a stale cached loop may still hold the old kernel. Clear
the ``__pycache__`` folders (or set ``NUMBA_CACHE_DIR`` to a fresh folder).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..objectives._base import commit, kernel_gain


@njit(cache=True, nogil=True)
def _replay(nk, ns, M, s, key):
    """Give leaf ``s`` of the loser tree ``(nk, ns)`` (``M`` leaves) the key
    ``key`` and replay its matches up to the root; valid when ``s`` is the
    current winner, which is the only leaf lazy greedy ever changes. Each
    internal node keeps the loser of its match (key, slot); node 0 the winner.
    The path is fixed by ``s`` (no data-dependent descent as in a heap), so
    its loads do not wait on comparisons; the comparisons are branch-free."""
    wk = key
    ws = s
    node = (s + M) >> 1
    while node >= 1:
        lk = nk[node]
        ls = ns[node]
        c = (lk > wk) | ((lk == wk) & (ls < ws))
        nk[node] = wk if c else lk
        ns[node] = ws if c else ls
        wk = lk if c else wk
        ws = ls if c else ws
        node >>= 1
    nk[0] = wk
    ns[0] = ws


@njit(cache=True, nogil=True)
def tree_init(state, cands, costs, use_costs):
    """A loser tree over the slots of ``cands`` (ascending), keyed by
    (gain [/ cost] desc, slot asc): the same order as (key desc, index asc).
    Selected candidates and the padding up to a power of two get key -inf.
    Returns ``(nk, ns, M, size)`` with ``size`` the live candidates."""
    m = cands.shape[0]
    M = 1
    while M < m:
        M *= 2
    wk = np.empty(2 * M, np.float64)
    ws = np.empty(2 * M, np.int64)
    size = 0
    for t in range(M):
        wk[M + t] = -np.inf
        ws[M + t] = t
        if t < m:
            j = cands[t]
            if not state.selected[j]:
                g = kernel_gain(state, j)
                wk[M + t] = g / costs[j] if use_costs else g
                size += 1
    nk = np.empty(M, np.float64)
    ns = np.empty(M, np.int64)
    for node in range(M - 1, 0, -1):
        a = 2 * node
        b = a + 1
        if (wk[b] > wk[a]) or (wk[b] == wk[a] and ws[b] < ws[a]):
            a, b = b, a
        wk[node] = wk[a]
        ws[node] = ws[a]
        nk[node] = wk[b]
        ns[node] = ws[b]
    nk[0] = wk[1]
    ns[0] = ws[1]
    return nk, ns, M, size


@njit(cache=True, nogil=True)
def lazy_steps(state, cands, nk, ns, M, size, fresh, fresh_gain, stamp, costs, use_costs, budget_left,
               max_steps, out_idx, out_gain, n_out):
    """Up to ``max_steps`` lazy-greedy picks. ``fresh[j] == stamp`` marks a key
    computed in the current state (its gain is ``fresh_gain[j]``). Returns the
    new number of live candidates, stamp, remaining budget and number of picks
    written."""
    steps = 0
    while steps < max_steps and size > 0:
        s = ns[0]
        j = cands[s]
        if use_costs and costs[j] > budget_left:
            size -= 1  # never fits again: the budget only shrinks
            _replay(nk, ns, M, s, -np.inf)
            continue
        if fresh[j] == stamp:
            commit(state, j)
            out_idx[n_out] = j
            out_gain[n_out] = fresh_gain[j]
            n_out += 1
            steps += 1
            stamp += 1
            if use_costs:
                budget_left -= costs[j]
            size -= 1
            _replay(nk, ns, M, s, -np.inf)
            continue
        g = kernel_gain(state, j)
        fresh[j] = stamp
        fresh_gain[j] = g
        _replay(nk, ns, M, s, g / costs[j] if use_costs else g)
    return size, stamp, budget_left, n_out


@njit(cache=True, nogil=True)
def naive_steps(state, cands, costs, use_costs, budget_left, max_steps, out_idx, out_gain, n_out):
    """Up to ``max_steps`` naive-greedy picks among ``cands`` (ascending): every
    remaining candidate's gain each step, the best (lowest index among ties)."""
    steps = 0
    while steps < max_steps:
        best = -1
        best_key = -1.0
        best_gain = 0.0
        for t in range(cands.shape[0]):
            j = cands[t]
            if state.selected[j] or (use_costs and costs[j] > budget_left):
                continue
            g = kernel_gain(state, j)
            key = g / costs[j] if use_costs else g
            if best == -1 or key > best_key:
                best, best_key, best_gain = j, key, g
        if best == -1:
            break
        commit(state, best)
        out_idx[n_out] = best
        out_gain[n_out] = best_gain
        n_out += 1
        steps += 1
        if use_costs:
            budget_left -= costs[best]
    return budget_left, n_out


@njit(cache=True, nogil=True)
def stochastic_steps(state, pool, pool_size, sample_size, seed, costs, use_costs, budget_left,
                     max_steps, out_idx, out_gain, n_out):
    """Stochastic greedy (Mirzasoleiman et al. 2015): each step evaluates a
    uniform sample (without replacement) of ``sample_size`` remaining
    candidates and takes the best (by gain / cost under a budget; candidates
    that no longer fit leave the pool for good). ``pool[:pool_size]`` holds the
    remaining candidates; a partial Fisher-Yates shuffle draws the sample."""
    np.random.seed(seed)
    steps = 0
    while steps < max_steps and pool_size > 0:
        s = min(sample_size, pool_size)
        best_pos = -1
        best_key = -1.0
        best_gain = 0.0
        t = 0
        while t < s:
            r = t + np.random.randint(0, pool_size - t)
            pool[t], pool[r] = pool[r], pool[t]
            j = pool[t]
            if use_costs and costs[j] > budget_left:
                pool_size -= 1  # drop it: it never fits again
                pool[t] = pool[pool_size]
                pool[pool_size] = j
                s = min(s, pool_size)
                continue
            g = kernel_gain(state, j)
            key = g / costs[j] if use_costs else g
            if best_pos == -1 or key > best_key or (key == best_key and j < pool[best_pos]):
                best_pos, best_key, best_gain = t, key, g
            t += 1
        if best_pos == -1:
            break
        j = pool[best_pos]
        commit(state, j)
        pool_size -= 1
        pool[best_pos] = pool[pool_size]
        pool[pool_size] = j
        out_idx[n_out] = j
        out_gain[n_out] = best_gain
        n_out += 1
        steps += 1
        if use_costs:
            budget_left -= costs[j]
    return pool_size, budget_left, n_out


@njit(cache=True, nogil=True)
def commit_many(state, order, costs, use_costs, budget_left, n_select, out_idx, out_gain):
    """Commit ``order`` (already ranked) until ``n_select`` picks or the budget
    ends, skipping what does not fit; each pick's realised marginal gain."""
    n_out = 0
    for t in range(order.shape[0]):
        if n_out == n_select:
            break
        j = order[t]
        if state.selected[j] or (use_costs and costs[j] > budget_left):
            continue
        out_gain[n_out] = kernel_gain(state, j)
        commit(state, j)
        out_idx[n_out] = j
        n_out += 1
        if use_costs:
            budget_left -= costs[j]
    return budget_left, n_out
