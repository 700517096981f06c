"""Realistic training data, as knobs: label noise and near-duplicates.

Applied to a dataset's training split only (the test split stays clean and
balanced), seeded by the dataset's ``random_state``, in this order:

1. **duplicates** (share of training rows *replaced* by near-copies of other
   rows of their class, so class sizes do not change). Scraped data repeats
   its head: class c receives a share of the ``round(duplicates * n)`` copies
   proportional to ``n_c ** 2`` (largest-remainder rounding), capped at
   ``n_c - 1`` (every class keeps an original; the surplus goes to the other
   classes in the same proportion). Within a class the replaced rows are
   drawn uniformly, and each gets a source drawn uniformly from the class's
   originals (a source is never itself a copy). A near-copy is the source plus
   noise shaped like the training split's per-feature spread and scaled to
   ``NEAR_COPY_NOISE`` (5%) of the source's norm, so its cosine to the source
   is at least ``sqrt(1 - 0.05**2)`` (0.9987); then clipped to each feature's
   training range (pixels stay in [0, 1]; clipping only moves a copy closer to
   its source) and, when every training row has unit norm (sentence
   embeddings), renormalised. A copied row's sentence (``texts``) is the
   source's sentence verbatim.
2. **label noise** (share of training rows whose label is flipped): exactly
   ``round(label_noise * n)`` rows drawn uniformly (never the last row of a
   class that still carries its true label, so every class stays in the
   training labels), each flipped to another class: ``"symmetric"``
   uniformly among the other classes; ``"confusable"`` to the class whose
   centroid (mean of the noise-free training features) is nearest to the true
   class's centroid (Euclidean; ties to the lower label) -- a fixed map, kept
   in ``Dataset.noise["confusion"]``.

The two steps draw from independent streams, so the same seed flips the same
rows whatever ``duplicates`` is (copies keep their class) and copies the same
rows whatever ``label_noise`` is. The returned ``Dataset`` keeps ``y_clean``,
``flipped``, ``copied`` and ``copy_source`` so that detectors can be scored.
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import replace
from typing import NamedTuple

import numpy as np

from .._registry import check_name
from ..exceptions import ValidationError

__all__ = ["NOISE_MODELS", "NEAR_COPY_NOISE", "NoisyTraining", "check_noise", "confusion_map",
           "duplicate_quotas", "corrupt_training", "apply_noise", "is_noisy", "noise_settings",
           "corrupt_arrays"]

log = logging.getLogger(__name__)

#: label-noise models: uniformly to another class, or to the nearest class centroid's class
NOISE_MODELS = ("symmetric", "confusable")
#: a near-copy's noise norm, relative to its source's norm
NEAR_COPY_NOISE = 0.05
#: mixed into the dataset's seed, so the noise streams differ from the data's own
_TAG = 0x6E6F_6973


def _check_share(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValidationError(f"{name} must be a number in [0, 1) (a share of the training rows); got {value!r}")
    v = float(value)
    if not (np.isfinite(v) and 0.0 <= v < 1.0):
        raise ValidationError(f"{name} must be in [0, 1) (a share of the training rows); got {value!r}")
    return v


def check_noise(label_noise=0.0, noise_model="symmetric", duplicates=0.0) -> tuple[float, str, float]:
    """The three knobs, validated: shares in [0, 1) (finite), a known noise model."""
    return (_check_share(label_noise, "label_noise"), check_name("noise_model", noise_model, NOISE_MODELS),
            _check_share(duplicates, "duplicates"))


def _streams(random_state) -> tuple[np.random.Generator, np.random.Generator]:
    """Two independent generators (duplicates, label noise) from the dataset's seed."""
    if random_state is None:
        seq = np.random.SeedSequence()
    elif isinstance(random_state, np.random.Generator):
        seq = np.random.SeedSequence(random_state.integers(0, 2**63, size=2).tolist())
    elif isinstance(random_state, np.random.SeedSequence):
        seq = np.random.SeedSequence(random_state.generate_state(4).tolist() + [_TAG])
    elif isinstance(random_state, np.random.RandomState):
        seq = np.random.SeedSequence(random_state.randint(0, 2**31 - 1, size=2).tolist())
    elif isinstance(random_state, numbers.Integral) and not isinstance(random_state, (bool, np.bool_)) \
            and int(random_state) >= 0:
        seq = np.random.SeedSequence([int(random_state), _TAG])
    else:
        raise ValidationError(f"random_state must be None, an int >= 0 or a numpy Generator; got {random_state!r}")
    a, b = seq.spawn(2)
    return np.random.default_rng(a), np.random.default_rng(b)


