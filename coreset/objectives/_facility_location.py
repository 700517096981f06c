"""Facility location: f(S) = sum_i max_{j in S} s(i, j), on a dense block or a
sparse kNN graph (missing entries are 0)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..exceptions import ValidationError

__all__ = ["FacilityLocation"]


class FacilityLocation:
    """Facility location over a non-negative similarity.

    Parameters
    ----------
    similarity : ndarray (N, N) or scipy sparse (N, N)
        ``similarity[j, i]`` is how well candidate ``j`` represents point ``i``
        (row = candidate). Dense float32/float64 is kept as is; sparse is
        stored as CSR with int64 indices, whatever index dtype came in.
        Negative or non-finite entries are rejected (``check=False`` skips
        the scan for callers that validated already).

    Use :meth:`from_knn` for a kNN graph ``(indices, similarities)`` whose row
    ``i`` lists the neighbours of point ``i``: it is transposed once so each
    candidate's row lists the points it covers.
    """

    def __init__(self, similarity, *, check: bool = True):
        if sp.issparse(similarity):
            M = sp.csr_matrix(similarity)
            if M.ndim != 2 or M.shape[0] != M.shape[1]:
                raise ValidationError(f"similarity must be square (N x N); got shape {M.shape}")
            M.sum_duplicates()
            data = np.asarray(M.data)
            if data.dtype not in (np.float32, np.float64):
                data = data.astype(np.float32)
            if check:
                self._check_values(data)
            self.mode = 1
            self.S = np.zeros((0, 0), data.dtype)
            self.indptr = M.indptr.astype(np.int64)
            self.idx = M.indices.astype(np.int64)
            self.data = data
            self.n = M.shape[0]
        else:
            S = np.asarray(similarity)
            if S.ndim != 2 or S.shape[0] != S.shape[1]:
                raise ValidationError(f"similarity must be square (N x N); got shape {S.shape}")
            if S.dtype not in (np.float32, np.float64):
                if not np.issubdtype(S.dtype, np.number):
                    raise ValidationError(f"similarity must be numeric; got dtype {S.dtype}")
                S = S.astype(np.float32)
            if check:
                self._check_values(S)
            self.mode = 0
            self.S = np.ascontiguousarray(S)
            self.indptr = np.zeros(1, np.int64)
            self.idx = np.zeros(0, np.int64)
            self.data = np.zeros(0, S.dtype)
            self.n = S.shape[0]
        if self.n == 0:
            raise ValidationError("similarity is empty (0 x 0)")
        self.reset()

    @staticmethod
    def _check_values(a):
        if a.size and not np.isfinite(a).all():
            raise ValidationError("similarity must be finite; found NaN or inf")
        if a.size and a.min() < 0:
            raise ValidationError(
                f"similarity must be non-negative for facility location; found minimum {a.min():.6g}"
            )

    @classmethod
    def from_knn(cls, indices: np.ndarray, similarities: np.ndarray) -> "FacilityLocation":
        n, k = indices.shape
        rows = np.repeat(np.arange(n, dtype=np.int64), k)
        G = sp.csr_matrix((similarities.ravel(), (rows, indices.ravel())), shape=(n, n))
        return cls(G.T.tocsr())

    def reset(self) -> None:
        self.cur = np.zeros(self.n, np.float64)
        self.assign = np.full(self.n, -1, np.int64)
        self.selected = np.zeros(self.n, np.bool_)

    # -- the Objective protocol ------------------------------------------------
    @property
    def value(self) -> float:
        return float(self.cur.sum())

    def gains(self, candidates) -> np.ndarray:
        from ..optimizers._kernels import gains_many

        cands = np.ascontiguousarray(candidates, dtype=np.int64)
        return gains_many(self.mode, self.S, self.indptr, self.idx, self.data, self.cur, cands)

    def update(self, index: int) -> None:
        from ..optimizers._kernels import update_one

        update_one(self.mode, self.S, self.indptr, self.idx, self.data, self.cur, self.assign, int(index))
        self.selected[int(index)] = True

    # -- fused kernels (used by the optimizers when present) ---------------------
    def kernel_args(self):
        """Arrays the numba greedy kernels take: (mode, S, indptr, idx, data, cur, assign)."""
        return self.mode, self.S, self.indptr, self.idx, self.data, self.cur, self.assign

    def evaluate(self, indices) -> float:
        """f(indices) from scratch (does not touch the current state)."""
        indices = np.asarray(indices, dtype=np.int64)
        if self.mode == 0:
            if indices.size == 0:
                return 0.0
            return float(np.asarray(self.S[indices], dtype=np.float64).max(0).sum())
        M = sp.csr_matrix((self.data, self.idx, self.indptr), shape=(self.n, self.n))
        if indices.size == 0:
            return 0.0
        return float(np.asarray(M[indices].max(0).todense(), dtype=np.float64).sum())
