"""numba loops of the greedy optimizers, written once for every objective.

Each loop takes the objective's ``state`` (a named tuple, see
``coreset.objectives._base``) and calls the generic ``kernel_gain`` /
``commit``: numba compiles one specialisation per state type, with the
objective's own gain and update inlined, and caches it on disk.

Ties go to the lowest index everywhere: the heap orders by (key desc, index
asc), scans keep the first maximum.

Note for contributors: numba's cache is keyed on this file; after editing an
objective's kernels, a stale cached loop may still hold the old kernel. Clear
the ``__pycache__`` folders (or set ``NUMBA_CACHE_DIR`` to a fresh folder).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..objectives._base import commit, kernel_gain


@njit(cache=True, nogil=True)
def _better(ka, ia, kb, ib):
    return ka > kb or (ka == kb and ia < ib)


@njit(cache=True, nogil=True)
def _sift_down(keys, ids, size, pos):
    while True:
        left = 2 * pos + 1
        if left >= size:
            return
        best = left
        right = left + 1
        if right < size and _better(keys[right], ids[right], keys[left], ids[left]):
            best = right
        if _better(keys[best], ids[best], keys[pos], ids[pos]):
            keys[pos], keys[best] = keys[best], keys[pos]
            ids[pos], ids[best] = ids[best], ids[pos]
            pos = best
        else:
            return


@njit(cache=True, nogil=True)
def _replace_top(keys, ids, size, key, idx):
    """Put (key, idx) in place of the top of the heap ``keys[:size]`` (Floyd's
    bottom-up way: move the hole down along the better child to a leaf, one
    comparison per level, then sift the new entry up; a re-evaluated lazy key
    usually belongs near the bottom, so the way up is short). Half the
    comparisons of a sift-down, and the same heap order, so the same picks.
    Not ``inline="always"``: numba's IR inliner miscompiled this loop (wrong
    picks in tests/test_optimizers.py); LLVM inlines it anyway."""
    pos = 0
    while True:
        left = 2 * pos + 1
        if left >= size:
            break
        best = left
        right = left + 1
        if right < size and _better(keys[right], ids[right], keys[left], ids[left]):
            best = right
        keys[pos] = keys[best]
        ids[pos] = ids[best]
        pos = best
    while pos > 0:
        parent = (pos - 1) >> 1
        if _better(key, idx, keys[parent], ids[parent]):
            keys[pos] = keys[parent]
            ids[pos] = ids[parent]
            pos = parent
        else:
            break
    keys[pos] = key
    ids[pos] = idx


@njit(cache=True, nogil=True)
def heap_init(state, cands, costs, use_costs):
    """A max-heap of (gain [/ cost], index) over the unselected ``cands``."""
    m = 0
    for t in range(cands.shape[0]):
        if not state.selected[cands[t]]:
            m += 1
    keys = np.empty(m, np.float64)
    ids = np.empty(m, np.int64)
    t = 0
    for s in range(cands.shape[0]):
        j = cands[s]
        if not state.selected[j]:
            g = kernel_gain(state, j)
            keys[t] = g / costs[j] if use_costs else g
            ids[t] = j
            t += 1
    for pos in range(m // 2 - 1, -1, -1):
        _sift_down(keys, ids, m, pos)
    return keys, ids, m


@njit(cache=True, nogil=True)
def lazy_steps(state, keys, ids, size, fresh, fresh_gain, stamp, costs, use_costs, budget_left,
               max_steps, out_idx, out_gain, n_out):
    """Up to ``max_steps`` lazy-greedy picks. ``fresh[j] == stamp`` marks a key
    computed in the current state (its gain is ``fresh_gain[j]``). Returns the
    new heap size, stamp, remaining budget and number of picks written."""
    steps = 0
    while steps < max_steps and size > 0:
        j = ids[0]
        if use_costs and costs[j] > budget_left:
            size -= 1  # never fits again: the budget only shrinks
            _replace_top(keys, ids, size, keys[size], ids[size])
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
            _replace_top(keys, ids, size, keys[size], ids[size])
            continue
        g = kernel_gain(state, j)
        fresh[j] = stamp
        fresh_gain[j] = g
        _replace_top(keys, ids, size, g / costs[j] if use_costs else g, j)
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
