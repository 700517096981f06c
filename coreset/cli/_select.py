"""``coreset select``: embeddings on disk (or an embedded dataset) in, an index file out."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from .._defaults import (ALPHA, BACKEND, CCS_BETA, CCS_N_STRATA, CHECKPOINT_EVERY, CHUNK_SIZE, DEVICE, EPSILON,
                         EXECUTOR, LABEL_FILTER, METHOD, METRIC, MIN_PER_CLASS, OBJECTIVE, OPTIMIZER, PARTITION,
                         RESERVOIR, SAMPLE_FRACTION)
from .._io import save_selection
from .._registry import BACKENDS, CLASS_BUDGETS, METRICS
from ._options import DEBUG_FLAG, JSON_FLAG, QUIET_FLAG, Opt, command, library_params
from ._common import (check_output, check_output_target, cli_errors, jsonable, logging_to_stderr, stderr_console,
                      stdout_console)
from ._progress import ProgressReporter

__all__ = ["select_command", "parse_n_neighbors", "GROUPS"]

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


def parse_beta(value: str):
    """``auto`` -> "auto", a number -> float (its range is checked by the library)."""
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return float(value)
    except ValueError:
        raise typer.BadParameter(f"expected auto or a number in [0, 1); got {value!r}", param_hint="'--beta'") from None


def _choices(names) -> str:
    return ", ".join(names)


def _parse_objective_params(items) -> dict:
    """``KEY=VALUE`` pairs; values read as JSON when they parse (numbers,
    true/false, lists), else kept as strings."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE; got {item!r}", param_hint="'--objective-param'")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


