"""Label-noise filter: suspect precision / recall, the choice of its default,
its effect on training, and its cost (docs/label-noise.md, docs/benchmarks.md).

Sections (each seeded; results merged into results/label-noise-<machine>.json):

``detect``
    ``find_label_suspects`` (auto: the probe capped by its noise estimate, the
    default; probe: every out-voted row; knn) and cleanlab's ``find_label_issues``
    on the probe's out-of-sample probabilities, against the truly flipped rows
    of ``load_dataset(name, label_noise=0.1, noise_model=m, random_state=seed)``
    for zipf_hard, digits-lt, mnist1d_lt, text_lt, m in symmetric /
    confusable, seeds 0-2. Precision, recall, F1, seconds.
``tune``
    the default detector and threshold, chosen on a VALIDATION split carved
    from the training rows (20%, stratified by the noisy labels, noisy labels
    kept: what a user has), never the test split: facility location with
    equal class budgets at 10% of the remaining rows, a logistic regression
    on the picks, balanced accuracy on the validation rows; zipf_hard,
    digits-lt, mnist1d_lt, text_lt at 10% symmetric noise, seeds 0-2.
``train``
    the effect on the clean, balanced test split, 10% symmetric noise
    (and confusable), the same logistic regression: full data with a
    class-balanced loss (all noisy rows), random with equal class budgets,
    random with equal class budgets from the rows the filter keeps, facility
    location with equal budgets without and with the filter (the default).
``regimes``
    the rules of ``RULES`` (no filter, the probe = ``auto``, ``adaptive``, the
    probe with votes freed of the class prior, and with a second opinion, ungated or gated by
    ``GAPS``) across clean / 10% symmetric noise /
    30% near-duplicates / 10% confusable noise, on the validation split carved
    from the training rows (never the test split): suspect precision / recall and
    the validation balanced accuracy of ``facility_location:equal`` at 10% with
    docs/results.md's models.
``prior``
    the detector alone under the prior-free vote rules (and the second-opinion
    rules, ``_label_noise.SECOND_OPINION``) on each whole training
    split: share of rows flagged (clean; plain rows and copies with 30%
    near-duplicates) and precision / recall at 10% symmetric / confusable noise.
``gaps``
    the second opinion's gate (``_label_noise.SECOND_OPINION_GAP``): on each whole
    training split (clean; 10% symmetric / confusable noise), the rows that
    ``"second"`` un-flags, flipped and correct, and their gap (cosine to the nearest
    prototype minus the own class's best): quantiles and the share at most each of
    ``GAPS``.
``speed``
    ``coreset.select(X, fraction=0.1, y=y, class_budget="equal")`` on
    100,000 x 128 (make_zipf, 100 classes, zipf_hard's geometry, 10% symmetric
    noise) with the filter off and on (default), alternating, median of 3 after
    a warm-up; the filter's own seconds from ``meta["timings"]``.

    python benchmarks/bench_label_noise.py all
    python benchmarks/bench_label_noise.py detect --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine_info, write_json  # noqa: E402

import coreset  # noqa: E402
from coreset.data import load_dataset  # noqa: E402
from coreset.selectors._label_noise import find_label_suspects  # noqa: E402

DATASETS = ("zipf_hard", "digits-lt", "mnist1d_lt", "text_lt")
NOISE = 0.1
#: (label_filter, threshold) settings compared on the validation split
CANDIDATES = [(None, None), ("probe", 0.25), ("probe", 0.5), ("probe", 1.0), ("knn", 0.5), ("knn", 1.0),
              ("cleanlab", 1.0)]


def _pr(flag: np.ndarray, truth: np.ndarray) -> dict:
    tp = int((flag & truth).sum())
    p = tp / max(int(flag.sum()), 1)
    r = tp / max(int(truth.sum()), 1)
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "n_flagged": int(flag.sum())}


def _mask(idx, n):
    m = np.zeros(n, bool)
    m[idx] = True
    return m


def _load(name, seed, model="symmetric", noise=NOISE):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(name, random_state=seed, label_noise=noise, noise_model=model)


def _logreg(X, y, weights=None, balanced=False):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = LogisticRegression(max_iter=300, class_weight="balanced" if balanced else None)
        clf.fit(scaler.transform(X), y, sample_weight=weights)
    return lambda Z: clf.predict(scaler.transform(Z))


def _balanced_accuracy(y_true, y_pred) -> float:
    classes = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


# ------------------------------------------------------------------------- detect
def detect(seeds) -> dict:
    rows = []
    for name in DATASETS:
        for model in ("symmetric", "confusable"):
            for seed in seeds:
                d = _load(name, seed, model)
                truth = np.asarray(d.flipped, bool)
                for method, thr in (("auto", None), ("probe", None), ("knn", None), ("cleanlab", None), ("probe", 0.5)):
                    t = time.perf_counter()
                    found = find_label_suspects(d.X, d.y, method=method, threshold=thr, random_state=seed)
                    row = {"dataset": name, "noise_model": model, "seed": seed, "method": method,
                           "threshold": found.threshold, "n": int(d.y.size), "n_flipped": int(truth.sum()),
                           "noise_rate_estimate": found.noise_rate,
                           "seconds": time.perf_counter() - t, **_pr(_mask(found.suspects, d.y.size), truth)}
                    rows.append(row)
                    print(f"{name:10s} {model:10s} s{seed} {method:8s} t={found.threshold:<4g} "
                          f"P={row['precision']:.3f} R={row['recall']:.3f} ({row['seconds']:.2f}s)", flush=True)
    return {"rows": rows, "summary": _summarise(rows, ("dataset", "noise_model", "method", "threshold"),
                                                 ("precision", "recall", "f1", "seconds"))}


def _summarise(rows, keys, values):
    groups = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for key, rs in groups.items():
        s = dict(zip(keys, key))
        for v in values:
            xs = [r[v] for r in rs]
            s[v] = float(np.mean(xs))
            s[v + "_std"] = float(np.std(xs))
        s["n_seeds"] = len(rs)
        out.append(s)
    return out


# ------------------------------------------------------------------------- tune
def _carve(y, seed, share=0.2):
    """A validation split of the training rows, stratified by the (noisy) labels."""
    rng = np.random.default_rng([seed, 77])
    val = np.zeros(y.size, bool)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        k = int(round(share * rows.size)) if rows.size >= 5 else 0
        val[rng.choice(rows, k, replace=False)] = True
    return np.flatnonzero(~val), np.flatnonzero(val)


def tune(seeds) -> dict:
    rows = []
    for name in DATASETS:
        for seed in seeds:
            d = _load(name, seed)
            tr, va = _carve(d.y, seed)
            X, y = d.X[tr], d.y[tr]
            for lf, thr in CANDIDATES:
                t = time.perf_counter()
                sel = coreset.select(X, fraction=0.1, y=y, class_budget="equal", random_state=seed,
                                     label_filter=lf, label_filter_threshold=thr)
                secs = time.perf_counter() - t
                pred = _logreg(X[sel.indices], y[sel.indices])
                acc = _balanced_accuracy(d.y[va], pred(d.X[va]))
                flipped_picked = float(np.asarray(d.flipped)[tr][sel.indices].mean())
                rows.append({"dataset": name, "seed": seed, "label_filter": str(lf), "threshold": thr,
                             "val_balanced_accuracy": acc, "flipped_in_picks": flipped_picked,
                             "select_seconds": secs})
                print(f"tune {name:10s} s{seed} {str(lf):8s} t={thr} val_bacc={acc:.4f} "
                      f"flipped picked={flipped_picked:.3f}", flush=True)
    summary = _summarise(rows, ("dataset", "label_filter", "threshold"),
                         ("val_balanced_accuracy", "flipped_in_picks"))
    overall = {}
    for s in summary:
        overall.setdefault((s["label_filter"], s["threshold"]), []).append(s["val_balanced_accuracy"])
    ranking = sorted(({"label_filter": k[0], "threshold": k[1], "mean_val_balanced_accuracy": float(np.mean(v))}
                      for k, v in overall.items()), key=lambda r: -r["mean_val_balanced_accuracy"])
    return {"rows": rows, "summary": summary, "ranking": ranking}


# ------------------------------------------------------------------------- train
TRAIN_METHODS = ("full_balanced", "random:equal", "random:equal+filtered", "facility_location:equal+no_filter",
                 "facility_location:equal")


def train(seeds, datasets=DATASETS, models=("symmetric", "confusable")) -> dict:
    rows = []
    for name in datasets:
        for model in models:
            for seed in seeds:
                d = _load(name, seed, model)
                X, y = d.X, d.y
                flipped = np.asarray(d.flipped, bool)
                for method in TRAIN_METHODS:
                    sel = None
                    if method == "full_balanced":
                        pred = _logreg(X, y, balanced=True)
                    else:
                        base = "random" if method.startswith("random") else "submodular"
                        lf = None if method.endswith("no_filter") or method == "random:equal" else "auto"
                        sel = coreset.select(X, fraction=0.1, y=y, class_budget="equal", method=base,
                                             random_state=seed, label_filter=lf)
                        pred = _logreg(X[sel.indices], y[sel.indices])
                    acc = _balanced_accuracy(d.y_test, pred(d.X_test))
                    rows.append({"dataset": name, "noise_model": model, "seed": seed, "method": method,
                                 "test_balanced_accuracy": acc,
                                 "flipped_in_picks": None if sel is None else float(flipped[sel.indices].mean())})
                    print(f"train {name:10s} {model:10s} s{seed} {method:34s} bacc={acc:.4f}", flush=True)
    return {"rows": rows, "summary": _summarise(rows, ("dataset", "noise_model", "method"),
                                                 ("test_balanced_accuracy",))}


# ------------------------------------------------------------------------- regimes
#: rules compared across the regimes, as (name, label_filter, module settings): "off" no
#: filter; "probe" every out-voted row (the default, ``auto``); "adaptive" its suspects
#: capped by the estimated noise; "cap3" that cap without the 1% floor; "prior*" the probe
#: with votes freed of the class prior (``_label_noise.PRIOR_TEMPER`` t: another class's
#: votes times (m / n_c) ** t; "prior_capped": that factor capped at 1, bigger classes
#: scaled down only); "second" / "other_class": a row with no own-class votes takes the votes
#: of a second cell (``_label_noise.SECOND_OPINION``). Settings are module attributes of
#: ``_noise_rate`` (NOISE_*) or ``_label_noise`` (PRIOR_*, SECOND_OPINION), restored after each rule.
_PROBE = {"NOISE_CAP_FACTOR": 3.0, "NOISE_MIN": 0.01, "PRIOR_TEMPER": 0.0, "PRIOR_SCALE_UP": True,
          "SECOND_OPINION": None, "SECOND_OPINION_GAP": None}
#: the gates of the second opinion compared ("second_gap<g>": only rows with a gap of at most g ask)
GAPS = (0.02, 0.05, 0.1)
RULES = (
    ("off", None, _PROBE),
    ("probe", "auto", _PROBE),
    ("cap3", "adaptive", {**_PROBE, "NOISE_MIN": 0.0}),
    ("adaptive", "adaptive", _PROBE),
    ("prior", "auto", {**_PROBE, "PRIOR_TEMPER": 1.0}),
    ("prior_t0.5", "auto", {**_PROBE, "PRIOR_TEMPER": 0.5}),
    ("prior_capped", "auto", {**_PROBE, "PRIOR_TEMPER": 1.0, "PRIOR_SCALE_UP": False}),
    ("prior_capped_t0.5", "auto", {**_PROBE, "PRIOR_TEMPER": 0.5, "PRIOR_SCALE_UP": False}),
    ("second", "auto", {**_PROBE, "SECOND_OPINION": "second"}),
    ("other_class", "auto", {**_PROBE, "SECOND_OPINION": "other_class"}),
    *((f"second_gap{g}", "auto", {**_PROBE, "SECOND_OPINION": "second", "SECOND_OPINION_GAP": g}) for g in GAPS),
)
#: rule names of earlier runs (before "auto" went back to the probe): "old" was the probe,
#: "auto" the adaptive rule
_LEGACY_RULES = {"old": "probe", "auto": "adaptive"}
#: bench_results.py's regimes and confusable noise (a flip to the class whose centroid is
#: nearest: the case the adaptive rule fails); its epochs are the noisy regime's
CONFUSABLE = {"confusable": dict(label_noise=0.1, noise_model="confusable")}


def _set_rule(settings):
    from coreset.selectors import _label_noise, _noise_rate

    for k, v in settings.items():
        setattr(_label_noise if k.startswith(("PRIOR", "SECOND")) else _noise_rate, k, v)


def regimes(seeds, datasets=DATASETS, rules=RULES, regime_names=None) -> dict:
    """The rule's choice across clean, 10% symmetric noise, 30% near-duplicates
    (bench_results.py's regimes) and 10% confusable noise, on the validation split
    carved from the training rows (``train_validation_split(ds, share=0.2,
    random_state=0)``, the regime's knobs applied), never the test split: suspect
    precision / recall against the flipped rows of that split (the detector with
    ``random_state=0``), and the validation balanced accuracy of
    ``facility_location:equal`` at 10% trained as in docs/results.md (the model,
    optimiser and epochs of bench_results.py)."""
    from bench_results import REGIMES, SETTINGS, _kw

    from coreset.data import train_validation_split
    from coreset.pipelines import compare

    all_regimes = {**REGIMES, **CONFUSABLE}
    regime_names = list(all_regimes) if regime_names is None else list(regime_names)
    chosen = json.loads((Path(__file__).resolve().parents[1] / "docs" / "results" / "validation.json").read_text())
    rows = []
    try:
        for name in datasets:
            for regime in regime_names:
                knobs = all_regimes[regime]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    val = train_validation_split(load_dataset(name, **knobs), share=0.2, random_state=0)
                flipped = np.zeros(val.y.size, bool) if val.flipped is None else np.asarray(val.flipped, bool)
                epochs = int(chosen[f"{name}/{'noisy' if regime == 'confusable' else regime}"]["chosen_epochs"])
                for rule, label_filter, settings in rules:
                    _set_rule(settings)
                    found = find_label_suspects(val.X, val.y, method=label_filter or "auto", random_state=0)
                    res = compare(val, methods=["facility_location:equal"], fractions=[0.1], seeds=list(seeds),
                                  plots=False, select_params={"label_filter": label_filter},
                                  **_kw(SETTINGS[name], epochs))
                    accs = [r["balanced_accuracy"] for r in res.rows]
                    row = {"dataset": name, "regime": regime, "rule": rule, "label_filter": label_filter,
                           "settings": dict(settings),
                           "val_balanced_accuracy": float(np.mean(accs)), "val_balanced_accuracy_std": float(np.std(accs)),
                           "seeds": list(seeds), "noise_rate_estimate": found.noise_rate,
                           "true_noise_rate": float(flipped.mean()),
                           **({"n_flagged": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0} if rule == "off"
                              else _pr(found.mask, flipped))}
                    rows.append(row)
                    print(f"regimes {name:10s} {regime:10s} {rule:12s} val_bacc={row['val_balanced_accuracy']:.4f} "
                          f"± {row['val_balanced_accuracy_std']:.4f} flagged={row['n_flagged']} "
                          f"P={row['precision']:.2f} R={row['recall']:.2f} noise est={found.noise_rate}", flush=True)
    finally:
        _set_rule(_PROBE)
    return {"split": "train_validation_split(load_dataset(name, **regime), share=0.2, random_state=0)", "rows": rows}


def _merge_regimes(old, new) -> dict:
    key = ("dataset", "regime", "rule")
    legacy = [{**r, "rule": _LEGACY_RULES.get(r["rule"], r["rule"])} for r in ((old or {}).get("rows") or [])]
    rows = {tuple(r[k] for k in key): r for r in legacy}
    rows.update({tuple(r[k] for k in key): r for r in new["rows"]})
    rows = sorted(rows.values(), key=lambda r: (DATASETS.index(r["dataset"]), r["regime"], r["rule"]))
    means = {}
    for r in rows:
        means.setdefault(r["rule"], {}).setdefault(r["regime"], []).append(r["val_balanced_accuracy"])
    summary = {rule: {reg: float(np.mean(v)) for reg, v in by.items()} for rule, by in means.items()}
    for rule, by in means.items():
        summary[rule]["all"] = float(np.mean([x for v in by.values() for x in v]))  # every regime run
        summary[rule]["all_but_confusable"] = float(np.mean([x for g, v in by.items() if g != "confusable" for x in v]))
    return {"split": new["split"], "rows": rows, "mean_val_balanced_accuracy": summary}


# ------------------------------------------------------------------------- prior
#: the probe rules of ``regimes`` whose votes differ (the detector alone)
PRIOR_RULES = ("probe", "prior", "prior_t0.5", "prior_capped", "prior_capped_t0.5", "second", "other_class",
               *(f"second_gap{g}" for g in GAPS))


def _whole_splits(cases, seeds):
    """``(name, case, seed, dataset)`` for every dataset, case (its
    ``load_dataset`` knobs) and seed: the whole training splits the detector
    sections read."""
    for name in DATASETS:
        for case, knobs in cases.items():
            for seed in seeds:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    yield name, case, seed, load_dataset(name, random_state=seed, **knobs)


def prior_flags(seeds=(0,)) -> dict:
    """What the prior-free votes flag on each dataset's whole training split
    (``load_dataset(name, random_state=seed, ...)``, the detector with
    ``random_state=0``): the share of rows flagged on clean labels (every one a
    false positive), with 30% near-duplicates the share of the rows that are
    neither copies nor copy sources, and at 10% symmetric / confusable noise the
    precision and recall against the flipped rows."""
    settings = {name: s for name, _, s in RULES}
    cases = {"clean": {}, "redundant": dict(duplicates=0.3), "symmetric": dict(label_noise=NOISE),
             "confusable": dict(label_noise=NOISE, noise_model="confusable")}
    rows = []
    try:
        for name, case, seed, d in _whole_splits(cases, seeds):
            for rule in PRIOR_RULES:
                _set_rule(settings[rule])
                flag = find_label_suspects(d.X, d.y, random_state=0).mask
                row = {"dataset": name, "case": case, "seed": seed, "rule": rule,
                       "flagged_share": float(flag.mean())}
                if case == "redundant":
                    plain = ~np.asarray(d.copied, bool)
                    plain[d.copy_source[d.copy_source >= 0]] = False
                    row["flagged_share_plain_rows"] = float(flag[plain].mean())
                    row["flagged_share_copies"] = float(flag[np.asarray(d.copied, bool)].mean())
                elif case != "clean":
                    row.update(_pr(flag, np.asarray(d.flipped, bool)))
                rows.append(row)
                print("prior", json.dumps(row), flush=True)
    finally:
        _set_rule(_PROBE)
    return {"rows": rows}


# ------------------------------------------------------------------------- gaps
def gap_flags(seeds=(0,)) -> dict:
    """Which rows ``SECOND_OPINION = "second"`` un-flags on each whole training
    split, and their gap (the probe's cosine to the nearest prototype minus its
    own class's best, from the rows x classes cosines it keeps): for the flipped
    rows it wrongly saves and the correct rows it rightly saves, quantiles of the
    gap and the share at most each gate of ``GAPS``."""
    from coreset.selectors import _label_noise as L

    cases = {"clean": {}, "symmetric": dict(label_noise=NOISE),
             "confusable": dict(label_noise=NOISE, noise_model="confusable")}
    rows = []
    try:
        for name, case, seed, d in _whole_splits(cases, seeds):
            flipped = np.zeros(d.y.size, bool) if d.flipped is None else np.asarray(d.flipped, bool)
            _, codes = np.unique(d.y, return_inverse=True)
            codes = codes.astype(np.int64).ravel()
            flags = {}
            for rule in (None, "second"):
                _set_rule({**_PROBE, "SECOND_OPINION": rule})
                own, other, S, _ = L._probe(d.X, codes, int(codes.max()) + 1, np.random.default_rng(0),
                                            keep_scores=True)
                flags[rule] = (own + 0.5) / (other + 0.5) < L.DEFAULT_THRESHOLDS["probe"]
            gap = S.max(axis=1) - S[np.arange(codes.size), codes]
            saved = flags[None] & ~flags["second"]
            row = {"dataset": name, "case": case, "seed": seed, "n": int(codes.size),
                   "n_flagged": int(flags[None].sum())}
            for kind, m in (("flipped", saved & flipped), ("correct", saved & ~flipped)):
                g = gap[m]
                row[f"saved_{kind}"] = int(m.sum())
                row[f"gap_quantiles_{kind}"] = ([float(q) for q in np.quantile(g, [0.1, 0.25, 0.5, 0.75, 0.9])]
                                               if g.size else [])
                row[f"share_at_most_{kind}"] = {str(t): float((g <= t).mean()) if g.size else 0.0 for t in GAPS}
            rows.append(row)
            print("gaps", json.dumps(row), flush=True)
    finally:
        _set_rule(_PROBE)
    return {"rows": rows}


# ------------------------------------------------------------------------- speed
def speed(reps=3) -> dict:
    """Wall and CPU seconds (``time.process_time``: all threads of this process, so less
    sensitive to other processes on a shared machine) of select with the filter off and on,
    and of the detector alone."""
    from coreset.data import make_zipf
    from coreset.data._noise import corrupt_training

    d = make_zipf(100_000, 128, 100, s=1.1, n_modes=4, class_sep=0.12, mode_spread=0.3, random_state=0)
    noisy = corrupt_training(d.X, d.y, label_noise=NOISE, random_state=0)
    X, y = d.X, noisy.y
    coreset.select(X[:5000], fraction=0.1, y=y[:5000], class_budget="equal", random_state=0)  # warm-up (JIT)
    runs = {"off": [], "on": [], "filter": []}
    for _ in range(reps):
        for lf in (None, "auto"):
            w, c = time.perf_counter(), time.process_time()
            coreset.select(X, fraction=0.1, y=y, class_budget="equal", random_state=0, label_filter=lf)
            runs["off" if lf is None else "on"].append((time.perf_counter() - w, time.process_time() - c))
        w, c = time.perf_counter(), time.process_time()
        found = find_label_suspects(X, y)
        runs["filter"].append((time.perf_counter() - w, time.process_time() - c))
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v)) for k, v in runs.items()}
    res = {"n": 100_000, "d": 128, "n_classes": 100,
           "select_off_wall_s": med["off"][0], "select_off_cpu_s": med["off"][1],
           "select_on_wall_s": med["on"][0], "select_on_cpu_s": med["on"][1],
           "filter_wall_s": med["filter"][0], "filter_cpu_s": med["filter"][1],
           "filter_share_wall": med["filter"][0] / med["off"][0], "filter_share_cpu": med["filter"][1] / med["off"][1],
           "runs": runs, "suspects_vs_flipped": _pr(_mask(found.suspects, y.size), noisy.flipped),
           "load_average": list(__import__("os").getloadavg())}
    print(json.dumps({k: v for k, v in res.items() if k != "runs"}, indent=1))
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("section", choices=("detect", "tune", "train", "regimes", "prior", "gaps", "speed", "all"))
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--rules", nargs="+", default=[r[0] for r in RULES], help="regimes: the rules to compare")
    ap.add_argument("--regimes", nargs="+", default=None, help="regimes: clean noisy redundant confusable")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--machine", default=None)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    info = machine_info(a.machine)
    path = Path(a.out) if a.out else RESULTS / f"label-noise-{info['name']}.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    result["machine"] = info
    sections = ("detect", "tune", "train", "regimes", "prior", "speed") if a.section == "all" else (a.section,)
    for s in sections:
        t = time.perf_counter()
        if s == "regimes":  # merged into the earlier rows: one run per dataset or rule is enough
            new = regimes(a.seeds, datasets=a.datasets, rules=[r for r in RULES if r[0] in a.rules],
                          regime_names=a.regimes)
            result[s] = _merge_regimes(result.get(s), new)
        else:
            sections_of = {"detect": detect, "tune": tune, "train": train, "prior": prior_flags, "gaps": gap_flags}
            result[s] = sections_of[s](a.seeds) if s != "speed" else speed()
        result[s]["seconds"] = time.perf_counter() - t
        write_json(path, result)
    print("wrote", path)


if __name__ == "__main__":
    main()
