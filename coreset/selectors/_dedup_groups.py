"""Near-duplicate groups (SemDeDup-style, Abbas et al., 2023), for
:class:`~coreset.selectors.DedupSelector` and :class:`~coreset.selectors.Deduplicated`.

1. Exact duplicates (identical rows) are grouped first by hashing the rows'
   bytes (collisions are checked row by row), so any number of copies of one
   vector is one group whatever ``n_neighbors`` is.
2. On the distinct rows, the near-duplicate graph: each row's ``n_neighbors``
   most similar rows among those with similarity >= ``threshold`` (a
   thresholded kNN graph, found by a range search: exact up to
   ``EXACT_MAX_N`` rows, k-means-partitioned above; see ``_dedup_search``).
3. Groups are the connected components of that graph (transitive: a chain
   a~b~c is one group even when a and c are below the threshold, as within a
   SemDeDup cluster).
4. Each group keeps one representative: the member with the highest mean
   similarity to the group's members (cosine: the largest ``<u_i, sum_j u_j>``
   over unit rows, copies counted; euclidean: the member nearest to the
   group's mean, i.e. the smallest mean squared distance), ties to the lowest
   row index. Its weight is the group's size (weights sum to N).
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .._validation import as_embeddings, check_int, check_magnitude
from ..exceptions import DegenerateInputError, ValidationError

__all__ = ["DedupGroups", "find_duplicate_groups", "distinct_rows", "check_threshold", "check_dedup_params",
           "EXACT_MAX_N", "DEDUP_METRICS"]

#: with ``exact=None``, inputs up to this many distinct rows are searched exactly
EXACT_MAX_N = 20_000
DEDUP_METRICS = ("cosine", "euclidean")
_HASH_ROWS = 1 << 16


def check_threshold(threshold, name="threshold") -> float:
    """A finite number in (0, 1]: similarities (cosine clipped at 0, RBF) lie in [0, 1]."""
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, numbers.Real):
        raise ValidationError(f"{name} must be a number in (0, 1] (the similarity at or above which two points "
                              f"are near duplicates); got {threshold!r}")
    t = float(threshold)
    if not math.isfinite(t) or not 0.0 < t <= 1.0:
        raise ValidationError(f"{name} must be a finite number in (0, 1] (the similarity at or above which two "
                              f"points are near duplicates); got {t!r}")
    return t


def check_dedup_params(threshold, metric, n_neighbors, exact, n_probe, device):
    """Validate the parameters; returns (threshold, torch device or None)."""
    from .._device import parse_device, torch_cuda_available
    from ..exceptions import BackendUnavailableError

    t = check_threshold(threshold)
    if metric not in DEDUP_METRICS:
        raise ValidationError(f"metric must be one of {', '.join(DEDUP_METRICS)} for near-duplicate removal "
                              f"(a similarity where 1 means identical); got {metric!r}")
    check_int(n_neighbors, "n_neighbors", low=1)
    check_int(n_probe, "n_probe", low=1)
    if exact not in (None, True, False):
        raise ValidationError(f"exact must be None (automatic), True or False; got {exact!r}")
    device = parse_device(device)
    if device.startswith("cuda"):
        if not torch_cuda_available():
            raise BackendUnavailableError(f"device={device!r} asks for a GPU but torch sees none; use device='cpu'")
        return t, device
    if device == "auto" and torch_cuda_available():
        return t, "cuda"
    return t, None


@dataclass
class DedupGroups:
    """Near-duplicate groups of N rows."""

    labels: np.ndarray  #: (N,) group of each row; groups are numbered by their representative's row
    representatives: np.ndarray  #: (n_groups,) the kept rows, ascending
    sizes: np.ndarray  #: (n_groups,) rows per group
    n_exact_duplicates: int  #: rows identical to an earlier row
    info: dict = field(default_factory=dict)  #: the graph: form, exactness, edges, cells
    gamma: float | None = None  #: the RBF width (euclidean)


def _row_hashes(X):
    """A 64-bit hash of each row: a random linear form of its 32-bit words
    (wrapping uint64 arithmetic), -0.0 read as 0.0."""
    words = X.shape[1] * X.dtype.itemsize // 4
    mult = np.random.default_rng(0x5EED).integers(1, 2**63, size=words, dtype=np.uint64) | np.uint64(1)
    h = np.empty(X.shape[0], np.uint64)
    for s in range(0, X.shape[0], _HASH_ROWS):
        w = np.ascontiguousarray(np.asarray(X[s:s + _HASH_ROWS]) + 0.0).view(np.uint32)
        h[s:s + _HASH_ROWS] = (w.astype(np.uint64) * mult).sum(axis=1)
    return h


def distinct_rows(X):
    """(first, inverse): ``first[g]`` the lowest row holding distinct value g
    (ascending), ``inverse[i]`` the value of row i. Rows are hashed
    (:func:`_row_hashes`); a row sharing its hash with an earlier row is
    compared with it, and a collision is split exactly."""
    n = X.shape[0]
    _, first, inv = np.unique(_row_hashes(X), return_index=True, return_inverse=True)
    inv = inv.ravel()
    dup = np.flatnonzero(first[inv] != np.arange(n))
    if dup.size:
        bad = dup[np.any(np.asarray(X[dup]) != np.asarray(X[first[inv[dup]]]), axis=1)]
        next_id = first.size
        for g in np.unique(inv[bad]):  # a hash collision: split the rows of that hash exactly
            rows = np.flatnonzero(inv == g)
            _, sub = np.unique(np.asarray(X[rows]) + 0.0, axis=0, return_inverse=True)
            sub = sub.ravel()
            inv[rows[sub > 0]] = next_id + sub[sub > 0] - 1
            next_id += int(sub.max())
        if bad.size:
            first = np.full(next_id, n, np.int64)
            np.minimum.at(first, inv, np.arange(n))
    rank = np.empty(first.size, np.int64)
    order = np.argsort(first, kind="stable")
    rank[order] = np.arange(first.size)
    return first[order].astype(np.int64), rank[inv]


def _vectors(X, rows, metric, dtype=np.float32):
    """Rows of X in the metric's space: unit rows (cosine) or as they are."""
    from ..similarity import unit_rows as _unit_rows

    V = np.empty((rows.size, X.shape[1]), dtype)
    for s in range(0, rows.size, _HASH_ROWS):
        block = np.asarray(X[rows[s:s + _HASH_ROWS]])
        if metric == "cosine":
            block, zero = _unit_rows(block, dtype)
            if zero.size:
                raise DegenerateInputError(f"X has an all-zero row (row {int(rows[s + zero[0]])}); cosine "
                                           "similarity is undefined for it")
        V[s:s + _HASH_ROWS] = block
    return V


