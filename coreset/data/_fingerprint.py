"""One input fingerprint, ``"sha256:<64 hex>"``, defined on the DATA: the
number of rows, the shape of a row, the element type and the values. The same
rows give the same string whatever holds them: a numpy array, a memory map, a
torch tensor (on any device), the ``.npy`` file it was saved to, a ``.parquet``
file with the rows in a list column, a row source streaming them, or a dense
or scipy sparse (precomputed similarity) matrix.

What is hashed (``docs/index-files.md``, "The input fingerprint"):

1. a header, ``coreset-fingerprint/2``, the shape (``N`` x row shape) and the
   element type's canonical numpy code: little-endian, and floats narrower than
   32 bits (float16, bfloat16, float8) as float32, which holds them exactly;
2. bytes of the data viewed as that canonical type, C (row-major) order. Up to
   :data:`FULL_LIMIT` bytes (6 MiB) every byte; above, a sample: the first and
   the last MiB and :data:`N_BLOCKS` (65) blocks of :data:`BLOCK` (64 KiB) bytes
   evenly spaced in between, the middle one centred on the data's middle byte
   (:func:`sample_spans` gives the byte ranges). A change outside the sample of
   a large input is not seen.

Reading a path never loads it whole: ``.npy`` is memory-mapped (only the
sampled pages are read), ``.parquet`` is read one record batch of the row
groups holding sampled rows at a time. ``.npz`` and ``.pt`` files are read with
:func:`~coreset.data.read_embeddings` (these formats have no random access).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

import numpy as np

from ..exceptions import InputFileError, ValidationError

__all__ = ["fingerprint", "is_fingerprint", "sample_spans", "file_sha256", "legacy_fingerprints",
           "SCHEME", "FULL_LIMIT", "HEAD", "TAIL", "N_BLOCKS", "BLOCK"]

log = logging.getLogger(__name__)

SCHEME = "coreset-fingerprint/2"
#: bytes hashed from the start and from the end of a large input
HEAD = TAIL = 1 << 20
#: evenly spaced blocks hashed between them, and their size in bytes
N_BLOCKS, BLOCK = 65, 1 << 16
#: inputs of at most this many bytes are hashed whole
FULL_LIMIT = HEAD + TAIL + N_BLOCKS * BLOCK

_FORM = re.compile(r"sha256:[0-9a-f]{64}")


def is_fingerprint(value) -> bool:
    """True when ``value`` is a well-formed fingerprint: ``"sha256:"`` and 64
    lowercase hex digits."""
    return isinstance(value, str) and _FORM.fullmatch(value) is not None


def sample_spans(total: int) -> list[tuple[int, int]]:
    """The byte ranges ``[start, stop)`` of the canonical row-major data that
    are hashed, for data of ``total`` bytes: all of it up to
    :data:`FULL_LIMIT`; else the first :data:`HEAD` bytes, :data:`N_BLOCKS`
    blocks of :data:`BLOCK` bytes, block ``i`` starting at
    ``HEAD + floor(i * (total - HEAD - TAIL - BLOCK) / (N_BLOCKS - 1))``,
    and the last :data:`TAIL` bytes (disjoint, in order)."""
    total = int(total)
    if total <= 0:
        return []
    if total <= FULL_LIMIT:
        return [(0, total)]
    middle = total - HEAD - TAIL
    spans = [(0, HEAD)]
    for i in range(N_BLOCKS):
        a = HEAD + (i * (middle - BLOCK)) // (N_BLOCKS - 1)
        spans.append((a, a + BLOCK))
    spans.append((total - TAIL, total))
    return spans


def _canonical_dtype(dt: np.dtype, what: str) -> np.dtype:
    dt = np.dtype(dt)
    if dt.kind == "f" and dt.itemsize < 4:
        return np.dtype("<f4")
    if dt.kind not in "fiub" or dt.fields is not None or dt.subdtype is not None:
        raise ValidationError(f"cannot fingerprint {what}: it holds {dt} values; a fingerprint is defined on "
                              "numeric arrays (float, integer or bool)")
    return dt.newbyteorder("<")


def _digest(shape: tuple, dtype: np.dtype, read) -> str:
    """sha256 of the header and the sampled bytes; ``read(row_spans)`` returns
    one C-ordered array of ``dtype`` per ``(r0, r1)`` row span."""
    h = hashlib.sha256(f"{SCHEME}\nshape={'x'.join(str(int(s)) for s in shape)}\ndtype={dtype.str}\n".encode())
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    spans = sample_spans(int(shape[0]) * row_bytes) if row_bytes else []
    rows = [(a // row_bytes, -(-b // row_bytes)) for a, b in spans]
    for (a, b), (r0, _), block in zip(spans, rows, read(rows)):
        flat = np.ascontiguousarray(block, dtype=dtype).reshape(-1).view(np.uint8)
        h.update(flat[a - r0 * row_bytes:b - r0 * row_bytes])
    return "sha256:" + h.hexdigest()


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _torch_rows(t):
    if t.dim() == 0:
        raise ValidationError("cannot fingerprint a 0-d tensor; a fingerprint is defined on rows of data")
    narrow = t.is_floating_point() and t.element_size() < 4  # bfloat16 / float16 / float8: hashed as float32
    probe = t[:0].detach().cpu()
    dtype = np.dtype("<f4") if narrow else _canonical_dtype(probe.numpy().dtype, "the tensor")

    def read(spans):
        out = []
        for r0, r1 in spans:
            part = t[r0:r1].detach().cpu()
            out.append((part.float() if narrow else part).numpy())
        return out

    return tuple(t.shape), dtype, read


def _array_rows(X, what="the array"):
    if X.ndim == 0:
        raise ValidationError(f"cannot fingerprint {what}: it is a 0-d scalar; a fingerprint is defined on rows")
    dtype = _canonical_dtype(X.dtype, what)
    return X.shape, dtype, lambda spans: [X[r0:r1] for r0, r1 in spans]


def _sparse_rows(S):
    S = S.tocsr()
    dtype = _canonical_dtype(S.dtype, "the sparse matrix")
    return S.shape, dtype, lambda spans: [S[r0:r1].toarray() for r0, r1 in spans]


def _parquet_rows(p: Path, head: bytes, column):
    from ._readers import _err, _is_list, _list_column_to_matrix, _parquet_schema, _pyarrow

    pa, pc, pq = _pyarrow()
    schema = _parquet_schema(p, head)
    names = list(schema.names)
    if column is None:
        lists = [n for n in names if _is_list(pa, schema.field(n).type)]
        if len(lists) != 1:
            what = "no list column" if not lists else f"{len(lists)} list columns ({', '.join(lists)})"
            raise _err(p, f"has {what}; name the embeddings column with column= (columns: {', '.join(names)})")
        column = lists[0]
    elif column not in names:
        raise _err(p, f"has no column {column!r}; columns: {', '.join(names)}")
    t = schema.field(column).type
    if not _is_list(pa, t):
        raise _err(p, f"column {column!r} has type {t}, not a list of numbers")
    vt = t.value_type
    if not (pa.types.is_floating(vt) or pa.types.is_integer(vt)):
        raise _err(p, f"column {column!r} holds {vt} values, not numbers")
    dtype = _canonical_dtype(np.dtype(vt.to_pandas_dtype()), repr(str(p)))
    try:
        pf = pq.ParquetFile(p)
        n = int(pf.metadata.num_rows)
        sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)]
        if pa.types.is_fixed_size_list(t):
            d = t.list_size
        else:  # the first row's length: the reader refuses rows of other lengths
            d = 0
            for batch in pf.iter_batches(batch_size=1, columns=[column]):
                if batch.num_rows:
                    first = batch.column(0)
                    if first.null_count:
                        raise _err(p, f"column {column!r} has a missing (null) row 0")
                    d = int(pc.list_value_length(first)[0].as_py())
                    break
    except InputFileError:
        raise
    except Exception as exc:
        raise _err(p, f"corrupt or truncated parquet file ({type(exc).__name__}: {exc})") from None
    starts = np.cumsum([0] + sizes)

    def read(spans):
        parts = [[] for _ in spans]
        for g in range(len(sizes)):
            lo, hi = int(starts[g]), int(starts[g + 1])
            want = [i for i, (a, b) in enumerate(spans) if a < hi and b > lo]
            if not want:
                continue
            row = lo
            try:
                batches = list(_batches(pf, g, column))
            except Exception as exc:
                raise _err(p, f"corrupt or truncated parquet file ({type(exc).__name__}: {exc})") from None
            for batch in batches:
                blo, bhi = row, row + batch.num_rows
                row = bhi
                hits = [i for i in want if spans[i][0] < bhi and spans[i][1] > blo]
                if not hits:
                    continue
                X = _list_column_to_matrix(p, pa, pc, pa.chunked_array([batch.column(0)]), column)
                if X.shape[1] != d:
                    raise _err(p, f"column {column!r} holds rows of different lengths ({d} in row 0, {X.shape[1]} "
                                  f"in rows {blo} to {bhi - 1}); every embedding must have the same dimension")
                for i in hits:
                    a, b = spans[i]
                    parts[i].append(X[max(a, blo) - blo:min(b, bhi) - blo])
        return [np.concatenate(ps) if ps else np.empty((0, d), dtype) for ps in parts]

    return (n, d), dtype, read


def _batches(pf, g, column):
    yield from pf.iter_batches(batch_size=65536, row_groups=[g], columns=[column])


def _path_rows(path, column):
    from ._readers import EMBEDDING_FORMATS, _check_file, is_hf_folder, _read_npy, read_embeddings

    if is_hf_folder(path):  # a Hugging Face save_to_disk folder: its embedding column, read whole
        X, _ = read_embeddings(path, column=column)
        return _array_rows(np.asarray(X), repr(str(path)))
    p, suffix, head = _check_file(path, EMBEDDING_FORMATS, "embeddings")
    if suffix == ".npy":
        if column is not None:
            raise InputFileError(f"{str(p)!r}: an .npy file holds one unnamed array; do not name a column")
        return _array_rows(_read_npy(p, head, mmap=True), repr(str(p)))
    if suffix in (".parquet", ".pq"):
        return _parquet_rows(p, head, column)
    X, _ = read_embeddings(p, column=column)  # .npz / .pt: no random access, read whole
    return _array_rows(np.asarray(X), repr(str(p)))


def fingerprint(source, *, column: str | None = None) -> str | None:
    """The input fingerprint ``"sha256:<64 hex>"`` of ``source``.

    ``source``: a numpy array or memory map, a torch tensor (float16 / bfloat16
    / float8 are hashed as their exact float32 values), a scipy sparse matrix
    (hashed as the dense matrix it stands for), a path to embeddings
    (``.npy``, ``.parquet`` / ``.pq`` with ``column`` naming the list column
    when there are several, ``.npz``, ``.pt``), a row source (anything with a
    ``fingerprint()`` method: its answer, None for a stream that cannot be read
    again), or anything ``numpy.asarray`` turns into a numeric array.
    Equal rows give equal strings; see the module docstring for what is hashed.
    """
    if isinstance(source, (str, os.PathLike)):
        shape, dtype, read = _path_rows(source, column)
    elif callable(getattr(source, "fingerprint", None)) and not isinstance(source, np.ndarray):
        return source.fingerprint()
    elif _is_torch(source):
        shape, dtype, read = _torch_rows(source)
    elif hasattr(source, "tocsr") and hasattr(source, "nnz"):
        shape, dtype, read = _sparse_rows(source)
    else:
        try:
            arr = source if isinstance(source, np.ndarray) else np.asarray(source)
        except Exception as exc:
            raise ValidationError(f"cannot fingerprint a {type(source).__name__}: {exc}") from None
        shape, dtype, read = _array_rows(arr, f"a {type(source).__name__}")
    return _digest(tuple(shape), dtype, read)


def file_sha256(path, *, sampled: bool = False) -> str:
    """``"sha256:<hex>"`` of the bytes of the file at ``path`` (not of the data
    it holds: :func:`fingerprint` is that). Every byte by default (model
    weights must match exactly); with ``sampled``, ``file:<size>:`` and the
    first and last MiB (the whole file up to 2 MiB)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            if sampled:
                size = os.fstat(fh.fileno()).st_size
                h.update(f"file:{size}:".encode())
                if size <= 2 * HEAD:
                    h.update(fh.read())
                else:
                    h.update(fh.read(HEAD))
                    fh.seek(size - HEAD)
                    h.update(fh.read(HEAD))
            else:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    except OSError as exc:
        raise InputFileError(f"{str(path)!r}: cannot be read ({exc.strerror or exc})") from None
    return "sha256:" + h.hexdigest()


