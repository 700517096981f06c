"""Index files: a :class:`~coreset.Selection` on disk.

Formats (chosen by suffix unless ``format`` is given; see ``docs/index-files.md``):

``npz``
    arrays ``indices`` (int64), ``weights`` (float64), ``gains`` (float64),
    ``objective`` (0-d float64), optional ``labels``, and ``meta``: a 0-d unicode
    array holding a JSON object with ``format_version`` and the selection's meta.
``parquet``
    columns ``indices``, ``weights``, ``gains`` and optional ``labels``; the JSON
    meta, the objective value and the labels dtype live in the schema metadata.
``npy`` / ``txt``
    bare indices (int64 array / one integer per line): only the indices survive.

Every write is atomic (a temporary file in the target's folder, then
``os.replace``), so a crash or a failed run never leaves a half-written file;
a temporary left by a killed writer is removed by the next write of the same
target (:func:`atomic_write`).
Reading never unpickles (``allow_pickle=False``) and turns anything corrupt,
truncated, foreign or of an unknown version into an :class:`IndexFileError`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import tempfile
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .exceptions import IndexFileError, ValidationError
from .selection import Selection

__all__ = [
    "FORMAT_VERSION",
    "FORMATS",
    "IndexFileInfo",
    "format_for_path",
    "save_selection",
    "load_selection",
    "read_index_file",
    "atomic_write",
]

#: Version of the npz/parquet layout; readers accept files up to this version.
FORMAT_VERSION = 1

#: format name -> file suffixes that select it
FORMATS = {"npz": (".npz",), "parquet": (".parquet", ".pq"), "npy": (".npy",), "txt": (".txt",)}

_META_KEY = b"coreset.meta"
_OBJECTIVE_KEY = b"coreset.objective"
_LABELS_DTYPE_KEY = b"coreset.labels_dtype"
_NPZ_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
_PARQUET_MAGIC = b"PAR1"

log = logging.getLogger(__name__)

#: a temporary whose writer cannot be asked (another host, an older coreset)
#: is stale once untouched for this long
STALE_TEMP_AGE_S = 600.0


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _host_tag() -> str:
    """This machine's name, reduced to [A-Za-z0-9] and 16 characters, so that a
    temporary written from another host (a shared folder) is never judged by a
    local process id."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:16] or "host"


def _temp_prefix(name: str) -> str:
    return f".{name}.{_host_tag()}-{os.getpid()}-"


# mkstemp's random part: 8 characters of [a-z0-9_]
_NEW_TEMP = re.compile(r"([A-Za-z0-9]+)-(\d+)-[a-z0-9_]{8}")
_OLD_TEMP = re.compile(r"[a-z0-9_]{8}")


def _pid_alive(pid: int) -> bool | None:
    """True / False when this OS can tell, None when it cannot."""
    if os.name != "posix" or pid <= 0:
        return None  # on Windows os.kill(pid, 0) would send CTRL_C_EVENT
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except OSError:
        return None
    return True


def _remove_stale_temps(folder: Path, name: str) -> None:
    """Remove temporaries of target ``name`` left in ``folder`` by a writer that
    is gone: ``.NAME.HOST-PID-XXXXXXXX.tmp`` written on this host by a process
    that no longer exists; and, when the writer cannot be asked (written on
    another host, or ``.NAME.XXXXXXXX.tmp`` by an older coreset), untouched for
    :data:`STALE_TEMP_AGE_S`. A temporary whose process id now belongs to a
    live process is kept. Best effort: errors are ignored."""
    head, host, now = f".{name}.", _host_tag(), time.time()
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(head) and e.name.endswith(".tmp")]
    except OSError:
        return
    for entry in entries:
        middle = entry.name[len(head):-len(".tmp")]
        new, old = _NEW_TEMP.fullmatch(middle), _OLD_TEMP.fullmatch(middle)
        if not (new or old):
            continue  # not one of ours (or a temporary of another target)
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            alive = None
            if new and new.group(1) == host:
                pid = int(new.group(2))
                alive = True if pid == os.getpid() else _pid_alive(pid)
            if alive is None:
                alive = now - entry.stat(follow_symlinks=False).st_mtime < STALE_TEMP_AGE_S
            if not alive:
                os.unlink(entry.path)
                log.info("removed %s, a temporary file left by an interrupted write", entry.path)
        except OSError:
            continue


