"""The result of every selector: a :class:`Selection`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from os import PathLike
from typing import Any

import numpy as np

__all__ = ["Selection", "load_selection", "read_index_file"]


@dataclass(frozen=True, eq=False)
class Selection:
    """A weighted subset of a dataset.

    Attributes
    ----------
    indices : int64 array (n_select,)
        Row numbers into the input, in selection order.
    weights : float64 array (n_select,)
        How many input points each selected point stands for (its facility
        location cluster size, as in CRAIG). They sum to N (per class: to the
        class size when class budgets are used).
    gains : float64 array (n_select,)
        Marginal objective gain at each step (NaN for selectors with no objective).
    objective : float
        Objective value of the whole selection (NaN when not defined).
    labels : array (n_select,) or None
        Labels of the selected points when labels were given.
    meta : dict
        JSON-serialisable metadata: method, parameters, seed, backend, device,
        library version, input fingerprint, timings.
    suspects : int64 array or None
        Rows the label filter judged probably mislabeled (sorted): kept out of
        the picks, still counted in the coverage and in the weights; None when
        no filter ran (see ``docs/label-noise.md``).
    """

    indices: np.ndarray
    weights: np.ndarray
    gains: np.ndarray
    objective: float = float("nan")
    labels: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    suspects: np.ndarray | None = None

    def __post_init__(self):
        idx = np.ascontiguousarray(self.indices, dtype=np.int64)
        w = np.ascontiguousarray(self.weights, dtype=np.float64)
        g = np.ascontiguousarray(self.gains, dtype=np.float64)
        if idx.ndim != 1 or w.shape != idx.shape or g.shape != idx.shape:
            raise ValueError(
                f"indices, weights and gains must be 1-D of one length; got {idx.shape}, {w.shape}, {g.shape}"
            )
        object.__setattr__(self, "indices", idx)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "gains", g)
        object.__setattr__(self, "objective", float(self.objective))
        if self.labels is not None:
            lab = np.asarray(self.labels)
            if lab.shape != idx.shape:
                raise ValueError(f"labels must have shape {idx.shape}; got {lab.shape}")
            object.__setattr__(self, "labels", lab)
        object.__setattr__(self, "meta", dict(self.meta))
        if self.suspects is not None:
            sus = np.asarray(self.suspects)
            if sus.ndim != 1 or (sus.size and sus.dtype.kind not in "iu"):
                raise ValueError(f"suspects must be a 1-D array of row indices; got dtype {sus.dtype}, "
                                 f"shape {sus.shape}")
            if sus.size and sus.min() < 0:
                raise ValueError(f"suspects must be >= 0; found {int(sus.min())}")
            object.__setattr__(self, "suspects", np.ascontiguousarray(sus, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @property
    def n_select(self) -> int:
        return len(self)

    def with_meta(self, **updates) -> "Selection":
        """A copy with ``meta`` updated."""
        return replace(self, meta={**self.meta, **updates})

    def equals(self, other: "Selection") -> bool:
        """Exact equality of every field (arrays bit for bit, NaN equal to NaN)."""
        if not isinstance(other, Selection):
            return False
        same = (
            np.array_equal(self.indices, other.indices)
            and np.array_equal(self.weights, other.weights, equal_nan=True)
            and np.array_equal(self.gains, other.gains, equal_nan=True)
            and (self.objective == other.objective or (np.isnan(self.objective) and np.isnan(other.objective)))
            and self.meta == other.meta
        )
        if not same:
            return False
        if (self.labels is None) != (other.labels is None) or (self.suspects is None) != (other.suspects is None):
            return False
        if self.suspects is not None and not np.array_equal(self.suspects, other.suspects):
            return False
        return self.labels is None or np.array_equal(self.labels, other.labels)

    def save(self, path: str | PathLike, *, format: str | None = None) -> None:
        """Write an index file atomically; the format follows the suffix
        (``.npz``, ``.parquet``, ``.npy``, ``.txt``) unless ``format`` is given.
        See ``docs/index-files.md``."""
        from ._io import save_selection

        save_selection(self, path, format=format)

    @classmethod
    def load(cls, path: str | PathLike, *, format: str | None = None) -> "Selection":
        """Read an index file written by :meth:`save` (``allow_pickle=False``)."""
        return read_index_file(path, format, make=cls)[0]

    def knee(self, n_samples: int | None = None) -> dict:
        """Where the gain curve bends: ``{"n_picks", "fraction", ...}``, the
        first ``n_picks`` rows being the budget it suggests (Kneedle on the
        cumulative objective; ``coreset.report.knee``, docs/report.md)."""
        from ._knee import knee

        return knee(self, n_samples=n_samples)

    def report(self, X, **params):
        """A self-contained HTML report of this selection on the embeddings
        ``X`` it was made from: ``.save(path)`` writes it; Jupyter shows it
        inline. ``params``: ``y``, ``images``, ``text``, ... of
        :func:`coreset.report.build_report` (docs/report.md)."""
        from .report import build_report

        return build_report(self, X, **params)

    def __repr__(self) -> str:
        return (
            f"Selection(n_select={len(self)}, objective={self.objective:.6g}, "
            f"weights_sum={self.weights.sum():.6g}, method={self.meta.get('method')!r})"
        )


def load_selection(path: str | PathLike, format: str | None = None) -> Selection:
    """Read an index file written by :meth:`Selection.save` (or
    ``coreset._io.save_selection``).

    ``.npy`` / ``.txt`` hold bare indices: the result has those indices,
    weights of 1.0, NaN gains and objective, no labels and empty ``meta``.
    """
    return read_index_file(path, format)[0]


def read_index_file(path: str | PathLike, format: str | None = None, *, make=Selection):
    """Like :func:`load_selection`, also returning what the file itself says
    (an ``IndexFileInfo``: format, ``format_version``, size on disk). The file
    format lives in ``coreset._io``, below this module: it builds ``make``."""
    from ._io import read_index_file as read

    return read(path, format, make=make)
