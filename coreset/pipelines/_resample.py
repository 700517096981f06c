"""Per-epoch resampling within class quotas (RS2 without replacement,
Okanovic et al., ICLR 2024, with class budgets): every epoch trains on a
fresh draw of each class's quota of rows, cycling through a per-class
permutation, so every row of a class is seen once before any row of it is
seen twice. At a fraction ``f`` it costs ``f`` of full data's
sample-gradients over the same number of epochs."""

from __future__ import annotations

import numpy as np

from .._validation import check_float, check_int
from ..exceptions import ValidationError
from ._dataset import dataset_labels
from ._sampler import ScheduleSampler

__all__ = ["ResampleSchedule", "RESAMPLE_POLICIES", "class_streams"]

#: quota policies: those of ``allocate_budget`` plus ``sqrt`` (tempered with alpha 0.5)
RESAMPLE_POLICIES = ("proportional", "equal", "tempered", "sqrt")


def class_streams(members, quota, epochs, rng) -> np.ndarray:
    """``epochs * quota`` rows drawn from ``members`` without replacement
    inside each cycle: the stream is a sequence of permutations of
    ``members`` (each row once per cycle of ``members.size`` draws); where an
    epoch straddles two cycles, the next permutation puts the rows already
    taken this epoch last, so no row repeats within an epoch. A quota of at
    least the class size gives every row every epoch (in a fresh order)."""
    members = np.asarray(members, dtype=np.int64)
    n, quota = members.size, int(quota)
    if quota <= 0 or n == 0:
        return np.zeros((epochs, 0), dtype=np.int64)
    if quota >= n:
        return np.stack([rng.permutation(members) for _ in range(epochs)])
    out = np.empty((epochs, quota), dtype=np.int64)
    perm, pos = rng.permutation(members), 0
    for e in range(epochs):
        take = perm[pos:pos + quota]
        pos += take.size
        if take.size < quota:  # the cycle ends inside this epoch: start the next one
            rest = np.setdiff1d(members, take, assume_unique=True)
            perm = np.concatenate([rng.permutation(rest), rng.permutation(take)])
            pos = quota - take.size
            take = np.concatenate([take, perm[:pos]])
        out[e] = take
    return out


