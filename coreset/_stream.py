"""One-pass streaming selection over data larger than memory: the chunk loop.

:func:`select_stream` reads chunks through the row source
(:func:`coreset.data._chunks.open_source` over :mod:`coreset.data._sources`),
feeds them to the sieve state (:class:`~coreset.optimizers._sieve_state.SieveState`:
Sieve-Streaming++ on facility location against a seeded reservoir, the one
implementation of the sieve rules), saves it in checkpoints
(:mod:`coreset._checkpoint`) and builds the selection's metadata with
:func:`coreset._provenance.build_meta`, as every selector does.
:class:`PartialSieve` is the state ``SubmodularSelector.partial_fit`` owns
with ``optimizer="sieve_streaming"``. Design and measurements:
``docs/streaming.md``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np

from ._checkpoint import CHECKPOINT_VERSION, CheckpointError, read_checkpoint, write_checkpoint
from ._defaults import CHECKPOINT_EVERY, CHUNK_SIZE, RESERVOIR, STREAM_NEIGHBORS
from ._validation import check_float, check_int, check_random_state
from .exceptions import ValidationError

__all__ = ["select_stream", "PartialSieve", "CheckpointError", "CHECKPOINT_VERSION"]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the selection's metadata

class _SieveRun:
    """What a stream ran, described the way selectors describe themselves
    (``_describe``), for :func:`coreset._provenance.build_meta`."""

    def __init__(self, epsilon: float, reservoir: int, n_neighbors: int, final_greedy: bool = True):
        self.params = {"epsilon": epsilon, "reservoir": reservoir, "n_neighbors": n_neighbors,
                       "final_greedy": final_greedy}

    def _describe(self) -> dict:
        return {"method": "submodular", "objective_name": "facility_location", "optimizer": "sieve_streaming",
                "metric": "cosine", "n_neighbors": self.params["n_neighbors"], "epsilon": self.params["epsilon"],
                "optimizer_params": dict(self.params)}


class _Fingerprinted:
    """An input whose fingerprint was taken when it was opened."""

    def __init__(self, fp: str):
        self.fp = fp

    def fingerprint(self) -> str:
        return self.fp


def _selection(run: _SieveRun, sieve, res: dict, *, n_seen: int, d: int, random_state, t_start: float,
               t_finish: float, input_fp: str | None = None, y=None, extra: dict | None = None):
    """The :class:`~coreset.selection.Selection` of a finished pass, its meta
    from the one builder (:func:`coreset._provenance.build_meta`)."""
    from ._provenance import build_meta
    from .optimizers._sieve_state import EXACT_RESERVOIR
    from .selection import Selection
    from .selectors._base import Group, GroupResult, Progress

    group = Group(np.empty((n_seen, 0)), y, False, Progress(None, {}))  # the sizes: rows seen, no columns kept
    r = int(sieve.reservoir.shape[0])
    group.info.update(form="knn", ground_set="reservoir", exact=r <= EXACT_RESERVOIR)
    result = GroupResult(res["indices"], res["gains"], res["weights"], res["objective"])
    now = time.perf_counter()  # timings: the pass (reads, search, sieve), the finish (greedy, weights)
    timings = {"stream": t_finish - t_start, "finish": now - t_finish, "total": now - t_start}
    meta = build_meta(run, group, result, random_state=random_state, timings=timings,
                      source=None if input_fp is None else _Fingerprinted(input_fp))
    meta["n_features"] = int(d)
    meta.update(extra or {})
    meta["stream"] = {**meta.get("stream", {}), "reservoir": r, "epsilon": run.params["epsilon"], **res["info"]}
    labels = None if y is None else y[res["indices"]]
    return Selection(res["indices"], res["weights"], res["gains"], objective=res["objective"], labels=labels,
                     meta=meta)


# ---------------------------------------------------------------- the public function

def _draw_reservoir(seed_or_rng, total: int, r: int) -> np.ndarray:
    """The reservoir's rows: ``min(r, total)`` rows drawn uniformly, sorted
    (also what a seeded run's checkpoint must hold)."""
    rng = check_random_state(seed_or_rng)
    return np.sort(rng.choice(total, size=min(r, total), replace=False)).astype(np.int64)


def select_stream(source, n_select, *, objective="facility_location", chunk_size=CHUNK_SIZE, reservoir=RESERVOIR,
                  n_neighbors=STREAM_NEIGHBORS, epsilon=0.1, random_state=None, checkpoint=None,
                  checkpoint_every=CHECKPOINT_EVERY, callback=None, column=None):
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
    from .optimizers._sieve_state import EXACT_RESERVOIR, SieveState

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
    sieve = SieveState(k, eps, m)
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
        sieve = SieveState.from_arrays(arrays, k, eps, m)
        rows_done, chunks_done, d = header["rows_done"], header["chunks_done"], header["d"]
        resumed = True
        log.info("resuming from %s at chunk %d (%d rows)", ckpt, chunks_done, rows_done)
        if not is_iter:
            chunks_it = src.chunks(rows_done, chunks_done)
        else:
            chunks_it = _skip_done(chunks_it, chunks_done, rows_done)
    total = src.n_rows
    pending = []  # iterator without a reservoir yet: chunks held until it is full

    def save():
        header = {"input": fingerprint, "settings": settings, "rows_done": rows_done, "chunks_done": chunks_done,
                  "d": d}
        write_checkpoint(ckpt, header, sieve.to_arrays())

    def run_chunk(ci, row0, Xn):
        nonlocal rows_done, chunks_done
        sieve.feed(Xn, row0)
        rows_done, chunks_done = row0 + Xn.shape[0], ci + 1
        if callback is not None:
            if hasattr(callback, "objective"):
                try:
                    callback.objective = sieve.running_value * max(rows_done, 1) / sieve.reservoir.shape[0]
                except AttributeError:
                    pass
            callback("stream", rows_done, total)
        if ckpt is not None and chunks_done % every == 0:
            save()

    if not sieve.started and not is_iter:
        if total == 0:
            raise ValidationError(f"the input {src.description} is empty (0 rows); nothing to select from")
        rows = _draw_reservoir(rng, total, r)
        R = src.read_rows(rows)
        _check_finite_reservoir(R, rows, chunk_size, total)
        sieve.start(R, rows)
    for ci, row0, X in chunks_it:
        Xn = _check_chunk(X, ci, row0, d)
        d = X.shape[1]
        if not sieve.started:
            pending.append((ci, row0, Xn))
            if sum(p[2].shape[0] for p in pending) >= r:
                _start_from(sieve, pending, r)
                for p in pending:
                    run_chunk(*p)
                pending = []
            continue
        run_chunk(ci, row0, Xn)
    if not sieve.started:
        if not pending:
            raise ValidationError(f"the input {src.description} is empty (0 rows); nothing to select from")
        _start_from(sieve, pending, r)
        for p in pending:
            run_chunk(*p)
    if rows_done == 0:
        raise ValidationError(f"the input {src.description} is empty (0 rows); nothing to select from")
    t_finish = time.perf_counter()
    res = sieve.finish(rows_done)
    extra = {"stream": {"chunks": chunks_done, "chunk_size": settings["chunk_size"],
                        "reservoir_draw": "first rows" if is_iter else "uniform", "resumed": resumed}}
    shards_meta = getattr(getattr(src, "source", None), "shards_meta", None)
    if shards_meta is not None:  # a folder / glob / URI of shards: each shard's path, rows, fingerprint
        extra["shards"] = shards_meta()
    return _selection(_SieveRun(eps, r, m), sieve, res, n_seen=rows_done, d=d, random_state=seed,
                      t_start=t_start, t_finish=t_finish, input_fp=input_fp, extra=extra)


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
    from .optimizers._sieve_state import normalise

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

class PartialSieve:
    """The state of ``SubmodularSelector(optimizer="sieve_streaming").partial_fit``:
    the estimator owns one and feeds it each chunk (:meth:`feed`). The
    reservoir is a seeded uniform sample of the first chunk (``min(reservoir,
    rows)`` rows, the optimizer's ``reservoir``); each chunk feeds the sieve;
    the selection after each chunk is that of the rows seen so far (fewer
    picks while fewer rows were seen)."""

    def __init__(self, n_select, optimizer, random_state=None):
        self.k = check_int(n_select, "n_select", low=1)
        eps, r, m = optimizer.check()
        self.run = _SieveRun(eps, r, m, bool(getattr(optimizer, "final_greedy", True)))
        self.random_state = random_state
        self.sieve = None
        self.n_seen = self.n_chunks = 0
        self.d: int | None = None
        self.labels: list | None = None

    def feed(self, X, y=None):
        """Feed one chunk (rows numbered on from the earlier chunks; labels
        ``y`` with every chunk or with none); returns the running
        :class:`~coreset.selection.Selection`."""
        from ._validation import as_embeddings, check_labels
        from .optimizers._sieve_state import SieveState

        t_start = time.perf_counter()
        Xc = as_embeddings(X)
        if self.sieve is not None and (y is not None) != (self.labels is not None):
            raise ValidationError("give labels y with every chunk or with none")
        if self.sieve is None and Xc.shape[0] == 0:
            raise ValidationError("the first chunk is empty (0 rows); the reservoir is drawn from it")
        Xn = _check_chunk(Xc, self.n_chunks, self.n_seen, self.d)
        lab = None if y is None else check_labels(y, Xc.shape[0])
        if self.sieve is None:
            p = self.run.params
            rng = check_random_state(self.random_state)
            rows = np.sort(rng.choice(Xc.shape[0], size=min(p["reservoir"], Xc.shape[0]), replace=False))
            rows = rows.astype(np.int64)
            self.sieve = SieveState(self.k, p["epsilon"], p["n_neighbors"], p["final_greedy"]).start(Xc[rows], rows)
            self.d, self.labels = Xc.shape[1], None if y is None else []
        self.sieve.feed(Xn, self.n_seen)
        if lab is not None:
            self.labels.append(lab)
        self.n_seen += Xc.shape[0]
        self.n_chunks += 1
        t_finish = time.perf_counter()
        res = self.sieve.finish(self.n_seen, allow_fewer=True)
        y_all = None if self.labels is None else np.concatenate(self.labels)
        return _selection(self.run, self.sieve, res, n_seen=self.n_seen, d=self.d, random_state=self.random_state,
                          t_start=t_start, t_finish=t_finish, y=y_all, extra={"partial_fit_chunks": self.n_chunks})
