"""Feasibility study (issue 16, "Noise" bar on mnist1d_lt): select on a
*proxy* network's features instead of the raw signals ("selection via proxy",
Coleman et al., ICLR 2020; early learning: a net trained briefly on noisy
labels fits the clean patterns first).

Validation split only, never the test split:
``train_validation_split(load_dataset("mnist1d_lt", label_noise=0.1), share=0.2, random_state=0)``.
Per seed (0, 1, 2):

1. a proxy ``cnn1d`` is trained for E epochs (E in 3, 5, 10) on all fit rows
   (noisy labels) with the class-balanced loss of ``full_balanced`` (Adam,
   lr 0.01, batch 100); its penultimate features (the flattened output of the
   last convolution block, 320 values, the input of the final Linear) are
   L2-normalised;
2. the methods of ``compare`` at 10% (``run_selection``, exactly as a compare
   cell runs them) pick rows on the raw signals or on the proxy features, and a
   fresh ``cnn1d`` is trained on the *raw* signals of the picked rows (40
   epochs, Adam lr 0.01, batch 100, no standardisation: SETTINGS of
   bench_results.py), scored on the validation part: balanced accuracy against
   the observed (noisy) validation labels, and against their true labels
   (``clean_labels=True``: an oracle for the study);
3. the default selection's label-filter suspects are scored against the
   flipped rows (precision / recall), and the share of picked rows that are
   flipped is recorded.

Beside them, to separate filter and objective: the default selection on the
raw signals with its suspects taken from (a) the probe on the proxy features,
(b) the proxy's own disagreement with the label (argmax != label), (c) the
flipped rows themselves (an oracle: the ceiling of any filter), and random
with the same counts from the rows (b) / (c) keep. The suspects are handed to
the library's selection by ``given_suspects`` (a patch of the detector inside
this script only), so everything else is exactly ``coreset.select``. Cost:
the proxy's E x n sample-gradients (plus n forward rows), next to the subset's
40 x 10% x n.

``--clean``: the same on the clean validation split for the E given by
``--epochs`` (default: the best E of the noisy run by observed-label accuracy).

    nice -n 5 python benchmarks/bench_proxy_noise.py            # noisy, E in 3,5,10 (~1 min on 2 busy cores)
    nice -n 5 python benchmarks/bench_proxy_noise.py --clean    # clean, best E (~30 s)
    nice -n 5 python benchmarks/bench_proxy_noise.py --seeds 0,1,2,3,4,5,6,7,8,9 --epochs 3,5,10,20 --tag=-10seeds
    nice -n 5 python benchmarks/bench_proxy_noise.py --clean --seeds 0,1,2,3,4,5,6,7,8,9 --epochs 10,20 --tag=-10seeds
Results: benchmarks/results/proxy_noise.json (each run adds its section: noisy, clean, noisy-10seeds, ...).
"""

from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

OUT = _common.RESULTS / "proxy_noise.json"
DATASET = "mnist1d_lt"
SEEDS = (0, 1, 2)
PROXY_EPOCHS = (3, 5, 10)
FRACTION = 0.1
#: bench_results.SETTINGS["mnist1d_lt"]
TRAIN = dict(batch_size=100, optimizer="adam", lr=0.01, epochs=40)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def load(label_noise):
    from coreset.data import load_dataset, train_validation_split

    ds = load_dataset(DATASET, label_noise=label_noise)
    obs = train_validation_split(ds, share=0.2, random_state=0)
    clean = train_validation_split(ds, share=0.2, random_state=0, clean_labels=True)
    assert np.array_equal(obs.X, clean.X) and np.array_equal(obs.y, clean.y)
    return obs, clean.y_test


def balanced_loss(y, C):
    import torch

    counts = np.bincount(y, minlength=C).astype(np.float64)
    w = np.where(counts > 0, y.size / (C * np.maximum(counts, 1)), 0.0)
    return torch.nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float32), reduction="none")


def fit(X, y, C, seed, *, rows=None, epochs=TRAIN["epochs"], loss="cross_entropy"):
    """A fresh cnn1d trained as a compare cell trains it; returns (net, TrainResult)."""
    import torch

    from coreset.pipelines._models import cnn1d
    from coreset.pipelines._train import train
    from coreset.selection import Selection

    torch.manual_seed(seed)
    net = cnn1d(X.shape[1], C)
    sel = None if rows is None else Selection(indices=rows, weights=np.ones(rows.size), gains=np.zeros(rows.size))
    ds = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    res = train(net, ds, selection=sel, epochs=epochs, batch_size=TRAIN["batch_size"], optimizer=TRAIN["optimizer"],
                lr=TRAIN["lr"], loss=loss, normalize="none", device="cpu", random_state=seed)
    return net, res


