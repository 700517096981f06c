"""What the label filter and CCS add to ``coreset.select`` at 100,000 x 128
(docs/benchmarks.md, "Label filter and CCS overhead").

Sections (seeded; merged into results/select-overhead-<machine>.json):

``speed``
    ``make_zipf(100_000, 128, n_classes=100, label_noise=0.1, random_state=0)``
    (``--n-classes`` to vary), a warm-up on 5,000 rows, then ``--repeats``
    rounds; each round runs, in an order rotated from round to round:

    * ``off``: ``coreset.select(X, fraction=0.1, y=y, class_budget="equal",
      random_state=0, label_filter=None)``;
    * ``filter``: the same with the default label filter (``label_filter="auto"``);
    * ``ccs``: ``coreset.select(X, fraction=0.1, y=y, method="ccs",
      class_budget="equal", random_state=0)`` (its default score).

    Wall seconds, CPU seconds of this process (``time.process_time``: all its
    threads; less sensitive to other processes on a shared machine), the
    stage timings of ``Selection.meta``, the objective (facility location's
    value; CCS has none) and the share of the picks that are flipped rows are
    recorded beside each; the ratios ``filter / off`` and ``ccs / off`` are
    taken within each round (same load) and summarised by their median.
``quality``
    what the speed work must not make worse: the default filter's suspects
    against the flipped rows (precision / recall; ``find_label_suspects`` on
    ``load_dataset(name, label_noise=0.1, random_state=seed)`` for zipf_hard,
    digits-lt, mnist1d_lt, text_lt, seeds 0-2, as benchmarks/bench_label_noise.py
    ``detect`` does), and CCS's default (label_consistency, beta 0.4) on
    bench_ccs.py's cells (zipf_hard and digits-lt, clean and 10% flipped, 10%
    and 30%, seeds 0-2): balanced accuracy on the validation split carved from
    the training rows and on the test split. Run it on two commits to compare.
``classes``
    the class budget's grouped dense pass (``SubmodularSelector._select_groups``)
    against the class-by-class path (``BaseSelector._select_groups``, the
    selector run once per class) in one run, interleaved:
    ``coreset.select(X, fraction=0.1, y=y, class_budget="equal", random_state=0)``
    on 20,000 x 32 Gaussian classes (100 and 1,000 classes; ``label_filter``
    None and "auto"), a warm-up, then ``--repeats`` rounds; best wall time of
    each, the objective beside it, and whether both made the same picks.
``ccs_scores``
    the "no second search" alternatives for CCS's label consistency, on the
    same cells: the kNN votes it uses (one kNN search over all rows) against
    scores from the label filter's probe, which costs a fraction of that
    search: its cell votes ``log((v_other + 0.5) / (v_own + 0.5))`` and its
    margin (best other class's prototype cosine minus the own class's, the
    row's own prototype taken without it), each passed as ``scores=``.

    python benchmarks/bench_select_overhead.py speed --repeats 5
    python benchmarks/bench_select_overhead.py speed --n-classes 1000 --repeats 3
    # another commit's code with this script: an export of it first on PYTHONPATH
    git archive <commit> coreset | tar -x -C <export dir> && \
        PYTHONPATH=<export dir> python benchmarks/bench_select_overhead.py speed --tag before
    python benchmarks/bench_select_overhead.py quality --tag after
    python benchmarks/bench_select_overhead.py ccs_scores
    python benchmarks/bench_select_overhead.py classes --repeats 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine_info, write_json  # noqa: E402

import coreset  # noqa: E402

N, D, FRACTION = 100_000, 128, 0.1
VARIANTS = ("off", "filter", "ccs")


def _run(variant, X, y):
    kw = dict(fraction=FRACTION, y=y, class_budget="equal", random_state=0)
    if variant == "ccs":
        return coreset.select(X, method="ccs", **kw)
    return coreset.select(X, label_filter=None if variant == "off" else "auto", **kw)


def speed(repeats=5, n_classes=100) -> dict:
    from coreset.data import make_zipf

    d = make_zipf(N, D, n_classes=n_classes, label_noise=0.1, random_state=0)
    X, y, flipped = d.X, d.y, np.asarray(d.flipped, bool)
    for v in VARIANTS:  # warm-up: numba JIT, FAISS, BLAS pools
        _run(v, X[:5000], y[:5000])
    rounds = []
    for r in range(repeats):
        order = VARIANTS[r % 3:] + VARIANTS[:r % 3]
        row = {"order": list(order), "load_average": list(os.getloadavg())}
        for v in order:
            w, c = time.perf_counter(), time.process_time()
            sel = _run(v, X, y)
            row[v] = {"wall_s": time.perf_counter() - w, "cpu_s": time.process_time() - c,
                      "objective": None if not np.isfinite(sel.objective) else float(sel.objective),
                      "flipped_picked": float(flipped[sel.indices].mean()), "n_picked": int(sel.indices.size),
                      "timings": {k: float(t) for k, t in sel.meta["timings"].items()}}
            if sel.suspects is not None:
                row[v]["n_suspects"] = int(sel.suspects.size)
        for v in ("filter", "ccs"):
            for clock in ("wall_s", "cpu_s"):
                row[f"{v}/off_{clock}"] = row[v][clock] / row["off"][clock]
        rounds.append(row)
        print(f"round {r}: " + ", ".join(f"{v} {row[v]['wall_s']:.2f} s ({row[v]['cpu_s']:.2f} CPU-s)" for v in order)
              + f"; filter/off {row['filter/off_wall_s']:.3f}, ccs/off {row['ccs/off_wall_s']:.3f}"
              + f" (load {row['load_average'][0]:.1f})", flush=True)
    med = lambda xs: float(statistics.median(xs))  # noqa: E731
    summary = {"n": N, "d": D, "n_classes": n_classes, "fraction": FRACTION, "repeats": repeats}
    for v in VARIANTS:
        for clock in ("wall_s", "cpu_s"):
            summary[f"{v}_{clock}"] = med(r[v][clock] for r in rounds)
        summary[f"{v}_objective"] = rounds[0][v]["objective"]
        summary[f"{v}_flipped_picked"] = rounds[0][v]["flipped_picked"]
    for key in ("filter/off_wall_s", "filter/off_cpu_s", "ccs/off_wall_s", "ccs/off_cpu_s"):
        summary[key.replace("_s", "") + "_median"] = med(r[key] for r in rounds)
    summary["label_filter_stage_s"] = med(r["filter"]["timings"].get("label_filter", 0.0) for r in rounds)
    summary["ccs_score_stage_s"] = med(r["ccs"]["timings"].get("score", 0.0) for r in rounds)
    print(json.dumps(summary, indent=1))
    return {"summary": summary, "rounds": rounds}


def classes(repeats=7) -> dict:
    from coreset.selectors import SubmodularSelector
    from coreset.selectors._base import BaseSelector

    grouped = SubmodularSelector._select_groups
    rows = []
    rng = np.random.default_rng(0)
    for n_classes in (100, 1000):
        y = rng.integers(0, n_classes, 20_000)
        X = (rng.standard_normal((n_classes, 32))[y] + rng.standard_normal((y.size, 32))).astype(np.float32)
        for lf in (None, "auto"):
            kw = dict(fraction=0.1, y=y, class_budget="equal", random_state=0, label_filter=lf)
            times, sels = {"grouped": [], "per_class": []}, {}
            for r in range(repeats + 1):  # round 0 warms up
                for path in (("grouped", "per_class") if r % 2 else ("per_class", "grouped")):
                    SubmodularSelector._select_groups = grouped if path == "grouped" else BaseSelector._select_groups
                    try:
                        t = time.perf_counter()
                        sels[path] = coreset.select(X, **kw)
                        if r:
                            times[path].append(time.perf_counter() - t)
                    finally:
                        SubmodularSelector._select_groups = grouped
            row = {"n": int(y.size), "d": 32, "n_classes": n_classes, "label_filter": lf,
                   "grouped_s": min(times["grouped"]), "per_class_s": min(times["per_class"]),
                   "objective": float(sels["grouped"].objective),
                   "same_picks": bool(np.array_equal(sels["grouped"].indices, sels["per_class"].indices)),
                   "same_objective": sels["grouped"].objective == sels["per_class"].objective}
            row["speedup"] = row["per_class_s"] / row["grouped_s"]
            print(json.dumps(row), flush=True)
            rows.append(row)
    return {"rows": rows, "repeats": repeats}


# ------------------------------------------------------------------------- quality
def _pr(flag, truth) -> dict:
    tp = int((flag & truth).sum())
    p, r = tp / max(int(flag.sum()), 1), tp / max(int(truth.sum()), 1)
    return {"precision": p, "recall": r, "n_flagged": int(flag.sum())}


def _probe_quality(seeds) -> list[dict]:
    from coreset.data import load_dataset
    from coreset.selectors._label_noise import find_label_suspects

    rows = []
    for name in ("zipf_hard", "digits-lt", "mnist1d_lt", "text_lt"):
        for seed in seeds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                d = load_dataset(name, random_state=seed, label_noise=0.1)
            truth = np.asarray(d.flipped, bool)
            t = time.perf_counter()
            found = find_label_suspects(d.X, d.y, random_state=seed)
            flag = np.zeros(d.y.size, bool)
            flag[found.suspects] = True
            rows.append({"dataset": name, "seed": seed, "n": int(d.y.size), "seconds": time.perf_counter() - t,
                         **_pr(flag, truth)})
    return rows


def _ccs_cells(seeds):
    """bench_ccs.run_cell's data, flips and validation carve: (name, noise, seed, X, y, Xv, yv, Xt, yt)."""
    import bench_ccs

    from coreset.data import load_dataset

    for name in ("zipf_hard", "digits-lt"):
        for noise in (0.0, 0.1):
            for seed in seeds:
                ds = load_dataset(name, random_state=seed)
                rng = np.random.default_rng(1000 + seed)
                y_all = bench_ccs.flip_labels(ds.y, noise, rng)[0] if noise else ds.y
                tr, va = bench_ccs.carve_validation(y_all, 0.2, rng)
                yield name, noise, seed, ds.X[tr], y_all[tr], ds.X[va], y_all[va], ds.X_test, ds.y_test


