"""``coreset compare``: fractions x methods x seeds of training on subsets of
a dataset, with per-class metrics, resumable results, a summary and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import cli_errors, fail, logging_to_stderr, stderr_console, stdout_console
from ._options import DebugFlag
from ._progress import ProgressReporter

__all__ = ["compare_command"]

_IN, _GRID, _TRAIN, _OUT = "Input", "Grid", "Training", "Output"


def _numbers(value: str, flag: str, cast, example: str) -> list:
    """A comma-separated list of ``cast`` values; a usage error naming ``flag`` otherwise."""
    try:
        return [cast(v) for v in value.split(",") if v.strip()]
    except ValueError:
        kind = "integers" if cast is int else "numbers"
        raise typer.BadParameter(f"expected comma-separated {kind} such as {example}; got {value!r}",
                                 param_hint=f"'{flag}'") from None


def compare_command(
    dataset: Annotated[Optional[str], typer.Option(
        "--dataset", "-d", metavar="NAME", rich_help_panel=_IN,
        help="An embedded dataset (`coreset datasets`), e.g. digits-lt, zipf_hard, mnist1d_lt.")] = None,
    embeddings: Annotated[Optional[Path], typer.Option(
        "--embeddings", metavar="X.npy", rich_help_panel=_IN,
        help="Training embeddings (instead of --dataset); needs --labels, --test-embeddings, --test-labels.")] = None,
    labels: Annotated[Optional[Path], typer.Option(
        "--labels", metavar="y.npy", rich_help_panel=_IN, help="Training labels, one per row of --embeddings.")] = None,
    test_embeddings: Annotated[Optional[Path], typer.Option(
        "--test-embeddings", metavar="PATH", rich_help_panel=_IN, help="Held-out embeddings.")] = None,
    test_labels: Annotated[Optional[Path], typer.Option(
        "--test-labels", metavar="PATH", rich_help_panel=_IN, help="Held-out labels.")] = None,
    label_noise: Annotated[float, typer.Option(
        "--label-noise", metavar="SHARE", rich_help_panel=_IN,
        help="Share of training labels flipped, in [0, 1) (the test split stays clean).")] = 0.0,
    noise_model: Annotated[str, typer.Option(
        "--noise-model", metavar="symmetric|confusable", rich_help_panel=_IN,
        help="Flip to a uniformly random other class, or to the class with the nearest centroid.")] = "symmetric",
    duplicates: Annotated[float, typer.Option(
        "--duplicates", metavar="SHARE", rich_help_panel=_IN,
        help="Share of training rows replaced by near-copies of rows of their class (head-heavy), in [0, 1).")] = 0.0,
    methods: Annotated[str, typer.Option(
        "--methods", "-m", metavar="A,B,C", rich_help_panel=_GRID,
        help="Comma-separated method names, or `all` (see docs/compare.md).")] =
        "full,full_balanced,full_equal_compute,random,random_budget:tempered,facility_location:tempered,"
        "facility_location:tempered+weighted",
    fractions: Annotated[str, typer.Option(
        "--fractions", metavar="F,F", rich_help_panel=_GRID, help="Subset fractions, each in (0, 1].")] = "0.1,0.3",
    seeds: Annotated[str, typer.Option(
        "--seeds", metavar="S,S", rich_help_panel=_GRID, help="Seeds (initial model, order, selection).")] = "0,1,2",
    model: Annotated[str, typer.Option(
        "--model", metavar="linear|mlp|cnn2d|cnn1d", rich_help_panel=_TRAIN,
        help="linear, mlp (d -> 128 -> C), cnn2d (square images, d = side^2) or cnn1d (d-point signals).")] = "linear",
    standardize: Annotated[bool, typer.Option(
        "--standardize/--no-standardize", rich_help_panel=_TRAIN,
        help="Scale each feature by the training split's mean and std (off: raw values, e.g. for the CNNs).")] = True,
    augment: Annotated[str, typer.Option(
        "--augment", metavar="auto|image|signal|mixup", rich_help_panel=_TRAIN,
        help="Augmenter of the +aug methods; auto: image for cnn2d, signal for cnn1d, mixup otherwise.")] = "auto",
    epochs: Annotated[int, typer.Option("--epochs", metavar="N", rich_help_panel=_TRAIN, help="Epochs per cell.")] = 20,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", metavar="N", rich_help_panel=_TRAIN, help="Batch size.")] = 32,
    lr: Annotated[float, typer.Option("--lr", metavar="LR", rich_help_panel=_TRAIN, help="Learning rate.")] = 0.05,
    optimizer: Annotated[str, typer.Option(
        "--optimizer", metavar="sgd|adam", rich_help_panel=_TRAIN, help="sgd (momentum 0.9) or adam.")] = "sgd",
    lr_schedule: Annotated[str, typer.Option(
        "--lr-schedule", metavar="constant|linear|cosine|onecycle", rich_help_panel=_TRAIN,
        help="Learning-rate schedule, sized by each run's own steps (a 10% schedule decays over its short run).")
    ] = "constant",
    select_on: Annotated[str, typer.Option(
        "--select-on", metavar="inputs|proxy", rich_help_panel=_TRAIN,
        help="What the selection methods see: the inputs, or a proxy's features (the model trained "
             "--proxy-epochs on every row, its cost counted; needs a model with a hidden layer).")] = "inputs",
    proxy_epochs: Annotated[int, typer.Option(
        "--proxy-epochs", metavar="N", rich_help_panel=_TRAIN, help="Epochs of the proxy (--select-on proxy).")] = 10,
    breadth_threshold: Annotated[float, typer.Option(
        "--breadth-threshold", metavar="T", rich_help_panel=_TRAIN,
        help="Breadth counts the classes with test accuracy >= this.")] = 0.5,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", metavar="DIR", rich_help_panel=_OUT,
        help="Folder for results.csv/json, summary.csv, plots; finished cells there are skipped.")] = None,
    plot_dir: Annotated[Optional[Path], typer.Option(
        "--plot-dir", metavar="DIR", rich_help_panel=_OUT, help="Write the PNG plots here instead of --out.")] = None,
    no_plots: Annotated[bool, typer.Option("--no-plots", rich_help_panel=_OUT, help="Skip the plots.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", rich_help_panel=_OUT, help="No progress bar or table; only errors on stderr.")] = False,
    debug: DebugFlag = False,
):
    """Compare training on full data, baselines and coresets: fractions x methods x seeds.

    Per cell: balanced, head/torso/tail and worst-class accuracy, breadth,
    compute. Results go to --out (resumable); the summary table (mean ± std
    over seeds) and, per compute level, the winner with the methods within
    noise of it go to stdout, progress to stderr.
    """
    if out is None:
        raise typer.BadParameter("give an output folder", param_hint="'--out'")
    files = (embeddings, labels, test_embeddings, test_labels)
    if dataset is not None and any(f is not None for f in files):
        raise typer.BadParameter("give --dataset or --embeddings/--labels/--test-embeddings/--test-labels, not both",
                                 param_hint="'--dataset'")
    if dataset is None and any(f is None for f in files):
        raise typer.BadParameter("give --dataset NAME, or all of --embeddings, --labels, --test-embeddings and "
                                 "--test-labels", param_hint="'--dataset' / '--embeddings'")
    frac_list = _numbers(fractions, "--fractions", float, "0.1,0.3")
    seed_list = _numbers(seeds, "--seeds", int, "0,1,2")
    err = stderr_console()
    with cli_errors(debug), logging_to_stderr(err, debug=debug, quiet=quiet):
        import numpy as np

        if out.exists() and not out.is_dir():
            fail(f"--out {str(out)!r} is a file; give a folder")
        if out.is_dir():  # the files written (and resumed from) there: the check every write runs, up front
            from .._atomic import check_output_path

            for name in ("results.csv", "results.json", "summary.csv"):
                check_output_path(out / name, param="--out")
        from ..pipelines._compare_augment import parse_methods

        parse_methods(methods)  # names first: a typo fails before any data is read
        from ..data._noise import noise_settings

        noise_settings(label_noise, noise_model, duplicates)
        from ..pipelines._compare_augment import resolve_augment

        resolve_augment(augment, model)
        from .._registry import check_name
        from ..pipelines._compare_proxy import SELECT_ON
        from ..pipelines._train import LR_SCHEDULES

        check_name("--lr-schedule", lr_schedule, LR_SCHEDULES)
        check_name("--select-on", select_on, SELECT_ON)
        if dataset is not None:
            from ..data import load_dataset

            data, name = load_dataset(dataset), None
        else:
            from ..data._readers import read_embeddings, read_labels

            X = np.asarray(read_embeddings(embeddings)[0])
            Xt = np.asarray(read_embeddings(test_embeddings)[0])
            data, name = (X, read_labels(labels), Xt, read_labels(test_labels)), embeddings.stem
        from ..pipelines import compare

        reporter = ProgressReporter(err, enabled=not quiet and err.is_terminal)
        with reporter:
            res = compare(data, methods=methods, fractions=frac_list, seeds=seed_list, model=model, epochs=epochs,
                          batch_size=batch_size, lr=lr, optimizer=optimizer, breadth_threshold=breadth_threshold,
                          lr_schedule=lr_schedule, select_on=select_on, proxy_epochs=proxy_epochs,
                          out=out, plot_dir=plot_dir, plots=not no_plots, name=name, label_noise=label_noise,
                          noise_model=noise_model, duplicates=duplicates, augment=augment, standardize=standardize,
                          callback=reporter.callback if reporter.enabled else None)
    if quiet:
        return
    from rich.table import Table

    cfg = res.config
    if cfg.get("label_noise") or cfg.get("duplicates"):
        flips = f"label noise {cfg['label_noise']:g} ({cfg['noise_model']})" if cfg.get("label_noise") else ""
        copies = f"near-duplicates {cfg['duplicates']:g}" if cfg.get("duplicates") else ""
        training = "training split: " + ", ".join(p for p in (flips, copies) if p)
    else:
        training = "clean training split"
    t = Table(box=None, pad_edge=False, title=f"{cfg['dataset']}: {training}", title_justify="left")
    for col in ("method", "fraction", "balanced acc.", "worst-class acc.", "tail acc.", "breadth", "compute"):
        t.add_column(col, no_wrap=True)

    def pm(s, k):
        return "-" if s[f"{k}_mean"] is None else f"{s[f'{k}_mean']:.3f} ± {s[f'{k}_std']:.3f}"

    for s in res.summary:
        t.add_row(s["method"], f"{s['fraction']:g}", pm(s, "balanced_accuracy"), pm(s, "worst_class_accuracy"),
                  pm(s, "tail_accuracy"), f"{s['breadth_mean']:.1f}", f"{s['total_compute_mean']:,.0f}")
    con = stdout_console()
    if not con.is_terminal:  # piped: do not truncate to 80 columns
        con.width = 200
    con.print(t)
    con.print("\nWhat to use: the best balanced accuracy per compute level (fraction; 1 = every row every epoch), "
              "mean ± std over seeds; within noise: difference of means <= the larger std")
    w = Table(box=None, pad_edge=False)
    for col in ("fraction", "winner", "balanced acc.", "within noise of it"):
        w.add_column(col, no_wrap=col != "within noise of it")
    for v in res.winners():
        w.add_row(f"{v.fraction:g}", v.method, f"{v.mean:.3f} ± {v.std:.3f}",
                  ", ".join(f"{m} {a:.3f} ± {sd:.3f}" for m, a, sd in v.within_noise) or "-")
    con.print(w)
    err.print(f"wrote {', '.join(sorted(res.files.values()))}")
