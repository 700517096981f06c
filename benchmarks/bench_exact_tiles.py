"""The exact kNN graph on the CPU: scored in tiles into the compiled top-k
lists (``backend="auto"``, from ``EXACT_TILES_MIN_N`` rows) against the
backend's flat search (``backend="faiss"``), on the same data in one run.

Seeded data (``coreset.data.make_zipf(n, d, random_state=0)``), k = 32, one
warm-up call of each, then ``--rounds`` alternating rounds of ``--repeats``
calls each; the median per round. The neighbour lists are compared (the
share of equal entries: the rest are float32 near-ties).

    python benchmarks/bench_exact_tiles.py        # writes results/exact-tiles-<machine>.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_json  # noqa: E402

SIZES = ((2_100, 64), (10_000, 64), (10_000, 128), (20_000, 128), (20_000, 768))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    from coreset.data import make_zipf
    from coreset.similarity import build_knn

    info = machine_info()
    rows = []
    for n, d in SIZES:
        X = make_zipf(n, d, random_state=0).X.astype(np.float32)
        ways = {"tiles": lambda: build_knn(X, 32, exact=True),
                "faiss": lambda: build_knn(X, 32, exact=True, backend="faiss")}
        out = {name: f() for name, f in ways.items()}  # warm-up, and the lists compared
        same = float((np.sort(out["tiles"][0], 1) == np.sort(out["faiss"][0], 1)).mean())
        times = {name: [] for name in ways}
        for _ in range(args.rounds):
            for name, f in ways.items():
                ts = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    f()
                    ts.append(time.perf_counter() - t0)
                times[name].append(float(np.median(ts)))
        row = dict(n=n, d=d, k=32, seconds=times, equal_entries=same,
                   faiss_over_tiles=[b / a for a, b in zip(times["tiles"], times["faiss"])],
                   loadavg=os.getloadavg()[0])
        print(f"{n:>6} x {d:<4} tiles {times['tiles']} faiss {times['faiss']} equal {same:.5f}", flush=True)
        rows.append(row)
    path = Path(args.out) if args.out else Path(__file__).parent / "results" / f"exact-tiles-{info['name']}.json"
    write_json(path, {"benchmark": "exact-tiles", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                      "machine": info, "params": vars(args), "results": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