P = typer.Option
INPUT = [
    Opt("input", Optional[Path], None, typer.Argument(
        metavar="INPUT", show_default=False,
        help="Embeddings file: .npy (memory-mapped), .npz, .parquet or .pt, a Hugging Face dataset folder "
             "(save_to_disk) with an embedding column, or a folder, glob or URI of .npy / .parquet shards (one "
             "input, in name order). Omit it to run on an embedded dataset (see --dataset).")),
    Opt("dataset", Optional[str], None, P(
        "--dataset", metavar="NAME", rich_help_panel=_IN,
        help=f"Embedded dataset to use when INPUT is omitted (default {DEFAULT_DATASET}); see `coreset datasets`.")),
    Opt("column", Optional[str], None, P(
        "--column", metavar="NAME", rich_help_panel=_IN,
        help="Array (.npz), dict key (.pt) or list column (.parquet, dataset folder) holding the embeddings; "
             "needed only when the file holds several.")),
    Opt("labels", Optional[Path], None, P(
        "--labels", metavar="PATH", rich_help_panel=_IN,
        help="Labels file, one per row of INPUT: .npy, .npz, .txt (one per line), .csv (header row) or .parquet.")),
    Opt("labels_column", Optional[str], None, P(
        "--labels-column", metavar="NAME", rich_help_panel=_IN,
        help="Labels array / key / column inside INPUT, or the column of the --labels file.")),
]
SELECTION = [
    Opt("fraction", Optional[float], None, P(
        "--fraction", metavar="F", rich_help_panel=_SEL,
        help="Share of the points to select, in (0, 1]. Give this or --n-select."), "select"),
    Opt("n_select", Optional[int], None, P(
        "--n-select", metavar="K", rich_help_panel=_SEL,
        help="Number of points to select, 1 to N. Give this or --fraction."), "select"),
    Opt("method", str, METHOD, P(
        "--method", metavar="NAME", rich_help_panel=_SEL,
        help="Selection method: submodular (the default), a baseline or an objective name; "
             "`coreset list selectors` and `coreset list objectives` show them."), "select"),
    Opt("objective", str, OBJECTIVE, P(
        "--objective", metavar="NAME", rich_help_panel=_SEL,
        help=f"Submodular objective (default {OBJECTIVE}); `coreset list objectives` shows them."), "select"),
    Opt("objective_param", Optional[list[str]], None, P(
        "--objective-param", metavar="KEY=VALUE", rich_help_panel=_SEL, show_default=False,
        help="A parameter of the objective, e.g. lambda_=0.3 for graph_cut; repeat for several.")),
    Opt("optimizer", str, OPTIMIZER, P(
        "--optimizer", metavar="NAME", rich_help_panel=_SEL,
        help=f"Optimizer (default {OPTIMIZER}); `coreset list optimizers` shows them."), "select"),
    Opt("metric", str, METRIC, P(
        "--metric", metavar="NAME", rich_help_panel=_SEL,
        help=f"Similarity metric: {_choices(METRICS)}."), "select"),
    Opt("n_neighbors", str, "auto", P(
        "--n-neighbors", metavar="auto|dense|INT", rich_help_panel=_SEL,
        help="Neighbours per point in the similarity graph; dense compares every pair."), "select"),
    Opt("class_budget", Optional[str], None, P(
        "--class-budget", metavar="NAME", rich_help_panel=_SEL,
        help=f"Per-class budget policy (needs labels): {_choices(CLASS_BUDGETS)}."), "select"),
    Opt("min_per_class", int, MIN_PER_CLASS, P(
        "--min-per-class", metavar="INT", rich_help_panel=_SEL,
        help="Floor on the points selected from each class (with --class-budget)."), "select"),
    Opt("alpha", float, ALPHA, P(
        "--alpha", metavar="A", rich_help_panel=_SEL,
        help="Exponent of the tempered class budget, share ~ class size ** A, 0 <= A <= 1."), "select"),
    Opt("epsilon", float, EPSILON, P(
        "--epsilon", metavar="E", rich_help_panel=_SEL,
        help="Accuracy of stochastic_greedy: smaller is closer to lazy greedy and slower."), "select"),
    Opt("sample_fraction", float, SAMPLE_FRACTION, P(
        "--sample-fraction", metavar="F", rich_help_panel=_SEL,
        help="Share of the candidates the sample optimizer draws, in (0, 1]."), "select"),
    Opt("gamma", Optional[float], None, P(
        "--gamma", metavar="G", rich_help_panel=_SEL,
        help="RBF width of the euclidean metric, exp(-G * distance**2) (default: median heuristic)."), "select"),
    Opt("score", Optional[str], None, P(
        "--score", metavar="NAME", rich_help_panel=_SEL, show_default=False,
        help="Difficulty score of --method ccs: label_consistency (the default with labels), knn_density, "
             "fl_gain, centroid_distance; or of the score methods (el2n, grand, ...). See docs/ccs.md."), "select"),
    Opt("beta", Optional[str], None, P(
        "--beta", metavar="auto|B", rich_help_panel=_SEL, show_default=False,
        help=f"--method ccs: share of each class's hardest rows dropped, in [0, 1) (default {CCS_BETA}), or auto "
             "(grows with the pruning rate)."), "select"),
    Opt("n_strata", Optional[int], None, P(
        "--n-strata", metavar="INT", rich_help_panel=_SEL, show_default=False,
        help=f"--method ccs: equal-width difficulty strata, >= 1 (default {CCS_N_STRATA})."), "select"),
    Opt("label_filter", str, LABEL_FILTER, P(
        "--label-filter", metavar="NAME", rich_help_panel=_SEL,
        help="With labels: rows whose label looks wrong cannot be picked (they are still covered): auto, "
             "adaptive, probe, knn, cleanlab, or none. See docs/label-noise.md."), "select"),
    Opt("label_filter_threshold", Optional[float], None, P(
        "--label-filter-threshold", metavar="T", rich_help_panel=_SEL, show_default=False,
        help="A row is a label suspect when its label is less than T times as likely as the most likely "
             "other class, 0 < T <= 1 (default 1)."), "select"),
    Opt("initial_subset", Optional[Path], None, P(
        "--initial-subset", metavar="PATH", rich_help_panel=_SEL, show_default=False,
        help="Warm start: an index file (.npz, .parquet, .npy, .txt) of points to keep first; "
             "the selection grows from them (its size includes them).")),
]
COMPUTE = [
    Opt("backend", str, BACKEND, P(
        "--backend", metavar="NAME", rich_help_panel=_RUN,
        help=f"Similarity backend: {_choices(BACKENDS)}."), "select"),
    Opt("device", str, DEVICE, P(
        "--device", metavar="DEV", rich_help_panel=_RUN, help="auto, cpu, cuda or cuda:N."), "select"),
    Opt("batch_size", Optional[int], None, P(
        "--batch-size", metavar="INT", rich_help_panel=_RUN,
        help="Rows per similarity batch (default: chosen by the backend)."), "select"),
    Opt("exact", Optional[bool], None, P(
        "--exact/--approximate", rich_help_panel=_RUN, show_default=False,
        help="kNN graph search: exact (flat) or k-means-partitioned. Default: exact up to 20,000 points."), "select"),
    Opt("n_probe", Optional[int], None, P(
        "--n-probe", metavar="INT", rich_help_panel=_RUN, show_default=False,
        help="Partitioned search: cells paired with each cell (more is slower, higher recall; "
             "default 2 on the CPU, 8 on a GPU)."), "select"),
    Opt("n_clusters", Optional[int], None, P(
        "--n-clusters", metavar="INT", rich_help_panel=_RUN, show_default=False,
        help="Partitioned search: k-means cells (default: square root of N)."), "select"),
    Opt("objective_device", Optional[str], None, P(
        "--objective-device", metavar="DEV", rich_help_panel=_RUN, show_default=False,
        help="Run the objective as torch tensors on this device (cuda, cuda:N, cpu) "
             "instead of the CPU numba kernels."), "select"),
    Opt("seed", int, 0, P(
        "--seed", metavar="S", rich_help_panel=_RUN,
        help="Random seed; the same seed and input give the same selection.")),
]
OUTPUT = [
    Opt("output", Path, ..., P(
        "--output", "-o", metavar="PATH", rich_help_panel=_OUT, show_default=False,
        help="Index file to write (required): .npz, .parquet, .npy or .txt; see docs/index-files.md.")),
    Opt("format", Optional[str], None, P(
        "--format", metavar="FMT", rich_help_panel=_OUT,
        help="Index-file format (npz, parquet, npy, txt) when the suffix does not say.")),
    Opt("as_json", bool, False, JSON_FLAG),
    Opt("quiet", bool, False, QUIET_FLAG),
    Opt("verbose", bool, False, P(
        "--verbose", "-v", rich_help_panel=_OUT, help="Log what the library does (stderr).")),
    Opt("debug", bool, False, DEBUG_FLAG),
]
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
GROUPS = (INPUT, SELECTION, COMPUTE, DISTRIBUTED, STREAM, OUTPUT)


