"""Near-duplicate removal at scale: DedupSelector on 1,000,000 x 128 float32.

Data: 900,000 base vectors from make_zipf(900_000, 128, n_classes=1000,
center_scale=1.0, random_state=0) (with the default center_scale=3 many
natural neighbours already have cosine > 0.95; at 1.0 the base points'
nearest-neighbour cosine stays far below the threshold, so the planted
copies are the only near duplicates and recall/precision are well defined),
plus 100,000 planted copies in groups of 1-40 copies (Zipf sizes, some
groups larger than n_neighbors): 30% exact copies, 70% noisy copies with
relative noise eps ~ U(0.02, 0.2) (cosine to the original ~0.98-0.9998,
between two noisy copies down to ~0.96). Rows are shuffled.

Timed: one DedupSelector(threshold, n_neighbors, n_probe, random_state=0)
.fit(X) after a warm-up fit on 20,000 rows (both search paths). Reported:
wall and CPU seconds (all threads) and the selector's stage timings, peak RSS during the fit
(VmHWM after resetting it, Linux; includes X), recall (share of planted
copies removed into their original's group) and precision (share of removed
rows that are copies of their group's representative), false merges
(groups holding two different originals). Afterwards (not timed): the
nearest-neighbour cosine of 1,000 base rows against all base rows.

    python benchmarks/bench_dedup.py                    # writes results/dedup-<machine>.json
    python benchmarks/bench_dedup.py --n-probe 3        # another setting, merged into the same file
    python benchmarks/bench_dedup.py --n 200000 --out dedup-small.json

--data uniform: the base rows are unit vectors drawn uniformly on the sphere
(no clusters: what a new user tries first), and --copies near makes every
copy a noisy one at a cosine drawn uniformly in [0.99, 1) to its source (no
exact copies, which the hash finds whatever the search does); --copies edge
puts every copy at cosine 0.99 exactly (the hardest copy the target names).
Recall is then the share of those copies that were found:

    python benchmarks/bench_dedup.py --data uniform --copies near
    python benchmarks/bench_dedup.py --data zipf --copies near

Old code against new (the same script, the old package first on the path;
results in a file of their own):

    PYTHONPATH=<checkout of the old commit> python benchmarks/bench_dedup.py --data uniform --copies near \
        --out benchmarks/results/dedup-vs-<old commit>-<machine>.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, hwm_mb, machine_info, reset_peak_rss, rss_mb, ru_maxrss_mb, write_json  # noqa: E402


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def make_data(n, n_dup, d, seed=0, data="zipf", copy_kind="mixed", groups="zipf"):
    """(X float32 (n, d), truth: the base row each row copies, info). ``data``:
    "zipf" (clustered, module doc) or "uniform" (unit vectors uniform on the
    sphere); ``copy_kind``: "mixed" (30% exact, 70% relative noise U(0.02, 0.2))
    or "near" (every copy noisy, cosine to its source uniform in [0.99, 1)) or
    "edge" (every copy at cosine 0.99 to its source: the hardest near copy);
    ``groups``: "zipf" (1-40 copies of a source) or "single" (one copy of each
    source: every copy must be found directly, not through another copy)."""
    from coreset.data import make_zipf

    rng = np.random.default_rng(seed)
    n_base = n - n_dup
    if data == "uniform":
        base = rng.standard_normal((n_base, d), dtype=np.float32)
        base /= np.linalg.norm(base, axis=1, keepdims=True)
    else:
        base = make_zipf(n_base, d, n_classes=1000, center_scale=1.0, random_state=seed).X
    sizes, left = [], n_dup
    while left > 0:
        c = 1 if groups == "single" else int(min(left, 40, rng.zipf(1.6)))
        sizes.append(c)
        left -= c
    sizes = np.array(sizes)
    parent = np.repeat(rng.choice(n_base, size=sizes.size, replace=False), sizes)
    copies = base[parent]
    if copy_kind in ("near", "edge"):
        noisy = np.arange(parent.size)
        cos = rng.uniform(0.99, 1.0, size=parent.size) if copy_kind == "near" else np.full(parent.size, 0.99)
        # a direction orthogonal to the source, at the angle whose cosine was drawn
        g = rng.standard_normal((parent.size, d)).astype(np.float32)
        u = copies / np.linalg.norm(copies, axis=1, keepdims=True)
        g -= np.einsum("ij,ij->i", g, u)[:, None] * u
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        norm = np.linalg.norm(copies, axis=1, keepdims=True)
        copies = (norm * (cos[:, None] * u + np.sqrt(1 - cos ** 2)[:, None] * g)).astype(np.float32)
    else:
        noisy = np.flatnonzero(rng.random(parent.size) < 0.7)
        eps = rng.uniform(0.02, 0.2, size=noisy.size).astype(np.float32)
        scale = eps * np.linalg.norm(copies[noisy], axis=1) / np.sqrt(d)
        copies[noisy] += rng.standard_normal((noisy.size, d)).astype(np.float32) * scale[:, None]
    X = np.concatenate([base, copies])
    truth = np.concatenate([np.arange(n_base), parent])
    perm = rng.permutation(n)
    info = {"n_base": int(n_base), "n_planted": int(n_dup), "n_planted_groups": int(sizes.size),
            "largest_planted_group": int(sizes.max() + 1), "groups_larger_than_17": int((sizes + 1 > 17).sum()),
            "n_exact_copies": int(parent.size - noisy.size)}
    return np.ascontiguousarray(X[perm]), truth[perm], info


def score(sel, labels, truth, n_planted):
    rep_of_row = sel.indices[labels]
    rows = np.arange(truth.size)
    correct = (rows != rep_of_row) & (truth == truth[rep_of_row])
    removed = truth.size - len(sel)
    _, t = np.unique(truth, return_inverse=True)
    pairs = np.unique(np.stack([t, labels]), axis=1)
    return {"kept": int(len(sel)), "removed": int(removed), "expected_kept": int(truth.size - n_planted),
            "recall": float(correct.sum() / n_planted), "precision": float(correct.sum() / max(removed, 1)),
            "false_merges": int((np.bincount(pairs[1]) > 1).sum()),
            "weights_sum": float(sel.weights.sum())}


def base_nn_cosine(X, truth, n_queries=1000, seed=0):
    is_base = np.zeros(truth.size, bool)
    is_base[np.unique(truth, return_index=True)[1]] = True  # one row per original value
    base = np.flatnonzero(is_base)
    U = X[base] / np.linalg.norm(X[base], axis=1, keepdims=True)
    q = np.random.default_rng(seed).choice(base.size, n_queries, replace=False)
    best = np.full(n_queries, -1.0, np.float32)
    for s in range(0, base.size, 65536):
        S = U[q] @ U[s:s + 65536].T
        S[(q[:, None] - s) == np.arange(S.shape[1])[None, :]] = -1.0  # not itself
        best = np.maximum(best, S.max(axis=1))
    return {"queries": n_queries, "max": float(best.max()), "median": float(np.median(best)),
            "p99": float(np.percentile(best, 99))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=lambda s: int(float(s)), default=1_000_000)
    ap.add_argument("--n-dup", type=lambda s: int(float(s)), default=None, help="planted copies (default n / 10)")
    ap.add_argument("-d", "--n-features", type=int, default=128)
    ap.add_argument("--threshold", type=float, default=0.95)
    ap.add_argument("-k", "--n-neighbors", type=int, default=16)
    ap.add_argument("--n-probe", type=int, default=None, help="default: the library's")
    ap.add_argument("--data", choices=["zipf", "uniform"], default="zipf")
    ap.add_argument("--copies", choices=["mixed", "near", "edge"], default="mixed")
    ap.add_argument("--groups", choices=["zipf", "single"], default="zipf", help="copies per source: 1-40, or one")
    ap.add_argument("--machine", default=None)
    ap.add_argument("--out", default=None, help="output JSON (default results/dedup-<machine>.json)")
    args = ap.parse_args(argv)
    from coreset.selectors import DedupSelector

    n_dup = args.n_dup if args.n_dup is not None else args.n // 10
    probe = {} if args.n_probe is None else {"n_probe": args.n_probe}
    rec = {"n": args.n, "d": args.n_features, "threshold": args.threshold, "n_neighbors": args.n_neighbors,
           "n_probe": args.n_probe if args.n_probe is not None else "default", "data": args.data,
           "copies": args.copies, "groups": args.groups}
    t = time.perf_counter()
    Xw, _, _ = make_data(20_000, 2_000, args.n_features, seed=1, data=args.data, copy_kind=args.copies,
                         groups=args.groups)
    for exact in (True, False):
        DedupSelector(args.threshold, n_neighbors=args.n_neighbors, exact=exact, random_state=0).fit(Xw)
    del Xw
    rec["warmup_seconds"] = time.perf_counter() - t
    t = time.perf_counter()
    X, truth, rec["data_info"] = make_data(args.n, n_dup, args.n_features, data=args.data, copy_kind=args.copies,
                                           groups=args.groups)
    rec["datagen_seconds"] = time.perf_counter() - t
    rec["x_mb"] = X.nbytes / 2**20
    rec["baseline_rss_mb"] = rss_mb()
    can_reset = reset_peak_rss()
    rec["loadavg_before"] = os.getloadavg()[0]
    log(f"[N={args.n}] {args.data} data, {args.copies} copies ({args.groups} groups): DedupSelector({args.threshold}, "
        f"n_neighbors={args.n_neighbors}, {probe or 'default n_probe'}) ...")
    t, cpu = time.perf_counter(), time.process_time()
    est = DedupSelector(args.threshold, n_neighbors=args.n_neighbors, random_state=0, **probe).fit(X)
    rec["wall_seconds"] = time.perf_counter() - t
    rec["cpu_seconds"] = time.process_time() - cpu  # all threads: less sensitive to other work than wall time
    rec["loadavg_after"] = os.getloadavg()[0]  # 1-min load average: other work on the machine
    rec["peak_rss_fit_mb"] = hwm_mb() if can_reset else None
    rec["ru_maxrss_mb"] = ru_maxrss_mb()
    if rec["peak_rss_fit_mb"] is not None:
        rec["fit_extra_mb"] = rec["peak_rss_fit_mb"] - rec["baseline_rss_mb"]
    sel = est.selection_
    rec["timings"] = {k: float(v) for k, v in sel.meta["timings"].items()}
    rec["graph"] = sel.meta["graph"]
    rec["meta"] = {k: sel.meta[k] for k in ("n_removed", "n_groups", "n_exact_duplicates", "largest_group",
                                            "backend", "device")}
    rec["quality"] = score(sel, est.labels_, truth, n_dup)
    log(f"[N={args.n}] {rec['wall_seconds']:.1f} s, peak RSS {rec['peak_rss_fit_mb']} MB, "
        f"recall {rec['quality']['recall']:.5f}, precision {rec['quality']['precision']:.5f}")
    t = time.perf_counter()
    rec["base_nn_cosine"] = base_nn_cosine(X, truth)
    rec["base_nn_cosine"]["seconds"] = time.perf_counter() - t
    rec["command"] = " ".join([os.path.basename(sys.executable), *sys.argv])
    info = machine_info(args.machine)
    path = Path(args.out) if args.out else RESULTS / f"dedup-{info['name']}.json"
    key = ("n", "d", "threshold", "n_neighbors", "n_probe", "data", "copies", "groups")
    results = {}
    if path.exists():  # merged: one result per setting
        try:
            old = json.loads(path.read_text()).get("results", [])
            for r in old:  # results from before --data / --copies ("data" then held the data's info)
                if isinstance(r.get("data"), dict):
                    r["data_info"] = r.pop("data")
                r.setdefault("data", "zipf")
                r.setdefault("copies", "mixed")
                r.setdefault("groups", "zipf")
            results = {tuple(r[k] for k in key): r for r in old}
        except (ValueError, KeyError):
            results = {}
    results[tuple(rec[k] for k in key)] = rec
    write_json(path, {"benchmark": "dedup", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info,
                      "results": sorted(results.values(), key=lambda r: tuple(str(r[k]) for k in key))})
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
