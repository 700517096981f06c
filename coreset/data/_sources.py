"""One row source: the rows of an ``(n_rows, dim)`` embedding matrix, read by
row number or a chunk at a time, whatever holds them: an array in memory, a
``.npy`` file, a list column of a ``.parquet`` file, or many such files as
one input (:class:`~coreset.data._shards.ShardedSource`: a folder, a glob or
a bucket URI, see ``docs/streaming.md``).

Every source has ``n_rows``, ``dim``, ``dtype``, ``read(rows)`` (int64 row
numbers in any order -> the rows, in that order), ``read_range(start, stop)``,
``chunks(size, start_row=0)`` (yields ``(first_row, array)``),
``fingerprint()`` (:func:`coreset.data.input_fingerprint` of the rows: the
same string as for the array they make) and ``shards`` (``[(path, n_rows,
fingerprint)]``: the files read, for the index file's metadata).

A file source is small and picklable (a path, a shape, a dtype): it is what
a worker receives, and the worker reads only its rows. ``.npy`` files are read
in blocks at an offset (``np.fromfile``), never memory-mapped, so file pages
do not stay in the reader's resident memory; parquet one row group at a time.
Elements keep the file's type (float16 / integers included); consumers convert.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..exceptions import InputFileError, ValidationError

__all__ = ["Source", "ArraySource", "NpySource", "ParquetSource", "BLOCK_BYTES", "SHARD_SUFFIXES"]

#: bytes read per block by the file sources
BLOCK_BYTES = 16 * 2**20
#: a parquet row group up to this size stays in memory for the next read (sampled reads hit it again)
_CACHE_BYTES = 64 * 2**20
#: the file kinds a row source reads (and a sharded input is made of)
SHARD_SUFFIXES = (".npy", ".parquet", ".pq")


def rechunk(blocks, size, start_row=0):
    """``(first_row, array)`` of exactly ``size`` rows (the last one shorter)
    from consecutive row ``blocks`` of any lengths, numbered from ``start_row``."""
    size = int(size)
    buf, buf_row, have = [], int(start_row), 0
    for X in blocks:
        buf.append(X)
        have += X.shape[0]
        while have >= size:
            allx = np.concatenate(buf) if len(buf) > 1 else buf[0]
            yield buf_row, allx[:size]
            buf_row += size
            rest = allx[size:]
            buf, have = ([rest] if rest.shape[0] else []), rest.shape[0]
    if have:
        yield buf_row, np.concatenate(buf) if len(buf) > 1 else buf[0]


class Source:
    """Rows of an ``(n_rows, dim)`` numeric matrix, read by row number."""

    n_rows: int
    dim: int
    dtype: np.dtype
    in_memory = False

    @property
    def n(self) -> int:  # the short names GreeDi's code uses
        return self.n_rows

    @property
    def d(self) -> int:
        return self.dim

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, self.dim)

    def _read_sorted(self, rows: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, rows) -> np.ndarray:
        """The rows numbered ``rows`` (int64, any order, repeats allowed), in that order."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_rows):
            raise ValidationError(f"rows must be row numbers in [0, {self.n_rows}); got {rows.size} rows from "
                                  f"{rows.min()} to {rows.max()}")
        if rows.size < 2 or np.all(rows[1:] > rows[:-1]):
            return self._read_sorted(rows)
        uniq, inverse = np.unique(rows, return_inverse=True)
        return self._read_sorted(uniq)[inverse]

    def read_range(self, start: int, stop: int) -> np.ndarray:
        return self._read_sorted(np.arange(start, stop, dtype=np.int64))

    def chunks(self, size: int, start_row: int = 0):
        """``(first_row, rows)`` for consecutive blocks of ``size`` rows from ``start_row``."""
        for row in range(int(start_row), self.n_rows, int(size)):
            yield row, self.read_range(row, min(row + int(size), self.n_rows))

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def fingerprint(self) -> str:
        """:func:`coreset.data.input_fingerprint` of the rows, read through this source."""
        from ._fingerprint import _canonical_dtype, _digest

        dtype = _canonical_dtype(self.dtype, self.describe())
        return _digest((self.n_rows, self.dim), dtype, lambda spans: [self.read_range(a, b) for a, b in spans])

    @property
    def shards(self) -> list[tuple[str, int, str]]:
        """``[(path, n_rows, fingerprint)]`` of the files read; empty for an array."""
        path = getattr(self, "path", None)
        return [] if path is None else [(str(path), self.n_rows, self.fingerprint())]


