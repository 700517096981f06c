"""The README's headline plot: balanced accuracy against the fraction of the
training rows (log axis), clean and noisy labels side by side, only the
methods a reader needs. Reads docs/results/headline/<regime>/results.json
(written by bench_results.py --headline-only).

    python benchmarks/plot_headline.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: method -> (label, colour, line style)
STYLE = {
    "full": ("full data", "#555555", ":"),
    "full_balanced": ("full data, class-balanced loss", "#000000", "--"),
    "random_budget:equal": ("random, same class budget", "#1f77b4", "-"),
    "facility_location:equal": ("coreset (default: facility location, label filter)", "#d62728", "-"),
    "rs2:sqrt+la": ("resampled each epoch (RS2, sqrt quotas, logit adjusted)", "#2ca02c", "-"),
}
TITLES = {"clean": "clean labels", "noisy": "10% of labels flipped"}


def _series(rows, method):
    by = {}
    for r in rows:
        if r["method"] == method:
            by.setdefault(float(r["fraction"]), []).append(100 * r["balanced_accuracy"])
    f = np.array(sorted(by))
    return f, np.array([np.mean(by[x]) for x in f]), np.array([np.std(by[x]) for x in f])


def plot(folder: Path, path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    regimes = [r for r in TITLES if (folder / r / "results.json").exists()]
    fig, axes = plt.subplots(1, len(regimes), figsize=(5.2 * len(regimes), 3.9), sharey=True, squeeze=False)
    for ax, regime in zip(axes[0], regimes):
        rows = json.loads((folder / regime / "results.json").read_text())["rows"]
        fr = sorted({float(r["fraction"]) for r in rows if float(r["fraction"]) < 1})
        for method, (label, colour, ls) in STYLE.items():
            f, m, s = _series(rows, method)
            if not f.size:
                continue
            if f.size == 1 and f[0] == 1.0:  # full data: a level, drawn across the fractions
                ax.axhline(m[0], color=colour, ls=ls, lw=1.2, label=label)
                ax.axhspan(m[0] - s[0], m[0] + s[0], color=colour, alpha=0.08)
                continue
            ax.errorbar(f, m, yerr=s, color=colour, ls=ls, marker="o", ms=4, lw=1.6, capsize=2, label=label)
        ax.set_xscale("log")
        ax.set_xticks(fr)
        ax.set_xticklabels([f"{100 * x:g}%" for x in fr])
        ax.minorticks_off()
        ax.set_xlabel("share of training rows (and of full data's sample-gradients)")
        ax.set_title(f"zipf_hard, {TITLES[regime]}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("balanced test accuracy (%), mean ± std, 3 seeds")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


if __name__ == "__main__":
    print(plot(ROOT / "docs" / "results" / "headline", ROOT / "docs" / "img" / "headline-zipf_hard.png"),
          file=sys.stderr)
