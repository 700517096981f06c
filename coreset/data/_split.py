"""A validation split carved from a dataset's *training* rows, to choose
settings on (epochs, quotas, thresholds) without ever looking at the test split.

Stratified and seeded: class c gives ``round(share * n_c)`` of its rows (half
up), at most ``n_c - 1`` (every class keeps a training row; a class of one row
gives none, so it is absent from the validation split and its accuracy there
is NaN, which ``compare``'s metrics ignore). The rows are the training split's
rows as they are: with label noise or near-duplicates, the validation split
carries the same noise (its labels are the observed ones), and a copy may sit
on the other side of the split from its source, as in real scraped data.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .._validation import check_float, check_random_state
from ..exceptions import ValidationError

__all__ = ["validation_indices", "train_validation_split"]


def validation_indices(y, share: float = 0.2, *, random_state=0) -> tuple[np.ndarray, np.ndarray]:
    """``(fit_rows, validation_rows)``: sorted int64 row numbers into ``y``
    (stratified by class, seeded; see the module docstring)."""
    share = check_float(share, "share", low=0.0, high=1.0, low_open=True, high_open=True)
    rng = check_random_state(random_state)
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValidationError(f"y must be a non-empty 1-D array of labels; got shape {y.shape}")
    classes, yi = np.unique(y, return_inverse=True)
    val = []
    for c in range(classes.size):
        rows = np.flatnonzero(yi == c)
        k = min(rows.size - 1, int(np.floor(share * rows.size + 0.5)))
        if k > 0:
            val.append(rng.permutation(rows)[:k])
    val = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    mask = np.zeros(y.size, bool)
    mask[val] = True
    return np.flatnonzero(~mask).astype(np.int64), val.astype(np.int64)


def train_validation_split(ds, share: float = 0.2, *, random_state=0, clean_labels: bool = False):
    """A dataset to tune on: its training split is ``ds``'s training rows
    less a stratified, seeded ``share`` of them, and its held-out split
    (``X_test`` / ``y_test``) is that share, so ``compare(train_validation_split(ds))``
    scores every method on validation rows, never on ``ds``'s test split.

    Named ``"<name>-val"``; ``params["validation"]`` records the share, the
    seed and the row numbers' counts. The noise records (``y_clean``,
    ``flipped``, ``copied``, ``copy_source``) follow the kept training rows;
    ``copy_source`` is renumbered, and is -1 for a copy whose source went to
    the validation split (``copied`` stays True). ``clean_labels=True`` scores
    against the validation rows' true labels (``y_clean``) instead of the
    observed, possibly flipped, ones: an oracle for studies, not for real data.
    """
    if not (hasattr(ds, "X") and hasattr(ds, "y")):
        raise ValidationError(f"ds must be a coreset.data.Dataset; got {type(ds).__name__}")
    fit, val = validation_indices(ds.y, share, random_state=random_state)
    if val.size == 0:
        raise ValidationError(f"share={share} of {ds.y.size} training rows leaves an empty validation split; "
                              "raise share")
    y_val = ds.y[val]
    if clean_labels and ds.y_clean is not None:
        y_val = ds.y_clean[val]

    def take(a):
        return None if a is None else a[fit]

    source = None
    if ds.copy_source is not None:
        new = np.full(ds.y.size, -1, np.int64)
        new[fit] = np.arange(fit.size)
        src = ds.copy_source[fit]
        source = np.where(src >= 0, new[np.maximum(src, 0)], -1)
    params = dict(ds.params)
    params["validation"] = dict(share=float(share), n_fit=int(fit.size), n_validation=int(val.size),
                                clean_labels=bool(clean_labels),
                                random_state=random_state if isinstance(random_state, (int, np.integer)) else None)
    texts = None if ds.texts is None else tuple(ds.texts[i] for i in fit)
    texts_val = None if ds.texts is None else tuple(ds.texts[i] for i in val)
    return replace(ds, name=f"{ds.name}-val", X=ds.X[fit], y=ds.y[fit], X_test=ds.X[val], y_test=y_val,
                   texts=texts, texts_test=texts_val, y_clean=take(ds.y_clean), flipped=take(ds.flipped),
                   copied=take(ds.copied), copy_source=source, params=params,
                   description=f"{ds.description} (validation split: {share:g} of the training rows)")
