"""Sum redundancy: f(S) = C - sum_{a in S} sum_{b in S} s(a, b), with
C = sum_{a, b in V} s(a, b) (apricot's SumRedundancySelection; the pairs are
ordered and include a = b, so the diagonal counts once per pick).

Submodular but NOT monotone: every gain is <= 0,
``f(S + i) - f(S) = -(s(i, i) + sum_{j in S} (s(j, i) + s(i, j)))``;
greedy picks, one by one, the element least similar to what is already picked
(the first pick is the one with the smallest self-similarity, lowest index
among ties). The constant C only makes values non-negative (f(V) = 0).

The state keeps ``cur[i] = s(i, i) + sum_{j in S} (s(j, i) + s(i, j))`` in
float64; a gain is ``-cur[i]`` (O(1)), and ``cur`` only grows, so stale gains
are exact upper bounds.

An update adds row j and column j of a dense S to ``cur``. The column is a
strided walk (one cache miss per element: 10 million at N = 10,000 and 1,000
picks, most of the selection's time), so a symmetric S (checked once, exactly)
adds ``2 s(j, i)`` from the row alone: the same bits, since
``s(j, i) + s(i, j) == 2 s(j, i)`` exactly when the two are equal.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import types
from numba.extending import overload

from .._device import import_torch
from ._base import KernelObjective, SimilarityArrays, kernel_gain, kernel_update, similarity_arrays
from ._graph_cut import dense_checked, dense_column_sums, is_symmetric

__all__ = ["SumRedundancy", "TorchSumRedundancy"]

SumRedundancyState = namedtuple("SumRedundancyState", "mode S sym indptr idx data cur selected total")


def _is_state(state):
    return isinstance(state, types.BaseNamedTuple) and state.instance_class is SumRedundancyState


@overload(kernel_gain, jit_options={"nogil": True})
def _gain(state, j):
    if _is_state(state):
        def impl(state, j):
            return -state.cur[j]
        return impl


@overload(kernel_update, jit_options={"nogil": True})
def _update(state, j):
    """Add row j and column j of S to ``cur`` (dense; row j twice when S is
    symmetric), or row j of the symmetrised S + S^T kept in float64 (sparse):
    the same values."""
    if _is_state(state):
        def impl(state, j):
            cur = state.cur
            g = -cur[j]
            if state.mode == 0:
                S = state.S
                row = S[j]
                if state.sym:
                    for i in range(row.shape[0]):
                        cur[i] += 2.0 * np.float64(row[i])
                else:
                    for i in range(row.shape[0]):
                        cur[i] += np.float64(row[i]) + np.float64(S[i, j])
            else:
                idx, data = state.idx, state.data
                for p in range(state.indptr[j], state.indptr[j + 1]):
                    cur[idx[p]] += data[p]
            return g
        return impl


class SumRedundancy(KernelObjective):
    """Sum redundancy: penalises the total pairwise similarity within the set,
    ``f(S) = C - sum_{a, b in S} s(a, b)`` (C = the sum over all pairs of V).

    Parameters
    ----------
    similarity : ndarray (N, N) or scipy sparse (N, N), optional
        Non-negative similarity. It need not be symmetric: only
        ``s(a, b) + s(b, a)`` matters (a sparse one is symmetrised once, as
        float64). Missing sparse entries are 0, so a kNN graph penalises only
        near neighbours. ``None`` gives a configured objective.

    Not monotone (all gains <= 0), so greedy has no 1 - 1/e guarantee here;
    it is cheap (O(1) gains) and picks mutually dissimilar elements. Combine
    it with a coverage term (e.g. in a mixture) to avoid picking outliers.
    """

    name = "sum_redundancy"
    inputs = "similarity"
    monotone = False
    supports_sparse = True

    def __init__(self, similarity=None):
        if similarity is None:
            return
        import scipy.sparse as sp

        # dense: validated in the pass that sums it (graph cut's)
        dense = not (sp.issparse(similarity) or isinstance(similarity, SimilarityArrays))
        a = similarity_arrays(similarity, "sum redundancy", check=not dense)
        self.n = n = a.n
        self.symmetric = False
        if a.mode == 0:
            self._S = a.S
            self._diag = np.diagonal(a.S).astype(np.float64)
            csum = dense_checked(a.S, "sum redundancy") if dense else dense_column_sums(a.S)[0]
            self.constant = float(csum.sum())
            self.symmetric = bool(is_symmetric(a.S))
            self._sym = None
        else:
            M = a.csr().astype(np.float64)
            self._S = M
            self._diag = M.diagonal()
            self.constant = float(M.data.sum())
            A = (M + M.T).tocsr()
            A.sum_duplicates()
            A.sort_indices()
            self._sym = (A.indptr.astype(np.int64), A.indices.astype(np.int64), np.asarray(A.data, np.float64))
        self._mode = a.mode
        self.reset()

    def _initial_state(self):
        n = self.n
        if self._mode == 0:
            indptr, idx, data = np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
            S = self._S
        else:
            (indptr, idx, data), S = self._sym, np.zeros((0, 0), np.float64)
        return SumRedundancyState(self._mode, S, self.symmetric, indptr, idx, data, self._diag.copy(),
                                  np.zeros(n, np.bool_), np.full(1, self.constant, np.float64))

    @property
    def mode(self) -> int:
        return self._mode

    @property
    def redundancy(self) -> np.ndarray:
        """-gain of every element: s(i, i) + sum_{j in S} (s(j, i) + s(i, j))."""
        return self.state.cur

    def evaluate(self, indices) -> float:
        """f(indices) from scratch (does not touch the current state)."""
        self._require_bound()
        indices = np.unique(np.asarray(indices, dtype=np.int64).ravel())
        if indices.size == 0:
            return self.constant
        if self._mode == 0:
            inner = self._S[np.ix_(indices, indices)].sum(dtype=np.float64)
        else:
            inner = float(self._S[indices][:, indices].sum())
        return float(self.constant - inner)

    def to_torch(self, device: str = "cuda"):
        self._require_bound()
        return TorchSumRedundancy(self, device)


class TorchSumRedundancy:
    """:class:`SumRedundancy` with tensors on ``device`` (the Objective protocol)."""

    def __init__(self, base: SumRedundancy, device: str = "cuda"):
        torch = self._torch = import_torch()
        self.n = base.n
        self.device = torch.device(device)
        self.dense = base.mode == 0
        if self.dense:
            self.S = torch.as_tensor(base._S, device=self.device)
        else:
            indptr, idx, data = base._sym
            self.indptr = indptr
            self.idx = torch.as_tensor(idx, device=self.device)
            self.data = torch.as_tensor(data, device=self.device)
        self.cur = torch.as_tensor(base._diag.copy(), device=self.device)
        self._value = base.constant

    @property
    def value(self) -> float:
        return self._value

    def gains(self, candidates) -> np.ndarray:
        cands = self._torch.as_tensor(np.asarray(candidates, dtype=np.int64), device=self.device)
        return (-self.cur[cands]).cpu().numpy()

    def update(self, index: int) -> None:
        torch = self._torch
        j = int(index)
        with torch.inference_mode():
            self._value -= float(self.cur[j].item())
            if self.dense:
                self.cur += self.S[j].double() + self.S[:, j].double()
            else:
                lo, hi = int(self.indptr[j]), int(self.indptr[j + 1])
                self.cur[self.idx[lo:hi]] += self.data[lo:hi]
