"""Graph cut: f(S) = sum_{i in V} sum_{j in S} s(j, i) - lambda_ * sum_{a in S} sum_{b in S} s(a, b).

The first term rewards picks that are similar to much of the ground set
(coverage, a modular term: ``r_j = sum_i s(j, i)``, the row sum of candidate
``j``); the second penalises similarity among the picks (diversity). The gain
of ``j`` is ``r_j - lambda_ * (s(j, j) + pen_j)`` with
``pen_j = sum_{a in S} (s(j, a) + s(a, j))``: O(1) per candidate, and adding
a pick adds its row (and column) to ``pen`` in O(N) (O(nnz of the row) on a
sparse graph).

The formula sums over ordered pairs, so it is defined for any non-negative
``s``: on an asymmetric one (a kNN graph) the penalty is that of the
symmetrised ``(s + s^T) / 2`` and the coverage term keeps the rows as given
(row = candidate: what the candidate covers). Nothing is symmetrised or
dropped; on a symmetric input this is exactly submodlib's GraphCutFunction.

Gains are float64 in a fixed order: ``pen`` only grows (non-negative terms)
and ``lambda_ >= 0``, so a stale gain is an exact upper bound of the fresh one
in floating point and lazy greedy returns exactly what naive greedy returns.
"""

from __future__ import annotations

import copy as _copy
from collections import namedtuple

import numpy as np
from numba import njit, types
from numba.extending import overload

from .._validation import check_float
from ._base import (KernelObjective, SimilarityArrays, _check_values, kernel_gain, kernel_update,
                    similarity_arrays)

__all__ = ["GraphCut"]

GraphCutState = namedtuple(
    "GraphCutState", "mode sym S indptr idx data tindptr tidx tdata rsum diag pen lam selected total")


def _is_state(state):
    return isinstance(state, types.BaseNamedTuple) and state.instance_class is GraphCutState


@overload(kernel_gain, jit_options={"nogil": True})
def _gain(state, j):
    if _is_state(state):
        def impl(state, j):
            return state.rsum[j] - state.lam * (state.diag[j] + state.pen[j])
        return impl


@overload(kernel_update, jit_options={"nogil": True})
def _update(state, j):
    """Add row j (and column j) of s to ``pen``; return the gain of j."""
    if _is_state(state):
        def impl(state, j):
            g = state.rsum[j] - state.lam * (state.diag[j] + state.pen[j])
            pen = state.pen
            if state.mode == 0:
                row = state.S[j]
                if state.sym:
                    for i in range(row.shape[0]):
                        pen[i] += 2.0 * np.float64(row[i])
                else:
                    S = state.S
                    for i in range(row.shape[0]):
                        pen[i] += np.float64(row[i]) + np.float64(S[i, j])
            else:
                idx, data = state.idx, state.data
                if state.sym:
                    for p in range(state.indptr[j], state.indptr[j + 1]):
                        pen[idx[p]] += 2.0 * np.float64(data[p])
                else:
                    for p in range(state.indptr[j], state.indptr[j + 1]):
                        pen[idx[p]] += np.float64(data[p])
                    tidx, tdata = state.tidx, state.tdata
                    for p in range(state.tindptr[j], state.tindptr[j + 1]):
                        pen[tidx[p]] += np.float64(tdata[p])
            return g
        return impl


@njit(cache=True, nogil=True)
def max_asymmetry(S):
    """max |S[i, j] - S[j, i]| of a dense square matrix, in 64 x 64 tiles."""
    n = S.shape[0]
    worst = 0.0
    for bi in range(0, n, 64):
        for bj in range(bi, n, 64):
            for i in range(bi, min(bi + 64, n)):
                for j in range(max(bj, i + 1), min(bj + 64, n)):
                    d = abs(np.float64(S[i, j]) - np.float64(S[j, i]))
                    if d > worst:
                        worst = d
    return worst


@njit(cache=True, nogil=True)
def is_symmetric(S):
    """``S == S.T`` exactly (float comparison), without a transposed copy: pairs of
    1024 x 1024 tiles compared in 16 x 16 micro-tiles (the transposed reads stay
    in cache); stops at the first tile pair that differs."""
    n = S.shape[0]
    for bi in range(0, n, 1024):
        ie = min(bi + 1024, n)
        for bj in range(bi, n, 1024):
            je = min(bj + 1024, n)
            bad = 0
            for mi in range(bi, ie, 16):
                mie = min(mi + 16, ie)
                for mj in range(max(mi, bj), je, 16):
                    mje = min(mj + 16, je)
                    A = S[mi:mie, mj:mje]
                    B = S[mj:mje, mi:mie]
                    for r in range(A.shape[0]):
                        a = A[r]
                        for q in range(a.shape[0]):
                            bad += a[q] != B[q, r]
            if bad:
                return False
    return True


