"""Compiled helper of :func:`~coreset.similarity.euclidean_gamma`: squared
distances of sampled row pairs, summed exactly as numpy sums them.

``((X[a].astype(float64) - X[b]) ** 2).sum(1)`` gathers two (P, d) copies and
reduces each short row through numpy's generic loop: 1.3 ms for 20,000 pairs
of 10-d rows, paid by every euclidean selection. This loop does the same
float64 arithmetic with numpy's pairwise summation (8 accumulators, blocks of
128, halves above), so the sums, and the median gamma taken from them, are
the same bits (``tests/test_similarity_gamma.py`` checks it against numpy).
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit

__all__ = ["pair_sq_dists", "sample_pairs"]


@functools.lru_cache(maxsize=16)
def sample_pairs(n: int, n_pairs: int, seed: int):
    """The seeded pairs of distinct rows of :func:`euclidean_gamma` (read-only
    ``(a, b)``): they depend on ``n``, ``n_pairs`` and ``seed`` only, so a
    caller that scales inputs of one size again and again (adaptive
    reselection, every few epochs) draws them once."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, size=n_pairs)
    b = rng.integers(0, n, size=n_pairs)
    keep = a != b
    a, b = a[keep], b[keep]
    a.flags.writeable = False
    b.flags.writeable = False
    return a, b


@njit(cache=True, nogil=True)
def _block_sum(a, lo, n):
    """numpy's ``pairwise_sum`` (umath ``loops_utils.h``) of ``a[lo:lo + n]``
    for n <= 128: a plain loop under 8, else 8 accumulators."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    end = n - (n % 8)
    while i < end:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True, nogil=True)
def _pairwise_sum(a, n):
    """numpy's ``pairwise_sum`` of ``a[:n]``: blocks of at most 128, and above
    that the sum of the two halves (the first rounded down to a multiple of
    8). numpy recurses; this walks the same tree with an explicit stack
    (a cached numba function must not call itself)."""
    if n <= 128:
        return _block_sum(a, 0, n)
    los = np.empty(64, np.int64)
    ns = np.empty(64, np.int64)
    right = np.zeros(64, np.bool_)  # the frame's left half is summed (in acc)
    acc = np.empty(64, np.float64)
    sp = 0
    los[0], ns[0], right[0] = 0, n, False
    while True:
        m = ns[sp]
        half = m // 2
        half -= half % 8
        lo, size = (los[sp] + half, m - half) if right[sp] else (los[sp], half)
        if size > 128:
            sp += 1
            los[sp], ns[sp], right[sp] = lo, size, False
            continue
        v = _block_sum(a, lo, size)
        while right[sp]:  # both halves of this frame done: hand the sum to its parent
            v = acc[sp] + v
            if sp == 0:
                return v
            sp -= 1
        acc[sp] = v
        right[sp] = True


@njit(cache=True, nogil=True)
def pair_sq_dists(X, a, b):
    """``((X[a].astype(float64) - X[b]) ** 2).sum(1)``, the same bits (an
    overflow gives inf, as numpy does under ``errstate(over="ignore")``)."""
    d = X.shape[1]
    out = np.empty(a.shape[0], np.float64)
    if d > 128:  # numpy halves the row: squares into a buffer, then its tree
        buf = np.empty(d, np.float64)
        for p in range(a.shape[0]):
            i, j = a[p], b[p]
            for t in range(d):
                v = np.float64(X[i, t]) - np.float64(X[j, t])
                buf[t] = v * v
            out[p] = _pairwise_sum(buf, d)
        return out
    end = d - (d % 8)
    for p in range(a.shape[0]):  # one block: the squares summed in registers, in numpy's order
        i, j = a[p], b[p]
        if d < 8:
            res = 0.0
            for t in range(d):
                v = np.float64(X[i, t]) - np.float64(X[j, t])
                res += v * v
            out[p] = res
            continue
        v0 = np.float64(X[i, 0]) - np.float64(X[j, 0])
        v1 = np.float64(X[i, 1]) - np.float64(X[j, 1])
        v2 = np.float64(X[i, 2]) - np.float64(X[j, 2])
        v3 = np.float64(X[i, 3]) - np.float64(X[j, 3])
        v4 = np.float64(X[i, 4]) - np.float64(X[j, 4])
        v5 = np.float64(X[i, 5]) - np.float64(X[j, 5])
        v6 = np.float64(X[i, 6]) - np.float64(X[j, 6])
        v7 = np.float64(X[i, 7]) - np.float64(X[j, 7])
        r0, r1, r2, r3 = v0 * v0, v1 * v1, v2 * v2, v3 * v3
        r4, r5, r6, r7 = v4 * v4, v5 * v5, v6 * v6, v7 * v7
        for t in range(8, end, 8):
            v0 = np.float64(X[i, t]) - np.float64(X[j, t])
            v1 = np.float64(X[i, t + 1]) - np.float64(X[j, t + 1])
            v2 = np.float64(X[i, t + 2]) - np.float64(X[j, t + 2])
            v3 = np.float64(X[i, t + 3]) - np.float64(X[j, t + 3])
            v4 = np.float64(X[i, t + 4]) - np.float64(X[j, t + 4])
            v5 = np.float64(X[i, t + 5]) - np.float64(X[j, t + 5])
            v6 = np.float64(X[i, t + 6]) - np.float64(X[j, t + 6])
            v7 = np.float64(X[i, t + 7]) - np.float64(X[j, t + 7])
            r0 += v0 * v0
            r1 += v1 * v1
            r2 += v2 * v2
            r3 += v3 * v3
            r4 += v4 * v4
            r5 += v5 * v5
            r6 += v6 * v6
            r7 += v7 * v7
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        for t in range(end, d):
            v = np.float64(X[i, t]) - np.float64(X[j, t])
            res += v * v
        out[p] = res
    return out
