"""k-means, written once: the cells of the kNN graph's partitioned search
(``_search``) and of the near-duplicate search (``selectors._dedup_search``).

Lloyd's algorithm on a seeded sample of the rows, seeded on sample rows; an
empty cluster is re-seeded on a random sample row. Nearest centroids are the
largest ``<p, c> - |c|^2 / 2`` (the smallest ``|p - c|``), found by blocked
numpy products (one BLAS thread each, blocks side by side on the CPUs) and
arg-max passes; ties go to the lower centroid.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._blas import one_blas_thread, pmap

__all__ = ["kmeans", "lloyd", "top_centroids", "sample_rows"]

#: centroid scores of one block of rows (16 MiB of float32)
BLOCK_ENTRIES = 1 << 22


def _top(F, n):
    """(values, column indices) of the ``n`` largest entries of each row,
    largest first (ties: the lower column), by ``n`` arg-max passes (``n`` is
    small); overwrites ``F``."""
    n = min(n, F.shape[1])
    rows = np.arange(F.shape[0])
    idx = np.empty((F.shape[0], n), np.int64)
    vals = np.empty((F.shape[0], n), F.dtype)
    for t in range(n):
        idx[:, t] = F.argmax(axis=1)
        vals[:, t] = F[rows, idx[:, t]]
        if t + 1 < n:
            F[rows, idx[:, t]] = -np.inf
    return vals, idx


def top_centroids(P, cent, n=1, *, parallel=True):
    """``(scores, indices)``, each ``(len(P), n)``: the ``n`` nearest centroids
    of each row of ``P``, nearest first, scored ``<p, c> - |c|^2 / 2``.
    ``parallel=False`` inside a task that already runs on a worker thread."""
    cent = np.ascontiguousarray(cent, np.float32)
    half = 0.5 * np.einsum("ij,ij->i", cent, cent)
    m = P.shape[0]
    n = min(n, cent.shape[0])
    step = max(1, BLOCK_ENTRIES // max(1, cent.shape[0]))
    vals = np.empty((m, n), np.float32)
    idx = np.empty((m, n), np.int64)

    def block(start):
        F = P[start:start + step] @ cent.T
        F -= half
        vals[start:start + step], idx[start:start + step] = _top(F, n)

    with one_blas_thread():
        for _ in pmap(block, range(0, m, step), parallel=parallel and m > step):
            pass
    return vals, idx


def sample_rows(n, size, rng):
    """Sorted row numbers of a seeded sample of ``size`` rows (all when ``n <= size``)."""
    return np.arange(n) if n <= size else np.sort(rng.choice(n, size=size, replace=False))


def lloyd(S, n_clusters, rng, n_iter, *, init=None, parallel=True):
    """Lloyd's k-means on the rows ``S`` (float32): centroids ``(n_clusters, d)``,
    seeded on distinct rows of ``S`` (or on ``init``, e.g. k-means++ centres);
    an empty cluster is re-seeded on a random row."""
    S = np.ascontiguousarray(S, np.float32)
    m = S.shape[0]
    n_clusters = min(n_clusters, m)
    if init is not None:
        cent = np.array(init, np.float32)[:n_clusters].copy()
    else:
        cent = S[np.sort(rng.choice(m, size=n_clusters, replace=False))].copy()
    for _ in range(n_iter):
        lab = top_centroids(S, cent, 1, parallel=parallel)[1][:, 0]
        counts = np.bincount(lab, minlength=n_clusters)
        onehot = sp.csr_matrix((np.ones(m, np.float32), (lab, np.arange(m))), shape=(n_clusters, m))
        sums = np.asarray(onehot @ S)  # per-cluster sums in one sparse product
        full = counts > 0
        cent[full] = (sums[full] / counts[full, None]).astype(np.float32)
        if not full.all():
            cent[~full] = S[rng.choice(m, size=int((~full).sum()), replace=False)]
    return cent


def kmeans(P, n_clusters, rng, *, n_iter=12, sample_per_cluster=48, parallel=True):
    """Centroids of ``n_clusters`` cells of the rows ``P``: :func:`lloyd` on a
    seeded sample of ``sample_per_cluster`` rows per cluster."""
    rows = sample_rows(P.shape[0], n_clusters * sample_per_cluster, rng)
    return lloyd(P[rows], n_clusters, rng, n_iter, parallel=parallel)
