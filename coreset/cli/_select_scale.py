"""``coreset select`` beyond one process's RAM: GreeDi (``--partitions``,
shards) and one-pass streaming (``--stream``): their options, usage checks
and runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from .._defaults import CHECKPOINT_EVERY, CHUNK_SIZE, EXECUTOR, PARTITION, RESERVOIR
from .._io import save_selection
from ._common import check_output_target, cli_errors, jsonable, logging_to_stderr, stderr_console
from ._options import Opt
from ._select_summary import print_summary, summary

__all__ = ["DISTRIBUTED", "STREAM", "check_shards_usage", "greedi_options", "select_greedi", "stream_options",
           "select_stream"]

P = typer.Option

_DIST = "Distributed (GreeDi)"
DISTRIBUTED = [
    Opt("partitions", Optional[int], None, P(
        "--partitions", metavar="N", rich_help_panel=_DIST, show_default=False,
        help="Select with GreeDi: split the points into N partitions (1 to the number of points), select "
             "in each in parallel, merge. See docs/distributed.md.")),
    Opt("executor", str, EXECUTOR, P(
        "--executor", metavar="local|ray", rich_help_panel=_DIST,
        help="Where the partitions run (with --partitions): local (this process) or ray.")),
    Opt("ray_address", Optional[str], None, P(
        "--ray-address", metavar="ADDR", rich_help_panel=_DIST, show_default=False,
        help="Join this Ray cluster (host:port, ray://host:port or auto) instead of starting a local one.")),
    Opt("partition_by", str, PARTITION, P(
        "--partition-by", metavar="random|kmeans|contiguous", rich_help_panel=_DIST,
        help="How points are split (with --partitions): random, or k-means clusters.")),
    Opt("merge_cap", Optional[int], None, P(
        "--merge-cap", metavar="ROWS", rich_help_panel=_DIST, show_default=False,
        help="Merge the partitions' picks in a tree (multi-round GreeDi) so that no merge selects from more than "
             "ROWS rows (>= the number selected); default: one merge of all the picks.")),
]
_STREAM = "Streaming"
STREAM = [
    Opt("stream", bool, False, P(
        "--stream", rich_help_panel=_STREAM,
        help="One pass over INPUT (.npy or .parquet) in chunks with bounded memory (Sieve-Streaming++ on "
             "facility location against a seeded reservoir); see docs/streaming.md.")),
    Opt("chunk_size", int, CHUNK_SIZE, P(
        "--chunk-size", metavar="N", rich_help_panel=_STREAM, help="Rows read at a time (with --stream).")),
    Opt("reservoir", int, RESERVOIR, P(
        "--reservoir", metavar="R", rich_help_panel=_STREAM,
        help="Rows drawn (seeded, uniform) as the ground set coverage is measured on (with --stream).")),
    Opt("checkpoint", Optional[Path], None, P(
        "--checkpoint", metavar="PATH", rich_help_panel=_STREAM, show_default=False,
        help="Save the stream's state here and resume from it when it exists (with --stream).")),
    Opt("checkpoint_every", int, CHECKPOINT_EVERY, P(
        "--checkpoint-every", metavar="M", rich_help_panel=_STREAM, help="Chunks between checkpoints.")),
]


def check_shards_usage(v: dict) -> None:
    """Usage checks (exit 2) for an INPUT that is a folder, glob or URI of shards."""
    from ..data._shards import input_spec, is_sharded

    if v["input"] is None or not is_sharded(input_spec(v["input"])):
        return
    if v["labels"] is None and v["labels_column"] is not None:
        raise typer.BadParameter("reads labels from an INPUT file; for a folder, glob or URI of shards give the "
                                 "labels as a file with --labels", param_hint="'--labels-column'")
    out = v["output"]
    if v["input"].is_dir() and out.resolve().parent == v["input"].resolve() and out.suffix.lower() in (
            ".npy", ".parquet", ".pq"):
        raise typer.BadParameter(f"{str(out)!r} is inside the shard folder INPUT, where it would be read as a "
                                 "shard next time; write it elsewhere", param_hint="'--output'")


def greedi_options(v: dict):
    """GreeDi's settings from --partitions / --executor / --ray-address /
    --partition-by, or None without --partitions (usage errors exit 2)."""
    if v["partitions"] is None:
        for o in DISTRIBUTED[1:]:  # every distributed option but --partitions itself
            if v[o.name] != o.default:
                flag = f"--{o.name.replace('_', '-')}"
                raise typer.BadParameter(f"{flag} applies with --partitions", param_hint=f"'{flag}'")
        return None
    if v["partitions"] < 1:
        raise typer.BadParameter(f"must be >= 1; got {v['partitions']}", param_hint="'--partitions'")
    if v["executor"] not in ("local", "ray"):
        raise typer.BadParameter(f"choose local or ray; got {v['executor']!r}", param_hint="'--executor'")
    if v["partition_by"] not in ("random", "kmeans", "contiguous"):
        raise typer.BadParameter(f"choose random, kmeans or contiguous; got {v['partition_by']!r}",
                                 param_hint="'--partition-by'")
    if v["ray_address"] is not None and v["executor"] != "ray":
        raise typer.BadParameter("--ray-address applies with --executor ray", param_hint="'--ray-address'")
    return {"n_partitions": v["partitions"], "executor": v["executor"], "ray_address": v["ray_address"],
            "partition": v["partition_by"], "column": v["column"], "merge_cap": v["merge_cap"]}


def select_greedi(X, y, input, params, greedi, seed, callback):
    """GreeDi around the selector ``select`` would run; a ``.npy`` INPUT is
    passed by path, so the partitions read their own rows."""
    from ..selectors import make_selector
    from ..selectors._greedi import GreeDi

    params = dict(params)
    size = {"n_select": params.pop("n_select", None), "fraction": params.pop("fraction", None)}
    budget = {k: params.pop(k) for k in ("class_budget", "alpha", "min_per_class") if k in params}
    warm = {"initial_subset": params.pop("initial_subset", None)}  # GreeDi.fit refuses it by name
    # a class budget wraps the selector (ClassBalanced): GreeDi composes with it
    inner = make_selector(random_state=seed, n_samples=int(X.shape[0]), **params, **budget)
    column = greedi.pop("column")
    source = input if input is not None and input.suffix.lower() == ".npy" and input.is_file() else X
    model = GreeDi(inner, **greedi, random_state=seed, **size,
                   column=column if source is input else None)  # a row source (shards) knows its column
    return model.fit(source, y, callback=callback, **warm).selection_


def stream_options(v: dict, params: dict) -> bool:
    """Usage checks of the streaming options; True when --stream is set."""
    given = [f"--{o.name.replace('_', '-')}" for o in STREAM[1:] if v[o.name] != o.default]
    if not v["stream"]:
        if given:
            raise typer.BadParameter(f"{', '.join(given)} apply with --stream", param_hint=f"'{given[0]}'")
        return False
    if v["input"] is None:
        raise typer.BadParameter("--stream reads an INPUT file (.npy or .parquet)", param_hint="'--stream'")
    from ..data._readers import is_hf_folder

    if v["input"].is_dir() and is_hf_folder(v["input"]):
        raise typer.BadParameter("--stream reads an INPUT file (.npy or .parquet) or a folder of such shards; a "
                                 "Hugging Face dataset folder is read whole: drop --stream", param_hint="'--stream'")
    if v["n_select"] is None:
        raise typer.BadParameter("--stream needs --n-select (the stream's length is not known up front)",
                                 param_hint="'--n-select'")
    extra = sorted(set(params) - {"n_select", "objective"})
    if extra or v["labels"] is not None or v["labels_column"] is not None or v.get("partitions") is not None:
        names = [f"--{k.replace('_', '-')}" for k in extra] or ["--labels"]
        raise typer.BadParameter(f"{', '.join(names)} do not apply with --stream", param_hint="'--stream'")
    for name, low in (("chunk_size", 1), ("reservoir", 1), ("checkpoint_every", 1)):
        if v[name] < low:
            raise typer.BadParameter(f"must be >= {low}; got {v[name]}", param_hint=f"'--{name.replace('_', '-')}'")
    return True


class _StreamBar:
    """The stream's progress bar: rows, rows/s and the running objective estimate."""

    objective = float("nan")

    def __init__(self, console, enabled):
        self.progress = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("stream"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[rate]} rows/s  objective {task.fields[obj]}"),
                                     TimeElapsedColumn(), console=console, transient=True)
            self.task = self.progress.add_task("stream", total=None, rate="-", obj="-")
        self.t0 = time.perf_counter()

    def __call__(self, stage, done, total):
        if self.progress is not None:
            rate = done / max(time.perf_counter() - self.t0, 1e-9)
            self.progress.update(self.task, completed=done, total=total, rate=f"{rate:,.0f}",
                                 obj=f"{self.objective:.6g}")

    def __enter__(self):
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
        return False


