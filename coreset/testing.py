"""Common checks every registered objective, optimizer and selector passes.

``tests/test_common.py`` runs them over the registries, so a new member is
tested the day it is registered (scikit-learn's ``check_estimator`` idea).
Each check uses generated data and independent oracles: gains against
from-scratch evaluations, diminishing returns on nested sets, naive against
lazy greedy, dense against sparse, torch against numba, brute force on tiny
inputs. A failed check raises ``AssertionError`` saying what broke.
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile

import numpy as np

__all__ = ["check_objective", "check_optimizer", "check_selector", "make_inputs", "ProtocolOnly"]


class ProtocolOnly:
    """An objective seen only through the Objective protocol (``n``, ``value``,
    ``gains``, ``update``): drives the optimizers' Python paths."""

    def __init__(self, f):
        self._f = f
        self.n = f.n

    def gains(self, candidates):
        return self._f.gains(candidates)

    def update(self, j):
        self._f.update(j)

    @property
    def value(self):
        return self._f.value


def make_inputs(n=40, d=6, seed=0):
    """(features >= 0, dense cosine similarity, labels) on seeded blobs."""
    from .similarity import dense_similarity

    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((4, d)) * 3
    y = rng.integers(0, 4, size=n)
    X = (centers[y] + rng.standard_normal((n, d))).astype(np.float64)
    return np.abs(X), dense_similarity(X, "cosine"), X, y


def _bound(name, features, S):
    from ._registry import OBJECTIVES
    from .objectives._base import Data

    f = OBJECTIVES.create(name)
    assert not getattr(f, "is_bound", False), f"{name}: a default-constructed objective must be unbound"
    return f.bind(Data(features=features, similarity=S))


def _close(a, b, what, tol=1e-7):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    assert np.allclose(a, b, rtol=0, atol=tol * scale), f"{what}: {a} != {b}"


def _check_batched(name, features, S, naive):
    import numba

    from .optimizers import LazyGreedy
    from .optimizers import _kernels

    saved, threads = _kernels.PARALLEL_MIN_WORK, numba.get_num_threads()
    _kernels.PARALLEL_MIN_WORK = 1
    try:
        for t in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(t)
            b = LazyGreedy().maximize(_bound(name, features, S), 8)
            assert np.array_equal(naive[0], b[0]) and np.array_equal(naive[1], b[1]), \
                f"{name}: lazy greedy on {t} thread(s) {b[0]} != naive {naive[0]}"
    finally:
        _kernels.PARALLEL_MIN_WORK = saved
        numba.set_num_threads(threads)


def check_objective(name: str, seed: int = 0) -> None:
    """Protocol, gains == evaluate differences, diminishing returns, monotone
    flag, naive == lazy (and == lazy's threaded batches where the objective
    allows them), dense == sparse, torch == numba, brute force bound."""
    import scipy.sparse as sp

    from ._registry import OBJECTIVES
    from .objectives._base import Data, Objective
    from .optimizers import LazyGreedy, NaiveGreedy

    cls = OBJECTIVES.get(name)
    assert getattr(cls, "name", None) == name, f"{cls.__name__}.name must be the registry name {name!r}"
    features, S, X, _ = make_inputs(seed=seed)
    n = S.shape[0]
    rng = np.random.default_rng(seed)
    f = _bound(name, features, S)
    assert isinstance(f, Objective) and f.n == n, f"{name}: not an Objective over {n} elements"
    assert repr(f), name
    # gains are f(A + j) - f(A), from a random A, against from-scratch evaluations
    A = [int(j) for j in rng.choice(n, size=5, replace=False)]
    for j in A:
        f.update(j)
    _close(f.value, f.evaluate(A), f"{name}: value != evaluate(set)")
    rest = np.setdiff1d(np.arange(n), A)
    g = f.gains(rest)
    base = f.evaluate(A)
    brute = [f.evaluate(A + [int(j)]) - base for j in rest]
    _close(g, brute, f"{name}: gains != evaluate(A + j) - evaluate(A)")
    # diminishing returns: gains shrink as the set grows (submodularity)
    B = A + [int(j) for j in rng.choice(rest, size=4, replace=False)]
    fb = _bound(name, features, S)
    for j in B:
        fb.update(j)
    outside = np.setdiff1d(np.arange(n), B)
    assert (f.gains(outside) >= fb.gains(outside) - 1e-9 * max(1, abs(base))).all(), \
        f"{name}: gains grew from A to a superset (not submodular)"
    if getattr(f, "monotone", False):
        assert (f.gains(rest) >= -1e-12).all(), f"{name}: monotone=True but a gain is negative"
    # naive == lazy, exactly
    a = NaiveGreedy().maximize(_bound(name, features, S), 8)
    b = LazyGreedy().maximize(_bound(name, features, S), 8)
    assert np.array_equal(a[0], b[0]), f"{name}: lazy {b[0]} != naive {a[0]}"
    # an objective whose gains may run on threads (``_gain_work() > 0``): lazy greedy's batched
    # loop, forced at this size, picks the same, with the same gains, on one thread and on several
    if f._gain_work() if hasattr(f, "_gain_work") else 0:
        _check_batched(name, features, S, a)
    # dense == sparse with every entry stored
    if getattr(cls, "supports_sparse", False) and getattr(cls, "inputs", "similarity") != "features":
        fs = OBJECTIVES.create(name).bind(Data(features=features, similarity=sp.csr_matrix(S)))
        s = NaiveGreedy().maximize(fs, 8)
        assert np.array_equal(a[0], s[0]), f"{name}: sparse {s[0]} != dense {a[0]}"
        _close(s[1], a[1], f"{name}: sparse gains != dense gains")
    # torch == numba (on CPU torch), when the objective has a torch path
    try:
        ft = _bound(name, features, S).to_torch("cpu")
    except Exception as exc:  # no torch path, or torch not installed
        from .exceptions import BackendUnavailableError, ValidationError

        if not isinstance(exc, (BackendUnavailableError, ValidationError)):
            raise
        ft = None
    if ft is not None:
        t = NaiveGreedy().maximize(ft, 8)
        assert np.array_equal(a[0], t[0]), f"{name}: torch {t[0]} != numba {a[0]}"
        _close(t[1], a[1], f"{name}: torch gains != numba gains", tol=1e-6)
    # brute force on a tiny input: greedy >= (1 - 1/e) OPT for monotone functions
    if getattr(f, "monotone", False):
        ftiny, Stiny = features[:9], S[:9, :9]
        k = 3
        tiny = _bound(name, ftiny, Stiny)
        picks, _ = NaiveGreedy().maximize(tiny, k)
        opt = max(_bound(name, ftiny, Stiny).evaluate(list(c)) for c in itertools.combinations(range(9), k))
        assert tiny.value >= (1 - 1 / math.e) * opt - 1e-9, f"{name}: greedy {tiny.value} < (1-1/e) * {opt}"
    # configuration round trip
    params = OBJECTIVES.create(name).get_params()
    again = type(f)(**params) if params else type(f)()
    assert again.get_params().keys() == params.keys(), f"{name}: get_params does not round-trip"
    del Data


