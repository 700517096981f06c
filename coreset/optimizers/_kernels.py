"""numba kernels of greedy maximisation for facility location.

One representation covers both forms: ``mode == 0`` reads a dense matrix ``S``
(row j = how well candidate j represents every point), ``mode == 1`` a CSR
matrix (``indptr``, ``idx``, ``data``; row j lists the points j covers).
Gains are float64 sums over the row in a fixed order, so they are bit-for-bit
the same whoever computes them (naive or lazy): ``max(0, s - cur)`` is
monotone in ``cur`` and so is the rounded sum, hence stale gains are exact
upper bounds and lazy greedy returns exactly what naive greedy returns.

Ties go to the lowest index: the heap orders by (key desc, index asc).
"""

from __future__ import annotations

import numpy as np
from numba import njit



@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def gain_one(mode, S, indptr, idx, data, cur, j):
    g = 0.0
    if mode == 0:
        row = S[j]
        for i in range(row.shape[0]):
            g += max(np.float64(row[i]) - cur[i], 0.0)
    else:
        for p in range(indptr[j], indptr[j + 1]):
            d = np.float64(data[p]) - cur[idx[p]]
            if d > 0.0:
                g += d
    return g


@njit(cache=True, nogil=True)
def gains_many(mode, S, indptr, idx, data, cur, cands):
    out = np.empty(cands.shape[0], np.float64)
    for t in range(cands.shape[0]):
        out[t] = gain_one(mode, S, indptr, idx, data, cur, cands[t])
    return out


@njit(cache=True, nogil=True)
def update_one(mode, S, indptr, idx, data, cur, assign, j):
    """Add candidate j: raise ``cur`` and record j as the representative of the
    points it now covers best (strictly better: earlier picks keep ties)."""
    if mode == 0:
        row = S[j]
        for i in range(row.shape[0]):
            v = np.float64(row[i])
            if v > cur[i]:
                cur[i] = v
                assign[i] = j
    else:
        for p in range(indptr[j], indptr[j + 1]):
            i = idx[p]
            v = np.float64(data[p])
            if v > cur[i]:
                cur[i] = v
                assign[i] = j


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
def heap_init(mode, S, indptr, idx, data, cur, costs, use_costs, selected):
    n = S.shape[0] if mode == 0 else indptr.shape[0] - 1
    m = 0
    for j in range(n):
        if not selected[j]:
            m += 1
    keys = np.empty(m, np.float64)
    ids = np.empty(m, np.int64)
    t = 0
    for j in range(n):
        if not selected[j]:
            g = gain_one(mode, S, indptr, idx, data, cur, j)
            keys[t] = g / costs[j] if use_costs else g
            ids[t] = j
            t += 1
    for pos in range(m // 2 - 1, -1, -1):
        _sift_down(keys, ids, m, pos)
    return keys, ids, m


@njit(cache=True, nogil=True)
def lazy_steps(mode, S, indptr, idx, data, cur, assign, keys, ids, size, fresh, fresh_gain, stamp,
               costs, use_costs, budget_left, max_steps, out_idx, out_gain, n_out):
    """Run up to ``max_steps`` lazy-greedy selections. ``fresh[j] == stamp``
    marks a key computed in the current state (its gain is ``fresh_gain[j]``).
    Returns the new heap size, stamp, remaining budget and number of
    selections written."""
    steps = 0
    while steps < max_steps and size > 0:
        j = ids[0]
        if use_costs and costs[j] > budget_left:
            size -= 1  # never fits again: the budget only shrinks
            keys[0] = keys[size]
            ids[0] = ids[size]
            _sift_down(keys, ids, size, 0)
            continue
        if fresh[j] == stamp:
            g = fresh_gain[j]
            update_one(mode, S, indptr, idx, data, cur, assign, j)
            out_idx[n_out] = j
            out_gain[n_out] = g
            n_out += 1
            steps += 1
            stamp += 1
            if use_costs:
                budget_left -= costs[j]
            size -= 1
            keys[0] = keys[size]
            ids[0] = ids[size]
            _sift_down(keys, ids, size, 0)
            continue
        g = gain_one(mode, S, indptr, idx, data, cur, j)
        keys[0] = g / costs[j] if use_costs else g
        fresh[j] = stamp
        fresh_gain[j] = g
        _sift_down(keys, ids, size, 0)
    return size, stamp, budget_left, n_out


@njit(cache=True, nogil=True)
def naive_steps(mode, S, indptr, idx, data, cur, assign, selected, costs, use_costs,
                budget_left, max_steps, out_idx, out_gain, n_out):
    """Up to ``max_steps`` naive-greedy selections: every remaining candidate's
    gain each step, the best (lowest index among ties) taken."""
    n = selected.shape[0]
    steps = 0
    while steps < max_steps:
        best = -1
        best_key = -1.0
        best_gain = 0.0
        for j in range(n):
            if selected[j] or (use_costs and costs[j] > budget_left):
                continue
            g = gain_one(mode, S, indptr, idx, data, cur, j)
            key = g / costs[j] if use_costs else g
            if best == -1 or key > best_key:
                best, best_key, best_gain = j, key, g
        if best == -1:
            break
        update_one(mode, S, indptr, idx, data, cur, assign, best)
        selected[best] = True
        out_idx[n_out] = best
        out_gain[n_out] = best_gain
        n_out += 1
        steps += 1
        if use_costs:
            budget_left -= costs[best]
    return budget_left, n_out


@njit(cache=True, nogil=True)
def stochastic_steps(mode, S, indptr, idx, data, cur, assign, pool, pool_size, sample_size,
                     seed, max_steps, out_idx, out_gain, n_out):
    """Stochastic greedy (Mirzasoleiman et al. 2015): each step evaluates a
    uniform sample (without replacement) of ``sample_size`` remaining
    candidates and takes the best. ``pool[:pool_size]`` holds the remaining
    candidates; a partial Fisher-Yates shuffle draws the sample in place."""
    np.random.seed(seed)
    steps = 0
    while steps < max_steps and pool_size > 0:
        s = min(sample_size, pool_size)
        best_pos = -1
        best_gain = -1.0
        for t in range(s):
            r = t + np.random.randint(0, pool_size - t)
            pool[t], pool[r] = pool[r], pool[t]
            g = gain_one(mode, S, indptr, idx, data, cur, pool[t])
            if best_pos == -1 or g > best_gain or (g == best_gain and pool[t] < pool[best_pos]):
                best_pos, best_gain = t, g
        j = pool[best_pos]
        update_one(mode, S, indptr, idx, data, cur, assign, j)
        pool_size -= 1
        pool[best_pos] = pool[pool_size]
        pool[pool_size] = j
        out_idx[n_out] = j
        out_gain[n_out] = best_gain
        n_out += 1
        steps += 1
    return pool_size, n_out
