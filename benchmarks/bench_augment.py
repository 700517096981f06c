"""Augmentation, measured (issue 16, item 5): does augmenting only a coreset keep
most of the gain of augmenting every row, at a fraction of the augmentation cost
(Liu & Mirzasoleiman, NeurIPS 2022)?

Protocol (coreset.pipelines._compare_augment, docs/compare.md "Augmentation"):
every ``+aug`` method trains on all the training rows plus, every epoch, one
freshly augmented copy of each row of a set A; the augmentation cost is the
number of sample-gradients spent on augmented copies (``augment_gradients`` =
epochs x |A|). Policies, on top of BASE (full data, class-balanced loss):

* no augmentation:      ``full_balanced``
* augment every row:    ``full_balanced+aug``               (A = every row: cost epochs x N)
* augment the coreset:  ``full_balanced+aug:<method>``      (A = the rows <method> picks at the fraction:
                        cost fraction x epochs x N), for facility location with equal class budgets (the
                        default labelled selection), random with the same class counts, and plain random.

Settings are chosen on a validation split carved from the training rows,
``coreset.data.train_validation_split(ds, share=0.2, random_state=0)``, never
on the test split: first the epochs (the best BASE without augmentation), then
the augmentation strength (the best ``full_balanced+aug``, i.e. the strength
that helps most when every row is augmented; the coreset policies are not
looked at). The final run is on the test split with those settings, 3 seeds,
one torch thread (CPU).

    python benchmarks/bench_augment.py                      # validation, then the final runs + table
    python benchmarks/bench_augment.py --datasets digits-lt --skip-validation
    python benchmarks/bench_augment.py --skip-validation --seeds 10,3,3   # the committed run (digits-lt: 10 seeds)
Writes docs/results/augment/<dataset>/ (results.csv/json, summary.csv via
compare's out=), docs/results/augment/validation.json and prints the markdown
table of docs/results.md's "Augmentation" section.
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

OUT = Path(__file__).resolve().parents[1] / "docs" / "results" / "augment"
BASE = "full_balanced"
ROWS = ("facility_location:equal", "random_budget:equal", "random")
FRACTIONS = (0.1, 0.3)
SEEDS = (0, 1, 2)

#: per dataset: the model and optimiser (benchmarks/bench_training.py's), the epochs and strengths tried.
#: The CNNs see the raw pixels / signal values (standardize=False, as in bench_training.py): per-feature
#: standardisation would turn a pixel shifted onto a rarely lit border into a value of 100 standard deviations
SETTINGS = {
    "digits-lt": dict(model="cnn2d", batch_size=32, optimizer="sgd", lr=0.05, epochs=(30, 60),
                      strengths={"shift1": dict(crop_padding=1),
                                 "shift2": dict(crop_padding=2),
                                 "shift1+cutout": dict(crop_padding=1, jitter=0.2, erase=0.25)},
                      validation_seeds=(0, 1, 2)),
    "mnist1d_lt": dict(model="cnn1d", batch_size=100, optimizer="adam", lr=0.01, epochs=(20, 40),
                       strengths={"shift3+noise.05": dict(max_shift=3, noise=0.05),
                                  "shift8+noise.05": dict(max_shift=8, noise=0.05),
                                  "shift3+noise.15": dict(max_shift=3, noise=0.15)},
                       validation_seeds=(0, 1)),
    # sentence embeddings: Mixup on the (standardised) embeddings, with the MLP of docs/results.md
    "text_lt": dict(model="mlp", batch_size=64, optimizer="sgd", lr=0.05, epochs=(20, 40), standardize=True,
                    strengths={"alpha0.2": dict(alpha=0.2), "alpha0.4": dict(alpha=0.4), "alpha1": dict(alpha=1.0)},
                    validation_seeds=(0, 1, 2)),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def _kw(s, epochs):
    return dict(model=s["model"], batch_size=s["batch_size"], optimizer=s["optimizer"], lr=s["lr"],
                epochs=epochs, standardize=s.get("standardize", False), plots=False, threads=1)


def _mean(res, method):
    s = next(x for x in res.summary if x["method"] == method)
    return s["balanced_accuracy_mean"], s["balanced_accuracy_std"]


def validate(name):
    """The epochs and the strength, chosen on the validation split."""
    from coreset.data import load_dataset, train_validation_split
    from coreset.pipelines import compare

    s = SETTINGS[name]
    val = train_validation_split(load_dataset(name), share=0.2, random_state=0)
    seeds = list(s["validation_seeds"])
    record = dict(split="train_validation_split(ds, share=0.2, random_state=0)", seeds=seeds, epochs={},
                  strengths={})
    for e in s["epochs"]:
        t0 = time.perf_counter()
        res = compare(val, methods=[BASE], seeds=seeds, **_kw(s, e))
        record["epochs"][e] = _mean(res, BASE)
        log(f"{name} validation: {BASE} {e} epochs: {record['epochs'][e]} ({time.perf_counter() - t0:.0f} s)")
    epochs = max(s["epochs"], key=lambda e: record["epochs"][e][0])
    for label, params in s["strengths"].items():
        t0 = time.perf_counter()
        res = compare(val, methods=[BASE + "+aug"], seeds=seeds, augment_params=params, **_kw(s, epochs))
        record["strengths"][label] = dict(params=params, balanced_accuracy=_mean(res, BASE + "+aug"))
        log(f"{name} validation: {BASE}+aug {label}: {record['strengths'][label]} ({time.perf_counter() - t0:.0f} s)")
    best = max(s["strengths"], key=lambda k: record["strengths"][k]["balanced_accuracy"][0])
    record.update(chosen_epochs=epochs, chosen_strength=best, chosen_params=s["strengths"][best])
    return record


def final(name, epochs, params, seeds=SEEDS):
    from coreset.pipelines import compare

    s = SETTINGS[name]
    methods = [BASE, BASE + "+aug"] + [f"{BASE}+aug:{m}" for m in ROWS]
    t0 = time.perf_counter()
    res = compare(name, methods=methods, fractions=list(FRACTIONS), seeds=list(seeds), augment_params=params,
                  out=OUT / name, **_kw(s, epochs))
    log(f"{name}: final run {time.perf_counter() - t0:.0f} s")
    return res


def table(name, res) -> str:
    """Markdown: balanced accuracy, gain over no augmentation (per-seed gains, mean ± std), share of the
    gain of augmenting every row (on the means; n/a when that gain is within noise: mean <= std),
    augmentation cost as a share of augmenting every row."""
    rows = res.rows
    acc = {}
    for r in rows:
        acc.setdefault((r["method"], r["fraction"]), {})[r["seed"]] = (r["balanced_accuracy"], r["augment_gradients"])
    none = acc[(BASE, 1.0)]
    full = acc[(BASE + "+aug", 1.0)]
    seeds = sorted(none)
    g_all = np.array([full[s][0] - none[s][0] for s in seeds])
    cost_all = np.mean([full[s][1] for s in seeds])
    lines = ["| policy | augmented rows | balanced accuracy | gain over none (points) | share of the all-rows gain "
             "| augmentation cost (share of all rows) |", "|---|---|---|---|---|---|"]

    def pm(v):
        return f"{100 * np.mean(v):.1f} ± {100 * np.std(v):.1f}"

    lines.append(f"| none (`{BASE}`) | 0 | {pm([none[s][0] for s in seeds])} | - | - | 0 |")
    lines.append(f"| every row (`{BASE}+aug`) | all | {pm([full[s][0] for s in seeds])} | {pm(g_all)} | 100% | "
                 f"100% ({cost_all:,.0f}) |")
    for f in FRACTIONS:
        for m in ROWS:
            cell = acc[(f"{BASE}+aug:{m}", f)]
            g = np.array([cell[s][0] - none[s][0] for s in seeds])
            # a share of a gain that is within noise (mean <= std over seeds) means nothing: n/a
            share = f"{100 * g.mean() / g_all.mean():.0f}%" if g_all.mean() > g_all.std() else "n/a"
            cost = np.mean([cell[s][1] for s in seeds]) / cost_all
            lines.append(f"| coreset `{m}` | {f:g} | {pm([cell[s][0] for s in seeds])} | {pm(g)} | "
                         f"{share} | {100 * cost:.0f}% |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(SETTINGS))
    p.add_argument("--skip-validation", action="store_true", help="reuse docs/results/augment/validation.json")
    p.add_argument("--seeds", default=str(len(SEEDS)),
                   help="seeds 0..S-1 of the final run: one S, or one per dataset (default 3)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    vpath = OUT / "validation.json"
    chosen = json.loads(vpath.read_text()) if vpath.exists() else {}
    names = args.datasets.split(",")
    n_seeds = [int(v) for v in args.seeds.split(",")]
    n_seeds = dict(zip(names, n_seeds if len(n_seeds) == len(names) else n_seeds[:1] * len(names)))
    for name in names:
        if not args.skip_validation or name not in chosen:
            chosen[name] = validate(name)
            vpath.write_text(json.dumps(chosen, indent=1) + "\n")
        c = chosen[name]
        res = final(name, int(c["chosen_epochs"]), c["chosen_params"], range(n_seeds[name]))
        print(f"\n### {name}: {SETTINGS[name]['model']}, {c['chosen_epochs']} epochs, "
              f"strength {c['chosen_strength']} {c['chosen_params']}\n")
        print(table(name, res))


if __name__ == "__main__":
    main()
