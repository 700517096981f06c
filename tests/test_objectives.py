import numpy as np
import pytest

from coreset.exceptions import ValidationError
from coreset.objectives import FacilityLocation, Objective, TorchFacilityLocation
from coreset.optimizers import NaiveGreedy, StochasticGreedy
from coreset.similarity import dense_similarity, knn_graph

torch = pytest.importorskip("torch")


def _X(n=300, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 6)).astype(np.float32)


def test_value_gains_update_hand_computed():
    S = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.1, 0.0, 1.0]])
    f = FacilityLocation(S)
    assert isinstance(f, Objective)
    np.testing.assert_allclose(f.gains([0, 1, 2]), [1.5, 1.7, 1.1])
    f.update(1)
    assert f.value == pytest.approx(1.7)
    np.testing.assert_allclose(f.gains([0, 2]), [0.5, 0.8])
    assert f.assign.tolist() == [1, 1, 1]
    assert f.evaluate([1, 2]) == pytest.approx(2.5)


def test_from_knn_transposes_rows_to_candidates():
    idx = np.array([[0, 1], [1, 2], [2, 0]])
    sims = np.array([[1.0, 0.4], [1.0, 0.3], [1.0, 0.9]], np.float32)
    f = FacilityLocation.from_knn(idx, sims)
    # candidate 0 covers point 0 (1.0) and point 2 (0.9); candidate 1 covers 0 (.4) and 1 (1)
    np.testing.assert_allclose(f.gains([0, 1, 2]), [1.9, 1.4, 1.3], rtol=1e-6)


@pytest.mark.parametrize("bad, message", [
    (np.full((2, 2), np.nan), "must be finite"),
    (-np.eye(3), "non-negative for facility location; found minimum -1"),
    (np.ones((2, 3)), r"square \(N x N\); got shape \(2, 3\)"),
    (np.array([["a", "b"], ["c", "d"]]), "numeric"),
])
def test_rejects_bad_similarities(bad, message):
    with pytest.raises(ValidationError, match=message):
        FacilityLocation(bad)


@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_torch_objective_matches_numba_on_cpu(form):
    X = _X()
    if form == "dense":
        S = dense_similarity(X.astype(np.float64))
        make = lambda: FacilityLocation(S)  # noqa: E731
    else:
        idx, sims = knn_graph(X, 12)
        make = lambda: FacilityLocation.from_knn(idx, sims)  # noqa: E731
    a = NaiveGreedy().maximize(make(), 40)
    t = TorchFacilityLocation(make(), device="cpu")
    b = NaiveGreedy().maximize(t, 40)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-9)
    ref = make()
    for j in a[0]:
        ref.update(j)
    np.testing.assert_array_equal(t.assign.numpy(), ref.assign)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_torch_objective_on_cuda_matches_cpu():
    X = _X(2000)
    idx, sims = knn_graph(X, 16)
    base = FacilityLocation.from_knn(idx, sims)
    a = StochasticGreedy().maximize(TorchFacilityLocation(base, "cpu"), 100, rng=np.random.default_rng(0))
    b = StochasticGreedy().maximize(TorchFacilityLocation(base, "cuda"), 100, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a[0], b[0])


def test_tied_points_stay_with_the_earlier_pick_and_unreached_points_with_none():
    # rows are candidates; point 2 is equally similar (0.5) to picks 0 and 1, point 3 to none
    S = np.array([[1.0, 0.0, 0.5, 0.0], [0.0, 1.0, 0.5, 0.0], [0.0, 0.0, 0.6, 0.0], [0.0, 0.0, 0.0, 0.1]])
    f = FacilityLocation(S)
    idx, _ = NaiveGreedy().maximize(f, 2)
    assert idx.tolist() == [0, 1]
    assert f.assign.tolist() == [0, 1, 0, -1]
    from coreset import select

    sel = select(S, n_select=2, metric="precomputed")
    assert sel.weights.tolist() == [3.0, 1.0]  # point 3 (no similarity to any pick) goes to the first pick


@pytest.mark.parametrize("name", ["FacilityLocation", "GraphCut", "LogDeterminant"])
def test_torch_objective_takes_its_bound_objective_only(name):
    """The ``_torch`` modules never import their objective's module (no import
    circle, tests/test_layering.py): they wrap a bound objective, and refuse
    anything else by name."""
    import coreset.objectives as objectives

    S = dense_similarity(_X()[:30].astype(np.float64))
    cls, tcls = getattr(objectives, name), getattr(objectives, "Torch" + name)
    t = cls(S).to_torch("cpu")
    assert isinstance(t, tcls) and t.n == 30
    with pytest.raises(ValidationError, match=f"similarity must be a {name}.*got ndarray"):
        tcls(S, "cpu")
    other = objectives.FacilityLocation(S) if name != "FacilityLocation" else objectives.GraphCut(S)
    with pytest.raises(ValidationError, match=f"similarity must be a {name}"):
        tcls(other, "cpu")
