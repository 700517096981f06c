"""The near-duplicate graph behind :class:`~coreset.selectors.DedupSelector`.

Its edges are the pairs of rows whose similarity is >= a threshold, each row
keeping at most ``k`` of them (its most similar): the kNN graph with only the
edges above the threshold. It is found by a range search (one block product
and one comparison per block) rather than a top-k search:

* exact: every row against every row, in row blocks (N^2 d work, the memory
  of one block);
* partitioned: a two-level k-means (about sqrt(N / leaf) coarse cells, each
  split into cells of about ``leaf`` (64) rows in proportion to its size, so
  cells stay balanced; the k-means of ``coreset.similarity._kmeans``, which
  the kNN graph's cells use too). Each row joins the ``n_probe`` cells whose centroids are
  nearest to it (looked up among the cells of its three nearest coarse
  cells), and all rows of a cell are compared with each other: two rows are
  compared when they share a cell. Near duplicates are much closer to each
  other than typical neighbours, so a pair is missed only when it straddles
  cell boundaries and the two rows share none of their cells (recall:
  ``docs/dedup.md``).

Cosine works on unit rows (pass: ``<u_i, u_j> >= t``), euclidean on the rows
(pass: ``|x_i - x_j|^2 <= -ln(t) / gamma``, the RBF similarity >= t).
Products run in numpy on the CPU (single-threaded BLAS, one thread per CPU
over the cells: small products scale better that way) or in torch on a GPU.
"""

from __future__ import annotations

import math

import numpy as np

from ..similarity._blas import pmap
from ..similarity._kmeans import lloyd, sample_rows, top_centroids

__all__ = ["PairSpace", "exact_pairs", "partitioned_pairs", "cap_per_row", "pmap", "LEAF"]

#: target number of rows per cell of the partitioned search
LEAF = 64
_BLOCK_ENTRIES = 1 << 24  # entries of one query x base product (64 MiB in float32)


class PairSpace:
    """The rows ``V`` (float32) and the threshold test of one metric.

    ``hits(q, b, q_rows, b_rows)``: the pairs (query id, base id, similarity)
    among the rows ``q_rows`` x ``b_rows`` (global ids ``q``, ``b``) that pass,
    at most ``k`` per query (its most similar). The first ``n_self`` queries
    are the base rows from column ``self_at`` on: those self-pairs are skipped."""

    def __init__(self, V, metric, threshold, k, *, gamma=None, torch_device=None):
        self.V = V
        self.metric = metric
        self.k = int(k)
        self.t = float(threshold)
        self.gamma = gamma
        self.sq = np.einsum("ij,ij->i", V, V) if metric == "euclidean" else None
        self.r2 = -math.log(self.t) / gamma if metric == "euclidean" else None
        self.torch_device = torch_device

    def _pass_marks(self, q):
        """Each query's pass mark on the score (cosine ``<u, v>``; euclidean
        ``2 <x, y> - |y|^2``, which passes when >= ``|x|^2 - r2``)."""
        if self.metric == "euclidean":
            return (self.sq[q] - self.r2).astype(np.float32)
        return np.full(len(q), self.t, np.float32)

    def _hits_numpy(self, Q, B, b, mark, n_self, self_at):
        S = Q @ B.T
        if self.metric == "euclidean":
            S *= 2.0
            S -= self.sq[b][None, :]
        if n_self:
            r = np.arange(n_self)
            S[r, r + self_at] = -np.inf
        rows = np.flatnonzero(S.max(axis=1) >= mark)  # most rows have no hit: a reduction finds them
        sub = S[rows]
        r, c = np.nonzero(sub >= mark[rows, None])
        return rows[r], c, sub[r, c]

    def _hits_torch(self, Q, B, b, mark, n_self, self_at):
        import torch

        dev = self.torch_device
        with torch.inference_mode():
            S = torch.as_tensor(Q, device=dev) @ torch.as_tensor(B, device=dev).T
            if self.metric == "euclidean":
                S = 2.0 * S - torch.as_tensor(self.sq[b], device=dev)[None, :]
            if n_self:
                r = torch.arange(n_self, device=dev)
                S[r, r + self_at] = -math.inf
            m = torch.as_tensor(mark, device=dev)
            rows = torch.nonzero(S.amax(dim=1) >= m, as_tuple=True)[0]
            sub = S[rows]
            r, c = torch.nonzero(sub >= m[rows, None], as_tuple=True)
            return rows[r].cpu().numpy(), c.cpu().numpy(), sub[r, c].cpu().numpy()

    def hits(self, q, b, q_rows, b_rows, *, n_self=0, self_at=0):
        mark = self._pass_marks(q)
        run = self._hits_torch if self.torch_device is not None else self._hits_numpy
        r, c, s = run(q_rows, b_rows, b, mark, n_self, self_at)
        if self.metric == "euclidean":  # back to squared distances, then the RBF similarity
            s = np.exp(-self.gamma * np.maximum(self.sq[q[r]] - s, 0.0))
        s = np.minimum(s.astype(np.float32, copy=False), np.float32(1.0))
        r, c, s = cap_per_row(r, c, s, self.k, len(q))
        return q[r], b[c], s