def confusion_map(X, y, n_classes: int | None = None) -> np.ndarray:
    """For each class, the other class whose centroid (mean row of ``X``) is
    nearest in Euclidean distance, ties to the lower label; -1 for a class with
    no rows or no other class with rows."""
    y = np.asarray(y, dtype=np.int64)
    C = int(y.max()) + 1 if n_classes is None else int(n_classes)
    counts = np.bincount(y, minlength=C)
    sums = np.zeros((C, X.shape[1]), np.float64)
    np.add.at(sums, y, np.asarray(X, dtype=np.float64))
    mu = sums / np.maximum(counts, 1)[:, None]
    sq = (mu * mu).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * mu @ mu.T
    absent = counts == 0
    d2[:, absent] = np.inf
    np.fill_diagonal(d2, np.inf)
    out = np.argmin(d2, axis=1).astype(np.int64)  # argmin: the first (lowest) label among ties
    out[absent | ~np.isfinite(d2.min(axis=1))] = -1
    return out


def duplicate_quotas(class_counts, n_copies: int) -> np.ndarray:
    """Copies per class: shares ∝ n_c ** 2, each at most n_c - 1, summing to
    ``n_copies`` (the capped classes' surplus is shared out again in the same
    proportion; largest-remainder rounding, ties to the lower label)."""
    n = np.asarray(class_counts, dtype=np.int64)
    cap = np.maximum(n - 1, 0)
    if n_copies > int(cap.sum()):
        raise ValidationError(
            f"duplicates asks for {n_copies} copies but only {int(cap.sum())} of the {int(n.sum())} training rows "
            "can be replaced (every class keeps at least one original); lower duplicates")
    q = np.zeros(n.size, np.float64)
    active = cap > 0
    left = float(n_copies)
    while left > 1e-9 and active.any():
        w = np.where(active, n.astype(np.float64) ** 2, 0.0)
        raw = q + left * w / w.sum()
        over = active & (raw >= cap)
        if not over.any():
            q = raw
            break
        q[over] = cap[over]
        active &= ~over
        left = n_copies - q.sum()
    out = np.minimum(np.floor(q + 1e-9).astype(np.int64), cap)
    rest = n_copies - int(out.sum())
    if rest:
        frac = np.where(out < cap, q - out, -1.0)
        order = np.lexsort((np.arange(n.size), -frac))
        out[order[:rest]] += 1
    return out


class NoisyTraining(NamedTuple):
    """A corrupted training split and what was done to it."""

    X: np.ndarray
    y: np.ndarray
    y_clean: np.ndarray
    flipped: np.ndarray        # bool: label differs from y_clean
    copied: np.ndarray         # bool: row replaced by a near-copy
    copy_source: np.ndarray    # int64: the copied row, -1 for an original
    confusion: np.ndarray | None
    texts: tuple | None


def _near_copies(X, src, rng, unit_norm: bool) -> np.ndarray:
    Xs = np.asarray(X[src], dtype=np.float64)
    spread = np.asarray(X, dtype=np.float64).std(axis=0)
    if not (spread > 0).any():
        spread = np.ones_like(spread)
    e = rng.standard_normal(Xs.shape) * spread
    en = np.linalg.norm(e, axis=1)
    xn = np.linalg.norm(Xs, axis=1)
    e *= (NEAR_COPY_NOISE * xn / np.where(en > 0, en, 1.0))[:, None]
    out = np.clip(Xs + e, np.asarray(X.min(axis=0), np.float64), np.asarray(X.max(axis=0), np.float64))
    if unit_norm:
        nn = np.linalg.norm(out, axis=1)
        out /= np.where(nn > 0, nn, 1.0)[:, None]
    return out.astype(X.dtype, copy=False)


