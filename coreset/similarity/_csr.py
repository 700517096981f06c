"""A kNN graph as the sparse matrix the objectives read: row ``j`` lists the
points candidate ``j`` covers. It belongs with the graph builders (``_spec``
hands their graphs to objectives in this form); ``coreset.objectives._base``
re-exports it."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["knn_to_csr"]


@njit(cache=True, nogil=True)
def _transpose_knn(indices, similarities, out_idx, out_data):  # pragma: no cover - numba
    """Counting-sort transpose of a kNN graph: ``indptr`` of the CSR whose row
    ``j`` lists the points ``i`` with ``j`` among their neighbours, ascending
    (slots are scanned in order, so the sort is stable); ``out_idx`` /
    ``out_data`` are filled in place. Returns ``(indptr, repeated)``, where
    ``repeated`` says a row of ``indices`` lists a neighbour twice (the caller
    then sums the pairs). O(n k) time, no sort, no temporaries of size n k."""
    n, k = indices.shape
    indptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        for t in range(k):
            indptr[indices[i, t] + 1] += 1
    for j in range(n):
        indptr[j + 1] += indptr[j]
    fill = indptr[:-1].copy()
    repeated = False
    for i in range(n):
        for t in range(k):
            j = indices[i, t]
            p = fill[j]
            if p > indptr[j] and out_idx[p - 1] == i:
                repeated = True
            out_idx[p] = i
            out_data[p] = similarities[i, t]
            fill[j] = p + 1
    return indptr, repeated


def knn_to_csr(indices: np.ndarray, similarities: np.ndarray):
    """A kNN graph (row i = the neighbours of point i) as a CSR matrix whose
    row j lists the points candidate j covers (the transpose)."""
    import scipy.sparse as sp

    indices = np.asarray(indices)
    similarities = np.asarray(similarities)
    n, k = indices.shape
    if indices.size and 0 <= indices.min() and indices.max() < n:
        # the transpose built directly by a counting sort on the neighbour
        # (rows of the result keep their columns ascending, as scipy's COO ->
        # CSR -> transpose -> CSR would); scipy's path is kept for repeated
        # pairs (which it sums) and for out-of-range indices (which it rejects)
        idx = np.ascontiguousarray(indices, dtype=np.int64)
        vals = np.ascontiguousarray(similarities)
        c = np.empty(n * k, np.int32 if n < 2**31 else np.int64)
        data = np.empty(n * k, vals.dtype)
        indptr, repeated = _transpose_knn(idx, vals, c, data)
        if not repeated:
            G = sp.csr_matrix((data, c, indptr), shape=(n, n))
            G.has_sorted_indices = True
            return G
        del c, data
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    G = sp.csr_matrix((similarities.ravel(), (rows, indices.ravel())), shape=(n, n))
    return G.T.tocsr()
