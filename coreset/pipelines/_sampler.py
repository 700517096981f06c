"""Samplers over a selection: each selected index exactly once per epoch, in
an order seeded by ``random_state`` and the epoch (``set_epoch``), on one
process or sharded across the ranks of a ``torch.distributed`` group."""

from __future__ import annotations

import numpy as np

from .._validation import check_int
from ..exceptions import ValidationError
from ._hooks import as_index_array, check_fingerprint, check_within, require_torch

__all__ = ["CoresetSampler", "DistributedCoresetSampler", "normalize_weights"]

_torch = require_torch()


def normalize_weights(weights, normalize="mean", labels=None) -> np.ndarray:
    """Selection weights scaled for a weighted loss.

    ``"mean"``: mean 1 over the selection (``w * k / sum(w)``), so a weighted
    mean loss over a batch has the scale of the unweighted loss on the full
    data; ``"class"``: mean 1 within each class (``labels``: the picks'
    labels), so each class keeps its budget's mass (its number of picks) and
    the weights only redistribute it inside the class; ``"sum"``: sum 1;
    ``None``: as given (cluster sizes); ``"none"`` ignores the weights (all 1)."""
    w = np.asarray(weights, dtype=np.float64)
    if normalize == "class":
        if labels is None:
            raise ValidationError("normalize='class' needs the labels of the selected rows; got labels=None")
        _, inv = np.unique(np.asarray(labels).reshape(-1), return_inverse=True)
        if inv.size != w.size:
            raise ValidationError(f"normalize='class' needs one label per weight ({w.size}); got {inv.size}")
        mass = np.bincount(inv, weights=w)
        count = np.bincount(inv).astype(np.float64)
        scale = np.where(mass > 0, count / np.where(mass > 0, mass, 1.0), 0.0)
        return np.where(mass[inv] > 0, w * scale[inv], 1.0)
    if normalize == "mean":
        s = w.sum()
        return w * (w.size / s) if s > 0 else np.ones_like(w)
    if normalize == "sum":
        s = w.sum()
        return w / s if s > 0 else np.full_like(w, 1.0 / w.size)
    if normalize == "none":
        return np.ones_like(w)
    if normalize is None:
        return w.copy()
    raise ValidationError(f"normalize must be 'mean', 'class', 'sum', 'none' or None; got {normalize!r}")


def _epoch_rng(random_state: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([int(random_state), int(epoch)])


class CoresetSampler(_torch.utils.data.Sampler):
    """Yield the selected indices, each exactly once per epoch.

    Parameters
    ----------
    selection : Selection, index-file path, int array or int n
        What to yield (dataset row numbers); ``n`` means ``range(n)``.
    shuffle : bool
        A fresh order each epoch, from ``(random_state, epoch)``; else selection order.
    random_state : int
        Seed of the order (the same seed and epoch always give the same order).
    n_samples : int, optional
        Length of the dataset: indices beyond it are refused up front.
    normalize : "mean" | "sum" | "none" | None
        How :attr:`weights` are scaled (see :func:`normalize_weights`).
    embeddings, fingerprint : optional
        Checked against ``Selection.meta['input_fingerprint']``.

    ``weights`` is aligned with ``indices``; ``weights_of(idx)`` looks up the
    weight of dataset rows as yielded. Call ``set_epoch(epoch)`` before each epoch.
    """

    def __init__(self, selection, *, shuffle=True, random_state=0, n_samples=None, normalize="mean",
                 embeddings=None, fingerprint=None):
        idx, w, sel = as_index_array(selection)
        check_fingerprint(sel, embeddings=embeddings, fingerprint=fingerprint)
        if n_samples is not None:
            check_within(idx, check_int(n_samples, "n_samples", low=1))
        self.indices = idx
        self.weights = normalize_weights(np.ones(idx.size) if w is None else w, normalize)
        self.shuffle = bool(shuffle)
        self.random_state = check_int(random_state, "random_state", low=0)
        self.epoch = 0
        self._lookup = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = check_int(epoch, "epoch", low=0)

    def order(self) -> np.ndarray:
        """This epoch's indices, in the order they are yielded."""
        if not self.shuffle:
            return self.indices.copy()
        return self.indices[_epoch_rng(self.random_state, self.epoch).permutation(self.indices.size)]

    def __iter__(self):
        return iter(self.order().tolist())

    def __len__(self) -> int:
        return int(self.indices.size)

    def weights_of(self, rows) -> np.ndarray:
        """Weights of dataset rows (as yielded); a row not selected is an error."""
        if self._lookup is None:
            self._lookup = dict(zip(self.indices.tolist(), self.weights.tolist()))
        try:
            return np.array([self._lookup[int(r)] for r in np.asarray(rows).ravel()], dtype=np.float64)
        except KeyError as exc:
            raise ValidationError(f"row {exc.args[0]} is not in the selection") from None


class DistributedCoresetSampler(CoresetSampler):
    """:class:`CoresetSampler` sharded across ``num_replicas`` ranks.

    Every epoch the ranks share one seeded order (same ``random_state`` and
    epoch on every rank); rank ``r`` takes positions ``r, r + R, r + 2R, ...``.
    So shards are disjoint, and together they cover the selection. When ``k``
    is not a multiple of ``R``, the order is padded by repeating its first
    ``R - k % R`` indices so that every rank yields ``ceil(k / R)`` indices
    (collectives need equal step counts); ``drop_last=True`` drops the tail
    instead (``floor(k / R)`` each, no repeats). ``num_replicas`` / ``rank``
    default to the initialised process group's.
    """

    def __init__(self, selection, *, num_replicas=None, rank=None, shuffle=True, random_state=0,
                 drop_last=False, n_samples=None, normalize="mean", embeddings=None, fingerprint=None):
        super().__init__(selection, shuffle=shuffle, random_state=random_state, n_samples=n_samples,
                         normalize=normalize, embeddings=embeddings, fingerprint=fingerprint)
        dist = _torch.distributed
        if num_replicas is None or rank is None:
            if not (dist.is_available() and dist.is_initialized()):
                raise ValidationError("num_replicas and rank are needed when no torch.distributed process group "
                                      "is initialised")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        self.num_replicas = check_int(num_replicas, "num_replicas", low=1)
        self.rank = check_int(rank, "rank", low=0, high=self.num_replicas - 1)
        self.drop_last = bool(drop_last)
        k = self.indices.size
        if self.drop_last and k < self.num_replicas:
            raise ValidationError(f"drop_last=True needs at least num_replicas={self.num_replicas} selected "
                                  f"indices; got {k}")
        self.num_samples = k // self.num_replicas if self.drop_last else -(-k // self.num_replicas)

    def order(self) -> np.ndarray:
        full = super().order()
        total = self.num_samples * self.num_replicas
        if total > full.size:
            full = np.concatenate([full, np.resize(full, total - full.size)])
        return full[:total][self.rank::self.num_replicas]

    def __len__(self) -> int:
        return int(self.num_samples)


class ScheduleSampler(_torch.utils.data.Sampler):
    """The ``sampler`` of a schedule (adaptive reselection, dynamic pruning):
    yields the schedule's rows for the current epoch, as decided by its last
    ``on_epoch_start`` / ``set_epoch`` call."""

    def __init__(self, schedule):
        self.schedule = schedule

    def __iter__(self):
        return iter(self.schedule.epoch_indices().tolist())

    def __len__(self) -> int:
        return int(self.schedule.epoch_indices().size)
