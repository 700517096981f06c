"""More seeds for the weights cell that misses (issue 16, "Weights"):
mnist1d_lt at 30% with equal budgets, where ``+weighted`` came out 2.5 (clean)
and 1.0 (redundant) points below unweighted with 3 seeds whose spread was as
large as the difference.

Protocol: exactly bench_results.py's. Its ``final`` runs each regime (same
data knobs from REGIMES, same model / epochs / lr from SETTINGS, epochs from
its ``validate``, the same ``compare`` call, one torch thread); the only thing
changed is the list of seeds, 0..7 instead of 0, 1, 2. Nothing is tuned here
and no setting's test-split choice is touched. Seeds 0-2 must reproduce
docs/results/mnist1d_lt/<regime>/results.csv; the summary says whether they do.

Output, docs/results/weights-seeds/:
* <regime>/results.{csv,json}, summary.csv: compare's own files (a rerun
  skips the cells already there);
* paired.csv: one row per regime, budget and seed: unweighted and weighted
  balanced accuracy and their difference (points);
* paired.json: the same rows, plus per regime and budget the mean, std and
  95% t interval of the mean paired difference, the bar (mean >= -0.5) and
  the check of seeds 0-2 against the committed run;
* paired-<n>seeds.{csv,json}: the same for any other list of seeds (--seeds).

    python benchmarks/bench_weights_seeds.py                     # equal budgets, clean + redundant, seeds 0..7
    python benchmarks/bench_weights_seeds.py --tempered          # tempered budgets too
    python benchmarks/bench_weights_seeds.py --seeds 0-31 --tempered   # the longer run (paired-32seeds.*)
    python benchmarks/bench_weights_seeds.py --summary-only      # re-read the runs, rewrite paired.*
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401  (the repository's package when not installed)
import bench_results  # noqa: E402
from bench_results import OUT as RESULTS, final, log, validate  # noqa: E402

DATASET = "mnist1d_lt"
FRACTION = 0.3
OUT = RESULTS / "weights-seeds"
BUDGETS = {"equal": ("facility_location:equal", "facility_location:equal+weighted"),
           "tempered": ("facility_location:tempered", "facility_location:tempered+weighted")}
BAR = -0.5  # points: +weighted never more than 0.5 below unweighted


def run(regime, budgets, seeds):
    """bench_results.final with more seeds: ``final`` reads the module's SEEDS
    when called, so set it for the call and put it back."""
    methods = [m for b in budgets for m in BUDGETS[b]]
    epochs = int(validate(DATASET, regime)["chosen_epochs"])  # one value in SETTINGS: no validation run
    old = bench_results.SEEDS
    bench_results.SEEDS = tuple(seeds)
    try:
        t0 = time.perf_counter()
        final(DATASET, regime, epochs, methods=methods, fractions=(FRACTION,), out=OUT / regime)
        log(f"{DATASET}/{regime}: {len(methods) * len(seeds)} cells in {time.perf_counter() - t0:.0f} s")
    finally:
        bench_results.SEEDS = old


def _rows(path):
    return json.loads(path.read_text())["rows"] if path.exists() else []


def _cell(rows, method, seed):
    hits = [r for r in rows if r["method"] == method and int(r["seed"]) == seed
            and abs(float(r["fraction"]) - FRACTION) < 1e-9]
    return float(hits[0]["balanced_accuracy"]) if hits else None


def t_interval(diffs, level=0.95):
    """Mean, sample std and the two-sided t interval of the mean."""
    from scipy import stats

    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n) if n > 1 else float("nan")
    return mean, sd, (mean - half, mean + half)


def summarize(regimes, budgets, seeds, stem="paired"):
    rows, groups, checks = [], [], []
    for regime in regimes:
        mine = _rows(OUT / regime / "results.json")
        committed = _rows(RESULTS / DATASET / regime / "results.json")
        for budget in budgets:
            plain, weighted = BUDGETS[budget]
            diffs = []
            for seed in seeds:
                a, b = _cell(mine, plain, seed), _cell(mine, weighted, seed)
                if a is None or b is None:
                    continue
                diffs.append(100 * (b - a))
                rows.append(dict(dataset=DATASET, regime=regime, budget=budget, fraction=FRACTION, seed=seed,
                                 unweighted=round(a, 6), weighted=round(b, 6),
                                 difference_points=round(100 * (b - a), 4)))
                for m, v in ((plain, a), (weighted, b)):
                    ref = _cell(committed, m, seed)
                    if ref is not None:
                        checks.append(dict(regime=regime, method=m, seed=seed, committed=ref, rerun=v,
                                           equal=abs(ref - v) < 1e-9))
            if len(diffs) >= 2:
                mean, sd, (lo, hi) = t_interval(diffs)
                groups.append(dict(regime=regime, budget=budget, n_seeds=len(diffs), mean_points=round(mean, 3),
                                   std_points=round(sd, 3), ci95_points=[round(lo, 3), round(hi, 3)],
                                   bar_points=BAR, bar_holds=bool(mean >= BAR)))
                log(f"{regime} {budget}: n={len(diffs)} mean {mean:+.2f} std {sd:.2f} 95% CI [{lo:+.2f}, {hi:+.2f}]"
                    f" -> bar (mean >= {BAR}) {'holds' if mean >= BAR else 'missed'}")
    reproduced = all(c["equal"] for c in checks) if checks else None
    log(f"seeds 0-2 against docs/results/{DATASET}/<regime>: {len(checks)} cells checked, "
        f"{'all identical' if reproduced else 'NOT all identical' if checks else 'none found'}")
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / f"{stem}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["dataset"])
        w.writeheader()
        w.writerows(rows)
    (OUT / f"{stem}.json").write_text(json.dumps(dict(
        dataset=DATASET, fraction=FRACTION, metric="balanced_accuracy", difference="weighted - unweighted, points",
        interval="95% two-sided t interval of the mean paired difference", protocol="benchmarks/bench_results.py",
        summary=groups, reproduced_committed_seeds=reproduced, committed_check=checks, rows=rows), indent=1) + "\n")
    return groups


def parse_seeds(text):
    """``"0-7"`` or ``"0,1,5-9"`` -> a list of ints."""
    seeds = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds.extend(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    return seeds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regimes", default="clean,redundant", help="from bench_results.REGIMES")
    p.add_argument("--seeds", default="0-7", help="comma-separated seeds or ranges a-b (default 0-7)")
    p.add_argument("--tempered", action="store_true", help="tempered budgets too")
    p.add_argument("--summary-only", action="store_true", help="no training: re-read the runs, rewrite paired.*")
    args = p.parse_args(argv)
    regimes = args.regimes.split(",")
    unknown = [r for r in regimes if r not in bench_results.REGIMES]
    if unknown:
        p.error(f"--regimes: one of {sorted(bench_results.REGIMES)}; got {unknown}")
    seeds = parse_seeds(args.seeds)
    budgets = ("equal", "tempered") if args.tempered else ("equal",)
    if not args.summary_only:
        import torch

        torch.set_num_threads(1)
        for regime in regimes:
            run(regime, budgets, seeds)
    # every budget with runs in the folder; the brief's 8 seeds write paired.*, any other list its own file
    summarize(regimes, tuple(BUDGETS), seeds, "paired" if seeds == list(range(8)) else f"paired-{len(seeds)}seeds")


if __name__ == "__main__":
    main()