def select_stream(v: dict, fmt: str) -> None:
    import coreset

    err = stderr_console()
    output = v["output"]
    if v["checkpoint"] is not None:  # the checkpoint is written too: the same check (--output was checked)
        check_output_target(v["checkpoint"], [("INPUT", v["input"])], param="--checkpoint")
    with cli_errors(v["debug"]), logging_to_stderr(err, verbose=v["verbose"], debug=v["debug"], quiet=v["quiet"]):
        t_wall = time.perf_counter()
        with _StreamBar(err, not v["quiet"] and err.is_terminal) as bar:
            from ..data._shards import input_spec

            sel = coreset.select_stream(input_spec(v["input"]), v["n_select"], objective=v["objective"],
                                        chunk_size=v["chunk_size"], reservoir=v["reservoir"],
                                        random_state=v["seed"], checkpoint=v["checkpoint"],
                                        checkpoint_every=v["checkpoint_every"], callback=bar, column=v["column"])
        sel = sel.with_meta(input=v["input"].name)
        t0 = time.perf_counter()
        save_selection(sel, output, format=fmt, param="--output")
        t_write = time.perf_counter() - t0
        wall = time.perf_counter() - t_wall
    from types import SimpleNamespace

    shape_only = SimpleNamespace(shape=(int(sel.meta["n_samples"]), int(sel.meta["n_features"])))
    result = summary(sel, shape_only, None, output, fmt, 0.0, t_write, wall)
    if v["as_json"]:
        typer.echo(json.dumps(jsonable(result)))
    else:
        print_summary(result)
