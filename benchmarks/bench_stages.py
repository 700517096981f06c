"""Where coreset.select's time goes at scale: FAISS's search vs our own code.

The graph stage of ``bench_scale.py`` is mostly ``faiss.knn`` (blocked
products and top-k heaps), whose speed on this shared machine swings by
+-30% between back-to-back runs of the same code. To compare two engines on
what they control, this runs one ``coreset.select`` (make_zipf(N, 128,
n_classes=1000), cosine, 32 neighbours, 10% picks, lazy greedy) under
cProfile after a warm-up, and splits the wall time into the seconds inside
``faiss.knn_inner_product`` and the rest. Run it once per checkout:

    PYTHONPATH=<checkout> python benchmarks/bench_stages.py --n 1e6 --label v1 --out stages.json

Results are merged by label into one JSON file (default
results/stages-<machine>.json).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine_info, write_json  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=float, default=1e6)
    p.add_argument("--label", required=True, help="name of this checkout in the results (e.g. v1, v2)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    import coreset
    from coreset.data import make_zipf

    n = int(args.n)
    X = make_zipf(n, 128, n_classes=1000, random_state=0).X
    coreset.select(make_zipf(2000, 128, n_classes=10, random_state=1).X, n_select=200, metric="cosine",
                   n_neighbors=32, random_state=0)  # warm-up: numba, FAISS/OpenMP start-up
    load = os.getloadavg()[0]
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    sel = coreset.select(X, n_select=n // 10, metric="cosine", n_neighbors=32, random_state=0)
    prof.disable()
    wall = time.perf_counter() - t0
    stats = pstats.Stats(prof).stats
    faiss_s = sum(v[3] for (f, _, name), v in stats.items() if "_swigfaiss.knn_inner_product" in name)
    row = dict(label=args.label, n=n, checkout=str(Path(coreset.__file__).resolve().parent.parent.name),
               wall_seconds=wall, faiss_knn_seconds=faiss_s, rest_seconds=wall - faiss_s,
               timings=sel.meta.get("timings"), objective=float(sel.objective), loadavg_before=load)
    print(json.dumps(row, indent=1))
    info = machine_info()
    path = Path(args.out) if args.out else RESULTS / f"stages-{info['name']}.json"
    old = json.loads(path.read_text()) if path.exists() else dict(benchmark="stages", machine=info, rows=[])
    old["rows"] = [r for r in old["rows"] if not (r["label"] == args.label and r["n"] == n)] + [row]
    write_json(path, old)


if __name__ == "__main__":
    main()
