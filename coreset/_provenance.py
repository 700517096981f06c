"""``Selection.meta``, assembled in one place for every selector: what was
asked (the selector's own description), what ran (graph form, backend,
device), on what (sizes, classes), with which seed and library version, and
how long each stage took, and the input's fingerprint
(:func:`coreset.data.input_fingerprint`, sampled hashing: a few ms)."""

from __future__ import annotations

import numpy as np

from ._version import __version__

__all__ = ["build_meta"]

#: keys every selection's meta has (None where they do not apply)
COMMON_KEYS = ("method", "objective_name", "optimizer", "metric", "n_neighbors", "graph", "backend", "device",
               "random_state", "epsilon", "gamma", "n_samples", "n_select", "class_budget", "min_per_class", "alpha",
               "n_classes", "objective_device", "library_version", "input_fingerprint", "timings")


def plain(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return repr(v)  # configured objects: their repr is their provenance


def build_meta(selector, group, result, *, random_state, timings, source=None) -> dict:
    """The meta of a selection. ``source``: the input as the caller gave it
    (array, tensor, path, row source; with ``metric="precomputed"`` the
    similarity matrix), whose fingerprint is recorded; None records none
    (``partial_fit``: the rows arrive in chunks and are not kept)."""
    meta = dict.fromkeys(COMMON_KEYS)
    meta.update(selector._describe())
    meta.update(
        graph=dict(group.info),
        random_state=random_state if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool)
        else None,
        n_samples=group.n,
        n_select=int(result.indices.size),
        n_classes=int(np.unique(group.y).size) if group.y is not None else None,
        library_version=__version__,
        timings=dict(timings),
    )
    if source is not None:
        from .data._fingerprint import fingerprint

        meta["input_fingerprint"] = fingerprint(source)
    if group.initial is not None and group.initial.size:
        meta["n_initial"] = int(group.initial.size)
    return plain(meta)