def _heads(comp, *keys):
    """Per component (in component order), the position that sorts first by ``keys``."""
    order = np.lexsort(keys[::-1] + (comp,))
    head = np.ones(order.size, bool)
    head[1:] = comp[order][1:] != comp[order][:-1]
    return order[head]


def _representatives(X, first, counts, comp, n_comp, metric):
    """Per component, the distinct row with the highest mean similarity to the
    component's rows (copies counted); scores within rounding (1e-9 relative)
    of the best count as ties, which go to the lowest row."""
    size = np.bincount(comp, weights=counts, minlength=n_comp)
    multi = np.flatnonzero(np.bincount(comp, minlength=n_comp)[comp] > 1)
    score = np.zeros(first.size)
    scale = np.ones(n_comp)
    if multi.size:
        V = _vectors(X, first[multi], metric, np.float64)
        w = counts[multi].astype(np.float64)
        onehot = sp.csr_matrix((w, (comp[multi], np.arange(multi.size))), shape=(n_comp, multi.size))
        total = np.asarray(onehot @ V)  # sum over each component's rows
        if metric == "cosine":  # mean cosine to the members = <u_i, sum_j u_j> / n
            score[multi] = np.einsum("ij,ij->i", V, total[comp[multi]])
            scale = size
        else:  # mean squared distance = |x_i - mean|^2 + const
            score[multi] = -((V - total[comp[multi]] / size[comp[multi], None]) ** 2).sum(axis=1)
            scale = np.maximum(onehot @ np.einsum("ij,ij->i", V, V) / size, 1e-300)  # mean |x|^2
    best = score[_heads(comp, -score)]
    near_best = np.flatnonzero(score >= best[comp] - 1e-9 * (np.abs(best) + scale)[comp])
    return near_best[_heads(comp[near_best], first[near_best])]  # distinct-row id per component


