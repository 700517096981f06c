"""PNG plots of a :func:`compare` summary (matplotlib, Agg backend): accuracy
vs fraction with the spread over seeds, accuracy vs total compute, and
per-class accuracy vs training class frequency."""

from __future__ import annotations

import numpy as np

__all__ = ["write_plots"]


def _plt():
    try:
        import matplotlib
    except ImportError:  # pragma: no cover
        from ..exceptions import BackendUnavailableError

        raise BackendUnavailableError("compare's plots need matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _finish(fig, path) -> str:
    """Lay out, write ``path`` atomically (PNG), close the figure; returns the path."""
    from .._io import atomic_write

    fig.tight_layout()
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return str(path)


def _legend(ax):
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _log_x(ax, xlabel, ylabel, title):
    """Log x axis, labels, a small title, a grid and the legend outside."""
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    _legend(ax)


#: more methods than this: the fraction and compute plots show the headline subset (see :func:`headline`)
MAX_LINES = 12


def headline(rows) -> list:
    """The methods drawn when there are more than ``MAX_LINES``: the full-data
    baselines, random, stratified random, the best unweighted objective at the
    smallest fraction with its random baseline of the same class budget, its
    weighted variant and facility location with that budget, the best score
    selector, k-center, adaptive, pruning and infobatch."""
    methods = list(dict.fromkeys(s["method"] for s in rows))
    if len(methods) <= MAX_LINES:
        return methods
    fracs = sorted({s["fraction"] for s in rows if s["method"] not in ("full", "full_balanced")})
    small = [s for s in rows if fracs and s["fraction"] == fracs[0]]
    pick = ["full", "full_balanced", "full_equal_compute", "random", "stratified_random"]
    objs = [s for s in small if ":" in s["method"] and not s["method"].startswith("random_budget")
            and not s["method"].endswith("+weighted")]
    if objs:
        best = max(objs, key=lambda s: s["balanced_accuracy_mean"])["method"]
        policy = best.split(":")[1]
        pick += [best, f"random_budget:{policy}", f"{best}+weighted", f"facility_location:{policy}"]
    scores = [s for s in small if s["method"] in ("el2n", "grand", "forgetting", "uncertainty")]
    if scores:
        pick.append(max(scores, key=lambda s: s["balanced_accuracy_mean"])["method"])
    pick += ["k_center_greedy", "adaptive", "pruning", "infobatch"]
    return [m for m in dict.fromkeys(pick) if m in methods]


def write_plots(summary, class_counts, folder, dataset) -> dict:
    """Write ``compare-<dataset>-{fraction,compute,per-class}.png`` under
    ``folder``; returns {name: path}."""
    plt = _plt()
    rows = [s for s in summary if s["dataset"] == dataset and s.get("balanced_accuracy_mean") is not None]
    methods = headline(rows)
    files = {}
    cmap = plt.get_cmap("tab20")
    color = {m: cmap(i % 20) for i, m in enumerate(dict.fromkeys(methods + [s["method"] for s in rows]))}

    # 1. balanced and worst-class accuracy vs fraction, mean ± std over seeds
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, metric, title in zip(axes, ("balanced_accuracy", "worst_class_accuracy"),
                                 ("balanced accuracy", "worst-class accuracy")):
        for m in methods:
            rs = sorted((s for s in rows if s["method"] == m), key=lambda s: s["fraction"])
            mu = np.array([s[f"{metric}_mean"] for s in rs], dtype=float)
            sd = np.array([s[f"{metric}_std"] or 0.0 for s in rs], dtype=float)
            if m in ("full", "full_balanced"):
                ax.axhline(mu[0], color=color[m], ls="--", lw=1.2, label=f"{m} (100%)")
                ax.axhspan(mu[0] - sd[0], mu[0] + sd[0], color=color[m], alpha=0.08)
                continue
            fr = np.array([s["fraction"] for s in rs])
            ax.plot(fr, mu, marker="o", ms=3, lw=1, color=color[m], label=m)
            ax.fill_between(fr, mu - sd, mu + sd, color=color[m], alpha=0.12)
        ax.set_xlabel("fraction of the training data")
        ax.set_ylabel(title)
        ax.set_title(f"{dataset}: {title} (mean ± std over seeds)", fontsize=9)
        ax.grid(alpha=0.3)
    _legend(axes[1])
    files["fraction"] = _finish(fig, folder / f"compare-{dataset}-fraction.png")

    # 2. balanced accuracy vs total compute (sample-gradient equivalents), log x
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in methods:
        rs = sorted((s for s in rows if s["method"] == m), key=lambda s: s["total_compute_mean"])
        x = np.array([s["total_compute_mean"] for s in rs], dtype=float)
        mu = np.array([s["balanced_accuracy_mean"] for s in rs], dtype=float)
        sd = np.array([s["balanced_accuracy_std"] or 0.0 for s in rs], dtype=float)
        ax.errorbar(x, mu, yerr=sd, marker="o", ms=3, lw=0.8, capsize=2, color=color[m], label=m)
    _log_x(ax, "total compute (sample-gradients + selection gradients + forward passes / 3)", "balanced accuracy",
           f"{dataset}: accuracy vs compute")
    files["compute"] = _finish(fig, folder / f"compare-{dataset}-compute.png")

    # 3. per-class accuracy vs training class frequency at the smallest fraction
    counts = np.asarray(class_counts, dtype=float)
    fracs = sorted({s["fraction"] for s in rows if s["method"] not in ("full", "full_balanced")})
    f0 = fracs[0] if fracs else 1.0
    pick = [s for s in rows if s["method"] in ("full", "full_balanced")]
    small = [s for s in rows if s["fraction"] == f0 and s["method"] not in ("full", "full_balanced")]
    keep = {"random", "stratified_random"}
    if small:
        keep.add(max(small, key=lambda s: s["balanced_accuracy_mean"])["method"])
        objs = [s for s in small if ":" in s["method"] and not s["method"].startswith("random_budget")]
        if objs:  # the best coreset and random with its class budget
            best = max(objs, key=lambda s: s["balanced_accuracy_mean"])["method"]
            keep |= {best, "random_budget:" + best.split(":")[1].split("+")[0]}
    pick += [s for s in small if s["method"] in keep]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    order = np.argsort(counts, kind="stable")
    for s in pick:
        acc = np.array([np.nan if a is None else a for a in s.get("per_class_accuracy_mean") or []], dtype=float)
        if acc.size != counts.size:
            continue
        lab = s["method"] if s["method"] in ("full", "full_balanced") else f"{s['method']} ({f0:g})"
        ax.plot(counts[order], acc[order], marker="o", ms=3, lw=0.8, color=color[s["method"]], label=lab)
    _log_x(ax, "training rows of the class (full data)", "test accuracy of the class (mean over seeds)",
           f"{dataset}: per-class accuracy vs class frequency")
    files["per_class"] = _finish(fig, folder / f"compare-{dataset}-per-class.png")
    return files