def cap_per_row(i, j, s, k, n=None):
    """Keep, for each value of ``i``, its ``k`` pairs with the largest ``s``
    (ties: the smaller ``j``)."""
    if i.size == 0:
        return i, j, s
    counts = np.bincount(i, minlength=n or 0)
    if counts.max() <= k:
        return i, j, s
    order = np.lexsort((j, -s, i))
    i, j, s = i[order], j[order], s[order]
    starts = np.concatenate([[0], np.cumsum(counts)])[:-1]
    keep = (np.arange(i.size) - starts[i]) < k
    return i[keep], j[keep], s[keep]


def _collect(parts, k, n, unique=False):
    if not parts:
        e = np.zeros(0, np.int64)
        return e, e.copy(), np.zeros(0, np.float32)
    i = np.concatenate([p[0] for p in parts]).astype(np.int64, copy=False)
    j = np.concatenate([p[1] for p in parts]).astype(np.int64, copy=False)
    s = np.concatenate([p[2] for p in parts])
    if unique:  # a pair found in several cells counts once
        _, keep = np.unique(i * n + j, return_index=True)
        i, j, s = i[keep], j[keep], s[keep]
    return cap_per_row(i, j, s, k)


def _run(space, tasks, work, callback, n):
    parts, done = [], 0
    for task, res in zip(tasks, pmap(work, tasks, parallel=space.torch_device is None)):
        parts.append(res)
        done += task[0]
        if callback:
            callback("graph", min(done, n), n)
    return parts


def exact_pairs(space: PairSpace, callback=None):
    """Every pair that passes (each row's ``k`` most similar), by blocks of rows."""
    V = space.V
    n = V.shape[0]
    bs = max(1, min(n, _BLOCK_ENTRIES // n))
    every = np.arange(n)
    tasks = [(min(n, s + bs) - s, s) for s in range(0, n, bs)]

    def work(task):
        size, start = task
        q = every[start:start + size]
        return space.hits(q, every, V[start:start + size], V, n_self=size, self_at=start)

    return _collect(_run(space, tasks, work, callback, n), space.k, n)


# ---------------------------------------------------------------- partitioned
def _groups(labels, n_groups):
    """(row ids sorted by label, bounds): rows of label c are ``order[bounds[c]:bounds[c + 1]]``."""
    order = np.argsort(labels, kind="stable")
    return order, np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=n_groups))])


