"""What every dataset generator shares: the :class:`Dataset` it returns, the
:class:`DatasetInfo` a registered dataset is listed with, and the Zipf class
sizes. It sits below the generators (``_longtail``, ``_mnist1d``, ``_text``),
which import it and never each other at module level."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from .._validation import check_float, check_int

__all__ = ["Dataset", "DatasetInfo", "zipf_class_sizes"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled long-tailed dataset.

    Attributes
    ----------
    name : registry name (``coreset datasets``).
    X : (N, d) float32 training embeddings / features.
    y : (N,) int64 training labels 0..C-1; class sizes are long-tailed.
    X_test, y_test : held-out split with the same number of points per class
        (balanced, so plain accuracy on it is balanced accuracy), or ``None``.
    description : one line for listings.
    params : the generator's parameters (enough to regenerate it).
    texts, texts_test : the raw sentences behind ``X`` / ``X_test`` for text
        datasets, else ``None``.
    class_names : a name per label (topic, digit) when there is one, else ``None``.
    y_clean : (N,) the true training labels when the loader corrupted them
        (``label_noise`` / ``duplicates``, see ``coreset.data._noise``), else ``None``.
    flipped, copied : (N,) bool masks: label flipped (``y != y_clean``); row
        replaced by a near-copy of another row of its class; ``None`` as ``y_clean``.
    copy_source : (N,) int64 row each copy was made from, -1 for an original.
    noise : the label-noise / duplicate settings, the confusion map and the
        counts (empty for a dataset built by hand).
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    description: str = ""
    params: dict = field(default_factory=dict)
    texts: tuple[str, ...] | None = None
    texts_test: tuple[str, ...] | None = None
    class_names: tuple[str, ...] | None = None
    y_clean: np.ndarray | None = None
    flipped: np.ndarray | None = None
    copied: np.ndarray | None = None
    copy_source: np.ndarray | None = None
    noise: dict = field(default_factory=dict)


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


class DatasetInfo(NamedTuple):
    """A registered dataset: ``loader(random_state=0, *, label_noise=0.0,
    noise_model="symmetric", duplicates=0.0) -> Dataset`` and what
    ``coreset datasets`` lists without loading it (checked by the tests)."""

    loader: Callable[..., Dataset]
    description: str
    n_train: int
    n_test: int
    n_classes: int
    n_features: int
    imbalance: float  # largest / smallest training class