def score(net, Xv, yv_obs, yv_true, C):
    import torch

    from coreset.pipelines._train import evaluate

    out = {}
    for key, yv in (("observed", yv_obs), ("true", yv_true)):
        ds = torch.utils.data.TensorDataset(torch.from_numpy(Xv), torch.from_numpy(yv))
        out[key] = evaluate(net, ds, device="cpu", n_classes=C).balanced_accuracy
    return out


def penultimate(net, X):
    """The input of cnn1d's final Linear (flattened last conv block), L2-normalised, float32."""
    import torch

    body = net[:-1]
    body.eval()
    with torch.no_grad():
        f = torch.cat([body(torch.from_numpy(X[i:i + 1024])) for i in range(0, X.shape[0], 1024)]).numpy()
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    return np.ascontiguousarray(f / np.maximum(norms, 1e-12), dtype=np.float32)


def pr(suspects, flipped):
    s = np.zeros(flipped.size, bool)
    s[np.asarray(suspects, dtype=np.int64)] = True
    tp = int((s & flipped).sum())
    return dict(n_suspects=int(s.sum()), precision=tp / max(1, int(s.sum())), recall=tp / max(1, int(flipped.sum())))


def default_selection(X, y, C, k, seed):
    """``facility_location:equal`` exactly as run_selection calls it, keeping the Selection (for its suspects)."""
    from coreset import select
    from coreset.pipelines._compare_methods import ALPHA, _floor

    return select(X, n_select=k, y=y, method="facility_location", class_budget="equal", alpha=ALPHA,
                  min_per_class=_floor(y, C, k), random_state=seed)


@contextmanager
def given_suspects(found):
    """Within the block, the library's label filter returns ``found`` instead of running its detector: the
    default selection (and ``random_kept``) exactly as the library runs them, with another suspect list.
    A benchmark-only patch of ``coreset.selectors._label_noise``; restored on exit."""
    from coreset.selectors import _label_noise as ln

    saved = ln.detect, ln.find_label_suspects
    ln.detect = lambda *a, **k: found
    ln.find_label_suspects = lambda *a, **k: found
    try:
        yield
    finally:
        ln.detect, ln.find_label_suspects = saved


def disagreement(net, X, y):
    """Suspects: rows whose label the proxy's prediction contradicts (argmax != label; in-sample, the proxy
    trained E epochs on them); score = p(label) / max p(other) (lower = more suspect), as LabelSuspects."""
    import torch

    from coreset.selectors._label_noise import LabelSuspects

    net.eval()
    with torch.no_grad():
        p = torch.cat([torch.softmax(net(torch.from_numpy(X[i:i + 1024])), 1)
                       for i in range(0, X.shape[0], 1024)]).double().numpy()
    own = p[np.arange(y.size), y]
    q = p.copy()
    q[np.arange(y.size), y] = -1.0
    score = own / np.maximum(q.max(1), 1e-12)
    return LabelSuspects(np.flatnonzero(score < 1.0).astype(np.int64), score, "proxy_disagreement", 1.0, 0.0)


