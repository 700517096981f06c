"""The numbers behind a report: seeded samples of rows, the 2-D map (PCA, or
UMAP when installed), class counts and per-class coverage.

Coverage of a class is the mean, over its rows, of the cosine similarity
(rows L2-normalised) of each row to its nearest pick *of the same class*
(without labels: to its nearest pick). It is computed exactly, in chunks of
rows against the class's picks with one matrix product each (numpy BLAS),
over every row of a class up to ``coverage_rows`` rows and over a seeded
uniform sample of that many rows above. The cost is at most
``coverage_rows * picks of the class * d`` per class, whatever N is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..exceptions import BackendUnavailableError, ValidationError

__all__ = ["read_rows", "unit_rows", "sample_rows", "project", "class_index", "Coverage", "coverage",
           "represented_rows", "PROJECTIONS"]

log = logging.getLogger(__name__)

PROJECTIONS = ("pca", "umap", "auto")
_CHUNK_FLOATS = 8_000_000  # similarity block per matrix product: 32 MB of float32


def read_rows(X, rows: np.ndarray) -> np.ndarray:
    """``X[rows]`` as float32 (rows in any order; a memory map is read in
    ascending row order); a row with NaN or inf is a ValidationError."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return np.empty((0, X.shape[1]), np.float32)
    order = np.argsort(rows, kind="stable")
    out = np.empty((rows.size, X.shape[1]), np.float32)
    out[order] = np.asarray(X[rows[order]], dtype=np.float32)
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        raise ValidationError(f"X must hold finite numbers; row {int(rows[np.argmax(bad)])} holds NaN or inf")
    return out


