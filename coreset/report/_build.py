"""``build_report``: check a selection against its data, compute what the page
shows, and hand it to the renderer (``_html``). See docs/report.md."""

from __future__ import annotations

import html as _html
import logging
import os
import time
from pathlib import Path

import numpy as np

from .._validation import check_int
from ..exceptions import BackendUnavailableError, ValidationError
from ..selection import Selection
from ._compute import PROJECTIONS, class_index, coverage, project, represented_rows, sample_rows
from ._knee import knee
from ._media import ImageSource, TextSource

__all__ = ["build_report", "Report"]

log = logging.getLogger(__name__)


class Report:
    """A rendered report: ``html`` (one self-contained page), ``info`` (the
    numbers it shows, JSON-ready). ``save(path)`` writes the page atomically;
    in Jupyter it displays inline (an iframe holding the page)."""

    def __init__(self, html: str, info: dict):
        self.html = html
        self.info = info

    def save(self, path) -> Path:
        """Write the page to ``path`` (atomically: nothing half-written)."""
        from .._atomic import atomic_write

        data = self.html.encode("utf-8")
        with atomic_write(path, param="path") as tmp:
            with open(tmp, "wb") as fh:
                fh.write(data)
        return Path(path)

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{_html.escape(self.html, quote=True)}" style="width:100%;height:900px;'
                'border:1px solid #ddd" sandbox="allow-scripts"></iframe>')

    def __repr__(self) -> str:
        i = self.info
        return (f"Report(rows={i['n_rows']}, picks={i['n_picks']}, map_rows={i['map_rows']}, "
                f"map_picks={i['map_picks']}, size={len(self.html.encode('utf-8'))} bytes)")


def _as_matrix(X, column):
    """(matrix, path or None): an array, a memory map, a tensor or a path."""
    if isinstance(X, (str, os.PathLike)):
        from ..data._readers import read_embeddings

        return read_embeddings(X, column=column)[0], X
    if type(X).__module__.startswith("torch") and hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    if not hasattr(X, "shape") or not hasattr(X, "dtype"):
        X = np.asarray(X)
    return X, None


def _check_inputs(sel, X, y, n_rows):
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValidationError(f"X must be a non-empty 2-D array of embeddings; got shape {tuple(X.shape)}")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise ValidationError(f"X must hold real numbers; got dtype {X.dtype}")
    if len(sel) == 0:
        raise ValidationError("the selection is empty: nothing to report")
    lo, hi = int(sel.indices.min()), int(sel.indices.max())
    if lo < 0 or hi >= n_rows:
        bad = lo if lo < 0 else hi
        raise ValidationError(
            f"the selection addresses row {bad} but X has {n_rows} rows (valid indices [0, {n_rows - 1}]); "
            "was the selection made on different data?")
    if y is not None and y.shape != (n_rows,):
        raise ValidationError(f"y must hold one label per row of X ({n_rows}); got shape {y.shape}")


def _fingerprint_note(sel, X, path) -> str:
    """Check ``sel.meta['input_fingerprint']`` against X (the rule of
    ``coreset.pipelines`` samplers); a selection that records none is reported
    unchecked."""
    if sel.meta.get("input_fingerprint") is None:
        log.warning("the selection records no input fingerprint: it is not checked against X")
        return "not recorded: the selection could not be checked against these embeddings"
    from ..pipelines._hooks import check_fingerprint

    check_fingerprint(sel, embeddings=path if path is not None else X)
    return f"{sel.meta['input_fingerprint'][:19]}… matches these embeddings"