def corrupt_training(X, y, *, label_noise=0.0, noise_model="symmetric", duplicates=0.0, random_state=0,
                     texts=None) -> NoisyTraining:
    """Near-duplicates, then label noise, on a training split ``(X, y)`` with
    integer labels (see the module docstring for the rules). ``X`` and ``y``
    are not modified."""
    label_noise, noise_model, duplicates = check_noise(label_noise, noise_model, duplicates)
    X = np.asarray(X)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0] or y.dtype.kind not in "iu":
        raise ValidationError(f"label noise needs integer labels, one per row of X ({X.shape[0]}); got y of "
                              f"shape {y.shape}, dtype {y.dtype}")
    n = y.shape[0]
    rng_dup, rng_flip = _streams(random_state)
    classes, yi = np.unique(y, return_inverse=True)
    C = classes.size
    counts = np.bincount(yi, minlength=C)
    copied = np.zeros(n, bool)
    source = np.full(n, -1, np.int64)
    X_out = X
    n_copies = int(round(duplicates * n))
    if n_copies:
        quotas = duplicate_quotas(counts, n_copies)
        for c in np.flatnonzero(quotas):
            rows = rng_dup.permutation(np.flatnonzero(yi == c))
            targets, originals = rows[:quotas[c]], rows[quotas[c]:]
            source[targets] = originals[rng_dup.integers(0, originals.size, size=targets.size)]
        copied = source >= 0
        tgt = np.flatnonzero(copied)
        norms = np.linalg.norm(np.asarray(X, np.float64), axis=1)
        unit = bool(np.all(np.abs(norms - 1.0) < 1e-3))
        X_out = X.copy()
        X_out[tgt] = _near_copies(X, source[tgt], rng_dup, unit)
        if texts is not None:
            texts = tuple(texts[source[i]] if source[i] >= 0 else t for i, t in enumerate(texts))
    confusion = confusion_map(np.asarray(X), yi, C) if noise_model == "confusable" else None
    flipped = np.zeros(n, bool)
    y_new = yi.copy()
    n_flip = int(round(label_noise * n))
    if n_flip:
        if C < 2:
            raise ValidationError(f"label_noise={label_noise} needs at least 2 classes; got {C}")
        if n_flip > n - C:
            raise ValidationError(
                f"label_noise={label_noise} asks to flip {n_flip} of {n} rows, but every class keeps at least one "
                f"correctly labelled row, so at most {n - C} can be flipped; lower label_noise")
        kept = counts.copy()  # rows per class still carrying their true label
        chosen = []
        for i in rng_flip.permutation(n):
            if kept[yi[i]] > 1:
                kept[yi[i]] -= 1
                chosen.append(i)
                if len(chosen) == n_flip:
                    break
        chosen = np.sort(np.asarray(chosen, dtype=np.int64))
        if noise_model == "symmetric":  # uniform over the C - 1 other classes
            step = rng_flip.integers(1, C, size=chosen.size)
            y_new[chosen] = (yi[chosen] + step) % C
        else:
            y_new[chosen] = confusion[yi[chosen]]
        flipped[chosen] = True
    y_clean = y.copy()
    y_out = classes[y_new].astype(y.dtype, copy=False)
    conf = None if confusion is None else np.where(confusion >= 0, classes[np.maximum(confusion, 0)], -1)
    log.debug("training split corrupted: %d copies, %d flipped labels (%s)", int(copied.sum()),
              int(flipped.sum()), noise_model)
    return NoisyTraining(X_out, y_out, y_clean, flipped, copied, source, conf, texts)


def is_noisy(ds) -> bool:
    """Whether ``ds`` has flipped labels or near-copies in its training split."""
    flipped, copied = getattr(ds, "flipped", None), getattr(ds, "copied", None)
    return bool((flipped is not None and flipped.any()) or (copied is not None and copied.any()))


