"""GreeDi on Ray vs centralized lazy greedy: 1,000,000 x 128 float32.

Data: clustered gaussian blobs (1,000 centres ~ N(0, 1) * 3, unit noise,
cluster sizes Zipf-like), seeded, written once as .npy in chunks to
``--workdir`` (not committed; the generator never holds X whole).

Runs, each in a fresh driver process (so its peak RSS is its own):

* centralized: ``coreset.select(X, n_select=k)`` (facility location, lazy
  greedy, the default 32-NN graph, random_state=0) on the memory-mapped file;
* GreeDi: ``GreeDi(SubmodularSelector(), P, executor=RayExecutor(num_cpus=2,
  max_calls=1), random_state=0).fit(path)`` for P in 1, 2, 4, 8: a local Ray
  cluster with 2 CPUs (started before the clock), workers not reused, each
  task reporting its own ``ru_maxrss``; the driver reads only row numbers and
  the union's rows. A warm-up fit on 20,000 rows fills numba's disk cache.

Objective of every selection, measured the same way after the runs: the sum
over all N points of the cosine similarity to the nearest selected point
(FAISS exact inner-product search of normalised points against the
normalised selection, X read in blocks).

    python benchmarks/bench_greedi.py                      # results/greedi-<machine>.json
    python benchmarks/bench_greedi.py --n 200000 --partitions 2 4 --out greedi-small.json
    python benchmarks/bench_greedi.py --no-centralized --partitions 8 --partition-by kmeans   # added to the file
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
from _common import RESULTS, exact_objective, machine_info, ru_maxrss_mb, write_json  # noqa: E402


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def generate(path: Path, n: int, d: int, n_centers=1000, seed=0, chunk=100_000):
    rng = np.random.default_rng(seed)
    centers = (rng.standard_normal((n_centers, d)) * 3).astype(np.float32)
    p = 1.0 / np.arange(1, n_centers + 1) ** 0.8
    p /= p.sum()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (n, d)})
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            lab = rng.choice(n_centers, size=m, p=p)
            fh.write((centers[lab] + rng.standard_normal((m, d)).astype(np.float32)).tobytes())
    tmp.replace(path)


def objective(path: Path, indices: np.ndarray, block=100_000) -> float:
    """Sum over all points of the cosine to the nearest selected point (exact)."""
    from coreset.executors import NpySource

    return exact_objective(NpySource(path), indices, block)


# ------------------------------------------------------------------ one run per process
def run_centralized(path, k, out):
    import coreset

    X = np.load(path, mmap_mode="r")
    t = time.perf_counter()
    sel = coreset.select(X, n_select=k, random_state=0)
    wall = time.perf_counter() - t
    np.save(out, sel.indices)
    return {"seconds": wall, "driver_maxrss_mb": ru_maxrss_mb(), "timings": sel.meta["timings"],
            "weights_sum": float(sel.weights.sum())}


def run_greedi(path, k, P, out, warm, partition="random"):
    import ray

    from coreset import SubmodularSelector
    from coreset.executors import RayExecutor
    from coreset.selectors._greedi import GreeDi

    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    t_init = time.perf_counter() - t
    ex = RayExecutor(max_calls=1)
    GreeDi(SubmodularSelector(), 2, executor=ex, n_select=50, random_state=0).fit(warm)  # numba cache, ray warm
    rss_before = ru_maxrss_mb()
    t = time.perf_counter()
    g = GreeDi(SubmodularSelector(), P, executor=ex, partition=partition, n_select=k, random_state=0).fit(path)
    wall = time.perf_counter() - t
    np.save(out, g.selection_.indices)
    info = g.greedi_
    return {"seconds": wall, "ray_init_seconds": t_init, "driver_maxrss_mb": ru_maxrss_mb(),
            "driver_maxrss_before_fit_mb": rss_before, "timings": g.selection_.meta["timings"],
            "weights_sum": float(g.selection_.weights.sum()), "chosen": info["chosen"],
            "merge_candidates": info["merge_candidates"], "union_size": info.get("union_size"),
            "partition_sizes": info["partition_sizes"], "partition_seconds": info["partition_seconds"],
            "partition_read_seconds": info["partition_read_seconds"],
            "partition_bytes_read": info["partition_bytes_read"], "worker_maxrss_mb": info["worker_maxrss_mb"],
            "bytes_shipped": info["bytes_shipped"], "bytes_returned": info["bytes_returned"]}


def child(args):
    if args.child == "centralized":
        res = run_centralized(args.path, args.k, args.out_indices)
    else:
        res = run_greedi(args.path, args.k, int(args.child), args.out_indices, args.warm, args.partition_by)
    print("RESULT " + json.dumps(res), flush=True)


def spawn(kind, path, k, out_indices, warm, partition="random"):
    cmd = [sys.executable, __file__, "--child", str(kind), "--path", str(path), "--k", str(k),
           "--out-indices", str(out_indices), "--warm", str(warm), "--partition-by", partition]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        log(proc.stderr[-4000:])
        raise SystemExit(f"child {kind} failed")
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--partitions", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--workdir", default="/tmp/greedi_bench")
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-centralized", action="store_true",
                    help="skip it; runs are merged into an existing results file (its centralized run is the reference)")
    ap.add_argument("--partition-by", default="random", choices=["random", "kmeans"])
    ap.add_argument("--child", default=None)
    ap.add_argument("--path", default=None)
    ap.add_argument("--out-indices", default=None)
    ap.add_argument("--warm", default=None)
    args = ap.parse_args()
    if args.child:
        return child(args)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"blobs_{args.n}x{args.d}.npy"
    if not path.exists():
        log(f"generating {path}")
        generate(path, args.n, args.d)
    warm = work / "warm_20000.npy"
    if not warm.exists():
        generate(warm, 20_000, args.d, seed=1)
    machine = machine_info()
    out = RESULTS / (args.out or f"greedi-{machine['name']}.json")
    results = {"machine": machine, "n": args.n, "d": args.d, "k": args.k, "x_bytes": args.n * args.d * 4,
               "runs": {}}
    if args.no_centralized and out.exists():  # add runs to an earlier file
        results = json.loads(out.read_text())
    new = []
    if not args.no_centralized:
        log("centralized ...")
        idx = work / "sel_centralized.npy"
        results["runs"]["centralized"] = spawn("centralized", path, args.k, idx, warm)
        new.append("centralized")
        log(f"  {results['runs']['centralized']['seconds']:.1f} s")
    for P in args.partitions:
        log(f"greedi P={P} ({args.partition_by}) ...")
        name = f"greedi_{P}" if args.partition_by == "random" else f"greedi_{args.partition_by}_{P}"
        results["runs"][name] = spawn(P, path, args.k, work / f"sel_{name}.npy", warm, args.partition_by)
        results["runs"][name]["partition"] = args.partition_by
        new.append(name)
        log(f"  {results['runs'][name]['seconds']:.1f} s")
    for name in new:
        run = results["runs"][name]
        t = time.perf_counter()
        run["objective"] = objective(path, np.load(work / f"sel_{name}.npy"))
        log(f"{name}: objective {run['objective']:.1f} ({time.perf_counter() - t:.1f} s to evaluate)")
    if "centralized" in results["runs"]:
        ref = results["runs"]["centralized"]["objective"]
        for run in results["runs"].values():
            run["objective_ratio"] = run["objective"] / ref
    write_json(out, results)
    log(f"wrote {out}")


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    main()