def check_optimizer(name: str, seed: int = 0) -> None:
    """Valid picks on the kernel and the protocol paths, gains that add up to
    the value, the warm start and the knapsack budget respected."""
    from ._registry import OPTIMIZERS
    from .objectives import FacilityLocation

    _, S, _, _ = make_inputs(n=60, seed=seed)
    opt = OPTIMIZERS.create(name)
    assert getattr(opt, "name", None) == name, f"{type(opt).__name__}.name must be the registry name {name!r}"

    for f in (FacilityLocation(S), ProtocolOnly(FacilityLocation(S))):
        idx, gains = opt.maximize(f, 10, rng=np.random.default_rng(seed))
        assert idx.dtype == np.int64 and idx.size == 10 and np.unique(idx).size == 10, f"{name}: bad picks {idx}"
        assert ((idx >= 0) & (idx < 60)).all(), f"{name}: picks out of range"
        _close(gains.sum(), FacilityLocation(S).evaluate(idx), f"{name}: gains do not add up to f(picks)", 1e-9)
        _close(f.value, FacilityLocation(S).evaluate(idx), f"{name}: objective value != f(picks)", 1e-9)
    # warm start: nothing of the initial set is picked again, gains counted from it
    first, _ = opt.maximize(FacilityLocation(S), 6, rng=np.random.default_rng(seed))
    f = FacilityLocation(S)
    more, g = opt.maximize(f, 5, rng=np.random.default_rng(seed), initial=first[:3])
    assert not set(more) & set(first[:3]), f"{name}: re-picked a warm-start element"
    _close(g.sum() + FacilityLocation(S).evaluate(first[:3]), FacilityLocation(S).evaluate(np.r_[first[:3], more]),
           f"{name}: warm-start gains are not counted from the initial set", 1e-9)
    # knapsack: the budget holds
    if getattr(opt, "supports_costs", False):
        costs = np.random.default_rng(seed).uniform(0.5, 2.0, 60)
        idx, _ = opt.maximize(FacilityLocation(S), 60, rng=np.random.default_rng(seed), costs=costs, budget=5.0)
        assert costs[idx].sum() <= 5.0 + 1e-9 and idx.size > 0, f"{name}: budget exceeded or nothing picked"


def check_selector(name: str, seed: int = 0) -> None:
    """A valid, reproducible, weighted Selection that round-trips through an
    index file; scikit-learn's clone contract."""
    from sklearn.base import clone

    from ._registry import SELECTORS
    from .selection import Selection

    _, _, X, y = make_inputs(n=120, d=5, seed=seed)
    cls = SELECTORS.get(name)
    est = cls(n_select=12, random_state=seed)
    assert clone(est).get_params().keys() == est.get_params().keys(), f"{name}: clone changes the parameters"
    sel = est.fit(X, y).selection_
    again = clone(est).fit(X, y).selection_
    assert isinstance(sel, Selection), f"{name}: fit must set a Selection"
    idx = sel.indices
    assert idx.size > 0 and np.unique(idx).size == idx.size and ((idx >= 0) & (idx < 120)).all(), f"{name}: {idx}"
    assert np.array_equal(idx, again.indices), f"{name}: not reproducible with the same random_state"
    assert (sel.weights >= 0).all() and abs(sel.weights.sum() - 120) < 1e-6, f"{name}: weights must sum to N"
    assert sel.meta.get("method"), f"{name}: meta has no method"
    assert np.array_equal(sel.labels, y[idx]), f"{name}: labels are not the picks' labels"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.npz")
        sel.save(path)
        assert Selection.load(path).equals(sel), f"{name}: the index file does not round-trip"