class ArraySource(Source):
    """An array already in memory (numpy, memmap): rows are taken as they are."""

    in_memory = True

    def __init__(self, X):
        if np.ndim(X) != 2:
            raise ValidationError(f"X must be 2-D (rows x dimensions); got shape {np.shape(X)}")
        self.X = X
        self.n_rows, self.dim = (int(s) for s in X.shape)
        self.dtype = X.dtype

    def _read_sorted(self, rows):
        return np.ascontiguousarray(self.X[rows])

    def read_range(self, start, stop):
        return np.ascontiguousarray(self.X[start:stop])

    def describe(self):
        return "array"

    def fingerprint(self):
        from ._fingerprint import fingerprint

        return fingerprint(self.X)


def _open(path, fs):
    """A binary file handle on ``path`` (a pyarrow filesystem's when ``fs`` is given)."""
    if fs is None and os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        from ._readers import _kind  # opening a FIFO would wait for a writer forever

        raise InputFileError(f"{str(path)!r}: is not a regular file ({_kind(path)}); write the data to a file first")
    try:
        return open(path, "rb") if fs is None else fs.open_input_file(path)
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{str(path)!r}: cannot be read ({getattr(exc, 'strerror', None) or exc}); "
                             "was it removed or moved after the input was opened?") from None


