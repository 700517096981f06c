"""numba loops of the greedy optimizers, written once for every objective.

Each loop takes the objective's ``state`` (a named tuple, see
``coreset.objectives._base``) and calls the generic ``kernel_gain`` /
``commit``: numba compiles one specialisation per state type, with the
objective's own gain and update inlined, and caches it on disk.

Ties go to the lowest index everywhere: lazy greedy's loser tree orders by
(key desc, index asc), scans keep the first maximum, and lazy greedy's bucket
walk keeps the best (key desc, index asc) among what it evaluated.

Lazy greedy has two loops over the same stale keys (upper bounds), with the
same picks: the loser tree (``tree_init`` / ``lazy_steps``: one evaluation
at a time, each waiting on the replay of the last) and the bucket walk
(``bucket_init`` / ``bucket_steps``): the keys sit in buckets by value (an
order-preserving 64-bit code of the float, 8 mantissa bits, so a bucket spans
under 0.4 % of its keys); a step drains whole buckets from the top,
evaluating every member (no dependency between consecutive evaluations, so
the CPU overlaps their loads), and stops when the best fresh key lies in a
bucket above the next one: every key left is then strictly below it. That is
lazy greedy's argmax (ties to the lowest index), found with a few more
evaluations (the rest of the last bucket drained). When those extra
evaluations outnumber the necessary ones by more than ``BUCKET_SLACK`` (many
equal keys, e.g. gains that all fell to 0), the walk hands its stale keys to
the loser tree for the rest (``tree_from_keys``).

Note for contributors: numba's cache is keyed on this file; after editing an
objective's kernels, a stale cached loop may still hold the old kernel. Clear
the ``__pycache__`` folders (or set ``NUMBA_CACHE_DIR`` to a fresh folder).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..objectives._base import commit, kernel_gain


@njit(cache=True, nogil=True)
def _take(state, j, gain, costs, use_costs, budget_left, out_idx, out_gain, n_out):
    """Commit pick ``j`` with its gain: written to the outputs at ``n_out``,
    its cost off the budget. Returns ``(budget_left, n_out + 1)``."""
    commit(state, j)
    out_idx[n_out] = j
    out_gain[n_out] = gain
    if use_costs:
        budget_left -= costs[j]
    return budget_left, n_out + 1


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
    return _tree_build(wk, ws, M) + (size,)


@njit(cache=True, nogil=True)
def _tree_build(wk, ws, M):
    """The loser tree ``(nk, ns, M)`` over the leaves ``wk[M:]`` / ``ws[M:]``
    (the first half of ``wk`` / ``ws`` is scratch)."""
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
    return nk, ns, M


@njit(cache=True, nogil=True)
def tree_from_keys(key):
    """A loser tree (as :func:`tree_init` returns) over the slot keys ``key``
    (-inf: not a candidate), e.g. the stale keys the bucket walk leaves."""
    m = key.shape[0]
    M = 1
    while M < m:
        M *= 2
    wk = np.full(2 * M, -np.inf)
    ws = np.empty(2 * M, np.int64)
    size = 0
    for t in range(M):
        ws[M + t] = t
        if t < m and key[t] != -np.inf:
            wk[M + t] = key[t]
            size += 1
    return _tree_build(wk, ws, M) + (size,)


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
            budget_left, n_out = _take(state, j, fresh_gain[j], costs, use_costs, budget_left, out_idx, out_gain,
                                       n_out)
            steps += 1
            stamp += 1
            size -= 1
            _replay(nk, ns, M, s, -np.inf)
            continue
        g = kernel_gain(state, j)
        fresh[j] = stamp
        fresh_gain[j] = g
        _replay(nk, ns, M, s, g / costs[j] if use_costs else g)
    return size, stamp, budget_left, n_out


#: a bucket is the keys whose order-preserving code agrees above bit 44: sign,
#: exponent and the top 8 mantissa bits
BUCKET_SHIFT = 44
#: buckets kept: a window of 2^16 (256 binades) below the first top key, plus
#: headroom above it; keys under the window share bucket 0
BUCKET_WINDOW = 1 << 16
BUCKET_HEADROOM = 1 << 10
#: the walk gives way to the loser tree once its extra evaluations (members
#: of a drained bucket that the tree would not have evaluated) exceed the
#: necessary ones by this many
BUCKET_SLACK = 1024


@njit(inline="always", nogil=True)
def _code(key):
    """The float64 ``key`` as an int64 in the same order (-0.0 as 0.0)."""
    c = np.float64(key + 0.0).view(np.int64)
    if c < 0:
        c ^= np.int64(0x7FFFFFFFFFFFFFFF)
    return c


@njit(inline="always", nogil=True)
def _bucket(key, base):
    b = (_code(key) >> BUCKET_SHIFT) - base
    if b < 0:
        return np.int64(0)
    if b >= BUCKET_WINDOW:
        return np.int64(BUCKET_WINDOW - 1)
    return b


@njit(cache=True, nogil=True)
def bucket_init(state, cands, costs, use_costs):
    """The bucket walk's structure over the slots of ``cands`` (ascending):
    ``key`` (the slot's stale key, -inf once picked or dropped), ``head[b]``
    (first slot of bucket ``b``, -1 if empty) and ``nxt`` (the next slot in
    its bucket). Returns ``(head, nxt, key, base, top, size, fullest)``: ``base``
    maps codes to buckets, ``top`` bounds the highest non-empty bucket,
    ``fullest`` is the most keys in one bucket."""
    m = cands.shape[0]
    key = np.full(m, -np.inf)
    nxt = np.full(m, -1, np.int64)
    head = np.full(BUCKET_WINDOW, -1, np.int64)
    size = 0
    hi = np.int64(0)
    for t in range(m):
        j = cands[t]
        if not state.selected[j]:
            g = kernel_gain(state, j)
            k = (g / costs[j] if use_costs else g) + 0.0
            key[t] = k
            c = _code(k)
            if size == 0 or c > hi:
                hi = c
            size += 1
    base = (hi >> BUCKET_SHIFT) - (BUCKET_WINDOW - 1 - BUCKET_HEADROOM)
    top = np.int64(0)
    count = np.zeros(BUCKET_WINDOW, np.int64)
    fullest = 0
    for t in range(m - 1, -1, -1):
        if key[t] != -np.inf:
            b = _bucket(key[t], base)
            nxt[t] = head[b]
            head[b] = t
            top = max(top, b)
            count[b] += 1
            fullest = max(fullest, count[b])
    return head, nxt, key, base, top, size, fullest


@njit(cache=True, nogil=True)
def bucket_steps(state, cands, head, nxt, key, base, top, size, stats, costs, use_costs, budget_left,
                 max_steps, out_idx, out_gain, n_out):
    """Up to ``max_steps`` lazy-greedy picks by the bucket walk (see the module
    doc). ``stats``: [evaluations, extra evaluations, 1 once the walk should
    give way to the loser tree]; it stops then, the keys left in ``key``.
    Returns the new number of live candidates, ``top``, remaining budget and
    number of picks written."""
    m = cands.shape[0]
    es = np.empty(m, np.int64)   # this step's evaluated slots
    ek = np.empty(m, np.float64)  # and their stale keys
    steps = 0
    while steps < max_steps and size > 0:
        bk = -np.inf
        bs = -1
        bg = 0.0
        bb = np.int64(-1)
        c = 0
        b = top
        while b >= 0:
            if bs >= 0 and bb > b:
                break  # every key left is below the best fresh one
            s = head[b]
            if s < 0:
                b -= 1
                if c == 0:
                    top = b
                continue
            head[b] = -1
            while s >= 0:  # drain bucket b: evaluations independent of each other
                ns = nxt[s]
                j = cands[s]
                if use_costs and costs[j] > budget_left:
                    key[s] = -np.inf  # never fits again: the budget only shrinks
                    size -= 1
                else:
                    g = kernel_gain(state, j)
                    k = (g / costs[j] if use_costs else g) + 0.0
                    es[c] = s
                    ek[c] = key[s]
                    c += 1
                    key[s] = k
                    if bs < 0 or k > bk or (k == bk and s < bs):
                        bk, bs, bg = k, s, g
                s = ns
            if bs >= 0:
                bb = _bucket(bk, base)
            b -= 1
        if bs < 0:
            size = 0  # nothing left that fits
            break
        budget_left, n_out = _take(state, cands[bs], bg, costs, use_costs, budget_left, out_idx, out_gain, n_out)
        steps += 1
        size -= 1
        key[bs] = -np.inf
        # the rest go back under their fresh keys; the tree would have evaluated
        # only those whose stale key came before the pick in (key desc, index asc)
        new_top = b if b > 0 else np.int64(0)
        extra = 0
        for q in range(c):
            s = es[q]
            if s == bs:
                continue
            rb = _bucket(key[s], base)
            nxt[s] = head[rb]
            head[rb] = s
            new_top = max(new_top, rb)
            if not (ek[q] > bk or (ek[q] == bk and s < bs)):
                extra += 1
        top = new_top
        stats[0] += c
        stats[1] += extra
        if stats[1] > stats[0] - stats[1] + BUCKET_SLACK:
            stats[2] = 1
            break
    return size, top, budget_left, n_out


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
        budget_left, n_out = _take(state, best, best_gain, costs, use_costs, budget_left, out_idx, out_gain, n_out)
        steps += 1
    return budget_left, n_out


@njit(cache=True, nogil=True)
def stochastic_steps(state, pool, pool_size, sample_size, seeds, costs, use_costs, budget_left,
                     max_steps, out_idx, out_gain, n_out):
    """Stochastic greedy (Mirzasoleiman et al. 2015): each step evaluates a
    uniform sample (without replacement) of ``sample_size`` remaining
    candidates and takes the best (by gain / cost under a budget; candidates
    that no longer fit leave the pool for good). ``pool[:pool_size]`` holds the
    remaining candidates; a partial Fisher-Yates shuffle draws the sample.
    Pick ``t`` draws from ``seeds[t]``: the picks do not depend on how the
    run is split into calls."""
    steps = 0
    while steps < max_steps and pool_size > 0:
        np.random.seed(seeds[n_out])
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
        budget_left, n_out = _take(state, j, best_gain, costs, use_costs, budget_left, out_idx, out_gain, n_out)
        pool_size -= 1
        pool[best_pos] = pool[pool_size]
        pool[pool_size] = j
        steps += 1
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
        budget_left, n_out = _take(state, j, kernel_gain(state, j), costs, use_costs, budget_left, out_idx, out_gain,
                                   n_out)
    return budget_left, n_out


# ---------------------------------------------------------------- lazy greedy, gains on several threads
#: a gain must read at least this many entries (e.g. a dense row of N) for the
#: batched parallel loop below: under it one evaluation is cheaper than waking
#: the threads
PARALLEL_MIN_WORK = 4096


@njit(cache=True, nogil=True, parallel=True)
def gains_parallel(state, cands, slots, m, out):
    """``out[t] = gain of cands[slots[t]]`` for ``t < m``, on numba's threads.
    Only for objectives whose gain reads the state and writes nothing."""
    for t in prange(m):
        out[t] = kernel_gain(state, cands[slots[t]])


@njit(inline="always", nogil=True)
def _before(ka, sa, kb, sb):
    return ka > kb or (ka == kb and sa < sb)


@njit(cache=True, nogil=True)
def _heap_push(hk, hs, size, k, s):
    """Binary heap on (key desc, slot asc) in ``hk`` / ``hs``; returns the new size."""
    i = size
    while i > 0:
        p = (i - 1) >> 1
        if not _before(k, s, hk[p], hs[p]):
            break
        hk[i] = hk[p]
        hs[i] = hs[p]
        i = p
    hk[i] = k
    hs[i] = s
    return size + 1


@njit(cache=True, nogil=True)
def _heap_pop(hk, hs, size):
    """Remove the top of the heap; returns the new size."""
    size -= 1
    k = hk[size]
    s = hs[size]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and _before(hk[c + 1], hs[c + 1], hk[c], hs[c]):
            c += 1
        if not _before(hk[c], hs[c], k, s):
            break
        hk[i] = hk[c]
        hs[i] = hs[c]
        i = c
    if size > 0:
        hk[i] = k
        hs[i] = s
    return size


@njit(cache=True, nogil=True)
def batch_init(state, cands, width, costs, use_costs):
    """A heap ``(hk, hs, size)`` over the slots of ``cands`` with every
    singleton gain, computed on numba's threads (one thread: a plain loop)."""
    m = cands.shape[0]
    slots = np.empty(m, np.int64)
    c = 0
    for t in range(m):
        if not state.selected[cands[t]]:
            slots[c] = t
            c += 1
    g = np.empty(c, np.float64)
    if width > 1:
        gains_parallel(state, cands, slots, c, g)
    else:
        for q in range(c):
            g[q] = kernel_gain(state, cands[slots[q]])
    hk = np.empty(max(c, 1), np.float64)
    hs = np.empty(max(c, 1), np.int64)
    size = 0
    for q in range(c):
        j = cands[slots[q]]
        size = _heap_push(hk, hs, size, g[q] / costs[j] if use_costs else g[q], slots[q])
    return hk, hs, size


@njit(cache=True, nogil=True)
def batch_steps(state, cands, hk, hs, size, fresh, fresh_gain, stamp, width, costs, use_costs, budget_left,
                max_steps, out_idx, out_gain, n_out):
    """Up to ``max_steps`` lazy-greedy picks, evaluating stale keys in batches
    on numba's threads: while the top key is stale, up to ``batch`` stale keys
    leave the top of the heap, their gains are computed together and they go
    back fresh. A pick is taken only when the top key is fresh (its exact gain
    is at least every other upper bound), so the picks are lazy greedy's; a
    batch costs at most ``batch - 1`` evaluations the one-at-a-time loop would
    not have made. ``batch`` follows the evaluations the previous pick needed,
    between ``width`` (the threads) and ``4 width`` (1 on one thread).
    Returns the new heap size, stamp, remaining budget and number of picks
    written."""
    most = 4 * width if width > 1 else 1
    slots = np.empty(most, np.int64)
    g = np.empty(most, np.float64)
    batch = width
    evals = 0
    steps = 0
    while steps < max_steps and size > 0:
        s = hs[0]
        j = cands[s]
        if use_costs and costs[j] > budget_left:
            size = _heap_pop(hk, hs, size)  # never fits again: the budget only shrinks
            continue
        if fresh[j] == stamp:
            size = _heap_pop(hk, hs, size)
            budget_left, n_out = _take(state, j, fresh_gain[j], costs, use_costs, budget_left, out_idx, out_gain,
                                       n_out)
            steps += 1
            stamp += 1
            batch = min(max(evals, width), most)
            evals = 0
            continue
        m = 0
        while m < batch and size > 0:
            s = hs[0]
            j = cands[s]
            if use_costs and costs[j] > budget_left:
                size = _heap_pop(hk, hs, size)
                continue
            if fresh[j] == stamp:
                break
            slots[m] = s
            m += 1
            size = _heap_pop(hk, hs, size)
        if m == 1:
            g[0] = kernel_gain(state, cands[slots[0]])
        else:
            gains_parallel(state, cands, slots, m, g)
        for t in range(m):
            s = slots[t]
            j = cands[s]
            fresh[j] = stamp
            fresh_gain[j] = g[t]
            size = _heap_push(hk, hs, size, g[t] / costs[j] if use_costs else g[t], s)
        evals += m
    return size, stamp, budget_left, n_out
