"""Label-noise suspects: rows whose label the rest of the data contradicts.

Diversity objectives love outliers, and a mislabeled row is an outlier of
the class it claims: facility location within a class has a large gain for
it. When labels are given, selection keeps the rows found here out of the
*candidates* (they cannot be picked) while they stay in the ground set that
must be covered. See ``docs/label-noise.md`` for the measured precision and
recall and where the detectors fail.

Detectors (every one out of sample: a row never votes for its own label):

``auto`` (the default)
    ``probe`` on embeddings, ``knn`` on a precomputed similarity.
``adaptive``
    the probe, its out-voted rows kept as suspects only as far as the
    estimated share of flipped labels allows (:mod:`._noise_rate`: none on
    clean labels). Safer on clean and redundant data, blind to noise that
    flips labels to a *confusable* class (the estimate assumes flips spread
    over the classes): measured in docs/label-noise.md, "The adaptive rule".
``probe``
    nearest class prototypes as cells: each class is summarised by up to
    ``MAX_PROTOTYPES`` spherical k-means centroids of its rows (one per
    ``ROWS_PER_PROTOTYPE`` rows); every row joins the cell of its most
    similar prototype (cosine; its own prototype taken without it: exact
    leave-one-out), and the labels of the other rows in that cell vote.
    O(N d P) for P <= 4 C prototypes: one matrix product, no training loop.
    Opt-in (``SECOND_OPINION``): a row with no own-class votes may take the
    votes of a second cell (:mod:`._probe_votes`; measured, not the default).
``knn``
    label votes of the ``KNN_NEIGHBORS`` nearest neighbours over all rows
    (not within the class), on the engine's kNN search (:mod:`coreset.similarity`;
    exact up to 20,000 rows; above, on embeddings, the cheaper cell search
    ``effort="fast"``, see ``_knn_votes``). More precise on
    some data, 10-100 times the probe's cost; what ``auto`` runs on a
    precomputed similarity.
``cleanlab``
    cleanlab's ``find_label_issues`` (confident learning, prune by noise rate)
    on the probe's out-of-sample probabilities (softmax of each class's
    nearest-prototype cosine, the temperature fitted by likelihood). Needs
    ``pip install cleanlab``.

The rule for ``probe`` and ``knn``: with ``v_own`` votes for a row's label and
``v_other`` for the most voted other label, the row is a suspect when
``(v_own + 0.5) / (v_other + 0.5) < threshold`` (``threshold=1``: another
label out-votes it; smaller thresholds flag only rows out-voted by a wider
margin). That ratio is the row's ``score`` (higher = less suspect). For
``cleanlab`` the threshold is cleanlab's ``frac_noise``: the share of its
estimated issues to flag.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from .._validation import check_float
from ..exceptions import BackendUnavailableError, UnknownNameError, ValidationError
from ._noise_rate import adaptive_suspects

__all__ = ["LABEL_FILTERS", "DEFAULT_THRESHOLDS", "LabelSuspects", "check_label_filter", "find_label_suspects",
           "label_probabilities", "guard_candidates"]

log = logging.getLogger(__name__)

#: detector names a ``label_filter`` accepts (and None: no filter)
LABEL_FILTERS = ("auto", "adaptive", "probe", "knn", "cleanlab")
#: the default threshold of each detector, chosen on a validation split carved
#: from zipf_hard's training rows (benchmarks/bench_label_noise.py; docs/label-noise.md)
DEFAULT_THRESHOLDS = {"probe": 1.0, "knn": 1.0, "cleanlab": 1.0}
#: probe: at most this many prototypes per class, one per this many rows
MAX_PROTOTYPES = 4
ROWS_PER_PROTOTYPE = 32
KMEANS_ITERATIONS = 5
#: knn: neighbours that vote (the row itself excluded)
KNN_NEIGHBORS = 10
#: knn on embeddings: the effort of the kNN search (``similarity.build_knn``; "fast": the cheap cell search)
KNN_EFFORT = "fast"
#: probe: another class's votes in a cell count ``v_c (m / n_c) ** PRIOR_TEMPER`` (``_cell_votes``):
#: 0 = votes count rows (a big class out-votes a small one by its size), 1 = prior-free
PRIOR_TEMPER = 0.0
#: with PRIOR_TEMPER > 0: False caps the rescale factor at 1 (a bigger class's votes are scaled
#: down to the own class's size, a smaller class's are not scaled up)
PRIOR_SCALE_UP = True
#: probe: a row that no other row of its class joined in its cell (``v_own = 0``) takes the votes of
#: a second cell where they favour it more (``_probe_votes.second_opinion``): None = no second
#: opinion; "second" the cell of its second-nearest prototype; "other_class" that of the nearest
#: prototype of a class other than its nearest prototype's (docs/label-noise.md, "A second opinion")
SECOND_OPINION = None
#: with SECOND_OPINION: only a row whose nearest prototype's cosine tops its own class's best by at most
#: this gap asks again (a boundary row; a flipped row sits deep in its true class); None = no gate
SECOND_OPINION_GAP = None
#: rows scored per matrix product (bounds the (rows x prototypes) block; the
#: blocks run side by side, one per CPU, each on one BLAS thread)
BATCH_ROWS = 2048


@dataclass(frozen=True, eq=False)
class LabelSuspects:
    """What a label filter found.

    Attributes
    ----------
    suspects : int64 array, sorted: rows whose label looks wrong.
    score : float64 array (N,): ``(v_own + 0.5) / (v_other + 0.5)``, the
        row's label votes over the most voted other label's (lower = more
        suspect; below the threshold = suspect; for ``cleanlab`` the probe's
        ratio, used only to rank).
    method, threshold : the detector that ran and its threshold.
    seconds : wall time of the detector.
    noise_rate : ``adaptive``'s estimate of the share of flipped labels (the
        suspects are capped by it: :mod:`._noise_rate`); None for the other
        detectors.
    """

    suspects: np.ndarray
    score: np.ndarray
    method: str
    threshold: float
    seconds: float
    noise_rate: float | None = None

    @property
    def mask(self) -> np.ndarray:
        m = np.zeros(self.score.shape[0], bool)
        m[self.suspects] = True
        return m

    def describe(self) -> dict:
        out = {"method": self.method, "threshold": self.threshold, "n_suspects": int(self.suspects.size),
               "seconds": self.seconds}
        if self.noise_rate is not None:
            out["noise_rate"] = self.noise_rate
        return out


def check_label_filter(label_filter, threshold=None):
    """Validate a ``label_filter`` / ``label_filter_threshold`` pair; returns
    ``(name or None, threshold or None)`` (the threshold resolved later, per
    detector, when None)."""
    if label_filter is None:
        if threshold is not None:
            raise ValidationError(f"label_filter_threshold={threshold!r} applies to a label filter; "
                                  "got label_filter=None")
        return None, None
    if not isinstance(label_filter, str) or label_filter not in LABEL_FILTERS:
        raise UnknownNameError("label_filter", label_filter, LABEL_FILTERS)
    if threshold is not None:
        threshold = check_float(threshold, "label_filter_threshold", low=0.0, high=1.0, low_open=True)
    return label_filter, threshold


def resolve_method(name: str, precomputed: bool) -> str:
    """``auto`` -> ``probe`` on embeddings, ``knn`` on a precomputed
    similarity; ``adaptive`` -> ``probe`` (its cap applied by :func:`detect`)."""
    if name == "auto":
        return "knn" if precomputed else "probe"
    if name == "adaptive" and not precomputed:
        return "probe"
    if precomputed and name != "knn":
        raise ValidationError(f"label_filter={name!r} needs embeddings; got a precomputed similarity "
                              "(use label_filter='knn' or 'auto')")
    return name


def find_label_suspects(X, y, *, method="auto", threshold=None, metric="cosine", random_state=0) -> LabelSuspects:
    """Rows of ``X`` whose label ``y`` looks wrong (see the module doc).

    ``X``: (N, d) embeddings, or an (N, N) similarity with
    ``metric="precomputed"`` (``knn`` only). ``method``: "auto", "probe",
    "knn" or "cleanlab". ``threshold`` in (0, 1] (default per detector,
    ``DEFAULT_THRESHOLDS``). ``metric``: of the kNN graph (the probe is cosine)."""
    from .._validation import as_embeddings, check_labels, check_random_state
    from ..similarity import as_similarity

    method, threshold = check_label_filter(method, threshold)
    if method is None:
        raise ValidationError("method must be one of " + ", ".join(LABEL_FILTERS) + "; got None")
    precomputed = metric == "precomputed"
    data = as_similarity(X) if precomputed else as_embeddings(X)
    y = check_labels(y, data.shape[0])
    seed = int(check_random_state(random_state).integers(0, 2**31 - 1))
    return detect(data, y, method, threshold, precomputed=precomputed, metric=metric, seed=seed)


def detect(data, y, method, threshold, *, precomputed=False, metric="cosine", seed=0) -> LabelSuspects:
    """:func:`find_label_suspects` on validated input (what selectors call)."""
    t0 = time.perf_counter()
    adaptive = method == "adaptive"  # the probe, its suspects capped by the estimated noise
    method = resolve_method(method, precomputed)
    if threshold is None:
        threshold = DEFAULT_THRESHOLDS[method]
    _, codes = np.unique(np.asarray(y), return_inverse=True)
    codes = codes.astype(np.int64).ravel()
    n_classes = int(codes.max()) + 1 if codes.size else 0
    if n_classes < 2:
        score = np.full(codes.size, np.inf)
        return LabelSuspects(np.zeros(0, np.int64), score, method, float(threshold), time.perf_counter() - t0)
    rng = np.random.default_rng(seed)
    if method == "knn":
        own, other = _knn_votes(data, codes, metric="precomputed" if precomputed else metric, seed=seed)
    else:
        own, other, scores, rank = _probe(data, codes, n_classes, rng, keep_scores=method == "cleanlab",
                                          prior=PRIOR_TEMPER)
    score = (own + 0.5) / (other + 0.5)
    noise_rate = None
    if method == "cleanlab":
        flag = _cleanlab_issues(codes, _softmax(scores, _fit_temperature(scores, codes)), threshold)
    else:
        flag = score < threshold
        if adaptive:
            flag, noise_rate = adaptive_suspects(flag, rank, score, n_classes)
    suspects = np.flatnonzero(flag).astype(np.int64)
    return LabelSuspects(suspects, score.astype(np.float64), method, float(threshold), time.perf_counter() - t0,
                         noise_rate)


def label_probabilities(X, y, *, random_state=0):
    """Out-of-sample class probabilities of the probe (rows x classes, columns
    in ``np.unique(y)`` order) and the classes: what ``cleanlab`` consumes.
    Holds an N x C matrix (the filter itself keeps only a sample of it)."""
    from .._validation import as_embeddings, check_labels, check_random_state

    data = as_embeddings(X)
    y = check_labels(y, data.shape[0])
    classes, codes = np.unique(y, return_inverse=True)
    codes = codes.astype(np.int64).ravel()
    rng = np.random.default_rng(int(check_random_state(random_state).integers(0, 2**31 - 1)))  # as detect seeds it
    S = _probe(data, codes, classes.size, rng, keep_scores=True)[2]
    return _softmax(S, _fit_temperature(S, codes)), classes


def guard_candidates(candidates: np.ndarray, score: np.ndarray, need: int) -> np.ndarray:
    """``candidates`` (a mask) with the least suspect non-candidates added
    (highest ``score`` first, ties to the lower index) until at least
    ``need`` rows are candidates (all rows when there are fewer)."""
    have = int(candidates.sum())
    if have >= need:
        return candidates
    out = candidates.copy()
    rest = np.flatnonzero(~candidates)
    order = rest[np.lexsort((rest, -score[rest]))]
    out[order[:need - have]] = True
    return out


# --------------------------------------------------------------------- probe


def _unit_rows(X) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to unit length (float32; zero rows stay zero) and their
    squared norms (1, or 0 for a zero row)."""
    Z = np.asarray(X, dtype=np.float32)
    norm = np.sqrt(np.einsum("ij,ij->i", Z, Z, dtype=np.float64))
    if not np.isfinite(norm).all() or (norm[norm > 0] < 1e-18).any():  # float32 cannot hold the norm: rescale
        scale = np.abs(Z).max(axis=1, keepdims=True)
        scale[scale == 0] = 1.0
        Z = Z / scale
        norm = np.sqrt(np.einsum("ij,ij->i", Z, Z, dtype=np.float64))
    inv = np.where(norm > 0, 1.0 / np.where(norm > 0, norm, 1.0), 0.0)
    Z = Z * inv.astype(np.float32)[:, None]
    return Z, (norm > 0).astype(np.float64)


