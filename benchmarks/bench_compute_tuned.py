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
    # a wider grid, learning rate x batch size, the same for every method:
    python benchmarks/bench_compute_tuned.py --datasets mnist1d_lt --lrs 0.003,0.01,0.03,0.1 \
        --batch-sizes 25,50,100 --out-tag wide --jobs 2

``--lrs`` / ``--batch-sizes`` default to the optimiser's grid below and the
dataset's one batch size (the committed runs). The batch size changes the
number of optimizer steps, not the compute: ``sample_gradients`` counts rows
through a backward pass, whatever the batch. With ``--batch-sizes`` other
than the dataset's own, grid points are named ``<lr>,b<batch>``, the choice
is written as ``chosen_batch_size`` beside ``chosen_lr``, and test folders are
``lr-<lr>-batch-<batch>``; ``--out-tag T`` writes to
docs/results/compute-tuned/<dataset>-T/ (the committed folders stay as they
are). Each validation grid point is kept under ``validation/`` in that folder,
so a rerun (or ``--jobs`` workers) resumes where it stopped.

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


def _point(lr, batch, wide, schedule="constant"):
    """A grid point's name: the rate alone on today's grid (one batch size);
    a learning-rate schedule other than constant is named after it."""
    name = f"{lr:g},b{batch}" if wide else f"{lr:g}"
    return name if schedule == "constant" else f"{name},{schedule}"


def _folder(lr, batch, wide, schedule="constant"):
    name = f"lr-{lr:g}-batch-{batch}" if wide else f"lr-{lr:g}"
    return name if schedule == "constant" else f"{name}-{schedule}"


def _validate_point(name, lr, batch, epochs, out, schedule="constant"):
    """One grid point on the validation split: compare's rows (resumed from
    ``out`` when it holds them)."""
    import torch

    from coreset.data import load_dataset, train_validation_split
    from coreset.pipelines import compare

    torch.set_num_threads(1)
    kw = _kw(SETTINGS[name], epochs)
    kw.update(lr=lr, batch_size=batch, lr_schedule=schedule)
    val = train_validation_split(load_dataset(name), share=0.2, random_state=0)
    t0 = time.perf_counter()
    res = compare(val, methods=list(METHODS), fractions=list(FRACTIONS), seeds=list(VALIDATION_SEEDS),
                  out=out, plots=False, **kw)
    log(f"{name} validation lr={lr:g} batch={batch} {schedule}: {time.perf_counter() - t0:.0f} s")
    return res.rows


def _pool(jobs, calls):
    """Run ``(function, args)`` calls, ``jobs`` processes at a time; results in order."""
    if jobs <= 1:
        return [fn(*a) for fn, a in calls]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as ex:
        return [f.result() for f in [ex.submit(fn, *a) for fn, a in calls]]


def validate(name, lrs=None, batch_sizes=None, folder=None, jobs=1, schedules=("constant",)):
    """Validation balanced accuracy of every (method, fraction, rate, batch
    size, learning-rate schedule); the chosen rate (and batch size, and
    schedule) per (method, fraction)."""
    s = SETTINGS[name]
    epochs = _epochs(name)
    lrs = tuple(lrs or GRID[s["optimizer"]])
    batch_sizes = tuple(batch_sizes or (s["batch_size"],))
    wide = batch_sizes != (s["batch_size"],)
    folder = folder or TUNED / name
    schedules = tuple(schedules)
    points = [(lr, b, sc) for sc in schedules for lr in lrs for b in batch_sizes]
    run = sorted(points, key=lambda p: -p[0])  # the largest rates first: the likeliest winners of short schedules
    calls = [(_validate_point, (name, lr, b, epochs, folder / "validation" / _folder(lr, b, wide, sc), sc))
             for lr, b, sc in run]
    done = dict(zip(run, _pool(jobs, calls)))
    grid, pick = {}, {}
    for (lr, b, sc), rows in ((p, done[p]) for p in points):  # grid order (ties go to the first): as given
        for m in METHODS:
            for f in (FRACTIONS if m != "full_balanced" else (1.0,)):
                grid.setdefault(f"{m}@{f:g}", {})[_point(lr, b, wide, sc)] = _mean(rows, m, f)
                pick.setdefault(f"{m}@{f:g}", {})[_point(lr, b, wide, sc)] = (lr, b, sc)
    best = {key: pick[key][max(v, key=v.get)] for key, v in grid.items()}
    out = dict(split="train_validation_split(ds, share=0.2, random_state=0)", seeds=list(VALIDATION_SEEDS),
               epochs=epochs, optimizer=s["optimizer"], grid=grid,
               chosen_lr={key: float(lr) for key, (lr, _, _) in best.items()})
    if wide:
        out.update(lrs=list(lrs), batch_sizes=list(batch_sizes),
                   chosen_batch_size={key: int(b) for key, (_, b, _) in best.items()})
    if schedules != ("constant",):
        out.update(lr_schedules=list(schedules), chosen_lr_schedule={key: sc for key, (_, _, sc) in best.items()})
    return out


