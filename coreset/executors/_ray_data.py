"""Ray Data as GreeDi's data plane for sharded inputs.

A folder, glob or URI of ``.npy`` / parquet shards (a
:class:`~coreset.data.ShardedSource`) with ``executor="ray"``: GreeDi's
partition selects and its merge run on the cluster, and nothing moves
through the driver but row numbers and picks.

1. **Read** (``ray.data.read_datasource``): one read task per shard reads
   that shard, and only it, a chunk at a time through the shard's own file
   source (an unreadable shard is named), and tags every row with its global
   row number, its partition (the driver's partition, shipped to each read
   task as its shard's slice: 4 bytes per row) and, with a class budget, its
   class code.
2. **Shuffle** (``groupby("part").map_groups``): Ray Data's hash shuffle
   sends each row to the task of its partition, which receives exactly its
   partition's rows (its share of the shuffle) and runs GreeDi's
   ``partition_task`` on them: the same function, seed and rows (sorted by
   row number) as every other executor, so the picks are the same.
   A task returns its picks (row numbers, gains, weights: 24 bytes per pick)
   and keeps the picks' rows in the object store for the merge.
3. **Merge** as one Ray task over those blocks: GreeDi's merge on the
   union of the picks (read from the object store, not from the shards).

The driver holds the row numbers of the partitions (8 bytes per row, as
GreeDi does for a file), the labels slice it ships, the picks, and object
references; never the rows. Per-shard fingerprints (for the index file's
``meta["shards"]``) are computed by one small Ray task per shard.

Faults: Ray Data retries its read and shuffle tasks when a worker dies
(``max_retries=-1`` for system failures); the merge task is retried up to
the executor's ``max_retries``. Every task is a pure function of its
arguments, so a retried run gives the identical selection.
"""

from __future__ import annotations

import logging
import pickle
import time

import numpy as np

from ..data._sources import Source
from ..exceptions import CoresetError

__all__ = ["RayDataPlane", "ray_data_plane"]

log = logging.getLogger(__name__)

#: rows per block a read task emits (a shard is read a chunk at a time)
READ_ROWS = 65536
#: the driver waits for the merge task in steps of this many seconds (Ctrl-C raises between them)
WAIT_SECONDS = 0.1


def ray_data_plane(source, executor):
    """A :class:`RayDataPlane` when ``source`` is sharded and ``executor`` is a
    :class:`~coreset.executors.RayExecutor`; else None (the executor's own
    ``map`` and the driver's merge serve: a single file is read by row number)."""
    from ..data._shards import ShardedSource
    from ._ray import RayExecutor

    if not (isinstance(source, ShardedSource) and isinstance(executor, RayExecutor)):
        return None
    try:
        import ray.data  # noqa: F401
    except ImportError as exc:
        log.warning("ray.data cannot be imported (%s; pip install 'ray[data]'): every partition task reads its rows "
                    "from the shards by row number instead (each one scans every shard)", exc)
        return None
    return RayDataPlane(executor, source)


def _cause(exc):
    """The first :class:`CoresetError` in ``exc``'s chain (Ray wraps a task's
    own error, Ray Data wraps it again), or None."""
    seen = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, CoresetError):
            return e
        stack.extend([getattr(e, "cause", None), e.__cause__, e.__context__])
    return None


def _fixed_list(pa, X):
    d = X.shape[1]
    return pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(X).reshape(-1)), d)


def _matrix(col, d, dtype):
    """A fixed-size list column as an ``(rows, d)`` array of ``dtype``."""
    col = col.combine_chunks() if hasattr(col, "combine_chunks") else col
    flat = col.values.to_numpy(zero_copy_only=False) if len(col) else np.empty(0, dtype)
    return np.asarray(flat, dtype).reshape(-1, d)


def _read_shard(i, spec, part, offset, labels, codes, rows_per_block):
    """Read task of shard ``i``: its rows, a chunk at a time, as blocks of
    (row, shard, part[, code], x)."""
    import pyarrow as pa

    from ..exceptions import InputFileError

    it = part.chunks(rows_per_block)
    while True:
        try:
            item = next(it, None)
        except InputFileError as exc:
            raise InputFileError(f"shard {i} of {spec!r}: {exc}") from None
        if item is None:
            return
        start, X = item
        m = X.shape[0]
        cols = {"row": pa.array(np.arange(offset + start, offset + start + m, dtype=np.int64)),
                "shard": pa.array(np.full(m, i, np.int32)),
                "part": pa.array(labels[start:start + m])}
        if codes is not None:
            cols["code"] = pa.array(codes[start:start + m])
        cols["x"] = _fixed_list(pa, X)
        yield pa.table(cols)


