"""GreeDi's merge before and after it builds its similarity once (the merge's
greedy and RandGreeDi's evaluation of the candidates on one kNN graph) and
values the candidates in one compiled loop each.

Data: ``coreset.data.make_zipf(N, d, n_classes=1000, random_state=0).X``
(default 200,000 x 64 float32). One ``GreeDi(SubmodularSelector(), P,
n_select=k)`` fit (facility location + lazy greedy on the default 32-NN
graph, local executor, random_state=0) runs its partitions; the driver's
merge (``merge_union`` on the P x k picks) is then timed in one process,
old and new interleaved (old = ``_greedi_tree._build_once`` replaced by the
identity: the evaluator builds the graph again, as before, and ``_replay`` by
the Python loop of one ``gains`` and one ``update`` call per pick), each from a copy
of the same random generator; the results must be equal to the bit. Also
timed alone: one build of the union's graph, the evaluation of the P
children's picks on it (Python loop and compiled loop), and the exact
nearest-pick search of the weights (``nearest_among``).

    nice -n 5 python benchmarks/bench_greedi_merge_graph.py   # results/greedi-merge-graph-<machine>.json
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine_info, median, write_json  # noqa: E402


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class _Captured(Exception):
    pass


def capture_merge(X, P, k):
    """The driver's ``merge_union`` arguments of a GreeDi fit (its merge skipped)."""
    from coreset import GreeDi, SubmodularSelector
    from coreset.selectors import _greedi

    args = {}

    def grab(*a):
        args["a"] = a
        args["rng"] = copy.deepcopy(a[7])
        raise _Captured

    real = _greedi.merge_union
    _greedi.merge_union = grab
    t = time.perf_counter()
    try:
        GreeDi(SubmodularSelector(), P, n_select=k, random_state=0).fit(X)
    except _Captured:
        pass
    finally:
        _greedi.merge_union = real
    return args, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--k", type=int, default=10_000)
    ap.add_argument("--P", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from coreset.data import make_zipf
    from coreset.selectors import _greedi_tree
    from coreset.similarity import nearest_among

    X = np.ascontiguousarray(make_zipf(args.n, args.d, n_classes=1000, random_state=0).X, np.float32)
    warm_up(X[:20_000])
    cap, partitions_s = capture_merge(X, args.P, args.k)
    log(f"partitions: {partitions_s:.1f} s")
    a = list(cap["a"])
    once, replay = _greedi_tree._build_once, _greedi_tree._replay

    def merge(old):
        if old:  # the graph built again by the evaluator, one protocol call per evaluated pick
            _greedi_tree._build_once, _greedi_tree._replay = (lambda sim: sim), _greedi_tree._replay_python
        a[7] = copy.deepcopy(cap["rng"])
        t = time.perf_counter()
        try:
            res, info = _greedi_tree.merge_union(*a)
        finally:
            _greedi_tree._build_once, _greedi_tree._replay = once, replay
        return time.perf_counter() - t, res, info

    times = {"old": [], "new": []}
    outs = {}
    for rep in range(args.repeats):
        for name in ("old", "new") if rep % 2 == 0 else ("new", "old"):
            s, res, info = merge(name == "old")
            times[name].append(s)
            outs[name] = (res, info)
            log(f"{name}: merge {s:.2f} s (union {info['union_size']}, chosen {info['chosen']})")
    (ro, io), (rn, inn) = outs["old"], outs["new"]
    identical = (all(np.array_equal(getattr(ro, f), getattr(rn, f)) for f in ("indices", "gains", "weights"))
                 and ro.objective == rn.objective and io["chosen"] == inn["chosen"]
                 and io["merge_candidates"] == inn["merge_candidates"])
    log(f"identical: {identical}")

    # the parts alone: one build of the union's graph, the children's evaluation, the exact search of the weights
    from coreset import SubmodularSelector
    from coreset.selectors._base import Group, Progress

    U = np.concatenate([r["indices"] for r in a[4]])
    XU = X[U]
    prepared = SubmodularSelector()._prepare(Group(XU, None, False, Progress(None, {})), np.random.default_rng(0))
    t = time.perf_counter()
    S, graph = prepared._similarity.build(XU)
    build_s = time.perf_counter() - t
    from coreset.objectives._base import Data

    sizes = [r["indices"].size for r in a[4]]
    cands = [o + np.arange(min(args.k, m)) for o, m in zip(np.cumsum([0] + sizes[:-1]), sizes)]
    eval_s = {}
    for name, fn in (("python", _greedi_tree._replay_python), ("compiled", _greedi_tree._replay)) * 2:
        t = time.perf_counter()
        for pos in cands:
            fn(prepared._objective.bind(Data(features=XU, similarity=S)), pos)
        eval_s[name] = time.perf_counter() - t  # the second round's (numba compiled and warm)
    del S
    t = time.perf_counter()
    nearest_among(XU, np.arange(XU.shape[0]), np.flatnonzero(np.isin(U, rn.indices)), metric="cosine",
                  backend=None)
    nearest_s = time.perf_counter() - t

    machine = machine_info()
    out = RESULTS / (args.out or f"greedi-merge-graph-{machine['name']}.json")
    result = {"benchmark": "greedi_merge_graph", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": machine, "data": f"make_zipf({args.n}, {args.d}, n_classes=1000, random_state=0).X",
              "n": args.n, "d": args.d, "k": args.k, "P": args.P, "union_size": int(U.size), "graph": graph,
              "partitions_seconds": round(partitions_s, 2),
              "merge_seconds": {k: [round(s, 3) for s in v] for k, v in times.items()},
              "merge_median_seconds": {k: round(median(v), 3) for k, v in times.items()},
              "old_over_new": round(median(times["old"]) / median(times["new"]), 3),
              "identical": bool(identical), "union_graph_build_seconds": round(build_s, 3),
              "weights_nearest_among_seconds": round(nearest_s, 3),
              "evaluation_seconds": {k: round(v, 3) for k, v in eval_s.items()},
              "evaluated_picks": int(sum(c.size for c in cands)), "chosen": inn["chosen"],
              "merge_candidates": inn["merge_candidates"]}
    write_json(out, result)
    log(f"old / new = {result['old_over_new']}; wrote {out}")
    if not identical:
        raise SystemExit("old and new merges differ")


def warm_up(X):
    """numba's disk cache filled before any clock starts."""
    from coreset import GreeDi, SubmodularSelector

    GreeDi(SubmodularSelector(), 4, n_select=200, random_state=0).fit(X)


if __name__ == "__main__":
    main()
