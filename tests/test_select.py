import numpy as np
import pytest
import scipy.sparse as sp

import coreset
from coreset import Selection, select
from coreset.data import make_zipf
from coreset.exceptions import CoresetError, DegenerateInputError, UnknownNameError, ValidationError
from coreset.objectives import FacilityLocation
from coreset.selectors import SubmodularSelector, allocate_budget
from coreset.similarity import dense_similarity


@pytest.fixture(scope="module")
def zipf():
    return make_zipf(3000, 16, n_classes=60, random_state=0)


# -- class budgets ---------------------------------------------------------------

def test_budget_policies_hand_computed():
    assert allocate_budget([50, 30, 20], 10, "proportional").tolist() == [5, 3, 2]
    # equal: the class of 2 gives all it has, its surplus goes to the others
    assert allocate_budget([100, 50, 2], 30, "equal").tolist() == [14, 14, 2]
    # tempered alpha=0.5: weights 10, 7.07, 1.41; lambda*w clipped to sizes
    assert allocate_budget([100, 50, 2], 30, "tempered", alpha=0.5).tolist() == [16, 12, 2]
    assert allocate_budget([100, 50, 2], 30, "tempered", alpha=1.0).tolist() == allocate_budget([100, 50, 2], 30).tolist()
    assert allocate_budget([100, 50, 2], 30, "tempered", alpha=0.0).tolist() == [14, 14, 2]
    # floor on top of the policy
    assert allocate_budget([1000, 10, 1, 1], 20, min_per_class=2).tolist() == [16, 2, 1, 1]
    assert allocate_budget([3, 3, 3], 9, "equal").tolist() == [3, 3, 3]


@pytest.mark.parametrize("policy", ["proportional", "equal", "tempered"])
@pytest.mark.parametrize("total", [1, 7, 100, 513, 1000])
def test_budget_totals_are_exact_and_within_class_sizes(policy, total):
    sizes = np.array([600, 200, 90, 50, 30, 12, 7, 5, 3, 2, 1])
    b = allocate_budget(sizes, total, policy, alpha=0.3)
    assert b.sum() == total
    assert (b >= 0).all() and (b <= sizes).all()
    # a class below its share gives everything; the rest share what remains in proportion
    w = {"proportional": sizes, "equal": np.ones_like(sizes), "tempered": sizes ** 0.3}[policy].astype(float)
    free = b < sizes
    if free.sum() > 1:
        share = b[free] / w[free]
        assert share.max() - share.min() <= 1.0 / w[free].min() + 1e-9  # rounding only


def test_budget_water_level_matches_bisection():
    # the exact water-filling against a plain bisection on lambda (the oracle), random cases
    from coreset.selectors._budget import _water_fill

    rng = np.random.default_rng(0)
    for _ in range(300):
        sizes = rng.integers(1, 400, int(rng.integers(1, 40)))
        w = sizes ** rng.uniform(0, 1)
        floor = np.minimum(int(rng.integers(0, 4)), sizes)
        total = int(rng.integers(floor.sum(), sizes.sum() + 1))
        lo, hi = 0.0, 1.0
        while np.clip(hi * w, floor, sizes).sum() < total:
            hi *= 2.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if np.clip(mid * w, floor, sizes).sum() < total else (lo, mid)
        x = _water_fill(w, floor, sizes, total)
        np.testing.assert_allclose(x, np.clip(hi * w, floor, sizes), rtol=1e-9, atol=1e-9)
        assert abs(x.sum() - total) < 1e-6


def test_budget_errors():
    with pytest.raises(ValidationError, match="min_per_class=2 needs 6 points over 3 classes but n_select is 5"):
        allocate_budget([10, 10, 10], 5, min_per_class=2)
    with pytest.raises(ValidationError, match="class_sizes must be positive integers"):
        allocate_budget([10, 0], 5)
    with pytest.raises(ValidationError, match=r"alpha must be in \[0.0, 1.0\]; got 2.0"):
        allocate_budget([10, 5], 5, "tempered", alpha=2.0)
    with pytest.raises(UnknownNameError, match="did you mean 'equal'"):
        allocate_budget([10, 10], 5, "equl")


