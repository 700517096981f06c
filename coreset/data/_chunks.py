"""Chunk readers for streaming: rows of an embedding matrix, a chunk at a time,
with bounded memory.

* ``.npy``: explicit reads (``np.fromfile`` with ``offset`` / ``count``), never a
  memory map, so the pages read do not stay in the process's resident set; the
  reading itself is :class:`coreset.data._sources.NpySource`'s (the rows GreeDi's
  workers read), this module adds the header checks and the chunking.
* ``.parquet``: record batches of the one list / fixed-size-list column
  (``pyarrow.parquet.ParquetFile.iter_batches``).
* an in-memory array (numpy, memmap): slices.
* any iterable of 2-D arrays: the chunks as given (their length is unknown
  until the end; it can be read once only unless the caller re-creates it).

Every source yields ``(chunk_number, first_row, array)``; the chunk number is
what error messages name.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..exceptions import InputFileError, ValidationError
from ._sources import NpySource as RowReader

__all__ = ["ChunkSource", "open_source"]

_BLOCK = 1 << 16  # bytes per sampled block of the fingerprint
_N_BLOCKS = 8


def _blocks_sha256(path, size: int) -> str:
    """sha256 of ``_N_BLOCKS`` blocks of ``_BLOCK`` bytes spread evenly over the file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for b in range(_N_BLOCKS):
            fh.seek(int(b * max(size - _BLOCK, 0) / max(_N_BLOCKS - 1, 1)))
            h.update(fh.read(_BLOCK))
    return h.hexdigest()


class ChunkSource:
    """Base: ``n_rows`` (None when unknown), ``d``, ``chunks(start_row)``,
    ``read_rows(sorted indices)`` (None when not re-readable), ``fingerprint()``."""

    n_rows: int | None = None
    d: int | None = None
    dtype = None
    description = "stream"
    chunk_size = 65536

    def chunks(self, start_row: int = 0, start_chunk: int = 0):  # pragma: no cover - abstract
        raise NotImplementedError

    def read_rows(self, rows: np.ndarray):
        return None

    def fingerprint(self) -> dict:
        return {"kind": type(self).__name__}


class NpySource(ChunkSource):
    def __init__(self, path: Path, chunk_size: int):
        self.path = path
        self.chunk_size = chunk_size
        self.description = str(path)
        try:
            with open(path, "rb") as fh:
                version = np.lib.format.read_magic(fh)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, fortran, dtype = read(fh)
                self.offset = fh.tell()
        except (ValueError, OSError, EOFError) as exc:
            raise InputFileError(f"{str(path)!r}: not a readable .npy file ({exc})") from None
        if dtype.hasobject:
            raise InputFileError(f"{str(path)!r}: holds Python objects; only numeric arrays are read")
        if len(shape) != 2:
            raise InputFileError(f"{str(path)!r}: embeddings must be a 2-D array (rows x dimensions); got shape {shape}")
        if fortran:
            raise InputFileError(f"{str(path)!r}: a Fortran-ordered array cannot be streamed by rows; save it C-ordered")
        if dtype.kind not in "fiu":
            raise InputFileError(f"{str(path)!r}: holds {dtype} values, not numbers")
        self.n_rows, self.d = int(shape[0]), int(shape[1])
        self.dtype = dtype
        self.size = path.stat().st_size
        need = self.offset + self.n_rows * self.d * dtype.itemsize
        if self.size < need:
            raise InputFileError(f"{str(path)!r}: truncated .npy file ({self.size} bytes, the header says {need})")
        self._rows = RowReader.from_header(path, self.n_rows, self.d, dtype, self.offset)  # the shared reader

    def chunks(self, start_row=0, start_chunk=0):
        row, ci = start_row, start_chunk
        while row < self.n_rows:
            c = min(self.chunk_size, self.n_rows - row)
            yield ci, row, self._rows.read_range(row, row + c)
            row += c
            ci += 1

    def read_rows(self, rows):
        return self._rows.read(rows)

    def fingerprint(self):
        return {"kind": "npy", "path": str(self.path.resolve()), "size": self.size,
                "shape": [self.n_rows, self.d], "dtype": self.dtype.str,
                "blocks_sha256": _blocks_sha256(self.path, self.size)}


