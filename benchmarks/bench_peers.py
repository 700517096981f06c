"""Facility location, 10% of 10,000 x 64 Zipf embeddings: coreset vs apricot vs submodlib.

Everyone maximises facility location on the SAME clipped-cosine similarity
S = coreset.similarity.dense_similarity(X, "cosine") (float32, N x N). Each
method gets one warm-up run (numba JIT, allocator, page cache), then R timed
rounds; the rounds interleave the methods so load from other work on a shared
machine hits all of them alike. Reported: median seconds, the objective of the
returned indices evaluated on the same dense S, the objective ratio to each
peer, and the speedup over each peer measured in this run.

    python benchmarks/bench_peers.py            # R=3, writes results/peers-<machine>.json
    python benchmarks/bench_peers.py -r 5 --machine my-laptop
    python benchmarks/bench_peers.py --skip submodlib   # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine_info, median, ru_maxrss_mb, write_json  # noqa: E402


@contextlib.contextmanager
def quiet_fds():
    """Silence stdout/stderr at the file-descriptor level (submodlib's C++
    progress output ignores Python's sys.stdout)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with open(os.devnull, "w") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
            yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def make_methods(X, S, S_peer, k, n_neighbors):
    import coreset

    n = X.shape[0]

    def ours_dense():
        sel = coreset.select(X, n_select=k, metric="cosine", n_neighbors=None, random_state=0)
        return sel.indices, {"timings": sel.meta["timings"]}

    def ours_knn():
        sel = coreset.select(X, n_select=k, metric="cosine", n_neighbors=n_neighbors, random_state=0)
        return sel.indices, {"timings": sel.meta["timings"], "graph": sel.meta["graph"]}

    def ours_knn_partitioned():
        sel = coreset.select(X, n_select=k, metric="cosine", n_neighbors=n_neighbors, exact=False,
                             n_clusters=40, n_probe=10, random_state=0)
        return sel.indices, {"timings": sel.meta["timings"], "graph": sel.meta["graph"]}

    def ours_pre():
        sel = coreset.select(S, n_select=k, metric="precomputed", random_state=0)
        return sel.indices, {"timings": sel.meta["timings"]}

    def apricot():
        from apricot import FacilityLocationSelection

        with quiet_fds():
            m = FacilityLocationSelection(k, metric="precomputed", optimizer="lazy").fit(S_peer)
        return np.asarray(m.ranking, np.int64), {}

    def submodlib():
        from submodlib import FacilityLocationFunction

        t0 = time.perf_counter()
        with quiet_fds():
            f = FacilityLocationFunction(n=n, mode="dense", sijs=S_peer, separate_rep=False)
            t1 = time.perf_counter()
            out = f.maximize(budget=k, optimizer="LazyGreedy", stopIfZeroGain=False,
                             stopIfNegativeGain=False, verbose=False, show_progress=False)
        t2 = time.perf_counter()
        return np.array([i for i, _ in out], np.int64), {"timings": {"construct": t1 - t0, "maximize": t2 - t1}}

    return {
        "coreset dense (from X)": (ours_dense, "coreset.select(X, metric='cosine', n_neighbors=None): builds S, lazy greedy"),
        f"coreset kNN k={n_neighbors} (from X)": (ours_knn, f"coreset.select(X, metric='cosine', n_neighbors={n_neighbors}): builds the kNN graph, lazy greedy"),
        f"coreset kNN k={n_neighbors} partitioned (from X)": (ours_knn_partitioned, f"coreset.select(X, metric='cosine', n_neighbors={n_neighbors}, exact=False, n_clusters=40, n_probe=10): k-means-partitioned kNN graph (each cell searched against its 10 nearest of 40 cells, ~25% of the points), lazy greedy"),
        "coreset precomputed S": (ours_pre, "coreset.select(S, metric='precomputed'): lazy greedy on the given S"),
        "apricot lazy (precomputed S)": (apricot, "apricot FacilityLocationSelection(k, metric='precomputed', optimizer='lazy').fit(S)"),
        "submodlib LazyGreedy (dense S)": (submodlib, "submodlib FacilityLocationFunction(mode='dense', sijs=S, separate_rep=False).maximize(optimizer='LazyGreedy')"),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-r", "--repeats", type=int, default=3, help="timed rounds after the warm-up (default 3)")
    ap.add_argument("-n", "--n-samples", type=int, default=10_000)
    ap.add_argument("-d", "--n-features", type=int, default=64)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("-k", "--n-neighbors", type=int, default=32)
    ap.add_argument("--peer-dtype", choices=["float32", "float64"], default="float32",
                    help="dtype of the S copy handed to apricot/submodlib (same values; default float32)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["apricot", "submodlib"], help="peers to leave out")
    ap.add_argument("--machine", default=None, help="name used in the results file (default: <cpus>cpu-<cpu model>)")
    ap.add_argument("--out", default=None, help="output JSON (default results/peers-<machine>.json)")
    args = ap.parse_args(argv)

    import coreset
    from coreset.data import make_zipf
    from coreset.objectives import FacilityLocation
    from coreset.similarity import dense_similarity

    info = machine_info(args.machine)
    X = make_zipf(args.n_samples, args.n_features, random_state=0).X
    n = X.shape[0]
    k = int(round(args.fraction * n))
    S = dense_similarity(X, "cosine")
    S_peer = S.astype(args.peer_dtype) if args.peer_dtype != "float32" else S
    oracle = FacilityLocation(S)

    methods = make_methods(X, S, S_peer, k, args.n_neighbors)
    for name in list(methods):
        if any(name.startswith(p) for p in args.skip):
            del methods[name]

    print(f"# {n} x {X.shape[1]} Zipf, select {k}, machine {info['name']} ({info['cpu']}, {info['cpus']} cpus)", flush=True)
    results = {}
    load_start = os.getloadavg()[0]
    for name, (fn, desc) in methods.items():  # warm-up
        t = time.perf_counter()
        idx, extra = fn()
        results[name] = {"description": desc, "warmup_seconds": time.perf_counter() - t, "seconds_all": [],
                         "indices": idx, "extra": extra}
        print(f"  warm-up {name}: {results[name]['warmup_seconds']:.2f} s", flush=True)
    for r in range(args.repeats):
        for name, (fn, _) in methods.items():
            t = time.perf_counter()
            idx, extra = fn()
            dt = time.perf_counter() - t
            res = results[name]
            res["seconds_all"].append(dt)
            if not np.array_equal(idx, res["indices"]):
                res["nondeterministic"] = True
            res["extra"] = extra
            print(f"  round {r + 1} {name}: {dt:.3f} s", flush=True)

    for name, res in results.items():
        idx = res.pop("indices")
        res["seconds"] = median(res["seconds_all"]) if res["seconds_all"] else res["warmup_seconds"]
        res["objective"] = oracle.evaluate(idx)
        res["n_selected"] = int(idx.size)
        res["n_unique"] = int(np.unique(idx).size)
        res["_idx"] = idx

    peers = [p for p in ("apricot lazy (precomputed S)", "submodlib LazyGreedy (dense S)") if p in results]
    for name, res in results.items():
        for p in peers:
            tag = "apricot" if p.startswith("apricot") else "submodlib"
            res[f"objective_ratio_vs_{tag}"] = res["objective"] / results[p]["objective"]
            res[f"speedup_vs_{tag}"] = results[p]["seconds"] / res["seconds"]
            res[f"overlap_vs_{tag}"] = int(np.intersect1d(res["_idx"], results[p]["_idx"]).size)
    for res in results.values():
        res.pop("_idx")

    # table
    cols = ["method", "median s", "objective"] + [f"obj/{('apricot' if p.startswith('apricot') else 'submodlib')}" for p in peers] \
        + [f"x vs {('apricot' if p.startswith('apricot') else 'submodlib')}" for p in peers]
    print()
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for name, res in results.items():
        row = [name, f"{res['seconds']:.3f}", f"{res['objective']:.2f}"]
        row += [f"{res['objective_ratio_vs_' + ('apricot' if p.startswith('apricot') else 'submodlib')]:.6f}" for p in peers]
        row += [f"{res['speedup_vs_' + ('apricot' if p.startswith('apricot') else 'submodlib')]:.1f}x" for p in peers]
        print("| " + " | ".join(row) + " |")

    out = {
        "benchmark": "peers",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": info,
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "params": {"n_samples": n, "n_features": int(X.shape[1]), "n_select": k, "n_neighbors": args.n_neighbors,
                   "data": f"coreset.data.make_zipf({args.n_samples}, {args.n_features}, random_state=0)",
                   "similarity": "coreset.similarity.dense_similarity(X, 'cosine') (clipped cosine, float32)",
                   "peer_dtype": args.peer_dtype, "repeats": args.repeats, "statistic": "median of repeats after 1 warm-up",
                   "objective": "coreset.objectives.FacilityLocation(S).evaluate(indices) on the same dense S"},
        "peak_rss_mb": ru_maxrss_mb(),
        "loadavg_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "results": results,
        "coreset_version": coreset.__version__,
    }
    path = Path(args.out) if args.out else RESULTS / f"peers-{info['name']}.json"
    write_json(path, out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
