"""Coreset selection on a Hugging Face ``datasets.Dataset``.

>>> from coreset.integrations.huggingface import select_dataset
>>> subset = select_dataset(ds, fraction=0.1, column="embedding", labels_column="label",
...                         class_budget="tempered")
>>> subset.column_names        # ds's columns + coreset_index + coreset_weight

* :func:`select_dataset`: the selected rows of ``ds`` (every column kept, in
  selection order) with two columns added: the row's index in ``ds``
  (``coreset_index``) and its weight (``coreset_weight``: how many rows it
  stands for).
* :func:`dataset_selection`: the :class:`~coreset.Selection` alone (to save as
  an index file, inspect, or train with ``coreset.pipelines.train``).
* :func:`apply_selection`: a Selection (or an index file written by
  ``coreset select``) applied to a dataset: the same result as
  :func:`select_dataset`.
* :func:`embed_dataset`: ``ds`` with an embedding column computed by one of
  ``coreset embed``'s backbones (``"minilm"`` on a text column, ``timm:<name>``
  on an Image column, a TorchScript file or an ``nn.Module`` on a column of
  numbers).

The embeddings come from ``column``: a list / fixed-size-list column of
numbers (the only one when ``column`` is None); with ``backbone=`` they are
computed from ``column`` (text, Image or numbers) first. Labels, for class
budgets and the label filter, come from ``labels_column``. Every other
keyword goes to :func:`coreset.select`.

The returned dataset holds the selected rows in memory (``ds.select`` then
``flatten_indices(keep_in_memory=True)``): nothing is written beside a
dataset loaded from disk. Its row order is the selection order (greedy
order for the submodular methods); sort it by ``coreset_index`` for the
source order.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from ..data._hf import dataset_embeddings, embed_input, quiet_datasets, require_datasets
from ..exceptions import ValidationError

__all__ = ["select_dataset", "dataset_selection", "apply_selection", "embed_dataset", "WEIGHT_COLUMN",
           "INDEX_COLUMN"]

log = logging.getLogger(__name__)

#: default name of the weight column added to the selected rows
WEIGHT_COLUMN = "coreset_weight"
#: default name of the column holding each selected row's index in the source dataset
INDEX_COLUMN = "coreset_index"

require_datasets("coreset.integrations.huggingface")
import datasets  # noqa: E402  (after the check: a missing package gets the pip command)


def _check_dataset(ds, name: str = "ds"):
    if isinstance(ds, datasets.DatasetDict):
        raise ValidationError(f"{name} must be a datasets.Dataset; got a DatasetDict (splits: "
                              f"{', '.join(ds)}): pass one split, e.g. {name}['{next(iter(ds), 'train')}']")
    if not isinstance(ds, datasets.Dataset):
        raise ValidationError(f"{name} must be a datasets.Dataset; got {type(ds).__name__}")
    if len(ds) == 0:
        raise ValidationError(f"{name} has no rows")
    return ds


def _backbone_embeddings(ds, column, backbone, *, batch_size, device, normalize, image_size, callback):
    from ..pipelines._backbones import load_backbone
    from ..pipelines._transfer import embed

    data, kind = embed_input(ds, column, image_size=image_size)
    bb = load_backbone(backbone, device=device)
    if (bb.kind == "text") != (kind == "text"):
        raise ValidationError(f"backbone {getattr(bb, 'name', backbone)!r} takes "
                              f"{'text' if bb.kind == 'text' else 'tensors or images'} but column "
                              f"{column!r} holds {kind}")
    with quiet_datasets():
        return embed(bb, data, batch_size=batch_size, device=device, callback=callback, normalize=normalize)


def embed_dataset(ds, column=None, *, backbone="minilm", output_column="embedding", batch_size=64, device="auto",
                  normalize=False, image_size=None, callback=None):
    """``ds`` with ``output_column`` added: one float32 embedding per row
    (a fixed-size list column) computed by ``backbone`` from ``column`` (a
    text column for ``"minilm"``; an Image or numeric column for a tensor
    backbone; default: the only string column, or ``text``). The backbone
    runs frozen (eval mode, no gradients), ``batch_size`` rows at a time."""
    import pyarrow as pa

    ds = _check_dataset(ds)
    if not isinstance(output_column, str) or not output_column:
        raise ValidationError(f"output_column must be a non-empty column name; got {output_column!r}")
    if output_column in ds.column_names:
        raise ValidationError(f"output_column={output_column!r} is already a column of ds "
                              f"({', '.join(ds.column_names)}); choose another name")
    X = _backbone_embeddings(ds, column, backbone, batch_size=batch_size, device=device, normalize=normalize,
                             image_size=image_size, callback=callback)
    X = np.ascontiguousarray(X, dtype=np.float32)
    col = pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), X.shape[1])
    with quiet_datasets():
        return ds.add_column(output_column, col)


def dataset_selection(ds, n_select=None, *, fraction=None, column=None, labels_column=None, backbone=None,
                      random_state=0, callback=None, embed_batch_size=64, device="auto", normalize=False,
                      image_size=None, **params):
    """The :class:`~coreset.Selection` of ``ds``'s rows (indices are row
    numbers of ``ds``). Embeddings from ``column`` (an embedding column), or
    computed by ``backbone`` from ``column`` when a backbone is given;
    labels from ``labels_column``; ``**params`` go to :func:`coreset.select`
    (``class_budget``, ``method``, ``metric``, ...); ``device`` is the
    backbone's and the selection's. ``meta`` records the column, the
    backbone and the input fingerprint of the embeddings."""
    from ..selectors import select

    ds = _check_dataset(ds)
    if backbone is None:
        X, y = dataset_embeddings(ds, column, labels_column)
        source = {"embedding_column": column or _only_embedding_column(ds, labels_column)}
    else:
        X = _backbone_embeddings(ds, column, backbone, batch_size=embed_batch_size, device=device,
                                 normalize=normalize, image_size=image_size, callback=callback)
        y = None if labels_column is None else _labels_of(ds, labels_column)
        name = str(backbone) if isinstance(backbone, (str, os.PathLike)) else \
            getattr(backbone, "name", type(backbone).__name__)
        source = {"embedded_column": column, "backbone": name}
    sel = select(X, n_select, fraction=fraction, y=y, random_state=random_state, callback=callback,
                 device=device, **params)
    return sel.with_meta(input=f"datasets.Dataset ({len(ds)} rows)", labels_column=labels_column, **source)


def _only_embedding_column(ds, labels_column):
    from ..data._hf import embedding_columns

    return next(c for c in embedding_columns(ds) if c != labels_column)


def _labels_of(ds, labels_column):
    """The labels of ``labels_column``, checked as ``select(y=...)`` checks them."""
    from ..data._hf import checked_labels, table_rows

    if labels_column not in ds.column_names:
        raise ValidationError(f"the dataset has no labels column {labels_column!r}; its columns: "
                              f"{', '.join(ds.column_names)}")
    return checked_labels(lambda m: ValidationError(f"the dataset {m}"), table_rows(ds, [labels_column]).column(labels_column),
                   labels_column)


def _output_columns(ds, weight_column, index_column):
    """The names of the two added columns, checked: new names, different, or None."""
    for value, param in ((weight_column, "weight_column"), (index_column, "index_column")):
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise ValidationError(f"{param} must be a non-empty column name or None; got {value!r}")
        if value in ds.column_names:
            raise ValidationError(f"{param}={value!r} is already a column of the dataset "
                                  f"({', '.join(ds.column_names)}); choose another name")
    if weight_column is not None and weight_column == index_column:
        raise ValidationError(f"weight_column and index_column must differ; both are {weight_column!r}")


def apply_selection(ds, selection, *, weight_column=WEIGHT_COLUMN, index_column=INDEX_COLUMN, column=None):
    """The rows of ``ds`` that ``selection`` picked (a Selection, or the path
    of an index file: ``.npz``, ``.parquet``, ``.npy``, ``.txt``), in its
    order, every column kept, plus ``index_column`` (int64: the row in
    ``ds``) and ``weight_column`` (float64: the Selection's weights); either
    is left out when set to None. With ``column`` (the embedding column the
    selection was made from), the selection's input fingerprint is checked
    against it: a selection from other data is refused."""
    from ..selection import Selection

    ds = _check_dataset(ds)
    if isinstance(selection, (str, os.PathLike)):
        from ..selection import load_selection

        selection = load_selection(selection)
    if not isinstance(selection, Selection):
        raise ValidationError(f"selection must be a coreset.Selection or the path of an index file; got "
                              f"{type(selection).__name__}")
    _output_columns(ds, weight_column, index_column)
    idx = np.asarray(selection.indices, dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= len(ds)):
        bad = int(idx.max() if idx.max() >= len(ds) else idx.min())
        raise ValidationError(f"the selection holds row {bad}, outside the dataset's rows [0, {len(ds) - 1}]: it was "
                              "made from other data")
    if column is not None:
        _check_fingerprint(ds, column, selection)
    with quiet_datasets():
        out = ds.select(idx).flatten_indices(keep_in_memory=True)
        if index_column is not None:
            out = out.add_column(index_column, idx)
        if weight_column is not None:
            out = out.add_column(weight_column, np.asarray(selection.weights, dtype=np.float64))
    log.info("selected %d of %d rows", idx.size, len(ds))
    return out


def _check_fingerprint(ds, column, selection):
    from ..data._fingerprint import fingerprint

    recorded = selection.meta.get("input_fingerprint")
    if recorded is None:
        raise ValidationError("the selection records no input fingerprint, so column= cannot check it; drop "
                              "column= to apply it unchecked")
    X, _ = dataset_embeddings(ds, column)
    got = fingerprint(X)
    if got != recorded:
        raise ValidationError(f"the selection was made from other data: its input fingerprint is {recorded[:23]}... "
                              f"but column {column!r} of this dataset has {got[:23]}...")


def select_dataset(ds, n_select=None, *, fraction=None, column=None, labels_column=None, backbone=None,
                   weight_column=WEIGHT_COLUMN, index_column=INDEX_COLUMN, return_selection=False, random_state=0,
                   **params):
    """Select a weighted coreset of ``ds`` and return it as a Dataset:
    ``apply_selection(ds, dataset_selection(ds, ...))``. Every column of
    ``ds`` is kept; ``index_column`` and ``weight_column`` are added (None
    leaves one out). With ``return_selection`` returns ``(subset, Selection)``.
    Parameters as :func:`dataset_selection`."""
    ds = _check_dataset(ds)
    _output_columns(ds, weight_column, index_column)  # refused before any work
    sel = dataset_selection(ds, n_select, fraction=fraction, column=column, labels_column=labels_column,
                            backbone=backbone, random_state=random_state, **params)
    out = apply_selection(ds, sel, weight_column=weight_column, index_column=index_column)
    return (out, sel) if return_selection else out