@command(*GROUPS)
def select_command(v: dict):
    """Select a small, weighted, informative subset and write it as an index file.

    The summary (N, selected, classes covered, objective, backend, device and
    seconds per stage) goes to stdout; progress and logs go to stderr.
    """
    input, dataset, output = v["input"], v["dataset"], v["output"]
    # ---- usage checks (exit 2) before any work
    if (v["fraction"] is None) == (v["n_select"] is None):
        raise typer.BadParameter("give exactly one of --fraction or --n-select", param_hint="'--fraction' / '--n-select'")
    if input is not None and dataset is not None:
        raise typer.BadParameter("give INPUT or --dataset, not both", param_hint="'--dataset'")
    if input is None and (v["labels"] is not None or v["labels_column"] is not None or v["column"] is not None):
        raise typer.BadParameter("--labels, --labels-column and --column apply to an INPUT file",
                                 param_hint="'--labels'")
    fmt = check_output(output, v["format"], [("INPUT", input), ("the --labels file", v["labels"]),
                                             ("--checkpoint", v["checkpoint"])])
    _check_shards_usage(v)
    params = library_params(v, *GROUPS)
    if "n_neighbors" in params:
        params["n_neighbors"] = parse_n_neighbors(params["n_neighbors"])
    if params.get("label_filter") in ("none", "None", "off"):
        params["label_filter"] = None
    if "beta" in params:
        params["beta"] = parse_beta(params["beta"])
    if "sample_fraction" in params and v["optimizer"] != "sample":
        raise typer.BadParameter("--sample-fraction applies to --optimizer sample", param_hint="'--sample-fraction'")
    if "epsilon" in params and v["optimizer"] != "stochastic_greedy":
        raise typer.BadParameter("--epsilon applies to --optimizer stochastic_greedy", param_hint="'--epsilon'")
    objective_params = _parse_objective_params(v["objective_param"])
    if objective_params:
        params["objective_params"] = objective_params
    greedi = _greedi_options(v)
    if greedi is not None and (params.get("label_filter") is not None or "label_filter_threshold" in params):
        raise typer.BadParameter("--label-filter applies without --partitions (GreeDi selects from every row)",
                                 param_hint="'--label-filter'")
    if _stream_options(v, params):
        return _select_stream(v, fmt)

    err = stderr_console()
    with cli_errors(v["debug"]), logging_to_stderr(err, verbose=v["verbose"], debug=v["debug"], quiet=v["quiet"]):
        reporter = ProgressReporter(err, enabled=not v["quiet"] and err.is_terminal)
        t_wall = time.perf_counter()
        with reporter:
            with reporter.stage("read"):
                t0 = time.perf_counter()
                X, y, source, rows = _read_input(input, dataset, v["column"], v["labels"], v["labels_column"],
                                                 whole=greedi is None)
                if v["initial_subset"] is not None:
                    from ..selection import load_selection

                    params["initial_subset"] = load_selection(v["initial_subset"]).indices
                t_read = time.perf_counter() - t0

            import coreset

            if greedi is not None:
                sel = _select_greedi(rows or X, y, input, params, greedi, v["seed"],
                                     reporter.callback if reporter.enabled else None)
            else:
                sel = coreset.select(X, y=y, random_state=v["seed"],
                                     callback=reporter.callback if reporter.enabled else None, **params)
            timings = dict(sel.meta.get("timings") or {})
            timings["read"] = t_read
            # the library records the fingerprint of what it was given (X, or the .npy path: the same string)
            from ..data._fingerprint import fingerprint

            sel = sel.with_meta(input=source, input_fingerprint=sel.meta.get("input_fingerprint") or fingerprint(X),
                                timings=timings)
            if rows is not None and hasattr(rows, "shards_meta"):  # shards: each one's path, rows, fingerprint
                sel = sel.with_meta(shards=sel.meta.get("shards") or rows.shards_meta())
            with reporter.stage("write"):
                t0 = time.perf_counter()
                save_selection(sel, output, format=fmt, param="--output")
                t_write = time.perf_counter() - t0
        wall = time.perf_counter() - t_wall

    summary = _summary(sel, X, y, output, fmt, t_read, t_write, wall)
    if v["as_json"]:
        typer.echo(json.dumps(jsonable(summary)))
    else:
        _print_summary(summary)


