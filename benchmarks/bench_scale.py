"""Scaling of coreset.select on a kNN graph: N = 1e4 .. 1e6, d = 128, k = 32, 10% selected.

Each N runs in a fresh subprocess, so peak memory is per N. Inside it: a
warm-up select on a tiny input (numba JIT, FAISS/OpenMP start-up), then the
data (make_zipf(N, 128, n_classes=1000, random_state=0)), then one timed
coreset.select(X, n_select=N // 10, metric="cosine", n_neighbors=32,
random_state=0) with lazy greedy. Reported from Selection.meta["timings"]:
graph / optimize / weights / total seconds; the objective; memory: the
process's ru_maxrss, the RSS with the data loaded (baseline), and the peak
RSS during select alone (VmHWM after resetting it through
/proc/self/clear_refs, Linux).

Extra checks (after the memory reading, so they do not inflate it):
* recall@32 of the approximate graph select used (rebuilt with the same seed)
  against exact search, on 1,000 seeded query rows (coreset.similarity.knn_recall);
* at --quality-at N (default 100000): lazy greedy on the EXACT 32-NN graph, and
  both selections evaluated on the exact-graph facility location.

    python benchmarks/bench_scale.py                        # all N, writes results/scale-<machine>.json
    python benchmarks/bench_scale.py --ns 1e4 1e5           # a subset (merged into the same file)
    python benchmarks/bench_scale.py --ns 1e6 --no-recall   # skip the recall rebuild

Old against new, in one run (``--against``): every N runs in a checkout of the
old code (its folder put first on PYTHONPATH) and in this checkout, one
fresh process each, interleaved: round 1 old then new, round 2 new then old,
and so on, so that both meet the same load. Recall and the quality check run
in round 1 only. Writes results/scale-vs-<label>-<machine>.json:

    git worktree add /tmp/coreset-head HEAD      # the old code, beside this checkout
    python benchmarks/bench_scale.py --ns 1e5 1e6 --against /tmp/coreset-head --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    RESULTS, hwm_mb, machine_info, reset_peak_rss, rss_mb, ru_maxrss_mb, write_json,
)

DEFAULT_NS = [10_000, 30_000, 100_000, 300_000, 1_000_000]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def worker(args) -> dict:
    import coreset
    from coreset.data import make_zipf
    from coreset.objectives import FacilityLocation
    from coreset.optimizers import LazyGreedy
    from coreset.similarity import EXACT_MAX_N, knn_graph, knn_recall

    n, d, k = args.worker, args.n_features, args.n_neighbors
    n_select = int(round(args.fraction * n))
    rec = {"n": n, "d": d, "k": k, "n_select": n_select}

    # warm-up: JIT + FAISS on a tiny input, both graph paths (exact and partitioned)
    t = time.perf_counter()
    Xw = make_zipf(3_000, d, n_classes=50, random_state=1).X
    coreset.select(Xw, n_select=300, metric="cosine", n_neighbors=k, random_state=0)
    knn_graph(Xw, k, exact=False)
    del Xw
    rec["warmup_seconds"] = time.perf_counter() - t
    rec["rss_after_warmup_mb"] = rss_mb()
    rec["coreset_package"] = str(Path(coreset.__file__).resolve().parent.parent.name)  # which checkout ran

    t = time.perf_counter()
    X = make_zipf(n, d, n_classes=args.n_classes, random_state=0).X
    rec["datagen_seconds"] = time.perf_counter() - t
    rec["x_mb"] = X.nbytes / 2**20
    rec["baseline_rss_mb"] = rss_mb()          # process + data, before select
    rec["ru_maxrss_before_select_mb"] = ru_maxrss_mb()
    can_reset = reset_peak_rss()
    rec["loadavg_before"] = os.getloadavg()[0]

    log(f"[N={n}] select {n_select} ...")
    t = time.perf_counter()
    sel = coreset.select(X, n_select=n_select, metric="cosine", n_neighbors=k, random_state=0)
    rec["wall_seconds"] = time.perf_counter() - t
    rec["loadavg_after"] = os.getloadavg()[0]  # 1-min load average: other work on the machine
    rec["peak_rss_select_mb"] = hwm_mb() if can_reset else None   # peak during select (incl. X)
    rec["ru_maxrss_mb"] = ru_maxrss_mb()                         # whole process so far
    if rec["peak_rss_select_mb"] is not None:
        rec["select_extra_mb"] = rec["peak_rss_select_mb"] - rec["baseline_rss_mb"]
    tm = sel.meta["timings"]
    rec["timings"] = {key: float(v) for key, v in tm.items()}
    rec["graph"] = sel.meta["graph"]
    rec["backend"] = sel.meta["backend"]
    rec["objective"] = float(sel.objective)
    rec["objective_per_point"] = float(sel.objective) / n
    rec["weights_sum"] = float(sel.weights.sum())
    rec["n_selected"] = int(sel.indices.size)
    log(f"[N={n}] total {tm['total']:.2f} s (graph {tm['graph']:.2f}, optimize {tm['optimize']:.2f}, "
        f"weights {tm['weights']:.2f}); peak {rec['peak_rss_select_mb']} MB")

    approx = n > EXACT_MAX_N
    if not args.no_recall:
        # the graph select used: same seed as select derives from random_state=0
        seed = int(np.random.default_rng(0).integers(0, 2**31 - 1))
        t = time.perf_counter()
        idx_a, _ = knn_graph(X, k, exact=None, random_state=seed)
        rec["recall_graph_rebuild_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        rec["recall_at_k"] = float(knn_recall(X, idx_a, n_queries=args.recall_queries, random_state=0))
        rec["recall_seconds"] = time.perf_counter() - t
        rec["recall_queries"] = args.recall_queries
        rec["recall_graph_exact"] = not approx
        log(f"[N={n}] recall@{k} = {rec['recall_at_k']:.4f} ({args.recall_queries} queries)")
        del idx_a

    if n in args.quality_at:
        log(f"[N={n}] exact {k}-NN graph + lazy greedy for the quality check ...")
        t = time.perf_counter()
        idx_e, sims_e = knn_graph(X, k, exact=True)
        t_graph = time.perf_counter() - t
        f = FacilityLocation.from_knn(idx_e, sims_e)
        t = time.perf_counter()
        sel_e, _ = LazyGreedy().select(f, n_select)
        t_opt = time.perf_counter() - t
        oracle = FacilityLocation.from_knn(idx_e, sims_e)
        f_exact = oracle.evaluate(sel_e)
        f_approx = oracle.evaluate(sel.indices)
        rec["quality"] = {
            "exact_graph_seconds": t_graph,
            "exact_optimize_seconds": t_opt,
            "objective_exact_graph_selection": f_exact,
            "objective_approx_graph_selection": f_approx,
            "ratio": f_approx / f_exact,
            "overlap": int(np.intersect1d(sel_e, sel.indices).size),
            "note": "both selections evaluated on FacilityLocation.from_knn(exact 32-NN graph)",
        }
        log(f"[N={n}] approx/exact objective = {f_approx / f_exact:.5f}")
    rec["ru_maxrss_end_mb"] = ru_maxrss_mb()
    return rec


def parse_n(s: str) -> int:
    return int(float(s))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ns", nargs="*", type=parse_n, default=DEFAULT_NS, help="sample counts (e.g. 1e4 3e4 1e5)")
    ap.add_argument("-d", "--n-features", type=int, default=128)
    ap.add_argument("--n-classes", type=int, default=1000)
    ap.add_argument("-k", "--n-neighbors", type=int, default=32)
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--quality-at", nargs="*", type=parse_n, default=[100_000],
                    help="N values at which to run the exact-graph quality check")
    ap.add_argument("--no-recall", action="store_true", help="skip the recall@k measurement")
    ap.add_argument("--recall-queries", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds allowed per N")
    ap.add_argument("--machine", default=None)
    ap.add_argument("--out", default=None, help="output JSON (default results/scale-<machine>.json); merged by N")
    ap.add_argument("--against", default=None, metavar="PATH",
                    help="a checkout of the code to compare with: each N runs in both, interleaved")
    ap.add_argument("--label", default=None, help="name of the --against code in the output (default: its folder)")
    ap.add_argument("--rounds", type=int, default=2, help="with --against: old/new pairs per N")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker is not None:
        rec = worker(args)
        print("RESULT " + json.dumps(rec), flush=True)
        return
    if args.against:
        return compare(args)

    info = machine_info(args.machine)
    path = Path(args.out) if args.out else RESULTS / f"scale-{info['name']}.json"
    old = {}
    if path.exists():
        try:
            prev = json.loads(path.read_text())
            old = {int(r["n"]): r for r in prev.get("results", [])}
        except (ValueError, KeyError):
            old = {}
    common = [f"-d={args.n_features}", f"--n-classes={args.n_classes}", f"-k={args.n_neighbors}",
              f"--fraction={args.fraction}", f"--recall-queries={args.recall_queries}",
              "--quality-at", *map(str, args.quality_at)]
    if args.no_recall:
        common.append("--no-recall")
    command = " ".join([os.path.basename(sys.executable), *sys.argv])
    for n in args.ns:
        log(f"== N = {n:,}")
        t = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, __file__, "--worker", str(n), *common],
                                  stdout=subprocess.PIPE, stderr=None, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            log(f"[N={n}] timed out after {args.timeout} s")
            old[n] = {"n": n, "error": f"timed out after {args.timeout} s", "command": command}
            continue
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            log(f"[N={n}] failed (exit {proc.returncode})")
            old[n] = {"n": n, "error": f"exit {proc.returncode}", "command": command}
            continue
        rec = json.loads(lines[-1][len("RESULT "):])
        rec["process_seconds"] = time.perf_counter() - t
        rec["command"] = command
        old[n] = rec
        write_json(path, {"benchmark": "scale", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                          "machine": info, "params": _params(args), "results": [old[m] for m in sorted(old)]})

    out = {"benchmark": "scale", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info,
           "params": _params(args), "results": [old[m] for m in sorted(old)]}
    write_json(path, out)
    print_table(out["results"])
    print(f"\nwrote {path}")


def _run_worker(n, args, flags, env=None):
    """One worker process for N; its record, or an error record."""
    t = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--worker", str(n), *flags], stdout=subprocess.PIPE,
                              stderr=None, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"n": n, "error": f"timed out after {args.timeout} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"n": n, "error": f"exit {proc.returncode}"}
    rec = json.loads(lines[-1][len("RESULT "):])
    rec["process_seconds"] = time.perf_counter() - t
    return rec


def compare(args):
    """--against: the old checkout and this one, interleaved per N and round."""
    old_root = Path(args.against).resolve()
    if not (old_root / "coreset" / "__init__.py").is_file():
        raise SystemExit(f"--against {args.against}: no coreset/ package there")
    label = args.label or old_root.name
    new_root = Path(__file__).resolve().parent.parent
    info = machine_info(args.machine)
    path = Path(args.out) if args.out else RESULTS / f"scale-vs-{label}-{info['name']}.json"
    base = [f"-d={args.n_features}", f"--n-classes={args.n_classes}", f"-k={args.n_neighbors}",
            f"--fraction={args.fraction}", f"--recall-queries={args.recall_queries}"]
    command = " ".join([os.path.basename(sys.executable), *sys.argv])
    runs = []
    for n in args.ns:
        for rnd in range(args.rounds):
            order = [(label, old_root), ("new", new_root)]
            if rnd % 2:
                order.reverse()
            for pos, (who, root) in enumerate(order):
                flags = list(base)
                if rnd == 0 and not args.no_recall:
                    flags += ["--quality-at", *map(str, args.quality_at)]
                else:
                    flags += ["--no-recall", "--quality-at"]
                env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                    [str(root), *filter(None, [os.environ.get("PYTHONPATH")])])}
                log(f"== N = {n:,}, round {rnd + 1}, {who} ({root})")
                rec = _run_worker(n, args, flags, env)
                rec.update(code=who, round=rnd + 1, position=pos + 1, command=command)  # no machine paths in results
                runs.append(rec)
                write_json(path, _compare_out(runs, args, info, label))
    out = _compare_out(runs, args, info, label)
    write_json(path, out)
    print_compare(out)
    print(f"\nwrote {path}")


def _compare_out(runs, args, info, label):
    summary = []
    for n in sorted({r["n"] for r in runs}):
        ok = [r for r in runs if r["n"] == n and "error" not in r]
        row = {"n": n}
        for who in (label, "new"):
            mine = [r for r in ok if r["code"] == who]
            if not mine:
                continue
            med = lambda key, f=None: float(np.median([f(r) if f else r[key] for r in mine]))  # noqa: E731
            row[who] = {"total_s": [r["timings"]["total"] for r in mine],
                        "graph_s": [r["timings"]["graph"] for r in mine],
                        "median_total_s": med(None, lambda r: r["timings"]["total"]),
                        "median_graph_s": med(None, lambda r: r["timings"]["graph"]),
                        "median_optimize_s": med(None, lambda r: r["timings"]["optimize"]),
                        "peak_rss_select_mb": [r.get("peak_rss_select_mb") for r in mine],
                        "objective_per_point": mine[0]["objective_per_point"],
                        "recall_at_k": next((r["recall_at_k"] for r in mine if "recall_at_k" in r), None),
                        "quality_ratio": next((r["quality"]["ratio"] for r in mine if "quality" in r), None),
                        "loadavg": [[r["loadavg_before"], r["loadavg_after"]] for r in mine]}
        pairs = [(a, b) for a in ok for b in ok if a["code"] == label and b["code"] == "new"
                 and a["round"] == b["round"]]
        if pairs:
            row["new_over_old_total_by_round"] = [b["timings"]["total"] / a["timings"]["total"] for a, b in pairs]
            row["new_over_old_graph_by_round"] = [b["timings"]["graph"] / a["timings"]["graph"] for a, b in pairs]
        summary.append(row)
    return {"benchmark": "scale-vs", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info,
            "params": {**_params(args), "against": f"a checkout of {label}", "label": label,
                       "rounds": args.rounds,
                       "statistic": "one timed select per process, old and new interleaved (round 1 old first, "
                                    "round 2 new first, ...); recall and quality in round 1"},
            "summary": summary, "runs": runs}


def print_compare(out):
    label = out["params"]["label"]
    print(f"| N | code | total s by round | graph s by round | new / {label} total | peak RSS MB | objective / N "
          "| recall@k | approx / exact objective |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in out["summary"]:
        for who in (label, "new"):
            r = row.get(who)
            if not r:
                continue
            ratio = " / ".join(f"{x:.3f}" for x in row.get("new_over_old_total_by_round", [])) if who == "new" else ""
            rss = " / ".join(f"{x:.0f}" for x in r["peak_rss_select_mb"] if x is not None)
            rc = f"{r['recall_at_k']:.4f}" if r["recall_at_k"] is not None else "-"
            q = f"{r['quality_ratio']:.5f}" if r["quality_ratio"] is not None else "-"
            print(f"| {row['n']:,} | {who} | {' / '.join(f'{x:.2f}' for x in r['total_s'])} | "
                  f"{' / '.join(f'{x:.2f}' for x in r['graph_s'])} | {ratio} | {rss} | "
                  f"{r['objective_per_point']:.4f} | {rc} | {q} |")


def _params(args):
    return {"data": f"coreset.data.make_zipf(N, {args.n_features}, n_classes={args.n_classes}, random_state=0)",
            "call": f"coreset.select(X, n_select=round({args.fraction} * N), metric='cosine', "
                    f"n_neighbors={args.n_neighbors}, random_state=0)  # lazy greedy",
            "n_neighbors": args.n_neighbors, "fraction": args.fraction,
            "statistic": "one timed run per N after a warm-up on a tiny input in the same process"}


def print_table(results):
    print("| N | graph s | optimize s | weights s | total s | objective / N | peak RSS MB | peak - baseline MB | X MB | recall@k |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['n']:,} | {r['error']} |||||||")
            continue
        tm = r["timings"]
        rc = f"{r['recall_at_k']:.4f}" if "recall_at_k" in r else "-"
        pk = f"{r['peak_rss_select_mb']:.0f}" if r.get("peak_rss_select_mb") else f"{r['ru_maxrss_mb']:.0f} (ru_maxrss)"
        extra = f"{r['select_extra_mb']:.0f}" if r.get("select_extra_mb") is not None else "-"
        print(f"| {r['n']:,} | {tm['graph']:.2f} | {tm['optimize']:.2f} | {tm['weights']:.3f} | {tm['total']:.2f} | "
              f"{r['objective_per_point']:.4f} | {pk} | {extra} | {r['x_mb']:.0f} | {rc} |")
    for r in results:
        q = r.get("quality")
        if q:
            print(f"\nN={r['n']:,} quality: approx-graph selection / exact-graph selection (exact-graph objective) = "
                  f"{q['ratio']:.5f}  ({q['objective_approx_graph_selection']:.1f} / {q['objective_exact_graph_selection']:.1f}); "
                  f"exact graph {q['exact_graph_seconds']:.1f} s")


if __name__ == "__main__":
    main()