def _partition(V, n_probe, leaf, rng):
    """(cells: (n, n_probe) int64, -1 where a row has fewer; number of cells).
    k-means from ``coreset.similarity._kmeans`` (the kNN graph's cells use it too)."""
    n = V.shape[0]
    n_coarse = max(1, int(round(math.sqrt(n / leaf))))
    coarse = lloyd(V[sample_rows(n, 256 * n_coarse, rng)], n_coarse, rng, 8)
    n_near = min(3, n_coarse)
    near = top_centroids(V, coarse, n_near)[1]
    by_home, bounds = _groups(near[:, 0], n_coarse)
    sizes = np.diff(bounds)
    n_fine = [max(1, int(round(m / leaf))) if m else 0 for m in sizes]
    seeds = rng.integers(0, 2**31 - 1, size=n_coarse)

    def split(c):  # each coarse cell in proportion to its size
        if not n_fine[c]:
            return None
        members = by_home[bounds[c]:bounds[c + 1]]
        r = np.random.default_rng(seeds[c])
        return lloyd(V[members[sample_rows(members.size, 64 * n_fine[c], r)]], n_fine[c], r, 6, parallel=False)

    fine = list(pmap(split, range(n_coarse)))
    offset = np.concatenate([[0], np.cumsum([0 if f is None else f.shape[0] for f in fine])])
    best_v = np.full((n, n_probe), -np.inf, np.float32)
    best_i = np.full((n, n_probe), -1, np.int64)
    for r in range(n_near):  # the n_probe nearest cells among those of the nearest coarse cells
        by_c, bnd = _groups(near[:, r], n_coarse)

        def assign(c):  # rows of distinct coarse cells are disjoint: safe in parallel
            rows = by_c[bnd[c]:bnd[c + 1]]
            v, top = top_centroids(V[rows], fine[c], n_probe, parallel=False)
            vals = np.concatenate([best_v[rows], v], axis=1)
            ids = np.concatenate([best_i[rows], top + offset[c]], axis=1)
            o = np.argsort(-vals, axis=1, kind="stable")[:, :n_probe]
            best_v[rows] = np.take_along_axis(vals, o, 1)
            best_i[rows] = np.take_along_axis(ids, o, 1)

        for _ in pmap(assign, [c for c in range(n_coarse) if fine[c] is not None and bnd[c + 1] > bnd[c]]):
            pass
    return best_i, int(offset[-1])


def partitioned_pairs(space: PairSpace, n_probe, random_state, leaf=LEAF, callback=None):
    """The pairs that pass among the rows of each cell (each row in its
    ``n_probe`` nearest cells). Returns (i, j, similarity, info). Replaces
    ``space.V`` by its rows sorted by cell (no second copy kept)."""
    n = space.V.shape[0]
    rng = np.random.default_rng(random_state)
    cells, n_cells = _partition(space.V, n_probe, leaf, rng)
    order, bounds = _groups(cells[:, 0], n_cells)
    space.V = Vs = space.V[order]  # each cell's rows contiguous
    pos = np.empty(n, np.int64)
    pos[order] = np.arange(n)
    vis_row = np.repeat(np.arange(n), n_probe - 1)
    vis_cell = cells[:, 1:].ravel()
    ok = vis_cell >= 0
    vis_row, vis_cell = vis_row[ok], vis_cell[ok]
    o = np.argsort(vis_cell, kind="stable")
    vis_row, vis_cell = vis_row[o], vis_cell[o]
    vb = np.searchsorted(vis_cell, np.arange(n_cells + 1))
    tasks = [(bounds[c + 1] - bounds[c], c) for c in range(n_cells) if bounds[c + 1] > bounds[c]]

    def work(task):
        _, c = task
        lo, hi = bounds[c], bounds[c + 1]
        visitors = vis_row[vb[c]:vb[c + 1]]
        q = np.concatenate([order[lo:hi], visitors])
        rows = np.concatenate([Vs[lo:hi], Vs[pos[visitors]]]) if visitors.size else Vs[lo:hi]
        return space.hits(q, q, rows, rows, n_self=q.size)

    i, j, s = _collect(_run(space, tasks, work, callback, n), space.k, n, unique=n_probe > 1)
    sizes = np.diff(bounds)
    info = {"n_cells": int(n_cells), "n_probe": int(n_probe), "largest_cell": int(sizes.max())}
    return i, j, s, info