def _test_point(name, lr, batch, epochs, methods, fractions, out, schedule="constant"):
    import torch

    from coreset.pipelines import compare

    torch.set_num_threads(1)
    kw = _kw(SETTINGS[name], epochs)
    kw.update(lr=lr, batch_size=batch, lr_schedule=schedule)
    t0 = time.perf_counter()
    compare(name, methods=methods, fractions=fractions, seeds=list(SEEDS), out=out, plots=False, **kw)
    log(f"{name} test lr={lr:g} batch={batch} {schedule} {methods} {fractions}: {time.perf_counter() - t0:.0f} s -> {out}")


def final(name, chosen, folder=None, jobs=1):
    """Test runs: each (method, fraction) with its own chosen rate (and batch
    size); one compare call (and folder) per (rate, batch size), with the
    methods and fractions that chose it."""
    s = SETTINGS[name]
    folder = folder or TUNED / name
    batches = chosen.get("chosen_batch_size")  # absent: today's grid, the dataset's batch size
    scheds = chosen.get("chosen_lr_schedule") or {}  # absent: constant only
    by_point = {}
    for key, lr in chosen["chosen_lr"].items():
        m, f = key.split("@")
        b = batches[key] if batches else s["batch_size"]
        by_point.setdefault((lr, b, scheds.get(key, "constant")), {}).setdefault(m, set()).add(float(f))
    calls = []
    for (lr, b, sc), methods in sorted(by_point.items()):
        fr = sorted({f for fs in methods.values() for f in fs if f < 1.0}) or [FRACTIONS[0]]
        calls.append((_test_point, (name, lr, b, chosen["epochs"], sorted(methods), fr,
                                    folder / _folder(lr, b, batches is not None, sc), sc)))
    _pool(jobs, calls)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(SETTINGS))
    p.add_argument("--lrs", type=_floats, default=None, help="learning rates (default: the optimiser's grid)")
    p.add_argument("--batch-sizes", type=_ints, default=None, help="batch sizes (default: the dataset's one)")
    p.add_argument("--lr-schedules", default="constant",
                   help="learning-rate schedules to choose from, e.g. constant,linear (train.LR_SCHEDULES)")
    p.add_argument("--out-tag", default=None, help="write to compute-tuned/<dataset>-<tag>/")
    p.add_argument("--jobs", type=int, default=1, help="grid points run at once, one torch thread each")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    for name in args.datasets.split(","):
        folder = TUNED / (f"{name}-{args.out_tag}" if args.out_tag else name)
        folder.mkdir(parents=True, exist_ok=True)
        vpath = folder / "validation.json"
        chosen = json.loads(vpath.read_text()) if vpath.exists() else None
        if chosen is None:
            chosen = validate(name, args.lrs, args.batch_sizes, folder, args.jobs,
                              tuple(args.lr_schedules.split(",")))
            vpath.write_text(json.dumps(chosen, indent=1, sort_keys=True) + "\n")
        log(f"{name}: chosen rates {chosen['chosen_lr']}, batch sizes {chosen.get('chosen_batch_size')}")
        final(name, chosen, folder, args.jobs)


def _floats(text):
    return tuple(float(v) for v in text.split(","))


def _ints(text):
    return tuple(int(v) for v in text.split(","))


if __name__ == "__main__":
    main()