def _ccs_quality(seeds) -> list[dict]:
    import bench_ccs

    rows = []
    for name, noise, seed, X, y, Xv, yv, Xt, yt in _ccs_cells(seeds):
        for f in (0.1, 0.3):
            t = time.perf_counter()
            sel = coreset.select(X, fraction=f, y=y, method="ccs", class_budget="equal", random_state=seed)
            secs = time.perf_counter() - t
            v, te = bench_ccs.fit_eval(X[sel.indices], y[sel.indices], Xv, yv, Xt, yt)
            rows.append({"dataset": name, "noise": noise, "seed": seed, "fraction": f, "val": v, "test": te,
                         "seconds": secs})
    return rows


def _probe_scores(X, y, seed):
    """The probe's cell votes and margin as difficulty scores (higher = harder), and their seconds."""
    from coreset.selectors._label_noise import _probe

    t = time.perf_counter()
    codes = np.unique(y, return_inverse=True)[1].astype(np.int64).ravel()
    own, other, S = _probe(X, codes, int(codes.max()) + 1, np.random.default_rng(seed), keep_scores=True)[:3]
    r = np.arange(codes.size)
    own_cos = S[r, codes].astype(np.float64)
    S[r, codes] = -np.inf
    return {"probe_votes": np.log((other + 0.5) / (own + 0.5)), "probe_margin": S.max(axis=1) - own_cos}, \
        time.perf_counter() - t


