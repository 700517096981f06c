"""Augmentation, measured, in :func:`coreset.pipelines.compare` (Liu &
Mirzasoleiman, *Data-Efficient Augmentation for Training Neural Networks*,
NeurIPS 2022: augmenting a well-chosen subset keeps most of the gain of
augmenting every row, at a fraction of the augmentation cost).

Protocol: every ``+aug`` method trains on **all** the original rows, and
every epoch also on **one freshly augmented copy of each row of a set A**:

* ``full+aug`` / ``full_balanced+aug``: A = every row (augment every row);
* ``full+aug:<method>`` / ``full_balanced+aug:<method>``: A = the rows the
  fixed-selection ``<method>`` picks at the cell's fraction (augment only the
  coreset), e.g. ``full+aug:facility_location:equal``, ``full+aug:random``;
* no augmentation is ``full`` / ``full_balanced`` itself.

The base (``full``: plain cross-entropy; ``full_balanced``: the class-weighted
loss of ``full_balanced``) is trained for the same epochs. An epoch is a
seeded shuffle of the ``N + |A|`` items (the originals and the copies), so it
costs ``N + |A|`` sample-gradients (``sample_gradients`` counts them all);
``augment_gradients`` is the part spent on augmented copies, exactly
``epochs * |A|``: the augmentation cost (A = every row: ``epochs * N``).

Augmenters (``augment=`` of ``compare``; ``"auto"`` picks by model):
``"image"`` (kornia :class:`ImageAugment` on ``(1, side, side)`` images;
``cnn2d``), ``"signal"`` (:class:`SignalAugment`: circular shifts and noise
on 1-D signals; ``cnn1d``), ``"mixup"`` (:class:`Mixup` on the rows as they
are, embeddings; every other model). With ``standardize=True`` a copy is
mapped back to the raw features, augmented there, and standardised again,
so shifts and crops move pixels, not standardised scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import UnknownNameError, ValidationError

__all__ = ["AUGMENTERS", "AUGMENT_DEFAULTS", "AUGMENT_BASES", "AugmentSpec", "parse_augment", "is_augment_name",
           "AugmentedCopies", "make_augmenter", "resolve_augment", "plan_augment"]

#: augmenter kinds ``compare(augment=...)`` accepts besides ``"auto"``
AUGMENTERS = ("image", "signal", "mixup")
#: default strength of each kind (docs/compare.md, "Augmentation": chosen on a validation split)
AUGMENT_DEFAULTS = {
    "image": dict(crop_padding=1, flip=0.0, jitter=0.0, erase=0.0),
    "signal": dict(max_shift=3, noise=0.05),
    "mixup": dict(alpha=1.0),
}
#: full-data methods an ``+aug`` method adds copies to (their loss is kept)
AUGMENT_BASES = ("full", "full_balanced")
_MARK = "+aug"
#: fixed-selection kinds whose rows can be the augmented set
_ROW_KINDS = ("random", "stratified_random", "random_budget", "objective", "ccs", "k_center_greedy", "score")


@dataclass(frozen=True)
class AugmentSpec:
    """A parsed ``<base>+aug[:<method>]`` name: ``rows`` is the parsed
    selection method whose rows are augmented (None: every row)."""

    name: str
    base: str
    rows: object = None
    kind: str = "augment"
    loss: str = "cross_entropy"
    weighted: bool = False
    objective: str | None = None
    policy: str | None = None

    @property
    def full_data(self) -> bool:
        """Augmenting every row does not depend on the fraction: run once per seed."""
        return self.rows is None

    @property
    def normalize(self) -> str:
        return "none"


def is_augment_name(name) -> bool:
    return isinstance(name, str) and any(name.startswith(b + _MARK) for b in AUGMENT_BASES)


def parse_any(name):
    """Any method name ``compare`` accepts: the ``+aug`` ones here, the others
    by :func:`~._compare_methods.parse_method` (did-you-mean on an unknown one)."""
    from ._compare_methods import parse_method

    return parse_augment(name) if is_augment_name(name) else parse_method(name)


def parse_methods(methods) -> list:
    """Validate and parse method names (a list or a comma-separated string, ``"all"`` expanded)."""
    from ._compare_methods import expand_methods

    return [parse_any(m) for m in expand_methods(methods)]


def parse_augment(name) -> AugmentSpec:
    """Parse ``full+aug``, ``full_balanced+aug``, ``full+aug:<method>``,
    ``full_balanced+aug:<method>``; ``<method>`` must choose a fixed set of
    rows (random, random_budget, an objective, ccs, k-center, a score),
    unweighted and with no loss suffix."""
    from ._compare_methods import parse_method

    base, _, rest = name.partition(_MARK)
    if base not in AUGMENT_BASES or (rest and not rest.startswith(":")):
        raise UnknownNameError("method", name, [f"{b}{_MARK}" for b in AUGMENT_BASES]
                               + [f"{b}{_MARK}:<method>" for b in AUGMENT_BASES])
    if not rest:
        return AugmentSpec(name, base)
    inner = parse_method(rest[1:])
    if isinstance(inner, AugmentSpec) or inner.kind not in _ROW_KINDS or inner.weighted \
            or inner.loss != "cross_entropy":
        raise ValidationError(
            f"method {name!r}: the rows to augment must come from a fixed-selection method without weights or "
            f"loss suffix (random, random_budget:<policy>, <objective>:<policy>, ccs:<policy>, k_center_greedy, "
            f"a score); got {rest[1:]!r}")
    return AugmentSpec(name, base, rows=inner, objective=inner.objective, policy=inner.policy)


# ---------------------------------------------------------------- augmenters
def resolve_augment(augment, model) -> str:
    """The augmenter kind: ``augment`` itself, or for ``"auto"`` the one the
    model calls for (``cnn2d``: image, ``cnn1d``: signal, otherwise mixup)."""
    if augment == "auto":
        return {"cnn2d": "image", "cnn1d": "signal"}.get(model if isinstance(model, str) else None, "mixup")
    if not isinstance(augment, str) or augment not in AUGMENTERS:
        raise UnknownNameError("augment", augment, ("auto",) + AUGMENTERS)
    return augment


def check_augment_params(kind, params) -> dict:
    """``AUGMENT_DEFAULTS[kind]`` updated by ``params`` (unknown keys refused)."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(AUGMENT_DEFAULTS[kind]))
    if unknown:
        raise ValidationError(f"augment_params for augment={kind!r} takes {', '.join(AUGMENT_DEFAULTS[kind])}; "
                              f"got {', '.join(map(repr, unknown))}")
    return {**AUGMENT_DEFAULTS[kind], **params}


