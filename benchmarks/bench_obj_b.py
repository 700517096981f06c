"""Graph cut, log-determinant and mixture: coreset vs the peers that have
them, 1,000 picks from 10,000 x 64 Zipf embeddings.

Identical input for everyone: S = coreset.similarity.dense_similarity(X,
"cosine") (clipped cosine, float32, N x N; apricot gets it with
metric="precomputed", submodlib as its dense kernel), except for the
log-determinant, which gets the Gaussian kernel dense_similarity(X,
"euclidean") (``--logdet-metric``): clipped cosine is not positive
semi-definite, and on these data 1,512 of the 9,000 unpicked candidates have
a Schur complement <= 0 after 1,000 picks (306 of the picks have negative
gains), where submodlib's gains become NaN and its LazyGreedy had not finished
one round after 12 minutes.

* graph_cut, lambda_ = 0.5 (``--lam``): submodlib GraphCutFunction(lambdaVal=0.5)
  is the same function; apricot GraphCutSelection(alpha=1/lambda_) is alpha
  times it (same ranking). Compared with both; the faster is "the peer".
* log_determinant, reg = 1 (``--reg``): submodlib LogDeterminantFunction
  (lambdaVal=1), the same function (apricot has none), on the Gaussian kernel;
  both run to k picks (submodlib with stopIfZeroGain/stopIfNegativeGain
  False).
* mixture: facility location + graph cut on the same S, weights (1, 1) with
  graph cut at lambda_ = 0.5; apricot MixtureSelection([FacilityLocation,
  GraphCut(alpha=2)], weights=[1, 0.5]) is the same function.

Methods: our NaiveGreedy and LazyGreedy (objective construction included);
apricot optimizer="lazy" (fit() included); submodlib optimizer="LazyGreedy"
(construction, which turns S into Python lists, included). One warm-up each on
the first ``--warmup-n`` points (numba JIT: the same array types, so the same
compiled code), then R rounds interleaved across methods; median seconds. Two runs
take minutes each at N = 10,000 and get ``--slow-repeats`` rounds (default 1):
our naive greedy on the mixture (the optimizers' Python path, and facility
location's naive greedy is O(N^2) a pick) and submodlib's log-determinant. Every method's picks are scored by OUR
``evaluate()`` on the same function, and compared with each peer's (objective
ratio, overlap, speedup).

    python benchmarks/bench_obj_b.py              # R=3, writes results/objectives-b-<machine>.json
    python benchmarks/bench_obj_b.py --n 2000 -r 1 --out /tmp/smoke.json
    python benchmarks/bench_obj_b.py --only graph_cut --skip submodlib
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

OBJECTIVES = ("graph_cut", "log_determinant", "mixture")
PEERS = {"apricot lazy": "apricot", "submodlib LazyGreedy": "submodlib"}
#: runs of minutes each at N = 10,000: they get --slow-repeats rounds
SLOW = {("mixture", "coreset naive_greedy"), ("log_determinant", "submodlib LazyGreedy")}


def make_methods(name, S, k, lam, reg, skip=()):
    """{method: (callable -> indices, description)} and the scoring objective."""
    from coreset.objectives import FacilityLocation, GraphCut, LogDeterminant, Mixture
    from coreset.optimizers import LazyGreedy, NaiveGreedy

    n = S.shape[0]
    alpha = 1.0 / lam if lam > 0 else float("inf")
    peers = {}
    if name == "graph_cut":
        make = lambda: GraphCut(S, lambda_=lam)  # noqa: E731
        ours = f"GraphCut(S, lambda_={lam})"

        def apricot():
            from apricot import GraphCutSelection

            return GraphCutSelection(k, metric="precomputed", alpha=alpha, optimizer="lazy").fit(S).ranking

        def submodlib():
            from submodlib import GraphCutFunction

            f = GraphCutFunction(n=n, mode="dense", lambdaVal=lam, ggsijs=S, separate_rep=False)
            return [i for i, _ in f.maximize(budget=k, optimizer="LazyGreedy", stopIfZeroGain=False,
                                              stopIfNegativeGain=False, verbose=False, show_progress=False)]

        peers["apricot lazy"] = (apricot, f"apricot GraphCutSelection(k, metric='precomputed', alpha={alpha:g}, "
                                          f"optimizer='lazy').fit(S)")
        peers["submodlib LazyGreedy"] = (submodlib, f"submodlib GraphCutFunction(mode='dense', lambdaVal={lam}, "
                                                    f"ggsijs=S, separate_rep=False).maximize(optimizer='LazyGreedy')")
    elif name == "log_determinant":
        make = lambda: LogDeterminant(S, reg=reg)  # noqa: E731
        ours = f"LogDeterminant(S, reg={reg})"

        def submodlib():
            from submodlib import LogDeterminantFunction

            f = LogDeterminantFunction(n=n, mode="dense", lambdaVal=reg, sijs=S)
            return [i for i, _ in f.maximize(budget=k, optimizer="LazyGreedy", stopIfZeroGain=False,
                                              stopIfNegativeGain=False, verbose=False, show_progress=False)]

        peers["submodlib LazyGreedy"] = (submodlib, f"submodlib LogDeterminantFunction(mode='dense', "
                                                    f"lambdaVal={reg}, sijs=S).maximize(optimizer='LazyGreedy')")
    else:
        comps = [FacilityLocation(), GraphCut(lambda_=lam)]
        make = lambda: Mixture(S, components=comps, weights=[1.0, 1.0])  # noqa: E731
        ours = f"Mixture(S, components=[FacilityLocation(), GraphCut(lambda_={lam})], weights=[1, 1])"

        def apricot():
            from apricot import FacilityLocationSelection, GraphCutSelection, MixtureSelection

            funcs = [FacilityLocationSelection(k, metric="precomputed"),
                     GraphCutSelection(k, metric="precomputed", alpha=alpha)]
            return MixtureSelection(k, funcs, weights=np.array([1.0, 1.0 / alpha]), optimizer="lazy").fit(S).ranking

        peers["apricot lazy"] = (apricot, f"apricot MixtureSelection(k, [FacilityLocationSelection(k, "
                                          f"metric='precomputed'), GraphCutSelection(k, metric='precomputed', "
                                          f"alpha={alpha:g})], weights=[1, {1 / alpha:g}], optimizer='lazy').fit(S)")

    def run(opt):
        def fn():
            idx, _ = opt.maximize(make(), k)
            return idx
        return fn

    def quiet(fn):
        def wrapped():
            with quiet_fds():
                return np.asarray(fn(), np.int64)
        return wrapped

    methods = {
        "coreset naive_greedy": (run(NaiveGreedy()), f"NaiveGreedy().maximize({ours}, k)"),
        "coreset lazy_greedy": (run(LazyGreedy()), f"LazyGreedy().maximize({ours}, k)"),
    }
    for pname, (fn, desc) in peers.items():
        if PEERS[pname] not in skip:
            methods[pname] = (quiet(fn), desc)
    return methods, make()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-r", "--repeats", type=int, default=3, help="timed rounds after the warm-up (default 3)")
    ap.add_argument("--slow-repeats", type=int, default=1,
                    help="timed rounds of the slow runs: our naive greedy on the mixture (O(N^2) a pick) and "
                         "submodlib's log-determinant (default 1)")
    ap.add_argument("--warmup-n", type=int, default=1000,
                    help="points in the warm-up run (default 1000: above lazy greedy's 512-candidate threshold "
                         "for the bucket walk, so both of its loops compile)")
    ap.add_argument("-n", "--n", "--n-samples", dest="n_samples", type=int, default=10_000)
    ap.add_argument("-d", "--n-features", type=int, default=64)
    ap.add_argument("-k", "--n-select", type=int, default=None, help="picks (default 1000, or n/10 when n < 10000)")
    ap.add_argument("--lam", type=float, default=0.5, help="graph cut lambda_ (default 0.5; apricot alpha = 1/lambda_)")
    ap.add_argument("--reg", type=float, default=1.0, help="log-determinant reg (submodlib lambdaVal; default 1)")
    ap.add_argument("--logdet-metric", default="euclidean", choices=["euclidean", "cosine"],
                    help="similarity of the log-determinant (default euclidean: the Gaussian kernel, PSD)")
    ap.add_argument("--only", nargs="*", default=list(OBJECTIVES), choices=OBJECTIVES)
    ap.add_argument("--skip", nargs="*", default=[], choices=["apricot", "submodlib"], help="peers to leave out")
    ap.add_argument("--machine", default=None, help="name used in the results file (default: <cpus>cpu-<cpu model>)")
    ap.add_argument("--out", default=None, help="output JSON (default results/objectives-b-<machine>.json)")
    args = ap.parse_args(argv)

    import coreset
    from coreset.data import make_zipf
    from coreset.similarity import dense_similarity

    info = machine_info(args.machine)
    X = make_zipf(args.n_samples, args.n_features, random_state=0).X
    n = X.shape[0]
    k = args.n_select or (1000 if n >= 10_000 else max(1, n // 10))
    S = dense_similarity(X, "cosine")
    S_ld = None
    if "log_determinant" in args.only:
        S_ld = S if args.logdet_metric == "cosine" else dense_similarity(X, args.logdet_metric)

    print(f"# {n} x {X.shape[1]} Zipf, select {k}, machine {info['name']} ({info['cpu']}, {info['cpus']} cpus)",
          flush=True)
    load_start = os.getloadavg()[0]
    all_results = {}
    for obj in args.only:
        m = min(args.warmup_n, n)
        So = S_ld if obj == "log_determinant" else S
        warm, _ = make_methods(obj, np.ascontiguousarray(So[:m, :m]), max(1, m // 10), args.lam, args.reg, args.skip)
        methods, oracle = make_methods(obj, So, k, args.lam, args.reg, args.skip)
        results = {}
        for name, (fn, _) in warm.items():
            t = time.perf_counter()
            fn()
            results[name] = {"description": methods[name][1], "warmup_seconds": time.perf_counter() - t,
                             "warmup_n": m, "seconds_all": []}
            print(f"  {obj}: warm-up ({m} points) {name}: {results[name]['warmup_seconds']:.2f} s", flush=True)

        def rounds(name):
            slow = (obj, name) in SLOW
            return args.slow_repeats if slow else args.repeats

        for r in range(max(args.repeats, args.slow_repeats)):
            for name, (fn, _) in methods.items():
                if r >= rounds(name):
                    continue
                t = time.perf_counter()
                idx = fn()
                dt = time.perf_counter() - t
                results[name]["seconds_all"].append(dt)
                if "_idx" in results[name] and not np.array_equal(idx, results[name]["_idx"]):
                    results[name]["nondeterministic"] = True
                results[name]["_idx"] = idx
                print(f"  {obj}: round {r + 1} {name}: {dt:.3f} s", flush=True)
        for name, res in results.items():
            idx = res["_idx"]
            res["seconds"] = median(res["seconds_all"])
            res["objective"] = float(oracle.evaluate(idx))
            res["n_selected"] = int(idx.size)
            res["n_unique"] = int(np.unique(idx).size)
        peer_names = [p for p in PEERS if p in results]
        fastest = min(peer_names, key=lambda p: results[p]["seconds"]) if peer_names else None
        for pname in peer_names:
            tag = PEERS[pname]
            peer = results[pname]
            for name, res in results.items():
                res[f"objective_ratio_vs_{tag}"] = res["objective"] / peer["objective"]
                res[f"speedup_vs_{tag}"] = peer["seconds"] / res["seconds"]
                res[f"overlap_vs_{tag}"] = int(np.intersect1d(res["_idx"], peer["_idx"]).size)
                res[f"same_ranking_as_{tag}"] = bool(np.array_equal(res["_idx"], peer["_idx"]))
        if fastest:
            for res in results.values():
                res["faster_peer"] = PEERS[fastest]
                res["speedup_vs_faster_peer"] = results[fastest]["seconds"] / res["seconds"]
                res["objective_ratio_vs_faster_peer"] = res["objective"] / results[fastest]["objective"]
        for res in results.values():
            res.pop("_idx")
        all_results[obj] = results

    print()

    def cell(res, key, fmt, suffix=""):
        return format(res[key], fmt) + suffix if key in res else "-"

    print("| objective | method | median s | objective | faster peer | obj/peer | overlap | x vs peer |")
    print("|---|---|---|---|---|---|---|---|")
    for obj, results in all_results.items():
        for name, res in results.items():
            tag = res.get("faster_peer")
            print(f"| {obj} | {name} | {res['seconds']:.3f} | {res['objective']:.6g} | {tag or '-'} | "
                  f"{cell(res, 'objective_ratio_vs_faster_peer', '.6f')} | "
                  f"{cell(res, f'overlap_vs_{tag}', 'd', f'/{k}')} | "
                  f"{cell(res, 'speedup_vs_faster_peer', '.1f', 'x')} |")

    out = {
        "benchmark": "objectives-b",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": info,
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "params": {"n_samples": n, "n_features": int(X.shape[1]), "n_select": k,
                   "data": f"coreset.data.make_zipf({args.n_samples}, {args.n_features}, random_state=0)",
                   "similarity": "coreset.similarity.dense_similarity(X, 'cosine') (clipped cosine, float32), "
                                 "the same array for every method",
                   "graph_cut_lambda": args.lam, "apricot_alpha": 1.0 / args.lam if args.lam else None,
                   "log_determinant_reg": args.reg,
                   "log_determinant_similarity": f"coreset.similarity.dense_similarity(X, {args.logdet_metric!r}) "
                                                 f"(float32)",
                   "mixture": f"facility_location + graph_cut(lambda_={args.lam}), weights (1, 1)",
                   "repeats": args.repeats, "slow_repeats": args.slow_repeats, "warmup_n": args.warmup_n,
                   "statistic": "median of repeats after 1 warm-up on the first warmup_n points",
                   "objective": "our evaluate() of each method's picks on the same function"},
        "peak_rss_mb": ru_maxrss_mb(),
        "loadavg_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "results": all_results,
        "coreset_version": coreset.__version__,
    }
    path = Path(args.out) if args.out else RESULTS / f"objectives-b-{info['name']}.json"
    write_json(path, out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