def _group_sums(Zc, assign, m):
    """Row sums of ``Zc`` per group ``assign`` in [0, m) (a one-hot product:
    far faster than ``np.add.at``)."""
    onehot = np.zeros((m, Zc.shape[0]), np.float32)
    onehot[assign, np.arange(Zc.shape[0])] = 1.0
    return onehot @ Zc


def _class_prototypes(Zc, m, init):
    """One class's spherical k-means: ``m`` centroids started at its rows
    ``init``, then every row joins its nearest centroid. Returns (sums of
    each non-empty prototype's rows, their counts, the prototype of each row)."""
    assign = np.zeros(Zc.shape[0], np.int64)
    if m > 1:
        cent = Zc[init]
        for _ in range(KMEANS_ITERATIONS):
            a = np.argmax(Zc @ cent.T, axis=1)
            s = _group_sums(Zc, a, m)
            norm = np.linalg.norm(s, axis=1)
            live = norm > 0
            cent[live] = s[live] / norm[live, None]
        assign = np.argmax(Zc @ cent.T, axis=1)
    used, assign = np.unique(assign, return_inverse=True)
    assign = assign.ravel()
    return _group_sums(Zc, assign, used.size).astype(np.float64), np.bincount(assign, minlength=used.size), assign


def _prototypes(Z, codes, n_classes, rng):
    """Spherical k-means within each class: (sums of
    each prototype's rows, their counts, the class of each prototype in class
    order, the prototype of each row). The seeded draws are made in class
    order first; the classes then run side by side (callers hold BLAS to one
    thread), in tasks of about ``BATCH_ROWS`` rows."""
    from ..similarity import pmap

    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_classes + 1))
    plans = []
    for c in range(n_classes):
        n_c = int(bounds[c + 1] - bounds[c])
        m = min(MAX_PROTOTYPES, max(1, math.ceil(n_c / ROWS_PER_PROTOTYPE)))
        plans.append((m, rng.choice(n_c, m, replace=False) if m > 1 else None))
    tasks, lo = [], 0
    for c in range(n_classes):
        if bounds[c + 1] - bounds[lo] >= BATCH_ROWS or c == n_classes - 1:
            tasks.append((lo, c + 1))
            lo = c + 1

    def work(task):
        return [_class_prototypes(Z[order[bounds[c]:bounds[c + 1]]], *plans[c]) for c in range(*task)]

    row_proto = np.empty(codes.size, np.int64)
    sums, counts, owner = [], [], []
    for (a, b), found in zip(tasks, pmap(work, tasks)):
        for c, (s, k, assign) in zip(range(a, b), found):
            row_proto[order[bounds[c]:bounds[c + 1]]] = len(owner) + assign
            sums.append(s)
            counts.append(k)
            owner.extend([c] * s.shape[0])
    return np.concatenate(sums), np.concatenate(counts), np.asarray(owner, np.int64), row_proto