class ParquetSource(ChunkSource):
    def __init__(self, path: Path, chunk_size: int, column: str | None):
        from ._readers import _check_file, _is_list, _parquet_schema, _pyarrow

        pa, _, pq = _pyarrow()
        p, _, head = _check_file(path, (".parquet", ".pq"), "embeddings")
        schema = _parquet_schema(p, head)
        names = list(schema.names)
        if column is None:
            lists = [n for n in names if _is_list(pa, schema.field(n).type)]
            if len(lists) != 1:
                raise InputFileError(f"{str(p)!r}: has {len(lists)} list columns ({', '.join(lists) or 'none'}); "
                                     "name the embeddings with column=")
            column = lists[0]
        elif column not in names:
            raise InputFileError(f"{str(p)!r}: has no column {column!r}; columns: {', '.join(names)}")
        self.path, self.column, self.chunk_size = p, column, chunk_size
        self.description = str(p)
        self._pq = pq
        self.file = pq.ParquetFile(p)
        self.n_rows = int(self.file.metadata.num_rows)
        self.size = p.stat().st_size
        self.dtype = None

    def _batches(self, start_row):
        from ._readers import _list_column_to_matrix, _pyarrow

        pa, pc, _ = _pyarrow()
        row = 0
        for rg in range(self.file.num_row_groups):
            n = self.file.metadata.row_group(rg).num_rows
            if row + n <= start_row:
                row += n
                continue
            for batch in self.file.iter_batches(batch_size=self.chunk_size, row_groups=[rg], columns=[self.column]):
                X = _list_column_to_matrix(self.path, pa, pc, pa.chunked_array([batch.column(0)]), self.column)
                if row + X.shape[0] <= start_row:
                    row += X.shape[0]
                    continue
                skip = max(0, start_row - row)
                yield row + skip, X[skip:]
                row += X.shape[0]

    def chunks(self, start_row=0, start_chunk=0):
        # re-chunk to exactly chunk_size rows, so chunk numbers do not depend on row groups
        buf, buf_row, ci = [], start_row, start_chunk
        have = 0
        for _, X in self._batches(start_row):
            buf.append(X)
            have += X.shape[0]
            while have >= self.chunk_size:
                allx = np.concatenate(buf) if len(buf) > 1 else buf[0]
                yield ci, buf_row, allx[:self.chunk_size]
                ci += 1
                buf_row += self.chunk_size
                rest = allx[self.chunk_size:]
                buf, have = ([rest] if rest.shape[0] else []), rest.shape[0]
        if have:
            yield ci, buf_row, np.concatenate(buf) if len(buf) > 1 else buf[0]

    def read_rows(self, rows):
        rows = np.asarray(rows, np.int64)
        out, pos = [], 0
        for _, row0, X in self.chunks(0):
            hi = np.searchsorted(rows, row0 + X.shape[0])
            if hi > pos:
                out.append(X[rows[pos:hi] - row0])
                pos = hi
            if pos == rows.size:
                break
        return np.concatenate(out) if out else None

    def fingerprint(self):
        return {"kind": "parquet", "path": str(self.path.resolve()), "size": self.size, "rows": self.n_rows,
                "column": self.column, "blocks_sha256": _blocks_sha256(self.path, self.size)}


class ArraySource(ChunkSource):
    def __init__(self, X, chunk_size: int):
        if X.ndim != 2:
            raise ValidationError(f"X must be 2-D (rows x dimensions); got shape {X.shape}")
        self.X, self.chunk_size = X, chunk_size
        self.n_rows, self.d, self.dtype = int(X.shape[0]), int(X.shape[1]), X.dtype
        self.description = "array"

    def chunks(self, start_row=0, start_chunk=0):
        ci = start_chunk
        for row in range(start_row, self.n_rows, self.chunk_size):
            yield ci, row, np.asarray(self.X[row:row + self.chunk_size])
            ci += 1

    def read_rows(self, rows):
        return np.asarray(self.X[np.asarray(rows, np.int64)])

    def fingerprint(self):
        from ._readers import input_fingerprint

        return {"kind": "array", "shape": list(self.X.shape), "dtype": self.X.dtype.str,
                "sha256": input_fingerprint(self.X)}


class IterSource(ChunkSource):
    """Chunks as the iterable gives them (``chunk_size`` does not apply)."""

    def __init__(self, chunks):
        self._it = iter(chunks)
        self.description = "iterator"

    def chunks(self, start_row=0, start_chunk=0):
        row = 0
        for ci, X in enumerate(self._it):
            X = np.asarray(X)
            if X.ndim != 2:
                raise ValidationError(f"chunk {ci} must be 2-D (rows x dimensions); got shape {X.shape}")
            if ci < start_chunk:
                row += X.shape[0]
                continue
            if ci == start_chunk and row != start_row:
                raise ValidationError(f"resuming at chunk {ci}: the earlier chunks hold {row} rows, "
                                      f"the checkpoint expects {start_row}; the iterator differs from the first run")
            yield ci, row, X
            row += X.shape[0]


def open_source(source, chunk_size: int, column: str | None = None) -> ChunkSource:
    """The :class:`ChunkSource` for a path, an array or an iterable of arrays."""
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if not p.is_file():
            raise InputFileError(f"{str(p)!r}: no such file")
        suffix = p.suffix.lower()
        if suffix == ".npy":
            if column is not None:
                raise InputFileError(f"{str(p)!r}: an .npy file holds one unnamed array; do not name a column")
            return NpySource(p, chunk_size)
        if suffix in (".parquet", ".pq"):
            return ParquetSource(p, chunk_size, column)
        raise InputFileError(f"{str(p)!r}: streaming reads .npy or .parquet files; got {suffix or 'no suffix'!r}")
    if isinstance(source, np.ndarray):
        return ArraySource(source, chunk_size)
    if type(source).__module__.startswith("torch"):
        return ArraySource(source.detach().cpu().numpy(), chunk_size)
    if hasattr(source, "__iter__"):
        return IterSource(source)
    raise ValidationError(f"source must be a .npy/.parquet path, an array or an iterable of 2-D arrays; "
                          f"got {type(source).__name__}")
