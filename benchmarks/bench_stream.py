"""Streaming selection (coreset.select_stream, Sieve-Streaming++) on clustered data.

Data: gaussian blobs, seeded: 1,000 centres ~ N(0, 1) in 64-d, each row a
centre plus N(0, 0.35^2) noise, float32, written once as .npy by explicit
chunked writes into --workdir (not committed).

* quality (1,000,000 x 64, n_select=1000): the stream's facility-location
  value against offline coreset.select(method="facility_location") (lazy
  greedy, default kNN similarity: the 32-NN partitioned graph). Both are
  measured the same way: the exact sum over ALL rows of the cosine similarity
  to the nearest pick (FAISS exact inner-product search of the normalised
  rows against the normalised picks). Also the stream's value for several
  reservoir sizes and the stream / offline seconds.
* scale (10,000,000 x 64, 2.56 GB): the stream runs in a fresh subprocess;
  peak RSS = its VmHWM (/proc/self/status; Linux keeps ru_maxrss across
  fork + exec, so a child's ru_maxrss can report the parent's peak; it is
  recorded too); rows/s.

    python benchmarks/bench_stream.py --workdir /tmp/stream-bench           # both parts
    python benchmarks/bench_stream.py --part quality --n 200000              # smaller
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine_info, ru_maxrss_mb, write_json  # noqa: E402


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def make_npy(path: Path, n: int, d: int = 64, n_centers: int = 1000, noise: float = 0.35, seed: int = 0,
             chunk: int = 500_000):
    if path.exists() and path.stat().st_size > n * d * 4:
        return
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((n_centers, d)).astype(np.float32)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (n, d)})
        for lo in range(0, n, chunk):
            c = min(chunk, n - lo)
            X = C[rng.integers(0, n_centers, c)] + noise * rng.standard_normal((c, d), dtype=np.float32)
            fh.write(X.astype(np.float32).tobytes())
    tmp.replace(path)


def fl_value(path: Path, picks: np.ndarray, block: int = 500_000) -> float:
    """Exact facility location: sum over all rows of max(0, cos(row, nearest pick))."""
    import faiss

    from coreset.data._chunks import open_source

    src = open_source(path, block)
    P = src.read_rows(np.sort(picks)).astype(np.float32)
    P /= np.linalg.norm(P, axis=1, keepdims=True)
    ix = faiss.IndexFlatIP(P.shape[1])
    ix.add(P)
    total = 0.0
    for _, _, X in src.chunks():
        X = X / np.linalg.norm(X, axis=1, keepdims=True)
        D, _ = ix.search(np.ascontiguousarray(X, np.float32), 1)
        total += float(np.maximum(D[:, 0], 0).astype(np.float64).sum())
    return total


def run_stream(path, k, reservoir, chunk_size=65536, epsilon=0.1, n_neighbors=32):
    from coreset import select_stream

    t = time.perf_counter()
    sel = select_stream(path, k, reservoir=reservoir, chunk_size=chunk_size, epsilon=epsilon,
                        n_neighbors=n_neighbors, random_state=0)
    return sel, time.perf_counter() - t


def part_quality(args, out):
    import coreset

    path = Path(args.workdir) / f"blobs-{args.n}x64.npy"
    make_npy(path, args.n)
    # warm-up: compile the kernels on a small input
    X_small = np.load(path, mmap_mode="r")[:20000].copy()
    coreset.select_stream(X_small, 50, reservoir=1000, random_state=0)
    coreset.select(X_small, 50, method="facility_location", random_state=0)
    rows = []
    for r in args.reservoirs:
        sel, secs = run_stream(path, args.k, r, epsilon=args.epsilon)
        v = fl_value(path, sel.indices)
        rows.append({"reservoir": r, "seconds": secs, "value": v, "finish": sel.meta["stream"]["finish"],
                     "sieve_reservoir_value": sel.meta["stream"]["best_sieve_value"],
                     "greedy_reservoir_value": sel.meta["stream"]["greedy_value"],
                     "candidates": sel.meta["stream"]["candidates"],
                     "weights_sum": float(sel.weights.sum())})
        log(f"stream reservoir={r}: {secs:.1f} s value {v:.1f} ({rows[-1]['finish']})")
    X = np.load(path)
    t = time.perf_counter()
    off = coreset.select(X, args.k, method="facility_location", random_state=0)
    t_off = time.perf_counter() - t
    del X
    v_off = fl_value(path, off.indices)
    log(f"offline lazy greedy: {t_off:.1f} s value {v_off:.1f}")
    for row in rows:
        row["ratio_to_offline"] = row["value"] / v_off
        row["time_ratio_to_offline"] = row["seconds"] / t_off
    out["quality"] = {"n": args.n, "d": 64, "n_select": args.k, "epsilon": args.epsilon, "n_neighbors": 32,
                      "offline": {"seconds": t_off, "value": v_off, "graph": off.meta.get("graph"),
                                  "optimizer": off.meta.get("optimizer")},
                      "stream": rows}


_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {repo!r})
import coreset
t = time.perf_counter()
sel = coreset.select_stream({path!r}, {k}, reservoir={r}, chunk_size={chunk}, random_state=0)
secs = time.perf_counter() - t
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({{"seconds": secs, "peak_rss_mb": int(hwm) / 1024,
                  "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "n_select": len(sel), "weights_sum": float(sel.weights.sum()), "meta": sel.meta["stream"]}}))
"""


def part_scale(args, out):
    path = Path(args.workdir) / f"blobs-{args.n_big}x64.npy"
    t = time.perf_counter()
    make_npy(path, args.n_big)
    log(f"data ready ({time.perf_counter() - t:.0f} s): {path} {path.stat().st_size / 1e9:.2f} GB")
    code = _CHILD.format(repo=str(Path(__file__).resolve().parents[1]), path=str(path), k=args.k,
                         r=args.reservoir, chunk=65536)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(n=args.n_big, d=64, file_gb=path.stat().st_size / 1e9, reservoir=args.reservoir,
               rows_per_s=args.n_big / res["seconds"])
    log(f"10M stream: {res['seconds']:.0f} s, {res['rows_per_s']:.0f} rows/s, peak RSS {res['peak_rss_mb']:.0f} MB")
    out["scale"] = res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="/tmp/coreset-stream-bench")
    ap.add_argument("--part", choices=("quality", "scale", "all"), default="all")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--n-big", type=int, default=10_000_000)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--epsilon", type=float, default=0.1)
    ap.add_argument("--reservoir", type=int, default=10_000)
    ap.add_argument("--reservoirs", type=int, nargs="+", default=[1000, 5000, 10_000, 20_000])
    ap.add_argument("--machine", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    out = {"benchmark": "stream", "machine": machine_info(args.machine)}
    if args.part in ("quality", "all"):
        part_quality(args, out)
    if args.part in ("scale", "all"):
        part_scale(args, out)
    out["driver_maxrss_mb"] = ru_maxrss_mb()
    name = args.out or f"stream-{out['machine']['name']}.json"
    write_json(RESULTS / name, out)
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
