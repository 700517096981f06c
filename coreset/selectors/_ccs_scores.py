"""Training-free difficulty scores for :class:`~coreset.selectors._ccs.CCSSelector`
(one float64 per row, higher = harder), computed from the embeddings with the
engine's own kNN search and similarity (:mod:`coreset.similarity`).

* ``knn_density``: mean distance to the ``n_neighbors`` nearest rows of the
  row's own class (all rows without labels): sparse regions are hard. Exact:
  every pair for classes up to 2,000 rows, the engine's kNN search above.
* ``label_consistency``: how strongly the row's 10 nearest rows among *all*
  rows vote against its label: ``log((v_other + 0.5) / (v_own + 0.5))`` with
  ``v_own`` the votes for its own label and ``v_other`` those of the most voted
  other label; the kNN detector of :mod:`._label_noise` (its ``score`` is
  ``exp(-this)``: the same ranking as its suspects; with threshold 1 a row is
  a suspect exactly when this is > 0). Rows in another class's territory
  (often mislabeled) are hard. Needs labels. The neighbours: exact up to
  20,000 rows, above them the engine's cheap cell search for votes
  (``build_knn(..., effort="fast")``).
* ``fl_gain``: minus the facility-location singleton gain of the row within
  its class, divided by the class size: minus the row's mean similarity to its
  class, under the similarity facility location itself uses (dense up to 2,000
  rows, a 32-nearest-neighbour graph above). Unrepresentative rows are hard.
* ``centroid_distance``: distance to the class mean (cosine: to the mean of the
  unit rows). The cheapest.

Distances: ``metric="cosine"`` is ``1 - cos``, ``"euclidean"`` the euclidean
distance. A class of one row scores 0 on the per-class scores.
"""

from __future__ import annotations

import numpy as np

from .._registry import check_name
from .._validation import check_int
from ..similarity import DENSE_AUTO_MAX

__all__ = ["DIFFICULTY_SCORES", "SCORE_METRICS", "difficulty_scores", "knn_density", "label_consistency", "fl_gain",
           "centroid_distance"]

DIFFICULTY_SCORES = ("knn_density", "label_consistency", "fl_gain", "centroid_distance")
SCORE_METRICS = ("cosine", "euclidean")


def _classes(y, n: int) -> list[np.ndarray]:
    """Row indices per class (one group of every row without labels)."""
    if y is None:
        return [np.arange(n)]
    _, inverse = np.unique(y, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    return np.split(order, np.cumsum(np.bincount(inverse))[:-1])


def _space(X, metric: str) -> np.ndarray:
    """Rows in the metric's space: unit rows for cosine (zero rows stay zero)."""
    if metric == "cosine":
        from ..similarity import unit_rows

        return unit_rows(X, np.float64)[0]
    return np.asarray(X, dtype=np.float64)


def _pair_distances(Z: np.ndarray, rows: np.ndarray, nbrs: np.ndarray, metric: str, block: int = 4096) -> np.ndarray:
    """``d(Z[rows[i]], Z[nbrs[i, j]])`` in blocks of rows (no N x k x d array at once)."""
    out = np.empty(nbrs.shape, np.float64)
    for s in range(0, rows.size, block):
        A = Z[rows[s:s + block]][:, None, :]
        B = Z[nbrs[s:s + block]]
        if metric == "cosine":
            out[s:s + block] = 1.0 - np.einsum("ikd,ikd->ik", np.broadcast_to(A, B.shape), B)
        else:
            out[s:s + block] = np.sqrt(np.einsum("ikd,ikd->ik", B - A, B - A))
    return out


def _neighbours(X, k: int, metric: str, backend):
    """The ``k`` nearest other rows of each row of ``X`` (engine search; the row itself dropped)."""
    from ..similarity import build_knn

    # the similarity values are not used, only the order: a fixed gamma skips the median heuristic
    idx, _, info = build_knn(X, k + 1, metric=metric, backend=backend, gamma=1.0 if metric == "euclidean" else None,
                             validate=False)
    return idx[:, 1:], info  # column 0 is always the row itself


def knn_density(X, y=None, *, n_neighbors: int = 10, metric: str = "cosine", backend="auto", device="auto",
                info=None, max_dense: int = DENSE_AUTO_MAX) -> np.ndarray:
    """Mean distance to the ``n_neighbors`` nearest rows of the same class (module doc);
    classes above ``max_dense`` rows go through the kNN search (``backend`` / ``device``:
    names, resolved when the first such class comes, or a backend object)."""
    from ..similarity import make_backend

    be = backend
    Z = _space(X, metric)
    out = np.zeros(X.shape[0], np.float64)
    for m in _classes(y, X.shape[0]):
        if m.size < 2:
            continue
        k = min(n_neighbors, m.size - 1)
        if m.size <= max_dense:  # every pair, as the similarity does for small groups (no search overhead)
            D = _dense_distances(Z[m], metric)
            np.fill_diagonal(D, np.inf)
            out[m] = np.partition(D, k - 1, axis=1)[:, :k].mean(axis=1)
            continue
        if isinstance(be, str):
            be = make_backend(be, device)
        nb, knn_info = _neighbours(X[m], k, metric, be)
        out[m] = _pair_distances(Z, m, m[nb], metric).mean(axis=1)
        if info is not None:
            info.update(backend=knn_info["backend"], device=knn_info["device"])
    return out


def _dense_distances(Zc: np.ndarray, metric: str) -> np.ndarray:
    """All pairwise distances of a small group (rows from :func:`_space`)."""
    from ..similarity import small_product_guard

    with small_product_guard(Zc.shape[0] ** 2 * Zc.shape[1]):
        G = Zc @ Zc.T
    if metric == "cosine":
        return 1.0 - G
    sq = np.einsum("ij,ij->i", Zc, Zc)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * G, 0.0))


