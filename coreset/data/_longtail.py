"""Seeded long-tail (Zipf) datasets: class c holds a share proportional to
1 / c ** s, so a few head classes hold most points and a long tail holds 1-5
points each."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import check_float, check_int, check_random_state

__all__ = ["Dataset", "zipf_class_sizes", "make_zipf", "load_digits_lt", "DATASETS", "load_dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Embeddings ``X`` (N x d), labels ``y`` (N,), and optionally a held-out
    balanced test split."""

    name: str
    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    description: str = ""
    params: dict = field(default_factory=dict)


def zipf_class_sizes(n_samples: int, n_classes: int, s: float = 1.1, *, min_size: int = 1) -> np.ndarray:
    """Class sizes summing to ``n_samples`` with size_c ∝ 1 / c ** s (c = 1..n_classes),
    each at least ``min_size``; largest-remainder rounding, ties to the head."""
    n_samples = check_int(n_samples, "n_samples", low=1)
    n_classes = check_int(n_classes, "n_classes", low=1, high=n_samples)
    s = check_float(s, "s", low=0.0)
    min_size = check_int(min_size, "min_size", low=0, high=n_samples // n_classes)
    p = 1.0 / np.arange(1, n_classes + 1, dtype=np.float64) ** s
    p /= p.sum()
    free = n_samples - min_size * n_classes
    raw = p * free
    sizes = np.floor(raw).astype(np.int64)
    rest = free - int(sizes.sum())
    order = np.lexsort((np.arange(n_classes), -(raw - sizes)))
    sizes[order[:rest]] += 1
    return sizes + min_size


def make_zipf(
    n_samples: int = 10_000,
    n_features: int = 64,
    n_classes: int = 500,
    *,
    s: float = 1.1,
    cluster_std: float = 1.0,
    center_scale: float = 3.0,
    n_modes: int = 3,
    n_test_per_class: int = 0,
    random_state=0,
    dtype=np.float32,
) -> Dataset:
    """Gaussian-mixture embeddings with Zipf class frequencies.

    Each class is a mixture of ``n_modes`` Gaussian blobs around a class centre
    (so a good subset must cover several modes per class). ``n_test_per_class``
    adds a balanced test split drawn from the same distribution.
    """
    rng = check_random_state(random_state)
    n_features = check_int(n_features, "n_features", low=1)
    n_modes = check_int(n_modes, "n_modes", low=1)
    n_test_per_class = check_int(n_test_per_class, "n_test_per_class", low=0)
    sizes = zipf_class_sizes(n_samples, n_classes, s)
    centers = rng.standard_normal((n_classes, n_features)) * center_scale
    modes = centers[:, None, :] + rng.standard_normal((n_classes, n_modes, n_features)) * (center_scale / 2)

    def draw(counts):
        y = np.repeat(np.arange(n_classes, dtype=np.int64), counts)
        m = rng.integers(0, n_modes, size=y.shape[0])
        X = modes[y, m] + rng.standard_normal((y.shape[0], n_features)) * cluster_std
        return X.astype(dtype, copy=False), y

    X, y = draw(sizes)
    perm = rng.permutation(X.shape[0])
    X, y = X[perm], y[perm]
    X_test = y_test = None
    if n_test_per_class:
        X_test, y_test = draw(np.full(n_classes, n_test_per_class))
    return Dataset(
        "zipf", X, y, X_test, y_test,
        description=f"{n_samples} x {n_features} Gaussian mixture, {n_classes} classes, class share ∝ 1/c^{s}",
        params=dict(n_samples=n_samples, n_features=n_features, n_classes=n_classes, s=s, random_state=None if isinstance(random_state, np.random.Generator) else random_state),
    )


def load_digits_lt(*, s: float = 1.5, n_test_per_class: int = 40, random_state=0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1797 x 64, no download) made long-tailed.

    ``n_test_per_class`` images of each digit are held out as a balanced test
    split; of the rest, the class ranked r (a seeded order of the 10 digits)
    keeps a share ∝ 1 / r ** s of the largest class's count.
    """
    from sklearn.datasets import load_digits

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
    return Dataset(
        "digits-lt", X_all[tr], y_all[tr], X_all[te], y_all[te],
        description=f"scikit-learn digits (8x8 images, 64 features), long-tailed with share ∝ 1/rank^{s}",
        params=dict(s=s, n_test_per_class=n_test_per_class, random_state=random_state),
    )


DATASETS = {
    "zipf": (lambda random_state=0: make_zipf(random_state=random_state),
             "10,000 x 64 Gaussian-mixture embeddings, 500 Zipf(1.1) classes (seeded)"),
    "digits-lt": (lambda random_state=0: load_digits_lt(random_state=random_state),
                  "scikit-learn digits made long-tailed (share ∝ 1/rank^1.5), 64 features"),
}


def load_dataset(name: str, *, random_state=0) -> Dataset:
    """Load an embedded dataset by name (see ``DATASETS``)."""
    from ..exceptions import UnknownNameError

    if name not in DATASETS:
        raise UnknownNameError("dataset", name, DATASETS)
    return DATASETS[name][0](random_state=random_state)
