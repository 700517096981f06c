"""The kNN searches behind :func:`~coreset.similarity.knn_graph`.

* :func:`search_exact`: every query against every base row (the backend's
  flat search, in row blocks); the small-N default.
* :func:`search_cells`: the partitioned search on the CPU, the large-N
  default. k-means cells (``n_clusters``, default sqrt(N)); each cell is
  paired with its ``n_probe`` nearest cells (by centroid), and a pair of cells
  is scored once, as one block of products, for both of its sides: every row
  of either cell is offered every row of the other. Then, in ``HUB_ROUNDS``
  rounds, each cell is scored against its rows' two-hop neighbours (the most
  frequent neighbours of their neighbours in the graph so far) outside the
  cells it was paired with and not offered before: the few points that are
  near neighbours of many (hubs of a dense region) sit in cells no pair
  reached. Products are numpy (one BLAS thread) and each
  row keeps a sorted top-k list (numba, ``_topk``), on one thread per CPU;
  the blocks are short, so Ctrl-C is honoured between them. Ties go to the
  lower index, so the result does not depend on the threads.
  ``effort="fast"`` (what a label vote needs, not a graph that selects):
  ``FAST_CELLS`` times as many cells from a shorter k-means (``FAST_KMEANS``
  iterations on ``FAST_SAMPLE_PER_CELL`` sample rows a cell), each paired
  with its nearest cell (``n_probe`` 1), no two-hop rounds; the neighbours
  found are scored exactly as by the default. About 0.7 of the default's CPU
  time at 100,000 x 64-128 for k = 11; recall is lower and the label votes
  move little (docs/benchmarks.md, "Label filter and CCS overhead").
* :func:`search_cells_backend`: the first partitioned search (each cell
  searched against its ``n_probe`` nearest cells with the backend's flat
  search), kept for GPU backends, where flat searches are cheap.

Recall against exact search and the cost of each setting: docs/benchmarks.md.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import scipy.sparse as sp

from .._registry import check_name
from ._blas import one_blas_thread, pmap
from ._kmeans import kmeans, top_centroids
from ._metrics import _include_self, _l2_base, _l2_query, point_space

log = logging.getLogger(__name__)

__all__ = ["search_exact", "search_cells", "search_cells_backend", "knn_precomputed", "TILE_ROWS", "TILE_COLS",
           "EFFORTS"]

#: rows and columns of one block of products (512 x 1000 float32 scores, 2 MB: in cache)
TILE_ROWS = 512
TILE_COLS = 1000
#: multiply-adds of one task of the cell search (about 5 ms on one core): tasks return to
#: Python often, where Ctrl-C raises, and balance over the threads
TASK_WORK = 1 << 28
#: two-hop candidates of a cell: this many mean cells' worth of rows
HUB_CELLS = 3
#: rounds of two-hop candidates (each on the graph the previous one left)
HUB_ROUNDS = 2
#: two-hop neighbours: the first this many neighbours of each row, then of each of those
HOPS = (8, 16)
#: ``n_probe=None``: cells paired with each cell (search_cells) / searched per cell (backend);
#: ``fast``: search_cells with ``effort="fast"``
AUTO_PROBE = {"cells": 2, "backend": 8, "fast": 1}
#: ``effort`` of the cell search: "full" (the graph a selection uses) or "fast" (label votes; module doc)
EFFORTS = ("full", "fast")
#: ``effort="fast"``: ``n_clusters=None`` as a multiple of sqrt(N) (``build_knn``); k-means
#: iterations and sample rows per cell; rounds of two-hop candidates (measured: docs/benchmarks.md)
FAST_CELLS = 2.0
FAST_KMEANS = 8
FAST_SAMPLE_PER_CELL = 24
FAST_HUB_ROUNDS = 0


def search_exact(backend, base, query, k, callback, batch_size):
    """Exact top-k of every query row among the base rows, in row blocks."""
    n = query.shape[0]
    bs = batch_size or max(1024, min(n, (256 * 2**20) // (4 * max(1, base.shape[0]))))
    sims = np.empty((n, k), np.float32)
    idx = np.empty((n, k), np.int64)
    for start in range(0, n, bs):
        s, i = backend.search(query[start:start + bs], base, k)
        sims[start:start + bs], idx[start:start + bs] = s, i
        if callback:
            callback("graph", min(n, start + bs), n)
    return sims, idx


def _cells(V, n_clusters, seed, effort="full"):
    """k-means cells of the rows of ``V``: (centroids, rows sorted by cell, cell bounds).
    ``effort="fast"``: ``FAST_KMEANS`` iterations on ``FAST_SAMPLE_PER_CELL`` sample rows a cell."""
    rng = np.random.default_rng(seed)
    if effort == "fast":
        cent = kmeans(V, n_clusters, rng, n_iter=FAST_KMEANS, sample_per_cluster=FAST_SAMPLE_PER_CELL)
    else:
        cent = kmeans(V, n_clusters, rng)
    labels = top_centroids(V, cent, 1)[1][:, 0]
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=cent.shape[0]))])
    return cent, order, bounds


def _probe_lists(cent, counts, n_probe, k):
    """For each non-empty cell, its ``n_probe`` nearest non-empty cells (by
    centroid; more until they hold ``k`` rows with the cell, every cell when
    even that falls short)."""
    nc = cent.shape[0]
    n_near = min(nc, max(4 * n_probe, n_probe + 8))
    near = top_centroids(cent, cent, n_near, parallel=False)[1]
    out = []
    for c in range(nc):
        if counts[c] == 0:
            out.append([])
            continue
        cells, total = [], counts[c]
        for j in near[c]:
            if j == c or counts[j] == 0:
                continue
            if len(cells) >= n_probe and total >= k:
                break
            cells.append(int(j))
            total += counts[j]
        if total < k:  # tiny data: every cell
            cells = [int(j) for j in np.flatnonzero(counts) if j != c]
        out.append(cells)
    return out


class _Clock:
    """Wall and CPU seconds of consecutive stages, for the debug log."""

    def __init__(self):
        self.t = (time.perf_counter(), time.process_time())
        self.stages = []

    def __call__(self, name):
        now = (time.perf_counter(), time.process_time())
        self.stages.append((name, now[0] - self.t[0], now[1] - self.t[1]))
        self.t = now

    def __str__(self):
        return ", ".join(f"{name} {w:.2f} s ({c:.2f} s CPU)" for name, w, c in self.stages)


def _row_chunks(lo, hi, work_per_row):
    rows = max(1, min(TILE_ROWS, TASK_WORK // max(1, work_per_row)))
    return [(a, min(hi, a + rows)) for a in range(lo, hi, rows)]


def _graph_progress(n, total, callback):
    """``run(work, tasks)``: the tasks on the CPUs (``pmap``), each returning
    its share of ``total`` work, reported as ``callback("graph", done, n)``."""
    done = [0]

    def run(work, tasks):
        for w in pmap(work, tasks):
            done[0] += w
            if callback:
                callback("graph", min(n - 1, n * done[0] // max(1, total)), n)
    return run


def _decode_all(L, inv, order, k):
    """Every top-k list of ``L`` as (scores, input row numbers), in the
    input's row order (``_topk.decode``, 16 slices side by side)."""
    from ._topk import decode

    n = L.shape[0]
    sims = np.empty((n, k), np.float32)
    idx = np.empty((n, k), np.int64)
    step = max(1, -(-n // 16))
    for _ in pmap(lambda a: decode(L, a, min(n, a + step), inv, order, sims, idx), range(0, n, step)):
        pass
    return sims, idx


def search_cells(X, metric, k, n_clusters, n_probe, seed, callback=None, *, effort="full"):
    """Approximate top-k of every row of ``X`` (module doc): ``(scores, ids)``
    in the score convention of ``_metrics._prepare`` (``<query_i, base_j>``).
    ``effort``: "full" (the default) or "fast" (a shorter k-means, no two-hop
    rounds; module doc)."""
    from ._topk import merge_cols, merge_rows, two_hop  # numba: loaded on first use

    check_name("effort", effort, EFFORTS)
    n = X.shape[0]
    clock = _Clock()
    V, off = point_space(X, metric)
    d = V.shape[1]
    cent, order, bounds = _cells(V, n_clusters, seed, effort)
    hub_rounds = HUB_ROUNDS if effort == "full" else FAST_HUB_ROUNDS
    clock("cells")
    nc = cent.shape[0]
    counts = np.diff(bounds)
    Vs, offs = V[order], off[order]  # each cell's rows contiguous
    del V, off
    cell_of = np.repeat(np.arange(nc, dtype=np.int32), counts)
    probe = _probe_lists(cent, counts, n_probe, k)
    paired = [set(p) for p in probe]  # symmetric: a cell is scored against every cell paired with it
    for c, p in enumerate(probe):
        for j in p:
            paired[j].add(c)

    L = np.zeros((n, k), np.uint64)  # each row's top-k list of (score, id) keys (``_topk``), empty
    ids = np.arange(n, dtype=np.int64)
    locks = [threading.Lock() for _ in range(nc)]
    n_hubs = HUB_CELLS * max(1, n // max(1, int((counts > 0).sum())))
    pairs = sorted({(min(a, b), max(a, b)) for a in range(nc) for b in paired[a]})
    total = sum(int(counts[a]) ** 2 for a in range(nc)) + sum(
        int(counts[a]) * int(counts[b]) for a, b in pairs) + n * n_hubs * hub_rounds
    run = _graph_progress(n, total, callback)

    def tiles(c):
        return [(a, min(bounds[c + 1], a + TILE_COLS)) for a in range(bounds[c], bounds[c + 1], TILE_COLS)]

    def own(task):  # rows [r0, r1) of cell a against all of a in one block: only these lists change
        a, r0, r1 = task
        S = Vs[r0:r1] @ Vs[bounds[a]:bounds[a + 1]].T
        # the lists start empty: a row's floor over the whole cell skips most of it (``_topk``)
        merge_rows(S, L, r0, ids[bounds[a]:bounds[a + 1]], offs[bounds[a]:bounds[a + 1]])
        return (r1 - r0) * int(counts[a])

    def pair(task):  # rows [r0, r1) of cell a against cell b, both sides offered
        a, b, r0, r1 = task
        for c0, c1 in tiles(b):
            S = Vs[r0:r1] @ Vs[c0:c1].T
            with locks[a]:
                merge_rows(S, L, r0, ids[c0:c1], offs[c0:c1])
            with locks[b]:
                merge_cols(S, L, c0, ids[r0:r1], offs[r0:r1])
        return (r1 - r0) * int(counts[b])

    scratch = threading.local()

    def hubs(task):  # the cell's two-hop candidates outside its paired cells and those offered before
        c, before = task
        if not hasattr(scratch, "counts"):
            scratch.counts = np.zeros(n, np.int32)
            scratch.seen = np.zeros(n, np.bool_)
        excluded = np.zeros(nc, np.bool_)
        excluded[c] = True
        excluded[list(paired[c])] = True
        scratch.seen[before] = True
        H = two_hop(L, bounds[c], bounds[c + 1], HOPS[0], HOPS[1], cell_of, excluded, scratch.seen,
                    scratch.counts, n_hubs)
        scratch.seen[before] = False
        return H

    def hub_rows(task):  # rows [r0, r1) against their cell's two-hop candidates: only these lists change
        c, r0, r1, H = task
        for t0 in range(0, H.size, TILE_COLS):
            h = H[t0:t0 + TILE_COLS]
            S = Vs[r0:r1] @ Vs[h].T
            merge_rows(S, L, r0, h, offs[h])
        return (r1 - r0) * H.size

    with one_blas_thread():
        # own cells first (every list then starts from its cell, so fewer later offers enter it),
        # the largest first
        run(own, [(int(a), r0, r1) for a in np.argsort(-counts, kind="stable")
                  for r0, r1 in _row_chunks(bounds[a], bounds[a + 1], counts[a] * d)])
        clock("own cells")
        chunks = [[(a, b, r0, r1) for r0, r1 in _row_chunks(bounds[a], bounds[a + 1], counts[b] * d)]
                  for a, b in pairs if a != b]
        run(pair, [c[i] for i in range(max(map(len, chunks), default=0)) for c in chunks if i < len(c)])
        clock("cell pairs")
        cells = [c for c in range(nc) if counts[c]]
        offered = [np.empty(0, np.int64) for _ in cells]
        for _ in range(hub_rounds):  # each round on the graph the last one left
            hub_sets = list(pmap(hubs, list(zip(cells, offered))))
            clock("two-hop sets")
            run(hub_rows, [(c, r0, r1, H) for c, H in zip(cells, hub_sets) if H.size
                           for r0, r1 in _row_chunks(bounds[c], bounds[c + 1], H.size * d)])
            offered = [np.concatenate([a, b]) for a, b in zip(offered, hub_sets)]
            clock("two-hop rows")
    del Vs
    log.debug("cell search (%s): %d cells, %d pairs, %d two-hop candidates a cell; %s", effort, nc, len(pairs),
              n_hubs if hub_rounds else 0, clock)
    if callback:
        callback("graph", n, n)
    # back to the input's row order: scores and input row numbers
    inv = np.empty(n, np.int64)
    inv[order] = np.arange(n)
    return _decode_all(L, inv, order, k)


def search_exact_tiles(X, metric, k, callback=None, block=TILE_COLS):
    """Exact top-k of every row of ``X`` (scores, ids; ``search_cells``'
    convention): the rows cut into blocks of ``block``; each pair of blocks
    is scored **once**, as one product, and offered to both blocks' lists
    (the similarity is symmetric: half the products of a flat search), the
    blocks on the diagonal first so every list starts from a full block."""
    from ._topk import merge_cols, merge_rows  # numba: loaded on first use

    n = X.shape[0]
    V, off = point_space(X, metric)
    L = np.zeros((n, k), np.uint64)
    ids = np.arange(n, dtype=np.int64)
    cuts = [(a, min(n, a + block)) for a in range(0, n, block)]
    locks = [threading.Lock() for _ in cuts]
    run = _graph_progress(n, n * n // 2, callback)

    def diagonal(i):  # block i against itself: only its own lists change
        a, b = cuts[i]
        merge_rows(V[a:b] @ V[a:b].T, L, a, ids[a:b], off[a:b])
        return (b - a) ** 2 // 2

    def pair(task):  # block i against block j > i, both sides offered
        i, j = task
        (a, b), (c, e) = cuts[i], cuts[j]
        S = V[a:b] @ V[c:e].T
        with locks[i]:
            merge_rows(S, L, a, ids[c:e], off[c:e])
        with locks[j]:
            merge_cols(S, L, c, ids[a:b], off[a:b])
        return (b - a) * (e - c)

    m = len(cuts)
    with one_blas_thread():
        run(diagonal, range(m))
        # by distance from the diagonal: neighbouring tasks share a block rarely (fewer waits on a lock)
        run(pair, [(i, i + s) for s in range(1, m) for i in range(m - s)])
    if callback:
        callback("graph", n, n)
    return _decode_all(L, ids, ids, k)


def search_cells_backend(backend, base, query, k, n_clusters, n_probe, seed, callback):
    """Approximate kNN with the backend's flat search: k-means cells; each
    cell's points are searched exactly against the points of the ``n_probe``
    cells whose centroids are nearest to the cell's own centroid."""
    n = query.shape[0]
    cent = kmeans(query, n_clusters, np.random.default_rng(seed))
    nc = cent.shape[0]
    labels = top_centroids(query, cent, 1)[1][:, 0]
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=nc)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    n_near = min(nc, max(4 * n_probe, n_probe + 8))
    _, near = backend.search(_l2_query(cent), _l2_base(cent), n_near)
    base_sorted = base[order]
    query_sorted = base_sorted if query is base else query[order]
    sims = np.empty((n, k), np.float32)
    idx = np.empty((n, k), np.int64)
    done = 0
    for c in range(nc):
        lo, hi = bounds[c], bounds[c + 1]
        if hi == lo:
            continue
        cells, total = [], 0
        for j in near[c]:
            if counts[j] == 0:
                continue
            cells.append(j)
            total += counts[j]
            if len(cells) >= n_probe and total >= k:
                break
        if total < k:  # tiny data: fall back to every cell
            cells = [j for j in range(nc) if counts[j]]
        cand = np.concatenate([np.arange(bounds[j], bounds[j + 1]) for j in cells])
        s, i = backend.search(query_sorted[lo:hi], base_sorted[cand], k)
        sims[order[lo:hi]] = s
        idx[order[lo:hi]] = order[cand[i]]
        done += hi - lo
        if callback:
            callback("graph", done, n)
    return sims, idx


def knn_precomputed(S, k: int, batch_size: int | None):
    """Top-k of each row of a precomputed similarity, in row blocks (a sparse
    block is densified one block at a time; missing entries count as 0)."""
    n = S.shape[0]
    bs = batch_size or max(1, min(n, (64 * 2**20) // (4 * n)))
    idx = np.empty((n, k), np.int64)
    sims = np.empty((n, k), np.float32)
    for start in range(0, n, bs):
        B = S[start:start + bs]
        B = np.asarray(B.toarray() if sp.issparse(B) else B, dtype=np.float32)
        part = np.argpartition(-B, k - 1, axis=1)[:, :k] if k < n else np.broadcast_to(np.arange(n), B.shape)
        vals = np.take_along_axis(B, part, 1)
        order = np.lexsort((part, -vals), axis=-1)
        idx[start:start + bs] = np.take_along_axis(part, order, 1)
        sims[start:start + bs] = np.take_along_axis(vals, order, 1)
    diag = np.asarray(S.diagonal(), dtype=np.float32)
    rows = np.arange(n)
    return _include_self(idx, sims, diag, rows)