def find_duplicate_groups(X, threshold=0.95, *, metric="cosine", n_neighbors=16, exact=None, n_probe=3,
                          device="auto", random_state=0, callback=None, timings=None,
                          validate=True) -> DedupGroups:
    """Near-duplicate groups of the rows of ``X`` (module doc). ``random_state``
    seeds the partition's k-means; ``timings``: a dict to add stage seconds to;
    ``validate=False`` when X has been through ``as_embeddings`` already."""
    from threadpoolctl import threadpool_limits
    from scipy.sparse.csgraph import connected_components

    from ..similarity import euclidean_gamma
    from ._dedup_search import PairSpace, exact_pairs, partitioned_pairs

    t, torch_device = check_dedup_params(threshold, metric, n_neighbors, exact, n_probe, device)
    if validate:
        X = as_embeddings(X)
    tm = timings if timings is not None else {}
    n = X.shape[0]
    t0 = time.perf_counter()
    first, inverse = distinct_rows(X)
    counts = np.bincount(inverse, minlength=first.size)
    m = first.size
    tm["hash"] = tm.get("hash", 0.0) + time.perf_counter() - t0
    gamma = None
    use_exact = (m <= EXACT_MAX_N) if exact is None else bool(exact)
    info = {"form": "threshold-knn", "k": int(n_neighbors), "exact": use_exact, "n_distinct": int(m)}
    t0 = time.perf_counter()
    with threadpool_limits(1, user_api="blas"):
        if m == 1:
            i = j = np.zeros(0, np.int64)
        else:
            if metric == "euclidean":  # the median heuristic over pairs of distinct rows
                check_magnitude(X, metric)
                sample = first if m <= 40_000 else np.sort(np.random.default_rng(0).choice(first, 40_000, False))
                gamma = euclidean_gamma(np.asarray(X[sample]))
            space = PairSpace(_vectors(X, first, metric), metric, t, n_neighbors, gamma=gamma,
                              torch_device=torch_device)
            if use_exact:
                i, j, _ = exact_pairs(space, callback)
            else:
                i, j, _, more = partitioned_pairs(space, n_probe, random_state, callback=callback)
                info.update(more)
            del space
        info["n_edges"] = int(i.size)
        tm["graph"] = tm.get("graph", 0.0) + time.perf_counter() - t0
        t0 = time.perf_counter()
        graph = sp.csr_matrix((np.ones(i.size, np.float32), (i, j)), shape=(m, m))
        n_comp, comp = connected_components(graph, directed=False)
        rep_distinct = _representatives(X, first, counts, comp, n_comp, metric)
    reps = first[rep_distinct]
    order = np.argsort(reps, kind="stable")  # groups numbered by their representative's row
    group_of_comp = np.empty(n_comp, np.int64)
    group_of_comp[comp[rep_distinct[order]]] = np.arange(n_comp)
    labels = group_of_comp[comp[inverse]]
    tm["groups"] = tm.get("groups", 0.0) + time.perf_counter() - t0
    return DedupGroups(labels=labels, representatives=reps[order], sizes=np.bincount(labels, minlength=n_comp),
                       n_exact_duplicates=int(n - m), info=info, gamma=gamma)
