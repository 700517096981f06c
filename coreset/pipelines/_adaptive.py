"""Adaptive reselection (CRAIG / CORDS style, on any model): every ``every``
epochs, facility location per class on last-layer gradient proxies
(softmax - one-hot, optionally with the penultimate features) picks the rows
to train on, with CRAIG cluster-size weights; an optional warm start trains
on the full data first while the total stays at the budget."""

from __future__ import annotations

import logging
import time

import numpy as np

from .._validation import as_embeddings, check_float, check_int
from ..exceptions import ValidationError
from ..selectors import allocate_budget, select
from ..selectors._grouped_fl import facility_location_groups
from ._dataset import BatchFetcher, dataset_labels
from ._hooks import LastLayerCapture, find_last_linear, require_torch
from ._sampler import ScheduleSampler, normalize_weights

__all__ = ["AdaptiveReselection", "gradient_proxies", "plan_epochs"]

log = logging.getLogger(__name__)
#: selection methods that never look at the rows (baselines): no gradient proxies are computed for them
_BLIND = ("random", "stratified_random")
_torch = require_torch()


def gradient_proxies(model, fetcher, labels, *, layer=None, features=False, batch_size=1024):
    """Last-layer gradient proxies of every row: ``softmax(logits) - onehot(y)``
    (the gradient of cross-entropy with respect to the logits), with the
    penultimate features appended when ``features`` is True. One forward
    pass per row, in eval mode under ``torch.inference_mode``; the model's mode is restored.
    Returns a float32 numpy array (N, C) or (N, C + d)."""
    n = labels.size
    was = model.training
    model.eval()
    parts = []
    try:
        with LastLayerCapture(model, layer) as cap, _torch.inference_mode():
            for start in range(0, n, batch_size):
                rows = np.arange(start, min(start + batch_size, n))
                x, y = fetcher.fetch(rows)
                model(x)
                h, logits = cap.take()
                g = _torch.softmax(logits.float(), dim=1)
                g[_torch.arange(g.shape[0], device=g.device), _torch.as_tensor(labels[rows], device=g.device)] -= 1.0
                parts.append((_torch.cat([g, h.float().flatten(1)], dim=1) if features else g).cpu().numpy())
    finally:
        model.train(was)
    return (parts[0] if len(parts) == 1 else np.concatenate(parts)).astype(np.float32, copy=False)


