"""The Sieve-Streaming++ state: the one implementation behind
:class:`~coreset.optimizers.SieveStreaming`, ``coreset.select_stream`` and
``SubmodularSelector.partial_fit``.

* **The rules** (``_sieve_kernels``: ``window``, ``drop_below``,
  ``open_slot``, ``admits``, ``record``, ``use_sieve``): plain functions over
  the arrays of :class:`SieveSlots`. The in-memory optimizer calls them from
  Python; the chunk kernel (compiled by numba) inlines the same functions.
  They are written once.
* **The state** (:class:`SieveState`): facility location against a fixed
  reservoir of unit rows. Typed parts: the sieves (:class:`SieveSlots`), one
  coverage vector per sieve (``cur``), the kept candidates
  (:class:`CandidatePool`: row ids, top-``m`` reservoir neighbours, their
  similarities and vectors), the reservoir and its search index.
  :meth:`SieveState.to_arrays` / :meth:`SieveState.from_arrays` are the
  checkpoint layout (validated by :func:`coreset._checkpoint.check_sieve_state`).

Memory: the reservoir (``r x d``), one coverage vector of ``r`` float32 per
live sieve, the kept candidates (``O(k / epsilon)``, Sieve-Streaming++) and one
chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._defaults import RESERVOIR
from .._defaults import STREAM_NEIGHBORS as N_NEIGHBORS
from ..exceptions import DegenerateInputError, ValidationError
from ._sieve_kernels import EMPTY, drop_below, greedy_sparse, n_slots, sieve_chunk, use_sieve, window

__all__ = ["SieveSlots", "CandidatePool", "SieveState", "n_slots", "window", "normalise", "EMPTY", "RESERVOIR",
           "N_NEIGHBORS", "EXACT_RESERVOIR", "N_PROBE"]

#: reservoirs up to this size are searched exactly; larger ones with an IVF index
EXACT_RESERVOIR = 4096
#: IVF lists probed per row (of 4 sqrt(reservoir))
N_PROBE = 16


@dataclass
class SieveSlots:
    """The sieves: one per live threshold exponent ``e``, in slot ``e % T``.
    ``scal = [Delta, LB]`` (largest singleton value, best sieve value);
    ``expo[q]`` the exponent (EMPTY when unused), ``size[q]`` / ``members[q]``
    its members (element ids or pool slots), ``val[q]`` its value."""

    k: int
    epsilon: float
    scal: np.ndarray
    expo: np.ndarray
    size: np.ndarray
    members: np.ndarray
    val: np.ndarray

    @classmethod
    def empty(cls, k: int, epsilon: float) -> "SieveSlots":
        T = n_slots(k, epsilon)
        return cls(int(k), float(epsilon), np.zeros(2, np.float64), np.full(T, EMPTY, np.int64),
                   np.zeros(T, np.int64), np.zeros((T, k), np.int64), np.zeros(T, np.float64))

    @property
    def T(self) -> int:
        return int(self.expo.shape[0])

    def live(self) -> np.ndarray:
        """Slots of the live sieves, ascending."""
        return np.flatnonzero(self.expo != EMPTY)

    def observe(self, single: float) -> tuple[int, int]:
        """A new element's singleton value: Delta grows, sieves below the
        window are dropped; returns the live exponents ``(lo, hi)``."""
        if single > self.scal[0]:
            self.scal[0] = single
        lo, hi = window(self.scal[0], self.scal[1], self.k, self.epsilon)
        if self.scal[0] > 0:
            drop_below(lo, self.expo)
        return lo, hi

    def best(self) -> tuple[int, float]:
        """``(slot, value)`` of the best live sieve (the lowest slot on ties), ``(-1, -1.0)`` when none."""
        best_q, best_v = -1, -1.0
        for q in self.live():
            if self.val[q] > best_v:
                best_q, best_v = int(q), float(self.val[q])
        return best_q, best_v


@dataclass
class CandidatePool:
    """Rows some sieve accepted, or among the first ``k`` (the fallback
    candidates): their row ids, top-``m`` reservoir neighbours and
    similarities, and unit vectors. ``count[0]`` slots are used."""

    row: np.ndarray
    nbr: np.ndarray
    sim: np.ndarray
    X: np.ndarray
    count: np.ndarray

    @classmethod
    def empty(cls, cap: int, m: int, d: int) -> "CandidatePool":
        return cls(np.zeros(cap, np.int64), np.zeros((cap, m), np.int64), np.zeros((cap, m), np.float32),
                   np.zeros((cap, d), np.float32), np.zeros(1, np.int64))

    @property
    def n(self) -> int:
        return int(self.count[0])

    def resize(self, cap: int) -> None:
        """Buffers of ``cap`` slots, the used ones kept."""
        n = self.n
        for name in ("row", "nbr", "sim", "X"):
            v = getattr(self, name)
            buf = np.zeros((cap,) + v.shape[1:], v.dtype)
            buf[:n] = v[:n]
            setattr(self, name, buf)

    def keep(self, mask: np.ndarray) -> np.ndarray:
        """Keep the used slots where ``mask``; returns each old slot's new position."""
        new_pos = np.cumsum(mask) - 1
        n = int(mask.sum())
        for name in ("row", "nbr", "sim", "X"):
            v = getattr(self, name)
            v[:n] = v[:mask.size][mask]
        self.count[0] = n
        return new_pos