def _datasource(source, labels, codes, rows_per_block):
    """A ``ray.data.Datasource`` with one read task per shard."""
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class ShardData(Datasource):
        def get_name(self):
            return "CoresetShards"

        def estimate_inmemory_data_size(self):
            return int(source.n_rows) * int(source.dim) * np.dtype(source.dtype).itemsize

        def get_read_tasks(self, parallelism, per_task_row_limit=None, data_context=None):
            tasks = []
            for i, part in enumerate(source.parts):
                lo, hi = int(source.offsets[i]), int(source.offsets[i + 1])
                if hi == lo:
                    continue
                meta = BlockMetadata(num_rows=hi - lo, size_bytes=(hi - lo) * int(source.dim) *
                                     np.dtype(source.dtype).itemsize, input_files=[str(part.path)], exec_stats=None)
                cut = None if codes is None else codes[lo:hi]

                def read(i=i, part=part, lo=lo, lab=labels[lo:hi], cut=cut):
                    return _read_shard(i, source.spec, part, lo, lab, cut, rows_per_block)

                tasks.append(ReadTask(read, meta))
            return tasks

    return ShardData()


def _select(table, fn, small_tasks, d, dtype, n_shards):
    """One partition (a group of the shuffle): sort its rows by row number,
    run ``fn`` (GreeDi's partition task) on them, return one row: the
    partition's result (pickled, without rows) and its picks' rows."""
    import pyarrow as pa

    rows = table.column("row").to_numpy()
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    p = int(table.column("part")[0].as_py())
    X = _matrix(table.column("x"), d, dtype)[order]
    task = dict(small_tasks[p])
    task.update(rows=rows, shard=X)
    if "code" in table.column_names:
        task["codes"] = table.column("code").to_numpy()[order]
    r = fn(task)
    pos = np.searchsorted(rows, r["indices"])
    r["rows_by_shard"] = np.bincount(table.column("shard").to_numpy(), minlength=n_shards).astype(np.int64)
    picked = np.ascontiguousarray(X[pos].astype(dtype, copy=False))
    return pa.table({"part": pa.array([p], pa.int64()), "result": pa.array([pickle.dumps(r)], pa.binary()),
                     "x": pa.array([picked.tobytes()], pa.large_binary())})


def _results_of(table):
    """``[(partition, result)]`` of one output block (the picks' rows stay)."""
    return [(int(p), pickle.loads(b)) for p, b in zip(table.column("part").to_pylist(),
                                                      table.column("result").to_pylist())]


class _Picks(Source):
    """The union of the partitions' picks as a row source (global row numbers)."""

    def __init__(self, rows, X):
        order = np.argsort(rows, kind="stable")
        self.rows, self.X = rows[order], X[order]
        self.n_rows = int(rows.max()) + 1 if rows.size else 0
        self.dim, self.dtype = int(X.shape[1]), X.dtype

    def _read_sorted(self, rows):
        pos = np.searchsorted(self.rows, rows)
        if rows.size and (pos.max() >= self.rows.size or not np.array_equal(self.rows[pos], rows)):
            raise CoresetError("the merge asked for rows that no partition picked")
        return self.X[pos]

    def describe(self):
        return "picks"


def _merge_task(merge, args, rows, d, dtype, *tables):
    """``merge(picks, *args)`` in a Ray task, ``picks`` the union of the
    partitions' picks (row numbers ``rows[p]`` of partition p) with their rows
    from the partition tasks' output blocks in the object store."""
    xs = {}
    for t in tables:
        for p, blob in zip(t.column("part").to_pylist(), t.column("x").to_pylist()):
            xs[int(p)] = np.frombuffer(blob, dtype).reshape(-1, d)
    X = np.concatenate([xs[p] for p in range(len(rows))])
    return merge(_Picks(np.concatenate(rows), X), *args)


def _fingerprints(parts):
    return [part.fingerprint() for part in parts]


