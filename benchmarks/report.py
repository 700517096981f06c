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


def engine_table(doc):
    lines = ["| case | optimizer | v1 fused s | v2 generic s | v2 / v1 | objective v1 | objective v2 |",
             "|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        lines.append(f"| {r['case']} | {r['optimizer']} | {r['v1 (fused) s']:.3f} | {r['v2 (generic) s']:.3f} | "
                     f"{r['v2 / v1 time']:.2f} | {r['v1 (fused) objective']:.2f} | {r['v2 (generic) objective']:.2f} |")
    return "\n".join(lines)


def objectives_table(docs):
    lines = ["| objective | method | median s | rounds s | objective / faster peer | same picks as peer | "
             "speedup vs faster peer |", "|---|---|---|---|---|---|---|"]
    for doc in docs:
        for obj, methods in doc["results"].items():
            for name, r in methods.items():
                if "seconds" not in r:
                    continue
                peer = r.get("faster_peer")
                if peer is None:  # the faster peer is the one we are least faster than
                    peers = [k[len("speedup_vs_"):] for k in r if k.startswith("speedup_vs_") and r[k] is not None]
                    peer = min(peers, key=lambda t: r[f"speedup_vs_{t}"]) if peers else None
                ratio = r.get("objective_ratio_vs_faster_peer", r.get(f"objective_ratio_vs_{peer}"))
                same = r.get(f"overlap_vs_{peer}") if peer else None
                speed = r.get("speedup_vs_faster_peer", r.get(f"speedup_vs_{peer}"))
                lines.append(f"| {obj} | {name} | {r['seconds']:.3f} | "
                             f"{', '.join(f'{x:.2f}' for x in r.get('seconds_all', []))} | "
                             f"{'' if ratio is None else f'{ratio:.6f}'} | {'' if same is None else same} | "
                             f"{'' if speed is None else f'{speed:.1f}x'} ({peer}) |")
    return "\n".join(lines)


def dedup_table(doc):
    lines = ["| N x d | threshold | search | seconds | graph s | peak RSS MB (X MB) | recall | precision | removed |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in doc["results"]:
        q, g = r["quality"], r["graph"]
        search = "exact" if g.get("exact") else f"partitioned, {g.get('n_cells')} cells, n_probe {g.get('n_probe')}"
        lines.append(f"| {r['n']:,} x {r['d']} | {r['threshold']} | {search} | {r['wall_seconds']:.1f} | "
                     f"{r['timings']['graph']:.1f} | {r['peak_rss_fit_mb']:.0f} ({r['x_mb']:.0f}) | {q['recall']:.5f} | "
                     f"{q['precision']:.3f} | {q['removed']:,} |")
    return "\n".join(lines)


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
    e = RESULTS / f"engine-v2-{args.machine}.json"
    if e.exists():
        print("\nEngine v2 vs v1 (optimizer stage):\n")
        print(engine_table(json.loads(e.read_text())))
    objs = sorted(RESULTS.glob(f"objectives-*-{args.machine}.json"))
    if objs:
        print("\nObjectives vs peers:\n")
        print(objectives_table([json.loads(o.read_text()) for o in objs]))
    d = RESULTS / f"dedup-{args.machine}.json"
    if d.exists():
        print("\nDedup:\n")
        print(dedup_table(json.loads(d.read_text())))


if __name__ == "__main__":
    main()
