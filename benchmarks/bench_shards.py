"""Sharded input on Ray: ``coreset select shards/ --partitions 16 --executor ray``.

Data: clustered gaussian blobs (1,000 centres ~ N(0, 1) * 3, unit noise,
Zipf-like cluster sizes; the generator of bench_greedi.py), N x 64 float32,
seeded, written as ``--shards`` parquet files (a fixed-size list column,
row groups of 16,384 rows) under ``--workdir`` (not committed; deleted
afterwards unless ``--keep``). The generator never holds X whole.

1. **Scale** (``--n``, default 10^7): the CLI in a fresh process, k = 1% of
   N, a local Ray cluster with this machine's CPUs; reported: wall time, the
   driver's peak RSS (``VmHWM`` of the CLI process, polled until it exits:
   the driver alone, not the Ray workers), rows read per task (each read task
   one shard; each partition task its share of the shuffle, from
   ``meta["greedi"]["ray_data"]``), worker peak RSS per partition task.
2. **Quality** (``--quality-n``, default 10^6, the same setting): the same CLI
   command, and the centralized ``coreset select shards/ --n-select k`` (no
   partitions) on the same shards; objective of both measured the same way:
   the sum over all N points of the cosine similarity to the nearest pick
   (FAISS exact inner-product search, shards read in blocks).

A warm-up CLI run on 20,000 rows first fills numba's disk cache.

    nice -n 5 python benchmarks/bench_shards.py                 # results/shards-<machine>.json
    nice -n 5 python benchmarks/bench_shards.py --n 2000000 --quality-n 200000 --out shards-small.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, exact_objective, machine_info, write_json  # noqa: E402

D = 64
ROW_GROUP = 16_384


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def generate(folder: Path, n: int, d: int, n_shards: int, n_centers=1000, seed=0):
    """``n_shards`` parquet files of about ``n / n_shards`` rows each."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    centers = (rng.standard_normal((n_centers, d)) * 3).astype(np.float32)
    p = 1.0 / np.arange(1, n_centers + 1) ** 0.8
    p /= p.sum()
    edges = np.linspace(0, n, n_shards + 1).astype(np.int64)
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        m = int(b - a)
        lab = rng.choice(n_centers, size=m, p=p)
        X = centers[lab] + rng.standard_normal((m, d)).astype(np.float32)
        col = pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), d)
        pq.write_table(pa.table({"emb": col}), folder / f"part-{i:05d}.parquet", row_group_size=ROW_GROUP)


def objective(folder: Path, indices: np.ndarray, block=200_000) -> float:
    """Sum over all points of the cosine to the nearest selected point (exact)."""
    from coreset.data._shards import as_source

    return exact_objective(as_source(folder), indices, block)