# ------------------------------------------------------- before coreset-fingerprint/2

def legacy_fingerprints(source, *, column: str | None = None) -> set[str]:
    """The fingerprints coreset wrote before :data:`SCHEME` for ``source``:
    ``sha256`` over ``array:<shape>:<dtype>:`` and the first and last MiB of the
    array's bytes, and for a file ``file:<size>:`` and its first and last MiB.
    Used only to keep index files written by those versions checkable."""
    out = set()
    arr = None
    if isinstance(source, (str, os.PathLike)):
        try:
            out.add(file_sha256(source, sampled=True))
            from ._readers import read_embeddings

            arr = read_embeddings(source, column=column)[0]  # .npy: memory-mapped
        except (InputFileError, ValidationError):
            return out
    elif _is_torch(source):
        t = source.detach().cpu()
        arr = (t.float() if t.is_floating_point() and t.element_size() < 4 else t).numpy()
    elif isinstance(source, np.ndarray):
        arr = source
    if arr is None or arr.dtype.kind not in "fiub" or arr.ndim == 0:
        return out
    h = hashlib.sha256(f"array:{arr.shape}:{arr.dtype.str}:".encode())
    k = max(HEAD // max(arr.dtype.itemsize, 1), 1)
    if arr.size <= 2 * k:
        h.update(np.ascontiguousarray(arr).tobytes())
    elif arr.ndim == 1:
        h.update(np.ascontiguousarray(arr[:k]).tobytes())
        h.update(np.ascontiguousarray(arr[-k:]).tobytes())
    else:
        r = -(-k // int(np.prod(arr.shape[1:])))
        h.update(np.ascontiguousarray(arr[:r]).reshape(-1)[:k].tobytes())
        h.update(np.ascontiguousarray(arr[-r:]).reshape(-1)[-k:].tobytes())
    out.add("sha256:" + h.hexdigest())
    return out