@contextmanager
def atomic_write(path: str | os.PathLike):
    """Yield a temporary path next to ``path``; on success it replaces ``path``
    in one step, on any error it is removed and ``path`` is left untouched.

    The temporary is ``.NAME.HOST-PID-XXXXXXXX.tmp`` (host, process id, random).
    A process killed while writing (SIGKILL, the OOM killer) cannot remove its
    own, so each write first removes the stale temporaries of the same target
    (see :func:`_remove_stale_temps`); those of live writers are kept.
    A ``path`` that is a folder, or in a folder that does not exist, is an
    :class:`IndexFileError`."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise IndexFileError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist")
    if path.is_dir():
        raise IndexFileError(
            f"cannot write {str(path)!r}: it is a folder; give a file path such as {str(path / 'selection.npz')!r}"
        )
    _remove_stale_temps(folder, path.name)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_temp_prefix(path.name), suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable; best effort (not every OS allows it)
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


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


def save_selection(sel: Selection, path: str | os.PathLike, format: str | None = None) -> None:
    """Write ``sel`` to ``path`` atomically. The format follows the suffix
    (``.npz``, ``.parquet``/``.pq``, ``.npy``, ``.txt``) unless ``format`` is given."""
    if not isinstance(sel, Selection):
        raise ValidationError(f"sel must be a Selection; got {type(sel).__name__}")
    fmt = format_for_path(path, format)
    with atomic_write(path) as tmp:
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
    table = pa.table(cols).replace_schema_metadata(metadata)
    pq.write_table(table, tmp)


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        from .exceptions import BackendUnavailableError

        raise BackendUnavailableError("parquet index files need pyarrow: pip install pyarrow") from None
    return pa, pq


# --------------------------------------------------------------------- reading


def load_selection(path: str | os.PathLike, format: str | None = None) -> Selection:
    """Read an index file written by :func:`save_selection`.

    ``.npy`` / ``.txt`` hold bare indices: the result has those indices,
    weights of 1.0, NaN gains and objective, no labels and empty ``meta``.
    """
    return read_index_file(path, format)[0]


def read_index_file(path: str | os.PathLike, format: str | None = None) -> tuple[Selection, IndexFileInfo]:
    """Like :func:`load_selection`, also returning what the file itself says
    (format, ``format_version``, size on disk)."""
    p = Path(path)
    fmt = format_for_path(p, format)
    if not p.exists():
        raise IndexFileError(f"index file {str(p)!r} does not exist")
    if p.is_dir():
        raise IndexFileError(f"index file {str(p)!r} is a folder, not a file")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise IndexFileError(f"cannot read index file {str(p)!r}: {exc.strerror or exc}") from None
    reader = {"npz": _read_npz, "parquet": _read_parquet, "npy": _read_npy, "txt": _read_txt}[fmt]
    sel, version = reader(p, head)
    return sel, IndexFileInfo(path=str(p), format=fmt, format_version=version, size_bytes=size)


def _bad(p: Path, what: str) -> IndexFileError:
    return IndexFileError(f"{str(p)!r} is not a readable coreset index file: {what}")


def _parse_meta(p: Path, text: str) -> tuple[dict, int]:
    try:
        meta = json.loads(text)
    except ValueError as exc:
        raise _bad(p, f"its meta is not valid JSON ({exc})") from None
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


def _build(p: Path, indices, weights, gains, objective, labels, meta) -> Selection:
    indices = np.asarray(indices)
    if indices.ndim != 1 or indices.dtype.kind not in "iu":
        raise _bad(p, f"indices must be a 1-D integer array; got dtype {indices.dtype}, shape {indices.shape}")
    if indices.size and indices.min() < 0:
        raise _bad(p, f"indices must be >= 0; found {int(indices.min())}")
    for name, arr in (("weights", weights), ("gains", gains)):
        arr = np.asarray(arr)
        if arr.dtype.kind not in "fiu":
            raise _bad(p, f"{name} must be numeric; got dtype {arr.dtype}")
    try:
        return Selection(indices, weights, gains, objective=objective, labels=labels, meta=meta)
    except (ValueError, TypeError) as exc:
        raise _bad(p, str(exc)) from None


def _read_npz(p: Path, head: bytes) -> tuple[Selection, int]:
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
    sel = _build(p, arrays["indices"], arrays["weights"], arrays["gains"], objective, arrays.get("labels"), meta)
    return sel, version


def _read_parquet(p: Path, head: bytes) -> tuple[Selection, int]:
    pa, pq = _pyarrow()
    if head[:4] != _PARQUET_MAGIC:
        raise _bad(p, "not a parquet file")
    try:
        table = pq.read_table(p)
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
        return c.to_numpy()

    labels = None
    if "labels" in table.column_names:
        labels = col("labels")
        if _LABELS_DTYPE_KEY in md:
            try:
                labels = labels.astype(np.dtype(md[_LABELS_DTYPE_KEY].decode()))
            except (TypeError, ValueError, UnicodeDecodeError):
                raise _bad(p, "its labels dtype is not a valid numpy dtype") from None
        elif labels.dtype == object:
            labels = labels.astype(str)
    sel = _build(p, col("indices"), col("weights"), col("gains"), objective, labels, meta)
    return sel, version


def _bare(p: Path, indices: np.ndarray) -> Selection:
    n = indices.shape[0] if indices.ndim == 1 else 0
    return _build(p, indices, np.ones(n), np.full(n, np.nan), float("nan"), None, {})


def _read_npy(p: Path, head: bytes) -> tuple[Selection, None]:
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
    return _bare(p, arr), None


def _read_txt(p: Path, head: bytes) -> tuple[Selection, None]:
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
    return _bare(p, np.array(values, dtype=np.int64)), None