def _probe(X, codes, n_classes, rng, *, keep_scores=False, prior=0.0):
    """The probe's votes: each row joins the cell of its nearest prototype
    (its own prototype without it: leave-one-out), and the labels of the
    other rows of that cell vote. Returns (votes for the row's label, votes
    for the most voted other label, with ``keep_scores`` the rows x classes
    matrix of the nearest prototype's cosine per class, else None, and the
    rank of the row's own label among the classes by that cosine: 1 = its
    own class is the nearest). ``prior``: how far the votes are freed of the
    class prior (:func:`_cell_votes`). With ``SECOND_OPINION`` a row with no
    own-class votes may take a second cell's votes (:func:`_ask_again`; with
    ``SECOND_OPINION_GAP`` only a row near its own class: from ``per_class``)."""
    from ..similarity import one_blas_thread, pmap
    from ._probe_kernel import nearest_prototypes, nearest_prototypes_two

    Z, z2 = _unit_rows(X)
    n = Z.shape[0]
    with one_blas_thread():  # many mid-sized products: BLAS's thread pool costs more than it gives
        sums, counts, owner, row_proto = _prototypes(Z, codes, n_classes, rng)
    sq = np.einsum("ij,ij->i", sums, sums)
    # unit prototypes in class order, unpadded (every class has one at least: class c's are the
    # columns first[c] .. first[c + 1] - 1); one product per block of rows, over real prototypes only
    first = np.searchsorted(owner, np.arange(n_classes))
    table_t = np.ascontiguousarray((sums / np.sqrt(np.maximum(sq, 1e-30))[:, None]).astype(np.float32).T)
    sums32 = sums.astype(np.float32)
    near = np.empty(n, np.int64)
    rank = np.empty(n, np.int64)
    ask = SECOND_OPINION is not None
    near2 = np.empty(n if ask else 0, np.int64)  # second-nearest prototype; nearest of another class
    alt = np.empty(n if ask else 0, np.int64)
    gap = np.empty(n if ask else 0, np.float32)  # nearest prototype's cosine minus the own class's best
    scores = np.empty((n, n_classes), np.float32) if keep_scores else None

    def block(lo):  # rows [lo, hi): each block writes its own slice
        hi = min(n, lo + BATCH_ROWS)
        r = np.arange(hi - lo)
        Zb, p = Z[lo:hi], row_proto[lo:hi]
        SR = Zb @ table_t  # rows x prototypes: cosine to each prototype
        d_own = np.einsum("ij,ij->i", Zb, sums32[p], dtype=np.float64)  # <z, sum_p>
        n_own = sq[p] - 2.0 * d_own + z2[lo:hi]  # |sum_p - z|^2: the row's own prototype without it
        SR[r, p] = np.where(counts[p] > 1, (d_own - z2[lo:hi]) / np.sqrt(np.maximum(n_own, 1e-30)), -2.0)
        # nearest prototype, nearest prototype's cosine per class, rank of the own class: one pass
        per_class = scores[lo:hi] if keep_scores else np.empty((hi - lo, n_classes), np.float32)
        if ask:  # the same pass, and the cells a second opinion asks
            nearest_prototypes_two(SR, first, codes[lo:hi], near[lo:hi], near2[lo:hi], alt[lo:hi], rank[lo:hi],
                                   gap[lo:hi], per_class)
        else:
            nearest_prototypes(SR, first, codes[lo:hi], near[lo:hi], rank[lo:hi], per_class)

    with one_blas_thread():  # blocks side by side, one per CPU (similarity._blas)
        for _ in pmap(block, range(0, n, BATCH_ROWS)):
            pass
    own, other = _cell_votes(near, codes, n_classes, prior)
    if ask:
        gate = None if SECOND_OPINION_GAP is None else gap <= SECOND_OPINION_GAP
        _ask_again(own, other, near, {"second": near2, "other_class": alt}[SECOND_OPINION], codes, n_classes, gate)
    return own, other, scores, rank


