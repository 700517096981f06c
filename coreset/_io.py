"""Index files: a :class:`~coreset.Selection` on disk.

Formats (chosen by suffix unless ``format`` is given; see ``docs/index-files.md``):

``npz``
    arrays ``indices`` (int64), ``weights`` (float64), ``gains`` (float64),
    ``objective`` (0-d float64), optional ``labels``, optional ``suspects`` (int64
    row numbers the label filter kept out of the picks), and ``meta``: a 0-d unicode
    array holding a JSON object with ``format_version`` and the selection's meta.
``parquet``
    columns ``indices``, ``weights``, ``gains`` and optional ``labels``; the JSON
    meta, the objective value, the labels dtype and the optional suspects (a JSON
    list under ``coreset.suspects``) live in the schema metadata.

Optional arrays and keys are additive: files without them read as before and
a reader that does not know one ignores it, so they leave ``format_version`` at 1.
``npy`` / ``txt``
    bare indices (int64 array / one integer per line): only the indices survive.

Every write is atomic and checked first (:func:`atomic_write` and
:func:`check_output_path`, in ``_atomic.py``): the target must be a regular file
or a new one (a symbolic link is written through), and a crash or a failed run
never leaves a half-written file, nor (on Linux) any temporary.
Reading never unpickles (``allow_pickle=False``) and turns anything corrupt,
truncated, foreign or of an unknown version into an :class:`IndexFileError`.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from ._atomic import STALE_TEMP_AGE_S, atomic_write, check_output_path
from .exceptions import IndexFileError, ValidationError

if TYPE_CHECKING:  # the Selection type is above this module: readers build the class they are given
    from .selection import Selection

__all__ = [
    "FORMAT_VERSION",
    "FORMATS",
    "IndexFileInfo",
    "format_for_path",
    "save_selection",
    "read_index_file",
    "atomic_write",
    "check_output_path",
    "STALE_TEMP_AGE_S",
]

#: Version of the npz/parquet layout; readers accept files up to this version.
FORMAT_VERSION = 1

#: format name -> file suffixes that select it
FORMATS = {"npz": (".npz",), "parquet": (".parquet", ".pq"), "npy": (".npy",), "txt": (".txt",)}

_META_KEY = b"coreset.meta"
_OBJECTIVE_KEY = b"coreset.objective"
_LABELS_DTYPE_KEY = b"coreset.labels_dtype"
_SHA256_KEY = b"coreset.sha256"
_SUSPECTS_KEY = b"coreset.suspects"  # the label filter's suspects: a JSON list of row numbers (optional)
_NPZ_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
_PARQUET_MAGIC = b"PAR1"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexFileInfo:
    """What :func:`read_index_file` found besides the selection itself."""

    path: str
    format: str
    format_version: int | None
    size_bytes: int


def format_for_path(path: str | os.PathLike, format: str | None = None) -> str:
    """The format name for ``path`` (from its suffix unless ``format`` is given)."""
    if format is not None:
        if format not in FORMATS:
            raise ValidationError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
        return format
    suffix = Path(path).suffix.lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    known = ", ".join(s for sfx in FORMATS.values() for s in sfx)
    raise ValidationError(
        f"cannot tell the index-file format of {str(path)!r} from its suffix {suffix!r}; "
        f"use one of {known} or pass format="
    )


# --------------------------------------------------------------------- writing


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"meta value of type {type(obj).__name__} is not JSON-serialisable")


def _meta_json(sel: Selection) -> str:
    meta = {"format_version": FORMAT_VERSION}
    meta.update({k: v for k, v in sel.meta.items() if k != "format_version"})
    try:
        return json.dumps(meta, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"Selection.meta must be JSON-serialisable to be saved: {exc}") from None


def _labels_for_storage(sel: Selection) -> np.ndarray | None:
    if sel.labels is None:
        return None
    lab = sel.labels
    if lab.dtype.kind not in "biuUS":
        why = " (Python objects) cannot be stored without pickle, which index files never use" \
            if lab.dtype == object else " cannot be stored in an index file"
        hint = "; whole-number floats convert exactly with labels.astype(np.int64)" if lab.dtype.kind == "f" else ""
        raise ValidationError(
            f"labels of dtype {lab.dtype}{why}: storable labels are integers, booleans or strings "
            f"(numpy kinds b, i, u, U, S){hint}"
        )
    return lab


def save_selection(sel: Selection, path: str | os.PathLike, format: str | None = None, *,
                   param: str = "path") -> None:
    """Write ``sel`` to ``path`` atomically. The format follows the suffix
    (``.npz``, ``.parquet``/``.pq``, ``.npy``, ``.txt``) unless ``format`` is given;
    ``param`` names the path in errors (the CLI: ``--output``)."""
    if not all(hasattr(sel, a) for a in ("indices", "weights", "gains", "objective", "labels", "meta")):
        raise ValidationError(f"sel must be a Selection; got {type(sel).__name__}")
    fmt = format_for_path(path, format)
    with atomic_write(path, param=param) as tmp:
        if fmt == "npz":
            _write_npz(sel, tmp)
        elif fmt == "parquet":
            _write_parquet(sel, tmp)
        elif fmt == "npy":
            with open(tmp, "wb") as fh:
                np.save(fh, sel.indices, allow_pickle=False)
        else:  # txt
            with open(tmp, "w", encoding="ascii") as fh:
                fh.write("".join(f"{int(i)}\n" for i in sel.indices))


def _write_npz(sel: Selection, tmp: str) -> None:
    arrays = {
        "indices": sel.indices,
        "weights": sel.weights,
        "gains": sel.gains,
        "objective": np.array(sel.objective, dtype=np.float64),
        "meta": np.array(_meta_json(sel)),
    }
    labels = _labels_for_storage(sel)
    if labels is not None:
        arrays["labels"] = labels
    if sel.suspects is not None:  # optional: a reader that does not know it ignores it
        arrays["suspects"] = sel.suspects
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def _write_parquet(sel: Selection, tmp: str) -> None:
    pa, pq = _pyarrow()
    cols = {
        "indices": pa.array(sel.indices, type=pa.int64()),
        "weights": pa.array(sel.weights, type=pa.float64()),
        "gains": pa.array(sel.gains, type=pa.float64()),
    }
    metadata = {_META_KEY: _meta_json(sel).encode(), _OBJECTIVE_KEY: repr(sel.objective).encode()}
    labels = _labels_for_storage(sel)
    if labels is not None:
        cols["labels"] = pa.array(labels.tolist() if labels.dtype.kind in "US" else labels)
        metadata[_LABELS_DTYPE_KEY] = labels.dtype.str.encode()
    if sel.suspects is not None:  # not a column (another length): schema metadata, ignored by older readers
        metadata[_SUSPECTS_KEY] = json.dumps(sel.suspects.tolist(), separators=(",", ":")).encode()
    # parquet has no checksum over its footer (where meta lives) and none over pages unless asked:
    # page checksums, and a digest of the whole content that the reader checks (an .npz has zip CRCs)
    metadata[_SHA256_KEY] = _parquet_digest(sel.indices, sel.weights, sel.gains, labels, metadata).encode()
    table = pa.table(cols).replace_schema_metadata(metadata)
    pq.write_table(table, tmp, write_page_checksum=True)


def _parquet_digest(indices, weights, gains, labels, metadata: dict) -> str:
    """sha256 over a parquet index file's columns (as numpy arrays) and coreset metadata."""
    import hashlib

    h = hashlib.sha256()
    for a in (indices, weights, gains) + (() if labels is None else (labels,)):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}:{a.shape}:".encode())
        h.update(a.tobytes())
    for key in (_META_KEY, _OBJECTIVE_KEY, _LABELS_DTYPE_KEY) + ((_SUSPECTS_KEY,) if _SUSPECTS_KEY in metadata else ()):
        h.update(key + b"=" + metadata.get(key, b"") + b"\0")
    return "sha256:" + h.hexdigest()


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        from .exceptions import BackendUnavailableError

        raise BackendUnavailableError("parquet index files need pyarrow: pip install pyarrow") from None
    return pa, pq


