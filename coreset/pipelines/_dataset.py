"""Dataset views for training on a selection: ``WeightedSubset`` yields
``(x, y, w)``; ``IndexedDataset`` yields ``(x, y, index)`` for loops that
record per-sample losses. Plus the helpers ``train`` uses to read labels and
fetch batches (a ``TensorDataset`` is indexed directly, without a loader)."""

from __future__ import annotations

import numpy as np

from .._validation import check_labels
from ..exceptions import ValidationError
from ._hooks import as_index_array, check_fingerprint, check_within, require_torch
from ._sampler import normalize_weights

__all__ = ["WeightedSubset", "IndexedDataset", "dataset_labels"]

_torch = require_torch()


def _length(dataset) -> int:
    try:
        return len(dataset)
    except TypeError:
        raise ValidationError(f"dataset must be a map-style dataset with __len__; got {type(dataset).__name__}") \
            from None


class WeightedSubset(_torch.utils.data.Dataset):
    """The selected rows of ``dataset`` with their weights: item ``i`` is
    ``(x, y, w)`` for dataset row ``indices[i]`` (positions ``0 .. k-1``, like
    ``torch.utils.data.Subset``), ``w`` a float32 scalar tensor.

    ``normalize="mean"`` (default) scales weights to mean 1 over the selection
    (``w_i = k * c_i / sum(c)`` for cluster sizes ``c``): a weighted mean loss
    then has the scale of the plain mean loss on the full data, so learning
    rates tuned on full data carry over. ``"class"`` scales them to mean 1
    within each class (labels: ``labels=``, else the dataset's): each class
    keeps the mass of its budget (its number of picks) and the weights only
    redistribute it among the class's picks; use it with class budgets
    (``"mean"`` would restore the long-tail prior that an equal or tempered
    budget removed). ``"sum"`` (sum 1), ``None`` (raw cluster sizes) and
    ``"none"`` (all 1) are the alternatives.
    A dataset shorter than the selection's largest index is refused here;
    ``embeddings=`` / ``fingerprint=`` check the selection's input fingerprint.
    """

    def __init__(self, dataset, selection, normalize="mean", *, labels=None, embeddings=None, fingerprint=None):
        idx, w, sel = as_index_array(selection)
        check_fingerprint(sel, embeddings=embeddings, fingerprint=fingerprint)
        check_within(idx, _length(dataset))
        self.dataset = dataset
        self.indices = idx
        picked = dataset_labels(dataset, labels)[idx] if normalize == "class" else None
        self.weights = normalize_weights(np.ones(idx.size) if w is None else w, normalize, labels=picked)
        self._w = _torch.as_tensor(self.weights, dtype=_torch.float32)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, i):
        x, y = self.dataset[int(self.indices[i])][:2]
        return x, y, self._w[i]


class IndexedDataset(_torch.utils.data.Dataset):
    """``dataset`` whose items are ``(x, y, index)``: the row number lets a
    loop pass per-sample losses to :meth:`DynamicPruning.rescale`."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return _length(self.dataset)

    def __getitem__(self, i):
        x, y = self.dataset[i][:2]
        return x, y, i


def dataset_labels(dataset, labels=None) -> np.ndarray:
    """Integer labels of every row: ``labels`` if given, else a
    ``TensorDataset``'s second tensor, ``.targets`` / ``.labels``, else read
    item by item."""
    n = _length(dataset)
    if labels is None:
        if isinstance(dataset, _torch.utils.data.TensorDataset) and len(dataset.tensors) >= 2:
            labels = dataset.tensors[1]
        elif getattr(dataset, "targets", None) is not None:
            labels = dataset.targets
        elif getattr(dataset, "labels", None) is not None and not callable(dataset.labels):
            labels = dataset.labels
        else:
            labels = [int(dataset[i][1]) for i in range(n)]
    y = check_labels(labels, n, name="labels")
    if y.dtype.kind not in "iub":
        raise ValidationError(f"labels must be integer class ids 0..C-1 for training; got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise ValidationError(f"labels must be class ids >= 0; got {int(y.min())}")
    return y


class BatchFetcher:
    """``fetch(rows) -> (x, y)`` tensors on ``device``: a ``TensorDataset`` is
    indexed directly (kept on the device); any other dataset is read item by
    item and collated with the default collate function."""

    def __init__(self, dataset, device):
        self.device = device
        self.direct = isinstance(dataset, _torch.utils.data.TensorDataset) and len(dataset.tensors) >= 2
        if self.direct:
            self.x = dataset.tensors[0].to(device)
            self.y = dataset.tensors[1].to(device).long()
        else:
            self.dataset = dataset

    def fetch(self, rows: np.ndarray):
        if self.direct:
            t = _torch.as_tensor(rows, device=self.device)
            return self.x[t], self.y[t]
        items = [self.dataset[int(i)][:2] for i in rows]
        x, y = _torch.utils.data.default_collate(items)
        return x.to(self.device, non_blocking=True), _torch.as_tensor(y).to(self.device).long()