def _ask_again(own, other, near, ask, codes, n_classes, gate=None):
    """The second opinion, in place: each row with no own-class votes in its
    cell (``own == 0``) takes the votes of the cell ``ask`` names where they
    favour it more (a higher ``(v_own + 0.5) / (v_other + 0.5)``) and hold at
    least one vote for its label (a cell nobody joined is no evidence: at
    100,000 rows it saved 6% of the flips); votes there count rows, and the
    row is not in that cell (out of sample). ``gate``: only the rows it marks ask."""
    from ._probe_votes import second_opinion

    rows = np.flatnonzero((own == 0) & (ask >= 0) & (True if gate is None else gate))
    own2, other2 = second_opinion(near, codes, n_classes, rows, ask[rows])
    better = (own2 > 0) & ((own2 + 0.5) * (other[rows] + 0.5) > (own[rows] + 0.5) * (other2 + 0.5))
    own[rows[better]] = own2[better]
    other[rows[better]] = other2[better]


def _cell_votes(cell, codes, n_classes, prior=0.0):
    """For each row: how many other rows of its cell carry its label, and how
    many carry the most voted other label, the latter's votes rescaled by
    ``prior`` (``_probe_votes.cell_votes``; ``PRIOR_SCALE_UP`` read here)."""
    from ._probe_votes import cell_votes

    return cell_votes(cell, codes, n_classes, prior, scale_up=PRIOR_SCALE_UP)


