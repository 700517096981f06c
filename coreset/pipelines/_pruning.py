"""Class-aware dynamic pruning (InfoBatch-style, ICLR 2024, without patching
PyTorch): rows whose last recorded loss is below their class's mean are
"well learned"; each epoch a share of them is skipped at random within each
class, the kept ones' losses are scaled up to keep the gradient unbiased,
and the last epochs see the full data (annealing)."""

from __future__ import annotations

import math

import numpy as np

from .._validation import check_float, check_int
from ..exceptions import ValidationError
from ._dataset import dataset_labels
from ._hooks import require_torch
from ._sampler import ScheduleSampler

__all__ = ["DynamicPruning"]

_torch = require_torch()
RULES = ("class_aware", "infobatch")


class DynamicPruning:
    """Skip well-learned rows during training.

    Parameters
    ----------
    prune_ratio : float in [0, 1)
        ``r``: probability that a well-learned row is skipped this epoch; kept
        well-learned rows have their loss multiplied by ``1 / (1 - r)``.
    delta : float in [0, 1]
        Annealing: the last ``ceil(delta * epochs)`` epochs train on every row.
    rule : "class_aware" | "infobatch"
        ``"class_aware"``: well learned = loss below the mean loss of its own
        class; at least ``min_per_class`` rows of every class are kept each
        epoch; classes with fewer than ``protect_below`` rows are never pruned.
        ``"infobatch"``: the class-agnostic reference rule (one global mean, no
        floor, no protection), as in InfoBatch.
    fixed_length : bool
        Every pruning epoch has exactly ``epoch_size`` rows (default
        ``round(N * (1 - r / 2))``): ``N - epoch_size`` well-learned rows are
        skipped at random (within the floors; if too few rows are well
        learned, the lowest-loss others follow), and each class's kept
        well-learned rows are scaled by (well-learned / kept well-learned) of
        that class. The number of steps is then known up front
        (:meth:`total_steps`) for OneCycleLR and friends.

    The first epoch, before any loss is recorded, trains on every row. In your
    own loop: ``attach(dataset, epochs=E)`` (or ``labels=``), call
    ``on_epoch_start(epoch)`` before each epoch, iterate ``sampler`` (rows of
    the dataset; wrap it in :class:`IndexedDataset` to get them back), and
    pass the per-sample losses (``reduction="none"``) through
    ``rescale(rows, losses)``, which records them and returns the scaled ones.
    """

    def __init__(self, prune_ratio=0.5, delta=0.125, *, rule="class_aware", min_per_class=1, protect_below=0,
                 fixed_length=False, epoch_size=None):
        self.prune_ratio = check_float(prune_ratio, "prune_ratio", low=0.0, high=1.0, high_open=True)
        self.delta = check_float(delta, "delta", low=0.0, high=1.0)
        if rule not in RULES:
            raise ValidationError(f"rule must be one of {', '.join(RULES)}; got {rule!r}")
        self.rule = rule
        self.min_per_class = check_int(min_per_class, "min_per_class", low=0)
        self.protect_below = check_int(protect_below, "protect_below", low=0)
        self.fixed_length = bool(fixed_length)
        self.epoch_size = None if epoch_size is None else check_int(epoch_size, "epoch_size", low=1)
        self.reselections, self.selection_seconds, self.forward_samples = [], 0.0, 0
        self.sampler = ScheduleSampler(self)
        self._attached = False

    def attach(self, dataset=None, *, epochs, labels=None, random_state=0, **_):
        """Bind to the rows of ``dataset`` (or to ``labels`` alone) for ``epochs`` epochs."""
        if dataset is None and labels is None:
            raise ValidationError("attach needs a dataset or labels=")
        if dataset is None:
            from .._validation import check_labels

            y = check_labels(labels, len(labels), name="labels").astype(np.int64)
        else:
            y = dataset_labels(dataset, labels)
        self.labels = y
        self.n = n = y.size
        self.epochs = check_int(epochs, "epochs", low=1)
        self.random_state = check_int(random_state, "random_state", low=0)
        self.anneal_start = self.epochs - math.ceil(self.delta * self.epochs)
        self.classes, self.inverse = np.unique(y, return_inverse=True)
        self.sizes = np.bincount(self.inverse)
        if self.epoch_size is not None and self.epoch_size > n:
            raise ValidationError(f"epoch_size must be in [1, N={n}]; got {self.epoch_size}")
        self.length = self.epoch_size or int(round(n * (1 - self.prune_ratio / 2)))
        self.scores = np.full(n, np.nan)
        self.epoch = 0
        self._kept, self._factor = np.arange(n, dtype=np.int64), np.ones(n)
        self.history = []
        self._attached = True
        return self

    # -------------------------------------------------------------- planning
    def total_steps(self, batch_size):
        """Steps of the whole run (known up front only with ``fixed_length``)."""
        if not self.fixed_length:
            return None
        sizes = [self.n if (e == 0 or e >= self.anneal_start) else self.length for e in range(self.epochs)]
        return sum(-(-s // batch_size) for s in sizes)

    def _well_learned(self):
        seen = ~np.isnan(self.scores)
        s = np.where(seen, self.scores, 0.0)
        if self.rule == "infobatch":
            thr = np.full(self.classes.size, s[seen].mean() if seen.any() else np.inf)
        else:
            num = np.bincount(self.inverse, weights=s, minlength=self.classes.size)
            cnt = np.bincount(self.inverse, weights=seen.astype(float), minlength=self.classes.size)
            thr = np.where(cnt > 0, num / np.maximum(cnt, 1), -np.inf)
        well = seen & (s < thr[self.inverse])
        if self.rule == "class_aware" and self.protect_below:
            well &= self.sizes[self.inverse] >= self.protect_below
        return well

    def _floors(self):
        if self.rule == "infobatch":
            return np.zeros(self.classes.size, dtype=np.int64)
        return np.minimum(self.min_per_class, self.sizes)

    def on_epoch_start(self, epoch, model=None):
        """Decide which rows this epoch trains on."""
        if not self._attached:
            raise ValidationError("call attach(dataset, epochs=...) before using the schedule")
        self.epoch = check_int(epoch, "epoch", low=0, high=self.epochs - 1)
        n = self.n
        factor = np.ones(n)
        if epoch == 0 or epoch >= self.anneal_start or self.prune_ratio == 0:
            pruned = np.zeros(n, dtype=bool)
        else:
            rng = np.random.default_rng([self.random_state, epoch, 7])
            well = self._well_learned()
            floors = self._floors()
            if self.fixed_length:
                pruned = self._prune_exact(well, floors, rng)
                c = self.classes.size
                kept_well = np.bincount(self.inverse, weights=(well & ~pruned).astype(float), minlength=c)
                n_well = np.bincount(self.inverse, weights=well.astype(float), minlength=c)
                ratio = np.where(kept_well > 0, n_well / np.maximum(kept_well, 1), 1.0)
                factor = np.where(well & ~pruned, ratio[self.inverse], 1.0)
            else:
                pruned = well & (rng.random(n) < self.prune_ratio)
                pruned = self._apply_floors(pruned, floors, rng)
                factor[well & ~pruned] = 1.0 / (1.0 - self.prune_ratio)
        self._kept = np.flatnonzero(~pruned)
        self._factor = factor
        self.history.append(dict(epoch=int(epoch), kept=int(self._kept.size),
                                 kept_per_class=np.bincount(self.inverse[self._kept],
                                                            minlength=self.classes.size).tolist()))

    set_epoch = on_epoch_start

    def _apply_floors(self, pruned, floors, rng):
        kept = self.sizes - np.bincount(self.inverse[pruned], minlength=self.classes.size)
        for c in np.flatnonzero(kept < floors):
            cand = np.flatnonzero(pruned & (self.inverse == c))
            pruned[rng.choice(cand, size=int(floors[c] - kept[c]), replace=False)] = False
        return pruned

    def _prune_exact(self, well, floors, rng):
        """Skip exactly N - length rows: random well-learned ones first, then
        the lowest-loss others, never below a class's floor."""
        need = self.n - self.length
        room = (self.sizes - floors).astype(np.int64)  # rows each class may lose
        s = np.where(np.isnan(self.scores), np.inf, self.scores)
        if self.rule == "class_aware" and self.protect_below:
            room[self.sizes < self.protect_below] = 0
        order = np.concatenate([rng.permutation(np.flatnonzero(well)),
                                np.flatnonzero(~well)[np.argsort(s[~well], kind="stable")]])
        cls = self.inverse[order]
        rank = np.empty(order.size, dtype=np.int64)  # position of each row within its class in `order`
        by_class = np.argsort(cls, kind="stable")
        starts = np.concatenate([[0], np.cumsum(np.bincount(cls, minlength=self.classes.size))[:-1]])
        rank[by_class] = np.arange(order.size) - starts[cls[by_class]]
        allowed = order[rank < room[cls]]
        pruned = np.zeros(self.n, dtype=bool)
        pruned[allowed[:need]] = True
        return pruned

    # ---------------------------------------------------------------- epochs
    def epoch_indices(self) -> np.ndarray:
        """This epoch's kept rows, in a fresh order seeded by (random_state, epoch)."""
        if not self._attached:
            raise ValidationError("call attach(dataset, epochs=...) before using the schedule")
        rng = np.random.default_rng([self.random_state, self.epoch])
        return self._kept[rng.permutation(self._kept.size)]

    def rescale(self, rows, losses):
        """Record ``losses`` (one per row, from a ``reduction="none"`` loss) as
        the rows' scores and return them scaled for this epoch."""
        if not self._attached:
            raise ValidationError("call attach(dataset, epochs=...) before using the schedule")
        rows = rows.cpu().numpy() if hasattr(rows, "cpu") else np.asarray(rows)
        if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
            raise ValidationError(f"rows must be a 1-D array of integer row indices (the IndexedDataset's); "
                                  f"got dtype {rows.dtype}, shape {rows.shape}")
        if rows.size and (rows.min() < 0 or rows.max() >= self.n):
            bad = rows[(rows < 0) | (rows >= self.n)][0]
            raise ValidationError(f"rows must be row indices of the attached data, in [0, {self.n - 1}]; "
                                  f"got {int(bad)}")
        if not hasattr(losses, "detach") or losses.ndim != 1 or losses.shape[0] != rows.shape[0]:
            shape = tuple(losses.shape) if hasattr(losses, "shape") else type(losses).__name__
            raise ValidationError(
                f"losses must hold one value per row (a loss built with reduction='none'): expected shape "
                f"({rows.shape[0]},), got {shape}")
        self.scores[rows] = losses.detach().float().cpu().numpy()
        return losses * _torch.as_tensor(self._factor[rows], dtype=losses.dtype, device=losses.device)