class AdaptiveReselection:
    """Re-select a weighted coreset every ``every`` epochs.

    Parameters
    ----------
    fraction : float in (0, 1)
        The budget: ``round(fraction * epochs * N)`` sample-gradients in all.
    every : int >= 1
        Epochs between reselections (the first one at the end of the warm start).
    kappa : float in [0, 1)
        Warm start (CORDS' kappa): the first ``floor(kappa * fraction * epochs)``
        epochs train on the full data; the subset epochs that follow share what
        is left of the budget, so the total equals the budget exactly: in
        whole batches when the batch size is known (:func:`plan_epochs`),
        else sizes that differ by at most one row. Each reselection picks as
        many rows as the largest of them; a smaller epoch skips a seeded
        random part of the selection, never a class's last row.
    layer : str, optional
        Name of the last ``nn.Linear`` (auto-detected: the last one registered).
    features : bool
        Append the penultimate features to the gradient proxies.
    class_budget, min_per_class, metric, **select_params
        Passed to :func:`coreset.select` (facility location within each class).
        ``method="random"`` (or ``"stratified_random"``) gives the baseline
        that isolates facility location: the same schedule, budgets and class
        shares, rows drawn at random (no forward pass is spent on it).
        Without ``select_params`` it is ``select``'s facility location with
        ``label_filter=None`` (a label vote means nothing on gradient
        proxies); with classes of at most 2,000 rows ``select`` runs them in
        one compiled pass (the grouped dense facility location), without
        set-up per class.
    partition : int >= 2, optional
        Split each class of more than ``partition`` rows at random (seeded by
        ``random_state`` and the epoch) into ``ceil(n_c / partition)`` chunks
        of near-equal size; each chunk gets a share of its class's budget in
        proportion to its size (``allocate_budget``, proportional) and is selected on its own dense block. This
        is GreeDi's partition step without the merge: the cost falls from
        sum(n_c^2) pairs to at most ``N * partition``, at a small loss of
        objective (measured in ``docs/benchmarks.md``). Needs the dense
        path (no ``select_params``); ignored by the random baselines.

    In your own loop: ``attach(dataset, epochs=E)`` once, then
    ``on_epoch_start(epoch, model)`` before each epoch, iterate ``sampler``,
    and weight the per-sample losses with ``rescale(rows, losses)``.
    ``reselections`` records each one's epoch, seconds, forward passes (rows)
    and size.
    """

    def __init__(self, fraction=0.1, every=5, *, kappa=0.0, layer=None, features=False,
                 class_budget="proportional", min_per_class=1, metric="euclidean", normalize="mean",
                 batch_size=1024, partition=None, **select_params):
        self.fraction = check_float(fraction, "fraction", low=0.0, high=1.0, low_open=True, high_open=True)
        self.every = check_int(every, "every", low=1)
        self.kappa = check_float(kappa, "kappa", low=0.0, high=1.0, high_open=True)
        self.layer = layer
        self.features = bool(features)
        self.class_budget = class_budget
        self.min_per_class = check_int(min_per_class, "min_per_class", low=0)
        self.metric = metric
        self.normalize = normalize
        self.proxy_batch_size = check_int(batch_size, "batch_size", low=1)
        self.select_params = select_params
        self.partition = None if partition is None else check_int(partition, "partition", low=2)
        blind = select_params.get("method") in _BLIND
        if self.partition is not None and select_params and not blind:
            raise ValidationError(f"partition={partition} selects on dense blocks by facility location; it cannot "
                                  f"be combined with select parameters {sorted(select_params)}")
        self._grouped = not select_params
        self.reselections, self.selection_seconds, self.forward_samples = [], 0.0, 0
        self.sampler = ScheduleSampler(self)
        self._attached = False

    # ------------------------------------------------------------------ plan
    def attach(self, dataset, *, epochs, labels=None, random_state=0, device="cpu", fetcher=None, batch_size=None,
               **_):
        """Bind to ``dataset`` for ``epochs`` epochs and plan the budget.
        With ``batch_size`` (:func:`train` passes its own) the subset epochs
        get whole batches where they can (see :func:`plan_epochs`)."""
        self.labels = dataset_labels(dataset, labels)
        self.n = n = self.labels.size
        self.epochs = E = check_int(epochs, "epochs", low=1)
        self.random_state = check_int(random_state, "random_state", low=0)
        self.fetcher = fetcher if fetcher is not None else BatchFetcher(dataset, device)
        self.budget = B = int(round(self.fraction * E * n))
        W = min(int(np.floor(self.kappa * B / n)), E - 1)
        rest, n_sub = B - W * n, E - W
        if rest < n_sub:
            raise ValidationError(f"fraction={self.fraction} leaves fewer than 1 row per subset epoch "
                                  f"({rest} sample-gradients for {n_sub} epochs of {n} rows); raise fraction")
        batch = None if batch_size is None else check_int(batch_size, "batch_size", low=1)
        sizes = plan_epochs(rest, n_sub, n, batch)
        self.warm_epochs = W
        self.epoch_sizes = [n] * W + sizes
        self.n_select = max(sizes)
        self.reselect_epochs = list(range(W, E, self.every))
        self.indices = np.arange(n, dtype=np.int64)
        self._table = np.ones(n)
        members = np.argsort(self.labels, kind="stable")  # each class's rows ascending, as select orders them
        self._class_sizes = np.bincount(self.labels)[np.unique(self.labels)]
        self._groups = np.split(members, np.cumsum(self._class_sizes)[:-1])
        self._budgets = allocate_budget(self._class_sizes, self.n_select, self.class_budget,
                                        min_per_class=self.min_per_class)  # the partitioned path's, fixed per attach
        self.epoch = 0
        self.reselections, self.selection_seconds, self.forward_samples = [], 0.0, 0
        self._attached = True
        return self

    def total_steps(self, batch_size):
        return sum(-(-s // batch_size) for s in self.epoch_sizes)

    # --------------------------------------------------------------- epochs
    def _check_attached(self):
        if not self._attached:
            raise ValidationError("call attach(dataset, epochs=...) before using the schedule")

    def check_model(self, model):
        """Refuse, before training, a model whose last linear layer hooks cannot
        reach: no ``nn.Linear``, a TorchScript module, or a named layer that
        ``forward`` never calls (one forward pass on two rows)."""
        self._check_attached()
        find_last_linear(model, self.layer)
        gradient_proxies(model, self.fetcher, self.labels[:2], layer=self.layer, batch_size=2)

    def on_epoch_start(self, epoch, model):
        self._check_attached()
        self.epoch = check_int(epoch, "epoch", low=0, high=self.epochs - 1)
        if epoch == 0:
            self.check_model(model)  # a model hooks cannot reach fails before any training
        if epoch < self.warm_epochs:
            self.indices, self._table = np.arange(self.n, dtype=np.int64), np.ones(self.n)
        elif epoch in self.reselect_epochs:
            self._reselect(epoch, model)

    def _reselect(self, epoch, model):
        t0 = time.perf_counter()
        seed = (self.random_state * 1_000_003 + epoch) % 2**31
        if self.select_params.get("method") in _BLIND:  # a baseline that ignores the rows: no forward pass
            G = np.arange(self.n, dtype=np.float32)[:, None]  # any distinct rows: only their count matters
            sel = select(G, n_select=self.n_select, y=self.labels, class_budget=self.class_budget,
                         min_per_class=self.min_per_class, random_state=seed, **self.select_params)
            indices, weights, forwards = sel.indices, sel.weights, 0
        else:
            G = gradient_proxies(model, self.fetcher, self.labels, layer=self.layer, features=self.features,
                                 batch_size=self.proxy_batch_size)
            indices, weights = self._select(G, seed)
            forwards = self.n
        self.indices = indices
        self._table = np.zeros(self.n)
        self._table[indices] = normalize_weights(weights, self.normalize)
        seconds = time.perf_counter() - t0
        self.selection_seconds += seconds
        self.forward_samples += forwards
        self.reselections.append(dict(epoch=int(epoch), seconds=seconds, forward_samples=int(forwards),
                                      n_select=int(indices.size)))
        log.info("epoch %d: reselected %d of %d rows in %.3f s", epoch, indices.size, self.n, seconds)

    def _select(self, G, seed):
        """Facility location within each class (or each class's chunks, with
        ``partition``) on the gradient proxies: ``(indices, weights)``."""
        G = as_embeddings(G, name="gradient proxies")  # non-finite proxies (a diverged model) are refused here
        if self.partition is None:
            # select's own path: its class budget runs the grouped dense pass when every class fits a dense
            # block (SubmodularSelector._select_groups), else a kNN graph per class; no label filter on
            # gradient proxies unless select parameters ask for one
            params = self.select_params if not self._grouped else {"label_filter": None}
            sel = select(G, n_select=self.n_select, y=self.labels, class_budget=self.class_budget,
                         min_per_class=self.min_per_class, metric=self.metric, random_state=seed, **params)
            return sel.indices, sel.weights
        groups, owner = self._chunks(np.random.default_rng(seed))
        sizes = np.array([g.size for g in groups], dtype=np.int64)
        budgets = np.zeros(len(groups), np.int64)  # each class's budget over its chunks, in proportion to their sizes
        for c, b in enumerate(self._budgets):
            at = np.flatnonzero(owner == c)
            if b > 0:
                budgets[at] = allocate_budget(sizes[at], int(b), "proportional")
        # gamma=None: the euclidean kernel's scale from all of G, as select resolves it
        indices, weights, _, _ = facility_location_groups(G, groups, budgets, metric=self.metric)
        return indices, weights

    def _chunks(self, rng):
        """``(groups, owner)``: each class's rows, a class of more than
        ``partition`` rows split at random into near-equal chunks (rows
        ascending within a chunk); ``owner[g]`` is the class of group ``g``."""
        groups, owner = [], []
        for c, rows in enumerate(self._groups):
            parts = -(-rows.size // self.partition)
            if parts == 1:
                groups.append(rows)
            else:
                groups += [np.sort(p) for p in np.array_split(rows[rng.permutation(rows.size)], parts)]
            owner += [c] * parts
        return groups, np.asarray(owner)

    def epoch_indices(self) -> np.ndarray:
        """This epoch's rows, in a fresh order seeded by (random_state, epoch).
        An epoch smaller than the selection skips rows at random but keeps
        one row of every class the selection holds (while it has room)."""
        self._check_attached()
        rng = np.random.default_rng([self.random_state, self.epoch])
        order = self.indices[rng.permutation(self.indices.size)]
        m = self.epoch_sizes[self.epoch]
        if m >= order.size:
            return order
        first = np.zeros(order.size, np.bool_)
        first[np.unique(self.labels[order], return_index=True)[1]] = True  # each class's first row in the order
        extra = m - int(first.sum())
        if extra < 0:  # more classes than rows this epoch
            return order[:m]
        first[np.flatnonzero(~first)[:extra]] = True
        return order[first]

    def rescale(self, rows, losses):
        """``losses * weight`` of each row (CRAIG weights, normalised)."""
        rows = rows.cpu().numpy() if hasattr(rows, "cpu") else np.asarray(rows)
        return losses * _torch.as_tensor(self._table[rows], dtype=losses.dtype, device=losses.device)


def plan_epochs(rows, epochs, n, batch_size=None):
    """Sizes of ``epochs`` epochs that together train on exactly ``rows`` rows
    (each epoch at least 1 and at most ``n``).

    Without ``batch_size``: sizes that differ by at most one row, the larger
    first. With it, whole batches: each epoch gets ``q`` or ``q + 1`` full
    batches (the larger first) and the ``rows % batch_size`` left over go to
    the first epoch, so only one epoch ends in a partial batch. A step on a
    partial batch costs about what a full one does, so rows cut into
    ``ceil(k / b)`` batches every epoch waste steps: on digits-lt (137-row
    epochs, batch 32) 205 steps become 175. Falls back to the row plan when
    an epoch would get no full batch or more than ``n`` rows."""
    k, extra = divmod(rows, epochs)
    by_rows = [k + 1] * extra + [k] * (epochs - extra)
    if batch_size is None:
        return by_rows
    q, more = divmod(rows // batch_size, epochs)
    left = rows % batch_size
    if q < 1 or (q + (1 if more else 0)) * batch_size + left > n:
        return by_rows
    sizes = [(q + 1) * batch_size] * more + [q * batch_size] * (epochs - more)
    sizes[0] += left
    return sizes