class _Batch:
    """``(x, y, mask) -> (x, y)``: the rows in ``mask`` (the copies) replaced
    by their augmented versions; the others pass unchanged. ``scale = (mu,
    sd)``: augment in the raw feature space (``x * sd + mu``)."""

    def __init__(self, kind, augmenter, n_features, n_classes, scale):
        self.kind, self.augmenter, self.d, self.n_classes = kind, augmenter, n_features, n_classes
        self.scale = None
        if scale is not None:
            import torch

            self.scale = tuple(torch.as_tensor(np.asarray(a), dtype=torch.float32) for a in scale)

    def _raw(self, x):
        if self.scale is None:
            return x
        mu, sd = (a.to(x.device, x.dtype) for a in self.scale)
        return x * sd + mu

    def _std(self, x):
        if self.scale is None:
            return x
        mu, sd = (a.to(x.device, x.dtype) for a in self.scale)
        return (x - mu) / sd

    def __call__(self, x, y, mask):
        import torch

        if self.kind == "mixup":  # partners from the whole batch; the originals keep one-hot labels
            xm, ym = self.augmenter(x, y)
            out_x, out_y = x.clone(), torch.nn.functional.one_hot(y.long(), self.n_classes).to(ym.dtype)
            out_x[mask], out_y[mask] = xm[mask], ym[mask]
            return out_x, out_y
        xa = self._raw(x[mask])
        if self.kind == "image":
            side = int(round(self.d ** 0.5))
            xa = self.augmenter(xa.reshape(-1, 1, side, side))[0].reshape(-1, self.d)
        else:
            xa = self.augmenter(xa)[0]
        out = x.clone()
        out[mask] = self._std(xa).to(x.dtype)
        return out, y


def make_augmenter(kind, n_features, n_classes, *, params=None, random_state=0, scale=None):
    """The batch function ``(x, y, mask) -> (x, y)`` of an augmenter kind,
    seeded by ``random_state``."""
    from ._augment import ImageAugment, Mixup, SignalAugment

    p = check_augment_params(kind, params)
    if kind == "image":
        from ._models import image_side

        image_side(n_features)  # square images only
        aug = ImageAugment(random_state=random_state, **p)
    elif kind == "signal":
        aug = SignalAugment(random_state=random_state, **p)
    else:
        aug = Mixup(n_classes, random_state=random_state, **p)
    return _Batch(kind, aug, n_features, n_classes, scale)