@njit(cache=True, nogil=True)
def dense_column_sums(S):
    """(column sums in float64, rows added in index order; the number of entries < 0),
    streaming the rows eight at a time (one pass over S). A NaN or inf entry makes
    its column's sum non-finite. On a symmetric S the column sums are the row sums
    bit for bit (the same numbers added in the same order)."""
    n, m = S.shape
    c = np.zeros(m, np.float64)
    neg = 0
    j = 0
    while j + 8 <= n:
        r0, r1, r2, r3 = S[j], S[j + 1], S[j + 2], S[j + 3]
        r4, r5, r6, r7 = S[j + 4], S[j + 5], S[j + 6], S[j + 7]
        ng = 0
        for i in range(m):
            a0, a1, a2, a3 = np.float64(r0[i]), np.float64(r1[i]), np.float64(r2[i]), np.float64(r3[i])
            a4, a5, a6, a7 = np.float64(r4[i]), np.float64(r5[i]), np.float64(r6[i]), np.float64(r7[i])
            c[i] = (((((((c[i] + a0) + a1) + a2) + a3) + a4) + a5) + a6) + a7
            ng += ((a0 < 0.0) + (a1 < 0.0) + (a2 < 0.0) + (a3 < 0.0)
                   + (a4 < 0.0) + (a5 < 0.0) + (a6 < 0.0) + (a7 < 0.0))
        neg += ng
        j += 8
    while j < n:
        r0 = S[j]
        for i in range(m):
            a0 = np.float64(r0[i])
            c[i] += a0
            neg += a0 < 0.0
        j += 1
    return c, neg


@njit(cache=True, nogil=True)
def dense_row_sums(S):
    """Row sums in float64, each row summed in index order (eight rows at a time:
    eight independent running sums)."""
    n, m = S.shape
    r = np.zeros(n, np.float64)
    j = 0
    while j + 8 <= n:
        r0, r1, r2, r3 = S[j], S[j + 1], S[j + 2], S[j + 3]
        r4, r5, r6, r7 = S[j + 4], S[j + 5], S[j + 6], S[j + 7]
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        for i in range(m):
            s0 += np.float64(r0[i])
            s1 += np.float64(r1[i])
            s2 += np.float64(r2[i])
            s3 += np.float64(r3[i])
            s4 += np.float64(r4[i])
            s5 += np.float64(r5[i])
            s6 += np.float64(r6[i])
            s7 += np.float64(r7[i])
        r[j], r[j + 1], r[j + 2], r[j + 3] = s0, s1, s2, s3
        r[j + 4], r[j + 5], r[j + 6], r[j + 7] = s4, s5, s6, s7
        j += 8
    while j < n:
        row = S[j]
        s = 0.0
        for i in range(m):
            s += np.float64(row[i])
        r[j] = s
        j += 1
    return r


def dense_checked(S, who):
    """Validate a dense similarity (finite, non-negative: the messages of
    :func:`similarity_arrays`) in one streaming pass that also returns its
    column sums; the exact check runs only when the pass flags something."""
    csum, neg = dense_column_sums(S)
    if neg or not np.isfinite(csum).all():
        _check_values(S, who)  # raises, unless only -0.0 entries or a float64 overflow of the sums
    return csum


@njit(cache=True, nogil=True)
def _csr_sums(n, indptr, idx, data):
    r = np.zeros(n, np.float64)
    c = np.zeros(n, np.float64)
    d = np.zeros(n, np.float64)
    for j in range(n):
        acc = 0.0
        for p in range(indptr[j], indptr[j + 1]):
            v = np.float64(data[p])
            acc += v
            c[idx[p]] += v
            if idx[p] == j:
                d[j] = v
        r[j] = acc
    return r, c, d


class MonotoneFlag:
    """A ``monotone`` class attribute that depends on the hyperparameters (and
    the data): read on the class, ``default`` (the answer for the default
    configuration); read on an instance, ``instance.is_monotone()``."""

    def __init__(self, default: bool):
        self.default = default

    def __get__(self, obj, cls=None):
        if obj is None:
            return self.default
        return obj.is_monotone()


