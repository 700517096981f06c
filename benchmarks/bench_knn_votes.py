"""The kNN label votes on the cheap cell search (``build_knn(..., effort="fast")``,
what ``label_consistency`` / ``label_filter="knn"`` use above 20,000 rows) against
the graph search (``effort="full"``, before) and brute force (docs/benchmarks.md,
"Label filter and CCS overhead"). Seeded; results in results/knn-votes-<machine>.json.

``agreement``
    at 100,000 rows, 10% symmetric label noise: ``make_zipf(100_000, 128,
    n_classes=100)`` (the speed benchmark's data) and the same with zipf_hard's
    overlapping geometry (``class_sep=0.12, mode_spread=0.3, n_modes=4``) in 64
    and 128 dimensions; search seeds 0-2. Per search: CPU seconds, the share of
    rows whose (own, best other) votes equal brute force's, the share whose
    suspect flag (threshold 1) equals brute force's, and the flags' precision /
    recall against the flipped rows.
``datasets``
    digits-lt, mnist1d_lt, zipf_hard, text_lt (``label_noise=0.1``, seed 0):
    all at most 20,000 rows, where the votes stay exact; the fast search
    forced on them (``exact=False``) shows what it would do there.
``ccs``
    CCS (``method="ccs"``, its default score, equal budgets, 10%) at 100,000
    rows of the overlapping geometry (64 dimensions) with 10% flipped labels,
    the votes on each search; logistic regression on the picks, balanced
    accuracy on a validation split carved from the training rows (20%) and on
    a clean balanced test split; seeds 0-2.

    python benchmarks/bench_knn_votes.py all
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine_info, write_json  # noqa: E402

from coreset.data import load_dataset, make_zipf  # noqa: E402
from coreset.selectors import _label_noise  # noqa: E402
from coreset.similarity import build_knn  # noqa: E402

HARD = dict(n_classes=100, s=1.1, n_modes=4, class_sep=0.12, mode_spread=0.3)
SETS = {"zipf-128 (speed data)": (128, dict(n_classes=100)), "overlapping-64": (64, HARD),
        "overlapping-128": (128, HARD)}


def votes(idx, codes):
    """(own, best other) votes of each row's neighbours ``idx[:, 1:]`` (as ``_label_noise._knn_votes``)."""
    labels = codes[idx[:, 1:]]
    own = (labels == codes[:, None]).sum(axis=1)
    others = np.where(labels == codes[:, None], -1, labels)
    others.sort(axis=1)
    run = np.ones(codes.size, np.int64)
    best = (others[:, 0] >= 0).astype(np.int64)
    for j in range(1, others.shape[1]):
        run = np.where(others[:, j] == others[:, j - 1], run + 1, 1)
        best = np.maximum(best, np.where(others[:, j] >= 0, run, 0))
    return own, best


def _flags(v):
    return (v[0] + 0.5) / (v[1] + 0.5) < 1.0


def _compare(v, ref, flipped) -> dict:
    f, fr = _flags(v), _flags(ref)
    tp = int((f & flipped).sum())
    return {"same_votes": float(((v[0] == ref[0]) & (v[1] == ref[1])).mean()), "same_flags": float((f == fr).mean()),
            "precision": tp / max(int(f.sum()), 1), "recall": tp / max(int(flipped.sum()), 1)}


def _codes(y):
    return np.unique(y, return_inverse=True)[1].astype(np.int64).ravel()


def agreement(seeds) -> list[dict]:
    rows = []
    for name, (d, kw) in SETS.items():
        ds = make_zipf(100_000, d, label_noise=0.1, random_state=0, **kw)
        X, codes, flipped = ds.X, _codes(ds.y), np.asarray(ds.flipped, bool)
        build_knn(X[:30_000], 11, exact=False, effort="fast")  # warm-up: numba
        t = time.process_time()
        exact = votes(build_knn(X, 11, exact=True)[0], codes)
        rows.append({"data": name, "search": "exact", "seed": 0, "cpu_s": time.process_time() - t,
                     **_compare(exact, exact, flipped)})
        for effort in ("full", "fast"):
            for seed in seeds:
                t = time.process_time()
                idx, _, info = build_knn(X, 11, random_state=seed, effort=effort)
                rows.append({"data": name, "search": effort, "seed": seed, "cpu_s": time.process_time() - t,
                             "n_clusters": info["n_clusters"], "n_probe": info["n_probe"],
                             **_compare(votes(idx, codes), exact, flipped)})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def datasets() -> list[dict]:
    rows = []
    for name in ("digits-lt", "mnist1d_lt", "zipf_hard", "text_lt"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = load_dataset(name, random_state=0, label_noise=0.1)
        codes, flipped = _codes(ds.y), np.asarray(ds.flipped, bool)
        default = votes(build_knn(ds.X, 11, random_state=0)[0], codes)  # exact at these sizes
        for label, kw in (("default (exact)", {}), ("full, forced", dict(exact=False, effort="full")),
                          ("fast, forced", dict(exact=False, effort="fast"))):
            v = votes(build_knn(ds.X, 11, random_state=0, **kw)[0], codes) if kw else default
            rows.append({"dataset": name, "n": int(codes.size), "search": label, **_compare(v, default, flipped)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def ccs(seeds) -> list[dict]:
    import bench_ccs

    import coreset

    rows = []
    for seed in seeds:
        ds = make_zipf(100_000, 64, n_test_per_class=50, label_noise=0.1, random_state=seed, **HARD)
        tr, va = bench_ccs.carve_validation(ds.y, 0.2, np.random.default_rng(1000 + seed))
        X, y = ds.X[tr], ds.y[tr]
        for effort in ("full", "fast"):
            _label_noise.KNN_EFFORT = effort
            try:
                t = time.process_time()
                sel = coreset.select(X, fraction=0.1, y=y, method="ccs", class_budget="equal", random_state=seed)
                secs = time.process_time() - t
            finally:
                _label_noise.KNN_EFFORT = "fast"
            val, test = bench_ccs.fit_eval(X[sel.indices], y[sel.indices], ds.X[va], ds.y[va], ds.X_test, ds.y_test)
            rows.append({"seed": seed, "search": effort, "n": int(y.size), "val": val, "test": test, "cpu_s": secs,
                         "flipped_picked": float(np.asarray(ds.flipped, bool)[tr][sel.indices].mean())})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("section", choices=("agreement", "datasets", "ccs", "all"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--machine", default=None)
    a = ap.parse_args(argv)
    info = machine_info(a.machine)
    path = RESULTS / f"knn-votes-{info['name']}.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    result["machine"] = info
    for s in (("agreement", "datasets", "ccs") if a.section == "all" else (a.section,)):
        t = time.perf_counter()
        res = {"rows": agreement(a.seeds) if s == "agreement" else datasets() if s == "datasets" else ccs(a.seeds)}
        res["seconds"] = time.perf_counter() - t
        result[s] = res
        write_json(path, result)
    print("wrote", path)


if __name__ == "__main__":
    main()
