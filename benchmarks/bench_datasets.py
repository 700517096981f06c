"""Full-data balanced accuracy of a logistic-regression probe on each
registered long-tailed dataset (train split -> balanced test split), seeds
0..2: the numbers in docs/datasets.md.

    python benchmarks/bench_datasets.py                      # all datasets, seeds 0 1 2
    python benchmarks/bench_datasets.py --datasets zipf_hard --seeds 0

Probe: StandardScaler + LogisticRegression(C=1, lbfgs, max_iter=1000), fit on
the whole training split; balanced accuracy on the balanced test split. Also
recorded: the same probe on a class-stratified random 10% of the training
split (at least one point per class), the gap a selection method can close.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from _common import RESULTS, machine_info, write_json  # noqa: E402


def probe(X, y, X_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(X)
    m = LogisticRegression(C=1.0, max_iter=1000).fit(sc.transform(X), y)
    return float(balanced_accuracy_score(y_test, m.predict(sc.transform(X_test))))


def mlp_probe(X, y, X_test, y_test, seed=0, epochs=300) -> float:
    """A small torch MLP (2 x 256, ReLU, Adam 1e-3, full batch, class-weighted
    loss), standardised inputs; balanced accuracy on the test split."""
    import numpy as np
    import torch

    torch.manual_seed(seed)
    mu, sd = X.mean(0), X.std(0) + 1e-6
    Xt = torch.as_tensor((X - mu) / sd, dtype=torch.float32)
    Xe = torch.as_tensor((X_test - mu) / sd, dtype=torch.float32)
    C = int(max(y.max(), y_test.max())) + 1
    yt = torch.as_tensor(y)
    w = torch.as_tensor(len(y) / (C * np.maximum(np.bincount(y, minlength=C), 1)), dtype=torch.float32)
    net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                              torch.nn.ReLU(), torch.nn.Linear(256, C))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(Xt), yt, weight=w).backward()
        opt.step()
    with torch.no_grad():
        pred = net(Xe).argmax(1).numpy()
    return float(np.mean([np.mean(pred[y_test == c] == c) for c in np.unique(y_test)]))


def stratified_10(y, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    idx = [rng.choice(ii, max(1, round(0.1 * len(ii))), replace=False)
           for ii in (np.flatnonzero(y == c) for c in np.unique(y))]
    return np.sort(np.concatenate(idx))


def main(argv=None):
    from coreset.data import DATASETS, load_dataset

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="*", default=list(DATASETS))
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--mlp", action="store_true", help="also a small torch MLP probe (a non-linear reference)")
    ap.add_argument("--machine", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    rows = {}
    for name in args.datasets:
        full, rand, mfull, mrand = [], [], [], []
        for seed in args.seeds:
            t0 = time.perf_counter()
            d = load_dataset(name, random_state=seed)
            t_load = time.perf_counter() - t0
            full.append(probe(d.X, d.y, d.X_test, d.y_test))
            i = stratified_10(d.y, seed)
            rand.append(probe(d.X[i], d.y[i], d.X_test, d.y_test))
            if args.mlp:
                mfull.append(mlp_probe(d.X, d.y, d.X_test, d.y_test, seed))
                mrand.append(mlp_probe(d.X[i], d.y[i], d.X_test, d.y_test, seed))
            print(f"{name} seed {seed}: n_train {len(d.y)} full {full[-1]:.4f} random10% {rand[-1]:.4f} "
                  f"mlp {mfull[-1:]} {mrand[-1:]} (load {t_load:.1f} s)", file=sys.stderr, flush=True)
        rows[name] = {"seeds": args.seeds, "full": full, "random_10pct": rand,
                      "full_mean": statistics.mean(full), "full_std": statistics.pstdev(full),
                      "random_10pct_mean": statistics.mean(rand), "random_10pct_std": statistics.pstdev(rand)}
        if mfull:
            rows[name].update(mlp_full=mfull, mlp_random_10pct=mrand, mlp_full_mean=statistics.mean(mfull),
                              mlp_full_std=statistics.pstdev(mfull), mlp_random_10pct_mean=statistics.mean(mrand),
                              mlp_random_10pct_std=statistics.pstdev(mrand))
    info = machine_info(args.machine)
    path = Path(args.out) if args.out else RESULTS / f"datasets{'-mlp' if args.mlp else ''}-{info['name']}.json"
    write_json(path, {"benchmark": "datasets", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info,
                      "probe": "StandardScaler + LogisticRegression(C=1, max_iter=1000), balanced accuracy",
                      "results": rows})
    for name, r in rows.items():
        print(f"| {name} | {r['full_mean']:.3f} ± {r['full_std']:.3f} | "
              f"{r['random_10pct_mean']:.3f} ± {r['random_10pct_std']:.3f} |"
              + (f" {r['mlp_full_mean']:.3f} ± {r['mlp_full_std']:.3f} | "
                 f"{r['mlp_random_10pct_mean']:.3f} ± {r['mlp_random_10pct_std']:.3f} |" if "mlp_full" in r else ""))


if __name__ == "__main__":
    main()