def apply_noise(ds, *, label_noise=0.0, noise_model="symmetric", duplicates=0.0, random_state=0):
    """``ds`` (a :class:`~coreset.data.Dataset`) with its training split
    corrupted by :func:`corrupt_training`; the test split is untouched. The
    result records ``y_clean``, ``flipped``, ``copied``, ``copy_source`` and
    ``noise`` (the settings, the confusion map and the counts); the knobs are
    added to ``params`` when non-zero (so the generator's parameters still
    regenerate it). With both shares 0 the data is unchanged and the masks are
    all False."""
    label_noise, noise_model, duplicates = check_noise(label_noise, noise_model, duplicates)
    if is_noisy(ds):
        if label_noise or duplicates:
            raise ValidationError(
                f"dataset {ds.name!r} already carries label noise / duplicates (label_noise="
                f"{ds.noise.get('label_noise')}, duplicates={ds.noise.get('duplicates')}); corrupt a clean dataset")
        return ds
    r = corrupt_training(ds.X, ds.y, label_noise=label_noise, noise_model=noise_model, duplicates=duplicates,
                         random_state=random_state, texts=ds.texts)
    noise = dict(label_noise=label_noise, noise_model=noise_model, duplicates=duplicates,
                 n_flipped=int(r.flipped.sum()), n_copied=int(r.copied.sum()),
                 confusion=None if r.confusion is None else r.confusion.tolist(),
                 random_state=random_state if isinstance(random_state, numbers.Integral) else None)
    params = dict(ds.params)
    if label_noise or duplicates:
        params.update(label_noise=label_noise, noise_model=noise_model, duplicates=duplicates)
    return replace(ds, X=r.X, y=r.y, y_clean=r.y_clean, flipped=r.flipped, copied=r.copied,
                   copy_source=r.copy_source, texts=r.texts, noise=noise, params=params)


def noise_settings(label_noise=0.0, noise_model="symmetric", duplicates=0.0) -> dict:
    """The knobs as results record them: ``noise_model`` is None without label noise."""
    label_noise, noise_model, duplicates = check_noise(label_noise, noise_model, duplicates)
    return dict(label_noise=label_noise, noise_model=noise_model if label_noise else None, duplicates=duplicates)


def corrupt_arrays(data, X, y, classes, *, label_noise=0.0, noise_model="symmetric", duplicates=0.0):
    """``(X, y, y_clean, settings)`` for a training split ``X, y`` (labels
    0..C-1 indexing ``classes``) that came from ``data`` (a dataset name, a
    Dataset or arrays), as ``compare`` uses it: a clean input is corrupted,
    seeded by the Dataset's ``params["random_state"]`` (0 for a name or
    arrays, as ``load_dataset`` loads it), which gives exactly
    ``load_dataset(name, label_noise=..., ...)``'s training split; a Dataset
    that already carries noise is used as it is (and giving knobs too is an
    error), its recorded settings reported."""
    settings = noise_settings(label_noise, noise_model, duplicates)
    if is_noisy(data):
        if settings["label_noise"] or settings["duplicates"]:
            raise ValidationError(
                f"dataset {data.name!r} already carries label noise / duplicates; give label_noise / duplicates "
                "for a clean dataset only")
        rec = noise_settings(data.noise.get("label_noise", 0.0), data.noise.get("noise_model", "symmetric"),
                             data.noise.get("duplicates", 0.0)) if data.noise else settings
        y_clean = np.searchsorted(classes, data.y_clean).astype(np.int64)
        return X, y, y_clean, rec
    if not (settings["label_noise"] or settings["duplicates"]):
        return X, y, y, settings
    params = getattr(data, "params", None) or {}
    seed = params.get("random_state")
    seed = int(seed) if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) else 0
    r = corrupt_training(X, y, label_noise=label_noise, noise_model=noise_model, duplicates=duplicates,
                         random_state=seed)
    return r.X, r.y, r.y_clean, settings
