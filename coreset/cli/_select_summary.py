"""``coreset select``'s summary: the dict printed as a table or as JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._common import stdout_console

__all__ = ["summary", "print_summary"]


def summary(sel, X, y, output: Path, fmt: str, t_read: float, t_write: float, wall: float) -> dict:
    meta = sel.meta
    n = int(meta.get("n_samples", X.shape[0]))
    covered = total = None
    if y is not None:
        y = np.asarray(y)
        total = int(np.unique(y).shape[0])
        chosen = sel.labels if sel.labels is not None else y[sel.indices]
        covered = int(np.unique(chosen).shape[0])
    stages = {k: float(v) for k, v in (meta.get("timings") or {}).items() if k not in ("read", "total")}
    timings = {"read": t_read, **stages, "write": t_write, "total": wall}
    return {
        "input": meta.get("input"),
        "input_fingerprint": meta.get("input_fingerprint"),
        "n_samples": n,
        "n_features": int(X.shape[1]),
        "n_select": len(sel),
        "classes_covered": covered,
        "classes_total": total,
        "objective_value": sel.objective,
        "method": meta.get("method"),
        "objective": meta.get("objective_name"),
        "optimizer": meta.get("optimizer"),
        "metric": meta.get("metric"),
        "n_neighbors": meta.get("n_neighbors"),
        "class_budget": meta.get("class_budget"),
        "backend": meta.get("backend"),
        "device": meta.get("device"),
        "seed": meta.get("random_state"),
        "weights_sum": float(sel.weights.sum()),
        "knee": _knee(sel, n),
        "output": str(output),
        "format": fmt,
        "timings": timings,
        "label_suspects": None if sel.suspects is None else int(sel.suspects.size),
        "label_filter": (meta.get("label_filter") or {}).get("method"),
    }


def _knee(sel, n: int) -> dict:
    """Where the gain curve bends (docs/report.md): the budget it suggests."""
    from ..report._knee import knee

    return knee(sel, n_samples=n if n >= max(len(sel), 1) else None)


def print_summary(s: dict) -> None:
    from rich.table import Table

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    pct = 100.0 * s["n_select"] / max(s["n_samples"], 1)
    t.add_row("input", f"{s['input']} ({s['n_samples']} x {s['n_features']})")
    t.add_row("selected", f"{s['n_select']} of {s['n_samples']} ({pct:.3g}%)")
    if s["classes_total"] is not None:
        t.add_row("classes covered", f"{s['classes_covered']} / {s['classes_total']}")
    else:
        t.add_row("classes covered", "n/a (no labels)")
    method = s["method"] or "?"
    if method == "submodular":
        method = f"{s['objective']} by {s['optimizer']}"
    t.add_row("method", f"{method} (metric {s['metric']}, n_neighbors {s['n_neighbors']})")
    if s["class_budget"]:
        t.add_row("class budget", str(s["class_budget"]))
    if s.get("label_suspects") is not None:
        t.add_row("label suspects", f"{s['label_suspects']} (not picked; filter {s['label_filter']})")
    ov = s["objective_value"]
    t.add_row("objective", "n/a" if ov is None or ov != ov else f"{ov:.6g}")
    if s.get("knee") is not None:
        from ._report import knee_line

        t.add_row("knee", knee_line(s["knee"]))
    t.add_row("backend / device", f"{s['backend']} / {s['device']}")
    t.add_row("seed", str(s["seed"]))
    t.add_row("seconds", "  ".join(f"{k} {v:.3f}" for k, v in s["timings"].items()))
    t.add_row("wrote", f"{s['output']} ({s['format']})")
    stdout_console().print(t)