def _softmax(S, temperature):
    Zs = np.asarray(S, dtype=np.float64) / temperature
    Zs -= Zs.max(axis=1, keepdims=True)
    np.exp(Zs, out=Zs)
    Zs /= Zs.sum(axis=1, keepdims=True)
    return Zs


def _fit_temperature(S, codes) -> float:
    """The softmax temperature that maximises the likelihood of the given
    labels under the (out-of-sample) scores: golden-section search on
    log T in [log 1e-3, log 10]."""
    S = np.asarray(S, dtype=np.float64)
    r = np.arange(S.shape[0])

    def nll(log_t):
        Zs = S / math.exp(log_t)
        m = Zs.max(axis=1)
        return float(np.mean(m + np.log(np.exp(Zs - m[:, None]).sum(axis=1)) - Zs[r, codes]))

    a, b = math.log(1e-3), math.log(10.0)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(c), nll(d)
    for _ in range(30):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(d)
    return math.exp((a + b) / 2)


def _cleanlab_issues(codes, P, frac_noise) -> np.ndarray:
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        raise BackendUnavailableError("label_filter='cleanlab' needs cleanlab: pip install cleanlab "
                                      "(or pip install 'coreset[noise]')") from None
    import warnings

    with warnings.catch_warnings():  # cleanlab warns on tiny classes; the guard handles them
        warnings.simplefilter("ignore")
        # n_jobs=1: cleanlab's default forks a multiprocessing pool, and a fork of a process whose numba /
        # OpenMP / BLAS threads hold locks can hang forever (seen in CI: a pool worker blocked on its queue)
        return np.asarray(find_label_issues(codes, P, frac_noise=frac_noise, n_jobs=1), dtype=bool)


