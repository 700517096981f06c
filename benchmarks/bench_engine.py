"""Engine v2 against the first version's fused loops: the optimizer stage only.

The first engine fused facility location's arrays into its numba loops; engine
v2 writes each loop once and lets numba inline the objective's own kernels
(overloads per state type). This script checks that the generic path costs
nothing: both engines maximise the *same* facility location (same kNN graph or
dense S, built once here and saved to disk) with lazy, naive and stochastic
greedy, in fresh processes, interleaved round by round, after a warm-up in
each process. The old engine is a `git worktree` of ``--old`` (default: the
commit before engine v2). Objective values are recorded beside the times.

    python benchmarks/bench_engine.py            # -> results/engine-v2-<machine>.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine_info, median, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

WORKER = r"""
import json, sys, time
import numpy as np
import scipy.sparse as sp
from coreset.objectives import FacilityLocation
from coreset.optimizers import LazyGreedy, NaiveGreedy, StochasticGreedy
path, opt_name, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = np.load(path)
if "S" in data.files:
    make = lambda: FacilityLocation(data["S"])
else:
    G = sp.csr_matrix((data["data"], data["indices"], data["indptr"]), shape=tuple(data["shape"]))
    make = lambda: FacilityLocation(G)
opt = {"lazy": LazyGreedy, "naive": NaiveGreedy, "stochastic": StochasticGreedy}[opt_name]()
run = getattr(opt, "maximize", None) or opt.select
run(make(), min(k, 20), rng=np.random.default_rng(0))  # warm-up: compile or load the cache
f = make()
t = time.perf_counter()
idx, gains = run(f, k, rng=np.random.default_rng(0))
dt = time.perf_counter() - t
import coreset
print(json.dumps({"seconds": dt, "objective": float(f.value), "first": idx[:5].tolist(), "package": coreset.__file__}))
"""


def _cases(tmp: Path, quick: bool):
    from coreset.data import make_zipf
    from coreset.objectives._base import knn_to_csr
    from coreset.similarity import dense_similarity, knn_graph

    out = []
    X = make_zipf(4000 if quick else 5000, 64, random_state=0).X
    np.savez(tmp / "dense.npz", S=dense_similarity(X, "cosine"))
    out.append(("dense 5,000 x 5,000, 500 picks", tmp / "dense.npz", 500, ("lazy", "naive", "stochastic")))
    for n in ((10_000,) if quick else (10_000, 100_000)):
        X = make_zipf(n, 128, random_state=0).X
        G = knn_to_csr(*knn_graph(X, 32, random_state=0))
        p = tmp / f"knn{n}.npz"
        np.savez(p, data=G.data, indices=G.indices, indptr=G.indptr, shape=np.array(G.shape))
        opts = ("lazy", "stochastic") if n > 10_000 else ("lazy", "naive", "stochastic")
        out.append((f"kNN k=32, N={n:,}, {n // 10:,} picks", p, n // 10, opts))
    return out


def _run(src: Path, path: Path, opt: str, k: int) -> dict:
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}
    # cwd outside both checkouts: `python -c` puts the cwd first on sys.path
    res = subprocess.run([sys.executable, "-c", WORKER, str(path), opt, str(k)], capture_output=True, text=True,
                         env=env, check=True, cwd=path.parent)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if not Path(out["package"]).resolve().is_relative_to(src.resolve()):
        raise RuntimeError(f"the worker imported {out['package']}, not the checkout under {src}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", default="4557558", help="commit of the first engine")
    ap.add_argument("-r", "--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small cases only (a smoke run)")
    ap.add_argument("--machine", default=None)
    args = ap.parse_args()
    info = machine_info(args.machine)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        old = tmp / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.old], check=True,
                       capture_output=True)
        try:
            rows = []
            for label, path, k, opts in _cases(tmp, args.quick):
                for opt in opts:
                    times = {"v1 (fused)": [], "v2 (generic)": []}
                    objs = {}
                    for _ in range(args.rounds):
                        for name, src in (("v1 (fused)", old), ("v2 (generic)", ROOT)):
                            r = _run(src, path, opt, k)
                            times[name].append(r["seconds"])
                            objs[name] = r["objective"]
                    row = {"case": label, "optimizer": opt,
                           **{f"{n} s": median(t) for n, t in times.items()},
                           **{f"{n} rounds": t for n, t in times.items()},
                           **{f"{n} objective": v for n, v in objs.items()}}
                    row["v2 / v1 time"] = row["v2 (generic) s"] / row["v1 (fused) s"]
                    rows.append(row)
                    print(f"{label:38s} {opt:10s} v1 {row['v1 (fused) s']:.3f}s  v2 {row['v2 (generic) s']:.3f}s  "
                          f"ratio {row['v2 / v1 time']:.2f}  objective v1 {objs['v1 (fused)']:.2f} "
                          f"v2 {objs['v2 (generic)']:.2f}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)
    out = RESULTS / f"engine-v2-{info['name']}.json"
    write_json(out, {"machine": info, "old_commit": args.old, "rounds": args.rounds, "rows": rows})
    print("wrote", out)


if __name__ == "__main__":
    main()
