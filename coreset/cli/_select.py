"""``coreset select``: embeddings on disk (or an embedded dataset) in, an index file out."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from .._registry import BACKENDS, CLASS_BUDGETS, METHODS, METRICS, OBJECTIVES, OPTIMIZERS
from ._common import cli_errors, fail, jsonable, logging_to_stderr, stderr_console, stdout_console
from ._progress import ProgressReporter

__all__ = ["select_command", "parse_n_neighbors"]

DEFAULT_DATASET = "zipf"

_IN, _SEL, _RUN, _OUT = "Input", "Selection", "Compute", "Output"


def parse_n_neighbors(value: str):
    """``auto`` -> "auto", ``dense`` -> None (a dense similarity), an integer -> int."""
    v = value.strip().lower()
    if v == "auto":
        return "auto"
    if v == "dense":
        return None
    try:
        return int(v)
    except ValueError:
        raise typer.BadParameter(f"expected auto, dense or an integer; got {value!r}",
                                 param_hint="'--n-neighbors'") from None


def _choices(names) -> str:
    return ", ".join(names)


def select_command(
    input: Annotated[Optional[Path], typer.Argument(
        metavar="INPUT", show_default=False,
        help="Embeddings file: .npy (memory-mapped), .npz, .parquet or .pt. "
             "Omit it to run on an embedded dataset (see --dataset).")] = None,
    dataset: Annotated[Optional[str], typer.Option(
        "--dataset", metavar="NAME", rich_help_panel=_IN,
        help=f"Embedded dataset to use when INPUT is omitted (default {DEFAULT_DATASET}); "
             "see `coreset datasets`.")] = None,
    column: Annotated[Optional[str], typer.Option(
        "--column", metavar="NAME", rich_help_panel=_IN,
        help="Array (.npz), dict key (.pt) or list column (.parquet) holding the embeddings; "
             "needed only when the file holds several.")] = None,
    labels: Annotated[Optional[Path], typer.Option(
        "--labels", metavar="PATH", rich_help_panel=_IN,
        help="Labels file, one per row of INPUT: .npy, .npz, .txt (one per line), .csv (header row) or .parquet.")] = None,
    labels_column: Annotated[Optional[str], typer.Option(
        "--labels-column", metavar="NAME", rich_help_panel=_IN,
        help="Labels array / key / column inside INPUT, or the column of the --labels file.")] = None,
    fraction: Annotated[Optional[float], typer.Option(
        "--fraction", metavar="F", rich_help_panel=_SEL,
        help="Share of the points to select, in (0, 1]. Give this or --n-select.")] = None,
    n_select: Annotated[Optional[int], typer.Option(
        "--n-select", metavar="K", rich_help_panel=_SEL,
        help="Number of points to select, 1 to N. Give this or --fraction.")] = None,
    method: Annotated[str, typer.Option(
        "--method", metavar="NAME", rich_help_panel=_SEL,
        help=f"Selection method: {_choices(METHODS)}.")] = "submodular",
    objective: Annotated[str, typer.Option(
        "--objective", metavar="NAME", rich_help_panel=_SEL,
        help=f"Submodular objective: {_choices(OBJECTIVES)}.")] = "facility_location",
    optimizer: Annotated[str, typer.Option(
        "--optimizer", metavar="NAME", rich_help_panel=_SEL,
        help=f"Optimizer: {_choices(OPTIMIZERS)}.")] = "lazy_greedy",
    metric: Annotated[str, typer.Option(
        "--metric", metavar="NAME", rich_help_panel=_SEL,
        help=f"Similarity metric: {_choices(METRICS)}.")] = "cosine",
    n_neighbors: Annotated[str, typer.Option(
        "--n-neighbors", metavar="auto|dense|INT", rich_help_panel=_SEL,
        help="Neighbours per point in the similarity graph; dense compares every pair.")] = "auto",
    class_budget: Annotated[Optional[str], typer.Option(
        "--class-budget", metavar="NAME", rich_help_panel=_SEL,
        help=f"Per-class budget policy (needs labels): {_choices(CLASS_BUDGETS)}.")] = None,
    min_per_class: Annotated[int, typer.Option(
        "--min-per-class", metavar="INT", rich_help_panel=_SEL,
        help="Floor on the points selected from each class (with --class-budget).")] = 0,
    alpha: Annotated[float, typer.Option(
        "--alpha", metavar="A", rich_help_panel=_SEL,
        help="Exponent of the tempered class budget, share ~ class size ** A, 0 <= A <= 1.")] = 0.5,
    epsilon: Annotated[float, typer.Option(
        "--epsilon", metavar="E", rich_help_panel=_SEL,
        help="Accuracy of stochastic_greedy: smaller is closer to lazy greedy and slower.")] = 0.01,
    gamma: Annotated[Optional[float], typer.Option(
        "--gamma", metavar="G", rich_help_panel=_SEL,
        help="RBF width of the euclidean metric, exp(-G * distance**2) (default: median heuristic).")] = None,
    backend: Annotated[str, typer.Option(
        "--backend", metavar="NAME", rich_help_panel=_RUN,
        help=f"Similarity backend: {_choices(BACKENDS)}.")] = "auto",
    device: Annotated[str, typer.Option(
        "--device", metavar="DEV", rich_help_panel=_RUN,
        help="auto, cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[Optional[int], typer.Option(
        "--batch-size", metavar="INT", rich_help_panel=_RUN,
        help="Rows per similarity batch (default: chosen by the backend).")] = None,
    exact: Annotated[Optional[bool], typer.Option(
        "--exact/--approximate", rich_help_panel=_RUN, show_default=False,
        help="kNN graph search: exact (flat) or k-means-partitioned. Default: exact up to 20,000 points.")] = None,
    n_probe: Annotated[int, typer.Option(
        "--n-probe", metavar="INT", rich_help_panel=_RUN,
        help="Partitioned search: cells searched per cell (more is slower, higher recall).")] = 8,
    n_clusters: Annotated[Optional[int], typer.Option(
        "--n-clusters", metavar="INT", rich_help_panel=_RUN, show_default=False,
        help="Partitioned search: k-means cells (default: square root of N).")] = None,
    objective_device: Annotated[Optional[str], typer.Option(
        "--objective-device", metavar="DEV", rich_help_panel=_RUN, show_default=False,
        help="Run facility location as torch tensors on this device (cuda, cuda:N, cpu) "
             "instead of the CPU numba kernels.")] = None,
    seed: Annotated[int, typer.Option(
        "--seed", metavar="S", rich_help_panel=_RUN,
        help="Random seed; the same seed and input give the same selection.")] = 0,
    output: Annotated[Path, typer.Option(
        "--output", "-o", metavar="PATH", rich_help_panel=_OUT, show_default=False,
        help="Index file to write (required): .npz, .parquet, .npy or .txt; see docs/index-files.md.")] = ...,
    format: Annotated[Optional[str], typer.Option(
        "--format", metavar="FMT", rich_help_panel=_OUT,
        help="Index-file format (npz, parquet, npy, txt) when the suffix does not say.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", rich_help_panel=_OUT,
        help="Print the summary as one JSON object instead of a table.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", rich_help_panel=_OUT, help="No progress bar; only errors on stderr.")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", rich_help_panel=_OUT, help="Log what the library does (stderr).")] = False,
    debug: Annotated[bool, typer.Option(
        "--debug", rich_help_panel=_OUT, help="Show tracebacks instead of one-line errors.")] = False,
):
    """Select a small, weighted, informative subset and write it as an index file.

    The summary (N, selected, classes covered, objective, backend, device and
    seconds per stage) goes to stdout; progress and logs go to stderr.
    """
    from .._io import format_for_path
    from ..exceptions import CoresetError

    # ---- usage checks (exit 2) before any work
    if (fraction is None) == (n_select is None):
        raise typer.BadParameter("give exactly one of --fraction or --n-select", param_hint="'--fraction' / '--n-select'")
    if input is not None and dataset is not None:
        raise typer.BadParameter("give INPUT or --dataset, not both", param_hint="'--dataset'")
    if input is None and (labels is not None or labels_column is not None or column is not None):
        raise typer.BadParameter("--labels, --labels-column and --column apply to an INPUT file",
                                 param_hint="'--labels'")
    try:
        fmt = format_for_path(output, format)
    except CoresetError:
        raise typer.BadParameter(
            f"cannot tell the index-file format from {output.suffix or 'no suffix'!r}; "
            "use a .npz, .parquet, .npy or .txt suffix, or --format npz|parquet|npy|txt",
            param_hint="'--output' / '--format'",
        ) from None
    if input is not None and output.exists() and input.exists() and output.resolve() == input.resolve():
        raise typer.BadParameter("the output would overwrite INPUT", param_hint="'--output'")
    nn = parse_n_neighbors(n_neighbors)

    err = stderr_console()
    with cli_errors(debug), logging_to_stderr(err, verbose=verbose, debug=debug, quiet=quiet):
        folder = output.parent if str(output.parent) else Path(".")
        if not folder.is_dir():
            fail(f"cannot write {str(output)!r}: folder {str(folder)!r} does not exist")
        reporter = ProgressReporter(err, enabled=not quiet and err.is_terminal)
        t_wall = time.perf_counter()
        with reporter:
            with reporter.stage("read"):
                t0 = time.perf_counter()
                X, y, source = _read_input(input, dataset, column, labels, labels_column)
                from ..data._readers import input_fingerprint

                fingerprint = input_fingerprint(X)
                t_read = time.perf_counter() - t0

            import coreset

            sel = coreset.select(
                X, n_select=n_select, fraction=fraction, y=y, method=method, objective=objective,
                optimizer=optimizer, metric=metric, n_neighbors=nn, backend=backend, device=device,
                class_budget=class_budget, min_per_class=min_per_class, alpha=alpha,
                epsilon=epsilon, gamma=gamma, random_state=seed, batch_size=batch_size, exact=exact, n_probe=n_probe,
                n_clusters=n_clusters, objective_device=objective_device,
                callback=reporter.callback if reporter.enabled else None,
            )
            timings = dict(sel.meta.get("timings") or {})
            timings["read"] = t_read
            sel = sel.with_meta(input=source, input_fingerprint=fingerprint, timings=timings)
            with reporter.stage("write"):
                t0 = time.perf_counter()
                sel.save(output, format=fmt)
                t_write = time.perf_counter() - t0
        wall = time.perf_counter() - t_wall

    summary = _summary(sel, X, y, output, fmt, t_read, t_write, wall)
    if as_json:
        typer.echo(json.dumps(jsonable(summary)))
    else:
        _print_summary(summary)


def _read_input(input, dataset, column, labels, labels_column):
    """(X, y, source name) from a file or an embedded dataset."""
    if input is None:
        from ..data import load_dataset

        ds = load_dataset(dataset or DEFAULT_DATASET, random_state=0)
        return ds.X, ds.y, f"dataset:{ds.name}"
    from ..data._readers import read_embeddings, read_labels

    inner = labels_column if labels is None else None
    X, y = read_embeddings(input, column=column, labels_column=inner)
    if labels is not None:
        y = read_labels(labels, column=labels_column)
    return X, y, input.name


def _summary(sel, X, y, output: Path, fmt: str, t_read: float, t_write: float, wall: float) -> dict:
    meta = sel.meta
    n = int(meta.get("n_samples", X.shape[0]))
    covered = total = None
    if y is not None:
        y = np.asarray(y)
        total = int(np.unique(y).shape[0])
        chosen = sel.labels if sel.labels is not None else y[sel.indices]
        covered = int(np.unique(chosen).shape[0])
    stages = {k: float(v) for k, v in (meta.get("timings") or {}).items() if k not in ("read", "total")}
    timings = {"read": t_read, **stages, "write": t_write, "total": wall}
    return {
        "input": meta.get("input"),
        "input_fingerprint": meta.get("input_fingerprint"),
        "n_samples": n,
        "n_features": int(X.shape[1]),
        "n_select": len(sel),
        "classes_covered": covered,
        "classes_total": total,
        "objective_value": sel.objective,
        "method": meta.get("method"),
        "objective": meta.get("objective_name"),
        "optimizer": meta.get("optimizer"),
        "metric": meta.get("metric"),
        "n_neighbors": meta.get("n_neighbors"),
        "class_budget": meta.get("class_budget"),
        "backend": meta.get("backend"),
        "device": meta.get("device"),
        "seed": meta.get("random_state"),
        "weights_sum": float(sel.weights.sum()),
        "output": str(output),
        "format": fmt,
        "timings": timings,
    }


def _print_summary(s: dict) -> None:
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    pct = 100.0 * s["n_select"] / max(s["n_samples"], 1)
    t.add_row("input", f"{s['input']} ({s['n_samples']} x {s['n_features']})")
    t.add_row("selected", f"{s['n_select']} of {s['n_samples']} ({pct:.3g}%)")
    if s["classes_total"] is not None:
        t.add_row("classes covered", f"{s['classes_covered']} / {s['classes_total']}")
    else:
        t.add_row("classes covered", "n/a (no labels)")
    method = s["method"] or "?"
    if method == "submodular":
        method = f"{s['objective']} by {s['optimizer']}"
    t.add_row("method", f"{method} (metric {s['metric']}, n_neighbors {s['n_neighbors']})")
    if s["class_budget"]:
        t.add_row("class budget", str(s["class_budget"]))
    ov = s["objective_value"]
    t.add_row("objective", "n/a" if ov is None or ov != ov else f"{ov:.6g}")
    t.add_row("backend / device", f"{s['backend']} / {s['device']}")
    t.add_row("seed", str(s["seed"]))
    t.add_row("seconds", "  ".join(f"{k} {v:.3f}" for k, v in s["timings"].items()))
    t.add_row("wrote", f"{s['output']} ({s['format']})")
    stdout_console().print(t)
