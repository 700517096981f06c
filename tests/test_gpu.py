"""One ``device=`` knob for the kNN graph and the greedy gains, and the
half-precision kNN matmul. CPU parts run everywhere; ``gpu`` tests skip
cleanly without CUDA and never fall back to the CPU."""

import warnings

import numpy as np
import pytest

from coreset import SubmodularSelector, select
from coreset.data import make_zipf
from coreset.exceptions import BackendUnavailableError, ValidationError
from coreset.similarity import KNNGraph, Precomputed, TorchBackend, make_backend
from coreset.similarity._spec import AutoSimilarity, greedy_device, with_device

torch = pytest.importorskip("torch")
HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def X():
    return make_zipf(2500, 16, 25, random_state=0).X


# ---------------------------------------------------------------- CPU routing


@pytest.mark.skipif(HAS_CUDA, reason="CPU-only behaviour")
def test_auto_and_cpu_are_the_numba_path_on_a_cpu_machine(X):
    kw = dict(n_select=40, n_neighbors=12, random_state=0)
    a, b = select(X, **kw), select(X, device="cpu", **kw)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.meta["device"] == b.meta["device"] == "cpu" and a.meta["objective_device"] is None
    with pytest.raises(BackendUnavailableError, match="GPU"):
        select(X, device="cuda", **kw)
    with pytest.raises(BackendUnavailableError, match="GPU"):
        SubmodularSelector(10, device="cuda:0").fit(X)


@pytest.mark.parametrize("optimizer", ["naive_greedy", "lazy_greedy"])
@pytest.mark.parametrize("n_neighbors", [None, 12])
def test_torch_greedy_path_equals_numba_through_the_deprecated_alias(X, optimizer, n_neighbors):
    """The path device='cuda' takes (objective as torch tensors), here on CPU torch,
    picks exactly what the numba kernels pick."""
    kw = dict(n_select=30, optimizer=optimizer, n_neighbors=n_neighbors, random_state=0, device="cpu")
    a = select(X[:900], **kw)
    with pytest.warns(DeprecationWarning, match="objective_device"):
        b = select(X[:900], objective_device="cpu", **kw)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert b.objective == pytest.approx(a.objective, rel=1e-9)
    assert a.meta["objective_device"] is None and b.meta["objective_device"] == "cpu"


def test_greedy_follows_the_similarity_device():
    sim = KNNGraph(5, backend="torch", device="cpu").resolve(np.eye(8, dtype=np.float32))
    assert sim.compute_device == "cpu" and greedy_device(sim) is None
    assert greedy_device(Precomputed().resolve(None), "cpu") is None
    auto = AutoSimilarity(n_neighbors=5, device="cpu").resolve(np.eye(8, dtype=np.float32))
    assert auto.compute_device == "cpu"


def test_with_device_sets_or_refuses():
    assert with_device(KNNGraph(5), "cpu").device == "cpu"  # "auto" instance takes the knob
    k = KNNGraph(5, device="cpu")
    assert with_device(k, "auto") is k and with_device(k, "cpu") is k
    with pytest.raises(ValidationError, match="contradicts"):
        with_device(k, "cuda")
    assert with_device(AutoSimilarity(), "cpu").knn_params["device"] == "cpu"
    p = Precomputed()
    assert with_device(p, "cuda") is p  # no device of its own: the knob places the greedy only
    with pytest.raises(ValidationError, match="device"):
        with_device(k, "tpu")


def test_precision_is_refused_on_the_cpu_and_checked(X):
    with pytest.raises(ValidationError, match="precision"):
        select(X, n_select=5, precision="fp16", device="cpu")
    with pytest.raises(ValidationError, match="precision must be one of"):
        select(X, n_select=5, precision="fp8")
    with pytest.raises(ValidationError, match="precision"):
        TorchBackend("cpu", precision="bf16")
    with pytest.raises(BackendUnavailableError, match="torch backend"):
        make_backend("faiss", "cpu", precision="fp16")
    assert TorchBackend("cpu").precision == "fp32"


def test_torch_fp32_search_matches_brute_force():
    rng = np.random.default_rng(0)
    Q, B = rng.standard_normal((50, 8)).astype(np.float32), rng.standard_normal((200, 8)).astype(np.float32)
    s, i = TorchBackend("cpu", batch_size=7).search(Q, B, 5)
    full = Q.astype(np.float64) @ B.T.astype(np.float64)
    ref = np.argsort(-full, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(i, ref)
    np.testing.assert_allclose(s, np.take_along_axis(full, ref, 1), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------- on a GPU


@pytest.mark.gpu
@needs_cuda
def test_cuda_runs_graph_and_greedy_on_the_gpu_and_matches_cpu(X):
    kw = dict(n_select=60, n_neighbors=16, optimizer="naive_greedy", random_state=0, backend="torch")
    a = select(X, device="cpu", **kw)
    b = select(X, device="cuda", **kw)
    assert b.meta["device"].startswith("cuda") and str(b.meta["objective_device"]).startswith("cuda")
    assert a.meta["objective_device"] is None
    # CPU == GPU up to ties: same picks, or (after a tie) the same objective value
    if not np.array_equal(a.indices, b.indices):
        assert b.objective == pytest.approx(a.objective, rel=1e-5)
    auto = select(X, **kw)  # "auto" picks the GPU torch sees
    assert auto.meta["device"].startswith("cuda")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_knn_recall(precision):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20_000, 64)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    k = 16
    s32, i32 = TorchBackend("cuda").search(X[:2000], X, k)
    sh, ih = TorchBackend("cuda", precision=precision).search(X[:2000], X, k)
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(i32, ih)])
    assert recall >= (0.99 if precision == "fp16" else 0.95), recall
    # the returned scores are exact fp32 scores of the returned neighbours
    exact = np.einsum("nd,nkd->nk", X[:2000], X[ih])
    np.testing.assert_allclose(sh, exact, atol=1e-5)
    assert (np.diff(sh, axis=1) <= 1e-7).all()


@pytest.mark.gpu
@needs_cuda
def test_explicit_cuda_never_silently_runs_on_cpu(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        sel = SubmodularSelector(20, device="cuda", similarity=KNNGraph(8, backend="torch"), random_state=0).fit(X)
    assert sel.selection_.meta["device"].startswith("cuda")
