"""Terms of the cost model in docs/scaling.md, measured on this machine.

* stream: ``coreset.select_stream`` rows/s against the embedding width d
  (64, 256, 768) at a fixed number of rows (default 200,000), reservoir
  10,000, n_select 1,000;
* offline (the work of one GreeDi partition): ``coreset.select`` seconds
  (graph + lazy greedy, facility location) against n (50k, 100k, 200k at
  d = 128) and against d (128, 768 at n = 100k), with peak RSS;
* the dense matrix product that bounds an exact kNN graph from below
  (n x n x d float32 ``X @ X.T`` blocks) at the same shapes.

Data: gaussian blobs (1,000 centres, noise 0.35), float32, seeded; each
configuration is timed once after a small warm-up (the compile cost of the
numba kernels is outside every clock). The machine is shared: the 1-minute
load average is recorded at start and end.

    python benchmarks/bench_costmodel.py            # -> results/costmodel-<machine>.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import hwm_mb, machine_info, reset_peak_rss, write_json  # noqa: E402


def blobs(n, d, seed=0, centres=1000):
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((centres, d)).astype(np.float32)
    lab = rng.integers(0, centres, n)
    return C[lab] + np.float32(0.35) * rng.standard_normal((n, d), dtype=np.float32)


def write_npy(path: Path, n, d, seed=0, block=100_000):
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for s in range(0, n, block):
        mm[s:s + block] = blobs(min(block, n - s), d, seed=seed + s)
    mm.flush()
    del mm


def matmul_seconds(n, d, block=8192):
    """Time of the n x n x d float32 product done in row blocks (the flops an
    exact kNN graph must do), extrapolated from the first 4 blocks."""
    X = blobs(n, d, seed=1)
    nb = min(4, -(-n // block))
    t = time.perf_counter()
    for b in range(nb):
        X[b * block:(b + 1) * block] @ X.T
    dt = time.perf_counter() - t
    return dt * (n / min(n, nb * block))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stream-n", type=int, default=200_000)
    ap.add_argument("--stream-dims", type=int, nargs="+", default=[64, 256, 768])
    ap.add_argument("--offline-ns", type=int, nargs="+", default=[50_000, 100_000, 200_000])
    ap.add_argument("--offline-dims", type=int, nargs="+", default=[128, 768])
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--machine", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import coreset

    info = machine_info(args.machine)
    out = {"benchmark": "costmodel", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info,
           "command": "python " + " ".join(sys.argv), "loadavg_1min": {"start": os.getloadavg()[0]},
           "params": vars(args), "stream": [], "offline": [], "matmul": []}
    X0 = blobs(20_000, 64)
    coreset.select_stream(X0, 50, reservoir=1000, random_state=0)
    coreset.select(X0, 50, random_state=0)
    with tempfile.TemporaryDirectory() as tmp:
        for d in args.stream_dims:
            p = Path(tmp) / f"s{d}.npy"
            write_npy(p, args.stream_n, d)
            t = time.perf_counter()
            coreset.select_stream(str(p), args.k, reservoir=10_000, random_state=0)
            s = time.perf_counter() - t
            row = {"d": d, "n": args.stream_n, "seconds": s, "rows_per_s": args.stream_n / s}
            out["stream"].append(row)
            print("stream", row, flush=True)
            p.unlink()
    shapes = [(n, args.offline_dims[0]) for n in args.offline_ns]
    shapes += [(args.offline_ns[min(1, len(args.offline_ns) - 1)], d) for d in args.offline_dims[1:]]
    for n, d in shapes:
        X = blobs(n, d)
        reset_peak_rss()
        t = time.perf_counter()
        sel = coreset.select(X, args.k, random_state=0)
        s = time.perf_counter() - t
        tm = sel.meta.get("timings", {})
        row = {"n": n, "d": d, "seconds": s, "graph_s": tm.get("graph"), "optimize_s": tm.get("optimize"),
               "peak_rss_mb": hwm_mb(), "x_mb": X.nbytes / 2**20}
        out["offline"].append(row)
        print("offline", row, flush=True)
        mm = matmul_seconds(n, d)
        out["matmul"].append({"n": n, "d": d, "seconds": mm, "gflops": 2.0 * n * n * d / mm / 1e9})
        print("matmul", out["matmul"][-1], flush=True)
        del X
    out["loadavg_1min"]["end"] = os.getloadavg()[0]
    path = Path(args.out or Path(__file__).parent / "results" / f"costmodel-{info['name']}.json")
    write_json(path, out)
    print("wrote", path)


if __name__ == "__main__":
    main()
