"""Hugging Face ``datasets`` as an input: a ``datasets.Dataset`` in memory, or
a folder written by ``Dataset.save_to_disk`` (it holds ``dataset_info.json``
and ``state.json`` beside its ``.arrow`` files).

* :func:`dataset_embeddings`: the ``(N, d)`` matrix of an embedding column (a
  list / large-list / fixed-size-list column of numbers, one embedding per
  row) and labels from another column, read straight from the Arrow table
  (the dataset's row order, a ``select`` / ``shuffle`` mapping included).
* :func:`embed_input`: what a ``coreset embed`` backbone reads from a column:
  sentences (a string column), images (an ``Image`` column) or tensors (a
  nested list / ``ArrayND`` column of numbers).
* :func:`load_dataset_folder`: a ``save_to_disk`` folder, memory-mapped.

``datasets`` is imported only by :func:`load_dataset_folder` (an in-memory
dataset was built with it already); a missing package raises
:class:`~coreset.exceptions.BackendUnavailableError` with the pip command.
The library never prints: the package's progress bars are turned off while
it reads.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np

from .._validation import check_labels
from ..exceptions import BackendUnavailableError, InputFileError, ValidationError

__all__ = ["is_dataset_folder", "is_dataset_dict_folder", "load_dataset_folder", "read_dataset_folder",
           "dataset_embeddings",
           "embedding_columns", "embed_input", "require_datasets", "quiet_datasets", "PIP_DATASETS"]

log = logging.getLogger(__name__)

#: the files ``Dataset.save_to_disk`` writes beside its ``.arrow`` shards
FOLDER_MARKERS = ("dataset_info.json", "state.json")
PIP_DATASETS = "pip install 'coreset[huggingface]' (or: pip install datasets)"


def is_dataset_folder(path) -> bool:
    """True for a folder written by ``Dataset.save_to_disk``."""
    try:
        p = Path(path)
        return p.is_dir() and all((p / m).is_file() for m in FOLDER_MARKERS)
    except (OSError, ValueError, TypeError):  # a name too long, a NUL byte: not a folder; the reader says why
        return False


def is_dataset_dict_folder(path) -> bool:
    """True for a folder written by ``DatasetDict.save_to_disk`` (one sub-folder per split)."""
    try:
        p = Path(path)
        return p.is_dir() and (p / "dataset_dict.json").is_file()
    except (OSError, ValueError, TypeError):
        return False


def require_datasets(what: str = "reading a Hugging Face dataset"):
    """The ``datasets`` package, or a BackendUnavailableError with the pip command."""
    try:
        import datasets
    except ImportError:
        raise BackendUnavailableError(f"{what} needs the datasets package: {PIP_DATASETS}") from None
    return datasets


@contextlib.contextmanager
def quiet_datasets():
    """``datasets``' progress bars off inside the block (the library never
    prints), restored after; a no-op where the package is missing."""
    try:
        import datasets
    except ImportError:
        yield
        return
    was_off = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_off:
            datasets.enable_progress_bars()


def load_dataset_folder(path):
    """The ``datasets.Dataset`` saved in ``path`` (memory-mapped, not copied)."""
    p = Path(path)
    if is_dataset_dict_folder(p):
        splits = sorted(d.name for d in p.iterdir() if is_dataset_folder(d))
        first = splits[0] if splits else "train"
        raise InputFileError(f"{str(p)!r}: is a DatasetDict folder (splits: {', '.join(splits) or 'none'}); give "
                             f"the folder of one split, e.g. {str(p / first)!r}")
    if not is_dataset_folder(p):
        raise InputFileError(f"{str(p)!r}: not a Hugging Face dataset folder (Dataset.save_to_disk writes "
                             f"{' and '.join(FOLDER_MARKERS)} into it)")
    datasets = require_datasets(f"reading the dataset folder {str(p)!r}")
    try:
        with quiet_datasets():
            ds = datasets.load_from_disk(str(p), keep_in_memory=False)
    except Exception as exc:
        raise InputFileError(f"{str(p)!r}: cannot be loaded by datasets.load_from_disk "
                             f"({type(exc).__name__}: {str(exc)[:300]})") from None
    if not isinstance(ds, datasets.Dataset):
        raise InputFileError(f"{str(p)!r}: holds a {type(ds).__name__}, not one Dataset; give one split's folder")
    return ds


# ------------------------------------------------------------------ columns


def _arrow():
    import pyarrow as pa
    import pyarrow.compute as pc

    return pa, pc


def _is_list(pa, t) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _is_number(pa, t) -> bool:
    return pa.types.is_floating(t) or pa.types.is_integer(t)


def _kind(ds, name) -> str:
    """A short type of column ``name``: ``string``, ``int64``, ``list of float32``, ``Image``, ..."""
    f = (getattr(ds, "features", None) or {}).get(name)
    kind = type(f).__name__ if f is not None else "?"
    if kind == "Value":
        return str(f.dtype)
    if kind in ("List", "Sequence", "LargeList"):
        inner = getattr(f, "feature", None)
        return f"list of {getattr(inner, 'dtype', None) or _kind_of(inner)}"
    return kind


def _kind_of(feature) -> str:
    inner = getattr(feature, "feature", None)
    if inner is not None:
        return f"list of {getattr(inner, 'dtype', None) or _kind_of(inner)}"
    return type(feature).__name__


def _describe(ds) -> str:
    """``name (type)`` of every column, for messages."""
    return ", ".join(f"{name} ({_kind(ds, name)})" for name in ds.column_names) or "none"


def embedding_columns(ds) -> list[str]:
    """The columns that can hold embeddings: one list of numbers per row."""
    pa, _ = _arrow()
    schema = ds.data.schema
    return [n for n in ds.column_names
            if _is_list(pa, schema.field(n).type) and _is_number(pa, schema.field(n).type.value_type)]


def table_rows(ds, columns):
    """The dataset's rows of ``columns`` as one Arrow table (an indices
    mapping from ``select`` / ``shuffle`` applied)."""
    if getattr(ds, "_indices", None) is None:
        return ds.data.table.select(columns)
    return ds.with_format("arrow", columns=columns)[:]


def _matrix(err, col, name) -> np.ndarray:
    """A list column of n rows of d numbers -> an ``(n, d)`` array (no Python loop)."""
    pa, pc = _arrow()
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(arr)
    if arr.null_count:
        raise err(f"column {name!r} has {arr.null_count} missing (null) rows")
    if n == 0:
        raise err(f"column {name!r} has no rows")
    if pa.types.is_fixed_size_list(arr.type):
        d = arr.type.list_size
        values = arr.flatten()
    else:
        lengths = pc.list_value_length(arr)
        lo, hi = (v.as_py() for v in pc.min_max(lengths).values())
        if lo != hi:
            i = pc.index(pc.not_equal(lengths, lengths[0]), True).as_py()
            raise err(f"column {name!r} holds rows of different lengths ({lo} to {hi}): row {i} has "
                      f"{lengths[i].as_py()} numbers, row 0 has {lengths[0].as_py()}; every embedding must have "
                      "the same dimension")
        d = lo
        values = arr.flatten()
    if values.null_count:
        raise err(f"column {name!r} has {values.null_count} missing (null) numbers inside its rows")
    if d == 0:
        raise err(f"column {name!r} holds empty lists; an embedding needs at least one number")
    return values.to_numpy(zero_copy_only=False).reshape(n, d)


def checked_labels(err, col, name) -> np.ndarray:
    pa, _ = _arrow()
    if col.null_count:
        raise err(f"labels column {name!r} has {col.null_count} missing values")
    if _is_list(pa, col.type):
        raise err(f"labels column {name!r} holds lists; it must hold one label per row")
    y = col.to_numpy()
    try:
        return check_labels(y, y.shape[0], name=f"labels column {name!r}")
    except ValidationError as exc:
        raise err(str(exc)) from None


def _no_embedding_message(ds) -> str:
    return (f"has no embedding column (a list or fixed-size list of numbers per row); its columns: "
            f"{_describe(ds)}. Name the embedding column, or compute embeddings from a text / image column "
            "with a backbone (coreset.integrations.huggingface.select_dataset(ds, column=..., backbone='minilm'), "
            "coreset embed)")


def dataset_embeddings(ds, column: str | None = None, labels_column: str | None = None, *, err=None,
                       where: str = "the dataset"):
    """``(X, y)``: the embedding matrix of ``column`` (the only embedding
    column when None) and the labels of ``labels_column`` (None when not
    given), in the dataset's row order. ``err(message)`` builds the error
    (default :class:`ValidationError`); ``where`` names the dataset in it."""
    if err is None:
        def err(msg):
            return ValidationError(f"{where} {msg}")
    names = list(ds.column_names)
    if labels_column is not None and labels_column not in names:
        raise err(f"has no labels column {labels_column!r}; its columns: {_describe(ds)}")
    if column is None:
        cands = [c for c in embedding_columns(ds) if c != labels_column]
        if not cands:
            raise err(_no_embedding_message(ds))
        if len(cands) > 1:
            raise err(f"has {len(cands)} embedding columns ({', '.join(cands)}); name one with column= / --column")
        column = cands[0]
    elif column not in names:
        raise err(f"has no column {column!r}; its columns: {_describe(ds)}")
    elif column not in embedding_columns(ds):
        raise err(f"column {column!r} is not an embedding column (a list of numbers per row); its columns: "
                  f"{_describe(ds)}. To embed text or images, give a backbone (coreset embed --backbone)")
    wanted = [column] + ([labels_column] if labels_column not in (None, column) else [])
    table = table_rows(ds, wanted)
    X = _matrix(err, table.column(column), column)
    y = checked_labels(err, table.column(labels_column), labels_column) if labels_column is not None else None
    log.debug("%s: %d x %d embeddings from column %r", where, X.shape[0], X.shape[1], column)
    return X, y


def read_dataset_folder(path, column=None, labels_column=None, *, labels_only: bool = False):
    """``(X, y)`` from a ``save_to_disk`` folder, as :func:`read_embeddings`
    returns them (every problem an :class:`InputFileError` naming the folder).
    ``labels_only``: ``(None, y)`` from ``labels_column`` (the only column
    when None)."""
    p = Path(path)
    ds = load_dataset_folder(p)

    def err(msg):
        return InputFileError(f"{str(p)!r}: {msg}")

    if labels_only:
        names = list(ds.column_names)
        if labels_column is None:
            if len(names) != 1:
                raise err(f"holds {len(names)} columns ({_describe(ds)}); name the labels one with "
                          "--labels-column / column=")
            labels_column = names[0]
        elif labels_column not in names:
            raise err(f"has no labels column {labels_column!r}; its columns: {_describe(ds)}")
        return None, checked_labels(err, table_rows(ds, [labels_column]).column(labels_column), labels_column)
    return dataset_embeddings(ds, column, labels_column, err=err, where=repr(str(p)))


# ------------------------------------------------------- backbone inputs


class _Items:
    """A map-style view of one dataset column for a tensor backbone: item
    ``i`` is a float32 array (images: channels first, scaled to [0, 1])."""

    def __init__(self, ds, column, kind, image_size=None):
        self.ds, self.column, self.kind, self.image_size = ds, column, kind, image_size
        self.view = ds.with_format(None) if kind == "images" else ds.with_format("numpy", columns=[column])
        self.shape = None
        self.shape = self[0].shape if len(ds) else None

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        v = self.view[int(i)][self.column]
        if self.kind == "images":
            im = v.convert("RGB")
            if self.image_size:
                im = im.resize((self.image_size, self.image_size))
            a = np.moveaxis(np.asarray(im, dtype=np.float32) / 255.0, -1, 0)
        else:
            a = np.asarray(v, dtype=np.float32)
        if self.shape is not None and a.shape != self.shape:
            raise ValidationError(f"column {self.column!r}: row {int(i)} has shape {a.shape} but row 0 has "
                                  f"{self.shape}" + ("; give image_size= / --image-size to resize them all"
                                                    if self.kind == "images" else ""))
        return a


def embed_input(ds, column: str | None = None, *, image_size=None, err=None, where: str = "the dataset"):
    """``(data, kind)`` for a backbone: a list of strings (``"text"``) or a
    map-style sequence of float32 arrays (``"images"`` / ``"tensor"``) from
    ``column`` (default: the only string column, or ``text``)."""
    if err is None:
        def err(msg):
            return ValidationError(f"{where} {msg}")
    pa, _ = _arrow()
    names = list(ds.column_names)
    feats = ds.features
    schema = ds.data.schema
    texts = [n for n in names if pa.types.is_string(schema.field(n).type) or
             pa.types.is_large_string(schema.field(n).type)]
    if column is None:
        if len(texts) == 1:
            column = texts[0]
        elif "text" in texts:
            column = "text"
        else:
            raise err(f"name the column to embed with column= / --column; its columns: {_describe(ds)}")
    elif column not in names:
        raise err(f"has no column {column!r}; its columns: {_describe(ds)}")
    if len(ds) == 0:
        raise err("has no rows to embed")
    if column in texts:
        return [v or "" for v in table_rows(ds, [column]).column(column).to_pylist()], "text"
    ftype = type(feats.get(column)).__name__
    if ftype == "Image":
        return _Items(ds, column, "images", image_size), "images"
    t = schema.field(column).type
    while _is_list(pa, t):
        t = t.value_type
    if _is_number(pa, t) or ftype.startswith("Array"):
        return _Items(ds, column, "tensor"), "tensor"
    raise err(f"column {column!r} holds {_kind(ds, column)}, which no backbone reads: give a text column, an Image "
              "column or a column of numbers")
