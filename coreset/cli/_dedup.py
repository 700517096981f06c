"""``coreset dedup``: remove near duplicates, keep one representative per group."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from .._io import save_selection
from ._common import check_output, cli_errors, jsonable, logging_to_stderr, stderr_console, stdout_console
from ._options import DebugFlag, JsonFlag, QuietFlag
from ._progress import ProgressReporter

__all__ = ["dedup_command"]

_IN, _DEDUP, _OUT = "Input", "Near duplicates", "Output"


def dedup_command(
    input: Annotated[Path, typer.Argument(
        metavar="INPUT", show_default=False,
        help="Embeddings file: .npy (memory-mapped), .npz, .parquet or .pt, or a folder, glob or URI of .npy / "
             ".parquet shards (one input, in name order).")],
    column: Annotated[Optional[str], typer.Option(
        "--column", metavar="NAME", rich_help_panel=_IN,
        help="Array (.npz), dict key (.pt) or list column (.parquet) holding the embeddings; "
             "needed only when the file holds several.")] = None,
    labels: Annotated[Optional[Path], typer.Option(
        "--labels", metavar="PATH", rich_help_panel=_IN,
        help="Labels file, one per row of INPUT (.npy, .npz, .txt, .csv or .parquet); "
             "stored with the representatives.")] = None,
    labels_column: Annotated[Optional[str], typer.Option(
        "--labels-column", metavar="NAME", rich_help_panel=_IN,
        help="Labels array / key / column inside INPUT, or the column of the --labels file.")] = None,
    threshold: Annotated[float, typer.Option(
        "--threshold", "-t", metavar="T", rich_help_panel=_DEDUP,
        help="Similarity at or above which two points are near duplicates, in (0, 1].")] = 0.95,
    metric: Annotated[str, typer.Option(
        "--metric", metavar="NAME", rich_help_panel=_DEDUP,
        help="cosine, or euclidean (RBF similarity exp(-gamma * distance**2), gamma by the median heuristic).")
    ] = "cosine",
    n_neighbors: Annotated[int, typer.Option(
        "--n-neighbors", metavar="INT", rich_help_panel=_DEDUP,
        help="At most this many near-duplicate edges per point (its most similar).")] = 16,
    exact: Annotated[Optional[bool], typer.Option(
        "--exact/--approximate", rich_help_panel=_DEDUP, show_default=False,
        help="Compare every pair, or only pairs within k-means cells. Default: exact up to 20,000 distinct rows.")
    ] = None,
    n_probe: Annotated[int, typer.Option(
        "--n-probe", metavar="INT", rich_help_panel=_DEDUP,
        help="Approximate search: cells each point joins (more is slower, higher recall).")] = 3,
    device: Annotated[str, typer.Option(
        "--device", metavar="DEV", rich_help_panel=_DEDUP, help="auto, cpu, cuda or cuda:N.")] = "auto",
    seed: Annotated[int, typer.Option(
        "--seed", metavar="S", rich_help_panel=_DEDUP, help="Seed of the approximate search's k-means.")] = 0,
    recall_sample: Annotated[int, typer.Option(
        "--recall-sample", metavar="INT", min=0, rich_help_panel=_DEDUP,
        help="Approximate search: rows checked exactly against every row to estimate its recall (0: skip).")
    ] = 1000,
    output: Annotated[Path, typer.Option(
        "--output", "-o", metavar="PATH", rich_help_panel=_OUT, show_default=False,
        help="Index file to write (required): .npz, .parquet, .npy or .txt; weights are group sizes.")] = ...,
    format: Annotated[Optional[str], typer.Option(
        "--format", metavar="FMT", rich_help_panel=_OUT,
        help="Index-file format (npz, parquet, npy, txt) when the suffix does not say.")] = None,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
    debug: DebugFlag = False,
):
    """Remove near duplicates: keep one representative per group, weighted by the group's size.

    Groups are the connected components of the graph of pairs with similarity
    >= --threshold (exact copies always group). The summary (N, kept, removed,
    groups, seconds) goes to stdout; progress and logs go to stderr.
    """
    fmt = check_output(output, format, [("INPUT", input), ("the --labels file", labels)])
    err = stderr_console()
    with cli_errors(debug), logging_to_stderr(err, debug=debug, quiet=quiet):
        reporter = ProgressReporter(err, enabled=not quiet and err.is_terminal)
        t_wall = time.perf_counter()
        with reporter:
            with reporter.stage("read"):
                t0 = time.perf_counter()
                from ..data._readers import read_embeddings, read_labels

                from ..data._shards import input_spec, is_sharded

                shards = None
                if is_sharded(input_spec(input)):  # a folder, glob or URI of shards: one input, read whole
                    from ..data._shards import as_source
                    from ..exceptions import InputFileError

                    shards = as_source(input_spec(input), column)
                    if labels is None and labels_column is not None:
                        raise InputFileError(f"{str(input)!r}: --labels-column reads labels from an INPUT file; "
                                             "for shards give the labels as a file with --labels")
                    X, y = shards.read_range(0, shards.n_rows), None
                else:
                    X, y = read_embeddings(input, column=column,
                                           labels_column=labels_column if labels is None else None)
                if labels is not None:
                    y = read_labels(labels, column=labels_column)
                t_read = time.perf_counter() - t0
            from ..selectors import DedupSelector

            est = DedupSelector(threshold, metric=metric, n_neighbors=n_neighbors, exact=exact, n_probe=n_probe,
                                device=device, random_state=seed)
            est.fit(X, y, callback=reporter.callback if reporter.enabled else None)
            sel = est.selection_
            timings = {"read": t_read, **{k: v for k, v in sel.meta["timings"].items() if k != "total"}}
            recall = {"recall": 1.0, "exact": True} if sel.meta["graph"].get("exact") else None
            if recall is None and recall_sample > 0:
                with reporter.stage("recall check"):
                    t0 = time.perf_counter()
                    from ..selectors._dedup_recall import estimate_recall

                    recall = estimate_recall(X, est.labels_, threshold, metric=metric, gamma=sel.meta.get("gamma"),
                                             n_samples=recall_sample, random_state=seed)
                    timings["recall_check"] = time.perf_counter() - t0
            from ..data._fingerprint import fingerprint  # recorded by the selector; the same function on X

            sel = sel.with_meta(input=input.name, input_fingerprint=sel.meta.get("input_fingerprint") or fingerprint(X),
                                timings={**sel.meta["timings"], "read": t_read})
            if shards is not None and hasattr(shards, "shards_meta"):
                sel = sel.with_meta(shards=shards.shards_meta())
            with reporter.stage("write"):
                t0 = time.perf_counter()
                save_selection(sel, output, format=fmt, param="--output")
                timings["write"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - t_wall
    summary = _summary(sel, X, output, fmt, timings)
    summary["recall_estimate"] = recall
    if as_json:
        typer.echo(json.dumps(jsonable(summary)))
    else:
        _print_summary(summary)


def _summary(sel, X, output: Path, fmt: str, timings: dict) -> dict:
    m = sel.meta
    return {
        "input": m.get("input"), "input_fingerprint": m.get("input_fingerprint"),
        "n_samples": int(m["n_samples"]), "n_features": int(X.shape[1]),
        "kept": len(sel), "removed": int(m["n_removed"]), "groups": int(m["n_groups"]),
        "exact_duplicates": int(m["n_exact_duplicates"]), "largest_group": int(m["largest_group"]),
        "threshold": m["threshold"], "metric": m["metric"], "n_neighbors": m["n_neighbors"],
        "exact": bool(m["graph"].get("exact")), "backend": m.get("backend"), "device": m.get("device"),
        "weights_sum": float(sel.weights.sum()), "output": str(output), "format": fmt,
        "timings": timings, "seconds": timings["total"],
    }


def _print_summary(s: dict) -> None:
    from rich.table import Table
    from rich.text import Text

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    n = max(s["n_samples"], 1)
    t.add_row("input", Text(f"{s['input']} ({s['n_samples']} x {s['n_features']})"))
    t.add_row("kept", f"{s['kept']} of {s['n_samples']} ({100.0 * s['kept'] / n:.3g}%)")
    t.add_row("removed", f"{s['removed']} ({s['exact_duplicates']} exact copies)")
    t.add_row("groups", f"{s['groups']} with 2+ points (largest {s['largest_group']})")
    search = "exact" if s["exact"] else "approximate"
    t.add_row("threshold", f"{s['threshold']:g} ({s['metric']}, n_neighbors {s['n_neighbors']}, {search} search)")
    r = s.get("recall_estimate")
    if r is not None:
        t.add_row("recall", "1 (exact search)" if r.get("exact") else
                  f"{r['recall']:.4f} estimated: {r['found']} of {r['pairs']} near-duplicate pairs of "
                  f"{r['rows']} sampled rows found (exact check)")
    t.add_row("backend / device", f"{s['backend']} / {s['device']}")
    t.add_row("seconds", "  ".join(f"{k} {v:.3f}" for k, v in s["timings"].items()))
    t.add_row("wrote", Text(f"{s['output']} ({s['format']})"))
    stdout_console().print(t)