# --------------------------------------------------------------------- reading


def read_index_file(path: str | os.PathLike, format: str | None = None, *,
                    make: Callable[..., Selection]) -> tuple[Selection, IndexFileInfo]:
    """The selection in an index file, built by ``make`` (the :class:`~coreset.Selection`
    class: ``coreset.selection.read_index_file`` passes it), and what the file itself
    says (format, ``format_version``, size on disk).

    ``.npy`` / ``.txt`` hold bare indices: the result has those indices,
    weights of 1.0, NaN gains and objective, no labels and empty ``meta``.
    """
    p = Path(path)
    fmt = format_for_path(p, format)
    if not p.exists():
        raise IndexFileError(f"index file {str(p)!r} does not exist")
    if p.is_dir():
        raise IndexFileError(f"index file {str(p)!r} is a folder, not a file")
    if not p.is_file():  # opening a FIFO would wait for a writer forever
        raise IndexFileError(f"index file {str(p)!r} is not a regular file (a pipe, socket or device)")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise IndexFileError(f"cannot read index file {str(p)!r}: {exc.strerror or exc}") from None
    reader = {"npz": _read_npz, "parquet": _read_parquet, "npy": _read_npy, "txt": _read_txt}[fmt]
    sel, version = reader(p, head, make)
    return sel, IndexFileInfo(path=str(p), format=fmt, format_version=version, size_bytes=size)


