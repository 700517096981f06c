"""Dense similarity blocks: the full N x N similarity of small inputs, with
the semantics of the kNN graph (``_metrics``)."""

from __future__ import annotations

import numpy as np

from .._registry import METRICS, check_name
from .._validation import as_embeddings, check_gamma, check_magnitude
from ..exceptions import DegenerateInputError
from ._metrics import _unit_rows, euclidean_gamma

__all__ = ["dense_similarity", "prepare_dense", "dense_block", "DENSE_ONE_CALL"]

#: a dense similarity of up to this many multiply-adds (n * n * d) is one product (under a
#: second); above, row blocks that return to Python between them (see :func:`dense_block`)
DENSE_ONE_CALL = 1 << 33


def dense_similarity(X, metric: str = "cosine", *, gamma: float | None = None) -> np.ndarray:
    """The full N x N similarity (same semantics as :func:`knn_graph`); small N only.
    float64 input gives float64, anything else float32."""
    return _dense_similarity(as_embeddings(X), metric, gamma=gamma)


def _dense_similarity(X, metric: str = "cosine", *, gamma: float | None = None) -> np.ndarray:
    """:func:`dense_similarity` on an input validated already."""
    Xd, gamma = prepare_dense(X, metric, gamma)
    return dense_block(Xd, metric, gamma)


def prepare_dense(X, metric: str, gamma: float | None = None):
    """The checks of :func:`dense_similarity`, once for all of ``X``:
    ``(rows ready for dense_block, gamma)``. Cosine rows come back unit
    length (an all-zero row is refused); euclidean gets ``gamma`` resolved
    (:func:`euclidean_gamma` when None). Row-wise, so a block of rows of the
    result gives what the same rows alone would give."""
    check_name("metric", metric, [m for m in METRICS if m != "precomputed"])
    dtype = X.dtype
    gamma = check_gamma(gamma, dtype=np.float64 if dtype == np.float64 else np.float32)
    Xd = X.astype(dtype, copy=False)
    if metric == "cosine":
        Xd, zero = _unit_rows(Xd, dtype)
        if zero.size:
            raise DegenerateInputError(
                f"X has all-zero row(s) (first: row {int(zero[0])}); cosine similarity is undefined for them"
            )
    else:
        check_magnitude(Xd, metric, dtype=dtype)
        if metric == "euclidean" and gamma is None:
            gamma = euclidean_gamma(X)
    return Xd, gamma


def dense_block(Xd, metric: str, gamma: float | None) -> np.ndarray:
    """The dense similarity of rows from :func:`prepare_dense` (no checks).
    A product of more than ``DENSE_ONE_CALL`` multiply-adds runs in row blocks
    of about ``CALL_WORK`` (the upper triangle, mirrored: the work of one
    symmetric product), so that Ctrl-C raises between them (``coreset._pace``)."""
    n = Xd.shape[0]
    d = Xd.shape[1] if Xd.ndim > 1 else 1
    if n * n * d <= DENSE_ONE_CALL:
        G = Xd @ Xd.T
    else:
        from .._pace import rows_per_call

        G = np.empty((n, n), (Xd[:1] @ Xd[:1].T).dtype)
        bs = rows_per_call(n, n * d)
        for start in range(0, n, bs):
            stop = min(n, start + bs)
            np.matmul(Xd[start:stop], Xd[start:].T, out=G[start:stop, start:])
            D = G[start:stop, start:stop]
            low = np.tril_indices(stop - start, -1)
            D[low] = D.T[low]  # symmetric within the block too
            G[stop:, start:stop] = G[start:stop, stop:].T
    if metric == "cosine":
        S = G
        np.fill_diagonal(S, 1.0)
    elif metric == "inner_product":
        S = G
    else:
        sq = np.einsum("ij,ij->i", Xd, Xd)
        S = np.maximum(sq[:, None] + sq[None, :] - 2 * G, 0)
        np.fill_diagonal(S, 0.0)
        S = np.exp(-gamma * S)
    np.maximum(S, 0, out=S)
    return S.astype(Xd.dtype, copy=False)