# --------------------------------------------------------------------- knn


def _knn_votes(data, codes, *, metric, seed):
    """Votes of each row's ``KNN_NEIGHBORS`` nearest rows (itself excluded):
    for its own label, and for the most voted other label. On embeddings the
    neighbours come from the engine's search at ``KNN_EFFORT`` (above 20,000
    rows "fast": the cell search with a shorter k-means and no two-hop rounds,
    about 0.7 of a selection graph's cost; the suspects and CCS's accuracy
    barely move: docs/benchmarks.md, "Label filter and CCS overhead"); a
    precomputed similarity keeps its exact top-k."""
    from ..similarity import build_knn

    n = codes.size
    k = min(KNN_NEIGHBORS, n - 1)
    idx, _, _ = build_knn(data, k + 1, metric=metric, random_state=seed, validate=False,
                          effort="full" if metric == "precomputed" else KNN_EFFORT)
    nb = idx[:, 1:]
    labels = codes[nb]
    own = (labels == codes[:, None]).sum(axis=1).astype(np.float64)
    others = np.where(labels == codes[:, None], -1, labels)
    others.sort(axis=1)
    run = np.ones(n, np.int64)
    best = (others[:, 0] >= 0).astype(np.int64)
    for j in range(1, others.shape[1]):
        same = others[:, j] == others[:, j - 1]
        run = np.where(same, run + 1, 1)
        best = np.maximum(best, np.where(others[:, j] >= 0, run, 0))
    return own, best.astype(np.float64)