def _check_shards_usage(v: dict) -> None:
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


def _greedi_options(v: dict):
    """GreeDi's settings from --partitions / --executor / --ray-address /
    --partition-by, or None without --partitions (usage errors exit 2)."""
    if v["partitions"] is None:
        for name, flag, default in (("executor", "--executor", "local"), ("ray_address", "--ray-address", None),
                                    ("partition_by", "--partition-by", "random"), ("merge_cap", "--merge-cap", None)):
            if v[name] != default:
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


def _select_greedi(X, y, input, params, greedi, seed, callback):
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


def _stream_options(v: dict, params: dict) -> bool:
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


def _select_stream(v: dict, fmt: str) -> None:
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
    summary = _summary(sel, shape_only, None, output, fmt, 0.0, t_write, wall)
    if v["as_json"]:
        typer.echo(json.dumps(jsonable(summary)))
    else:
        _print_summary(summary)


def _read_input(input, dataset, column, labels, labels_column, *, whole=True):
    """(X, y, source name, row source or None) from a file, shards or an
    embedded dataset. Shards (a folder, glob or URI) give their row source,
    and X read whole from it when ``whole`` (else X is the source itself)."""
    if input is None:
        from ..data import load_dataset

        ds = load_dataset(dataset or DEFAULT_DATASET, random_state=0)
        return ds.X, ds.y, f"dataset:{ds.name}", None
    from ..data._readers import read_embeddings, read_labels
    from ..data._shards import input_spec, is_sharded

    spec = input_spec(input)
    if is_sharded(spec):
        from ..data._shards import as_source

        rows = as_source(spec, column)
        X = rows.read_range(0, rows.n_rows) if whole else rows
        y = None if labels is None else read_labels(labels, column=labels_column)
        return X, y, input.name, rows

    inner = labels_column if labels is None else None
    X, y = read_embeddings(input, column=column, labels_column=inner)
    if labels is not None:
        y = read_labels(labels, column=labels_column)
    return X, y, input.name, None


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
        "knee": _knee(sel, n),
        "output": str(output),
        "format": fmt,
        "timings": timings,
        "label_suspects": None if sel.suspects is None else int(sel.suspects.size),
        "label_filter": (meta.get("label_filter") or {}).get("method"),
    }


def _knee(sel, n: int) -> dict:
    """Where the gain curve bends (docs/report.md): the budget it suggests."""
    from ..report._knee import knee

    return knee(sel, n_samples=n if n >= max(len(sel), 1) else None)


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
    if s.get("label_suspects") is not None:
        t.add_row("label suspects", f"{s['label_suspects']} (not picked; filter {s['label_filter']})")
    ov = s["objective_value"]
    t.add_row("objective", "n/a" if ov is None or ov != ov else f"{ov:.6g}")
    if s.get("knee") is not None:
        from ._report import knee_line

        t.add_row("knee", knee_line(s["knee"]))
    t.add_row("backend / device", f"{s['backend']} / {s['device']}")
    t.add_row("seed", str(s["seed"]))
    t.add_row("seconds", "  ".join(f"{k} {v:.3f}" for k, v in s["timings"].items()))
    t.add_row("wrote", f"{s['output']} ({s['format']})")
    stdout_console().print(t)
