"""CCS (coverage over difficulty) against random and facility location with the same class budget.

For each dataset (zipf_hard, digits-lt), condition (clean; 10% of the
training labels flipped to a random other class, symmetric, seeded, the test
split left clean), seed (0, 1, 2: the data draw / split, the validation carve
and the selection) and fraction (10%, 30% of the training rows):

* a validation split is carved from the training data (20% of each class,
  floor; classes under 5 rows give none); selection and training see the rest;
* methods, all with ``class_budget="equal"``: random, facility location
  (``method="submodular"``), and CCS over a grid of scores (knn_density,
  label_consistency, fl_gain, centroid_distance, and el2n from
  ``coreset.pipelines.compute_scores`` on the selection rows, passed as
  ``scores=``) x beta (0, 0.1, 0.2, 0.3, 0.4, auto), 50 strata;
* a scikit-learn LogisticRegression (max_iter=500, unweighted) is trained on
  each subset and scored by balanced accuracy on the validation split and on
  the test split; ``full_balanced`` (all selection rows, class_weight=
  "balanced") as the reference.

The CCS setting reported per (dataset, condition, fraction) is the one with
the best mean *validation* balanced accuracy over the seeds; the default
setting is the one with the best mean validation accuracy over all cells.
Test numbers are only read for those. Writes results/ccs-<machine>.json and
prints the tables (markdown) for docs/ccs.md.

    python benchmarks/bench_ccs.py                 # ~10 minutes on 2 shared cores
    python benchmarks/bench_ccs.py --seeds 0 --datasets digits-lt   # a quick look
    python benchmarks/bench_ccs.py --betas 0.5 0.6 --merge results/ccs-<machine>.json   # widen the grid
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine_info, write_json  # noqa: E402

import coreset  # noqa: E402
from coreset.data import load_dataset  # noqa: E402

SCORES = ("knn_density", "label_consistency", "fl_gain", "centroid_distance", "el2n")
BETAS = (0.0, 0.1, 0.2, 0.3, 0.4, "auto")


def flip_labels(y, rate, rng):
    """Symmetric noise: ``rate`` of the rows get a uniformly random *other* label."""
    y = y.copy()
    classes = np.unique(y)
    rows = rng.choice(y.size, size=int(round(rate * y.size)), replace=False)
    for r in rows:
        y[r] = rng.choice(classes[classes != y[r]])
    return y, rows


def carve_validation(y, share, rng):
    """(train rows, validation rows): floor(share * n_c) rows of each class to validation."""
    val = []
    for c in np.unique(y):
        m = rng.permutation(np.flatnonzero(y == c))
        val.append(m[:int(np.floor(share * m.size))])
    val = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(y.size), val), val


def balanced_accuracy(y_true, y_pred):
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]))


def fit_eval(X, y, Xv, yv, Xt, yt, class_weight=None):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = LogisticRegression(max_iter=500, class_weight=class_weight).fit(X, y)
    return balanced_accuracy(yv, m.predict(Xv)), balanced_accuracy(yt, m.predict(Xt))


def run_cell(name, noise, seed, fractions, scores=SCORES, betas=BETAS):
    ds = load_dataset(name, random_state=seed)
    rng = np.random.default_rng(1000 + seed)
    y_all = ds.y
    if noise:
        y_all, _ = flip_labels(ds.y, noise, rng)
    tr, va = carve_validation(y_all, 0.2, rng)
    X, y, Xv, yv = ds.X[tr], y_all[tr], ds.X[va], y_all[va]
    rows = []
    acc_v, acc_t = fit_eval(X, y, Xv, yv, ds.X_test, ds.y_test, class_weight="balanced")
    for f in fractions:
        rows.append(dict(method="full_balanced", fraction=f, val=acc_v, test=acc_t, seconds=0.0))
    from coreset.pipelines import compute_scores

    el2n = compute_scores(X, y, "el2n", random_state=seed, device="cpu")
    for f in fractions:
        def run(method, label, **kw):
            t = time.perf_counter()
            sel = coreset.select(X, fraction=f, y=y, method=method, class_budget="equal", random_state=seed, **kw)
            secs = time.perf_counter() - t
            v, te = fit_eval(X[sel.indices], y[sel.indices], Xv, yv, ds.X_test, ds.y_test)
            rows.append(dict(method=label, fraction=f, val=v, test=te, seconds=secs))

        run("random", "random")
        run("submodular", "facility_location")
        for score in scores:
            for beta in betas:
                kw = dict(scores=el2n) if score == "el2n" else dict(score=score)
                run("ccs", f"ccs:{score}:{beta}", beta=beta, **kw)
    for r in rows:
        r.update(dataset=name, noise=noise, seed=seed)
    return rows


def summarise(rows):
    import collections

    cells = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in rows:
        cells[(r["dataset"], r["noise"], r["fraction"])][r["method"]].append(r)
    mean = lambda rs, k: float(np.mean([r[k] for r in rs]))  # noqa: E731
    std = lambda rs, k: float(np.std([r[k] for r in rs]))  # noqa: E731
    ccs_names = sorted({r["method"] for r in rows if r["method"].startswith("ccs:")})
    # the default: best mean validation accuracy over every cell
    overall = {m: np.mean([mean(c[m], "val") for c in cells.values()]) for m in ccs_names}
    default = max(ccs_names, key=lambda m: overall[m])
    out = {"default": default, "overall_val": overall, "cells": []}
    for key, c in sorted(cells.items()):
        best = max(ccs_names, key=lambda m: mean(c[m], "val"))
        entry = dict(dataset=key[0], noise=key[1], fraction=key[2], best_on_val=best)
        for label, m in (("full_balanced", "full_balanced"), ("random", "random"),
                         ("facility_location", "facility_location"), ("ccs_default", default), ("ccs_val_best", best)):
            entry[label] = dict(method=m, test=mean(c[m], "test"), test_std=std(c[m], "test"), val=mean(c[m], "val"),
                                seconds=mean(c[m], "seconds"))
        out["cells"].append(entry)
    return out


def print_tables(summary):
    print(f"default on validation: {summary['default']}")
    print("| dataset | labels | fraction | full_balanced | random (equal) | facility location (equal) | "
          f"CCS default ({summary['default'][4:]}) | CCS best on validation (setting) |")
    print("|---|---|---|---|---|---|---|---|")
    for e in summary["cells"]:
        f = lambda k: f"{100 * e[k]['test']:.1f} ± {100 * e[k]['test_std']:.1f}"  # noqa: E731
        labels = "clean" if not e["noise"] else f"{e['noise']:.0%} flipped"
        print(f"| {e['dataset']} | {labels} | {e['fraction']:.0%} | {f('full_balanced')} | {f('random')} | {f('facility_location')} | "
              f"{f('ccs_default')} | {f('ccs_val_best')} ({e['best_on_val'][4:]}) |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["zipf_hard", "digits-lt"])
    ap.add_argument("--noise", nargs="+", type=float, default=[0.0, 0.1])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.1, 0.3])
    ap.add_argument("--scores", nargs="+", default=list(SCORES))
    ap.add_argument("--betas", nargs="+", default=[str(b) for b in BETAS])
    ap.add_argument("--merge", nargs="+", default=[], metavar="JSON",
                    help="earlier result files whose rows join these (same datasets, seeds and splits: a wider grid)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    betas = [b if b == "auto" else float(b) for b in args.betas]
    rows = []
    t0 = time.perf_counter()
    for name in args.datasets:
        for noise in args.noise:
            for seed in args.seeds:
                rows += run_cell(name, noise, seed, args.fractions, args.scores, betas)
                print(f"{name} noise={noise} seed={seed} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    seen = {(r["dataset"], r["noise"], r["seed"], r["fraction"], r["method"]) for r in rows}
    for path in args.merge:  # the baselines are recomputed here (seeded: the same numbers); keep one copy
        for r in json.loads(Path(path).read_text())["rows"]:
            if (r["dataset"], r["noise"], r["seed"], r["fraction"], r["method"]) not in seen:
                rows.append(r)
    summary = summarise(rows)
    info = machine_info()
    out = Path(args.out) if args.out else RESULTS / f"ccs-{info['name']}.json"
    write_json(out, {"machine": info, "args": vars(args), "summary": summary, "rows": rows})
    print_tables(summary)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
