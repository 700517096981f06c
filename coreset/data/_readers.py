"""Embeddings and labels from files: ``.npy`` (memory-mapped), ``.npz``,
``.parquet``, ``.pt`` and Hugging Face ``save_to_disk`` folders (``._hf``). Every problem with a file raises an
:class:`~coreset.exceptions.InputFileError` that names the path and what is
wrong; nothing is ever unpickled.

The readers only read: whether the numbers are usable (finite, 2-D, numeric,
non-empty) is checked once by the selection entry point.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path

import numpy as np

from .._validation import check_labels
from ..exceptions import BackendUnavailableError, InputFileError, ValidationError

# the input fingerprint lives in ._fingerprint (coreset.data.input_fingerprint)
__all__ = ["EMBEDDING_FORMATS", "LABEL_FORMATS", "read_embeddings", "read_labels"]

#: suffixes :func:`read_embeddings` understands
EMBEDDING_FORMATS = (".npy", ".npz", ".parquet", ".pq", ".pt", ".pth")
#: suffixes :func:`read_labels` understands
LABEL_FORMATS = (".npy", ".npz", ".txt", ".csv", ".parquet", ".pq")

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_PARQUET_MAGIC = b"PAR1"
_PICKLE_REFUSED = "it holds pickled Python objects, which are refused (loading a pickle can run arbitrary code)"
_PICKLE_HEADS = tuple(bytes([0x80, proto]) for proto in (2, 3, 4, 5))
# what torch's weights-only unpickler says when it meets a Python object it refuses
_TORCH_REFUSALS = re.compile(
    r"unsupported global|GLOBAL \S+|reduce for unrecognized function|Can only (build|create|append|extend)",
    re.IGNORECASE,
)

log = logging.getLogger(__name__)


def _err(path: Path, what: str) -> InputFileError:
    return InputFileError(f"{str(path)!r}: {what}")


def _kind(p) -> str:
    """What a path that exists but is neither a file nor a folder is."""
    import stat

    mode = os.stat(p).st_mode
    return ("a named pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")


def _check_file(path, kinds: tuple[str, ...], what: str) -> tuple[Path, str, bytes]:
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in kinds:
        raise _err(p, f"unsupported {what} format {suffix or '(no suffix)'!r}; use one of {', '.join(kinds)}")
    if not p.exists():
        raise _err(p, "no such file")
    if p.is_dir():
        raise _err(p, "is a folder, not a file")
    if not p.is_file():  # opening a FIFO would wait for a writer forever
        raise _err(p, f"is not a regular file ({_kind(p)}); write the {what} to a file first")
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise _err(p, f"cannot be read ({exc.strerror or exc})") from None
    return p, suffix, head


def is_hf_folder(path) -> bool:
    """A Hugging Face ``save_to_disk`` folder (Dataset or DatasetDict), read by ``._hf``."""
    from ._hf import is_dataset_dict_folder, is_dataset_folder

    return is_dataset_folder(path) or is_dataset_dict_folder(path)


def _pick(p: Path, names: list[str], key: str | None, exclude: str | None, what: str, flag: str) -> str:
    """The one name among ``names`` to read: ``key`` when given, else the only
    one left after removing ``exclude``."""
    if key is not None:
        if key not in names:
            raise _err(p, f"has no {what} {key!r}; it holds: {', '.join(names) or 'nothing'}")
        return key
    left = [n for n in names if n != exclude]
    if len(left) == 1:
        return left[0]
    if not left:
        raise _err(p, f"holds no {what} to read embeddings from")
    plural = "entries" if what == "entry" else f"{what}s"
    raise _err(p, f"holds {len(left)} {plural} ({', '.join(left)}); name the one to read with {flag}")


# ----------------------------------------------------------------- embeddings


def read_embeddings(path, *, key: str | None = None, column: str | None = None,
                    labels_column: str | None = None, mmap: bool = True):
    """Read an embedding matrix, and labels stored beside it, from ``path``.

    Parameters
    ----------
    path : str or PathLike
        ``.npy`` (memory-mapped when ``mmap``), ``.npz`` (one named array),
        ``.parquet`` (a list / fixed-size-list column of numbers, one row per
        point), ``.pt`` / ``.pth`` (a tensor, or a dict of tensors), loaded
        with ``torch.load(weights_only=True)``, or a Hugging Face dataset
        folder written by ``Dataset.save_to_disk`` (an embedding list column;
        needs the ``datasets`` package).
    key, column : str, optional
        Which array (``.npz``), dict entry (``.pt``) or column (``.parquet``)
        holds the embeddings; the two names are synonyms. Needed only when the
        file holds more than one candidate.
    labels_column : str, optional
        The array / dict entry / column holding labels, in the same file.
    mmap : bool
        Memory-map ``.npy`` files instead of reading them whole.

    Returns
    -------
    (X, y)
        ``X`` as stored (a ``numpy.memmap`` for ``.npy`` with ``mmap``), ``y``
        a 1-D array or None when ``labels_column`` is not given.
    """
    if key is not None and column is not None and key != column:
        raise InputFileError(f"key={key!r} and column={column!r} name different arrays; give one")
    name = key if key is not None else column
    if is_hf_folder(path):
        from ._hf import read_dataset_folder

        return read_dataset_folder(path, name, labels_column)
    p, suffix, head = _check_file(path, EMBEDDING_FORMATS, "embeddings")
    if suffix == ".npy":
        if labels_column is not None:
            raise _err(p, "an .npy file holds one array; give labels in a separate file")
        if name is not None:
            raise _err(p, "an .npy file holds one unnamed array; do not name a column")
        return _read_npy(p, head, mmap=mmap), None
    if suffix == ".npz":
        return _read_npz(p, head, name, labels_column)
    if suffix in (".parquet", ".pq"):
        return _read_parquet(p, head, name, labels_column)
    return _read_pt(p, name, labels_column)


def _read_npy(p: Path, head: bytes, *, mmap: bool) -> np.ndarray:
    if not head.startswith(_NPY_MAGIC):
        raise _err(p, "not an .npy file (bad header)")
    try:
        return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:
        msg = str(exc).lower()
        if "pickle" in msg or "object" in msg:
            raise _err(p, _PICKLE_REFUSED) from None
        raise _err(p, f"corrupt or truncated .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise _err(p, f"corrupt or truncated .npy file ({exc})") from None


def _npz_array(p: Path, npz, name: str) -> np.ndarray:
    try:
        return npz[name]
    except ValueError as exc:
        msg = str(exc).lower()
        if "pickle" in msg or "object" in msg:
            raise _err(p, f"array {name!r}: {_PICKLE_REFUSED}") from None
        raise _err(p, f"array {name!r} is corrupt or truncated ({exc})") from None
    except Exception as exc:  # BadZipFile, zlib.error, EOFError, ...
        raise _err(p, f"array {name!r} is corrupt or truncated ({type(exc).__name__}: {exc})") from None


def _open_npz(p: Path, head: bytes):
    """np.load of an .npz, never unpickling; a clear InputFileError otherwise."""
    if head[:4] not in _ZIP_MAGIC:
        raise _err(p, "not an .npz (zip) archive")
    try:
        return np.load(p, allow_pickle=False)
    except Exception as exc:
        raise _err(p, f"corrupt or truncated .npz archive ({type(exc).__name__}: {exc})") from None


def _read_npz(p: Path, head: bytes, name, labels_column):
    with _open_npz(p, head) as npz:
        names = list(npz.files)
        if labels_column is not None and labels_column not in names:
            raise _err(p, f"has no labels array {labels_column!r}; it holds: {', '.join(names)}")
        chosen = _pick(p, names, name, labels_column, "array", "--column / key=")
        X = _npz_array(p, npz, chosen)
        y = _npz_array(p, npz, labels_column) if labels_column is not None else None
    return X, _clean_labels(p, y, f"labels array {labels_column!r}")


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise BackendUnavailableError("reading parquet needs pyarrow: pip install pyarrow") from None
    return pa, pc, pq


def _is_list(pa, t) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _parquet_schema(p: Path, head: bytes):
    pa, pc, pq = _pyarrow()
    if head[:4] != _PARQUET_MAGIC:
        raise _err(p, "not a parquet file (bad header)")
    try:
        return pq.read_schema(p)
    except Exception as exc:
        raise _err(p, f"corrupt or truncated parquet file ({type(exc).__name__}: {exc})") from None


def _read_parquet(p: Path, head: bytes, name, labels_column):
    pa, pc, pq = _pyarrow()
    schema = _parquet_schema(p, head)
    names = list(schema.names)
    if labels_column is not None and labels_column not in names:
        raise _err(p, f"has no labels column {labels_column!r}; columns: {', '.join(names)}")
    if name is None:
        lists = [n for n in names if _is_list(pa, schema.field(n).type) and n != labels_column]
        if len(lists) != 1:
            what = "no list column" if not lists else f"{len(lists)} list columns ({', '.join(lists)})"
            raise _err(
                p,
                f"has {what}; the embeddings must be one list or fixed_size_list column: "
                f"name it with --column / column= (columns: {', '.join(names)})",
            )
        name = lists[0]
    elif name not in names:
        raise _err(p, f"has no column {name!r}; columns: {', '.join(names)}")
    if not _is_list(pa, schema.field(name).type):
        raise _err(
            p,
            f"column {name!r} has type {schema.field(name).type}, not a list of numbers; "
            "the embeddings must be a list or fixed_size_list column",
        )
    wanted = [name] + ([labels_column] if labels_column is not None else [])
    try:
        table = pq.read_table(p, columns=wanted)
    except Exception as exc:
        raise _err(p, f"corrupt or truncated parquet file ({type(exc).__name__}: {exc})") from None
    try:
        groups = pq.ParquetFile(p).metadata
        starts = np.cumsum([0] + [groups.row_group(i).num_rows for i in range(groups.num_row_groups)])
    except Exception:  # the table was read: the metadata only names row groups in messages
        starts = None
    X = _list_column_to_matrix(p, pa, pc, table.column(name), name, starts)
    y = None
    if labels_column is not None:
        lab = table.column(labels_column)
        if lab.null_count:
            raise _err(p, f"labels column {labels_column!r} has {lab.null_count} missing values")
        if _is_list(pa, lab.type):
            raise _err(p, f"labels column {labels_column!r} holds lists; it must hold one label per row")
        y = _clean_labels(p, lab.to_numpy(), f"labels column {labels_column!r}")
    return X, y


def _list_column_to_matrix(p: Path, pa, pc, col, name: str, group_starts=None) -> np.ndarray:
    """A list column of n rows of d numbers -> an (n, d) array, without Python loops.
    ``group_starts`` (the first row of each row group, then the row count) lets
    a width error name the row group."""
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    n = len(arr)
    if arr.null_count:
        raise _err(p, f"column {name!r} has {arr.null_count} missing (null) rows")
    if pa.types.is_fixed_size_list(arr.type):
        d = arr.type.list_size
    else:
        if n == 0:
            return np.empty((0, 0), dtype=_value_dtype(pa, arr.type.value_type))
        lengths = pc.list_value_length(arr)
        lo, hi = pc.min_max(lengths).values()
        if lo.as_py() != hi.as_py():
            d0 = lengths[0].as_py()
            i = pc.index(pc.not_equal(lengths, d0), True).as_py()
            where = f"row {i}"
            if group_starts is not None and len(group_starts) > 1:
                g = int(np.searchsorted(group_starts, i, side="right")) - 1
                where = f"row group {g} (row {i})"
            raise _err(p, f"column {name!r} holds rows of different lengths ({lo.as_py()} to {hi.as_py()}): "
                          f"{where} has {lengths[i].as_py()} numbers, row 0 has {d0}; every embedding must have "
                          "the same dimension")
        d = lo.as_py()
    values = arr.flatten()
    vt = values.type
    if not (pa.types.is_floating(vt) or pa.types.is_integer(vt)):
        raise _err(p, f"column {name!r} holds {vt} values, not numbers")
    if values.null_count:
        raise _err(p, f"column {name!r} has {values.null_count} missing (null) numbers inside its rows")
    flat = values.to_numpy(zero_copy_only=False)
    return flat.reshape(n, d)


def _value_dtype(pa, t):
    try:
        return t.to_pandas_dtype()
    except Exception:
        return np.float32


def _torch_load_error(p: Path, exc: Exception) -> InputFileError:
    """A truthful reason for a failed ``torch.load(weights_only=True)``."""
    msg = str(exc)
    refused = _TORCH_REFUSALS.search(msg)
    if refused:
        found = re.search(r"GLOBAL (\S+?)[.,]?(\s|$)", msg)
        what = f" ({found.group(1)})" if found else ""
        return _err(p, f"holds pickled Python objects{what} besides tensors, which are refused: it is "
                       "loaded with torch.load(weights_only=True), which unpickles only tensors and plain "
                       "containers (unpickling other objects can run arbitrary code)")
    try:
        with open(p, "rb") as fh:
            head = fh.read(2)
    except OSError:
        head = b""
    if head in _PICKLE_HEADS:
        return _err(p, "is a plain Python pickle, not a torch.save file: pickled Python objects are refused "
                       "(it is loaded with torch.load(weights_only=True); unpickling can run arbitrary code). "
                       "Save the embeddings with torch.save(tensor) or numpy.save")
    if isinstance(exc, EOFError):
        detail = "empty or truncated file"
    elif "Weights only load failed" in msg:
        detail = "not a torch.save file, or a corrupt one"
    else:
        detail = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
    return _err(p, f"cannot be loaded by torch.load(weights_only=True): {detail}")


def _read_pt(p: Path, name, labels_column):
    try:
        import torch
    except ImportError:
        raise BackendUnavailableError(
            f"reading {str(p)!r} needs torch: pip install torch (CPU build: pip install torch==2.13.0)"
        ) from None
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise _torch_load_error(p, exc) from None

    def to_numpy(t, what):
        if isinstance(t, np.ndarray):
            return t
        if not isinstance(t, torch.Tensor):
            raise _err(p, f"{what} is a {type(t).__name__}, not a tensor")
        t = t.detach().cpu()
        if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):
            # numpy has no bfloat16 / float8; float32 holds them (and float16) exactly
            log.info("%s: %s is %s; converted to float32 (exact)", p, what, str(t.dtype).replace("torch.", ""))
            t = t.float()
        try:
            return t.numpy()
        except (TypeError, RuntimeError) as exc:
            raise _err(p, f"{what} is a tensor of dtype {str(t.dtype).replace('torch.', '')} "
                          f"(layout {str(t.layout).replace('torch.', '')}) that numpy cannot hold ({exc}); "
                          "save a dense float32 tensor") from None

    if isinstance(obj, dict):
        names = [str(k) for k in obj]
        if labels_column is not None and labels_column not in obj:
            raise _err(p, f"has no labels entry {labels_column!r}; it holds: {', '.join(names)}")
        chosen = _pick(p, names, name, labels_column, "entry", "--column / key=")
        X = to_numpy(obj[chosen], f"entry {chosen!r}")
        y = to_numpy(obj[labels_column], f"entry {labels_column!r}") if labels_column is not None else None
        return X, _clean_labels(p, y, f"labels entry {labels_column!r}")
    if name is not None or labels_column is not None:
        raise _err(p, f"holds a single {type(obj).__name__}, not a dict; do not name a column")
    return to_numpy(obj, "its content"), None


def _clean_labels(p: Path, y, what: str = "labels"):
    """``y`` through :func:`check_labels` (whole-number floats become int64;
    fractional, NaN or missing labels are refused), as an InputFileError naming ``p``."""
    if y is None:
        return None
    y = np.asarray(y)
    try:
        return check_labels(y, y.shape[0] if y.ndim else 0, name=what)
    except ValidationError as exc:
        raise _err(p, str(exc)) from None


# --------------------------------------------------------------------- labels


def read_labels(path, *, column: str | None = None) -> np.ndarray:
    """Read one label per point from ``path``.

    ``.npy`` / ``.npz`` (a 1-D array; ``column`` names it in an .npz holding
    several), ``.txt`` (one label per line, no header), ``.csv`` (a header row;
    ``column`` picks the column unless there is only one), ``.parquet``
    (``column`` picks the column unless there is only one). Text labels that
    are all integers become int64, others stay strings, except when they are
    all numbers: then they, like stored labels, go through the same check as
    ``select(y=...)``: whole-number floats (``1.0``) become int64; fractional,
    NaN or missing labels and non-1-D arrays are refused.
    """
    if is_hf_folder(path):
        from ._hf import read_dataset_folder

        return read_dataset_folder(path, None, column, labels_only=True)[1]
    p, suffix, head = _check_file(path, LABEL_FORMATS, "labels")
    if suffix == ".npy":
        if column is not None:
            raise _err(p, "an .npy file holds one unnamed array; do not name a column")
        return _clean_labels(p, np.asarray(_read_npy(p, head, mmap=False)))
    if suffix == ".npz":
        with _open_npz(p, head) as npz:
            chosen = _pick(p, list(npz.files), column, None, "array", "--labels-column / column=")
            return _clean_labels(p, _npz_array(p, npz, chosen), f"labels array {chosen!r}")
    if suffix in (".parquet", ".pq"):
        pa, pc, pq = _pyarrow()
        names = list(_parquet_schema(p, head).names)
        chosen = _pick(p, names, column, None, "column", "--labels-column / column=")
        try:
            col = pq.read_table(p, columns=[chosen]).column(chosen)
        except Exception as exc:
            raise _err(p, f"corrupt or truncated parquet file ({type(exc).__name__}: {exc})") from None
        if col.null_count:
            raise _err(p, f"labels column {chosen!r} has {col.null_count} missing values")
        return _clean_labels(p, col.to_numpy(), f"labels column {chosen!r}")
    try:
        with open(p, encoding="utf-8", newline="") as fh:
            if suffix == ".txt":
                if column is not None:
                    raise _err(p, "a .txt labels file has one label per line and no columns")
                values = [line.strip() for line in fh.read().splitlines()]
                while values and values[-1] == "":
                    values.pop()
            else:
                rows = list(csv.reader(fh))
                if not rows:
                    raise _err(p, "is empty; a .csv labels file needs a header row")
                header = [h.strip() for h in rows[0]]
                chosen = _pick(p, header, column, None, "column", "--labels-column / column=")
                j = header.index(chosen)
                values = []
                for lineno, row in enumerate(rows[1:], start=2):
                    if not row:
                        continue
                    if j >= len(row):
                        raise _err(p, f"line {lineno} has no value for column {chosen!r}")
                    values.append(row[j].strip())
    except UnicodeDecodeError:
        raise _err(p, "is not UTF-8 text") from None
    except OSError as exc:
        raise _err(p, f"cannot be read ({exc.strerror or exc})") from None
    if any(v == "" for v in values):
        raise _err(p, f"has an empty label on data line {values.index('') + 1}")
    try:
        return np.array([int(v) for v in values], dtype=np.int64)
    except ValueError:
        pass
    try:  # numbers written as floats ("1.0"): the same rules as a float array
        floats = np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return np.array(values, dtype=str)
    return _clean_labels(p, floats)
