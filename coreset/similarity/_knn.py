"""k-nearest-neighbour similarity graphs and dense similarity blocks.

Similarity semantics (what facility location maximises; always >= 0):

* ``cosine``: ``max(0, <x_i, x_j> / (|x_i| |x_j|))``; a zero row is an error.
* ``inner_product``: ``max(0, <x_i, x_j>)``.
* ``euclidean``: the RBF kernel ``exp(-gamma * |x_i - x_j|^2)``, in (0, 1],
  with ``gamma = 1 / median(|x_a - x_b|^2)`` over up to 20,000 seeded random
  pairs unless given (the median heuristic: independent of ``n_neighbors``).

Every search is a maximum-inner-product search: cosine normalises rows first;
euclidean appends one column (``-|b|^2 / 2`` to the base, ``1`` to the query)
so that the largest inner product is the smallest distance.

Any finite input is either handled exactly or refused: cosine normalises rows
whose norm float32 cannot compute (values near its limit, or subnormal) after
scaling them by their largest absolute value; inner_product and euclidean raise
a ``ValidationError`` when their similarities would overflow or underflow
float32 (:func:`coreset._validation.check_magnitude`).
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import scipy.sparse as sp

from .._registry import METRICS, check_name
from .._validation import as_embeddings, check_gamma, check_int, check_magnitude, check_not_all_identical
from ..exceptions import DegenerateInputError, ValidationError
from ._backends import Backend, make_backend

__all__ = ["as_similarity", "knn_graph", "build_knn", "dense_similarity", "euclidean_gamma", "knn_recall", "nearest_among", "EXACT_MAX_N"]

log = logging.getLogger(__name__)

#: with ``exact=None``, graphs up to this many points are exact (flat) searches.
EXACT_MAX_N = 20_000
#: a dense similarity of up to this many multiply-adds (n * n * d) is one product (under a
#: second); above, row blocks that return to Python between them (see :func:`dense_block`)
DENSE_ONE_CALL = 1 << 33


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


def _knn_precomputed(S, k: int, batch_size: int | None):
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


def _kmeans(backend: Backend, base, query, n_clusters, seed, n_iter=12, sample_per_cluster=48):
    """Lloyd's k-means on a seeded sample, assignments by the backend's search
    in the L2-augmented space (argmax <x, c> - |c|^2/2 == nearest centroid)."""
    rng = np.random.default_rng(seed)
    n = base.shape[0]
    m = min(n, n_clusters * sample_per_cluster)
    sample = query[rng.choice(n, size=m, replace=False)] if m < n else query
    cent = sample[rng.choice(sample.shape[0], size=n_clusters, replace=False)].copy()

    def assign(P):
        return backend.search(_l2_query(P), _l2_base(cent), 1)[1][:, 0]

    for _ in range(n_iter):
        lab = assign(sample)
        counts = np.bincount(lab, minlength=n_clusters)
        onehot = sp.csr_matrix((np.ones(lab.size, np.float32), (lab, np.arange(lab.size))),
                               shape=(n_clusters, lab.size))
        sums = np.asarray(onehot @ sample)  # per-cluster sums in one sparse product
        nonempty = counts > 0
        cent[nonempty] = (sums[nonempty] / counts[nonempty, None]).astype(np.float32)
        if (~nonempty).any():  # re-seed empty clusters on random sample points
            cent[~nonempty] = sample[rng.choice(sample.shape[0], size=int((~nonempty).sum()), replace=False)]
    return cent, assign


def _search_exact(backend, base, query, k, callback, batch_size):
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


def _search_partitioned(backend, base, query, k, n_clusters, n_probe, seed, callback):
    """Approximate kNN: k-means cells; each cell's points are searched exactly
    against the points of the ``n_probe`` cells whose centroids are nearest to
    the cell's own centroid (blocked matrix products, no per-query probing)."""
    n = query.shape[0]
    cent, assign = _kmeans(backend, base, query, n_clusters, seed)
    labels = np.empty(n, np.int64)
    step = 65536
    for start in range(0, n, step):
        labels[start:start + step] = assign(query[start:start + step])
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=n_clusters)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    # centroid neighbourhoods, nearest first (the cell itself comes first)
    n_near = min(n_clusters, max(4 * n_probe, n_probe + 8))
    _, near = backend.search(_l2_query(cent), _l2_base(cent), n_near)
    base_sorted = base[order]
    query_sorted = base_sorted if query is base else query[order]
    sims = np.empty((n, k), np.float32)
    idx = np.empty((n, k), np.int64)
    done = 0
    for c in range(n_clusters):
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
            cells = [j for j in range(n_clusters) if counts[j]]
        cand = np.concatenate([np.arange(bounds[j], bounds[j + 1]) for j in cells])
        s, i = backend.search(query_sorted[lo:hi], base_sorted[cand], k)
        sims[order[lo:hi]] = s
        idx[order[lo:hi]] = order[cand[i]]
        done += hi - lo
        if callback:
            callback("graph", done, n)
    return sims, idx


def build_knn(
    X,
    n_neighbors: int,
    *,
    metric: str = "cosine",
    backend="auto",
    device: str = "auto",
    exact: bool | None = None,
    batch_size: int | None = None,
    gamma: float | None = None,
    n_clusters: int | None = None,
    n_probe: int = 8,
    random_state: int = 0,
    callback=None,
):
    """Like :func:`knn_graph` and also return an info dict (backend, device,
    exact, gamma, seconds). Validates ``X``; selectors, which validated their
    input once at their boundary, call the private ``_build_knn``."""
    if metric == "precomputed":
        X = as_similarity(X)
    else:
        X = as_embeddings(X)
        check_not_all_identical(X)
    return _build_knn(X, n_neighbors, metric=metric, backend=backend, device=device, exact=exact,
                      batch_size=batch_size, gamma=gamma, n_clusters=n_clusters, n_probe=n_probe,
                      random_state=random_state, callback=callback)


