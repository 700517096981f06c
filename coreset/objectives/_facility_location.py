"""Facility location: f(S) = sum_i max_{j in S} s(j, i), on a dense block or a
sparse kNN graph (missing entries are 0).

Gains are float64 sums over the candidate's row in a fixed order, so they are
bit-for-bit the same whoever computes them (naive or lazy): ``max(0, s - cur)``
is monotone in ``cur`` and so is the rounded sum, hence stale gains are exact
upper bounds and lazy greedy returns exactly what naive greedy returns.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._base import KernelObjective, kernel_gain, kernel_update, similarity_arrays

__all__ = ["FacilityLocation"]

FacilityLocationState = namedtuple(
    "FacilityLocationState", "mode S indptr idx data cur assign selected total")


def _is_state(state):
    return isinstance(state, types.BaseNamedTuple) and state.instance_class is FacilityLocationState


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _gain_dense(row, cur):
    g = 0.0
    for i in range(row.shape[0]):
        g += max(np.float64(row[i]) - cur[i], 0.0)
    return g


@njit(cache=True, nogil=True)
def _gain_sparse(lo, hi, idx, data, cur):
    g = 0.0
    for p in range(lo, hi):
        d = np.float64(data[p]) - cur[idx[p]]
        if d > 0.0:
            g += d
    return g


# inlined into the optimizer loops, so the state's field reads need no reference
# counting per gain; the sums run in the two helpers (the dense one with fastmath)
@overload(kernel_gain, jit_options={"nogil": True}, inline="always")
def _gain(state, j):
    if _is_state(state):
        def impl(state, j):
            if state.mode == 0:
                return _gain_dense(state.S[j], state.cur)
            return _gain_sparse(state.indptr[j], state.indptr[j + 1], state.idx, state.data, state.cur)
        return impl


@overload(kernel_update, jit_options={"nogil": True})
def _update(state, j):
    """Raise ``cur`` and record j as the representative of the points it now
    covers best (strictly better: earlier picks keep ties)."""
    if _is_state(state):
        def impl(state, j):
            cur, assign = state.cur, state.assign
            g = 0.0
            if state.mode == 0:
                row = state.S[j]
                for i in range(row.shape[0]):
                    v = np.float64(row[i])
                    if v > cur[i]:
                        g += v - cur[i]
                        cur[i] = v
                        assign[i] = j
            else:
                idx, data = state.idx, state.data
                for p in range(state.indptr[j], state.indptr[j + 1]):
                    i = idx[p]
                    v = np.float64(data[p])
                    if v > cur[i]:
                        g += v - cur[i]
                        cur[i] = v
                        assign[i] = j
            return g
        return impl


class FacilityLocation(KernelObjective):
    """Facility location over a non-negative similarity: how well the picks
    represent every point, each point by its most similar pick.

    Parameters
    ----------
    similarity : ndarray (N, N) or scipy sparse (N, N), optional
        ``similarity[j, i]`` is how well candidate ``j`` represents point ``i``
        (row = candidate). Dense float32/float64 is kept as is; sparse is
        stored as CSR with int64 indices, whatever index dtype came in.
        Negative or non-finite entries are rejected. ``None`` gives a
        configured, unbound objective (``bind`` it later).

    After selection ``assign[i]`` is the pick that represents point ``i``
    (-1 when no pick has a positive similarity to it): CRAIG's weights are
    the sizes of these clusters.
    """

    name = "facility_location"
    inputs = "similarity"
    monotone = True
    supports_sparse = True

    def __init__(self, similarity=None):
        if similarity is None:
            return
        self._arrays = similarity_arrays(similarity, "facility location")
        self.n = self._arrays.n
        self.reset()

    def _initial_state(self):
        a = self._arrays
        n = a.n
        return FacilityLocationState(a.mode, a.S, a.indptr, a.idx, a.data, np.zeros(n, np.float64),
                                     np.full(n, -1, np.int64), np.zeros(n, np.bool_), np.zeros(1, np.float64))

    @property
    def mode(self) -> int:
        return self._arrays.mode

    @property
    def cur(self) -> np.ndarray:
        return self.state.cur

    @property
    def assign(self) -> np.ndarray:
        return self.state.assign

    @property
    def value(self) -> float:
        self._require_bound()
        return float(self.state.cur.sum())

    def _gain_work(self) -> int:
        return self.n if self.mode == 0 else 0  # a dense gain reads row j and ``cur``; writes nothing

    def evaluate(self, indices) -> float:
        """f(indices) from scratch (does not touch the current state)."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size == 0:
            return 0.0
        a = self._arrays
        if a.mode == 0:
            return float(np.asarray(a.S[indices], dtype=np.float64).max(0).sum())
        return float(np.asarray(a.csr()[indices].max(0).todense(), dtype=np.float64).sum())

    def to_torch(self, device: str = "cuda"):
        from ._facility_location_torch import TorchFacilityLocation

        return TorchFacilityLocation(self, device)