def run_seed(val, yv_true, seed, proxy_epochs, with_full=True):
    from coreset.pipelines._compare_methods import parse_method, run_selection

    X, y, Xv, yv = val.X.astype(np.float32), val.y.astype(np.int64), val.X_test.astype(np.float32), val.y_test
    C = int(max(y.max(), yv.max())) + 1
    n = y.size
    k = max(1, int(round(FRACTION * n)))
    flipped = val.flipped if val.flipped is not None else np.zeros(n, bool)
    rows, diag = {}, {}

    def cell(name, idx, feats_desc, extra=None):
        t0 = time.perf_counter()
        net, res = fit(X, y, C, seed, rows=idx)
        acc = score(net, Xv, yv, yv_true, C)
        rows[name] = dict(balanced_accuracy=acc["observed"], balanced_accuracy_true=acc["true"], features=feats_desc,
                          n_rows=int(idx.size), picked_flipped=float(flipped[idx].mean()),
                          train_sample_gradients=int(res.sample_gradients), **(extra or {}))
        log(f"  seed {seed} {name}: bal {acc['observed']:.4f} (true labels {acc['true']:.4f}), "
            f"{flipped[idx].mean():.2f} of picks flipped, {time.perf_counter() - t0:.0f} s")

    if with_full:
        t0 = time.perf_counter()
        net, res = fit(X, y, C, seed, loss=balanced_loss(y, C))
        acc = score(net, Xv, yv, yv_true, C)
        rows["full_balanced"] = dict(balanced_accuracy=acc["observed"], balanced_accuracy_true=acc["true"],
                                     n_rows=int(n), train_sample_gradients=int(res.sample_gradients))
        log(f"  seed {seed} full_balanced: bal {acc['observed']:.4f} (true {acc['true']:.4f}), "
            f"{time.perf_counter() - t0:.0f} s")
    rb = run_selection(parse_method("random_budget:equal"), X, y, C, k, seed)
    cell("random_budget:equal", rb.indices, "-")
    rk = run_selection(parse_method("random_kept:equal"), X, y, C, k, seed)
    cell("random_kept:equal [raw]", rk.indices, "raw")
    sel = default_selection(X, y, C, k, seed)
    diag["raw"] = pr(sel.suspects, flipped)
    cell("facility_location:equal [raw]", np.asarray(sel.indices, np.int64), "raw")
    if flipped.any():  # the ceiling of any filter: the flipped rows themselves as the suspects (an oracle)
        from coreset.selectors._label_noise import LabelSuspects

        oracle = LabelSuspects(np.flatnonzero(flipped).astype(np.int64), np.where(flipped, 0.0, 2.0), "oracle",
                               1.0, 0.0)
        with given_suspects(oracle):
            sel = default_selection(X, y, C, k, seed)
            rk = run_selection(parse_method("random_kept:equal"), X, y, C, k, seed)
        cell("facility_location:equal [raw, oracle filter]", np.asarray(sel.indices, np.int64), "raw")
        cell("random_kept:equal [oracle filter]", rk.indices, "-")
    for E in proxy_epochs:
        t0 = time.perf_counter()
        pnet, pres = fit(X, y, C, seed, epochs=E, loss=balanced_loss(y, C))
        feats = penultimate(pnet, X)
        pacc = score(pnet, Xv, yv, yv_true, C)
        cost = dict(proxy_sample_gradients=int(pres.sample_gradients), proxy_forward=int(n),
                    proxy_seconds=round(time.perf_counter() - t0, 2), proxy_balanced_accuracy=pacc["observed"],
                    proxy_balanced_accuracy_true=pacc["true"])
        sel = default_selection(feats, y, C, k, seed)
        diag[f"proxy{E}"] = pr(sel.suspects, flipped)
        cell(f"facility_location:equal [proxy E={E}]", np.asarray(sel.indices, np.int64), f"proxy{E}", cost)
        rk = run_selection(parse_method("random_kept:equal"), feats, y, C, k, seed)
        cell(f"random_kept:equal [proxy E={E}]", rk.indices, f"proxy{E}", cost)
        # extras: the proxy's suspects with the selection on the raw signals; the proxy's own disagreement
        from coreset.selectors._label_noise import detect

        found = detect(feats, y, "auto", None, seed=seed)
        with given_suspects(found):
            sel = default_selection(X, y, C, k, seed)
        cell(f"facility_location:equal [raw, proxy E={E} filter]", np.asarray(sel.indices, np.int64), "raw", cost)
        dis = disagreement(pnet, X, y)
        diag[f"proxy{E}-disagreement"] = pr(dis.suspects, flipped)
        with given_suspects(dis):
            sel = default_selection(X, y, C, k, seed)
            rk = run_selection(parse_method("random_kept:equal"), X, y, C, k, seed)
        cell(f"facility_location:equal [raw, proxy E={E} disagreement filter]", np.asarray(sel.indices, np.int64),
             "raw", cost)
        cell(f"random_kept:equal [proxy E={E} disagreement filter]", rk.indices, "-", cost)
        log(f"  seed {seed} suspects raw P/R {diag['raw']['precision']:.2f}/{diag['raw']['recall']:.2f}, "
            f"proxy E={E} P/R {diag[f'proxy{E}']['precision']:.2f}/{diag[f'proxy{E}']['recall']:.2f}, "
            f"disagreement P/R {diag[f'proxy{E}-disagreement']['precision']:.2f}/"
            f"{diag[f'proxy{E}-disagreement']['recall']:.2f}")
    return dict(rows=rows, suspects=diag, n_fit=int(n), k=int(k), n_flipped=int(flipped.sum()))