def ccs_scores(seeds) -> dict:
    import bench_ccs

    from coreset.selectors._ccs_scores import label_consistency

    rows = []
    for name, noise, seed, X, y, Xv, yv, Xt, yt in _ccs_cells(seeds):
        t = time.perf_counter()
        scores = {"knn_label_consistency": label_consistency(X, y, random_state=seed)}
        secs = {"knn_label_consistency": time.perf_counter() - t}
        probe, secs["probe"] = _probe_scores(X, y, seed)
        scores.update(probe)
        for f in (0.1, 0.3):
            for label, s in scores.items():
                sel = coreset.select(X, fraction=f, y=y, method="ccs", class_budget="equal", random_state=seed,
                                     scores=s)
                v, te = bench_ccs.fit_eval(X[sel.indices], y[sel.indices], Xv, yv, Xt, yt)
                rows.append({"dataset": name, "noise": noise, "seed": seed, "fraction": f, "score": label,
                             "val": v, "test": te, "score_seconds": secs["probe" if label != "knn_label_consistency"
                                                                          else label]})
        print(f"{name} noise={noise} seed={seed} done", file=sys.stderr, flush=True)
    summary = _mean_by(rows, ("dataset", "noise", "fraction", "score"), ("val", "test", "score_seconds"))
    for sc in ("knn_label_consistency", "probe_votes", "probe_margin"):
        summary.append({"score": sc, "mean_val": float(np.mean([r["val"] for r in rows if r["score"] == sc])),
                        "mean_test": float(np.mean([r["test"] for r in rows if r["score"] == sc]))})
    for e in summary:
        print(json.dumps(e))
    return {"rows": rows, "summary": summary}