def _bad(p: Path, what: str) -> IndexFileError:
    return IndexFileError(f"{str(p)!r} is not a readable coreset index file: {what}")


def _parse_meta(p: Path, text: str) -> tuple[dict, int]:
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise _bad(p, f"its meta is not valid JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(meta, dict) or "format_version" not in meta:
        raise _bad(p, "its meta has no format_version (a foreign file?)")
    version = meta.pop("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _bad(p, f"format_version must be a positive integer; got {version!r}")
    if version > FORMAT_VERSION:
        raise IndexFileError(
            f"{str(p)!r} has format_version {version}, newer than this coreset reads "
            f"(up to {FORMAT_VERSION}); upgrade coreset to read it"
        )
    return meta, version


def _build(p: Path, make, indices, weights, gains, objective, labels, meta, suspects=None) -> Selection:
    """The Selection, once every field is what a Selection promises (docs/index-files.md,
    "What a reader guarantees")."""
    indices = np.asarray(indices)
    if indices.ndim != 1 or indices.dtype.kind not in "iu":
        raise _bad(p, f"indices must be a 1-D integer array; got dtype {indices.dtype}, shape {indices.shape}")
    if indices.size and indices.min() < 0:
        raise _bad(p, f"indices must be >= 0; found {int(indices.min())}")
    if indices.size and indices.max() > np.iinfo(np.int64).max:
        raise _bad(p, f"indices must fit in int64; found {int(indices.max())}")
    if indices.size:
        uniq, counts = np.unique(indices, return_counts=True)
        if uniq.size != indices.size:
            raise _bad(p, f"indices must be unique; row {int(uniq[np.argmax(counts > 1)])} is selected "
                          f"{int(counts.max())} times")
    for name, arr in (("weights", weights), ("gains", gains)):
        arr = np.asarray(arr)
        if arr.dtype.kind not in "fiu" or arr.ndim != 1:
            raise _bad(p, f"{name} must be a 1-D numeric array; got dtype {arr.dtype}, shape {arr.shape}")
    w = np.asarray(weights)
    if w.size and not (np.isfinite(w).all() and w.min() >= 0):
        raise _bad(p, f"weights must be finite and >= 0; found {w[~(np.isfinite(w) & (w >= 0))][0]}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.dtype.kind not in "biuUS":
            raise _bad(p, f"labels must be a 1-D array of integers, booleans or strings; got dtype {labels.dtype}, "
                          f"shape {labels.shape}")
        if labels.dtype.byteorder not in "=|":  # a big-endian array from another writer: native, as ours
            labels = labels.astype(labels.dtype.newbyteorder("="))
    _check_meta(p, meta, indices)
    suspects = _check_suspects(p, suspects, meta)
    try:
        return make(indices, weights, gains, objective=objective, labels=labels, meta=meta, suspects=suspects)
    except (ValueError, TypeError) as exc:
        raise _bad(p, str(exc)) from None


def _check_suspects(p: Path, suspects, meta: dict):
    """The optional suspects: unique row numbers in [0, n_samples), sorted."""
    if suspects is None:
        return None
    s = np.asarray(suspects)
    if s.ndim != 1 or (s.size and s.dtype.kind not in "iu"):
        raise _bad(p, f"suspects must be a 1-D integer array; got dtype {s.dtype}, shape {s.shape}")
    n = meta.get("n_samples")
    if s.size and (s.min() < 0 or (isinstance(n, int) and s.max() >= n)):
        raise _bad(p, f"suspects must be row numbers in [0, {n if isinstance(n, int) else 'N'}); "
                      f"found {int(s.min() if s.min() < 0 else s.max())}")
    if s.size and s.max() > np.iinfo(np.int64).max:
        raise _bad(p, f"suspects must fit in int64; found {int(s.max())}")
    s = s.astype(np.int64)  # before comparing neighbours: differences of unsigned integers wrap around
    if s.size > 1 and not (np.diff(s) > 0).all():
        raise _bad(p, "suspects must be sorted and unique")
    return s


def _check_meta(p: Path, meta: dict, indices) -> None:
    """The meta keys this library reads back have the types it writes (others are not looked at)."""
    n = meta.get("n_samples")
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise _bad(p, f"meta n_samples must be an integer >= 0 or null; got {n!r}")
        if indices.size and indices.max() >= n:
            raise _bad(p, f"indices must be below meta n_samples ({n}); found {int(indices.max())}")
    t = meta.get("timings")
    if t is not None and not isinstance(t, dict):  # its values are shown as they are (coreset inspect)
        raise _bad(p, f"meta timings must be an object (seconds per stage); got {str(t)[:60]}")
    for key in ("input_fingerprint", "library_version", "method"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise _bad(p, f"meta {key} must be a string or null; got {str(meta[key])[:60]}")


def _read_npz(p: Path, head: bytes, make) -> tuple[Selection, int]:
    if head[:4] not in _NPZ_MAGIC:
        raise _bad(p, "not an .npz (zip) archive")
    try:
        with np.load(p, allow_pickle=False) as npz:
            names = set(npz.files)
            missing = {"indices", "weights", "gains", "meta"} - names
            if missing:
                raise _bad(
                    p,
                    f"missing arrays {', '.join(sorted(missing))} (found: {', '.join(sorted(names)) or 'none'})",
                )
            arrays = {name: npz[name] for name in names}
    except IndexFileError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object arrays" in str(exc).lower():
            raise _bad(p, "it holds pickled Python objects, which are refused (allow_pickle=False)") from None
        raise _bad(p, f"corrupt or truncated ({exc})") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise _bad(p, f"corrupt or truncated ({type(exc).__name__}: {exc})") from None
    except Exception as exc:  # zlib.error and other decoder failures
        raise _bad(p, f"corrupt or truncated ({type(exc).__name__}: {exc})") from None
    meta_arr = arrays["meta"]
    if meta_arr.shape != () or meta_arr.dtype.kind != "U":
        raise _bad(p, f"meta must be a 0-d unicode array; got dtype {meta_arr.dtype}, shape {meta_arr.shape}")
    meta, version = _parse_meta(p, str(meta_arr))
    objective = float("nan")
    if "objective" in arrays:
        obj = arrays["objective"]
        if obj.shape != () or obj.dtype.kind not in "fiu":
            raise _bad(p, f"objective must be a 0-d number; got dtype {obj.dtype}, shape {obj.shape}")
        objective = float(obj)
    sel = _build(p, make, arrays["indices"], arrays["weights"], arrays["gains"], objective, arrays.get("labels"), meta,
                 arrays.get("suspects"))
    return sel, version


def _read_parquet(p: Path, head: bytes, make) -> tuple[Selection, int]:
    pa, pq = _pyarrow()
    if head[:4] != _PARQUET_MAGIC:
        raise _bad(p, "not a parquet file")
    try:
        table = pq.read_table(p, page_checksum_verification=True)
    except Exception as exc:  # ArrowInvalid, OSError, ... for corrupt/truncated files
        raise _bad(p, f"corrupt or truncated ({type(exc).__name__}: {exc})") from None
    md = table.schema.metadata or {}
    if _META_KEY not in md:
        raise _bad(p, "its schema has no coreset metadata (a foreign parquet file?)")
    try:
        meta_text = md[_META_KEY].decode()
    except UnicodeDecodeError:
        raise _bad(p, "its meta is not UTF-8 text") from None
    meta, version = _parse_meta(p, meta_text)
    missing = {"indices", "weights", "gains"} - set(table.column_names)
    if missing:
        raise _bad(p, f"missing columns {', '.join(sorted(missing))} (found: {', '.join(table.column_names)})")
    try:
        objective = float(md.get(_OBJECTIVE_KEY, b"nan").decode())
    except (ValueError, UnicodeDecodeError):
        raise _bad(p, "its objective value is not a number") from None

    def col(name):
        c = table.column(name)
        if c.null_count:
            raise _bad(p, f"column {name!r} has {c.null_count} null values")
        try:
            return c.to_numpy()
        except Exception as exc:  # a type numpy cannot hold (struct, ...)
            raise _bad(p, f"column {name!r} of type {c.type} cannot be read ({type(exc).__name__})") from None

    labels = None
    if "labels" in table.column_names:
        labels = col("labels")
        if _LABELS_DTYPE_KEY in md:
            try:
                labels = labels.astype(np.dtype(md[_LABELS_DTYPE_KEY].decode()))
            except Exception:  # TypeError, ValueError, UnicodeDecodeError, OverflowError from a bad dtype
                raise _bad(p, "its labels dtype is not a valid numpy dtype for its labels") from None
        elif labels.dtype == object:
            labels = labels.astype(str)
    suspects = None
    if _SUSPECTS_KEY in md:
        try:
            suspects = np.asarray(json.loads(md[_SUSPECTS_KEY].decode()))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise _bad(p, "its suspects are not a JSON list of row numbers") from None
        if suspects.size == 0:
            suspects = suspects.astype(np.int64)
    sel = _build(p, make, col("indices"), col("weights"), col("gains"), objective, labels, meta, suspects)
    if _SHA256_KEY in md and md[_SHA256_KEY] != _parquet_digest(
            sel.indices, sel.weights, sel.gains, sel.labels, md).encode():
        raise _bad(p, "its content does not match its sha256 (changed or damaged since it was written)")
    return sel, version


def _bare(p: Path, make, indices: np.ndarray) -> Selection:
    n = indices.shape[0] if indices.ndim == 1 else 0
    return _build(p, make, indices, np.ones(n), np.full(n, np.nan), float("nan"), None, {})


def _read_npy(p: Path, head: bytes, make) -> tuple[Selection, None]:
    if not head.startswith(_NPY_MAGIC):
        raise _bad(p, "not an .npy file")
    try:
        arr = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object arrays" in str(exc).lower():
            raise _bad(p, "it holds pickled Python objects, which are refused (allow_pickle=False)") from None
        raise _bad(p, f"corrupt or truncated ({exc})") from None
    except (OSError, EOFError) as exc:
        raise _bad(p, f"corrupt or truncated ({exc})") from None
    return _bare(p, make, arr), None


def _read_txt(p: Path, head: bytes, make) -> tuple[Selection, None]:
    values = []
    try:
        with open(p, encoding="ascii") as fh:
            for lineno, line in enumerate(fh, start=1):
                s = line.strip()
                if not s or s.startswith("#"):
                    continue
                try:
                    values.append(int(s))
                except ValueError:
                    raise _bad(p, f"line {lineno} is not an integer index: {s[:40]!r}") from None
    except UnicodeDecodeError:
        raise _bad(p, "not an ASCII text file of indices") from None
    return _bare(p, make, np.array(values, dtype=np.int64)), None

