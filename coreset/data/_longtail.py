"""Seeded long-tail (Zipf) datasets: class c holds a share proportional to
1 / c ** s, so a few head classes hold most points and a long tail holds 1-5
points each."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .._validation import check_float, check_int, check_random_state
from ._base import Dataset, DatasetInfo, zipf_class_sizes
from ._noise import apply_noise, check_noise

__all__ = [
    "Dataset", "DatasetInfo", "zipf_class_sizes", "make_zipf", "load_digits_lt", "ZIPF_HARD", "DATASETS",
    "load_dataset",
]


def make_zipf(
    n_samples: int = 10_000,
    n_features: int = 64,
    n_classes: int = 500,
    *,
    s: float = 1.1,
    cluster_std: float = 1.0,
    center_scale: float = 3.0,
    n_modes: int = 3,
    class_sep: float = 1.0,
    mode_spread: float = 0.5,
    n_test_per_class: int = 0,
    random_state=0,
    test_random_state=None,
    dtype=np.float32,
    label_noise: float = 0.0,
    noise_model: str = "symmetric",
    duplicates: float = 0.0,
) -> Dataset:
    """Gaussian-mixture embeddings with Zipf class frequencies.

    Each class is a mixture of ``n_modes`` Gaussian blobs around a class centre
    (so a good subset must cover several modes per class). ``n_test_per_class``
    adds a balanced test split drawn from the same distribution: by default
    from the generator's stream after the training data; with
    ``test_random_state`` from a generator of its own, so that another value
    gives an independent split of the same classes (a validation split: the
    training data and the class structure stay those of ``random_state``).

    Difficulty knobs (the defaults give the original, linearly separable data):
    class centres are ``N(0, (center_scale * class_sep)^2)``, each class's modes
    sit ``N(0, (center_scale * mode_spread)^2)`` around its centre, and points
    ``N(0, cluster_std^2)`` around their mode. Lower ``class_sep`` or higher
    ``cluster_std`` -> more class overlap; higher ``mode_spread`` with more
    ``n_modes`` -> classes that are unions of scattered blobs, which a linear
    probe cannot carve out. For a fixed ``random_state`` the same underlying
    draws are scaled, so accuracy falls monotonically as overlap grows.

    ``label_noise`` / ``noise_model`` / ``duplicates`` corrupt the training
    split after it is drawn (the clean draws are unchanged): see
    ``coreset.data._noise`` and docs/datasets.md.
    """
    check_noise(label_noise, noise_model, duplicates)
    rng = check_random_state(random_state)
    n_features = check_int(n_features, "n_features", low=1)
    n_modes = check_int(n_modes, "n_modes", low=1)
    n_test_per_class = check_int(n_test_per_class, "n_test_per_class", low=0)
    class_sep = check_float(class_sep, "class_sep", low=0.0)
    mode_spread = check_float(mode_spread, "mode_spread", low=0.0)
    cluster_std = check_float(cluster_std, "cluster_std", low=0.0)
    sizes = zipf_class_sizes(n_samples, n_classes, s)
    centers = rng.standard_normal((n_classes, n_features)) * (center_scale * class_sep)
    modes = centers[:, None, :] + rng.standard_normal((n_classes, n_modes, n_features)) * (center_scale * mode_spread)

    def draw(counts, rng):
        y = np.repeat(np.arange(n_classes, dtype=np.int64), counts)
        m = rng.integers(0, n_modes, size=y.shape[0])
        X = modes[y, m] + rng.standard_normal((y.shape[0], n_features)) * cluster_std
        return X.astype(dtype, copy=False), y

    X, y = draw(sizes, rng)
    perm = rng.permutation(X.shape[0])
    X, y = X[perm], y[perm]
    X_test = y_test = None
    if n_test_per_class:
        test_rng = rng if test_random_state is None else check_random_state(test_random_state)
        X_test, y_test = draw(np.full(n_classes, n_test_per_class), test_rng)
    ds = Dataset(
        "zipf", X, y, X_test, y_test,
        description=f"{n_samples} x {n_features} Gaussian mixture, {n_classes} classes, class share ∝ 1/c^{s}",
        params=dict(n_samples=n_samples, n_features=n_features, n_classes=n_classes, s=s, n_modes=n_modes,
                    class_sep=class_sep, mode_spread=mode_spread, cluster_std=cluster_std, center_scale=center_scale,
                    n_test_per_class=n_test_per_class,
                    random_state=None if isinstance(random_state, np.random.Generator) else random_state,
                    test_random_state=None if isinstance(test_random_state, np.random.Generator)
                    else test_random_state),
    )
    return apply_noise(ds, label_noise=label_noise, noise_model=noise_model, duplicates=duplicates,
                       random_state=random_state)


def load_digits_lt(*, s: float = 1.5, n_test_per_class: int = 40, random_state=0, label_noise: float = 0.0,
                   noise_model: str = "symmetric", duplicates: float = 0.0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 x 64, no download) made long-tailed.

    ``n_test_per_class`` images of each digit are held out as a balanced test
    split; of the rest, the class ranked r (a seeded order of the 10 digits)
    keeps a share ∝ 1 / r ** s of the largest class's count. ``label_noise`` /
    ``noise_model`` / ``duplicates``: see ``coreset.data._noise`` (copies are
    made in pixel space and stay in [0, 1]).
    """
    from sklearn.datasets import load_digits

    check_noise(label_noise, noise_model, duplicates)
    rng = check_random_state(random_state)
    s = check_float(s, "s", low=0.0)
    digits = load_digits()
    X_all = (digits.data / 16.0).astype(np.float32)
    y_all = digits.target.astype(np.int64)
    order = rng.permutation(10)
    train_idx, test_idx = [], []
    for rank, c in enumerate(order, start=1):
        idx = rng.permutation(np.flatnonzero(y_all == c))
        test_idx.append(idx[:n_test_per_class])
        pool = idx[n_test_per_class:]
        keep = max(1, int(round(pool.shape[0] / rank**s)))
        train_idx.append(pool[:keep])
    tr = rng.permutation(np.concatenate(train_idx))
    te = np.concatenate(test_idx)
    ds = Dataset(
        "digits-lt", X_all[tr], y_all[tr], X_all[te], y_all[te],
        description=f"scikit-learn digits (8x8 images, 64 features), long-tailed with share ∝ 1/rank^{s}",
        params=dict(s=s, n_test_per_class=n_test_per_class, random_state=random_state),
    )
    return apply_noise(ds, label_noise=label_noise, noise_model=noise_model, duplicates=duplicates,
                       random_state=random_state)


