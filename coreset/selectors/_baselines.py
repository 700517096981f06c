"""Baselines with the same return type as the submodular selectors."""

from __future__ import annotations

import numpy as np

__all__ = ["run_baseline", "k_center_greedy"]


def k_center_greedy(X: np.ndarray, n_select: int, rng: np.random.Generator, *, metric="cosine"):
    """Farthest-first traversal (Gonzalez; Sener & Savarese's core-set baseline):
    start at a seeded random point, then repeatedly take the point farthest
    from its nearest pick. Distances are euclidean in the metric's space
    (rows normalised for cosine). Returns (indices, radii, cluster sizes):
    ``radii[t]`` is the covering radius just before pick t (inf for the first).
    O(N * n_select * d) time, O(N) memory."""
    Z = np.asarray(X, dtype=np.float32)
    if metric == "cosine":
        Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    n = Z.shape[0]
    sq = np.einsum("ij,ij->i", Z, Z)
    first = int(rng.integers(0, n))
    sel = np.empty(n_select, np.int64)
    radii = np.empty(n_select, np.float64)
    owner = np.zeros(n, np.int64)
    dist = np.full(n, np.inf)
    nxt, r = first, np.inf
    for t in range(n_select):
        sel[t], radii[t] = nxt, r
        d = np.maximum(sq + sq[nxt] - 2.0 * (Z @ Z[nxt]), 0.0)
        d[nxt] = 0.0
        closer = d < dist
        dist[closer] = d[closer]
        owner[closer] = t
        dist[sel[: t + 1]] = -1.0  # never pick twice
        nxt = int(np.argmax(dist))
        r = float(np.sqrt(max(dist[nxt], 0.0)))
        dist[sel[: t + 1]] = 0.0
    weights = np.bincount(owner, minlength=n_select).astype(np.float64)
    return sel, radii, weights


def run_baseline(method: str, X, n_select: int, rng: np.random.Generator, *, metric="cosine"):
    """(indices, gains, weights) for a baseline on one group; random and
    stratified_random give uniform weights n / n_select (NaN gains)."""
    n = X.shape[0]
    if method in ("random", "stratified_random"):
        sel = np.sort(rng.choice(n, size=n_select, replace=False)).astype(np.int64)
        return sel, np.full(n_select, np.nan), np.full(n_select, n / n_select)
    if method == "k_center_greedy":
        return k_center_greedy(X, n_select, rng, metric=metric)
    raise AssertionError(method)  # names are validated before