class GraphCut(KernelObjective):
    """Graph cut over a non-negative similarity: coverage of the ground set
    minus ``lambda_`` times the similarity among the picks.

    Parameters
    ----------
    similarity : ndarray (N, N) or scipy sparse (N, N), optional
        ``similarity[j, i]`` is how well candidate ``j`` represents point ``i``
        (row = candidate). Dense or sparse (a kNN graph; missing entries are
        0). Need not be symmetric (see the module doc). ``None`` gives a
        configured, unbound objective.
    lambda_ : float >= 0, default 0.5
        Weight of the redundancy penalty (submodlib's ``lambdaVal``; apricot's
        ``alpha`` is ``1 / lambda_``, with apricot's values ``alpha`` times
        ours). 0 is the modular "densest points" ranking; larger values favour
        diversity. Monotone for ``lambda_ <= 0.5`` on a symmetric similarity.
    """

    name = "graph_cut"
    inputs = "similarity"
    #: on the class: the default configuration (lambda_=0.5, symmetric s);
    #: on an instance: :meth:`is_monotone`
    monotone = MonotoneFlag(True)
    supports_sparse = True

    def __init__(self, similarity=None, *, lambda_: float = 0.5):
        self.lambda_ = check_float(lambda_, "lambda_", low=0.0)
        if similarity is None:
            return
        import scipy.sparse as sp

        dense = not (sp.issparse(similarity) or isinstance(similarity, SimilarityArrays))
        # dense: validated below, in the pass that sums the columns
        a = self._arrays = similarity_arrays(similarity, "graph cut", check=not dense)
        self.n = n = a.n
        if a.mode == 0:
            S = a.S
            self._csum = dense_checked(S, "graph cut") if dense else dense_column_sums(S)[0]
            self.symmetric = is_symmetric(S)
            # symmetric: the row sums are the column sums, bit for bit
            self._rsum = self._csum if self.symmetric else dense_row_sums(S)
            self._diag = np.array(S.diagonal(), dtype=np.float64)  # a copy: S.diagonal() is a read-only view
            self._t = (np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, a.dtype))
        else:
            M = a.csr().copy()
            M.sort_indices()
            T = M.T.tocsr()
            T.sort_indices()
            self.symmetric = (np.array_equal(M.indptr, T.indptr) and np.array_equal(M.indices, T.indices)
                              and np.array_equal(M.data, T.data))
            self._rsum, self._csum, self._diag = _csr_sums(n, a.indptr, a.idx, a.data)
            if self.symmetric:  # the transpose is the matrix: only rows are read
                self._t = (np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, a.dtype))
            else:
                self._t = (T.indptr.astype(np.int64), T.indices.astype(np.int64), np.asarray(T.data, a.dtype))
        self.reset()

    def _initial_state(self):
        a = self._arrays
        n = a.n
        return GraphCutState(a.mode, bool(self.symmetric), a.S, a.indptr, a.idx, a.data, *self._t,
                             self._rsum, self._diag, np.zeros(n, np.float64), float(self.lambda_),
                             np.zeros(n, np.bool_), np.zeros(1, np.float64))

    def is_monotone(self) -> bool:
        """Whether f(A) <= f(B) for every A subset of B.

        Unbound: ``lambda_ <= 0.5`` (true for every symmetric non-negative
        similarity). Bound: exactly, for this similarity: the smallest gain of
        ``j`` is at S = V - {j}, ``r_j - lambda_ * (r_j + c_j - s_jj)`` (``c_j``
        the column sum), and f is monotone iff that is >= 0 for every j (up to
        1e-9 relative rounding)."""
        if not self.is_bound:
            return self.lambda_ <= 0.5
        r, c, d = self._rsum, self._csum, self._diag
        worst = r - self.lambda_ * (r + c - d)
        return bool(np.all(worst >= -1e-9 * np.maximum(1.0, np.abs(r) + np.abs(c))))

    def copy(self) -> "GraphCut":
        """An independent copy (the similarity shared, ``pen`` copied)."""
        new = _copy.copy(self)
        if self.state is not None:
            st = self.state
            new.state = st._replace(pen=st.pen.copy(), selected=st.selected.copy(), total=st.total.copy())
        return new

    @property
    def row_sums(self) -> np.ndarray:
        """``r_j = sum_i s(j, i)``: the coverage term of each candidate (float64)."""
        return self._rsum

    def evaluate(self, indices) -> float:
        """f(indices) from scratch (does not touch the current state)."""
        self._require_bound()
        ix = np.unique(np.asarray(indices, dtype=np.int64).ravel())
        if ix.size == 0:
            return 0.0
        a = self._arrays
        if a.mode == 0:
            block = np.asarray(a.S[np.ix_(ix, ix)], dtype=np.float64).sum()
        else:
            block = float(a.csr()[ix][:, ix].astype(np.float64).sum())
        return float(self._rsum[ix].sum() - self.lambda_ * block)

    def to_torch(self, device: str = "cuda"):
        from ._graph_cut_torch import TorchGraphCut

        self._require_bound()
        return TorchGraphCut(self, device)
