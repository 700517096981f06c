"""Print the markdown tables of docs/benchmarks.md from the committed results.

    python benchmarks/report.py [--machine NAME]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, default_machine_name  # noqa: E402


def machine_block(m):
    v = m["versions"]
    return (f"- CPU: {m['cpus']} x {m['cpu']} ({m['os']}), RAM {m['ram_gib']} GiB, GPU: {m['gpu']}\n"
            f"- Python {m['python']}, numpy {v['numpy']}, scipy {v['scipy']}, faiss-cpu {v['faiss']}, "
            f"torch {v['torch']}, numba {v['numba']}, apricot-select {v['apricot-select']}, "
            f"submodlib-py {v['submodlib-py']}, coreset {v['coreset']}")


def peers_table(doc):
    res = doc["results"]
    peers = [t for t in ("apricot", "submodlib") if any(f"speedup_vs_{t}" in r for r in res.values())]
    head = ["method", "median s", "rounds s", "objective (dense S)"] + [f"obj / {t}" for t in peers] + [f"speedup vs {t}" for t in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in res.items():
        row = [name, f"{r['seconds']:.3f}", ", ".join(f"{x:.2f}" for x in r["seconds_all"]), f"{r['objective']:.2f}"]
        row += [f"{r[f'objective_ratio_vs_{t}']:.5f}" for t in peers]
        row += [f"{r[f'speedup_vs_{t}']:.1f}x" for t in peers]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def scale_table(doc):
    lines = ["| N | graph s | optimize s | weights s | total s | objective / N | peak RSS in select, MB | of which X, MB | baseline RSS, MB | recall@32 | load (1 min) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["results"]:
        if "error" in r:
            lines.append(f"| {r['n']:,} | {r['error']} |" + " |" * 9)
            continue
        t = r["timings"]
        rc = f"{r['recall_at_k']:.3f}" + ("" if not r.get("recall_graph_exact") else " (exact graph)") if "recall_at_k" in r else "-"
        load = f"{r.get('loadavg_before', float('nan')):.1f} / {r.get('loadavg_after', float('nan')):.1f}"
        lines.append(f"| {r['n']:,} | {t['graph']:.2f} | {t['optimize']:.2f} | {t['weights']:.3f} | {t['total']:.2f} | "
                     f"{r['objective_per_point']:.4f} | {r['peak_rss_select_mb']:.0f} | {r['x_mb']:.0f} | {r['baseline_rss_mb']:.0f} | {rc} | {load} |")
    return "\n".join(lines)


def quality_lines(doc):
    out = []
    for r in doc["results"]:
        q = r.get("quality")
        if q:
            out.append(f"| {r['n']:,} | {q['objective_approx_graph_selection']:.1f} | {q['objective_exact_graph_selection']:.1f} | "
                       f"{q['ratio']:.5f} | {q['overlap']:,} / {r['n_select']:,} | {q['exact_graph_seconds']:.1f} | {r['timings']['graph']:.1f} |")
    if out:
        out = ["| N | objective, approx-graph selection | objective, exact-graph selection | ratio | same picks | exact graph s | approx graph s |",
               "|---|---|---|---|---|---|---|"] + out
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--machine", default=default_machine_name())
    args = ap.parse_args(argv)
    p = RESULTS / f"peers-{args.machine}.json"
    s = RESULTS / f"scale-{args.machine}.json"
    if p.exists():
        doc = json.loads(p.read_text())
        print(machine_block(doc["machine"]))
        print(f"\nPeers ({doc['params']['n_samples']} x {doc['params']['n_features']}, select {doc['params']['n_select']}, "
              f"{doc['params']['repeats']} rounds, load {doc.get('loadavg_1min')}):\n")
        print(peers_table(doc))
    if s.exists():
        doc = json.loads(s.read_text())
        print("\nScaling:\n")
        print(scale_table(doc))
        print()
        print(quality_lines(doc))


if __name__ == "__main__":
    main()