# ---------------------------------------------------------------- the schedule
class AugmentedCopies:
    """A schedule for :func:`train`: every epoch a seeded shuffle of the
    ``N`` original rows and one copy of each row of ``rows``, the copies
    augmented by ``augment(x, y, mask)`` as their batch is read.

    Items ``0 .. N-1`` are the originals, ``N + j`` the copy of ``rows[j]``.
    The schedule reads batches through the fetcher ``train`` hands to
    ``attach`` (the hook schedules use to read rows) and decorates it for this
    training run. ``augment_gradients``: copies trained on (``epochs *
    len(rows)`` after training); ``augmented_counts``: how many times each
    dataset row was augmented."""

    def __init__(self, rows, augment):
        self.rows = np.unique(np.asarray(rows, dtype=np.int64))
        if not callable(augment):
            raise ValidationError(f"augment must be callable(x, y, mask); got {type(augment).__name__}")
        self.augment = augment
        self.reselections, self.selection_seconds, self.forward_samples = [], 0.0, 0
        self.augment_gradients = 0
        self.augmented_counts = None

    def attach(self, dataset, *, epochs, labels=None, random_state=0, fetcher=None, **_):
        import torch

        self.n = len(dataset)
        if self.rows.size and (self.rows[0] < 0 or self.rows[-1] >= self.n):
            raise ValidationError(f"rows to augment must be in [0, {self.n - 1}]; got {self.rows[0]} .. "
                                  f"{self.rows[-1]}")
        if fetcher is None:
            raise ValidationError("AugmentedCopies reads its batches through train()'s fetcher; attach got none")
        self.epochs, self.random_state, self.labels = epochs, random_state, labels
        self.augmented_counts = np.zeros(self.n, dtype=np.int64)
        self.augment_gradients = 0
        read = fetcher.fetch

        def fetch(items):
            items = np.asarray(items, dtype=np.int64)
            copy = items >= self.n
            src = np.where(copy, self.rows[np.where(copy, items - self.n, 0)], items)
            x, y = read(src)
            if copy.any():
                x, y = self.augment(x, y, torch.from_numpy(copy).to(x.device))
                np.add.at(self.augmented_counts, src[copy], 1)
                self.augment_gradients += int(copy.sum())
            return x, y

        fetcher.fetch = fetch  # this run's fetcher only (train builds one per call)
        return self

    def on_epoch_start(self, epoch, model=None):
        self.epoch = epoch

    def epoch_indices(self):
        rng = np.random.default_rng([self.random_state, self.epoch, 23])
        return rng.permutation(self.n + self.rows.size).astype(np.int64)

    def total_steps(self, batch_size):
        return self.epochs * -(-(self.n + self.rows.size) // batch_size)

    def rescale(self, rows, losses):
        return losses

    def class_prior(self):
        """Class shares of an epoch: the originals plus the copies."""
        c = int(self.labels.max()) + 1
        counts = np.bincount(self.labels, minlength=c) + np.bincount(self.labels[self.rows], minlength=c)
        return counts / counts.sum()


def plan_augment(spec: AugmentSpec, fraction, seed, ctx, k):
    """``(chosen, schedule, epochs)`` of an ``+aug`` cell: the rows to augment
    chosen by ``spec.rows`` at ``k`` rows (its selection cost kept in
    ``chosen``), training on the full data plus their copies."""
    from ._compare_methods import Chosen
    from ._compare_proxy import select_rows

    X, y, C = ctx["X"], ctx["y"], ctx["n_classes"]
    if spec.rows is None:
        rows, chosen = np.arange(y.size, dtype=np.int64), Chosen(None, None)
    else:
        picked = select_rows(spec.rows, seed, ctx, k)
        rows = picked.indices
        chosen = Chosen(None, None, picked.seconds, gradients=picked.gradients, forward=picked.forward)
    aug = ctx.get("augment") or {}
    fn = make_augmenter(aug.get("kind", "mixup"), X.shape[1], C, params=aug.get("params"), random_state=seed,
                        scale=ctx.get("scale"))
    return chosen, AugmentedCopies(rows, fn), ctx["epochs"]


def augment_settings(augment, augment_params, model, specs=()):
    """``(kind, params, record)``: the augmenter of a compare run, its
    parameters (checked by building it once when a method of ``specs``
    augments, or settings are given), and what the run's config records:
    nothing for the defaults (``"auto"``, no ``augment_params``), so folders
    of earlier runs still resume."""
    from ._augment import ImageAugment, Mixup, SignalAugment

    kind = resolve_augment(augment, model)
    if augment_params is not None and not isinstance(augment_params, dict):
        raise ValidationError(f"augment_params must be a dict of augmenter settings; got "
                              f"{type(augment_params).__name__}")
    params = check_augment_params(kind, augment_params)
    record = {} if augment == "auto" and not augment_params else dict(augment=kind, augment_params=params)
    if not record and not any(isinstance(s, AugmentSpec) for s in specs):
        return kind, params, record
    if kind == "image":
        ImageAugment(**params)
    elif kind == "signal":
        SignalAugment(**params)
    else:
        Mixup(2, **params)
    return kind, params, record
