"""Many ``.npy`` or ``.parquet`` files as one input: a folder, a glob, or a
bucket URI (``scheme://...``, read through pyarrow's filesystems).

* **Which files.** A folder: its files named ``*.npy``, ``*.parquet`` or
  ``*.pq`` (not its subfolders; names starting with ``_`` or ``.``, such as
  ``_SUCCESS``, are skipped, other files are ignored). A glob (``*``, ``?``,
  ``[...]`` in the path): the files it matches, of those kinds. One kind per
  input: ``.npy`` and parquet shards mixed are refused.
* **Order.** Sorted by name (the full path for a glob), by code point: name
  shards with zero-padded numbers (``part-00000.parquet``, ...). Row numbers
  run across the shards in that order, so row ``i`` of the input is row
  ``i - offset`` of the shard holding it.
* **Checks.** Every shard has the same width and element type (else an error
  naming the shard); an empty folder or a glob matching nothing is an error;
  a shard that cannot be read later (removed mid-run) is named.
* **URIs.** ``file://``, ``s3://``, ``gs://``, ``hdfs://`` ... as
  ``pyarrow.fs.FileSystem.from_uri`` knows them; a glob only in the last part.
"""

from __future__ import annotations

import fnmatch
import glob as _glob
import importlib
import logging
import os
import re
from pathlib import Path

import numpy as np

from ..exceptions import InputFileError
from ._sources import SHARD_SUFFIXES, ArraySource, NpySource, Source, file_source, rechunk

__all__ = ["ShardedSource", "is_sharded", "is_uri", "open_path", "input_spec", "as_source"]

log = logging.getLogger(__name__)

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB = re.compile(r"[*?\[]")
#: what to install for a filesystem pyarrow cannot open, by URI scheme
_NEEDS = {"s3": "pyarrow built with S3 support (the PyPI wheel: pip install -U pyarrow)",
          "gs": "pyarrow built with GCS support (the PyPI wheel: pip install -U pyarrow)",
          "gcs": "pyarrow built with GCS support (the PyPI wheel: pip install -U pyarrow)",
          "hdfs": "a Java runtime and Hadoop's libhdfs (pyarrow loads them; see pyarrow.fs.HadoopFileSystem)",
          "viewfs": "a Java runtime and Hadoop's libhdfs (pyarrow loads them; see pyarrow.fs.HadoopFileSystem)"}


def is_uri(path) -> bool:
    return isinstance(path, str) and _URI.match(path) is not None


def input_spec(path):
    """``path`` as given on a command line, a URI restored when ``pathlib``
    folded its ``//`` (``Path("file:///d")`` is ``file:/d``, ``Path("s3://b/k")``
    is ``s3:/b/k``); other paths are returned as they are."""
    s = os.fspath(path)
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)(.*)$", s)
    if m is None or os.path.exists(s):
        return path
    scheme, rest = m.groups()
    return f"{scheme}:///{rest}" if scheme.lower() == "file" else f"{scheme}://{rest}"


def is_sharded(path) -> bool:
    """True when ``path`` names a sharded input (a URI, a glob, or a folder
    that is not a Hugging Face ``save_to_disk`` folder) rather than one file."""
    s = os.fspath(path)
    if os.path.isfile(s):  # a file, even one whose name has glob characters ("emb[1].npy")
        return False
    if is_uri(s) or _GLOB.search(s):
        return True
    if os.path.isdir(s):
        from ._readers import is_hf_folder

        return not is_hf_folder(s)
    return False


def _filesystem(uri: str):
    scheme = uri.split("://", 1)[0].lower()
    try:
        pafs = importlib.import_module("pyarrow.fs")
    except ImportError:
        raise InputFileError(f"{uri!r}: reading a {scheme}:// URI needs pyarrow: pip install pyarrow") from None
    try:
        return pafs.FileSystem.from_uri(uri)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        missing = (type(exc).__name__ == "ArrowNotImplementedError" or "Unrecognized filesystem type" in first
                   or "Unable to load" in first)
        if not missing:  # installed, but the bucket / host cannot be reached or read
            raise InputFileError(f"{uri!r}: cannot be opened ({first})") from None
        need = _NEEDS.get(scheme, "a pyarrow build with a filesystem for it (pyarrow reads file://, s3://, "
                                  "gs:// and hdfs:// URIs)")
        raise InputFileError(f"{uri!r}: no filesystem for {scheme}:// URIs is installed ({first}); install "
                             f"{need}") from None