class ResampleSchedule:
    """Train on a fresh class-budgeted random subset every epoch.

    Parameters
    ----------
    fraction : float in (0, 1]
        Rows per epoch: ``k = max(1, round(fraction * N))``, split over the
        classes by ``policy``. Over ``epochs`` epochs it spends
        ``epochs * k`` sample-gradients, the cost of a fixed subset of ``k``
        rows (``fraction`` of full data's).
    policy : "proportional" | "equal" | "tempered" | "sqrt"
        Per-class quotas, as ``coreset.select(..., class_budget=policy)``
        allocates them (``allocate_budget``): ``sqrt`` is ``tempered`` with
        ``alpha=0.5``. A class whose quota exceeds its size gives all its rows
        and the surplus goes to the others.
    alpha : float in [0, 1]
        Exponent of ``tempered``.
    min_per_class : int
        Floor of every class's quota (a class smaller than it gives all its rows).
    quotas : array of ints, optional
        Per-class quotas indexed by label (instead of ``fraction`` / ``policy``),
        e.g. DRoP's error-driven quotas; capped at each class's size.
    random_state : int, optional
        Seed of the draws (default: the ``random_state`` given to ``attach`` /
        ``train``).

    Within a class the rows come from a seeded permutation consumed
    ``quota`` rows per epoch; when it runs out the next permutation starts
    (:func:`class_streams`): RS2 without replacement, inside each class.
    ``class_prior()`` is the share of each class in an epoch (its quota over
    ``k``), the effective prior a logit-adjusted loss needs. In your own
    loop: ``attach(dataset, epochs=E)``, ``on_epoch_start(epoch)``, then
    iterate ``sampler`` (or ``epoch_indices()``).
    """

    def __init__(self, fraction=None, policy="equal", *, alpha=0.5, min_per_class=1, quotas=None,
                 random_state=None):
        if (fraction is None) == (quotas is None):
            raise ValidationError("give fraction= or quotas= (one of them); got "
                                  + ("both" if fraction is not None else "neither"))
        self.fraction = None if fraction is None else check_float(fraction, "fraction", low=0.0, high=1.0,
                                                                  low_open=True)
        if not isinstance(policy, str) or policy not in RESAMPLE_POLICIES:
            from ..exceptions import UnknownNameError

            raise UnknownNameError("policy", policy, RESAMPLE_POLICIES)
        self.policy = policy
        self.alpha = check_float(alpha, "alpha", low=0.0, high=1.0)
        self.min_per_class = check_int(min_per_class, "min_per_class", low=0)
        self.quotas = None
        if quotas is not None:
            q = np.asarray(quotas)
            if q.ndim != 1 or q.size == 0 or q.dtype.kind not in "iu" or (q < 0).any() or q.sum() < 1:
                raise ValidationError(f"quotas must be integers >= 0, one per class, summing to >= 1; got {quotas!r}")
            self.quotas = q.astype(np.int64)
        self.random_state = None if random_state is None else check_int(random_state, "random_state", low=0)
        self.reselections, self.selection_seconds, self.forward_samples = [], 0.0, 0
        self.sampler = ScheduleSampler(self)
        self._attached = False

    def _quotas(self, sizes):
        from ..selectors._budget import allocate_budget

        if self.quotas is not None:
            if self.quotas.size < sizes.size:
                raise ValidationError(f"quotas must have one entry per class (labels 0..{sizes.size - 1}); got "
                                      f"{self.quotas.size}")
            return np.minimum(self.quotas[:sizes.size], sizes)
        present = sizes > 0
        k = max(1, int(round(self.fraction * int(sizes.sum()))))
        policy, alpha = ("tempered", 0.5) if self.policy == "sqrt" else (self.policy, self.alpha)
        q = np.zeros(sizes.size, dtype=np.int64)
        q[present] = allocate_budget(sizes[present], k, policy, alpha=alpha, min_per_class=self.min_per_class)
        return q

    def attach(self, dataset=None, *, epochs, labels=None, random_state=0, **_):
        """Draw every epoch's rows of ``dataset`` (or of ``labels`` alone) for ``epochs`` epochs."""
        if dataset is None and labels is None:
            raise ValidationError("attach needs a dataset or labels=")
        if dataset is None:
            from .._validation import check_labels

            y = check_labels(labels, len(labels), name="labels").astype(np.int64)
        else:
            y = dataset_labels(dataset, labels)
        if y.min() < 0:
            raise ValidationError(f"labels must be class ids >= 0; got {int(y.min())}")
        self.epochs = check_int(epochs, "epochs", low=1)
        seed = self.random_state if self.random_state is not None else check_int(random_state, "random_state", low=0)
        self.seed_ = seed
        sizes = np.bincount(y)
        self.quotas_ = self._quotas(sizes)
        self.epoch_size = int(self.quotas_.sum())
        rng = np.random.default_rng([seed, 29])
        order = np.argsort(y, kind="stable")
        splits = np.split(order, np.cumsum(sizes)[:-1])
        self._draws = [class_streams(m, q, self.epochs, rng) for m, q in zip(splits, self.quotas_)]
        self.epoch = 0
        self._attached = True
        return self

    def class_prior(self) -> np.ndarray:
        """Each class's share of an epoch's rows (quota / rows per epoch), indexed by label."""
        self._check()
        return self.quotas_ / self.epoch_size

    def _check(self):
        if not self._attached:
            raise ValidationError("call attach(dataset, epochs=...) before using the schedule")

    def total_steps(self, batch_size):
        return self.epochs * -(-self.epoch_size // int(batch_size))

    def on_epoch_start(self, epoch, model=None):
        self._check()
        self.epoch = check_int(epoch, "epoch", low=0, high=self.epochs - 1)

    set_epoch = on_epoch_start

    def epoch_indices(self) -> np.ndarray:
        """This epoch's rows (every class's quota), in a fresh order seeded by (seed, epoch)."""
        self._check()
        rows = np.concatenate([d[self.epoch] for d in self._draws])
        return rows[np.random.default_rng([self.seed_, self.epoch, 31]).permutation(rows.size)]

    def rescale(self, rows, losses):
        return losses
