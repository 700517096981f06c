"""Feature-based, saturated coverage and sum redundancy: coreset vs apricot
(the only peer with all three) and, for feature-based, submodlib (its
SaturatedCoverageFunction is an empty stub in 0.0.3; it has no sum
redundancy), 1,000 picks from 10,000 x 64 Zipf embeddings.

Identical inputs for everyone:

* feature_based: non-negative features F = |X| min-max scaled per column to
  [0, 1] (float64; submodlib min-max scales whatever it gets, so on these it
  computes the same function as apricot and us), concave "sqrt" (apricot's
  default; ``--concave`` to change; submodlib calls x / (1 + x) "inverse");
* saturated_coverage (alpha 0.1, apricot's default) and sum_redundancy:
  S = coreset.similarity.dense_similarity(X, "cosine") (clipped cosine,
  float32, N x N), apricot with metric="precomputed".

Methods: our NaiveGreedy and LazyGreedy (objective construction included;
LazyGreedy evaluates dense rows on numba's threads, as apricot's numba calls
do),
apricot optimizer="lazy" (its fastest exact optimizer; fit() included),
submodlib optimizer="LazyGreedy" (construction, which converts the features to
lists of tuples in Python, included). One
warm-up each on the first ``--warmup-n`` points (4,096 for the similarity
objectives, so lazy greedy's batched loop compiles; numba JIT: the same array
types, so the same compiled code), then R rounds interleaved across methods; median seconds.
apricot gets ``--peer-repeats`` rounds (default 1): its saturated coverage
re-evaluates ~100 candidates a pick at ~7 ms each (a parallel numba call per
single candidate), so one 10,000-point round takes tens of minutes on 2 cores.
Every method's picks are scored by OUR ``evaluate()`` on the same function, and
compared with each peer's (objective ratio, overlap, speedup).

    python benchmarks/bench_obj_a.py              # R=3, writes results/objectives-a-<machine>.json
    python benchmarks/bench_obj_a.py --n 2000 -r 1 --out /tmp/smoke.json
    python benchmarks/bench_obj_a.py --only sum_redundancy
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine_info, median, ru_maxrss_mb, write_json  # noqa: E402
from bench_peers import quiet_fds  # noqa: E402

OBJECTIVES = ("feature_based", "saturated_coverage", "sum_redundancy")


SUBMODLIB_MODE = {"log": "logarithmic", "sqrt": "squareRoot", "sigmoid": "inverse"}


def make_methods(name, F, S, k, concave, alpha, skip=()):
    """{method: (callable -> indices, description)} and the scoring objective."""
    from coreset.objectives import FeatureBased, SaturatedCoverage, SumRedundancy
    from coreset.optimizers import LazyGreedy, NaiveGreedy

    if name == "feature_based":
        make = lambda: FeatureBased(F, concave_func=concave)  # noqa: E731
        ours = f"FeatureBased(F, concave_func={concave!r})"

        def peer():
            from apricot import FeatureBasedSelection

            return FeatureBasedSelection(k, concave_func=concave, optimizer="lazy").fit(F)

        peer_desc = f"apricot FeatureBasedSelection(k, concave_func={concave!r}, optimizer='lazy').fit(F)"
    elif name == "saturated_coverage":
        make = lambda: SaturatedCoverage(S, alpha=alpha)  # noqa: E731
        ours = f"SaturatedCoverage(S, alpha={alpha})"

        def peer():
            from apricot import SaturatedCoverageSelection

            return SaturatedCoverageSelection(k, metric="precomputed", alpha=alpha, optimizer="lazy").fit(S)

        peer_desc = f"apricot SaturatedCoverageSelection(k, metric='precomputed', alpha={alpha}, optimizer='lazy').fit(S)"
    else:
        make = lambda: SumRedundancy(S)  # noqa: E731
        ours = "SumRedundancy(S)"

        def peer():
            from apricot import SumRedundancySelection

            return SumRedundancySelection(k, metric="precomputed", optimizer="lazy").fit(S)

        peer_desc = "apricot SumRedundancySelection(k, metric='precomputed', optimizer='lazy').fit(S)"

    def run(opt):
        def fn():
            idx, _ = opt.maximize(make(), k)
            return idx
        return fn

    def apricot():
        with quiet_fds():
            m = peer()
        return np.asarray(m.ranking, np.int64)

    def submodlib():
        from submodlib import FeatureBasedFunction
        from submodlib_cpp import FeatureBased as Modes

        with quiet_fds():
            f = FeatureBasedFunction(n=F.shape[0], features=F.tolist(), numFeatures=F.shape[1], sparse=False,
                                     mode=getattr(Modes, SUBMODLIB_MODE[concave]))
            out = f.maximize(budget=k, optimizer="LazyGreedy", stopIfZeroGain=False, stopIfNegativeGain=False,
                             verbose=False, show_progress=False)
        return np.array([i for i, _ in out], np.int64)

    methods = {
        "coreset naive_greedy": (run(NaiveGreedy()), f"NaiveGreedy().maximize({ours}, k)"),
        "coreset lazy_greedy": (run(LazyGreedy()), f"LazyGreedy().maximize({ours}, k)"),
    }
    if "apricot" not in skip:
        methods["apricot lazy"] = (apricot, peer_desc)
    if name == "feature_based" and "submodlib" not in skip:
        methods["submodlib LazyGreedy"] = (
            submodlib, f"submodlib FeatureBasedFunction(features=F.tolist(), sparse=False, "
                       f"mode={SUBMODLIB_MODE[concave]}).maximize(budget=k, optimizer='LazyGreedy')")
    return methods, make()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-r", "--repeats", type=int, default=3, help="timed rounds after the warm-up (default 3)")
    ap.add_argument("--peer-repeats", type=int, default=1, help="timed rounds of apricot (default 1: it is slow)")
    ap.add_argument("--warmup-n", type=int, default=1000,
                    help="points in the warm-up run (default 1000: above lazy greedy's 512-candidate threshold "
                         "for the bucket walk, so both of its loops compile)")
    ap.add_argument("-n", "--n", "--n-samples", dest="n_samples", type=int, default=10_000)
    ap.add_argument("-d", "--n-features", type=int, default=64)
    ap.add_argument("-k", "--n-select", type=int, default=None, help="picks (default 1000, or n/10 when n < 10000)")
    ap.add_argument("--concave", default="sqrt", choices=["sqrt", "log", "sigmoid"])
    ap.add_argument("--alpha", type=float, default=0.1, help="saturated coverage alpha (default 0.1)")
    ap.add_argument("--only", nargs="*", default=list(OBJECTIVES), choices=OBJECTIVES)
    ap.add_argument("--skip", nargs="*", default=[], choices=["apricot", "submodlib"], help="peers to leave out")
    ap.add_argument("--machine", default=None, help="name used in the results file (default: <cpus>cpu-<cpu model>)")
    ap.add_argument("--out", default=None, help="output JSON (default results/objectives-a-<machine>.json)")
    args = ap.parse_args(argv)

    import coreset
    from coreset.data import make_zipf
    from coreset.similarity import dense_similarity

    info = machine_info(args.machine)
    X = make_zipf(args.n_samples, args.n_features, random_state=0).X
    n = X.shape[0]
    k = args.n_select or (1000 if n >= 10_000 else max(1, n // 10))
    F = np.abs(X).astype(np.float64)
    F = (F - F.min(0)) / (F.max(0) - F.min(0))
    need_S = any(o != "feature_based" for o in args.only)
    S = dense_similarity(X, "cosine") if need_S else None

    print(f"# {n} x {X.shape[1]} Zipf, select {k}, machine {info['name']} ({info['cpu']}, {info['cpus']} cpus)",
          flush=True)
    load_start = os.getloadavg()[0]
    all_results = {}
    from coreset.optimizers._kernels import PARALLEL_MIN_WORK

    for obj in args.only:
        # on a similarity, at least PARALLEL_MIN_WORK points: lazy greedy's batched loop (dense rows that
        # long) compiles in the warm-up too
        m = min(args.warmup_n if obj == "feature_based" else max(args.warmup_n, PARALLEL_MIN_WORK), n)
        warm, _ = make_methods(obj, F[:m], None if S is None else np.ascontiguousarray(S[:m, :m]),
                               max(1, m // 10), args.concave, args.alpha, args.skip)
        methods, oracle = make_methods(obj, F, S, k, args.concave, args.alpha, args.skip)
        results = {}
        for name, (fn, desc) in warm.items():
            t = time.perf_counter()
            fn()
            results[name] = {"description": methods[name][1], "warmup_seconds": time.perf_counter() - t,
                             "warmup_n": m, "seconds_all": []}
            print(f"  {obj}: warm-up ({m} points) {name}: {results[name]['warmup_seconds']:.2f} s", flush=True)
        for r in range(max(args.repeats, args.peer_repeats)):
            for name, (fn, _) in methods.items():
                if r >= (args.repeats if name.startswith("coreset") else args.peer_repeats):
                    continue
                t = time.perf_counter()
                idx = fn()
                dt = time.perf_counter() - t
                results[name]["seconds_all"].append(dt)
                if "_idx" in results[name] and not np.array_equal(idx, results[name]["_idx"]):
                    results[name]["nondeterministic"] = True
                results[name]["_idx"] = idx
                print(f"  {obj}: round {r + 1} {name}: {dt:.3f} s", flush=True)
        constant = getattr(oracle, "constant", 0.0)
        for name, res in results.items():
            idx = res["_idx"]
            res["seconds"] = median(res["seconds_all"])
            res["objective"] = oracle.evaluate(idx)
            if constant:  # sum redundancy: C - redundancy; the redundancy is what differs
                res["redundancy"] = constant - res["objective"]
            res["n_selected"] = int(idx.size)
            res["n_unique"] = int(np.unique(idx).size)
        for pname, tag in (("apricot lazy", "apricot"), ("submodlib LazyGreedy", "submodlib")):
            peer = results.get(pname)
            if peer is None:
                continue
            for name, res in results.items():
                res[f"objective_ratio_vs_{tag}"] = res["objective"] / peer["objective"]
                if constant:
                    res[f"redundancy_ratio_vs_{tag}"] = res["redundancy"] / peer["redundancy"]
                res[f"speedup_vs_{tag}"] = peer["seconds"] / res["seconds"]
                res[f"overlap_vs_{tag}"] = int(np.intersect1d(res["_idx"], peer["_idx"]).size)
                res[f"same_ranking_as_{tag}"] = bool(np.array_equal(res["_idx"], peer["_idx"]))
        for res in results.values():
            res.pop("_idx")
        all_results[obj] = results

    print()
    def cell(res, key, fmt, suffix=""):
        return format(res[key], fmt) + suffix if key in res else "-"

    print("| objective | method | median s | objective | obj/apricot | overlap with apricot | x vs apricot "
          "| obj/submodlib | x vs submodlib |")
    print("|---|---|---|---|---|---|---|---|---|")
    for obj, results in all_results.items():
        for name, res in results.items():
            print(f"| {obj} | {name} | {res['seconds']:.3f} | {res['objective']:.6g} | "
                  f"{cell(res, 'objective_ratio_vs_apricot', '.6f')} | {cell(res, 'overlap_vs_apricot', 'd', f'/{k}')} | "
                  f"{cell(res, 'speedup_vs_apricot', '.1f', 'x')} | {cell(res, 'objective_ratio_vs_submodlib', '.6f')} | "
                  f"{cell(res, 'speedup_vs_submodlib', '.1f', 'x')} |")

    out = {
        "benchmark": "objectives-a",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": info,
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "params": {"n_samples": n, "n_features": int(X.shape[1]), "n_select": k,
                   "data": f"coreset.data.make_zipf({args.n_samples}, {args.n_features}, random_state=0)",
                   "features": "F = np.abs(X) as float64, min-max scaled per column to [0, 1] (feature_based)",
                   "similarity": "coreset.similarity.dense_similarity(X, 'cosine') (clipped cosine, float32)",
                   "concave_func": args.concave, "alpha": args.alpha,
                   "repeats": args.repeats, "peer_repeats": args.peer_repeats, "warmup_n": args.warmup_n,
                   "statistic": "median of repeats after 1 warm-up on the first warmup_n points",
                   "objective": "our evaluate() of each method's picks on the same function "
                                "(sum_redundancy includes the constant C = sum of S; 'redundancy' = C - objective)"},
        "peak_rss_mb": ru_maxrss_mb(),
        "loadavg_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "results": all_results,
        "coreset_version": coreset.__version__,
    }
    path = Path(args.out) if args.out else RESULTS / f"objectives-a-{info['name']}.json"
    write_json(path, out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