def unit_rows(A: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero), float32."""
    A = np.asarray(A, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", A, A, dtype=np.float64)).astype(np.float32)
    norms[norms == 0] = 1.0
    return A / norms[:, None]


def sample_rows(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """All ``n`` rows when ``k >= n``, else ``k`` of them drawn uniformly
    without replacement; sorted."""
    if k >= n:
        return np.arange(n, dtype=np.int64)
    return np.sort(rng.choice(n, size=k, replace=False)).astype(np.int64)


def _umap_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def project(X, rows_fit: np.ndarray, row_sets, method: str = "pca", random_state: int = 0):
    """2-D coordinates of each array of rows in ``row_sets``, by a projection
    fitted on the (L2-normalised) rows ``rows_fit``. ``method``: "pca"
    (scikit-learn PCA), "umap" (umap-learn, cosine metric) or "auto" (UMAP when
    umap-learn is installed, else PCA). Returns (list of (n, 2) float32, the
    method used)."""
    if method not in PROJECTIONS:
        raise ValidationError(f"projection must be one of {', '.join(PROJECTIONS)}; got {method!r}")
    if method == "auto":
        method = "umap" if _umap_available() else "pca"
    A = unit_rows(read_rows(X, rows_fit))
    sets = [unit_rows(read_rows(X, r)) for r in row_sets]
    n_comp = min(2, A.shape[0], A.shape[1])
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise BackendUnavailableError(
                "projection='umap' needs umap-learn: pip install umap-learn (or use projection='pca')") from None
        if A.shape[0] < 4:
            raise ValidationError(f"projection='umap' needs at least 4 rows; got {A.shape[0]}")
        model = umap.UMAP(n_components=2, metric="cosine", random_state=random_state,
                          n_neighbors=min(15, A.shape[0] - 1)).fit(A)
        out = [model.transform(S) if S.shape[0] else np.empty((0, 2)) for S in sets]
    else:
        from sklearn.decomposition import PCA

        if n_comp >= 1 and A.shape[0] >= 2:
            model = PCA(n_components=n_comp, random_state=random_state).fit(A)
            out = [model.transform(S) if S.shape[0] else np.empty((0, n_comp)) for S in sets]
        else:  # one row to fit: no direction to find
            out = [np.zeros((S.shape[0], n_comp)) for S in sets]
        out = [np.pad(o, ((0, 0), (0, 2 - o.shape[1]))) for o in out]
    return [np.asarray(o, dtype=np.float32) for o in out], method


def class_index(y: np.ndarray):
    """(class values sorted by size descending then value, the rows of each
    class as a list of int64 arrays, ascending)."""
    values, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(counts)))
    rows = [order[bounds[i]:bounds[i + 1]].astype(np.int64) for i in range(values.size)]
    by_size = np.lexsort((np.arange(values.size), -counts))
    return values[by_size], [rows[i] for i in by_size]


@dataclass
class Coverage:
    """Per-class coverage (module doc). ``table``: one dict per class, worst
    first (classes without a pick first of all); ``rows``, ``best_pos``,
    ``best_sim``: every measured row, the position in ``sel.indices`` of its
    nearest pick (-1: the class has none) and the similarity to it."""

    table: list
    rows: np.ndarray
    best_pos: np.ndarray
    best_sim: np.ndarray
    overall: float
    sampled: bool
    _order: np.ndarray | None = None
    _keys: np.ndarray | None = None


def coverage(X, y, picks: np.ndarray, *, coverage_rows: int = 2000, random_state: int = 0) -> Coverage:
    """Per-class coverage of the selection ``picks`` (row numbers, in
    selection order) of ``X`` with labels ``y`` (None: one group, all rows)."""
    rng = np.random.default_rng(random_state)
    n = X.shape[0]
    if y is None:
        classes, class_rows = [None], [np.arange(n, dtype=np.int64)]
        pick_class = np.zeros(picks.size, np.int64)
    else:
        classes, class_rows = class_index(y)
        code = {v: i for i, v in enumerate(classes.tolist())}
        pick_class = np.array([code[v] for v in np.asarray(y)[picks].tolist()], dtype=np.int64)
    table, all_rows, all_pos, all_sim = [], [], [], []
    sampled = False
    for ci, rows in enumerate(class_rows):
        pos = np.flatnonzero(pick_class == ci)
        used = rows if rows.size <= coverage_rows else np.sort(rng.choice(rows, coverage_rows, replace=False))
        sampled |= used.size < rows.size
        best_pos = np.full(used.size, -1, np.int64)
        best_sim = np.full(used.size, np.nan, np.float32)
        if pos.size:
            P = unit_rows(read_rows(X, picks[pos]))
            step = max(1, _CHUNK_FLOATS // pos.size)
            for s in range(0, used.size, step):
                R = unit_rows(read_rows(X, used[s:s + step]))
                S = R @ P.T
                j = np.argmax(S, axis=1)
                best_pos[s:s + step] = pos[j]
                best_sim[s:s + step] = S[np.arange(S.shape[0]), j]
        mean = float(np.mean(best_sim, dtype=np.float64)) if pos.size else float("nan")
        table.append({"class": classes[ci], "n_rows": int(rows.size), "n_picks": int(pos.size),
                      "n_measured": int(used.size), "mean_similarity": mean,
                      "p10_similarity": float(np.percentile(best_sim, 10)) if pos.size else float("nan")})
        all_rows.append(used), all_pos.append(best_pos), all_sim.append(best_sim)
    means = np.array([t["mean_similarity"] for t in table])
    sizes = np.array([t["n_rows"] for t in table], dtype=np.float64)
    overall = float(np.sum(np.nan_to_num(means, nan=0.0) * sizes) / sizes.sum())  # a class without picks counts 0
    order = sorted(range(len(table)), key=lambda i: (not np.isnan(means[i]), np.nan_to_num(means[i]), i))
    return Coverage([table[i] for i in order], np.concatenate(all_rows), np.concatenate(all_pos),
                    np.concatenate(all_sim), overall, sampled)


def represented_rows(cov: Coverage, pick_pos: int, pick_row: int, k: int, min_similarity: float | None = None):
    """Up to ``k`` measured rows whose nearest pick is the one at ``pick_pos``
    (itself excluded), most similar first: (rows, similarities)."""
    if cov._order is None:  # measured rows grouped by nearest pick, most similar first within a group
        cov._order = np.lexsort((cov.rows, -cov.best_sim, cov.best_pos))
        cov._keys = cov.best_pos[cov._order]
    lo, hi = np.searchsorted(cov._keys, [pick_pos, pick_pos + 1])
    idx = cov._order[lo:hi]
    rows, sims = cov.rows[idx], cov.best_sim[idx]
    keep = rows != pick_row
    if min_similarity is not None:
        keep &= sims >= min_similarity
    return rows[keep][:k], sims[keep][:k]
