"""Where a shard's rows come from: an in-memory array, a ``.npy`` file or a
``.parquet`` file. A source is small and picklable (a path, a shape, a
dtype): it is what a worker receives, and the worker reads only its rows.

``read(rows)`` takes sorted global row numbers and reads the file in blocks
(``np.fromfile`` at an offset for ``.npy``, one row group at a time for
parquet), keeping only the rows asked for, so a reader holds at most one
block plus its own rows; file pages are never mapped, so they do not count
in the reader's resident memory.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..exceptions import InputFileError, ValidationError

__all__ = ["Source", "ArraySource", "NpySource", "ParquetSource", "as_source", "BLOCK_BYTES"]

#: bytes read per block by the file sources
BLOCK_BYTES = 16 * 2**20


class Source:
    """Rows of an (n, d) float matrix, read by row number."""

    n: int
    d: int
    dtype: np.dtype
    in_memory = False

    def read(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def read_range(self, start: int, stop: int) -> np.ndarray:
        return self.read(np.arange(start, stop, dtype=np.int64))

    def describe(self) -> str:
        raise NotImplementedError


def _check_rows(rows, n):
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size and (rows[0] < 0 or rows[-1] >= n or np.any(np.diff(rows) <= 0)):
        raise ValidationError(f"rows must be sorted, unique and in [0, {n}); got {rows.size} rows from "
                              f"{rows.min()} to {rows.max()}")
    return rows


class ArraySource(Source):
    """An array already in memory (numpy, memmap): rows are taken as they are."""

    in_memory = True

    def __init__(self, X):
        self.X = X
        self.n, self.d = (int(s) for s in X.shape)
        self.dtype = X.dtype

    def read(self, rows):
        return np.ascontiguousarray(self.X[_check_rows(rows, self.n)])

    def read_range(self, start, stop):
        return np.ascontiguousarray(self.X[start:stop])

    def describe(self):
        return "array"


class NpySource(Source):
    """A 2-D float32/float64 ``.npy`` file, read by byte offset."""

    def __init__(self, path):
        self.path = str(path)
        try:
            arr = np.load(self.path, mmap_mode="r")  # header only: nothing is read yet
        except (OSError, ValueError) as exc:
            raise InputFileError(f"{self.path!r}: cannot be read as .npy ({exc})") from None
        if arr.ndim != 2 or arr.dtype not in (np.float32, np.float64) or arr.dtype.byteorder == ">":
            raise InputFileError(f"{self.path!r}: need a 2-D float32/float64 array; got {arr.dtype} {arr.shape}")
        if np.isfortran(arr) and arr.shape[0] > 1 and arr.shape[1] > 1:
            raise InputFileError(f"{self.path!r}: Fortran-ordered arrays cannot be read by rows; save it C-ordered")
        self.n, self.d = (int(s) for s in arr.shape)
        self.dtype = arr.dtype
        self.offset = int(arr.offset)
        del arr

    @classmethod
    def from_header(cls, path, n, d, dtype, offset):
        """The reader for a ``.npy`` whose header a caller has parsed and
        checked already (shape ``(n, d)``, C order, ``dtype``, data at ``offset``)."""
        self = cls.__new__(cls)
        self.path, self.n, self.d, self.dtype, self.offset = str(path), int(n), int(d), np.dtype(dtype), int(offset)
        return self

    @property
    def row_bytes(self):
        return self.d * self.dtype.itemsize

    def read_range(self, start, stop):
        with open(self.path, "rb") as fh:
            fh.seek(self.offset + start * self.row_bytes)
            out = np.fromfile(fh, dtype=self.dtype, count=(stop - start) * self.d)
        if out.size != (stop - start) * self.d:
            raise InputFileError(f"{self.path!r}: file is truncated (rows {start}..{stop})")
        return out.reshape(stop - start, self.d)

    def read(self, rows):
        rows = _check_rows(rows, self.n)
        out = np.empty((rows.size, self.d), self.dtype)
        block = max(1, BLOCK_BYTES // self.row_bytes)
        pos = 0
        while pos < rows.size:
            start = int(rows[pos])
            stop = min(self.n, start + block, int(rows[-1]) + 1)  # never past the last row asked for
            end = int(np.searchsorted(rows, stop, side="left"))
            if (end - pos) * 64 >= stop - start:  # one in 64 rows or more: read the block sequentially
                chunk = self.read_range(start, stop)
                out[pos:end] = chunk[rows[pos:end] - start]
            else:  # sparse rows: one read per row
                with open(self.path, "rb") as fh:
                    for i in range(pos, end):
                        fh.seek(self.offset + int(rows[i]) * self.row_bytes)
                        out[i] = np.fromfile(fh, dtype=self.dtype, count=self.d)
            pos = end
        return out

    def describe(self):
        return f"npy:{Path(self.path).name}"


class ParquetSource(Source):
    """A list (or fixed-size list) column of a ``.parquet`` file, read one row
    group at a time."""

    def __init__(self, path, column=None):
        from ._readers import _pyarrow

        pq = _pyarrow()[2]
        self.path, self.column = str(path), column
        try:
            meta = pq.ParquetFile(self.path).metadata
            schema = pq.read_schema(self.path)
        except (OSError, ValueError) as exc:
            raise InputFileError(f"{self.path!r}: cannot be read as parquet ({exc})") from None
        lists = [f.name for f in schema if str(f.type).startswith(("list", "fixed_size_list", "large_list"))]
        if column is None:
            if len(lists) != 1:
                raise InputFileError(f"{self.path!r}: give column= (list columns: {', '.join(lists) or 'none'})")
            self.column = lists[0]
        elif column not in lists:
            raise InputFileError(f"{self.path!r}: no list column {column!r} (list columns: {', '.join(lists)})")
        self.n = int(meta.num_rows)
        self.group_starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
        first = self._group(0)
        self.d, self.dtype = int(first.shape[1]), first.dtype

    def _group(self, i):
        from ._readers import _pyarrow

        pq = _pyarrow()[2]
        table = pq.ParquetFile(self.path).read_row_group(i, columns=[self.column])
        col = table.column(0).combine_chunks()
        values = col.flatten().to_numpy(zero_copy_only=False)
        arr = values.reshape(len(col), -1) if len(col) else values.reshape(0, 0)
        return arr if arr.dtype in (np.float32, np.float64) else arr.astype(np.float32)

    def read(self, rows):
        rows = _check_rows(rows, self.n)
        parts = []
        for g in range(len(self.group_starts) - 1):
            lo, hi = self.group_starts[g], self.group_starts[g + 1]
            a, b = np.searchsorted(rows, [lo, hi])
            if b > a:
                parts.append(self._group(g)[rows[a:b] - lo])
        return np.concatenate(parts) if parts else np.empty((0, self.d), self.dtype)

    def describe(self):
        return f"parquet:{Path(self.path).name}:{self.column}"


def as_source(X, column=None) -> Source:
    """A :class:`Source` from an array, a memmap, a path (``.npy``, ``.parquet``)
    or a source as is."""
    if isinstance(X, Source):
        return X
    if isinstance(X, (str, os.PathLike)):
        p = Path(X)
        if not p.is_file():
            raise InputFileError(f"{str(p)!r}: no such file")
        if p.suffix.lower() == ".npy":
            return NpySource(p)
        if p.suffix.lower() in (".parquet", ".pq"):
            return ParquetSource(p, column)
        raise InputFileError(f"{str(p)!r}: GreeDi reads .npy or .parquet files; got {p.suffix or '(no suffix)'!r}")
    if isinstance(X, np.memmap) and X.ndim == 2 and X.flags.c_contiguous and X.filename:
        try:  # the whole .npy file mapped as is (not a slice of it): read it by rows
            src = NpySource(X.filename)
            if (src.n, src.d, src.dtype, src.offset) == (X.shape[0], X.shape[1], X.dtype, X.offset):
                return src
        except InputFileError:
            pass
    from .._validation import as_embeddings

    return ArraySource(as_embeddings(X))
