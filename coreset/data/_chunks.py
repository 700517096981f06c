"""The stream's view of an input: chunks numbered from 0, with bounded memory.

Files, arrays and shards are read through the one row source
(:mod:`coreset.data._sources`, :mod:`coreset.data._shards`): :class:`RowChunks`
numbers its ``chunks(size)``. Only a plain iterable of 2-D arrays is read
here (:class:`IterSource`: the chunks as given; their length is unknown until
the end, and it can be read once only unless the caller re-creates it).

Every source yields ``(chunk_number, first_row, array)``; the chunk number is
what error messages name.
"""

from __future__ import annotations

import os

import numpy as np

from .._defaults import CHUNK_SIZE
from ..exceptions import ValidationError

__all__ = ["ChunkSource", "RowChunks", "IterSource", "open_source"]


class ChunkSource:
    """Base: ``n_rows`` (None when unknown), ``d``, ``chunks(start_row)``,
    ``read_rows(sorted indices)`` (None when not re-readable), ``fingerprint()``."""

    n_rows: int | None = None
    d: int | None = None
    dtype = None
    description = "stream"
    chunk_size = CHUNK_SIZE

    def chunks(self, start_row: int = 0, start_chunk: int = 0):  # pragma: no cover - abstract
        raise NotImplementedError

    def read_rows(self, rows: np.ndarray):
        return None

    def fingerprint(self) -> str | None:
        """The input fingerprint (:func:`coreset.data.input_fingerprint`), or
        None: a stream over a plain iterator of chunks cannot be read again."""
        return None


class RowChunks(ChunkSource):
    """A row source (:mod:`coreset.data._sources`: an array, a ``.npy`` or
    ``.parquet`` file, or shards of them) read ``chunk_size`` rows at a time,
    numbered from ``start_chunk``."""

    def __init__(self, source, chunk_size: int):
        self.source, self.chunk_size = source, chunk_size
        self.n_rows, self.d, self.dtype = source.n_rows, source.dim, source.dtype
        self.path = getattr(source, "path", None)
        self.description = str(self.path) if self.path is not None else getattr(source, "spec", source.describe())

    def chunks(self, start_row=0, start_chunk=0):
        for ci, (row, X) in enumerate(self.source.chunks(self.chunk_size, start_row), start_chunk):
            yield ci, row, X

    def read_rows(self, rows):
        return self.source.read(rows)

    def fingerprint(self):
        return self.source.fingerprint()

    @property
    def shards(self):
        return self.source.shards


class IterSource(ChunkSource):
    """Chunks as the iterable gives them (``chunk_size`` does not apply)."""

    def __init__(self, chunks):
        self._it = iter(chunks)
        self.description = "iterator"

    def chunks(self, start_row=0, start_chunk=0):
        row = 0
        for ci, X in enumerate(self._it):
            X = _torch_numpy(X) if type(X).__module__.startswith("torch") else np.asarray(X)
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


def _torch_numpy(t) -> np.ndarray:
    """A tensor's values as numpy; bfloat16 / float8 (no numpy dtype) as the
    float32 that holds them exactly, as ``coreset.select`` reads them."""
    t = t.detach().cpu()
    if t.is_floating_point() and t.element_size() < 4 and str(t.dtype) != "torch.float16":
        t = t.float()
    return t.numpy()


def open_source(source, chunk_size: int, column: str | None = None) -> ChunkSource:
    """The :class:`ChunkSource` for a path (a file, or a folder / glob / URI
    of shards), a row source, an array or an iterable of arrays."""
    from ._shards import as_source
    from ._sources import ArraySource, Source

    if isinstance(source, (str, os.PathLike, Source)):
        return RowChunks(as_source(source, column), chunk_size)
    if isinstance(source, np.ndarray):
        return RowChunks(ArraySource(source), chunk_size)
    if type(source).__module__.startswith("torch"):
        return RowChunks(ArraySource(_torch_numpy(source)), chunk_size)
    if hasattr(source, "__iter__"):
        return IterSource(source)
    raise ValidationError(f"source must be a .npy/.parquet path (or a folder or glob of them), an array or an "
                          f"iterable of 2-D arrays; got {type(source).__name__}")
