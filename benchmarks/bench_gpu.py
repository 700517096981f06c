"""GPU path: kNN graph + greedy selection on one device, next to the matmul
lower bound.

For each dimension d and precision: N x d embeddings (``make_zipf(N, d,
n_classes=1000, random_state=0)``); one warm-up run on 5,000 points; then

* ``matmul_s``: the N x N similarity as the torch backend computes it (same
  blocks, same dtype), matmuls alone, no top-k, no transfers: the lower bound
  of an exact kNN graph on this device;
* ``select``: ``coreset.select(X, n_select, n_neighbors=k, device=..., precision=...,
  exact=...)``, with its ``graph`` and ``optimize`` timings and the objective;
* ``recall``: for fp16 / bf16, the share of the fp32 neighbours found, on
  2,000 query rows.

GPU clocks are read after ``torch.cuda.synchronize()``.

    python benchmarks/bench_gpu.py                                   # 1,000,000 x {128, 768} on the GPU
    python benchmarks/bench_gpu.py --n 3000 --dims 16 --device cpu   # CPU smoke test (fp32 only)

Results: ``benchmarks/results/gpu-<machine>.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from _common import RESULTS, machine_info, write_json  # noqa: E402


def _sync(torch, device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_bound(X, device, precision, batch_size=None):
    """Seconds for every (batch x N) block of X @ X.T at ``precision``, as the
    torch backend blocks it (no top-k)."""
    import numpy as np
    import torch

    dt = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    dev = torch.device(device)
    B = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=dev).to(dt)
    n = B.shape[0]
    bs = batch_size or max(1, min(n, (64 * 2**20) // max(1, n)))
    with torch.inference_mode():
        _ = B[:bs] @ B.T  # warm-up (kernel selection)
        _sync(torch, device)
        t0 = time.perf_counter()
        for start in range(0, n, bs):
            _ = B[start:start + bs] @ B.T
        _sync(torch, device)
        return time.perf_counter() - t0


def recall_vs_fp32(X, device, precision, k, n_queries=2000):
    import numpy as np

    from coreset.similarity import TorchBackend

    Q = X[:n_queries]
    _, i32 = TorchBackend(device).search(Q, X, k)
    _, ih = TorchBackend(device, precision=precision).search(Q, X, k)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(i32, ih)]))


def run_one(X, args, device, precision):
    import coreset

    n_select = args.n_select or max(1, X.shape[0] // 100)
    t0 = time.perf_counter()
    sel = coreset.select(X, n_select=n_select, n_neighbors=args.k, device=device, precision=precision,
                         backend=args.backend, exact=args.exact, random_state=0)
    wall = time.perf_counter() - t0
    tm = sel.meta.get("timings", {})
    return {"n_select": n_select, "wall_s": wall, "graph_s": tm.get("graph"), "optimize_s": tm.get("optimize"),
            "objective": float(sel.objective), "knn_device": sel.meta.get("device"),
            "greedy_device": sel.meta.get("objective_device") or "cpu (numba)", "backend": sel.meta.get("backend")}


def main(argv=None):
    import numpy as np
    import torch

    from coreset._device import resolve_device
    from coreset.data import make_zipf

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, nargs="*", default=[128, 768])
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--n-select", type=int, default=None, help="default N / 100")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precisions", nargs="*", default=None, help="default fp32 fp16 on CUDA, fp32 on the CPU")
    ap.add_argument("--backend", default="torch", help="torch (default) or auto (FAISS GPU when faiss-gpu is there)")
    ap.add_argument("--exact", default="true", choices=["true", "auto"],
                    help="exact kNN (comparable with the matmul bound) or the automatic choice")
    ap.add_argument("--machine", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    args.exact = True if args.exact == "true" else None
    device = resolve_device(args.device)
    precisions = args.precisions or (["fp32", "fp16"] if device.startswith("cuda") else ["fp32"])
    info = machine_info(args.machine)
    rows = []
    warm = make_zipf(5_000, 16, n_classes=50, random_state=1).X
    for p in precisions:  # warm-up: numba compile, CUDA context, kernel selection
        run_one(warm, argparse.Namespace(**{**vars(args), "n_select": 50}), device, p)
    for d in args.dims:
        X = make_zipf(args.n, d, n_classes=1000, random_state=0).X
        X /= np.linalg.norm(X, axis=1, keepdims=True)  # cosine = inner product: the matmul is the whole search
        for p in precisions:
            rec = {"n": args.n, "d": d, "k": args.k, "device": device, "precision": p}
            rec["matmul_s"] = matmul_bound(X, device, p)
            rec.update(run_one(X, args, device, p))
            if p != "fp32":
                rec["recall_vs_fp32"] = recall_vs_fp32(X, device, p, args.k)
            rec["graph_over_matmul"] = rec["graph_s"] / rec["matmul_s"] if rec["graph_s"] else None
            rows.append(rec)
            print(f"N={args.n} d={d} {p}: matmul {rec['matmul_s']:.3f} s, graph {rec['graph_s']:.3f} s, "
                  f"optimize {rec['optimize_s']:.3f} s, objective {rec['objective']:.6g}, "
                  f"recall {rec.get('recall_vs_fp32', 1.0):.4f}", file=sys.stderr, flush=True)
        del X
    path = Path(args.out) if args.out else RESULTS / f"gpu-{info['name']}.json"
    write_json(path, {"benchmark": "gpu", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info,
                      "torch": torch.__version__, "cuda": torch.version.cuda,
                      "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
                      "args": {k: v for k, v in vars(args).items()}, "results": rows,
                      "loadavg": os.getloadavg()[0]})
    print(path)


if __name__ == "__main__":
    main()