class RayDataPlane:
    """GreeDi's partition selects and merge for a sharded source on Ray
    (see the module's docstring). ``map(fn, tasks)`` takes GreeDi's partition
    tasks (each with its sorted ``rows``) and returns ``fn``'s results in
    task order; ``merge(fn, *args)`` then runs ``fn(picks, *args)`` as a Ray
    task, ``picks`` a row source of the union of the picks. ``stats``: the
    read tasks, the rows each partition task received from each shard, seconds."""

    def __init__(self, executor, source, rows_per_block=READ_ROWS):
        self.executor, self.source, self.rows_per_block = executor, source, int(rows_per_block)
        self._blocks = []
        self.stats = {}

    def _ray(self):
        return self.executor._connect()

    @staticmethod
    def _quiet_context() -> dict:
        """Turn Ray Data's progress output off (the caller's callback reports
        progress); returns the settings it changed, for :meth:`_restore`."""
        import ray.data

        ctx = ray.data.DataContext.get_current()
        saved = {}
        for name in ("enable_progress_bars", "print_on_execution_start", "enable_operator_progress_bars"):
            if hasattr(ctx, name):
                saved[name] = getattr(ctx, name)
                setattr(ctx, name, False)
        return saved

    @staticmethod
    def _restore(saved: dict) -> None:
        import ray.data

        ctx = ray.data.DataContext.get_current()
        for name, value in saved.items():
            setattr(ctx, name, value)

    def map(self, fn, tasks, *, stage="partitions", callback=None) -> list:
        ray = self._ray()
        import ray.data

        source = self.source
        n, P = int(source.n_rows), len(tasks)
        labels = np.full(n, -1, np.int32)
        codes = None
        for p, t in enumerate(tasks):
            labels[t["rows"]] = p
            if t.get("codes") is not None:
                if codes is None:
                    codes = np.zeros(n, np.int64)
                codes[t["rows"]] = t["codes"]
        if (labels < 0).any():
            raise CoresetError(f"the partitions leave {int((labels < 0).sum())} rows out")
        small = [{k: v for k, v in t.items() if k not in ("rows", "source", "shard", "codes")} for t in tasks]
        data_log = logging.getLogger("ray.data")
        level = data_log.level
        data_log.setLevel(max(level, logging.ERROR))  # its notes (progress bars off) are not ours
        saved = self._quiet_context()
        t0 = time.perf_counter()
        fps = []
        # each shard's fingerprint for meta["shards"], computed where the tasks run (a few tasks of many shards)
        # and left in the source's cache of them, so that the driver does not read every shard's samples
        if source._shards is None:
            groups = np.array_split(np.arange(len(source.parts)), min(len(source.parts), 8))
            remote = ray.remote(max_retries=int(self.executor.max_retries), num_cpus=1)(_fingerprints)
            fps = [remote.remote([source.parts[i] for i in g]) for g in groups if g.size]
        try:
            ds = ray.data.read_datasource(_datasource(source, labels, codes, self.rows_per_block))
            out = ds.groupby("part", num_partitions=P).map_groups(
                _select, batch_format="pyarrow", zero_copy_batch=True,
                fn_args=(fn, small, int(source.dim), np.dtype(source.dtype), len(source.parts)),
                num_cpus=self.executor.num_cpus_per_task)
            done, self._blocks = 0, []
            for bundle in out.iter_internal_ref_bundles():
                for entry in bundle.blocks:
                    ref, meta = (entry.ref, entry.metadata) if hasattr(entry, "ref") else entry
                    self._blocks.append(ref)
                    done += int(meta.num_rows or 0)
                    if callback is not None:
                        callback(stage, done, P)
            t_select = time.perf_counter() - t0
            head = ray.remote(num_cpus=1)(_results_of)
            pairs = [pair for got in ray.get([head.remote(b) for b in self._blocks]) for pair in got]
            if fps:
                shards = [fp for got in ray.get(fps) for fp in got]
                source._shards = [(str(s.path), int(s.n_rows), fp) for s, fp in zip(source.parts, shards)]
        except KeyboardInterrupt:
            raise
        except CoresetError:
            raise
        except Exception as exc:
            cause = _cause(exc)
            if cause is not None:
                raise cause from None
            first = (str(exc).strip().splitlines() or [""])[0]
            raise CoresetError(f"the Ray Data plane failed: {type(exc).__name__}: {first}") from None
        finally:
            self._restore(saved)
            data_log.setLevel(level)
        got = dict(pairs)
        if sorted(got) != list(range(P)) or len(pairs) != P:
            raise CoresetError(f"the Ray Data plane returned partitions {sorted(got)}; expected 0..{P - 1} once each")
        results = [got[p] for p in range(P)]
        self._rows = [r["indices"] for r in results]
        self.stats = {"seconds": time.perf_counter() - t0, "read_shuffle_select_seconds": t_select,
                      "read_tasks": sum(1 for a, b in zip(source.offsets[:-1], source.offsets[1:]) if b > a),
                      "rows_by_shard": [r.pop("rows_by_shard").tolist() for r in results]}
        return results

    def merge(self, merge, *args):
        """``merge(picks, *args)`` in one Ray task, ``picks`` a row source of
        the union of the partitions' picks (their rows from the partition
        tasks' output blocks: the shards are not read again)."""
        ray = self._ray()
        remote = ray.remote(max_retries=int(self.executor.max_retries), num_cpus=self.executor.num_cpus_per_task,
                            retry_exceptions=False)(_merge_task)
        ref = remote.remote(merge, args, self._rows, int(self.source.dim), np.dtype(self.source.dtype), *self._blocks)
        try:
            while not ray.wait([ref], timeout=WAIT_SECONDS)[0]:
                pass
            return ray.get(ref)
        except KeyboardInterrupt:
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass
            raise
        except ray.exceptions.RayTaskError as exc:
            cause = _cause(exc)
            if cause is not None:
                raise cause from None
            raise
        except ray.exceptions.RayError as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise CoresetError(f"the merge task failed after max_retries={self.executor.max_retries} retries: "
                               f"{type(exc).__name__}: {first}") from None
        finally:
            self._blocks = []
