"""numba kernels of the partitioned kNN search (``_search.search_cells``):
one sorted top-k list per row, fed with blocks of scores.

A list keeps the ``k`` best ``(score, id)`` offered to its row, best first,
under one total order: higher score first and, between equal scores, the
lower id. Its content is therefore the top k of everything it was offered,
whatever the order of the offers (the search runs blocks on several
threads). An entry is one 64-bit key, ``order_bits(score) << 32 | (2^32 - 1 -
id)``, so that a larger key is a better entry and one integer compare ranks
two entries (ids below 2^32 - 1); an empty slot is key 0. An offer is tested
against the list's last (worst) entry, 16 scores at a time, and enters by
insertion (shifting the worse keys down: cheaper than a heap's
unpredictable sift for k ~ 32).

Every kernel releases the GIL (``nogil``): threads run them side by side.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["merge_rows", "merge_cols", "two_hop", "decode", "id_of", "MAX_ID"]

#: scores tested together before any is inserted (most blocks of 16 hold none above the list's last)
_LANES = 16
_LOW = np.uint64(0xFFFFFFFF)
#: below every score (finite: the kernels compile with fastmath, which assumes no infinities)
_BOTTOM = np.float32(-3.4e38)
_TOP = np.float32(3.4e38)
#: the largest id a key holds
MAX_ID = 0xFFFFFFFE


@njit(nogil=True, cache=True, inline="always")
def _key(v, x, box, bits):
    """The key of score ``v`` (float32) and id ``x``; ``box`` / ``bits``: one
    float32 and its uint32 view (scratch for the bit cast)."""
    box[0] = v
    b = np.uint64(bits[0])
    b = (b ^ _LOW) if b >> np.uint64(31) else (b | np.uint64(0x80000000))
    return (b << np.uint64(32)) | (_LOW - np.uint64(x))


@njit(nogil=True, cache=True, inline="always")
def _value(key, box, bits):
    """The score of ``key`` (``_BOTTOM`` for an empty slot)."""
    if key == 0:
        return _BOTTOM
    b = key >> np.uint64(32)
    b = (b & np.uint64(0x7FFFFFFF)) if b >> np.uint64(31) else (b ^ _LOW)
    bits[0] = np.uint32(b)
    return box[0]


@njit(nogil=True, cache=True, inline="always")
def id_of(key):
    """The id of ``key`` (2^32 - 1 for an empty slot)."""
    return np.int64(_LOW - (key & _LOW))


@njit(nogil=True, cache=True, inline="always")
def _insert(L, h, key):
    """Insert ``key`` into list ``h`` (which it beats at its last entry)."""
    j = L.shape[1] - 1
    while j > 0 and L[h, j - 1] < key:
        L[h, j] = L[h, j - 1]
        j -= 1
    L[h, j] = key


@njit(nogil=True, cache=True, fastmath=True, inline="always")
def _block_max(S, r, off, j0, j1):
    """``max(S[r, j] + off[j] for j in [j0, j1))``, vectorised (fastmath: the
    scores are finite)."""
    m = _BOTTOM
    for j in range(j0, j1):
        m = max(m, S[r, j] + off[j])
    return m


@njit(nogil=True, cache=True, fastmath=True)
def _floor(S, r, off, k):
    """A lower bound on the k-th largest ``S[r, j] + off[j]``: the smallest of
    the maxima of k disjoint groups of columns (each maximum is a distinct
    entry, so k entries reach it). One vectorised pass; when a list starts
    empty it keeps much of the row from being inserted at all."""
    g = S.shape[1] // k
    low = _TOP
    for t in range(k):
        low = min(low, _block_max(S, r, off, t * g, (t + 1) * g))
    return low


@njit(nogil=True, cache=True, fastmath=True)
def merge_rows(S, L, heap0, ids, off):
    """Offer row ``r`` of the block ``S`` to list ``heap0 + r``: column ``j``
    is candidate ``ids[j]`` with score ``S[r, j] + off[j]``."""
    m, nb = S.shape
    k = L.shape[1]
    last = k - 1
    box = np.empty(1, np.float32)
    bits = box.view(np.uint32)
    for r in range(m):
        h = heap0 + r
        tk = L[h, last]
        tv = _value(tk, box, bits)
        if tk == 0 and nb >= 4 * k:  # an empty list: skip what cannot reach its top k
            tv = _floor(S, r, off, k)
        for j0 in range(0, nb, _LANES):
            j1 = min(nb, j0 + _LANES)
            if _block_max(S, r, off, j0, j1) < tv:
                continue
            for j in range(j0, j1):
                v = S[r, j] + off[j]
                if v < tv:
                    continue
                key = _key(v, ids[j], box, bits)
                if key > tk:
                    _insert(L, h, key)
                    tk = L[h, last]
                    tv = max(tv, _value(tk, box, bits))


@njit(nogil=True, cache=True, fastmath=True)
def merge_cols(S, L, heap0, ids, off):
    """Offer column ``j`` of the block ``S`` to list ``heap0 + j``: row ``i``
    is candidate ``ids[i]`` with score ``S[i, j] + off[i]``. Reads ``S`` in
    strips of 16 columns (one cache line a row), the strip's 16 last entries
    held in small arrays."""
    m, nb = S.shape
    last = L.shape[1] - 1
    box = np.empty(1, np.float32)
    bits = box.view(np.uint32)
    tk = np.empty(_LANES, np.uint64)
    tv = np.empty(_LANES, np.float32)
    for j0 in range(0, nb, _LANES):
        w = min(_LANES, nb - j0)
        for t in range(_LANES):
            if t < w:
                tk[t] = L[heap0 + j0 + t, last]
                tv[t] = _value(tk[t], box, bits)
            else:  # a narrower last strip: lanes no score can enter
                tk[t] = np.uint64(0xFFFFFFFFFFFFFFFF)
                tv[t] = _TOP
        for i in range(m):
            o = off[i]
            hit = False
            for t in range(w):
                hit |= S[i, j0 + t] + o >= tv[t]
            if not hit:
                continue
            for t in range(w):
                v = S[i, j0 + t] + o
                if v < tv[t]:
                    continue
                key = _key(v, ids[i], box, bits)
                if key > tk[t]:
                    h = heap0 + j0 + t
                    _insert(L, h, key)
                    tk[t] = L[h, last]
                    tv[t] = _value(tk[t], box, bits)


@njit(nogil=True, cache=True)
def decode(L, lo, hi_, inv, order, sims, idx):
    """Rows ``lo .. hi_ - 1`` of the output: ``sims[r]``, ``idx[r]`` from list
    ``inv[r]`` (scores and, through ``order``, input row numbers)."""
    box = np.empty(1, np.float32)
    bits = box.view(np.uint32)
    n = order.size
    for r in range(lo, hi_):
        h = inv[r]
        for t in range(L.shape[1]):
            key = L[h, t]
            sims[r, t] = _value(key, box, bits)
            x = id_of(key)
            idx[r, t] = order[x] if x < n else x


@njit(nogil=True, cache=True)
def two_hop(L, lo, hi_, first, second, cell_of, excluded, seen, counts, n_out):
    """The ``n_out`` most frequent second-hop neighbours of rows ``lo .. hi_ - 1``
    in the graph ``L`` (lists, best first; a row's first entry, usually the
    row itself, is skipped): its ``first`` best neighbours, then the
    ``second`` best of each of those, counted with multiplicity, leaving out
    rows whose cell is ``excluded`` and rows ``seen`` (offered already); ties
    go to the lower id. Ascending. ``counts``: ``n`` zeros of scratch, left zero."""
    n, k = L.shape
    first = min(first, k - 1)
    second = min(second, k - 1)
    touched = np.empty(max(1, (hi_ - lo) * first * second), np.int64)
    nt = 0
    for r in range(lo, hi_):
        for a in range(1, first + 1):
            y = id_of(L[r, a])
            if y >= n:
                continue
            for b in range(1, second + 1):
                z = id_of(L[y, b])
                if z >= n or excluded[cell_of[z]] or seen[z]:
                    continue
                if counts[z] == 0:
                    touched[nt] = z
                    nt += 1
                counts[z] += 1
    top = np.int64(touched.size + 1)
    keys = np.empty(nt, np.int64)
    for t in range(nt):  # (count desc, id asc) as one integer
        z = touched[t]
        keys[t] = (top - counts[z]) * n + z
        counts[z] = 0
    keys.sort()
    m = min(n_out, nt)
    out = np.empty(m, np.int64)
    for t in range(m):
        out[t] = keys[t] % n
    out.sort()
    return out
