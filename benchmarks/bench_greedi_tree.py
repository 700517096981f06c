"""Multi-round GreeDi (a merge tree under ``merge_cap``) vs single-round GreeDi.

Data: ``coreset.data.make_zipf(N, d, n_classes=1000, random_state=0).X``
(default 1,000,000 x 64 float32), written once as .npy to ``--workdir`` (not
committed).

Runs, each in a fresh process (so its peak RSS is its own), local executor,
facility location + lazy greedy on the default 32-NN graph, random_state=0:

* single: ``GreeDi(SubmodularSelector(), P, n_select=k)``: every partition
  selects k, one merge of the P x k picks on the driver;
* tree_o<...>: the same with ``merge_cap=CAP`` and a per-level
  ``oversample`` (``--trees 1.0 0.1,1.0``: one run per comma-separated list),
  the picks merged in a tree whose every merge selects from at most CAP rows.

A warm-up fit on 20,000 rows fills numba's disk cache first. Objective of
every selection, measured the same way after the runs: the sum over all N
points of the cosine similarity to the nearest selected point (FAISS exact
inner-product search of normalised points, X read in blocks; the function of
bench_greedi.py).

    nice -n 5 python benchmarks/bench_greedi_tree.py           # results/greedi-tree-<machine>.json
    python benchmarks/bench_greedi_tree.py --n 100000 --k 1000 --cap 5000 --out /tmp/greedi-tree-small.json
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
from _common import RESULTS, machine_info, ru_maxrss_mb, write_json  # noqa: E402
from bench_greedi import objective  # noqa: E402


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def generate(path: Path, n: int, d: int):
    from coreset.data import make_zipf

    X = make_zipf(n, d, n_classes=1000, random_state=0).X
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, np.ascontiguousarray(X, np.float32))
    tmp.replace(path)


def run(path, warm, k, P, cap, oversample, out):
    from coreset import GreeDi, SubmodularSelector

    GreeDi(SubmodularSelector(), 4, n_select=200, merge_cap=400, random_state=0).fit(warm)  # numba cache
    rss_before, load_before = ru_maxrss_mb(), os.getloadavg()
    t = time.perf_counter()
    g = GreeDi(SubmodularSelector(), P, n_select=k, merge_cap=cap, oversample=oversample, random_state=0).fit(path)
    wall = time.perf_counter() - t
    np.save(out, g.selection_.indices)
    info = g.greedi_
    keep = ("chosen", "merge_cap", "oversample", "union_size", "levels", "partition_sizes", "partition_seconds",
            "partition_read_seconds", "partition_bytes_read", "bytes_shipped", "bytes_returned")
    return {"seconds": wall, "peak_rss_mb": ru_maxrss_mb(), "rss_before_fit_mb": rss_before,
            "loadavg_before_after": [list(load_before), list(os.getloadavg())],
            "timings": g.selection_.meta["timings"], "weights_sum": float(g.selection_.weights.sum()),
            "n_selected": int(g.selection_.indices.size), **{key: info.get(key) for key in keep}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--k", type=int, default=10_000)
    ap.add_argument("--P", type=int, default=100)
    ap.add_argument("--cap", type=int, default=50_000)
    ap.add_argument("--trees", nargs="*", default=["1.0", "0.1,1.0"],
                    help="per-level oversample of each tree run (comma-separated, level 0 first)")
    ap.add_argument("--no-single", action="store_true")
    ap.add_argument("--workdir", default="/tmp/greedi_tree_bench")
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", default=None)
    args = ap.parse_args()
    work = Path(args.workdir)
    path, warm = work / f"zipf_{args.n}x{args.d}.npy", work / f"zipf_20000x{args.d}.npy"
    if args.child:
        o = [float(v) for v in args.child.split(",")] if args.child != "single" else [1.0]
        cap, o = (None, 1.0) if args.child == "single" else (args.cap, o[0] if len(o) == 1 else o)
        res = run(path, warm, args.k, args.P, cap, o, work / f"sel_{args.child}.npy")
        (work / f"result_{args.child}.json").write_text(json.dumps(res))  # also on disk, should the parent die
        print("RESULT " + json.dumps(res), flush=True)
        return
    work.mkdir(parents=True, exist_ok=True)
    for p, n in ((path, args.n), (warm, 20_000)):
        if not p.exists():
            log(f"generating {p}")
            generate(p, n, args.d)
    machine = machine_info()
    out = RESULTS / (args.out or f"greedi-tree-{machine['name']}.json")
    results = {"benchmark": "greedi_tree", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine, "data": f"make_zipf({args.n}, {args.d}, n_classes=1000, random_state=0).X",
               "n": args.n, "d": args.d, "k": args.k, "P": args.P, "merge_cap": args.cap,
               "executor": "local", "runs": {}}
    for child in ([] if args.no_single else ["single"]) + args.trees:
        name = "single" if child == "single" else "tree_o" + child.replace(",", "_")
        log(f"{name} ...")
        cmd = [sys.executable, __file__, "--child", child, "--n", str(args.n), "--d", str(args.d), "--k", str(args.k),
               "--P", str(args.P), "--cap", str(args.cap), "--workdir", str(work)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            log(proc.stderr[-4000:])
            raise SystemExit(f"child {name} failed")
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
        results["runs"][name] = json.loads(line[len("RESULT "):])
        log(f"  {results['runs'][name]['seconds']:.1f} s, peak RSS {results['runs'][name]['peak_rss_mb']:.0f} MB")
    for name, r in results["runs"].items():
        t = time.perf_counter()
        child = "single" if name == "single" else name[len("tree_o"):].replace("_", ",")
        r["objective"] = objective(path, np.load(work / f"sel_{child}.npy"))
        log(f"{name}: objective {r['objective']:.1f} ({time.perf_counter() - t:.1f} s to evaluate)")
    if "single" in results["runs"]:
        for name, r in results["runs"].items():
            r["objective_over_single"] = r["objective"] / results["runs"]["single"]["objective"]
            log(f"{name} / single = {r['objective_over_single']:.4f}")
    write_json(out, results)
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
