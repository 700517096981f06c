"""The one entry of the kNN graph: :func:`knn_graph` (and :func:`build_knn`,
which also returns what was done). The parts live by concern:

* ``_metrics``: similarity semantics, row normalisation, the inner-product
  spaces of the metrics, self-inclusion;
* ``_search``: the searches (exact; k-means cells on the CPU; the backend's
  cells on a GPU; precomputed top-k);
* ``_kmeans``: k-means and nearest centroids (shared with near-duplicate search);
* ``_topk``: the numba top-k heaps of the cell search;
* ``_dense``: dense similarity blocks;
* ``_blas``: BLAS thread limits and the worker threads;
* ``_backends``: the exact maximum-inner-product search of FAISS / torch.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from .._registry import METRICS, check_name
from .._validation import as_embeddings, check_gamma, check_int, check_not_all_identical
from ._backends import Backend, make_backend
from ._metrics import _include_self, _prepare, _self_similarity, _to_similarity, as_similarity, euclidean_gamma
from ._search import (AUTO_PROBE, EFFORTS, FAST_CELLS, knn_precomputed, search_cells, search_cells_backend,
                      search_exact, search_exact_tiles)

__all__ = ["knn_graph", "build_knn", "knn_recall", "nearest_among", "EXACT_MAX_N"]

log = logging.getLogger(__name__)

#: with ``exact=None``, graphs up to this many points are exact (flat) searches.
EXACT_MAX_N = 20_000
#: an exact search on the CPU with ``backend="auto"`` from this many points scores every
#: pair in tiles into the compiled top-k lists (``_search.search_cells`` with one cell)
#: instead of the backend's flat search; an explicit backend keeps its own search
EXACT_TILES_MIN_N = 4_096


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
    n_probe: int | None = None,
    random_state: int = 0,
    callback=None,
    validate: bool = True,
    effort: str = "full",
):
    """Like :func:`knn_graph` and also return an info dict (backend, device,
    exact, gamma, seconds). Validates ``X`` unless ``validate=False`` (the
    selectors, which validated their input once at their boundary).
    ``effort``: "full" (default) or "fast", for the partitioned search on the
    CPU only (``_search.search_cells``: twice as many cells from a shorter
    k-means, ``n_probe`` 1, no two-hop rounds; lower recall at about 0.7 of
    the cost): for label votes, not for a graph that selects; the exact, GPU
    and precomputed searches ignore it."""
    if validate and metric == "precomputed":
        X = as_similarity(X)
    elif validate:
        X = as_embeddings(X)
        check_not_all_identical(X)
    return _build_knn(X, n_neighbors, metric=metric, backend=backend, device=device, exact=exact,
                      batch_size=batch_size, gamma=gamma, n_clusters=n_clusters, n_probe=n_probe,
                      random_state=random_state, callback=callback, effort=effort)


def _build_knn(X, n_neighbors, *, metric="cosine", backend="auto", device="auto", exact=None, batch_size=None,
               gamma=None, n_clusters=None, n_probe=None, random_state=0, callback=None, exact_tiles=None,
               effort="full"):
    """:func:`build_knn` on an input validated already. ``exact_tiles``: an
    exact search on the CPU may score in tiles (``EXACT_TILES_MIN_N``); None:
    when ``backend`` is "auto" (a caller holding a resolved backend says
    whether its user chose it)."""
    t0 = time.perf_counter()
    check_name("metric", metric, METRICS)
    check_name("effort", effort, EFFORTS)
    gamma = check_gamma(gamma)
    if metric == "precomputed":
        S = X
        k = check_int(n_neighbors, "n_neighbors", low=1, high=S.shape[0])
        idx, sims = knn_precomputed(S, k, batch_size)
        info = dict(backend="numpy", device="cpu", exact=True, gamma=None, seconds=time.perf_counter() - t0)
        return idx, sims, info
    n = X.shape[0]
    k = check_int(n_neighbors, "n_neighbors", low=1, high=n)
    if n_probe is not None:
        check_int(n_probe, "n_probe", low=1)
    be = backend if isinstance(backend, Backend) else make_backend(backend, device, batch_size)
    if metric == "euclidean" and gamma is None:
        gamma = euclidean_gamma(X)
    if exact is None:
        exact = n <= EXACT_MAX_N
    # the CPU searches cells with numpy products and numba heaps; a GPU backend searches them itself
    search = "exact" if exact else ("cells" if be.device == "cpu" else "backend")
    log.info("kNN graph: %d points, %d neighbours, %s search (%s on %s)", n, k,
             "exact" if exact else "partitioned", be.name, be.device)
    info = dict(backend=be.name, device=be.device, exact=bool(exact), gamma=gamma)
    if exact_tiles is None:
        exact_tiles = isinstance(backend, str) and backend == "auto"
    if exact and exact_tiles and be.device == "cpu" and n >= EXACT_TILES_MIN_N:
        # every pair of row blocks scored once, into the compiled top-k lists (the similarity is
        # symmetric: half a flat search's products); ties go to the lower index
        sims, idx = search_exact_tiles(X, metric, k, callback)
    elif exact:
        base, query = _prepare(X, metric)
        sims, idx = search_exact(be, base, query, k, callback, batch_size)
        del base, query
    else:
        fast = effort == "fast" and search == "cells"
        n_clusters = min(n, check_int(n_clusters, "n_clusters", low=1)) if n_clusters else \
            max(1, int(round((FAST_CELLS if fast else 1.0) * math.sqrt(n))))
        n_probe = AUTO_PROBE["fast" if fast else search] if n_probe is None else int(n_probe)
        if search == "cells":
            sims, idx = search_cells(X, metric, k, n_clusters, n_probe, random_state, callback,
                                     effort="fast" if fast else "full")
        else:
            base, query = _prepare(X, metric)
            sims, idx = search_cells_backend(be, base, query, k, n_clusters, n_probe, random_state, callback)
            del base, query
        info.update(search=search, n_clusters=n_clusters, n_probe=n_probe)
        if fast:
            info["effort"] = "fast"
    rows = np.arange(n)
    sims = _to_similarity(sims, rows, X, metric, gamma)
    idx, sims = _include_self(idx, sims, _self_similarity(X, rows, metric, gamma), rows)
    info["seconds"] = time.perf_counter() - t0
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
    n_probe: int | None = None,
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
    k-means-partitioned above: sqrt(N) cells, each scored against the
    ``n_probe`` cells nearest to it (None: 2 on the CPU, where a pair of
    cells is scored once for both sides and each cell also, in two rounds,
    against its rows' most frequent two-hop neighbours; 8 on a GPU backend,
    one side at a time). Recall is
    measured in the tests and ``docs/benchmarks.md``; raise ``n_probe`` for
    more. No N x N matrix is formed.
    """
    idx, sims, _ = build_knn(
        X, n_neighbors, metric=metric, backend=backend, device=device, exact=exact,
        batch_size=batch_size, gamma=gamma, n_probe=n_probe, random_state=random_state,
    )
    return idx, sims


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
    reaches to a selected point). Only the query and target rows are brought
    to the metric's inner-product space (row by row: the same values as
    preparing all of ``X``), not the whole input."""
    queries, targets = np.asarray(queries, np.int64), np.asarray(targets, np.int64)
    base, query = _prepare(np.asarray(X)[np.concatenate([queries, targets])], metric)
    Q, B = query[:queries.size], base[queries.size:]
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
