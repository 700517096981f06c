"""The committed comparison of docs/results.md (issue 16): four datasets, three
regimes of the training split (clean, 10% symmetric label noise, 30%
near-duplicates), the methods a reader needs, 3 seeds, CPU.

Protocol
* Data: ``coreset.data.load_dataset(name, label_noise=, duplicates=)``; the
  knobs touch the training split only, the test split stays clean and balanced.
* Settings (epochs) are chosen on a validation split carved from the
  training rows, ``train_validation_split(ds, share=0.2, random_state=0)``,
  with the knobs of the regime applied (validation rows are training rows,
  noisy too): the epochs that give ``full_balanced`` the best mean balanced
  accuracy over 2 seeds. The test split is never looked at before the final
  run. Selection settings (the label filter's detector and threshold, CCS's
  score and beta) were chosen earlier the same way (docs/label-noise.md,
  docs/ccs.md).
* Final run: ``coreset.pipelines.compare`` with the chosen epochs, every
  method, fractions 10% and 30%, seeds 0, 1, 2, one torch thread; each cell
  trains its rows for the same epochs, so a fraction-f subset costs f of full
  data's sample-gradients (``rs2`` draws f of the rows each epoch: the same
  cost). Written to docs/results/<dataset>/<regime>/.
* Headline (``--headline``): zipf_hard, clean and noisy, fractions 1% to 50%,
  the five methods a reader needs, written to docs/results/headline/.

    python benchmarks/bench_results.py                          # everything (~1 h on 2 busy cores)
    python benchmarks/bench_results.py --datasets zipf_hard --regimes noisy
    python benchmarks/bench_results.py --headline-only
    python benchmarks/bench_results.py --proxy-only --datasets mnist1d_lt   # selection on a proxy's features
A rerun skips the cells already in a folder (compare resumes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402,F401  (the repository's package when not installed)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results"

#: per dataset: model and optimiser, and the epochs tried on the validation split
SETTINGS = {
    "digits-lt": dict(model="linear", batch_size=32, optimizer="sgd", lr=0.05, standardize=True, epochs=(20, 40)),
    # the 1-D CNN's epochs: chosen on the same validation split by benchmarks/bench_augment.py (full_balanced,
    # 20 vs 40 epochs: docs/results/augment/validation.json); one value here, so no second validation run
    "mnist1d_lt": dict(model="cnn1d", batch_size=100, optimizer="adam", lr=0.01, standardize=False,
                       epochs=(40,)),
    "zipf_hard": dict(model="linear", batch_size=128, optimizer="sgd", lr=0.05, standardize=True, epochs=(10, 20)),
    "text_lt": dict(model="linear", batch_size=64, optimizer="sgd", lr=0.05, standardize=True, epochs=(20, 40)),
}
REGIMES = {"clean": {}, "noisy": dict(label_noise=0.1), "redundant": dict(duplicates=0.3)}
METHODS = (
    "full", "full_balanced", "full+la",
    "random_budget:equal", "random_kept:equal", "facility_location:equal", "facility_location:equal+weighted",
    "random_budget:tempered", "facility_location:tempered", "facility_location:tempered+weighted",
    "ccs:equal", "rs2:equal", "rs2:sqrt+la",
)
FRACTIONS = (0.1, 0.3)
SEEDS = (0, 1, 2)
HEADLINE = dict(dataset="zipf_hard", regimes=("clean", "noisy"), fractions=(0.01, 0.03, 0.1, 0.3, 0.5),
                methods=("full", "full_balanced", "random_budget:equal", "facility_location:equal", "rs2:sqrt+la"))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def _kw(s, epochs):
    return dict(model=s["model"], batch_size=s["batch_size"], optimizer=s["optimizer"], lr=s["lr"],
                epochs=epochs, standardize=s["standardize"], threads=1)


def validate(name, regime):
    """The epochs, chosen on the validation split carved from the (noisy) training rows."""
    from coreset.data import load_dataset, train_validation_split
    from coreset.pipelines import compare

    s = SETTINGS[name]
    if len(s["epochs"]) == 1:
        return dict(split="see SETTINGS", chosen_epochs=s["epochs"][0])
    val = train_validation_split(load_dataset(name, **REGIMES[regime]), share=0.2, random_state=0)
    scores = {}
    for e in s["epochs"]:
        res = compare(val, methods=["full_balanced"], seeds=[0, 1], plots=False, **_kw(s, e))
        scores[e] = res.summary[0]["balanced_accuracy_mean"]
        log(f"{name}/{regime} validation: full_balanced {e} epochs: {scores[e]:.4f}")
    return dict(split="train_validation_split(ds, share=0.2, random_state=0)", seeds=[0, 1],
                balanced_accuracy=scores, chosen_epochs=max(scores, key=scores.get))


#: the default selection with its label filter switched off, beside every regime (what the filter costs or buys)
NO_FILTER = ("facility_location:equal", "facility_location:equal+weighted")
#: ``--proxy``: selection on a proxy's features (compare(select_on="proxy")), for the datasets whose model has a
#: hidden layer; the proxy's epochs were chosen on the validation split by benchmarks/bench_proxy_noise.py
#: (noisy mnist1d_lt, E in 3 / 5 / 10, scored on the split's own labels: benchmarks/results/proxy_noise.json)
PROXY = ("random_budget:equal", "random_kept:equal", "facility_location:equal")
PROXY_EPOCHS = 10


def final(name, regime, epochs, methods=METHODS, fractions=FRACTIONS, out=None, plots=False, select_params=None,
          **extra):
    from coreset.pipelines import compare

    s = SETTINGS[name]
    t0 = time.perf_counter()
    out = out or OUT / name / regime
    res = compare(name, methods=list(methods), fractions=list(fractions), seeds=list(SEEDS), out=out,
                  plots=plots, plot_dir=out, select_params=select_params, **REGIMES[regime], **_kw(s, epochs),
                  **extra)
    log(f"{name}/{regime}: final run {time.perf_counter() - t0:.0f} s -> {out}")
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(SETTINGS))
    p.add_argument("--regimes", default=",".join(REGIMES))
    p.add_argument("--headline-only", action="store_true")
    p.add_argument("--no-headline", action="store_true")
    p.add_argument("--proxy-only", action="store_true",
                   help="only the selection-via-proxy runs (docs/results/<dataset>/<regime>-proxy/)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    vpath = OUT / "validation.json"
    chosen = json.loads(vpath.read_text()) if vpath.exists() else {}

    def epochs_for(name, regime):
        key = f"{name}/{regime}"
        if key not in chosen:
            chosen[key] = validate(name, regime)
            merged = json.loads(vpath.read_text()) if vpath.exists() else {}  # other datasets' runs write it too
            merged[key] = chosen[key]
            vpath.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
        return int(chosen[key]["chosen_epochs"])

    if args.proxy_only:
        for name in (n for n in args.datasets.split(",") if SETTINGS[n]["model"] != "linear"):
            for regime in args.regimes.split(","):
                final(name, regime, epochs_for(name, regime), methods=PROXY, out=OUT / name / f"{regime}-proxy",
                      select_on="proxy", proxy_epochs=PROXY_EPOCHS)
        return
    if not args.headline_only:
        for name in args.datasets.split(","):
            for regime in args.regimes.split(","):
                final(name, regime, epochs_for(name, regime))
                final(name, regime, epochs_for(name, regime), methods=NO_FILTER, out=OUT / name / f"{regime}-nofilter",
                      select_params={"label_filter": None})
    if not args.no_headline:
        h = HEADLINE
        for regime in h["regimes"]:
            final(h["dataset"], regime, epochs_for(h["dataset"], regime), methods=h["methods"],
                  fractions=h["fractions"], out=OUT / "headline" / regime)
        from plot_headline import plot

        plot(OUT / "headline", ROOT / "docs" / "img" / "headline-zipf_hard.png")


if __name__ == "__main__":
    main()
