"""Private helpers of the training pipelines: index and selection checks
shared by the samplers; the lazy torch import and the forward hooks on a
model's last linear layer (the gradient proxies of adaptive reselection) live
in :mod:`coreset.probes._torch`, below the selectors, and are re-exported here."""

from __future__ import annotations

import os

import numpy as np

from ..exceptions import ValidationError
from ..probes._torch import LastLayerCapture, find_last_linear, require_torch

__all__ = ["require_torch", "as_index_array", "check_within", "check_fingerprint", "LastLayerCapture",
           "find_last_linear"]


def as_index_array(selection, *, name: str = "selection"):
    """``(indices int64, weights float64 or None, Selection or None)`` from a
    :class:`~coreset.Selection`, a path to an index file, an integer ``n``
    (meaning ``range(n)``) or an array of indices."""
    from ..selection import Selection

    if isinstance(selection, (str, os.PathLike)):
        selection = Selection.load(selection)
    if isinstance(selection, Selection):
        return selection.indices, selection.weights, selection
    if isinstance(selection, (int, np.integer)) and not isinstance(selection, bool):
        if selection < 1:
            raise ValidationError(f"{name} as an integer n means range(n) and must be >= 1; got {selection}")
        return np.arange(int(selection), dtype=np.int64), None, None
    if type(selection).__module__.startswith("torch") and hasattr(selection, "detach"):
        selection = selection.detach().cpu().numpy()
    arr = np.asarray(selection)
    if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind not in "iu":
        raise ValidationError(
            f"{name} must be a Selection, an index-file path, an integer n or a non-empty 1-D integer array; "
            f"got {type(selection).__name__} with shape {getattr(arr, 'shape', None)} and dtype {arr.dtype}"
        )
    if arr.min() < 0:
        raise ValidationError(f"{name} indices must be >= 0; got {int(arr.min())}")
    if np.unique(arr).size != arr.size:
        raise ValidationError(f"{name} indices must be distinct; got {arr.size - np.unique(arr).size} repeats")
    return arr.astype(np.int64), None, None


def check_within(indices: np.ndarray, n: int, *, name: str = "dataset") -> None:
    """Every index must address a row of a dataset of length ``n``."""
    top = int(indices.max())
    if top >= n:
        raise ValidationError(
            f"the selection addresses row {top} but the {name} has {n} rows (valid indices [0, {n - 1}]); "
            "was the selection made on different data?"
        )


def check_fingerprint(sel, *, embeddings=None, fingerprint=None) -> None:
    """Check that ``sel`` was made from ``embeddings`` (an array, tensor or
    path: its :func:`coreset.data.input_fingerprint` is computed) or from the
    data whose ``fingerprint`` (``"sha256:<64 hex>"``) is given: both are
    compared with ``sel.meta['input_fingerprint']``.

    Refused with a :class:`ValidationError`: a malformed ``fingerprint``; a
    selection that records no fingerprint, or one in a form that cannot be
    compared (it cannot be verified: drop ``embeddings=`` / ``fingerprint=`` to
    use it unchecked); a mismatch. A selection from an index file written
    before the current fingerprint definition also passes when ``embeddings``
    match the definition it was written with (docs/index-files.md)."""
    if embeddings is None and fingerprint is None:
        return
    from ..data._fingerprint import fingerprint as data_fingerprint
    from ..data._fingerprint import is_fingerprint, legacy_fingerprints

    if fingerprint is not None and not is_fingerprint(fingerprint):
        shown = repr(fingerprint) if isinstance(fingerprint, str) else f"a {type(fingerprint).__name__}"
        raise ValidationError(
            f"fingerprint must be 'sha256:' followed by 64 lowercase hex digits (what "
            f"coreset.data.input_fingerprint(embeddings) returns); got {shown[:120]}")
    if sel is None:
        raise ValidationError("embeddings= / fingerprint= check a Selection's input fingerprint; "
                              "selection= is not a Selection (bare indices carry no fingerprint)")
    recorded = sel.meta.get("input_fingerprint")
    if recorded is None:
        raise ValidationError(
            "the selection records no input fingerprint (meta['input_fingerprint'] is missing: made from an "
            "iterator of chunks, by partial_fit, built by hand, or saved by an older coreset), so it cannot be "
            "checked against embeddings= / fingerprint=; re-run the selection, or drop embeddings= / "
            "fingerprint= to use it unchecked")
    if not is_fingerprint(recorded):
        raise ValidationError(
            f"the selection's meta['input_fingerprint'] is {str(recorded)[:120]!r}, not 'sha256:<64 hex>' (an "
            "index file from an older select_stream, or an edited one), so it cannot be checked against "
            "embeddings= / fingerprint=; re-run the selection, or drop embeddings= / fingerprint= to use it "
            "unchecked")
    given = [("fingerprint", fingerprint)] if fingerprint is not None else []
    if embeddings is not None:
        given.append(("embeddings", data_fingerprint(embeddings)))
    for name, value in given:
        if value == recorded:
            continue
        if name == "embeddings" and recorded in legacy_fingerprints(embeddings):
            continue  # an index file written before coreset-fingerprint/2, made from these embeddings
        raise ValidationError(
            f"the selection was made from different data: its input_fingerprint is {recorded!r} but "
            f"{'the embeddings given have' if name == 'embeddings' else 'fingerprint= is'} {value!r}; re-run the "
            "selection on these embeddings")
