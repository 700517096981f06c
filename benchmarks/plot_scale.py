"""Plot results/scale-<machine>.json as docs/img/scaling.png (seconds per stage
and peak RSS against N, log-log).

    python benchmarks/plot_scale.py [results/scale-<machine>.json] [-o docs/img/scaling.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, default_machine_name  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("path", nargs="?", default=None)
    ap.add_argument("-o", "--out", default=str(Path(__file__).resolve().parent.parent / "docs" / "img" / "scaling.png"))
    args = ap.parse_args(argv)
    path = Path(args.path) if args.path else RESULTS / f"scale-{default_machine_name()}.json"
    doc = json.loads(path.read_text())
    rows = [r for r in doc["results"] if "timings" in r]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["n"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=100)
    for key, style in (("total", "o-"), ("graph", "s--"), ("optimize", "^--")):
        a1.plot(n, [r["timings"][key] for r in rows], style, label=key, ms=4)
    a1.plot(n, [r["timings"]["total"] * 0 + 20 * (x / 1e5) for x, r in zip(n, rows)], ":", color="gray", lw=0.8, label="target: 20 s at 1e5, linear")
    a1.set(xscale="log", yscale="log", xlabel="N (d=128, k=32, 10% selected)", ylabel="seconds", title="coreset.select time")
    a1.legend(fontsize=7)
    a1.grid(True, which="both", alpha=0.3)
    a2.plot(n, [r.get("peak_rss_select_mb") or r["ru_maxrss_mb"] for r in rows], "o-", ms=4, label="peak RSS")
    a2.plot(n, [r["x_mb"] for r in rows], "s--", ms=4, label="X itself")
    a2.set(xscale="log", yscale="log", xlabel="N", ylabel="MB", title="memory")
    a2.legend(fontsize=7)
    a2.grid(True, which="both", alpha=0.3)
    m = doc["machine"]
    fig.suptitle(f"{m['cpus']} x {m['cpu']}, {m['ram_gib']} GiB, no GPU", fontsize=8)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
