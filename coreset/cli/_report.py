"""``coreset report``: an index file and its embeddings in, one self-contained
HTML page out (docs/report.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from ._common import check_output_target, cli_errors, jsonable, logging_to_stderr, stderr_console, stdout_console
from ._options import DEBUG_FLAG, JSON_FLAG, QUIET_FLAG, Opt, command

__all__ = ["report_command"]

_IN, _PAGE, _OUT = "Input", "Page", "Output"
P = typer.Option
INPUT = [
    Opt("selection", Path, ..., typer.Argument(
        metavar="SELECTION", show_default=False,
        help="Index file written by `coreset select` or `coreset dedup` (.npz, .parquet, .npy, .txt).")),
    Opt("embeddings", Optional[Path], None, P(
        "--embeddings", metavar="PATH", rich_help_panel=_IN, show_default=False,
        help="The embeddings the selection was made from: .npy, .npz, .parquet or .pt.")),
    Opt("embeddings_column", Optional[str], None, P(
        "--embeddings-column", metavar="NAME", rich_help_panel=_IN, show_default=False,
        help="Array / key / list column of --embeddings holding them, when the file holds several.")),
    Opt("dataset", Optional[str], None, P(
        "--dataset", metavar="NAME", rich_help_panel=_IN, show_default=False,
        help="Embedded dataset the selection was made on (`coreset select --dataset NAME`) instead of "
             "--embeddings; default: the one the selection records.")),
    Opt("labels", Optional[Path], None, P(
        "--labels", metavar="PATH", rich_help_panel=_IN, show_default=False,
        help="Labels file, one per row: .npy, .npz, .txt, .csv or .parquet.")),
    Opt("labels_column", Optional[str], None, P(
        "--labels-column", metavar="NAME", rich_help_panel=_IN, show_default=False,
        help="Labels array / key / column inside --embeddings, or the column of the --labels file.")),
    Opt("images", Optional[Path], None, P(
        "--images", metavar="PATH", rich_help_panel=_IN, show_default=False,
        help="Thumbnails: a folder with one image file per row (sorted name order) or a .npy of images.")),
    Opt("text", Optional[Path], None, P(
        "--text", metavar="FILE", rich_help_panel=_IN, show_default=False,
        help="Sentences, one per row: .txt (one per line), .csv or .parquet (see --column).")),
    Opt("column", Optional[str], None, P(
        "--column", metavar="NAME", rich_help_panel=_IN, show_default=False,
        help="The text column of a --text .csv / .parquet file.")),
]
PAGE = [
    Opt("projection", str, "pca", P(
        "--projection", metavar="pca|umap|auto", rich_help_panel=_PAGE,
        help="2-D map: PCA, UMAP (needs umap-learn) or auto (UMAP when installed).")),
    Opt("max_points", int, 20_000, P(
        "--max-points", metavar="N", rich_help_panel=_PAGE, help="Rows drawn on the map (a seeded sample above).")),
    Opt("max_picks", int, 100_000, P(
        "--max-picks", metavar="N", rich_help_panel=_PAGE, help="Picks drawn on the map (a seeded sample above).")),
    Opt("coverage_rows", int, 2_000, P(
        "--coverage-rows", metavar="N", rich_help_panel=_PAGE,
        help="Rows per class the coverage is measured on (a seeded sample above).")),
    Opt("max_classes", int, 50, P(
        "--max-classes", metavar="N", rich_help_panel=_PAGE,
        help="Classes with thumbnails or sentences (worst covered first).")),
    Opt("title", Optional[str], None, P(
        "--title", metavar="TEXT", rich_help_panel=_PAGE, show_default=False, help="Title of the page.")),
    Opt("seed", int, 0, P("--seed", metavar="S", rich_help_panel=_PAGE, help="Seed of every sample.")),
]
OUTPUT = [
    Opt("output", Path, Path("report.html"), P(
        "--output", "-o", metavar="PATH", rich_help_panel=_OUT, help="HTML file to write.")),
    Opt("as_json", bool, False, JSON_FLAG),
    Opt("quiet", bool, False, QUIET_FLAG),
    Opt("debug", bool, False, DEBUG_FLAG),
]
GROUPS = (INPUT, PAGE, OUTPUT)


def _dataset_name(dataset, sel_meta):
    if dataset is not None:
        return dataset
    recorded = sel_meta.get("input")
    if isinstance(recorded, str) and recorded.startswith("dataset:"):
        return recorded.split(":", 1)[1]
    return None


@command(*GROUPS)
def report_command(v: dict):
    """Write a self-contained HTML report of a selection: a map of the embeddings with the picks, class counts,
    the gain curve and its knee, per-class coverage, duplicates and suspects, thumbnails or sentences.

    The page loads nothing from the network; open it in any browser. See docs/report.md.
    """
    sel_path, emb, dataset, output = v["selection"], v["embeddings"], v["dataset"], v["output"]
    if emb is not None and dataset is not None:
        raise typer.BadParameter("give --embeddings or --dataset, not both", param_hint="'--dataset'")
    if v["images"] is not None and v["text"] is not None:
        raise typer.BadParameter("give --images or --text, not both", param_hint="'--text'")
    if v["column"] is not None and v["text"] is None:
        raise typer.BadParameter("--column names the text column of --text", param_hint="'--column'")
    for name in ("embeddings_column", "labels", "labels_column"):
        if emb is None and v[name] is not None:
            flag = f"--{name.replace('_', '-')}"
            raise typer.BadParameter(f"{flag} applies with --embeddings (an embedded dataset brings its labels)",
                                     param_hint=f"'{flag}'")
    if v["projection"] not in ("pca", "umap", "auto"):
        raise typer.BadParameter(f"choose pca, umap or auto; got {v['projection']!r}", param_hint="'--projection'")
    for name in ("max_points", "max_picks", "coverage_rows"):
        if v[name] < 1:
            raise typer.BadParameter(f"must be >= 1; got {v[name]}", param_hint=f"'--{name.replace('_', '-')}'")
    if v["max_classes"] < 0:
        raise typer.BadParameter(f"must be >= 0; got {v['max_classes']}", param_hint="'--max-classes'")
    check_output_target(output, [("SELECTION", sel_path), ("--embeddings", emb), ("--labels", v["labels"]),
                                 ("--text", v["text"]), ("--images", v["images"])])

    err = stderr_console()
    with cli_errors(v["debug"]), logging_to_stderr(err, debug=v["debug"], quiet=v["quiet"]):
        from ..selection import load_selection
        from ..exceptions import ValidationError
        from ..report import build_report

        t0 = time.perf_counter()
        sel = load_selection(sel_path)
        images, source = v["images"], None
        name = _dataset_name(dataset, sel.meta) if emb is None else None
        if emb is not None:
            from ..data._readers import read_embeddings, read_labels

            X, y = read_embeddings(emb, column=v["embeddings_column"],
                                   labels_column=v["labels_column"] if v["labels"] is None else None)
            if v["labels"] is not None:
                y = read_labels(v["labels"], column=v["labels_column"])
            source = emb.name
        elif name is not None:
            from ..data import load_dataset

            ds = load_dataset(name, random_state=0)
            X, y, source = ds.X, ds.y, f"dataset:{ds.name}"
            if images is None and v["text"] is None:
                if ds.name == "digits-lt":  # the 8x8 digits themselves, dark ink on white
                    images = 1.0 - ds.X.reshape(-1, 8, 8)
                elif ds.texts is not None:
                    v["text"] = list(ds.texts)
        else:
            raise ValidationError("give --embeddings PATH (the embeddings the selection was made from) or "
                                  "--dataset NAME; the selection records no embedded dataset")
        t_read = time.perf_counter() - t0
        rep = build_report(sel, X, y=y, images=images, text=v["text"], text_column=v["column"], title=v["title"],
                           projection=v["projection"], max_points=v["max_points"], max_picks=v["max_picks"],
                           coverage_rows=v["coverage_rows"], max_classes=v["max_classes"], random_state=v["seed"],
                           source=source)
        t0 = time.perf_counter()
        rep.save(output)
        t_write = time.perf_counter() - t0
    info = rep.info
    summary = {"output": str(output), "size_bytes": info["size_bytes"], "n_rows": info["n_rows"],
               "n_picks": info["n_picks"], "map_rows": info["map_rows"], "map_picks": info["map_picks"],
               "projection": info["projection"], "knee": info["knee"], "coverage_overall": info["coverage_overall"],
               "timings": {"read": t_read, **info["timings"], "write": t_write}}
    if v["as_json"]:
        typer.echo(json.dumps(jsonable(summary)))
        return
    _print(summary)


def _print(s: dict) -> None:
    from rich.table import Table
    from rich.text import Text

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    n, k = s["n_rows"], s["n_picks"]
    rows = f"all {n:,} rows" if s["map_rows"] == n else f"{s['map_rows']:,} of {n:,} rows (sampled)"
    picks = f"all {k:,} picks" if s["map_picks"] == k else f"{s['map_picks']:,} of {k:,} picks (sampled)"
    t.add_row("map", f"{rows}, {picks} ({s['projection']})")
    kn = s["knee"]
    t.add_row("knee", knee_line(kn))
    t.add_row("coverage", f"{s['coverage_overall']:.3f} (mean similarity to the nearest pick of the class)")
    t.add_row("seconds", "  ".join(f"{a} {b:.3f}" for a, b in s["timings"].items()))
    t.add_row("wrote", Text(f"{s['output']} ({s['size_bytes'] / 2**20:.1f} MiB)"))
    stdout_console().print(t)


def knee_line(kn: dict) -> str:
    """One line for the knee: ``n picks (f% of the rows)`` or why there is none."""
    if kn["n_picks"] is None:
        return f"none ({kn['reason']})"
    frac = f" = {100 * kn['fraction']:.3g}% of the rows" if kn["fraction"] is not None else ""
    return f"{kn['n_picks']:,} picks{frac} (of {kn['n_select']:,} selected)"