def summarise(per_seed):
    names = list(per_seed[0]["rows"])
    table = {}
    for m in names:
        r = [s["rows"][m] for s in per_seed]
        entry = {}
        for key in ("balanced_accuracy", "balanced_accuracy_true", "picked_flipped", "proxy_balanced_accuracy",
                    "proxy_balanced_accuracy_true"):
            if key in r[0]:
                v = np.array([x[key] for x in r], dtype=np.float64)
                entry[key] = dict(mean=float(v.mean()), std=float(v.std(ddof=1)) if v.size > 1 else 0.0)
        entry["train_sample_gradients"] = r[0]["train_sample_gradients"]
        if "proxy_sample_gradients" in r[0]:
            entry["proxy_sample_gradients"] = r[0]["proxy_sample_gradients"]
        table[m] = entry
    sus = {}
    for f in per_seed[0]["suspects"]:
        p = np.array([s["suspects"][f]["precision"] for s in per_seed])
        rc = np.array([s["suspects"][f]["recall"] for s in per_seed])
        sus[f] = dict(precision=float(p.mean()), recall=float(rc.mean()),
                      n_suspects=float(np.mean([s["suspects"][f]["n_suspects"] for s in per_seed])))
    return dict(methods=table, suspects=sus)


def print_table(summary, title):
    print(f"\n{title}\n")
    print("| method | bal. acc. (observed val labels) | bal. acc. (true val labels) | picks flipped | "
          "sample-gradients (train + proxy) |")
    print("|---|---|---|---|---|")
    for m, e in summary["methods"].items():
        a, t = e["balanced_accuracy"], e["balanced_accuracy_true"]
        pf = e.get("picked_flipped")
        cost = f"{e['train_sample_gradients']:,}" + (f" + {e['proxy_sample_gradients']:,}"
                                                      if "proxy_sample_gradients" in e else "")
        print(f"| {m} | {100 * a['mean']:.1f} ± {100 * a['std']:.1f} | "
              f"{100 * t['mean']:.1f} ± {100 * t['std']:.1f} | {'-' if pf is None else format(pf['mean'], '.2f')} | "
              f"{cost} |")
    for m, e in summary["methods"].items():
        if m.startswith("facility_location:equal [proxy") and "proxy_balanced_accuracy" in e:
            a, t = e["proxy_balanced_accuracy"], e["proxy_balanced_accuracy_true"]
            print(f"\nproxy of {m}: its own bal. acc. {100 * a['mean']:.1f} ± {100 * a['std']:.1f} "
                  f"(true labels {100 * t['mean']:.1f} ± {100 * t['std']:.1f})")
    print("\n| features | suspects | precision | recall |\n|---|---|---|---|")
    for f, s in summary["suspects"].items():
        print(f"| {f} | {s['n_suspects']:.0f} | {s['precision']:.2f} | {s['recall']:.2f} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clean", action="store_true", help="the clean validation split (label_noise=0)")
    p.add_argument("--epochs", default=None, help="proxy epochs, comma-separated (clean: default the noisy best)")
    p.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    p.add_argument("--tag", default="", help="suffix of the results key (e.g. -10seeds)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    regime = ("clean" if args.clean else "noisy") + args.tag
    if args.epochs:
        epochs = tuple(int(e) for e in args.epochs.split(","))
    elif args.clean:
        noisy = results["noisy" + args.tag]["summary"]["methods"]
        epochs = (max(PROXY_EPOCHS, key=lambda E: noisy[f"facility_location:equal [proxy E={E}]"]
                      ["balanced_accuracy"]["mean"]),)
    else:
        epochs = PROXY_EPOCHS
    val, yv_true = load(0.0 if args.clean else 0.1)
    t0 = time.perf_counter()
    per_seed = []
    for seed in (int(s) for s in args.seeds.split(",")):
        per_seed.append(run_seed(val, yv_true, seed, epochs))
    summary = summarise(per_seed)
    results[regime] = dict(
        dataset=DATASET, label_noise=0.0 if args.clean else 0.1,
        split="train_validation_split(load_dataset('mnist1d_lt', label_noise=...), share=0.2, random_state=0)",
        fraction=FRACTION, train=dict(model="cnn1d", standardize=False, **TRAIN),
        proxy=dict(epochs=list(epochs), loss="class-balanced cross-entropy", features="penultimate, L2-normalised"),
        seeds=[int(s) for s in args.seeds.split(",")], seconds=round(time.perf_counter() - t0, 1),
        summary=summary, per_seed=per_seed)
    results["machine"] = _common.machine_info()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=1) + "\n")
    print_table(summary, f"{DATASET}, {regime}, validation split, 10%, seeds {args.seeds}")


if __name__ == "__main__":
    main()
