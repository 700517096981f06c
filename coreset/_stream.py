"""One-pass streaming selection over data larger than memory:
:func:`select_stream` (Sieve-Streaming++ on facility location against a
seeded reservoir), resumable from checkpoints. Design and measurements:
``docs/streaming.md``.

Memory: the reservoir (``r x d``), one coverage vector of ``r`` floats per
live sieve, the kept candidates (ids, top-``m`` reservoir neighbours and their
rows; Sieve-Streaming++ keeps ``O(k / epsilon)`` of them) and one chunk.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np

from ._checkpoint import CHECKPOINT_VERSION, CheckpointError, read_checkpoint, write_checkpoint
from ._validation import check_float, check_int, check_random_state
from .exceptions import DegenerateInputError, ValidationError

__all__ = ["select_stream", "StreamSieve", "CheckpointError", "CHECKPOINT_VERSION"]

log = logging.getLogger(__name__)
#: reservoirs up to this size are searched exactly; larger ones with an IVF index
EXACT_RESERVOIR = 4096
#: IVF lists probed per row (of 4 sqrt(reservoir))
N_PROBE = 16


# ---------------------------------------------------------------- the sieve over chunks

class StreamSieve:
    """Sieve-Streaming++ state for facility location over a reservoir.

    ``start(reservoir)`` fixes the ground set; ``feed(chunk, first_row)`` runs
    the rows (chunk rows must be finite, non-zero); ``finish(n_seen)`` returns
    the picks. ``arrays()`` / ``from_arrays`` save and restore it exactly.
    """

    def __init__(self, n_select: int, epsilon: float = 0.1, n_neighbors: int = 32, final_greedy: bool = True):
        from .optimizers._sieve import n_slots

        self.k, self.eps, self.m_req, self.final_greedy = int(n_select), float(epsilon), int(n_neighbors), final_greedy
        self.T = n_slots(self.k, self.eps)
        self._index = None

    # -- setup / state ---------------------------------------------------------------
    def start(self, reservoir: np.ndarray, reservoir_rows: np.ndarray, normalised: bool = False):
        from .optimizers._sieve import EMPTY

        R = np.ascontiguousarray(reservoir, np.float32) if normalised else normalise(reservoir, "the reservoir")
        r, d = R.shape
        self.R, self.R_rows = R, np.asarray(reservoir_rows, np.int64)
        self.m = min(self.m_req, r)
        self.ivf_centroids = None
        cap = max(4 * self.k, 1024)
        self.st = {
            "scal": np.zeros(2, np.float64), "cur": np.zeros((self.T, r), np.float32),
            "size": np.zeros(self.T, np.int64), "members": np.zeros((self.T, self.k), np.int64),
            "val": np.zeros(self.T, np.float64), "expo": np.full(self.T, EMPTY, np.int64),
            "pool_row": np.zeros(cap, np.int64), "pool_nbr": np.zeros((cap, self.m), np.int64),
            "pool_sim": np.zeros((cap, self.m), np.float32), "pool_X": np.zeros((cap, d), np.float32),
            "pool_n": np.zeros(1, np.int64),
        }
        self._index = None
        return self

    def arrays(self) -> dict:
        n = int(self.st["pool_n"][0])
        out = {k: v for k, v in self.st.items() if not k.startswith("pool_")}
        out.update({k: v[:n] for k, v in self.st.items() if k.startswith("pool_") and k != "pool_n"})
        out["pool_n"] = self.st["pool_n"]
        out["reservoir"], out["reservoir_rows"] = self.R, self.R_rows
        if self._index is None and self.R.shape[0] > EXACT_RESERVOIR:
            self._index = self._build_index()
        if getattr(self, "ivf_centroids", None) is not None:
            out["ivf_centroids"] = self.ivf_centroids
        return out

    def load_arrays(self, a: dict):
        """Restore the state saved by :meth:`arrays` (validated first:
        :func:`coreset._checkpoint.check_sieve_state`)."""
        self.R, self.R_rows = np.ascontiguousarray(a["reservoir"], np.float32), a["reservoir_rows"].astype(np.int64)
        self.ivf_centroids = np.array(a["ivf_centroids"]) if "ivf_centroids" in a else None
        self.m = min(self.m_req, self.R.shape[0])
        n = int(a["pool_n"][0])
        cap = max(4 * self.k, 1024, 2 * n)
        self.st = {k: np.array(a[k]) for k in ("scal", "cur", "size", "members", "val", "expo", "pool_n")}
        for k in ("pool_row", "pool_nbr", "pool_sim", "pool_X"):
            v = a[k]
            buf = np.zeros((cap,) + v.shape[1:], v.dtype)
            buf[:n] = v
            self.st[k] = buf
        self._index = None
        return self

    # -- streaming ---------------------------------------------------------------------
    def search(self, Xn: np.ndarray):
        """Top-``m`` reservoir neighbours (inner product of unit rows) of each
        row; in blocks of rows of about ``CALL_WORK`` multiply-adds, so that
        Ctrl-C raises between them (``coreset._pace``)."""
        from ._pace import row_blocks

        if self._index is None:
            self._index = self._build_index()
        Xn = np.ascontiguousarray(Xn, np.float32)
        blocks = row_blocks(Xn.shape[0], self.R.shape[0] * Xn.shape[1], at_least=20)
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
        from ._device import import_faiss

        faiss = import_faiss()
        r, d = self.R.shape
        if r <= EXACT_RESERVOIR:
            ix = faiss.IndexFlatIP(d)
        else:
            nlist = int(4 * np.sqrt(r))
            quantizer = faiss.IndexFlatIP(d)
            if getattr(self, "ivf_centroids", None) is not None:
                quantizer.add(np.ascontiguousarray(self.ivf_centroids, np.float32))  # trained: ntotal == nlist
            ix = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            if not ix.is_trained:
                ix.cp.seed = 1234
                ix.cp.min_points_per_centroid = 1  # a small reservoir is fine; and faiss would print a warning
                ix.train(self.R)
                self.ivf_centroids = quantizer.reconstruct_n(0, nlist)
            ix.nprobe = N_PROBE
        ix.add(self.R)
        return ix

    def feed(self, Xn: np.ndarray, first_row: int):
        """Run the rows of one chunk (already unit-normalised float32)."""
        from .optimizers._sieve import sieve_chunk

        nbr, sims = self.search(Xn)
        rows = first_row + np.arange(Xn.shape[0], dtype=np.int64)
        slot_of = np.full(Xn.shape[0], -1, np.int64)
        t, st = 0, self.st
        while t < Xn.shape[0]:
            start = t
            t = sieve_chunk(nbr, sims, rows, start, self.k, self.eps, st["scal"], st["cur"], st["size"],
                            st["members"], st["val"], st["expo"], st["pool_row"], st["pool_nbr"], st["pool_sim"],
                            st["pool_n"], slot_of)
            done = slot_of[start:t]
            has = done >= 0
            st["pool_X"][done[has]] = Xn[start:t][has]
            if t < Xn.shape[0]:
                self._make_room()

    def _live(self) -> np.ndarray:
        from .optimizers._sieve import EMPTY

        st = self.st
        n = int(st["pool_n"][0])
        keep = np.zeros(n, bool)
        keep[st["pool_row"][:n] < self.k] = True
        for q in np.flatnonzero(st["expo"] != EMPTY):
            keep[st["members"][q, :st["size"][q]]] = True
        return keep

    def _make_room(self):
        """The pool is full: drop candidates no live sieve holds, or grow it."""
        st = self.st
        keep = self._live()
        n = keep.size
        if keep.sum() <= n // 2:
            new_pos = np.cumsum(keep) - 1
            for k in ("pool_row", "pool_nbr", "pool_sim", "pool_X"):
                st[k][:keep.sum()] = st[k][:n][keep]
            from .optimizers._sieve import EMPTY

            for q in np.flatnonzero(st["expo"] != EMPTY):
                s = st["size"][q]
                st["members"][q, :s] = new_pos[st["members"][q, :s]]
            st["pool_n"][0] = keep.sum()
        else:
            for k in ("pool_row", "pool_nbr", "pool_sim", "pool_X"):
                v = st[k]
                buf = np.zeros((2 * v.shape[0],) + v.shape[1:], v.dtype)
                buf[:n] = v[:n]
                st[k] = buf

    # -- result ------------------------------------------------------------------------
    def finish(self, n_seen: int, allow_fewer: bool = False) -> dict:
        """The picks after ``n_seen`` rows (fewer than ``n_select`` only with
        ``allow_fewer``, when fewer rows were seen)."""
        from .optimizers._sieve import EMPTY, greedy_sparse

        st, k = self.st, self.k
        r = self.R.shape[0]
        live = np.flatnonzero(self._live())
        if live.size < k:
            if not allow_fewer:
                raise ValidationError(f"n_select={k} is larger than the {n_seen} rows seen")
            k = live.size
        cands = live[np.argsort(st["pool_row"][live], kind="stable")]
        out, gains = np.zeros(k, np.int64), np.zeros(k, np.float64)
        n_out = greedy_sparse(st["pool_nbr"], st["pool_sim"], cands, k, r, out, gains)
        greedy_value = float(gains[:n_out].sum())
        active = np.flatnonzero(st["expo"] != EMPTY)
        best_q, sieve_value = -1, -1.0
        for q in active:
            if st["val"][q] > sieve_value:
                best_q, sieve_value = q, float(st["val"][q])
        used = "greedy"
        picks, pick_gains = out[:n_out], gains[:n_out]
        if best_q >= 0 and st["size"][best_q] == k and (not self.final_greedy or sieve_value >= greedy_value):
            used = "sieve"
            picks = st["members"][best_q, :k].copy()
            pick_gains = self._replay(picks)
        value = float(pick_gains.sum())
        # weights: each reservoir row goes to its most similar pick (exact), scaled to the rows seen
        from ._device import import_faiss as faiss_module

        faiss = faiss_module()
        P = np.ascontiguousarray(st["pool_X"][picks])
        ix = faiss.IndexFlatIP(P.shape[1])
        ix.add(P)
        from ._pace import row_blocks

        blocks = row_blocks(r, P.shape[0] * P.shape[1], at_least=20)  # Ctrl-C raises between blocks
        nearest = np.concatenate([ix.search(self.R[a:b], 1)[1] for a, b in blocks])
        scale = n_seen / r
        weights = np.bincount(nearest[:, 0], minlength=len(picks)).astype(np.float64) * scale
        return {"indices": st["pool_row"][picks].astype(np.int64), "gains": pick_gains * scale,
                "weights": weights, "objective": value * scale,
                "info": {"finish": used, "reservoir_value": value, "greedy_value": greedy_value,
                         "best_sieve_value": sieve_value, "candidates": int(live.size), "live_sieves": int(active.size),
                         "scale": scale}}

    def _replay(self, slots) -> np.ndarray:
        cur = np.zeros(self.R.shape[0], np.float64)
        g = np.zeros(len(slots))
        for t, j in enumerate(slots):
            nb, s = self.st["pool_nbr"][j], self.st["pool_sim"][j].astype(np.float64)
            g[t] = np.maximum(s - cur[nb], 0).sum()
            np.maximum.at(cur, nb, s)
        return g


def normalise(X: np.ndarray, what: str) -> np.ndarray:
    """Unit rows (float32) for cosine similarity; a zero row is an error naming ``what``."""
    X = np.asarray(X, np.float32)
    norms = np.linalg.norm(X, axis=1)
    bad = np.flatnonzero(norms == 0)
    if bad.size:
        raise DegenerateInputError(f"{what}: row {int(bad[0])} is all zeros; cosine similarity is undefined for it")
    return np.ascontiguousarray(X / norms[:, None])


# ---------------------------------------------------------------- checkpoints (the file: coreset._checkpoint)

def _draw_reservoir(seed_or_rng, total: int, r: int) -> np.ndarray:
    """The reservoir's rows: ``min(r, total)`` rows drawn uniformly, sorted
    (also what a seeded run's checkpoint must hold)."""
    rng = check_random_state(seed_or_rng)
    return np.sort(rng.choice(total, size=min(r, total), replace=False)).astype(np.int64)


# ---------------------------------------------------------------- the public function

def select_stream(source, n_select, *, objective="facility_location", chunk_size=65536, reservoir=10_000,
                  n_neighbors=32, epsilon=0.1, random_state=None, checkpoint=None, checkpoint_every=10,
                  callback=None, column=None):
    """Select ``n_select`` rows in one pass over data too large for memory.

    Sieve-Streaming++ on facility location (cosine similarity) measured on a
    seeded reservoir of ``reservoir`` rows: uniform rows drawn up front when the
    source's length is known (``.npy``, ``.parquet``, arrays), the first rows of
    the stream otherwise (iterators). Each row's gain uses its ``n_neighbors``
    most similar reservoir rows (FAISS, per chunk). The pass ends with greedy
    over the union of the candidates the sieves kept.

    Parameters
    ----------
    source : path to ``.npy`` (read with explicit reads, never memory-mapped)
        or ``.parquet`` (a list column; ``column`` names it), a folder, glob or
        URI of such shards (one input, ``docs/streaming.md``), a row source, an
        array, or an iterable of 2-D arrays (chunks as given).
    n_select : picks, 1 to the rows seen.
    objective : only "facility_location" streams.
    chunk_size : rows read at a time from a path or array.
    reservoir, n_neighbors, epsilon : see ``docs/streaming.md``.
    random_state : seeds the reservoir draw (the pass itself is deterministic).
    checkpoint : a path; the state is saved there every ``checkpoint_every``
        chunks (atomically) and a run resumes from it when it exists and was
        written for the same input and settings (otherwise CheckpointError).
    callback : ``callback(stage, done, total)`` with stage "stream" and rows
        (``total`` None when the length is unknown). If the callback object
        has an ``objective`` attribute it is set to the running estimate.

    Returns
    -------
    Selection
        indices (row numbers in stream order), gains and objective scaled to
        the stream (reservoir values x rows / reservoir), weights = rows seen
        represented by each pick, estimated on the reservoir (they sum to the
        rows seen).
    """
    from ._registry import check_name
    from .data._chunks import IterSource, open_source
    from .selection import Selection

    t_start = time.perf_counter()
    k = check_int(n_select, "n_select", low=1)
    check_name("objective", objective, ("facility_location",))
    chunk_size = check_int(chunk_size, "chunk_size", low=1)
    r = check_int(reservoir, "reservoir", low=1)
    m = check_int(n_neighbors, "n_neighbors", low=1)
    eps = check_float(epsilon, "epsilon", low=0.0, high=1.0, low_open=True, high_open=True)
    every = check_int(checkpoint_every, "checkpoint_every", low=1)
    seed = random_state if random_state is None or isinstance(random_state, int) else None
    rng = check_random_state(random_state)
    src = open_source(source, chunk_size, column)
    is_iter = isinstance(src, IterSource)
    settings = {"objective": objective, "n_select": k, "chunk_size": None if is_iter else chunk_size,
                "reservoir": r, "n_neighbors": m, "epsilon": eps, "random_state": seed, "version": CHECKPOINT_VERSION}
    sieve = StreamSieve(k, eps, m)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None:  # written too: a regular (or new) file in a folder that exists, never the input
        from ._atomic import check_output_path, same_file
        from .exceptions import OutputPathError

        check_output_path(ckpt, param="checkpoint")
        if isinstance(source, (str, os.PathLike)) and same_file(ckpt, source):
            raise OutputPathError(f"checkpoint {str(ckpt)!r} is the input file itself (source); give another path")
    first_chunk_hash = None
    chunks_it = src.chunks(0, 0)
    if is_iter:  # fingerprint an iterator by its first chunk
        first = next(chunks_it, None)
        chunks_it = _chain(first, chunks_it)
        first_chunk_hash = None if first is None else hashlib.sha256(
            np.ascontiguousarray(first[2]).tobytes() + str(first[2].shape).encode()).hexdigest()
    # the selection's input_fingerprint (coreset.data.input_fingerprint); None for an iterator (not re-readable)
    input_fp = None if is_iter else src.fingerprint()
    fingerprint = {"input_fingerprint": input_fp} if not is_iter else {"kind": "iterator",
                                                                       "first_chunk_sha256": first_chunk_hash}
    rows_done = chunks_done = 0
    d = src.d
    resumed = False
    if ckpt is not None and ckpt.exists():
        d_in = d if not is_iter else (None if first is None or np.ndim(first[2]) != 2 else first[2].shape[1])
        draw = _draw_reservoir(seed, src.n_rows, r) if seed is not None and not is_iter and src.n_rows else None
        header, arrays = read_checkpoint(ckpt, fingerprint=fingerprint, settings=settings, n_rows=src.n_rows,
                                         d=d_in, ivf_above=EXACT_RESERVOIR, reservoir_rows=draw)  # all checked
        sieve.load_arrays(arrays)
        rows_done, chunks_done, d = header["rows_done"], header["chunks_done"], header["d"]
        resumed = True
        log.info("resuming from %s at chunk %d (%d rows)", ckpt, chunks_done, rows_done)
        if not is_iter:
            chunks_it = src.chunks(rows_done, chunks_done)
        else:
            chunks_it = _skip_done(chunks_it, chunks_done, rows_done)
    total = src.n_rows
    pending = []  # iterator without a reservoir yet: chunks held until it is full
    started = resumed

    def save():
        header = {"input": fingerprint, "settings": settings, "rows_done": rows_done, "chunks_done": chunks_done,
                  "d": d}
        write_checkpoint(ckpt, header, sieve.arrays())

    def run_chunk(ci, row0, Xn):
        nonlocal rows_done, chunks_done
        sieve.feed(Xn, row0)
        rows_done, chunks_done = row0 + Xn.shape[0], ci + 1
        if callback is not None:
            if hasattr(callback, "objective"):
                try:
                    callback.objective = float(sieve.st["scal"][1]) * max(rows_done, 1) / sieve.R.shape[0]
                except AttributeError:
                    pass
            callback("stream", rows_done, total)
        if ckpt is not None and chunks_done % every == 0:
            save()

    if not started and not is_iter:
        if total == 0:
            raise ValidationError(f"the input {src.description} is empty (0 rows); nothing to select from")
        rows = _draw_reservoir(rng, total, r)
        R = src.read_rows(rows)
        _check_finite_reservoir(R, rows, chunk_size, total)
        sieve.start(R, rows)
        started = True
    for ci, row0, X in chunks_it:
        Xn = _check_chunk(X, ci, row0, d)
        d = X.shape[1]
        if not started:
            pending.append((ci, row0, Xn))
            if sum(p[2].shape[0] for p in pending) >= r:
                _start_from(sieve, pending, r)
                started = True
                for p in pending:
                    run_chunk(*p)
                pending = []
            continue
        run_chunk(ci, row0, Xn)
    if not started:
        if not pending:
            raise ValidationError(f"the input {src.description} is empty (0 rows); nothing to select from")
        _start_from(sieve, pending, r)
        for p in pending:
            run_chunk(*p)
    if rows_done == 0:
        raise ValidationError(f"the input {src.description} is empty (0 rows); nothing to select from")
    res = sieve.finish(rows_done)
    meta = {"method": "submodular", "objective_name": objective, "optimizer": "sieve_streaming",
            "metric": "cosine", "n_neighbors": m, "n_samples": rows_done, "n_features": d,
            "random_state": seed, "stream": {"chunks": chunks_done, "chunk_size": settings["chunk_size"],
                                             "reservoir": int(sieve.R.shape[0]), "epsilon": eps,
                                             "reservoir_draw": "first rows" if is_iter else "uniform",
                                             "resumed": resumed, **res["info"]},
            "input_fingerprint": input_fp, "timings": {"total": time.perf_counter() - t_start}}
    shards_meta = getattr(getattr(src, "source", None), "shards_meta", None)
    if shards_meta is not None:  # a folder / glob / URI of shards: each shard's path, rows, fingerprint
        meta["shards"] = shards_meta()
    from ._version import __version__

    meta["library_version"] = __version__
    return Selection(res["indices"], res["weights"], res["gains"], objective=res["objective"], meta=meta)


def _skip_done(chunks, chunks_done, rows_done):
    """A resumed iterator: skip the chunks done, checking that they held the rows the checkpoint counted
    (also when the iterator ends there, or earlier)."""
    n_chunks = n_rows = 0
    for ci, row0, X in chunks:
        if ci < chunks_done:
            n_chunks, n_rows = ci + 1, row0 + X.shape[0]
            continue
        if ci == chunks_done and row0 != rows_done:
            raise CheckpointError(f"resuming at chunk {ci}: the earlier chunks hold {row0} rows, the checkpoint "
                                  f"counted {rows_done}; the iterator does not repeat the first run's chunks")
        yield ci, row0, X
        n_chunks = None
    if n_chunks is not None and (n_chunks, n_rows) != (chunks_done, rows_done):
        raise CheckpointError(f"resuming: the iterator has {n_chunks} chunks of {n_rows} rows in all, the checkpoint "
                              f"counted {chunks_done} chunks of {rows_done} rows; the iterator does not repeat the "
                              "first run's chunks")


def _chain(first, rest):
    if first is not None:
        yield first
        yield from rest


def _start_from(sieve, pending, r):
    X = np.concatenate([p[2] for p in pending])[:r]
    sieve.start(X, np.arange(X.shape[0], dtype=np.int64), normalised=True)


def _check_finite_reservoir(R, rows, chunk_size, n_rows):
    """The reservoir's rows are finite; else the error names the chunk that holds the bad one."""
    if R.dtype.kind != "f":
        return
    bad = ~np.isfinite(R)
    if bad.any():
        t, j = np.argwhere(bad)[0]
        row = int(rows[t])
        ci = row // chunk_size
        lo, hi = ci * chunk_size, min((ci + 1) * chunk_size, n_rows) - 1
        raise ValidationError(f"chunk {ci} (rows {lo} to {hi}) has a non-finite value ({R[t, j]}) at row {row}, "
                              f"column {int(j)} (found while drawing the reservoir)")


def _check_chunk(X, ci, row0, d):
    """Unit-normalised float32 rows of chunk ``ci``, or an error naming it."""
    X = np.asarray(X)
    where = f"chunk {ci} (rows {row0} to {row0 + X.shape[0] - 1})" if X.ndim == 2 else f"chunk {ci}"
    if X.ndim != 2:
        raise ValidationError(f"{where} must be 2-D (rows x dimensions); got shape {X.shape}")
    if d is not None and X.shape[1] != d:
        raise ValidationError(f"{where} has {X.shape[1]} columns; earlier chunks (and the input) have {d}")
    if X.dtype.kind not in "fiu":
        raise ValidationError(f"{where} holds {X.dtype} values, not numbers")
    if X.dtype.kind == "f":
        bad = ~np.isfinite(X)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ValidationError(f"{where} has a non-finite value ({X[i, j]}) at row {row0 + int(i)}, column {int(j)}")
    return normalise(X, where)


# ---------------------------------------------------------------- SubmodularSelector.partial_fit

def sieve_partial_fit(est, X, y=None):
    """``SubmodularSelector(optimizer="sieve_streaming").partial_fit``: each
    chunk feeds the sieve; the reservoir is a seeded uniform sample of the
    first chunk (``min(reservoir, rows)`` rows). ``selection_`` is the result
    after the rows seen so far (fewer picks while fewer rows were seen)."""
    from ._registry import OPTIMIZERS, check_name
    from ._validation import as_embeddings, check_labels
    from .selection import Selection

    if est.n_select is None:
        raise ValidationError("partial_fit needs n_select (the size of the selection); got None")
    k = check_int(est.n_select, "n_select", low=1)
    check_name("objective", est.objective, ("facility_location",))
    opt = OPTIMIZERS.create(est.optimizer)
    eps, r, m = opt.check()
    Xc = as_embeddings(X)
    st = getattr(est, "_sieve_stream", None)
    if st is None:
        if Xc.shape[0] == 0:
            raise ValidationError("the first chunk is empty (0 rows); the reservoir is drawn from it")
        rng = check_random_state(est.random_state)
        rows = np.sort(rng.choice(Xc.shape[0], size=min(r, Xc.shape[0]), replace=False)).astype(np.int64)
        sieve = StreamSieve(k, eps, m, final_greedy=getattr(opt, "final_greedy", True))
        sieve.start(Xc[rows], rows)
        st = est._sieve_stream = {"sieve": sieve, "seen": 0, "chunks": 0, "d": Xc.shape[1], "y": [],
                                  "labelled": y is not None}
    if (y is not None) != st["labelled"]:
        raise ValidationError("give labels y with every chunk or with none")
    Xn = _check_chunk(Xc, st["chunks"], st["seen"], st["d"])
    if y is not None:
        st["y"].append(check_labels(y, Xc.shape[0]))
    st["sieve"].feed(Xn, st["seen"])
    st["seen"] += Xc.shape[0]
    st["chunks"] += 1
    res = st["sieve"].finish(st["seen"], allow_fewer=True)
    labels = np.concatenate(st["y"])[res["indices"]] if st["labelled"] else None
    meta = {"method": "submodular", "objective_name": "facility_location", "optimizer": "sieve_streaming",
            "metric": "cosine", "n_samples": st["seen"], "n_features": st["d"], "partial_fit_chunks": st["chunks"],
            "random_state": est.random_state if isinstance(est.random_state, (int, type(None))) else None,
            "stream": {"reservoir": int(st["sieve"].R.shape[0]), "epsilon": eps, "n_neighbors": m, **res["info"]}}
    from ._version import __version__

    meta.update(library_version=__version__, input_fingerprint=None)  # chunks are not kept: nothing to hash
    est.n_chunks_ = st["chunks"]
    est.selection_ = Selection(res["indices"], res["weights"], res["gains"], objective=res["objective"],
                               labels=labels, meta=meta)
    est.ranking_, est.weights_, est.gains_ = est.selection_.indices, est.selection_.weights, est.selection_.gains
    est.n_features_in_ = st["d"]
    return est