def _mean_by(rows, keys, values):
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return [{**dict(zip(keys, k)), **{v: float(np.mean([r[v] for r in rs])) for v in values}, "n_seeds": len(rs)}
            for k, rs in groups.items()]


def quality(seeds) -> dict:
    probe = _probe_quality(seeds)
    ccs = _ccs_quality(seeds)
    out = {"probe_rows": probe, "ccs_rows": ccs,
           "probe": _mean_by(probe, ("dataset",), ("precision", "recall", "seconds")),
           "ccs": _mean_by(ccs, ("dataset", "noise", "fraction"), ("val", "test", "seconds"))}
    for s in out["probe"]:
        print(f"probe {s['dataset']:10s} P={s['precision']:.3f} "
              f"R={s['recall']:.3f} ({s['seconds']:.3f} s)")
    for s in out["ccs"]:
        print(f"ccs {s['dataset']:10s} noise={s['noise']} f={s['fraction']} val={100 * s['val']:.1f} "
              f"test={100 * s['test']:.1f} ({s['seconds']:.2f} s)")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("section", choices=("speed", "quality", "ccs_scores", "classes", "all"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--n-classes", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--tag", default=None, help="store the sections under this name (e.g. before / after)")
    ap.add_argument("--machine", default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    info = machine_info(a.machine)
    path = Path(a.out) if a.out else RESULTS / f"select-overhead-{info['name']}.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    result["machine"] = info
    for s in (("speed", "quality", "ccs_scores") if a.section == "all" else (a.section,)):
        t = time.perf_counter()
        res = speed(a.repeats, a.n_classes) if s == "speed" else classes(a.repeats) if s == "classes" else \
            quality(a.seeds) if s == "quality" else ccs_scores(a.seeds)
        res["seconds"] = time.perf_counter() - t
        key = s if a.tag is None else f"{s}:{a.tag}"
        if s == "speed" and a.n_classes != 100:
            key += f":{a.n_classes}-classes"
        result[key] = res
        write_json(path, result)
    print("wrote", path)


if __name__ == "__main__":
    main()
