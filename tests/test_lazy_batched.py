"""Lazy greedy's batched loop for heavy gains (``optimizers/_kernels.py``:
``batch_init`` / ``batch_steps``, stale keys evaluated several at a time on
numba's threads): the same picks and gains as naive greedy, bit for bit, on
one thread and on two, with costs, candidate subsets, warm starts and
progress chunks; and when it is (not) taken."""

import multiprocessing
import os
import threading

import numba
import numpy as np
import pytest

from coreset.objectives import FacilityLocation, GraphCut, SaturatedCoverage, SumRedundancy
from coreset.optimizers import LazyGreedy, NaiveGreedy, SampleGreedy
from coreset.optimizers import _kernels as K
from coreset.optimizers import _lazy
from coreset.similarity import dense_similarity, knn_graph

N = 300
THREADS = [1, 2] if numba.config.NUMBA_NUM_THREADS >= 2 else [1]


def _sim(seed, n=N, d=6):
    return dense_similarity(np.random.default_rng(seed).standard_normal((n, d)), "cosine")


MAKERS = {
    "saturated_coverage": lambda S: SaturatedCoverage(S, alpha=0.1),
    "saturated_coverage_small_alpha": lambda S: SaturatedCoverage(S, alpha=0.02),  # many points saturate
    "facility_location": lambda S: FacilityLocation(S),
}


@pytest.fixture
def heavy(monkeypatch):
    """Every dense gain counts as heavy, so the batched loop runs at N = 300."""
    monkeypatch.setattr(K, "PARALLEL_MIN_WORK", 1)
    yield
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("name", sorted(MAKERS))
def test_batched_equals_naive(heavy, name, threads):
    S = _sim(1)
    numba.set_num_threads(threads)
    assert _lazy.gain_threads(MAKERS[name](S)) == threads
    a = NaiveGreedy().maximize(MAKERS[name](S), 60)
    b = LazyGreedy().maximize(MAKERS[name](S), 60)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("threads", THREADS)
def test_batched_with_costs_initial_candidates_and_chunks(heavy, threads):
    S = _sim(2)
    numba.set_num_threads(threads)
    costs = np.random.default_rng(0).uniform(0.2, 3.0, N)
    make = MAKERS["saturated_coverage"]
    a = NaiveGreedy().maximize(make(S), 80, costs=costs, budget=25.0)
    b = LazyGreedy().maximize(make(S), 80, costs=costs, budget=25.0)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert costs[b[0]].sum() <= 25.0 and b[0].size < 80  # the budget, not k, stopped it
    # warm start from naive's first 20 picks, 30 more: naive's next 30 picks and gains
    full = NaiveGreedy().maximize(make(S), 50)
    warm = LazyGreedy().maximize(make(S), 30, initial=full[0][:20])
    np.testing.assert_array_equal(warm[0], full[0][20:])
    np.testing.assert_array_equal(warm[1], full[1][20:])
    # progress chunks: the same picks as one compiled call
    seen = []
    chunked = LazyGreedy().maximize(make(S), 50, callback=lambda stage, done, total: seen.append(done))
    np.testing.assert_array_equal(chunked[0], full[0])
    assert seen and seen[-1] == 50
    # a candidate subset (SampleGreedy runs lazy greedy on a sorted sample): greedy over the same subset
    idx, gains = SampleGreedy(fraction=0.4).maximize(make(S), 30, rng=0)
    cands = np.sort(np.random.default_rng(0).choice(np.arange(N), size=120, replace=False))
    f = make(S)
    expect = []
    for _ in range(30):
        left = np.setdiff1d(cands, expect)
        g = f.gains(left)
        expect.append(int(left[np.argmax(g)]))
        f.update(expect[-1])
    np.testing.assert_array_equal(idx, expect)


def test_gain_threads_only_for_heavy_read_only_gains(heavy):
    S = _sim(3)
    numba.set_num_threads(THREADS[-1])
    assert _lazy.gain_threads(SaturatedCoverage(S)) == THREADS[-1]
    assert _lazy.gain_threads(FacilityLocation(S)) == THREADS[-1]
    # gains that are O(1) or write to the state: never
    assert _lazy.gain_threads(SumRedundancy(S)) == 0
    assert _lazy.gain_threads(GraphCut(S)) == 0
    # sparse rows: too little work per gain
    idx, sims = knn_graph(np.random.default_rng(0).standard_normal((N, 5)).astype(np.float32), 10)
    assert _lazy.gain_threads(SaturatedCoverage.from_knn(idx, sims)) == 0
    numba.set_num_threads(1)
    assert _lazy.gain_threads(SaturatedCoverage(S)) == 1


def test_gain_threads_under_the_default_threshold():
    # N = 300 reads 300 entries a gain: below PARALLEL_MIN_WORK, the bucket walk / tree run
    assert K.PARALLEL_MIN_WORK > N
    assert _lazy.gain_threads(SaturatedCoverage(_sim(4))) == 0


def test_one_thread_outside_the_main_thread_on_an_unsafe_layer(heavy, monkeypatch):
    monkeypatch.setattr(_lazy, "_SAFE_LAYER", lambda: False)
    S = _sim(5)
    numba.set_num_threads(THREADS[-1])
    out = {}

    def work():
        out["threads"] = _lazy.gain_threads(SaturatedCoverage(S))
        out["picks"] = LazyGreedy().maximize(SaturatedCoverage(S), 30)[0]

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert out["threads"] == 1
    np.testing.assert_array_equal(out["picks"], NaiveGreedy().maximize(SaturatedCoverage(S), 30)[0])
    assert _lazy.gain_threads(SaturatedCoverage(S)) == THREADS[-1]  # the main thread still may


def test_heap_orders_by_key_desc_then_slot_asc():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 20, 500).astype(np.float64)  # many ties
    keys[::7] = -np.inf
    hk = np.empty(500)
    hs = np.empty(500, np.int64)
    size = 0
    for s in rng.permutation(500):
        size = K._heap_push(hk, hs, size, keys[s], s)
    got = []
    while size:
        got.append(int(hs[0]))
        size = K._heap_pop(hk, hs, size)
    expect = sorted(range(500), key=lambda s: (-keys[s], s))
    assert got == expect


def _forked_child(S, expect, q):
    try:
        threads = _lazy.gain_threads(SaturatedCoverage(S))
        picks = LazyGreedy().maximize(SaturatedCoverage(S), 30)[0]
        q.put((threads, bool(np.array_equal(picks, expect))))
    except BaseException as exc:  # pragma: no cover - reported to the parent
        q.put(("error", repr(exc)))


@pytest.mark.skipif(len(THREADS) < 2, reason="needs numba threads")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_keeps_to_one_thread(heavy):
    # the parent starts numba's thread pool first; a forked child that started a parallel region
    # afterwards would be terminated by GNU OpenMP ("fork() called from a process already using
    # GNU OpenMP"): it keeps to one thread and makes the same picks
    S = _sim(6)
    numba.set_num_threads(2)
    expect = LazyGreedy().maximize(SaturatedCoverage(S), 30)[0]
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_forked_child, args=(S, expect, q), daemon=True)
    p.start()
    p.join(120)
    if p.is_alive():  # pragma: no cover - never leave a hung child behind
        p.kill()
        p.join()
    assert p.exitcode == 0, f"the forked child died or hung (exit code {p.exitcode})"
    assert q.get(timeout=10) == (1, True)