def _build_knn(X, n_neighbors, *, metric="cosine", backend="auto", device="auto", exact=None, batch_size=None,
               gamma=None, n_clusters=None, n_probe=8, random_state=0, callback=None):
    """:func:`build_knn` on an input validated already."""
    t0 = time.perf_counter()
    check_name("metric", metric, METRICS)
    gamma = check_gamma(gamma)
    if metric == "precomputed":
        S = X
        k = check_int(n_neighbors, "n_neighbors", low=1, high=S.shape[0])
        idx, sims = _knn_precomputed(S, k, batch_size)
        info = dict(backend="numpy", device="cpu", exact=True, gamma=None, seconds=time.perf_counter() - t0)
        return idx, sims, info
    n = X.shape[0]
    k = check_int(n_neighbors, "n_neighbors", low=1, high=n)
    be = backend if isinstance(backend, Backend) else make_backend(backend, device, batch_size)
    if metric == "euclidean" and gamma is None:
        gamma = euclidean_gamma(X)
    base, query = _prepare(X, metric)
    if exact is None:
        exact = n <= EXACT_MAX_N
    log.info("kNN graph: %d points, %d neighbours, %s search (%s on %s)", n, k,
             "exact" if exact else "partitioned", be.name, be.device)
    if exact:
        sims, idx = _search_exact(be, base, query, k, callback, batch_size)
    else:
        n_clusters = min(n, check_int(n_clusters, "n_clusters", low=1)) if n_clusters else max(1, int(round(math.sqrt(n))))
        sims, idx = _search_partitioned(be, base, query, k, n_clusters, n_probe, random_state, callback)
    rows = np.arange(n)
    sims = _to_similarity(sims, rows, X, metric, gamma)
    idx, sims = _include_self(idx, sims, _self_similarity(X, rows, metric, gamma), rows)
    info = dict(backend=be.name, device=be.device, exact=bool(exact), gamma=gamma, seconds=time.perf_counter() - t0)
    if not exact:
        info.update(n_clusters=n_clusters, n_probe=n_probe)
    return idx, sims, info


def knn_graph(
    X,
    n_neighbors: int,
    *,
    metric: str = "cosine",
    backend: str = "auto",
    device: str = "auto",
    exact: bool | None = None,
    batch_size: int | None = None,
    gamma: float | None = None,
    n_probe: int = 8,
    random_state: int = 0,
):
    """k-nearest-neighbour similarity graph.

    ``X`` is (N, d) embeddings, or with ``metric="precomputed"`` an (N, N)
    similarity (dense ndarray or scipy sparse, any index dtype; row i = how
    similar each point is to i), whose top ``n_neighbors`` entries per row are
    kept (exactly; ``backend``/``device`` do not apply).

    Returns ``(indices, similarities)``: int64 and float32 arrays of shape
    ``(N, n_neighbors)``, best first, column 0 always the point itself. The
    similarity is the non-negative one facility location uses (module doc).

    ``exact=None`` is exact (flat search) up to ``EXACT_MAX_N`` points and
    k-means-partitioned above (recall is measured in the tests and
    ``docs/benchmarks.md``; raise ``n_probe`` for more). Memory stays bounded by
    ``batch_size`` rows of similarities at a time; no N x N matrix is formed.
    """
    idx, sims, _ = build_knn(
        X, n_neighbors, metric=metric, backend=backend, device=device, exact=exact,
        batch_size=batch_size, gamma=gamma, n_probe=n_probe, random_state=random_state,
    )
    return idx, sims


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


def knn_recall(X, indices: np.ndarray, *, metric="cosine", n_queries=1000, random_state=0, backend="auto") -> float:
    """Fraction of the true k nearest neighbours (by exact search) found in
    ``indices`` for a seeded sample of rows: recall@k of an approximate graph."""
    X = as_embeddings(X)
    n, k = indices.shape
    rng = np.random.default_rng(random_state)
    rows = rng.choice(n, size=min(n, n_queries), replace=False)
    be = make_backend(backend)
    base, query = _prepare(X, metric)
    _, true = be.search(query[rows], base, k)
    hits = sum(np.intersect1d(true[r], indices[q]).size for r, q in enumerate(rows))
    return hits / (rows.size * k)


def nearest_among(X, queries: np.ndarray, targets: np.ndarray, *, metric="cosine", backend="auto") -> np.ndarray:
    """For each row index in ``queries``, the position in ``targets`` of its
    most similar target row (exact search; used to assign points no kNN edge
    reaches to a selected point)."""
    base, query = _prepare(X, metric)
    Q, B = query[queries], base[targets]
    if backend is None:  # plain numpy, in blocks (of CALL_WORK: Ctrl-C raises between them): without faiss/torch
        from .._pace import rows_per_call

        out = np.empty(Q.shape[0], np.int64)
        bs = min(4096, rows_per_call(Q.shape[0], B.shape[0] * max(1, B.shape[1])))
        for start in range(0, Q.shape[0], bs):
            out[start:start + bs] = np.argmax(Q[start:start + bs] @ B.T, axis=1)
        return out
    be = backend if isinstance(backend, Backend) else make_backend(backend)
    _, pos = be.search(Q, B, 1)
    return pos[:, 0]