def _zipf(random_state=0, **noise):
    # the test split is drawn after the training data: the training data is make_zipf()'s, unchanged
    return make_zipf(random_state=random_state, n_test_per_class=10, **noise)


def _zipf_hard(random_state=0, test_random_state=None, **noise):
    d = make_zipf(**ZIPF_HARD, random_state=random_state, test_random_state=test_random_state, **noise)
    return replace(d, name="zipf_hard")


def _digits_lt(random_state=0, **noise):
    return load_digits_lt(random_state=random_state, **noise)


def _mnist1d_lt(random_state=0, **noise):
    from ._mnist1d import load_mnist1d_lt

    return load_mnist1d_lt(random_state=random_state, **noise)


def _text_lt(random_state=0, **noise):
    from ._text import load_text_lt

    return load_text_lt(random_state=random_state, **noise)


#: the registered hard Gaussian-mixture setting (see docs/datasets.md for its
#: measured logistic-regression balanced accuracy)
ZIPF_HARD = dict(n_samples=20_000, n_features=64, n_classes=100, s=1.1, n_modes=4, class_sep=0.12,
                 mode_spread=0.3, n_test_per_class=50)


def _sizes(n, c, s):
    z = zipf_class_sizes(n, c, s)
    return float(z.max() / z.min())


DATASETS: dict[str, DatasetInfo] = {
    "zipf": DatasetInfo(_zipf, "Gaussian mixture, 3 modes per class, Zipf(1.1); linearly separable (easy)",
                        10_000, 5_000, 500, 64, _sizes(10_000, 500, 1.1)),
    "zipf_hard": DatasetInfo(_zipf_hard, "Gaussian mixture, 4 scattered modes per class, overlapping; Zipf(1.1)",
                             20_000, 5_000, 100, 64, _sizes(20_000, 100, 1.1)),
    "digits-lt": DatasetInfo(_digits_lt,
                             "scikit-learn 8x8 digits, long-tailed (share ∝ 1/rank^1.5)",
                             280, 400, 10, 64, 141 / 4),  # seed 0 (counts vary with the seed)
    "mnist1d_lt": DatasetInfo(_mnist1d_lt, "MNIST-1D signals (Greydanus 2020), generated, Zipf(2.0)",
                              6_000, 2_000, 10, 40, _sizes(6_000, 10, 2.0)),
    "text_lt": DatasetInfo(_text_lt, "generated topic sentences, MiniLM embeddings (cached), Zipf(1.5)",
                           4_000, 700, 14, 384, _sizes(4_000, 14, 1.5)),
}


def load_dataset(name: str, *, random_state=0, label_noise: float = 0.0, noise_model: str = "symmetric",
                 duplicates: float = 0.0) -> Dataset:
    """Load a registered dataset by name (see ``DATASETS``), its training
    split optionally corrupted by ``label_noise`` (share of labels flipped,
    ``noise_model`` "symmetric" or "confusable") and ``duplicates`` (share of
    rows replaced by near-copies), seeded by ``random_state``; the test split
    stays clean (``coreset.data._noise``, docs/datasets.md)."""
    from ..exceptions import UnknownNameError

    if name not in DATASETS:
        raise UnknownNameError("dataset", name, DATASETS)
    check_noise(label_noise, noise_model, duplicates)  # before any (slow) loading
    return DATASETS[name].loader(random_state=random_state, label_noise=label_noise, noise_model=noise_model,
                                 duplicates=duplicates)