def build_report(sel, X, *, y=None, images=None, text=None, text_column=None, column=None, title=None,
                 projection="pca", max_points=20_000, max_picks=100_000, coverage_rows=2_000, max_classes=50,
                 picks_per_class=8, rows_per_pick=5, random_state=0, source=None) -> Report:
    """A self-contained HTML report of ``sel`` on the embeddings ``X``
    (docs/report.md).

    Parameters
    ----------
    sel : Selection, or a path to an index file.
    X : (N, d) array, memory map, tensor or embeddings file (``column``: the
        array inside an .npz / .parquet / .pt holding several).
    y : (N,) labels, optional (else the selection's own labels colour the picks).
    images : a folder with one image file per row (sorted name order), a .npy
        of images, or an (N, H, W[, C]) array: thumbnails of picks.
    text, text_column : a .txt / .csv / .parquet file (its column) or a
        sequence of N strings: the sentences of picks.
    projection : "pca" (default), "umap" (needs umap-learn) or "auto".
    max_points : rows drawn on the map (a seeded uniform sample above it).
    max_picks : picks drawn on the map (a seeded uniform sample above it).
    coverage_rows : rows per class the coverage is measured on (a sample above).
    max_classes, picks_per_class, rows_per_pick : the examples section: that
        many classes (worst covered first), picks per class (largest weight
        first) and rows each pick stands for.
    random_state : int seed of every sample.
    """
    from ..selection import load_selection

    try:
        import plotly  # noqa: F401 - checked before any work
    except ImportError:
        raise BackendUnavailableError("coreset report draws with plotly: pip install plotly "
                                      "(or pip install 'coreset[report]')") from None
    timings = {}
    t0 = time.perf_counter()
    if isinstance(sel, (str, os.PathLike)):
        sel = load_selection(sel)
    if not isinstance(sel, Selection):
        raise ValidationError(f"sel must be a Selection or an index-file path; got {type(sel).__name__}")
    for name, value, low in (("max_points", max_points, 1), ("max_picks", max_picks, 1),
                             ("coverage_rows", coverage_rows, 1), ("max_classes", max_classes, 0),
                             ("picks_per_class", picks_per_class, 0), ("rows_per_pick", rows_per_pick, 0),
                             ("random_state", random_state, 0)):
        check_int(value, name, low=low)
    if projection not in PROJECTIONS:
        raise ValidationError(f"projection must be one of {', '.join(PROJECTIONS)}; got {projection!r}")
    if images is not None and text is not None:
        raise ValidationError("give images= or text=, not both")
    X, path = _as_matrix(X, column)
    n_rows = int(X.shape[0]) if getattr(X, "ndim", 0) >= 1 else 0
    if y is not None:
        y = np.asarray(y)
    _check_inputs(sel, X, y, n_rows)
    media = None
    if images is not None:
        media = ImageSource(images, param="images")
    elif text is not None:
        media = TextSource(text, text_column, param="text")
    if media is not None:
        media.check_rows(n_rows)
    fp_note = _fingerprint_note(sel, X, path)
    picks = sel.indices
    if y is None and sel.labels is not None:
        pick_labels = sel.labels
    elif y is not None:
        pick_labels = y[picks]
        differ = 0 if sel.labels is None else int(np.sum(sel.labels.astype(str) != pick_labels.astype(str)))
        if differ:
            log.warning("the labels given differ from the labels stored in the selection at %d of %d picks; "
                        "the page uses the labels given", differ, len(sel))
    else:
        pick_labels = None
    timings["check"] = time.perf_counter() - t0

    # ---- the map: a seeded sample of rows, the picks (all, or a sample)
    t0 = time.perf_counter()
    rng = np.random.default_rng(random_state)
    bg = sample_rows(n_rows, max_points, rng)
    pk_pos = sample_rows(len(sel), max_picks, rng)
    suspects = getattr(sel, "suspects", None)
    suspects = None if suspects is None else np.asarray(suspects, dtype=np.int64)
    if suspects is not None and suspects.size and (suspects.min() < 0 or suspects.max() >= n_rows):
        raise ValidationError(f"the selection's suspects address row {int(suspects.max())} but X has {n_rows} rows")
    sus_map = suspects[sample_rows(suspects.size, 5_000, rng)] if suspects is not None else np.empty(0, np.int64)
    (xy_bg, xy_pk, xy_sus), method = project(X, bg, [bg, picks[pk_pos], sus_map], projection, random_state)
    timings["map"] = time.perf_counter() - t0

    # ---- classes, gain curve, coverage
    t0 = time.perf_counter()
    kn = knee(sel, n_samples=n_rows)
    classes = class_rows = None
    if y is not None:
        classes, class_rows = class_index(y)
    cov = coverage(X, y, picks, coverage_rows=coverage_rows, random_state=random_state)
    timings["coverage"] = time.perf_counter() - t0

    # ---- examples: each class's picks (worst covered classes first) and the rows they stand for
    t0 = time.perf_counter()
    examples = _examples(sel, cov, pick_labels, y, media, max_classes, picks_per_class, rows_per_pick)
    dups = _duplicate_groups(sel, cov, media, rows_per_pick)
    sus = _suspects(suspects, y, picks, media)
    timings["examples"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    meta = sel.meta
    ctx = {
        "title": title or f"coreset report: {meta.get('input') or source or 'selection'}",
        "n_rows": n_rows, "n_features": int(X.shape[1]), "n_picks": len(sel), "meta": meta,
        "source": source, "fingerprint": fp_note, "projection": method,
        "map": {"bg_rows": bg, "bg_xy": xy_bg, "bg_labels": None if y is None else y[bg],
                "pk_pos": pk_pos, "pk_rows": picks[pk_pos], "pk_xy": xy_pk, "pk_weights": sel.weights[pk_pos],
                "pk_labels": None if pick_labels is None else pick_labels[pk_pos],
                "sus_rows": sus_map, "sus_xy": xy_sus, "n_suspects": 0 if suspects is None else int(suspects.size)},
        "classes": _class_counts(classes, class_rows, pick_labels),
        "gains": sel.gains, "objective": sel.objective, "knee": kn,
        "coverage": cov, "examples": examples, "duplicates": dups, "suspects": sus,
        "media": None if media is None else ("images" if isinstance(media, ImageSource) else "text"),
        "coverage_rows": coverage_rows,
    }
    from ._html import render

    page = render(ctx)
    timings["render"] = time.perf_counter() - t0
    info = {
        "n_rows": n_rows, "n_picks": len(sel), "map_rows": int(bg.size), "map_picks": int(pk_pos.size),
        "map_suspects": int(sus_map.size), "projection": method, "knee": kn,
        "coverage": [dict(t, **{"class": _plain(t["class"])}) for t in cov.table],
        "coverage_overall": cov.overall, "coverage_sampled": cov.sampled,
        "n_classes": None if classes is None else int(classes.size),
        "size_bytes": len(page.encode("utf-8")), "timings": timings,
    }
    return Report(page, info)


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def _class_counts(classes, class_rows, pick_labels):
    """Per class (largest first): (class, rows, picks); None without labels."""
    if classes is None:
        if pick_labels is None:
            return None
        values, counts = np.unique(pick_labels, return_counts=True)
        order = np.lexsort((values, -counts))
        return [(_plain(values[i]), None, int(counts[i])) for i in order]
    values, counts = np.unique(pick_labels, return_counts=True)
    picked = dict(zip(values.tolist(), counts.tolist()))
    return [(_plain(c), int(r.size), int(picked.get(_plain(c), 0))) for c, r in zip(classes, class_rows)]


def _show(media, row):
    """What the page shows of a row: a thumbnail (data URI) or a sentence, or None."""
    if media is None:
        return None
    return media.thumbnail(int(row)) if isinstance(media, ImageSource) else media.text(int(row))


def _examples(sel, cov, pick_labels, y, media, max_classes, picks_per_class, rows_per_pick):
    """Classes (worst covered first, at most ``max_classes``), each with its
    picks of largest weight and the measured rows each stands for."""
    out = []
    if media is None or max_classes == 0 or picks_per_class == 0:
        return out
    for t in cov.table[:max_classes]:
        if pick_labels is None or y is None:
            pos = np.arange(len(sel))
        else:
            pos = np.flatnonzero(pick_labels == t["class"])
        pos = pos[np.lexsort((pos, -sel.weights[pos]))][:picks_per_class]
        cards, unpicked = [], []
        if pos.size == 0:  # no pick of its own: show some of its rows, the ones the selection misses
            miss = cov.rows[cov.best_pos == -1] if y is None else np.intersect1d(
                cov.rows[cov.best_pos == -1], np.flatnonzero(y == t["class"]))
            unpicked = [(int(r), _show(media, r)) for r in miss[:picks_per_class * 2]]
        for p in pos:
            row = int(sel.indices[p])
            rows, sims = represented_rows(cov, int(p), row, rows_per_pick)
            cards.append({"row": row, "weight": float(sel.weights[p]), "show": _show(media, row),
                          "members": [(int(r), float(s), _show(media, r)) for r, s in zip(rows, sims)]})
        out.append({"class": _plain(t["class"]), "n_rows": t["n_rows"], "n_picks": t["n_picks"],
                    "mean_similarity": t["mean_similarity"], "cards": cards, "unpicked": unpicked})
    return out


def _duplicate_groups(sel, cov, media, rows_per_pick, n_groups=12):
    """Near-duplicate groups of a dedup selection (picks of weight >= 2 are
    group representatives): its meta counts and the largest groups, each
    with the measured rows at or above the threshold nearest to it."""
    meta = sel.meta
    if meta.get("method") != "dedup" or "n_groups" not in meta:
        return None
    threshold = meta.get("threshold")
    reps = np.flatnonzero(sel.weights >= 2)
    reps = reps[np.lexsort((reps, -sel.weights[reps]))][:n_groups]
    groups = []
    for p in reps:
        row = int(sel.indices[p])
        rows, sims = represented_rows(cov, int(p), row, rows_per_pick,
                                      min_similarity=threshold if isinstance(threshold, float) else None)
        groups.append({"row": row, "size": int(round(sel.weights[p])), "show": _show(media, row),
                       "members": [(int(r), float(s), _show(media, r)) for r, s in zip(rows, sims)]})
    return {"n_groups": meta.get("n_groups"), "n_removed": meta.get("n_removed"),
            "largest_group": meta.get("largest_group"), "threshold": threshold, "groups": groups}


def _suspects(suspects, y, picks, media, n_show=40):
    """The selection's suspected mislabeled rows: count, how many were picked,
    and the first ``n_show`` with their label and what the page shows."""
    if suspects is None:
        return None
    picked = int(np.isin(suspects, picks).sum())
    shown = [(int(r), None if y is None else _plain(y[r]), _show(media, r)) for r in suspects[:n_show]]
    return {"n": int(suspects.size), "picked": picked, "shown": shown}