def label_consistency(X, y, *, metric: str = "cosine", random_state: int = 0) -> np.ndarray:
    """``log((v_other + 0.5) / (v_own + 0.5))`` over each row's 10 nearest rows (module doc), from
    the label-noise filter's kNN detector: the same ranking as its suspects."""
    from ._label_noise import find_label_suspects

    return -np.log(find_label_suspects(X, y, method="knn", metric=metric, random_state=random_state).score)


def fl_gain(X, y=None, *, metric: str = "cosine", backend="auto", device="auto", random_state: int = 0,
            info=None) -> np.ndarray:
    """Minus each row's facility-location singleton gain within its class, over the class size (module doc)."""
    import scipy.sparse as sp

    from ..similarity import AutoSimilarity

    sim = AutoSimilarity(metric, backend=backend, device=device).resolve(X, random_state)
    out = np.zeros(X.shape[0], np.float64)
    for m in _classes(y, X.shape[0]):
        if m.size < 2:
            continue
        S, _ = sim.build(X[m])  # row = candidate: a row's sum is its singleton gain
        gain = np.asarray(S.sum(axis=1)).ravel() if sp.issparse(S) else S.sum(axis=1, dtype=np.float64)
        out[m] = -gain / m.size
    if info is not None:
        info.update(sim.describe())
    return out


def centroid_distance(X, y=None, *, metric: str = "cosine") -> np.ndarray:
    """Distance of each row to its class mean (module doc)."""
    Z = _space(X, metric)
    out = np.zeros(X.shape[0], np.float64)
    for m in _classes(y, X.shape[0]):
        if m.size < 2:
            continue
        c = Z[m].mean(axis=0)
        if metric == "cosine":
            norm = np.linalg.norm(c)
            out[m] = 1.0 - (Z[m] @ (c / norm) if norm > 0 else 0.0)
        else:
            out[m] = np.linalg.norm(Z[m] - c, axis=1)
    return out


def difficulty_scores(X, y, score: str, *, n_neighbors: int = 10, metric: str = "cosine", backend="auto",
                      device="auto", random_state: int = 0, info: dict | None = None) -> np.ndarray:
    """The training-free score ``score`` (one of :data:`DIFFICULTY_SCORES`) of every row of ``X``.
    ``info`` (a dict), when given, receives the backend / device the search ran on."""
    from ..exceptions import ValidationError

    check_name("score", score, DIFFICULTY_SCORES)
    check_name("metric", metric, SCORE_METRICS)
    n_neighbors = check_int(n_neighbors, "n_neighbors", low=1)
    if score == "label_consistency" and y is None:
        raise ValidationError("score='label_consistency' needs labels y; got y=None")
    if score == "knn_density":
        return knn_density(X, y, n_neighbors=n_neighbors, metric=metric, backend=backend, device=device, info=info)
    if score == "label_consistency":
        return label_consistency(X, y, metric=metric, random_state=random_state)
    if score == "fl_gain":
        return fl_gain(X, y, metric=metric, backend=backend, device=device, random_state=random_state, info=info)
    return centroid_distance(X, y, metric=metric)