def _keep(name: str) -> bool:
    return not name.startswith(("_", ".")) and Path(name).suffix.lower() in SHARD_SUFFIXES


def _list(spec: str):
    """(the shard paths, sorted, the filesystem or None) of a folder / glob / URI."""
    if is_uri(spec):
        fs, path = _filesystem(spec)
        pafs = importlib.import_module("pyarrow.fs")
        base, pattern = (path.rsplit("/", 1) if _GLOB.search(path.rsplit("/", 1)[-1]) else (path, None))
        if _GLOB.search(base):
            raise InputFileError(f"{spec!r}: in a URI a glob may appear only in the last part of the path")
        info = fs.get_file_info(base)
        if info.type == pafs.FileType.File and pattern is None:
            return [base], fs, "file"
        if info.type != pafs.FileType.Directory:
            raise InputFileError(f"{spec!r}: no such file or folder")
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=False))
        names = sorted(i.path for i in infos if i.type == pafs.FileType.File
                       and (pattern is None or fnmatch.fnmatchcase(i.base_name, pattern)) and _keep(i.base_name))
        return names, fs, "glob" if pattern else "folder"
    if _GLOB.search(spec):
        return sorted(p for p in _glob.glob(spec) if os.path.isfile(p) and _keep(os.path.basename(p))), None, "glob"
    if not os.path.isdir(spec):
        raise InputFileError(f"{spec!r}: no such file or folder")
    entries = [e for e in os.scandir(spec) if e.is_file()]
    skipped = [e.name for e in entries if not _keep(e.name)]
    if skipped:
        log.debug("%s: not shards, skipped: %s", spec, ", ".join(sorted(skipped)[:10]))
    return sorted(os.path.join(spec, e.name) for e in entries if _keep(e.name)), None, "folder"


def open_path(spec, column: str | None = None) -> Source:
    """The source for a folder, glob or URI (a :class:`ShardedSource`; a URI
    naming one file gives that file's source)."""
    spec = os.fspath(spec)
    paths, fs, kind = _list(spec)
    if kind == "file":
        return file_source(paths[0], column, fs)
    if not paths:
        what = "the glob matches no" if kind == "glob" else "the folder holds no"
        raise InputFileError(f"{spec!r}: {what} .npy or .parquet shards (files named *.npy, *.parquet or *.pq; "
                             "names starting with _ or . are skipped)")
    kinds = {".npy" if p.lower().endswith(".npy") else "parquet" for p in paths}
    if len(kinds) > 1:
        n_npy = sum(p.lower().endswith(".npy") for p in paths)
        raise InputFileError(f"{spec!r}: mixes .npy ({n_npy}) and parquet ({len(paths) - n_npy}) shards; one input "
                             "holds shards of one kind: move one kind elsewhere or name the other with a glob")
    return ShardedSource([file_source(p, column, fs) for p in paths], spec)