@pytest.mark.parametrize("policy", ["proportional", "equal", "tempered"])
def test_select_with_class_budget(zipf, policy):
    X, y = zipf.X, zipf.y
    sel = select(X, n_select=300, y=y, class_budget=policy, min_per_class=1, random_state=0)
    sizes = np.bincount(y)
    expected = allocate_budget(sizes, 300, policy, min_per_class=1)
    assert len(sel) == 300
    np.testing.assert_array_equal(np.bincount(y[sel.indices], minlength=sizes.size), expected)
    np.testing.assert_array_equal(sel.labels, y[sel.indices])
    # weights sum to each class's size (every class has at least one pick here)
    per_class = np.bincount(y[sel.indices], weights=sel.weights, minlength=sizes.size)
    np.testing.assert_allclose(per_class, sizes)
    assert len(set(sel.indices.tolist())) == 300


def test_class_budget_equals_per_class_greedy(zipf):
    """Per-class selection is facility location run on each class alone."""
    X, y = zipf.X, zipf.y
    sel = select(X, n_select=200, y=y, class_budget="equal", n_neighbors=None, random_state=0)
    b = allocate_budget(np.bincount(y), 200, "equal")
    for c in (0, 5, 30):
        m = np.flatnonzero(y == c)
        ref = select(X[m], n_select=int(b[c]), n_neighbors=None)
        assert sorted(m[ref.indices].tolist()) == sorted(sel.indices[y[sel.indices] == c].tolist())


def test_weights_are_cluster_sizes(zipf):
    X = zipf.X[:800]
    sel = select(X, n_select=40, n_neighbors=None)
    S = dense_similarity(X)
    # oracle: each point goes to its most similar pick (first pick among ties)
    owner = np.argmax(S[sel.indices], axis=0)
    np.testing.assert_array_equal(sel.weights, np.bincount(owner, minlength=40))
    assert sel.weights.sum() == 800
    # picked points represent at least themselves
    assert (sel.weights >= 1).all()


def test_weights_sum_to_n_on_knn_graph_with_uncovered_points():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 8)).astype(np.float32)
    sel = select(X, n_select=30, n_neighbors=4, random_state=0)  # few picks, tiny k: many uncovered
    assert sel.weights.sum() == 3000
    assert sel.meta["graph"]["form"] == "knn"


def test_objective_is_facility_location_of_the_picks(zipf):
    X = zipf.X[:1000]
    sel = select(X, fraction=0.05, n_neighbors=None)
    assert sel.objective == pytest.approx(FacilityLocation(dense_similarity(X)).evaluate(sel.indices))
    assert sel.objective == pytest.approx(sel.gains.sum())


def test_precomputed_dense_and_sparse_agree(zipf):
    S = dense_similarity(zipf.X[:500])
    a = select(S, n_select=25, metric="precomputed")
    b = select(sp.coo_matrix(S), n_select=25, metric="precomputed")
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.gains, b.gains)
    c = select(zipf.X[:500], n_select=25, n_neighbors=None)
    np.testing.assert_array_equal(a.indices, c.indices)


def test_torch_tensor_input_and_dtypes(zipf):
    import torch

    X = zipf.X[:400]
    a = select(X, n_select=20, n_neighbors=None)
    b = select(torch.from_numpy(X), n_select=20, n_neighbors=None)
    c = select(X.astype(np.float64), n_select=20, n_neighbors=None)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.indices, c.indices)
    assert a.indices.dtype == np.int64


@pytest.mark.parametrize("optimizer", ["naive_greedy", "lazy_greedy", "stochastic_greedy"])
@pytest.mark.parametrize("n_neighbors", [None, 10])
def test_every_optimizer_through_select(zipf, optimizer, n_neighbors):
    X = zipf.X[:600]
    sel = select(X, n_select=30, optimizer=optimizer, n_neighbors=n_neighbors, random_state=1)
    assert len(set(sel.indices.tolist())) == 30
    assert sel.weights.sum() == 600
    assert sel.meta["optimizer"] == optimizer


def test_fraction_and_reproducibility(zipf):
    a = select(zipf.X, fraction=0.1, optimizer="stochastic_greedy", random_state=3)
    b = select(zipf.X, fraction=0.1, optimizer="stochastic_greedy", random_state=3)
    assert len(a) == 300
    np.testing.assert_array_equal(a.indices, b.indices)


@pytest.mark.parametrize("method", ["random", "stratified_random", "k_center_greedy"])
def test_baselines_same_return_type(zipf, method):
    sel = select(zipf.X, n_select=100, y=zipf.y, method=method, random_state=0)
    assert isinstance(sel, Selection) and len(sel) == 100 and sel.meta["method"] == method
    assert len(set(sel.indices.tolist())) == 100
    if method != "stratified_random":
        assert sel.weights.sum() == pytest.approx(3000)


