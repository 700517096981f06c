"""``coreset inspect``: what an index file holds."""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from ._common import cli_errors, jsonable, stdout_console

__all__ = ["inspect_command", "describe_index_file"]

#: label suspects listed by ``inspect`` (the count is always shown)
SUSPECTS_SHOWN = 10


def describe_index_file(path, format: str | None = None) -> dict:
    """A JSON-ready description of an index file: format, version, size,
    selection statistics, meta and the class histogram of the selection."""
    from ..selection import read_index_file

    sel, info = read_index_file(path, format)
    hist = None
    if sel.labels is not None:
        values, counts = np.unique(sel.labels, return_counts=True)
        order = np.lexsort((values, -counts)) if values.dtype.kind in "biuf" else np.argsort(-counts, kind="stable")
        hist = {str(values[i].item()): int(counts[i]) for i in order}
    w = sel.weights
    return {
        "path": info.path,
        "format": info.format,
        "format_version": info.format_version,
        "size_bytes": info.size_bytes,
        "n_select": len(sel),
        "weights_sum": float(w.sum()) if len(sel) else 0.0,
        "weights_min": float(w.min()) if len(sel) else None,
        "weights_max": float(w.max()) if len(sel) else None,
        "objective": sel.objective,
        "bare_indices": info.format in ("npy", "txt"),
        "has_labels": sel.labels is not None,
        "n_suspects": None if sel.suspects is None else int(sel.suspects.size),
        "suspects_head": None if sel.suspects is None else sel.suspects[:SUSPECTS_SHOWN].tolist(),
        "meta": sel.meta,
        "class_histogram": hist,
    }


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def inspect_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", show_default=False,
                                         help="Index file written by `coreset select` (.npz, .parquet, .npy, .txt).")],
    format: Annotated[Optional[str], typer.Option(
        "--format", metavar="FMT", help="Read as this format (npz, parquet, npy, txt) whatever the suffix.")] = None,
    top: Annotated[int, typer.Option(
        "--top", metavar="INT", min=1, help="Show at most this many classes in the histogram.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")] = False,
):
    """Show an index file's metadata, size and the class histogram of its selection."""
    with cli_errors(debug):
        d = describe_index_file(file, format)
    if as_json:
        typer.echo(json.dumps(jsonable(d)))
        return
    _print(d, top)


def _seconds(v) -> str:
    """A timing as seconds when it is a number; anything else (a file is not
    trusted to hold numbers) as it is."""
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return f"{float(v):.3f}"
    return v if isinstance(v, str) else json.dumps(jsonable(v))


def _print(d: dict, top: int) -> None:
    from rich.table import Table
    from rich.text import Text  # plain text: a file's strings are never read as rich markup

    con = stdout_console()
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    version = d["format_version"] if d["format_version"] is not None else "n/a (bare indices)"
    t.add_row("file", Text(d["path"]))
    t.add_row("format", f"{d['format']} (format_version {version})")
    t.add_row("size", _size(d["size_bytes"]))
    t.add_row("selected", str(d["n_select"]))
    if d["bare_indices"]:
        t.add_row("weights", "not stored (bare indices: read back as 1.0 each)")
    else:
        t.add_row("weights", f"sum {d['weights_sum']:.6g}, min {d['weights_min']}, max {d['weights_max']}")
        ov = d["objective"]
        t.add_row("objective", "n/a" if ov != ov else f"{ov:.6g}")
    if d.get("n_suspects") is not None:
        head = ", ".join(str(i) for i in d["suspects_head"])
        more = ", ..." if d["n_suspects"] > len(d["suspects_head"]) else ""
        t.add_row("label suspects", f"{d['n_suspects']} (not picked)" + (f": {head}{more}" if head else ""))
    meta = dict(d["meta"])
    timings = meta.pop("timings") if isinstance(meta.get("timings"), dict) else None
    for key in sorted(meta, key=str):
        value = meta[key]
        t.add_row(Text(str(key)), Text(value if isinstance(value, str) else json.dumps(jsonable(value))))
    if timings is not None:
        t.add_row("seconds", Text("  ".join(f"{k} {_seconds(v)}" for k, v in timings.items())))
    con.print(t)
    hist = d["class_histogram"]
    if hist is None:
        con.print("class histogram: no labels stored in this file")
        return
    con.print(f"class histogram of the selection ({len(hist)} classes):")
    h = Table()
    h.add_column("class")
    h.add_column("selected", justify="right")
    for i, (label, count) in enumerate(hist.items()):
        if i == top:
            h.add_row(f"... {len(hist) - top} more", "")
            break
        h.add_row(Text(label), str(count))
    con.print(h)