class ShardedSource(Source):
    """Shards (file sources of one width and element type) read as one input;
    row numbers run across the shards in order."""

    def __init__(self, parts: list[Source], spec: str = "shards"):
        if not parts:
            raise InputFileError(f"{spec!r}: no shards")
        self.parts, self.spec = list(parts), str(spec)
        first = self.parts[0]
        j = next((j for j, s in enumerate(self.parts) if s.n_rows), 0)  # the width: the first shard with rows
        for i, s in enumerate(self.parts):
            if s.n_rows and s.dim != self.parts[j].dim:
                raise InputFileError(f"{s.path!r}: shard {i} of {spec!r} has {s.dim} numbers per row, shard {j} "
                                     f"({self.parts[j].path!r}) has {self.parts[j].dim}; every shard must have the "
                                     "same width")
            if s.dtype != first.dtype:
                raise InputFileError(f"{s.path!r}: shard {i} of {spec!r} holds {s.dtype} values, shard 0 "
                                     f"({first.path!r}) holds {first.dtype}; every shard must have the same type")
        self.offsets = np.cumsum([0] + [s.n_rows for s in self.parts]).astype(np.int64)
        self.n_rows = int(self.offsets[-1])
        self.dim = self.parts[j].dim
        self.dtype = first.dtype
        self._shards = None

    def _pieces(self, start, stop):
        for i in range(int(np.searchsorted(self.offsets, start, side="right")) - 1, len(self.parts)):
            lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
            if lo >= stop:
                break
            if hi > start:
                yield i, lo, max(start, lo) - lo, min(stop, hi) - lo

    def _guard(self, i, read):
        try:
            return read(self.parts[i])
        except InputFileError as exc:
            raise InputFileError(f"shard {i} of {self.spec!r}: {exc}") from None

    def read_range(self, start, stop):
        parts = [self._guard(i, lambda s, a=a, b=b: s.read_range(a, b)) for i, _, a, b in self._pieces(start, stop)]
        return np.concatenate(parts) if len(parts) != 1 else parts[0]

    def _read_sorted(self, rows):
        cut = np.searchsorted(rows, self.offsets)
        parts = [self._guard(i, lambda s, r=rows[cut[i]:cut[i + 1]] - self.offsets[i]: s._read_sorted(r))
                 for i in range(len(self.parts)) if cut[i + 1] > cut[i]]
        if not parts:
            return np.empty((0, self.dim), self.dtype)
        return np.concatenate(parts) if len(parts) != 1 else parts[0]

    def chunks(self, size, start_row=0):
        return rechunk(self._blocks(int(size), int(start_row)), size, start_row)

    def _blocks(self, size, start_row):
        """Each shard's own chunks from ``start_row`` on, in row order (a failing shard named)."""
        for i, lo, a, _ in self._pieces(start_row, self.n_rows):
            it = self.parts[i].chunks(size, a)
            while True:
                item = self._guard(i, lambda s, it=it: next(it, None))
                if item is None:
                    break
                yield item[1]

    def describe(self):
        return f"shards:{len(self.parts)}:{self.spec}"

    @property
    def shards(self) -> list[tuple[str, int, str]]:
        """``[(path, n_rows, fingerprint)]`` of each shard, in row order."""
        if self._shards is None:
            self._shards = [(str(s.path), int(s.n_rows), self._guard(i, lambda s: s.fingerprint()))
                            for i, s in enumerate(self.parts)]
        return self._shards

    def shards_meta(self) -> list[dict]:
        """:attr:`shards` as the index file's metadata records them."""
        return [{"path": p, "n_rows": n, "fingerprint": fp} for p, n, fp in self.shards]


def as_source(X, column=None) -> Source:
    """A :class:`Source` from a source as is, a path (``.npy``, ``.parquet``,
    a folder or glob of such shards, a ``scheme://`` URI), a memory map of a
    whole ``.npy`` file, or an array."""
    if isinstance(X, Source):
        return X
    if isinstance(X, (str, os.PathLike)):
        if is_sharded(X):
            return open_path(X, column)
        p = Path(X)
        if not p.exists():
            raise InputFileError(f"{str(p)!r}: no such file")
        if p.is_dir():
            raise InputFileError(f"{str(p)!r}: is a folder, not a file")
        return file_source(p, column)
    if isinstance(X, np.memmap) and X.ndim == 2 and X.flags.c_contiguous and X.filename:
        try:  # the whole .npy file mapped as is (not a slice of it): read it by rows
            src = NpySource(X.filename)
            if (src.n_rows, src.dim, src.dtype, src.offset) == (X.shape[0], X.shape[1], X.dtype, X.offset):
                return src
        except InputFileError:
            pass
    from .._validation import as_embeddings

    return ArraySource(as_embeddings(X))
