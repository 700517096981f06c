"""Similarity semantics, shared by the kNN graph and the dense similarity
(what facility location maximises; always >= 0):

* ``cosine``: ``max(0, <x_i, x_j> / (|x_i| |x_j|))``; a zero row is an error.
* ``inner_product``: ``max(0, <x_i, x_j>)``.
* ``euclidean``: the RBF kernel ``exp(-gamma * |x_i - x_j|^2)``, in (0, 1],
  with ``gamma = 1 / median(|x_a - x_b|^2)`` over up to 20,000 seeded random
  pairs unless given (the median heuristic: independent of ``n_neighbors``).

Every search is a maximum-inner-product search: cosine normalises rows first;
euclidean appends one column (``-|b|^2 / 2`` to the base, ``1`` to the query)
so that the largest inner product is the smallest distance
(:func:`point_space` gives the same scores as rows plus a per-row offset,
for searches that score a block once for both of its sides).

Any finite input is either handled exactly or refused: cosine normalises rows
whose norm float32 cannot compute (values near its limit, or subnormal) after
scaling them by their largest absolute value; inner_product and euclidean raise
a ``ValidationError`` when their similarities would overflow or underflow
float32 (:func:`coreset._validation.check_magnitude`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._validation import as_embeddings, check_magnitude
from ..exceptions import DegenerateInputError, ValidationError

__all__ = ["as_similarity", "euclidean_gamma", "point_space"]


def as_similarity(S, *, name: str = "X"):
    """Validate a precomputed similarity: a non-empty square matrix (dense
    ndarray, or scipy sparse with any index dtype) of finite, non-negative
    numbers. Returns a float ndarray or a CSR matrix."""
    if sp.issparse(S):
        if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] == 0:
            raise ValidationError(f"{name} must be a non-empty square similarity matrix for metric='precomputed'; got shape {S.shape}")
        M = sp.csr_matrix(S)
        if not np.issubdtype(M.dtype, np.number) or np.issubdtype(M.dtype, np.complexfloating):
            raise ValidationError(f"{name} must hold real numbers; got dtype {M.dtype}")
        if M.nnz and not np.isfinite(M.data).all():
            raise ValidationError(f"{name} must be finite; found NaN or inf in the precomputed similarity")
        if M.nnz and M.data.min() < 0:
            raise ValidationError(f"{name} (precomputed similarity) must be non-negative; found {M.data.min():.6g}")
        return M
    S = as_embeddings(S, name=name)
    if S.shape[0] != S.shape[1]:
        raise ValidationError(f"{name} must be square (N x N) for metric='precomputed'; got shape {S.shape}")
    if S.min() < 0:
        raise ValidationError(f"{name} (precomputed similarity) must be non-negative; found {S.min():.6g}")
    return S


def euclidean_gamma(X: np.ndarray, n_pairs: int = 20_000, seed: int = 0) -> float:
    """``1 / median squared distance`` over seeded random pairs of distinct rows.

    Raises a :class:`ValidationError` (suggesting to rescale ``X``) when the
    distances overflow float64 or when the result does not fit float32, where
    the kernel is evaluated (float64 for float64 X, else float32: a median
    squared distance below ~3e-39)."""
    from ._pairs import pair_sq_dists, sample_pairs

    a, b = sample_pairs(X.shape[0], n_pairs, seed)
    d2 = pair_sq_dists(X, a, b)  # ((X[a] - X[b]) ** 2).sum(1) in float64, numpy's bits
    if not np.isfinite(d2).all():
        check_magnitude(X, "euclidean", dtype=np.float64)  # names the largest row norm
        raise ValidationError("X is too large for metric='euclidean': squared distances between its rows "
                              "overflow float64; rescale X")  # pragma: no cover - the line above raises
    d2 = d2[d2 > 0]
    if d2.size == 0:
        raise DegenerateInputError("X has no two distinct rows in the sample; cannot scale the euclidean kernel")
    med = float(np.median(d2))
    dtype = np.float64 if X.dtype == np.float64 else np.float32  # where the kernel is evaluated
    if 1.0 / med > float(np.finfo(dtype).max):
        raise ValidationError(
            f"X is too small for metric='euclidean': the median squared distance between its rows is "
            f"{med:.4g}, so gamma = 1 / median ({1.0 / med:.4g}) does not fit {np.dtype(dtype)}, where the "
            "kernel is evaluated. Rescale X (e.g. divide it by its largest absolute value) or use metric='cosine'"
        )
    return float(1.0 / med)


def _l2_base(B: np.ndarray) -> np.ndarray:
    """``[b, -|b|^2 / 2]``: with :func:`_l2_query`, the largest inner product is
    the nearest point in euclidean distance."""
    B = np.asarray(B, dtype=np.float32)
    return np.hstack([B, (-0.5 * np.einsum("ij,ij->i", B, B))[:, None]]).astype(np.float32)


def _l2_query(Q: np.ndarray) -> np.ndarray:
    """``[q, 1]``, the query side of :func:`_l2_base`."""
    Q = np.asarray(Q, dtype=np.float32)
    return np.hstack([Q, np.ones((Q.shape[0], 1), np.float32)])


def _unit_rows(X, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """``(rows of X scaled to unit length, indices of all-zero rows)``, in ``dtype``.

    Rows whose norm ``dtype`` computes safely are divided by it there (as
    always); a row whose squared norm overflows (values near the dtype's limit)
    or falls near the subnormal range (values like 1e-39 in float32) is divided
    by its largest absolute value first, in float64, then normalised: cosine is
    scale-invariant, so any finite non-zero row gets its exact direction.
    Zero rows come back as zeros. Also for callers outside this module
    (k-center greedy's cosine space)."""
    if np.dtype(dtype).kind != "f":
        dtype = np.float64
    with np.errstate(over="ignore", under="ignore"):  # float64 beyond float32: redone below
        Xd = np.asarray(X, dtype=dtype)
        norms = np.linalg.norm(Xd, axis=1)
    # below this norm, subnormal squares would cost precision (sum >= 2**24 * tiny is exact enough)
    small = float(np.sqrt(np.finfo(dtype).tiny * 2.0**24))
    redo = ~np.isfinite(norms) | (norms < small)
    if not redo.any():
        return Xd / norms[:, None], np.empty(0, np.int64)
    Xn = Xd / np.where(redo, 1, norms)[:, None].astype(dtype)
    B = np.asarray(X[redo] if isinstance(X, np.ndarray) else Xd[redo], dtype=np.float64)  # X's own values
    m = np.abs(B).max(axis=1)
    zero_local = m == 0
    B /= np.where(zero_local, 1.0, m)[:, None]
    nb = np.linalg.norm(B, axis=1)
    Xn[redo] = (B / np.where(zero_local, 1.0, nb)[:, None]).astype(dtype)
    return Xn, np.flatnonzero(redo)[zero_local]


def _prepare(X: np.ndarray, metric: str):
    """Return (base, query) in the inner-product space of ``metric`` (the same
    array twice for symmetric metrics). Raises a :class:`ValidationError` when
    float32 cannot hold the similarities (:func:`check_magnitude`)."""
    if metric == "cosine":
        Xn, zero = _unit_rows(X)
        if zero.size:
            raise DegenerateInputError(
                f"X has {zero.size} all-zero row(s) (first: row {zero[0]}); cosine similarity is undefined for them"
            )
        return Xn, Xn
    check_magnitude(X, metric)
    Xf = np.asarray(X, dtype=np.float32)
    if metric == "inner_product":
        return Xf, Xf
    # euclidean: <q', b'> = <q, b> - |b|^2 / 2  =>  |q - b|^2 = |q|^2 - 2 <q', b'>
    return _l2_base(Xf), _l2_query(Xf)


def point_space(X: np.ndarray, metric: str):
    """``(V, offset)``: float32 rows ``V`` and a float32 offset per row, such
    that ``<v_i, v_j> + offset[j]`` is the score :func:`_prepare`'s
    ``<query_i, base_j>`` gives (cosine: unit rows, offset 0; inner_product: the
    rows, offset 0; euclidean: the rows, offset ``-|v_j|^2 / 2``). The product
    ``<v_i, v_j>`` is symmetric, so one block of products scores both of its
    sides. Same checks as :func:`_prepare`."""
    if metric == "cosine":
        V = _prepare(X, metric)[0]
        return V, np.zeros(V.shape[0], np.float32)
    check_magnitude(X, metric)
    V = np.ascontiguousarray(X, dtype=np.float32)
    if metric == "inner_product":
        return V, np.zeros(V.shape[0], np.float32)
    return V, (-0.5 * np.einsum("ij,ij->i", V, V)).astype(np.float32)


def _to_similarity(scores: np.ndarray, rows: np.ndarray, X: np.ndarray, metric: str, gamma: float | None):
    """Turn raw inner-product scores of query ``rows`` into non-negative similarities."""
    if metric == "euclidean":
        sq = np.einsum("ij,ij->i", X[rows].astype(np.float32), X[rows].astype(np.float32))
        d2 = np.maximum(sq[:, None] - 2.0 * scores, 0.0)
        return np.exp(-gamma * d2).astype(np.float32)
    return np.maximum(scores, 0.0).astype(np.float32, copy=False)


def _include_self(idx: np.ndarray, sims: np.ndarray, self_sim: np.ndarray, rows: np.ndarray):
    """Make column 0 of every row the point itself (forced in when ties hid it).
    Only rows that need it are touched: usually the point already comes first."""
    ok = idx[:, 0] == rows
    sims[ok, 0] = self_sim[ok]
    bad = np.flatnonzero(~ok)
    if bad.size:
        i2, s2 = _include_self_rows(idx[bad], sims[bad], self_sim[bad], rows[bad])
        idx[bad], sims[bad] = i2, s2
    return idx, sims


def _include_self_rows(idx, sims, self_sim, rows):
    is_self = idx == rows[:, None]
    has = is_self.any(1)
    pos = np.where(has, is_self.argmax(1), idx.shape[1] - 1)
    r = np.arange(idx.shape[0])
    # move whatever stands at column 0 to the self position, then put self at 0
    idx[r, pos] = idx[:, 0]
    sims[r, pos] = sims[:, 0]
    idx[:, 0] = rows
    sims[:, 0] = self_sim
    # keep columns 1.. sorted by similarity, descending, ties by index
    order = np.lexsort((idx[:, 1:], -sims[:, 1:]), axis=-1) if idx.shape[1] > 1 else None
    if order is not None:
        idx[:, 1:] = np.take_along_axis(idx[:, 1:], order, 1)
        sims[:, 1:] = np.take_along_axis(sims[:, 1:], order, 1)
    return idx, sims


def _self_similarity(X, rows, metric, gamma):
    if metric == "inner_product":
        x = X[rows].astype(np.float32)
        return np.maximum(np.einsum("ij,ij->i", x, x), 0).astype(np.float32)
    return np.ones(rows.shape[0], np.float32)


#: the library's name for :func:`_unit_rows` outside this package
unit_rows = _unit_rows