def run_cli(args: list[str]) -> dict:
    """The CLI in a fresh process: wall seconds, the process's peak RSS
    (VmHWM polled every 0.1 s until it exits), its JSON summary."""
    cmd = [sys.executable, "-m", "coreset.cli", *args, "--json", "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hwm = 0.0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    hwm = max(hwm, int(line.split()[1]) / 1024)
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return {"command": "coreset " + " ".join(args), "wall_seconds": round(wall, 2), "driver_peak_rss_mb": round(hwm, 1),
            "summary": json.loads(out.strip().splitlines()[-1])}


def shards_run(folder: Path, n: int, k: int, P: int, out: Path) -> dict:
    from coreset.selection import load_selection

    r = run_cli(["select", str(folder), "--partitions", str(P), "--executor", "ray", "--n-select", str(k),
                 "-o", str(out)])
    sel = load_selection(out)
    g = sel.meta["greedi"]
    by_shard = np.array(g["ray_data"]["rows_by_shard"])  # partition task x shard: rows received
    shard_rows = [s["n_rows"] for s in sel.meta["shards"]]
    r.update(
        n=n, k=k, partitions=P, n_shards=len(shard_rows),
        read_tasks=g["ray_data"]["read_tasks"],
        rows_read_per_read_task={"min": int(min(shard_rows)), "max": int(max(shard_rows)),
                                 "note": "one read task per shard, reading that shard only"},
        each_shard_read_once=bool(by_shard.sum(axis=0).tolist() == shard_rows),
        rows_per_partition_task=by_shard.sum(axis=1).tolist(),
        partition_sizes=g["partition_sizes"],
        partition_task_rows_equal_its_share=bool(by_shard.sum(axis=1).tolist() == g["partition_sizes"]),
        max_partition_task_rows_over_share=float(max(by_shard.sum(axis=1)) / (n / P)),
        worker_maxrss_mb=g["worker_maxrss_mb"], partition_seconds=g["partition_seconds"],
        ray_data_seconds=round(g["ray_data"]["seconds"], 2), timings=sel.meta.get("timings"),
        union_size=g.get("union_size"), chosen=g.get("chosen"), objective_reported=sel.objective,
        indices=sel.indices)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--quality-n", type=int, default=1_000_000)
    ap.add_argument("--shards", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--fraction", type=float, default=0.01, help="k = fraction * N")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    machine = machine_info()
    out_path = RESULTS / (args.out or f"shards-{machine['name']}.json")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="coreset-shards-"))
    work.mkdir(parents=True, exist_ok=True)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    results.update({"machine": machine, "d": D, "n_shards": args.shards, "partitions": args.partitions,
                    "fraction": args.fraction, "row_group_rows": ROW_GROUP})
    try:
        log("warm-up (numba disk cache)")
        generate(work / "warm", 20_000, D, 4)
        run_cli(["select", str(work / "warm"), "--partitions", "2", "--executor", "ray", "--n-select", "200",
                 "-o", str(work / "warm.npz")])
        run_cli(["select", str(work / "warm"), "--n-select", "200", "-o", str(work / "warm2.npz")])
        if not args.skip_quality:
            n, k = args.quality_n, max(1, round(args.fraction * args.quality_n))
            folder = work / f"q{n}"
            log(f"quality: generating {n} x {D} in {args.shards} shards")
            generate(folder, n, D, args.shards)
            log("quality: GreeDi on shards, Ray")
            g = shards_run(folder, n, k, args.partitions, work / "q-greedi.npz")
            log(f"  {g['wall_seconds']} s, driver {g['driver_peak_rss_mb']} MB")
            log("quality: centralized")
            from coreset.selection import load_selection

            c = run_cli(["select", str(folder), "--n-select", str(k), "-o", str(work / "q-central.npz")])
            c_idx = load_selection(work / "q-central.npz").indices
            log(f"  {c['wall_seconds']} s; objectives")
            g["objective_exact"] = objective(folder, g.pop("indices"))
            c["objective_exact"] = objective(folder, c_idx)
            results["quality"] = {"n": n, "k": k, "greedi_shards_ray": g, "centralized": c,
                                  "ratio": g["objective_exact"] / c["objective_exact"],
                                  "objective": "sum over all N points of the cosine to the nearest pick (exact)"}
            log(f"  ratio {results['quality']['ratio']:.4f}")
            write_json(out_path, results)
            shutil.rmtree(folder, ignore_errors=True)
        if not args.skip_scale:
            n, k = args.n, max(1, round(args.fraction * args.n))
            folder = work / f"s{n}"
            log(f"scale: generating {n} x {D} in {args.shards} shards")
            t = time.perf_counter()
            generate(folder, n, D, args.shards)
            gen = time.perf_counter() - t
            log(f"scale: GreeDi on shards, Ray ({gen:.0f} s to generate)")
            r = shards_run(folder, n, k, args.partitions, work / "s-greedi.npz")
            r.pop("indices")
            r["generate_seconds"] = round(gen, 1)
            r["input_bytes"] = n * D * 4
            results["scale"] = r
            log(f"  {r['wall_seconds']} s, driver {r['driver_peak_rss_mb']} MB")
            write_json(out_path, results)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    log(f"wrote {out_path}")


if __name__ == "__main__":
    main()