def normalise(X: np.ndarray, what: str) -> np.ndarray:
    """Unit rows (float32) for cosine similarity; a zero row is an error naming ``what``."""
    X = np.asarray(X, np.float32)
    norms = np.linalg.norm(X, axis=1)
    bad = np.flatnonzero(norms == 0)
    if bad.size:
        raise DegenerateInputError(f"{what}: row {int(bad[0])} is all zeros; cosine similarity is undefined for it")
    return np.ascontiguousarray(X / norms[:, None])


class SieveState:
    """Sieve-Streaming++ on facility location (cosine) over a fixed reservoir.

    ``start(reservoir, rows)`` fixes the ground set; ``feed(Xn, first_row)``
    runs the unit rows of one chunk; ``finish(n_seen)`` returns the picks.
    ``to_arrays()`` / ``from_arrays(...)`` save and restore it exactly.
    """

    def __init__(self, n_select: int, epsilon: float = 0.1, n_neighbors: int = N_NEIGHBORS,
                 final_greedy: bool = True):
        self.k, self.epsilon, self.n_neighbors = int(n_select), float(epsilon), int(n_neighbors)
        self.final_greedy = bool(final_greedy)
        self.slots = SieveSlots.empty(self.k, self.epsilon)
        self.reservoir = self.reservoir_rows = self.cur = self.pool = None
        self.ivf_centroids: np.ndarray | None = None
        self.m = 0
        self._index = None

    # -- setup / state ---------------------------------------------------------------
    def start(self, reservoir: np.ndarray, reservoir_rows: np.ndarray, normalised: bool = False) -> "SieveState":
        R = np.ascontiguousarray(reservoir, np.float32) if normalised else normalise(reservoir, "the reservoir")
        r, d = R.shape
        self.reservoir, self.reservoir_rows = R, np.asarray(reservoir_rows, np.int64)
        self.m = min(self.n_neighbors, r)
        self.slots = SieveSlots.empty(self.k, self.epsilon)
        self.cur = np.zeros((self.slots.T, r), np.float32)
        self.pool = CandidatePool.empty(max(4 * self.k, 1024), self.m, d)
        self.ivf_centroids, self._index = None, None
        return self

    @property
    def started(self) -> bool:
        return self.reservoir is not None

    @property
    def running_value(self) -> float:
        """LB: the best sieve's value on the reservoir so far."""
        return float(self.slots.scal[1])

    def to_arrays(self) -> dict:
        """The checkpoint's arrays (names: ``coreset._checkpoint``)."""
        s, p, n = self.slots, self.pool, self.pool.n
        out = {"scal": s.scal, "cur": self.cur, "size": s.size, "members": s.members, "val": s.val, "expo": s.expo,
               "pool_row": p.row[:n], "pool_nbr": p.nbr[:n], "pool_sim": p.sim[:n], "pool_X": p.X[:n],
               "pool_n": p.count, "reservoir": self.reservoir, "reservoir_rows": self.reservoir_rows}
        if self._index is None and self.reservoir.shape[0] > EXACT_RESERVOIR:
            self._index = self._build_index()  # trains the IVF centroids, which the checkpoint keeps
        if self.ivf_centroids is not None:
            out["ivf_centroids"] = self.ivf_centroids
        return out

    @classmethod
    def from_arrays(cls, a: dict, n_select: int, epsilon: float, n_neighbors: int,
                    final_greedy: bool = True) -> "SieveState":
        """The state saved by :meth:`to_arrays` (validated first:
        :func:`coreset._checkpoint.check_sieve_state`)."""
        self = cls(n_select, epsilon, n_neighbors, final_greedy)
        self.reservoir = np.ascontiguousarray(a["reservoir"], np.float32)
        self.reservoir_rows = a["reservoir_rows"].astype(np.int64)
        self.ivf_centroids = np.array(a["ivf_centroids"]) if "ivf_centroids" in a else None
        self.m = min(self.n_neighbors, self.reservoir.shape[0])
        self.slots = SieveSlots(self.k, self.epsilon, *(np.array(a[k]) for k in ("scal", "expo", "size", "members",
                                                                                  "val")))
        self.cur = np.array(a["cur"])
        n = int(a["pool_n"][0])
        self.pool = CandidatePool(*(np.array(a[k]) for k in ("pool_row", "pool_nbr", "pool_sim", "pool_X",
                                                              "pool_n")))
        self.pool.resize(max(4 * self.k, 1024, 2 * n))
        return self

    # -- streaming ---------------------------------------------------------------------
    def search(self, Xn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top-``m`` reservoir neighbours (inner product of unit rows) of each
        row; in blocks of rows of about ``CALL_WORK`` multiply-adds, so that
        Ctrl-C raises between them (``coreset._pace``)."""
        from .._pace import row_blocks

        if self._index is None:
            self._index = self._build_index()
        Xn = np.ascontiguousarray(Xn, np.float32)
        blocks = row_blocks(Xn.shape[0], self.reservoir.shape[0] * Xn.shape[1], at_least=20)
        parts = [self._index.search(Xn[a:b], self.m) for a, b in blocks]
        D = np.concatenate([p[0] for p in parts]) if len(parts) != 1 else parts[0][0]
        I = np.concatenate([p[1] for p in parts]) if len(parts) != 1 else parts[0][1]
        bad = I < 0  # an IVF probe that found fewer than m rows: pad with zero similarity
        if bad.any():
            I[bad], D[bad] = 0, 0.0
        return I.astype(np.int64, copy=False), D

    def _build_index(self):
        """Exact inner-product search up to ``EXACT_RESERVOIR`` rows; above, an
        IVF index (``4 sqrt(r)`` lists, ``N_PROBE`` probed) trained once on the
        reservoir. Its centroids are saved in checkpoints (plain arrays, never
        faiss's own serialization), so a resumed run rebuilds the same index."""
        from .._device import import_faiss

        faiss = import_faiss()
        r, d = self.reservoir.shape
        if r <= EXACT_RESERVOIR:
            ix = faiss.IndexFlatIP(d)
        else:
            nlist = int(4 * np.sqrt(r))
            quantizer = faiss.IndexFlatIP(d)
            if self.ivf_centroids is not None:
                quantizer.add(np.ascontiguousarray(self.ivf_centroids, np.float32))  # trained: ntotal == nlist
            ix = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            if not ix.is_trained:
                ix.cp.seed = 1234
                ix.cp.min_points_per_centroid = 1  # a small reservoir is fine; and faiss would print a warning
                ix.train(self.reservoir)
                self.ivf_centroids = quantizer.reconstruct_n(0, nlist)
            ix.nprobe = N_PROBE
        ix.add(self.reservoir)
        return ix

    def feed(self, Xn: np.ndarray, first_row: int) -> None:
        """Run the rows of one chunk (already unit-normalised float32)."""
        nbr, sims = self.search(Xn)
        self.feed_neighbours(nbr, sims, first_row, Xn)

    def feed_neighbours(self, nbr: np.ndarray, sims: np.ndarray, first_row: int, Xn: np.ndarray) -> None:
        """Run rows ``first_row, first_row + 1, ...`` given by their top-``m``
        reservoir neighbours ``nbr`` (int64) and similarities ``sims``
        (float32), both ``(rows, m)``; ``Xn``: their vectors (kept for the
        candidates, for the weights)."""
        rows = first_row + np.arange(nbr.shape[0], dtype=np.int64)
        slot_of = np.full(nbr.shape[0], -1, np.int64)
        t = 0
        while t < nbr.shape[0]:
            start = t
            t = sieve_chunk(nbr, sims, rows, start, self, slot_of)
            done = slot_of[start:t]
            has = done >= 0
            self.pool.X[done[has]] = Xn[start:t][has]
            if t < nbr.shape[0]:
                self._make_room()

    def _live(self) -> np.ndarray:
        """Pool slots still needed: the first ``k`` rows and every live sieve's members."""
        s, n = self.slots, self.pool.n
        keep = np.zeros(n, bool)
        keep[self.pool.row[:n] < self.k] = True
        for q in s.live():
            keep[s.members[q, :s.size[q]]] = True
        return keep

    def _make_room(self) -> None:
        """The pool is full: drop candidates no live sieve holds, or grow it."""
        keep = self._live()
        if keep.sum() <= keep.size // 2:
            new_pos = self.pool.keep(keep)
            s = self.slots
            for q in s.live():
                n = s.size[q]
                s.members[q, :n] = new_pos[s.members[q, :n]]
        else:
            self.pool.resize(2 * self.pool.row.shape[0])

    # -- result ------------------------------------------------------------------------
    def finish(self, n_seen: int, allow_fewer: bool = False) -> dict:
        """The picks after ``n_seen`` rows (fewer than ``n_select`` only with
        ``allow_fewer``, when fewer rows were seen): ``indices`` (row ids),
        ``gains``, ``weights`` and ``objective`` scaled to the rows seen, and
        ``info`` (how the pass finished)."""
        s, p, k = self.slots, self.pool, self.k
        r = self.reservoir.shape[0]
        live = np.flatnonzero(self._live())
        if live.size < k:
            if not allow_fewer:
                raise ValidationError(f"n_select={k} is larger than the {n_seen} rows seen")
            k = live.size
        cands = live[np.argsort(p.row[live], kind="stable")]
        out, gains = np.zeros(k, np.int64), np.zeros(k, np.float64)
        n_out = greedy_sparse(p.nbr, p.sim, cands, k, r, out, gains)
        greedy_value = float(gains[:n_out].sum())
        best_q, sieve_value = s.best()
        used = "greedy"
        picks, pick_gains = out[:n_out], gains[:n_out]
        if best_q >= 0 and use_sieve(int(s.size[best_q]), k, self.final_greedy, sieve_value, greedy_value):
            used = "sieve"
            picks = s.members[best_q, :k].copy()
            pick_gains = self._replay(picks)
        value = float(pick_gains.sum())
        weights = self._weights(picks) * (n_seen / r)
        scale = n_seen / r
        return {"indices": p.row[picks].astype(np.int64), "gains": pick_gains * scale, "weights": weights,
                "objective": value * scale,
                "info": {"finish": used, "reservoir_value": value, "greedy_value": greedy_value,
                         "best_sieve_value": sieve_value, "candidates": int(live.size),
                         "live_sieves": int(s.live().size), "scale": scale}}

    def _weights(self, picks) -> np.ndarray:
        """Reservoir rows per pick: each goes to its most similar pick (exact
        search, in blocks so that Ctrl-C raises between them)."""
        from .._device import import_faiss
        from .._pace import row_blocks

        faiss = import_faiss()
        P = np.ascontiguousarray(self.pool.X[picks])
        ix = faiss.IndexFlatIP(P.shape[1])
        ix.add(P)
        r = self.reservoir.shape[0]
        blocks = row_blocks(r, P.shape[0] * P.shape[1], at_least=20)
        nearest = np.concatenate([ix.search(self.reservoir[a:b], 1)[1] for a, b in blocks])
        return np.bincount(nearest[:, 0], minlength=len(picks)).astype(np.float64)

    def _replay(self, slots) -> np.ndarray:
        """Gains of pool ``slots`` picked in this order."""
        cur = np.zeros(self.reservoir.shape[0], np.float64)
        g = np.zeros(len(slots))
        for t, j in enumerate(slots):
            nb, s = self.pool.nbr[j], self.pool.sim[j].astype(np.float64)
            g[t] = np.maximum(s - cur[nb], 0).sum()
            np.maximum.at(cur, nb, s)
        return g
