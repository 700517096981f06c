"""``compare``: fractions x methods x seeds of training on a subset (or on the
full data, with a class-balanced loss, or at equal compute) of a long-tailed
dataset, with per-class metrics, resumable CSV/JSON results, a mean ± std
summary and plots. See docs/compare.md."""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._validation import check_float, check_int
from ..exceptions import UnknownNameError, ValidationError
from ._compare_augment import parse_methods
from ._compare_methods import make_schedule, objective_params
from ._compare_proxy import select_rows
from ._compare_resume import AUGMENT_COLUMNS, COLUMNS, METRICS, NOISE_COLUMNS, TIMING  # the rows' columns

__all__ = ["compare", "CompareResult", "cell_metrics", "class_groups", "prepare_data", "METRICS", "COLUMNS"]

log = logging.getLogger(__name__)


@dataclass
class CompareResult:
    """``rows``: one dict per cell (``COLUMNS`` plus ``per_class_accuracy``);
    ``summary``: one dict per (dataset, method, fraction) with ``<metric>_mean``
    and ``<metric>_std`` over seeds; ``class_counts``: training rows per class;
    ``files``: what was written under ``out``."""

    rows: list
    summary: list
    class_counts: list
    config: dict
    files: dict = field(default_factory=dict)

    def to_frame(self, summary: bool = False):
        """The rows (or the summary) as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover
            from ..exceptions import BackendUnavailableError

            raise BackendUnavailableError("to_frame needs pandas: pip install pandas") from None
        if summary:
            return pd.DataFrame(self.summary)
        return pd.DataFrame([{c: r.get(c) for c in COLUMNS} for r in self.rows])

    def winners(self, metric: str = "balanced_accuracy") -> list:
        """Per dataset and compute level (fraction; 1.0 for the methods that
        train on every row), the method with the best mean ``metric``, its std
        over seeds, and the methods within noise of it (difference of means
        <= the larger std): ``coreset.pipelines._compare_verdict.winners``."""
        from ._compare_verdict import winners

        return winners(self.summary, metric)


# ---------------------------------------------------------------- metrics
def class_groups(class_counts):
    """(head, torso, tail): the classes sorted by training count (largest
    first, ties by label) and split into thirds, head first; with C % 3 != 0
    the head, then the torso, take the extra classes (``np.array_split``)."""
    counts = np.asarray(class_counts)
    order = np.lexsort((np.arange(counts.size), -counts))
    return tuple(np.array_split(order, 3))


def cell_metrics(per_class_accuracy, class_counts, threshold=0.5) -> dict:
    """Balanced, head / torso / tail, worst-class accuracy and breadth from
    per-class test accuracies (NaN: class absent from the test split, ignored)."""
    acc = np.asarray(per_class_accuracy, dtype=np.float64)
    head, torso, tail = class_groups(class_counts)

    def mean(ix):
        v = acc[ix]
        v = v[~np.isnan(v)]
        return float(v.mean()) if v.size else float("nan")

    ok = acc[~np.isnan(acc)]
    return dict(balanced_accuracy=float(ok.mean()), head_accuracy=mean(head), torso_accuracy=mean(torso),
                tail_accuracy=mean(tail), worst_class_accuracy=float(ok.min()),
                breadth=int((ok >= threshold).sum()))


# ---------------------------------------------------------------- inputs
def prepare_data(data, name=None):
    """(name, X, y, X_test, y_test, class_values) from a registered dataset
    name, a ``coreset.data.Dataset``, or a tuple ``(X, y, X_test, y_test)``;
    labels are mapped to 0..C-1 in sorted order of the training labels."""
    from .._validation import as_embeddings, check_labels

    if isinstance(data, str):
        from ..data import load_dataset

        data = load_dataset(data)
    if hasattr(data, "X") and hasattr(data, "y_test"):
        name = name or data.name
        if data.X_test is None:
            raise ValidationError(f"dataset {data.name!r} has no test split; compare needs one")
        data = (data.X, data.y, data.X_test, data.y_test)
    if not isinstance(data, (tuple, list)) or len(data) != 4:
        raise ValidationError("data must be a dataset name, a coreset.data.Dataset or a tuple (X, y, X_test, y_test); "
                              f"got {type(data).__name__}")
    X, y, Xt, yt = data
    X = as_embeddings(X, name="X")
    Xt = as_embeddings(Xt, name="X_test")
    if np.ndim(y) != 1 or np.shape(y)[0] != X.shape[0]:
        raise ValidationError(f"labels and embeddings have different lengths: y has {np.size(y)} labels, "
                              f"X has {X.shape[0]} rows")
    if np.ndim(yt) != 1 or np.shape(yt)[0] != Xt.shape[0]:
        raise ValidationError(f"test labels and test embeddings have different lengths: y_test has {np.size(yt)} "
                              f"labels, X_test has {Xt.shape[0]} rows")
    if Xt.shape[1] != X.shape[1]:
        raise ValidationError(f"X_test must have the training data's {X.shape[1]} columns; got {Xt.shape[1]}")
    y = check_labels(y, X.shape[0], name="y")
    yt = check_labels(yt, Xt.shape[0], name="y_test")
    classes = np.unique(y)
    missing = np.setdiff1d(np.unique(yt), classes)
    if missing.size:
        shown = ", ".join(str(v) for v in missing[:10]) + (" ..." if missing.size > 10 else "")
        raise ValidationError(f"the test split has {missing.size} class(es) absent from the training labels: {shown}")
    if classes.size < 2:
        raise ValidationError(f"y must hold at least 2 classes; got {classes.size}")
    return (name or "custom", np.ascontiguousarray(X, dtype=np.float32), np.searchsorted(classes, y).astype(np.int64),
            np.ascontiguousarray(Xt, dtype=np.float32), np.searchsorted(classes, yt).astype(np.int64), classes)


def _check_grid(values, name, kind):
    if isinstance(values, (int, float, np.integer, np.floating)):
        values = [values]
    values = list(values)
    if not values:
        raise ValidationError(f"{name} must hold at least one value; got an empty list")
    if kind == "fraction":
        out = [check_float(v, "fractions", low=0.0, high=1.0, low_open=True) for v in values]
    else:
        out = [check_int(v, "seeds", low=0) for v in values]
    return list(dict.fromkeys(out))


def _model_factory(model):
    from ._models import MODELS  # linear, mlp, cnn2d (d = side * side pixels), cnn1d (d-point signals)

    if callable(model) and not isinstance(model, str):
        return model
    if isinstance(model, str) and model in MODELS:
        return MODELS[model]
    raise UnknownNameError("model", model, tuple(MODELS))


# ---------------------------------------------------------------- one cell
def _run_cell(spec, fraction, seed, ctx):
    import torch

    from ._train import evaluate, train

    X, y, C = ctx["X"], ctx["y"], ctx["n_classes"]
    n = y.size
    k = max(1, int(round(fraction * n)))
    if spec.kind == "augment":  # full data + augmented copies of some rows (_compare_augment)
        from ._compare_augment import plan_augment

        chosen, schedule, epochs = plan_augment(spec, fraction, seed, ctx, k)
    else:
        chosen = select_rows(spec, seed, ctx, k)
        schedule, epochs = make_schedule(spec, fraction, n, ctx["epochs"], k, chosen=chosen)
    loss = spec.loss  # "+la" / "+bs": matched by train to the class prior of what it trains on
    if spec.kind == "full_balanced" or getattr(spec, "base", None) == "full_balanced":
        counts = np.bincount(y, minlength=C).astype(np.float64)
        w = np.where(counts > 0, n / (C * np.maximum(counts, 1)), 0.0)
        loss = torch.nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float32), reduction="none")
    torch.manual_seed(seed)
    net = ctx["factory"](X.shape[1], C)
    if not isinstance(net, torch.nn.Module):
        raise ValidationError(f"model(n_features, n_classes) must return a torch.nn.Module; got {type(net).__name__}")
    selection = None
    if chosen.indices is not None:
        from ..selection import Selection

        w = chosen.weights if chosen.weights is not None else np.ones(chosen.indices.size)
        selection = Selection(indices=chosen.indices, weights=w, gains=np.zeros(chosen.indices.size))
    cb = ctx["callback"]
    res = train(net, ctx["train_set"], selection=selection, schedule=schedule, epochs=epochs,
                batch_size=ctx["batch_size"], optimizer=ctx["optimizer"], lr=ctx["lr"], loss=loss,
                lr_scheduler=ctx["lr_schedule"],
                normalize=spec.normalize, device="cpu", random_state=seed,
                callback=(lambda s, d, t: cb(s, d, t)) if cb else None)
    ev = evaluate(net, ctx["test_set"], device="cpu", n_classes=C)
    m = cell_metrics(ev.per_class_accuracy, ctx["class_counts"], ctx["threshold"])
    sel_seconds = chosen.seconds + res.selection_seconds
    forward = chosen.forward + res.forward_samples
    row = dict(dataset=ctx["name"], method=spec.name, fraction=1.0 if spec.full_data else float(fraction),
               seed=int(seed), **m, accuracy=ev.accuracy,
               n_train_rows=int(n if chosen.indices is None else chosen.indices.size),
               sample_gradients=int(res.sample_gradients), selection_gradients=int(chosen.gradients),
               selection_forward=int(forward),
               total_compute=float(res.sample_gradients + chosen.gradients + forward / 3.0),
               selection_seconds=float(sel_seconds), training_seconds=float(res.training_seconds),
               total_seconds=float(sel_seconds + res.training_seconds),
               augment_gradients=int(getattr(schedule, "augment_gradients", 0)),
               per_class_accuracy=[None if np.isnan(a) else float(a) for a in ev.per_class_accuracy])
    return row


# ---------------------------------------------------------------- outputs
def _key(row):
    return (row["dataset"], row["method"], round(float(row["fraction"]), 10), int(row["seed"]))


def _write_csv(path, rows, columns):
    from .._io import atomic_write

    with atomic_write(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in columns})


def _plain(value):
    """``value`` with numpy scalars made plain and NaN / inf as None (standard JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _write_json(path, obj):
    from .._io import atomic_write

    with atomic_write(path) as tmp:
        Path(tmp).write_text(json.dumps(_plain(obj), indent=1) + "\n")


def summarize(rows) -> list:
    """Mean and std (ddof=0) over seeds of every metric, per (dataset, method, fraction)."""
    groups = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["method"], float(r["fraction"])), []).append(r)
    out = []
    for (ds, method, frac), rs in groups.items():
        s = dict(dataset=ds, method=method, fraction=frac, n_seeds=len(rs))
        for mname in METRICS + AUGMENT_COLUMNS:
            v = np.array([np.nan if r.get(mname) is None else r[mname] for r in rs], dtype=np.float64)
            ok = v[~np.isnan(v)]
            s[f"{mname}_mean"] = float(ok.mean()) if ok.size else None
            s[f"{mname}_std"] = float(ok.std()) if ok.size else None
        pcs = np.array([[np.nan if a is None else a for a in r["per_class_accuracy"]] for r in rs], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            s["per_class_accuracy_mean"] = [None if np.isnan(a) else float(a) for a in np.nanmean(pcs, axis=0)] \
                if np.isfinite(pcs).any() else []
        out.append(s)
    return out


SUMMARY_COLUMNS = ("dataset", "method", "fraction", "n_seeds") + tuple(
    f"{m}_{s}" for m in METRICS + AUGMENT_COLUMNS for s in ("mean", "std"))


# ---------------------------------------------------------------- driver
def compare(data, *, methods=("full", "full_balanced", "full_equal_compute", "random", "random_budget:tempered",
                              "facility_location:tempered", "facility_location:tempered+weighted"),
            fractions=(0.1, 0.3), seeds=(0, 1, 2), model="linear", epochs=20, batch_size=32, lr=0.05,
            optimizer="sgd", standardize=True, out=None, plots=True, plot_dir=None, callback=None,
            breadth_threshold=0.5, name=None, select_params=None, threads=1, label_noise=0.0,
            noise_model="symmetric", duplicates=0.0, augment="auto", augment_params=None,
            lr_schedule="constant", select_on="inputs", proxy_epochs=10) -> CompareResult:
    """Train ``model`` on each method's rows for every fraction and seed and
    measure it on the held-out split.

    ``data``: a registered dataset name (``coreset datasets``), a
    ``coreset.data.Dataset`` or ``(X, y, X_test, y_test)``. ``methods``: names
    from ``COMPARE_METHODS`` or ``"all"`` (docs/compare.md). ``model``:
    ``"linear"``, ``"mlp"`` (d -> 128 -> C) or ``f(n_features, n_classes) ->
    nn.Module``. Every cell trains ``epochs`` epochs (SGD momentum 0.9 unless
    ``optimizer="adam"``), batch ``batch_size``, seeded by the cell's seed
    (initial model, data order, random choices): the same call gives the same
    table (wall-time columns aside). ``standardize``: scale features by the
    training split's mean and std first. ``out``: a folder for results.csv /
    results.json (rewritten atomically after every cell; cells already there
    are skipped on a rerun), summary.csv and the PNG plots (``plot_dir``:
    elsewhere). ``callback(stage, done, total)``: stage ``"cells"`` after each
    cell, ``"train"`` per epoch. ``threads``: torch CPU threads during the run
    (restored after). ``select_params``: extra ``coreset.select`` arguments for
    the objective methods. ``label_noise`` (share of training labels flipped,
    ``noise_model`` "symmetric" or "confusable") and ``duplicates`` (share of
    training rows replaced by near-copies) corrupt the training split only,
    seeded by the dataset's seed (``coreset.data._noise``); they are recorded
    in ``config`` (when non-zero) and in every row. ``augment``: the augmenter
    of the ``+aug`` methods ("auto": image for ``cnn2d``, signal for
    ``cnn1d``, mixup otherwise; or "image", "signal", "mixup"), with
    ``augment_params`` overriding its default strength (``_compare_augment``;
    recorded in ``config`` when given). ``lr_schedule``: "constant" or a
    schedule of ``train.LR_SCHEDULES`` ("linear", "cosine", "onecycle"),
    each sized by the cell's own optimizer steps, so a 10% schedule decays
    over its own short run (recorded in ``config`` when not "constant").
    ``select_on``: what the selection methods see, the training inputs
    ("inputs") or the features of a proxy ("proxy": the model trained
    ``proxy_epochs`` on every row, its cost counted; ``_compare_proxy``),
    recorded in ``config`` when "proxy"."""
    import torch

    from ..data._noise import corrupt_arrays, noise_settings

    specs = parse_methods(methods)
    fractions = _check_grid(fractions, "fractions", "fraction")
    seeds = _check_grid(seeds, "seeds", "seed")
    epochs = check_int(epochs, "epochs", low=1)
    batch_size = check_int(batch_size, "batch_size", low=1)
    lr = check_float(lr, "lr", low=0.0, low_open=True)
    threshold = check_float(breadth_threshold, "breadth_threshold", low=0.0, high=1.0)
    threads = check_int(threads, "threads", low=1)
    noise_settings(label_noise, noise_model, duplicates)  # validated before any data is read
    from .._registry import check_name
    from ._train import LR_SCHEDULES

    check_name("lr_schedule", lr_schedule, LR_SCHEDULES)
    if optimizer not in ("sgd", "adam"):
        raise UnknownNameError("optimizer", optimizer, ("sgd", "adam"))
    factory = _model_factory(model)
    from ._compare_augment import augment_settings

    aug_kind, aug_params, aug_record = augment_settings(augment, augment_params, model, specs)
    if callback is not None and not callable(callback):
        raise ValidationError(f"callback must be callable(stage, done, total); got {type(callback).__name__}")
    dname, X, y, Xt, yt, classes = prepare_data(data, name)
    from ._compare_proxy import check_select_on

    proxy_epochs = check_select_on(select_on, proxy_epochs, factory, X.shape[1], int(classes.size))
    # realistic data: the training split only (anything carved from X, y later carries the same noise)
    X, y, y_true, noise = corrupt_arrays(data, X, y, classes, label_noise=label_noise, noise_model=noise_model,
                                         duplicates=duplicates)
    scale = None
    if standardize:
        mu, sd = X.mean(0), X.std(0)
        sd[sd == 0] = 1.0
        X, Xt = (X - mu) / sd, (Xt - mu) / sd
        scale = (mu, sd)  # augmenters work on the raw features
    C = int(classes.size)
    counts = np.bincount(y_true, minlength=C)  # true class sizes (head / torso / tail), noise or not
    config = dict(dataset=dname, model=model if isinstance(model, str) else getattr(model, "__name__", "callable"),
                  epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, standardize=bool(standardize),
                  breadth_threshold=threshold, select_params=dict(select_params or {}))
    if noise["label_noise"] or noise["duplicates"]:  # a clean run's config stays that of earlier versions
        config.update(noise)
    config.update(aug_record)  # only when augment / augment_params are not the defaults
    if lr_schedule != "constant":
        config["lr_schedule"] = lr_schedule
    if select_on != "inputs":
        config.update(select_on=select_on, proxy_epochs=proxy_epochs)
    out = None if out is None else Path(out)
    rows = []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        rows = _load_previous(out / "results.json", config, classes, counts)
    done = {_key(r) for r in rows}
    cells = []
    for seed in seeds:  # full-data methods once per seed; the others per fraction
        for spec in specs:
            for f in ([1.0] if spec.full_data else fractions):
                cells.append((spec, f, seed))
    ctx = dict(X=X, y=y, n_classes=C, name=dname, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
               lr_schedule=None if lr_schedule == "constant" else lr_schedule, select_on=select_on,
               proxy_epochs=proxy_epochs,
               factory=factory, threshold=threshold, class_counts=counts, callback=callback,
               select_params=select_params, scale=scale, augment=dict(kind=aug_kind, params=aug_params),
               train_set=torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
               test_set=torch.utils.data.TensorDataset(torch.from_numpy(Xt), torch.from_numpy(yt)))
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        pending = [c for c in cells if (dname, c[0].name, round(float(1.0 if c[0].full_data else c[1]), 10),
                                        int(c[2])) not in done]
        if pending:
            _warm_up(pending, ctx)
        for i, (spec, f, seed) in enumerate(cells):
            key = (dname, spec.name, round(float(1.0 if spec.full_data else f), 10), int(seed))
            if key not in done:
                t0 = time.perf_counter()
                row = {**_run_cell(spec, f, seed, ctx), **noise}
                rows.append(row)
                done.add(key)
                log.info("%s %s f=%s seed=%d: balanced %.4f (%.1f s)", dname, spec.name, f, seed,
                         row["balanced_accuracy"], time.perf_counter() - t0)
                if out is not None:
                    _save(out, rows, config, classes, counts)
            if callback is not None:
                callback("cells", i + 1, len(cells))
    finally:
        torch.set_num_threads(old_threads)
    order = {k: i for i, k in enumerate(_key(dict(dataset=dname, method=s.name, fraction=1.0 if s.full_data else f,
                                                  seed=sd)) for s, f, sd in cells)}
    mine = sorted((r for r in rows if _key(r) in order), key=lambda r: order[_key(r)])
    summary = summarize(mine)
    result = CompareResult(rows=mine, summary=summary, class_counts=counts.tolist(), config=config)
    if out is not None:
        _save(out, rows, config, classes, counts)
        _write_csv(out / "summary.csv", summarize(rows), SUMMARY_COLUMNS)
        result.files = {"results.csv": str(out / "results.csv"), "results.json": str(out / "results.json"),
                        "summary.csv": str(out / "summary.csv")}
        if plots:
            from ._compare_plots import write_plots

            pdir = Path(plot_dir) if plot_dir is not None else out
            pdir.mkdir(parents=True, exist_ok=True)
            result.files.update(write_plots(summarize(rows), counts, pdir, dname))
    return result


def _warm_up(pending, ctx):
    """Compile and load before timing: one short training run, and each
    objective once (numba) on a tiny class budget. Nothing is recorded."""
    from ..selectors import select
    import torch

    from ._train import train

    X, y, C = ctx["X"], ctx["y"], ctx["n_classes"]
    net = ctx["factory"](X.shape[1], C)
    rows = np.arange(min(y.size, 2 * ctx["batch_size"]))
    train(net, torch.utils.data.Subset(ctx["train_set"], rows.tolist()), epochs=1, batch_size=ctx["batch_size"],
          device="cpu", labels=y[rows])
    n_present = int((np.bincount(y, minlength=C) > 0).sum())
    for obj in dict.fromkeys(s.objective for s, _, _ in pending if s.kind == "objective"):
        select(X, n_select=n_present, y=y, method=obj, class_budget="equal", min_per_class=1,
               random_state=0, **objective_params(obj, ctx["select_params"]))


def _save(out, rows, config, classes, counts):
    _write_json(out / "results.json", dict(config=config, classes=classes.tolist(), class_counts=counts.tolist(),
                                           columns=list(COLUMNS), rows=rows))
    _write_csv(out / "results.csv", rows, COLUMNS)


def _load_previous(path, config, classes=None, counts=None) -> list:
    """The rows of an earlier run in the same folder (resume), every field
    checked (``_compare_resume``); refused when its configuration, classes or
    class sizes differ (its cells would not be comparable)."""
    from ._compare_resume import load_previous

    return load_previous(path, config, None if classes is None else classes.tolist(),
                         None if counts is None else counts.tolist())