class NpySource(Source):
    """A 2-D numeric C-ordered ``.npy`` file, read by byte offset."""

    def __init__(self, path, fs=None):
        self.path, self.fs = str(path), fs
        with _open(self.path, fs) as fh:
            try:
                version = np.lib.format.read_magic(fh)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(fh)
                self.offset = int(fh.tell())
                fh.seek(0, os.SEEK_END)
                size = int(fh.tell())
            except (ValueError, OSError, EOFError) as exc:
                raise InputFileError(f"{self.path!r}: not a readable .npy file ({exc})") from None
        if dtype.hasobject or dtype.kind not in "fiu":
            raise InputFileError(f"{self.path!r}: holds {dtype} values, not numbers")
        if len(shape) != 2:
            raise InputFileError(f"{self.path!r}: embeddings must be a 2-D array (rows x dimensions); got shape {shape}")
        if fortran and shape[0] > 1 and shape[1] > 1:
            raise InputFileError(f"{self.path!r}: a Fortran-ordered array cannot be read by rows; save it C-ordered")
        self.n_rows, self.dim = int(shape[0]), int(shape[1])
        self.dtype = np.dtype(dtype)
        need = self.offset + self.n_rows * self.row_bytes
        if size < need:
            raise InputFileError(f"{self.path!r}: truncated .npy file ({size} bytes, the header says {need})")

    @classmethod
    def from_header(cls, path, n, d, dtype, offset, fs=None):
        """The reader for a ``.npy`` whose header a caller has parsed and
        checked already (shape ``(n, d)``, C order, ``dtype``, data at ``offset``)."""
        self = cls.__new__(cls)
        self.path, self.n_rows, self.dim, self.dtype, self.offset = str(path), int(n), int(d), np.dtype(dtype), int(offset)
        self.fs = fs
        return self

    @property
    def row_bytes(self):
        return self.dim * self.dtype.itemsize

    def read_range(self, start, stop):
        count = (stop - start) * self.dim
        with _open(self.path, self.fs) as fh:
            fh.seek(self.offset + start * self.row_bytes)
            if self.fs is None:
                out = np.fromfile(fh, dtype=self.dtype, count=count)
            else:
                out = np.frombuffer(fh.read(count * self.dtype.itemsize), dtype=self.dtype).copy()
        if out.size != count:
            raise InputFileError(f"{self.path!r}: file is truncated (rows {start}..{stop})")
        return out.reshape(stop - start, self.dim)

    def _read_sorted(self, rows):
        out = np.empty((rows.size, self.dim), self.dtype)
        block = max(1, BLOCK_BYTES // max(self.row_bytes, 1))
        pos = 0
        while pos < rows.size:
            start = int(rows[pos])
            stop = min(self.n_rows, start + block, int(rows[-1]) + 1)  # never past the last row asked for
            end = int(np.searchsorted(rows, stop, side="left"))
            if (end - pos) * 64 >= stop - start or self.fs is not None:  # dense (or remote): one block read
                chunk = self.read_range(start, stop)
                out[pos:end] = chunk[rows[pos:end] - start]
            else:  # sparse rows: one read per row
                with _open(self.path, self.fs) as fh:
                    for i in range(pos, end):
                        fh.seek(self.offset + int(rows[i]) * self.row_bytes)
                        row = np.fromfile(fh, dtype=self.dtype, count=self.dim)
                        if row.size != self.dim:
                            raise InputFileError(f"{self.path!r}: file is truncated (row {int(rows[i])})")
                        out[i] = row
            pos = end
        return out

    def describe(self):
        return f"npy:{Path(self.path).name}"

    def fingerprint(self):
        if self.fs is not None:
            return super().fingerprint()
        from ._fingerprint import fingerprint

        return fingerprint(self.path)


class ParquetSource(Source):
    """A list (or fixed-size list) column of a ``.parquet`` file, read one row
    group at a time; ``chunks`` reads record batches."""

    def __init__(self, path, column=None, fs=None):
        from ._readers import _is_list, _pyarrow

        pa = _pyarrow()[0]
        self.path, self.column, self.fs = str(path), column, fs
        try:
            pf = self._file()
            meta, schema = pf.metadata, pf.schema_arrow
        except InputFileError:
            raise
        except Exception as exc:
            raise InputFileError(f"{self.path!r}: corrupt or truncated parquet file ({type(exc).__name__}: "
                                 f"{exc})") from None
        names = list(schema.names)
        lists = [n for n in names if _is_list(pa, schema.field(n).type)]
        if column is None:
            if len(lists) != 1:
                raise InputFileError(f"{self.path!r}: has {len(lists)} list columns ({', '.join(lists) or 'none'}); "
                                     "name the embeddings with column=")
            self.column = lists[0]
        elif column not in names:
            raise InputFileError(f"{self.path!r}: has no column {column!r}; columns: {', '.join(names)}")
        elif column not in lists:
            raise InputFileError(f"{self.path!r}: column {column!r} has type {schema.field(column).type}, "
                                 "not a list of numbers")
        t = schema.field(self.column).type
        vt = t.value_type
        if not (pa.types.is_floating(vt) or pa.types.is_integer(vt)):
            raise InputFileError(f"{self.path!r}: column {self.column!r} holds {vt} values, not numbers")
        self.dtype = np.dtype(vt.to_pandas_dtype())
        self.n_rows = int(meta.num_rows)
        self.group_starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
        self._cache = None
        self._width = None  # (numbers per row, the row group that set it)
        if pa.types.is_fixed_size_list(t):
            self.dim = int(t.list_size)
        else:
            groups = [g for g in range(len(self.group_starts) - 1) if self.group_starts[g + 1] > self.group_starts[g]]
            self.dim = int(self._group(groups[0]).shape[1]) if groups else 0

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = None
        return state

    def _file(self):
        from ._readers import _pyarrow

        if self.fs is None and not os.path.isfile(self.path):
            raise InputFileError(f"{self.path!r}: cannot be read (no such file); was it removed or moved after the "
                                 "input was opened?")
        return _pyarrow()[2].ParquetFile(self.path if self.fs is None else _open(self.path, self.fs))

    def _check_width(self, X, g, lo, hi):
        if self._width is None:
            self._width = (int(X.shape[1]), g)
        elif X.shape[1] != self._width[0]:  # each group is uniform (checked); groups may differ
            raise InputFileError(
                f"{self.path!r}: column {self.column!r} holds rows of different lengths: row group {g} (rows {lo} "
                f"to {hi - 1}) has {X.shape[1]} numbers per row, row group {self._width[1]} has {self._width[0]}; "
                "every embedding must have the same dimension")

    def _matrix(self, col, g, lo, hi):
        from ._readers import _list_column_to_matrix, _pyarrow

        pa, pc, _ = _pyarrow()
        try:
            X = _list_column_to_matrix(Path(self.path), pa, pc, pa.chunked_array([col]), self.column)
        except InputFileError as exc:  # rows of different lengths inside the group: say which group
            raise InputFileError(f"{exc} (in row group {g}, rows {lo} to {hi - 1})") from None
        if X.shape[0]:
            self._check_width(X, g, lo, hi)
        return X

    def _group(self, g):
        if self._cache is not None and self._cache[0] == g:
            return self._cache[1]
        lo, hi = int(self.group_starts[g]), int(self.group_starts[g + 1])
        try:
            col = self._file().read_row_group(g, columns=[self.column]).column(0).combine_chunks()
        except InputFileError:
            raise
        except Exception as exc:
            raise InputFileError(f"{self.path!r}: corrupt or truncated parquet file (row group {g}: "
                                 f"{type(exc).__name__}: {exc})") from None
        X = self._matrix(col, g, lo, hi)
        self._cache = (g, X) if X.nbytes <= _CACHE_BYTES else None  # a small group is kept for the next read
        return X

    def _read_sorted(self, rows):
        parts = []
        for g in range(len(self.group_starts) - 1):
            lo, hi = self.group_starts[g], self.group_starts[g + 1]
            a, b = np.searchsorted(rows, [lo, hi])
            if b > a:
                parts.append(self._group(g)[rows[a:b] - lo])
        return np.concatenate(parts) if parts else np.empty((0, self.dim), self.dtype)

    def read_range(self, start, stop):
        parts = []
        for g in range(len(self.group_starts) - 1):
            lo, hi = int(self.group_starts[g]), int(self.group_starts[g + 1])
            if lo < stop and hi > start:
                parts.append(self._group(g)[max(start, lo) - lo:min(stop, hi) - lo])
        return np.concatenate(parts) if parts else np.empty((0, self.dim), self.dtype)

    def _batches(self, start_row, size):
        pf = self._file()
        for g in range(len(self.group_starts) - 1):
            lo, hi = int(self.group_starts[g]), int(self.group_starts[g + 1])
            if hi <= start_row:
                continue
            row = lo
            try:
                batches = pf.iter_batches(batch_size=size, row_groups=[g], columns=[self.column])
                for batch in batches:
                    blo, bhi = row, row + batch.num_rows
                    row = bhi
                    X = self._matrix(batch.column(0), g, blo, bhi)
                    if bhi > start_row:
                        skip = max(0, start_row - blo)
                        yield blo + skip, X[skip:]
            except InputFileError:
                raise
            except Exception as exc:
                raise InputFileError(f"{self.path!r}: corrupt or truncated parquet file (row group {g}: "
                                     f"{type(exc).__name__}: {exc})") from None

    def chunks(self, size, start_row=0):
        # re-chunked to exactly ``size`` rows, so chunks do not depend on row groups
        return rechunk((X for _, X in self._batches(int(start_row), int(size))), size, start_row)

    def describe(self):
        return f"parquet:{Path(self.path).name}:{self.column}"

    def fingerprint(self):
        if self.fs is not None:
            return super().fingerprint()
        from ._fingerprint import fingerprint

        return fingerprint(self.path, column=self.column)


def file_source(path, column=None, fs=None) -> Source:
    """The source of one ``.npy`` / ``.parquet`` file (local, or on ``fs``)."""
    suffix = Path(str(path)).suffix.lower()
    if suffix == ".npy":
        if column is not None:
            raise InputFileError(f"{str(path)!r}: an .npy file holds one unnamed array; do not name a column")
        return NpySource(path, fs)
    if suffix in (".parquet", ".pq"):
        return ParquetSource(path, column, fs)
    raise InputFileError(f"{str(path)!r}: reads .npy or .parquet files, or a folder or glob of them; "
                         f"got {suffix or '(no suffix)'!r}")
