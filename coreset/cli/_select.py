"""``coreset select``: embeddings on disk (or an embedded dataset) in, an index file out."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from .._defaults import (ALPHA, BACKEND, CCS_BETA, CCS_N_STRATA, DEVICE, EPSILON, LABEL_FILTER, METHOD, METRIC,
                         MIN_PER_CLASS, OBJECTIVE, OPTIMIZER, SAMPLE_FRACTION)
from .._io import save_selection
from .._registry import BACKENDS, CLASS_BUDGETS, METRICS
from ._options import DEBUG_FLAG, JSON_FLAG, QUIET_FLAG, Opt, command, library_params
from ._common import check_output, cli_errors, jsonable, logging_to_stderr, stderr_console
from ._progress import ProgressReporter
from ._select_scale import (DISTRIBUTED, STREAM, check_shards_usage, greedi_options, select_greedi, select_stream,
                            stream_options)
from ._select_summary import print_summary, summary

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
    check_shards_usage(v)
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
    greedi = greedi_options(v)
    if greedi is not None and (params.get("label_filter") is not None or "label_filter_threshold" in params):
        raise typer.BadParameter("--label-filter applies without --partitions (GreeDi selects from every row)",
                                 param_hint="'--label-filter'")
    if stream_options(v, params):
        return select_stream(v, fmt)

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
                sel = select_greedi(rows or X, y, input, params, greedi, v["seed"],
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

    result = summary(sel, X, y, output, fmt, t_read, t_write, wall)
    if v["as_json"]:
        typer.echo(json.dumps(jsonable(result)))
    else:
        print_summary(result)


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
