"""How many near duplicates the approximate search found: an exact check on a
seeded sample of rows.

Every pair of a sampled row ``q`` and another row ``j`` whose similarity is at
or above the threshold (``j`` not identical to ``q``: identical rows are
grouped by their hash whatever the search does) is a near-duplicate pair; it
was found when ``q`` and ``j`` ended in the same group. The estimate is the
share of those pairs found. It costs one exact product of the sampled rows
with every row (``n_samples x N x d``, in row blocks).
"""

from __future__ import annotations

import math

import numpy as np

from ..exceptions import ValidationError

__all__ = ["estimate_recall"]

#: rows of X per product with the sample (1,000 x 8,192 float32: 32 MiB)
_BLOCK_ROWS = 1 << 13


def estimate_recall(X, labels, threshold, *, metric="cosine", gamma=None, n_samples=1000, random_state=0) -> dict:
    """Recall of a grouping ``labels`` (the group of every row of ``X``, as
    ``DedupSelector.labels_``) at ``threshold``, from ``n_samples`` seeded
    rows checked exactly against every row. Returns ``recall`` (found / pairs;
    1.0 when the sample holds no pair), ``pairs``, ``found`` and ``rows`` (the
    number of sampled rows)."""
    n = X.shape[0]
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValidationError(f"labels must hold one group per row of X ({n}); got shape {labels.shape}")
    if metric not in ("cosine", "euclidean"):
        raise ValidationError(f"metric must be cosine or euclidean; got {metric!r}")
    if metric == "euclidean" and (gamma is None or not gamma > 0):
        raise ValidationError(f"metric='euclidean' needs the kernel width gamma > 0; got {gamma!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValidationError(f"n_samples must be an integer in [1, inf]; got {n_samples!r}")
    rng = np.random.default_rng(random_state)
    rows = np.arange(n) if n <= n_samples else np.sort(rng.choice(n, size=int(n_samples), replace=False))
    Q = _space(np.asarray(X[rows]), metric)
    sq_q = np.einsum("ij,ij->i", Q, Q)
    # cosine: <u, v> >= t; euclidean: |x - y|^2 <= -ln(t) / gamma
    r2 = -math.log(threshold) / gamma if metric == "euclidean" else None
    pairs = found = 0
    for start in range(0, n, _BLOCK_ROWS):
        B = np.asarray(X[start:start + _BLOCK_ROWS])
        Bs = _space(B, metric)
        G = Q @ Bs.T
        if metric == "euclidean":
            G = sq_q[:, None] + np.einsum("ij,ij->i", Bs, Bs)[None, :] - 2.0 * G  # squared distances
            cols = np.flatnonzero(G.min(axis=0) <= r2)
            qi, c = np.nonzero(G[:, cols] <= r2)
        else:
            # most columns hold no hit: a reduction finds the few that do (at 10^6 rows a nonzero over
            # every whole block took longer than the products; CPU 6.6-7.0 s -> 4.2-4.7 s)
            cols = np.flatnonzero(G.max(axis=0) >= np.float32(threshold))
            qi, c = np.nonzero(G[:, cols] >= np.float32(threshold))
        bj = cols[c]
        j = bj + start
        other = j != rows[qi]
        qi, bj, j = qi[other], bj[other], j[other]
        same = (B[bj] == np.asarray(X[rows[qi]])).all(axis=1)  # identical rows: the hash's, not the search's
        qi, j = qi[~same], j[~same]
        pairs += qi.size
        found += int((labels[rows[qi]] == labels[j]).sum())
    return {"recall": found / pairs if pairs else 1.0, "pairs": int(pairs), "found": int(found), "rows": int(rows.size)}


def _space(B, metric):
    """Rows in the threshold's space, float32: unit rows (cosine, as the search
    normalises them) or as they are."""
    if metric == "cosine":
        from ..similarity import unit_rows as _unit_rows

        return _unit_rows(B)[0]
    return np.asarray(B, dtype=np.float32)
