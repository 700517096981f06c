"""The compute trade with the learning rate chosen per method (issue 16,
"Compute, clean data"): every method of the compute comparison gets the same
tuning, on a validation split carved from the training rows, never the test
split.

docs/results.md's main tables train every method with one learning rate (the
dataset's, set for full data). A per-epoch resampling schedule that sees 10%
of the rows each epoch takes a tenth of full data's optimizer steps, and a
run that short wants a larger step: trained at one shared rate it is
under-trained, not short of data. So here ``full_balanced`` (the reference)
and the two schedules (``rs2:equal``, ``rs2:sqrt+la``) each get their
learning rate from the same grid, per fraction, by mean validation balanced
accuracy over 2 seeds on ``train_validation_split(ds, share=0.2,
random_state=0)``; the epochs are the ones chosen on that split for
``full_balanced`` (docs/results/validation.json). Then each trains with its
own rate on the full training split, seeds 0, 1, 2, and is scored on the
test split.

    python benchmarks/bench_compute_tuned.py                   # all four datasets, clean
    python benchmarks/bench_compute_tuned.py --datasets zipf_hard

Writes docs/results/compute-tuned/<dataset>/validation.json (every grid
point) and docs/results/compute-tuned/<dataset>/lr-<lr>/results.{csv,json}
(the test runs, one folder per rate used); benchmarks/results_tables.py reads
them for the "Compute" section of docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401  (the repository's package when not installed)
from bench_results import OUT, SEEDS, SETTINGS, _kw, log  # noqa: E402

TUNED = OUT / "compute-tuned"
METHODS = ("full_balanced", "rs2:equal", "rs2:sqrt+la")
FRACTIONS = (0.1, 0.3)
#: the learning-rate grid per optimiser (the dataset's own rate is in it)
GRID = {"sgd": (0.02, 0.05, 0.1, 0.2, 0.5), "adam": (0.003, 0.01, 0.03)}
VALIDATION_SEEDS = (0, 1)


def _epochs(name):
    chosen = json.loads((OUT / "validation.json").read_text())
    return int(chosen[f"{name}/clean"]["chosen_epochs"])


def _mean(rows, method, fraction, metric="balanced_accuracy"):
    v = [r[metric] for r in rows if r["method"] == method and (method in ("full", "full_balanced")
                                                                or abs(r["fraction"] - fraction) < 1e-9)]
    return float(np.mean(v)) if v else float("nan")


def validate(name):
    """Validation balanced accuracy of every (method, fraction, rate); the
    chosen rate per (method, fraction)."""
    from coreset.data import load_dataset, train_validation_split
    from coreset.pipelines import compare

    s = SETTINGS[name]
    epochs = _epochs(name)
    val = train_validation_split(load_dataset(name), share=0.2, random_state=0)
    grid = {}
    for lr in GRID[s["optimizer"]]:
        kw = _kw(s, epochs)
        kw["lr"] = lr
        t0 = time.perf_counter()
        res = compare(val, methods=list(METHODS), fractions=list(FRACTIONS), seeds=list(VALIDATION_SEEDS),
                      plots=False, **kw)
        for m in METHODS:
            for f in (FRACTIONS if m != "full_balanced" else (1.0,)):
                grid.setdefault(f"{m}@{f:g}", {})[f"{lr:g}"] = _mean(res.rows, m, f)
        log(f"{name} validation lr={lr:g}: {time.perf_counter() - t0:.0f} s")
    chosen = {key: float(max(v, key=v.get)) for key, v in grid.items()}
    return dict(split="train_validation_split(ds, share=0.2, random_state=0)", seeds=list(VALIDATION_SEEDS),
                epochs=epochs, optimizer=s["optimizer"], grid=grid, chosen_lr=chosen)


def final(name, chosen):
    """Test runs: each (method, fraction) with its own chosen rate; one
    compare call (and folder) per rate, with the methods and fractions that
    chose it."""
    from coreset.pipelines import compare

    s = SETTINGS[name]
    by_lr = {}
    for key, lr in chosen["chosen_lr"].items():
        m, f = key.split("@")
        by_lr.setdefault(lr, {}).setdefault(m, set()).add(float(f))
    for lr, methods in sorted(by_lr.items()):
        kw = _kw(s, chosen["epochs"])
        kw["lr"] = lr
        fr = sorted({f for fs in methods.values() for f in fs if f < 1.0}) or [FRACTIONS[0]]
        out = TUNED / name / f"lr-{lr:g}"
        t0 = time.perf_counter()
        compare(name, methods=sorted(methods), fractions=fr, seeds=list(SEEDS), out=out, plots=False, **kw)
        log(f"{name} test lr={lr:g} {sorted(methods)} {fr}: {time.perf_counter() - t0:.0f} s -> {out}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(SETTINGS))
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    for name in args.datasets.split(","):
        folder = TUNED / name
        folder.mkdir(parents=True, exist_ok=True)
        vpath = folder / "validation.json"
        chosen = json.loads(vpath.read_text()) if vpath.exists() else None
        if chosen is None:
            chosen = validate(name)
            vpath.write_text(json.dumps(chosen, indent=1, sort_keys=True) + "\n")
        log(f"{name}: chosen rates {chosen['chosen_lr']}")
        final(name, chosen)


if __name__ == "__main__":
    main()