def test_k_center_greedy_is_farthest_first():
    X = np.array([[0.0, 0], [1, 0], [10, 0], [10, 1], [5, 5]])
    sel = select(X, n_select=3, method="k_center_greedy", metric="euclidean", random_state=0)
    first = sel.indices[0]
    d = np.linalg.norm(X - X[first], axis=1)
    assert sel.indices[1] == np.argmax(d)
    d = np.minimum(d, np.linalg.norm(X - X[sel.indices[1]], axis=1))
    assert sel.indices[2] == np.argmax(d)


def test_stratified_random_counts(zipf):
    sel = select(zipf.X, n_select=300, y=zipf.y, method="stratified_random", random_state=0)
    expected = allocate_budget(np.bincount(zipf.y), 300, "proportional")
    np.testing.assert_array_equal(np.bincount(zipf.y[sel.indices], minlength=60), expected)


def test_estimator_contract(zipf):
    from sklearn.base import clone

    est = SubmodularSelector(50, similarity="dense", random_state=0)
    assert clone(est).get_params() == est.get_params()
    Xt = est.fit_transform(zipf.X[:500])
    np.testing.assert_array_equal(Xt, zipf.X[:500][est.ranking_])
    assert est.weights_.sum() == 500 and est.n_features_in_ == 16
    np.testing.assert_array_equal(est.ranking_, select(zipf.X[:500], n_select=50, n_neighbors=None).indices)


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, coreset; print(any(m in sys.modules for m in ('torch', 'faiss', 'numba', 'sklearn')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# -- bad input: a CoresetError naming the parameter and the value ---------------------

BAD = [
    (dict(X=np.array([[1.0, np.nan], [0, 1]]), n_select=1), ValidationError, "finite"),
    (dict(X=np.array([[1.0, np.inf], [0, 1]]), n_select=1), ValidationError, "finite"),
    (dict(X=np.ones(5), n_select=1), ValidationError, "ndim=1"),
    (dict(X=np.ones((2, 2, 2)), n_select=1), ValidationError, "ndim=3"),
    (dict(X=np.empty((0, 4)), n_select=1), ValidationError, "empty"),
    (dict(X=np.empty((4, 0)), n_select=1), ValidationError, "empty"),
    (dict(n_select=0), ValidationError, r"n_select must be in \[1, 50\]; got 0"),
    (dict(n_select=-3), ValidationError, "got -3"),
    (dict(n_select=51), ValidationError, "got 51"),
    (dict(n_select=2.5), ValidationError, "n_select must be an integer; got 2.5"),
    (dict(fraction=0.0), ValidationError, r"fraction must be in \(0.0, 1.0\]; got 0.0"),
    (dict(fraction=1.5), ValidationError, "got 1.5"),
    (dict(fraction=float("nan")), ValidationError, "fraction"),
    (dict(), ValidationError, "n_select or fraction"),
    (dict(n_select=3, fraction=0.1), ValidationError, "exactly one"),
    (dict(n_select=3, y=np.zeros(49)), ValidationError, "49 labels but X has 50 rows"),
    (dict(X=np.array([["a", "b"], ["c", "d"]]), n_select=1), ValidationError, "dtype <U1"),
    (dict(X=np.array([[object(), 1]], dtype=object), n_select=1), ValidationError, "dtype object"),
    (dict(n_select=3, n_neighbors=50), ValidationError, "n_neighbors must be < the number of samples \\(50\\); got 50"),
    (dict(n_select=3, n_neighbors=0), ValidationError, "n_neighbors"),
    (dict(n_select=3, n_neighbors="many"), ValidationError, "'many'"),
    (dict(X=np.ones((20, 3)), n_select=2), DegenerateInputError, "all 20 rows of X are identical"),
    (dict(n_select=3, objective="facility_locaton"), UnknownNameError, "did you mean 'facility_location'"),
    (dict(n_select=3, optimizer="lazy"), UnknownNameError, "did you mean 'lazy_greedy'"),
    (dict(n_select=3, optimizer="lazy_gredy"), UnknownNameError, "did you mean 'lazy_greedy'"),
    (dict(n_select=3, method="randm"), UnknownNameError, "did you mean 'random'"),
    (dict(n_select=3, metric="cosine_sim"), UnknownNameError, "metric='cosine_sim'"),
    (dict(n_select=3, class_budget="equal"), ValidationError, "needs labels"),
    (dict(n_select=3, random_state=-1), ValidationError, "random_state must be >= 0; got -1"),
    (dict(n_select=3, random_state="seed"), ValidationError, "random_state must be None, an int or a numpy Generator; got 'seed'"),
    (dict(n_select=3, y=np.zeros((50, 2))), ValidationError, "y must be 1-D; got ndim=2"),
    (dict(n_select=3, y=np.r_[np.zeros(49), np.nan]), ValidationError, "NaN or inf labels"),
    (dict(n_select=3, device="gpu"), ValidationError, "device"),
    (dict(X=-np.eye(4), n_select=1, metric="precomputed"), ValidationError, "non-negative"),
    (dict(X=np.ones((3, 4)), n_select=1, metric="precomputed"), ValidationError, "square"),
    (dict(X=np.eye(4), n_select=1, metric="precomputed", method="k_center_greedy"), ValidationError, "needs embeddings"),
    (dict(n_select=3, method="stratified_random"), ValidationError, "stratified_random' needs labels"),
    (dict(n_select=3, n_clusters=0), ValidationError, r"n_clusters must be in \[1, inf\]; got 0"),
    (dict(n_select=3, batch_size=0), ValidationError, r"batch_size must be in \[1, inf\]; got 0"),
    (dict(n_select=3, backend="annoy"), UnknownNameError, "backend='annoy'"),
    (dict(n_select=3, y=np.arange(50) % 2, class_budget="equal", costs=np.ones(50), budget=3.0), ValidationError, "costs="),
    (dict(n_select=3, costs=np.ones(50)), ValidationError, "budget"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD)
def test_bad_input_raises_a_clear_error(kwargs, error, message):
    kwargs = dict(kwargs)
    X = kwargs.pop("X", np.random.default_rng(0).standard_normal((50, 4)))
    with pytest.raises(error, match=message) as info:
        select(X, **kwargs)
    assert isinstance(info.value, CoresetError)


def test_duplicate_rows_are_handled():
    """Duplicates are legal: the selection stays valid, no duplicate pick of one
    vector is ever worth anything twice, and weights still sum to N."""
    X = np.random.default_rng(0).standard_normal((200, 5)).astype(np.float32)
    X = np.vstack([X, X[:100]])  # 100 exact duplicates
    for nn in (None, 8):
        sel = select(X, n_select=20, n_neighbors=nn)
        vecs = {tuple(X[i]) for i in sel.indices}
        assert len(vecs) == 20  # no vector taken twice while distinct ones remain
        assert sel.weights.sum() == 300


def test_zero_row_under_cosine_is_named():
    X = np.random.default_rng(0).standard_normal((30, 4))
    X[7] = 0
    with pytest.raises(DegenerateInputError, match="row 7"):
        select(X, n_select=3)


def test_public_names():
    for name in coreset.__all__:
        assert getattr(coreset, name) is not None


def test_progress_callback_reports_each_stage_up_to_its_total(zipf):
    seen = {}

    def cb(stage, done, total):
        assert 0 <= done <= total
        assert done >= seen.get(stage, (0, 0))[0]  # never goes backwards
        seen[stage] = (done, total)

    select(zipf.X, n_select=150, n_neighbors=10, callback=cb)
    assert seen["optimize"] == (150, 150)
    assert seen["graph"] == (3000, 3000)
    seen.clear()
    select(zipf.X, n_select=150, y=zipf.y, class_budget="equal", n_neighbors=10, callback=cb)
    assert seen["optimize"] == (150, 150)


def test_an_explicit_gpu_request_is_never_silently_dropped(zipf):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the no-GPU case")
    from coreset.exceptions import BackendUnavailableError

    for nn in (None, 10):
        with pytest.raises(BackendUnavailableError, match="GPU"):
            select(zipf.X[:300], n_select=10, n_neighbors=nn, device="cuda")


def test_nonfinite_found_in_a_later_block_of_a_memmap(tmp_path):
    X = np.zeros((5000, 4000), np.float32)  # 80 MB: more than one validation block
    X[:, 0] = np.arange(5000)
    X[4321, 17] = np.nan
    np.save(tmp_path / "x.npy", X)
    with pytest.raises(ValidationError, match="row 4321, column 17"):
        select(np.load(tmp_path / "x.npy", mmap_mode="r"), n_select=2)


def test_precomputed_with_n_neighbors_equals_the_embedding_knn_path(zipf):
    X = zipf.X[:2500]
    a = select(dense_similarity(X), n_select=100, metric="precomputed", n_neighbors=16)
    b = select(X, n_select=100, n_neighbors=16)
    assert a.meta["graph"]["form"] == "precomputed-knn"
    # same graph up to float rounding of the similarities: near-identical picks and value
    assert len(set(a.indices.tolist()) & set(b.indices.tolist())) >= 95
    assert a.objective == pytest.approx(b.objective, rel=1e-4)


def test_exact_and_approximate_graphs_on_request(zipf):
    ex = select(zipf.X, n_select=100, n_neighbors=10, exact=True)
    ap = select(zipf.X, n_select=100, n_neighbors=10, exact=False, n_probe=2, n_clusters=30)
    assert ex.meta["graph"]["exact"] is True
    assert ap.meta["graph"]["exact"] is False and ap.meta["graph"]["n_probe"] == 2
    assert ap.meta["graph"]["n_clusters"] == 30
    # scored on the exact graph, the approximate graph's picks are close to the exact ones
    from coreset.similarity import knn_graph

    f = FacilityLocation.from_knn(*knn_graph(zipf.X, 10, exact=True))
    assert f.evaluate(ex.indices) == pytest.approx(ex.objective)
    assert f.evaluate(ap.indices) >= 0.97 * f.evaluate(ex.indices)
    with pytest.raises(ValidationError, match="exact"):
        select(zipf.X, n_select=10, exact="yes")
    with pytest.raises(ValidationError, match="n_probe"):
        select(zipf.X, n_select=10, n_probe=0)


@pytest.mark.parametrize("optimizer", ["naive_greedy", "lazy_greedy", "stochastic_greedy"])
@pytest.mark.parametrize("n_neighbors", [None, 12])
def test_torch_objective_path_matches_numba(zipf, optimizer, n_neighbors):
    """The torch (GPU) objective path, run on CPU torch here, picks exactly what
    the numba kernels pick."""
    X = zipf.X[:800]
    kw = dict(n_select=40, optimizer=optimizer, n_neighbors=n_neighbors, random_state=0)
    a = select(X, **kw)
    b = select(X, objective_device="cpu", **kw)
    if optimizer != "stochastic_greedy":
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.weights, b.weights)
        assert b.objective == pytest.approx(a.objective, rel=1e-9)
    else:  # same quality, different samplers
        assert b.objective >= 0.97 * a.objective
    assert b.meta["objective_device"] == "cpu"


def test_objective_device_errors(zipf):
    with pytest.raises(ValidationError, match="objective_device"):
        select(zipf.X, n_select=5, objective_device="auto")
    with pytest.raises(ValidationError, match="device"):
        select(zipf.X, n_select=5, objective_device="tpu")


@pytest.mark.gpu
def test_torch_objective_on_cuda_matches_numba(zipf):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    a = select(zipf.X, n_select=100, n_neighbors=16, optimizer="naive_greedy")
    b = select(zipf.X, n_select=100, n_neighbors=16, optimizer="naive_greedy", objective_device="cuda")
    np.testing.assert_array_equal(a.indices, b.indices)


def test_class_balanced_composes_with_any_selector(zipf):
    from coreset import ClassBalanced, KCenterSelector, RandomSelector

    X, y = zipf.X, zipf.y
    b = allocate_budget(np.bincount(y), 120, "equal", min_per_class=1)
    for inner in (RandomSelector(), KCenterSelector(), SubmodularSelector(similarity="dense")):
        sel = ClassBalanced(inner, policy="equal", min_per_class=1, n_select=120, random_state=0).fit(X, y).selection_
        np.testing.assert_array_equal(np.bincount(y[sel.indices], minlength=60), b)
        np.testing.assert_allclose(np.bincount(y[sel.indices], weights=sel.weights, minlength=60), np.bincount(y))
    # the size may come from the wrapped selector; with neither, a clear error
    a = ClassBalanced(SubmodularSelector(50), random_state=0).fit(X, y).selection_
    assert len(a) == 50
    with pytest.raises(ValidationError, match="give exactly one of n_select or fraction"):
        ClassBalanced(SubmodularSelector()).fit(X, y)
    with pytest.raises(ValidationError, match="needs labels y"):
        ClassBalanced(SubmodularSelector(), n_select=10).fit(X)
