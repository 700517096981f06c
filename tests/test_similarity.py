import numpy as np
import pytest

from coreset.exceptions import BackendUnavailableError, DegenerateInputError, UnknownNameError, ValidationError
from coreset.similarity import dense_similarity, euclidean_gamma, knn_graph, knn_recall, make_backend

torch = pytest.importorskip("torch")
faiss = pytest.importorskip("faiss")


def _blobs(n=600, d=16, seed=0):
    from coreset.data import make_zipf

    return make_zipf(n, d, n_classes=20, random_state=seed).X


def brute_force_knn(S, k):
    """Oracle: top-k of a dense similarity, ties to the lower index."""
    order = np.lexsort((np.broadcast_to(np.arange(S.shape[1]), S.shape), -S), axis=1)
    return order[:, :k]


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "inner_product"])
def test_exact_knn_matches_brute_force_on_dense(metric):
    X = _blobs()
    S = dense_similarity(X, metric)
    idx, sims = knn_graph(X, 12, metric=metric, backend="faiss")
    assert idx.dtype == np.int64 and sims.dtype == np.float32 and idx.shape == (600, 12)
    # the similarity values are the dense ones at the returned neighbours
    np.testing.assert_allclose(sims, np.take_along_axis(S, idx, 1), atol=2e-5 * max(1.0, S.max()))
    # and they are the k best (compare the k-th value: robust to ties)
    best = np.sort(np.where(np.eye(600, dtype=bool), np.inf, S), axis=1)[:, ::-1]
    kth = best[:, 11] if metric != "inner_product" else None
    if kth is not None:
        np.testing.assert_allclose(sims[:, 11], kth, atol=2e-5)


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "inner_product"])
def test_every_row_starts_with_the_point_itself(metric):
    X = _blobs(300)
    X[10] = X[11] = X[12]  # duplicates: ties must not hide the point itself
    idx, sims = knn_graph(X, 5, metric=metric)
    np.testing.assert_array_equal(idx[:, 0], np.arange(300))
    assert (sims >= 0).all()
    assert np.all(np.diff(sims[:, 1:], axis=1) <= 1e-6)


def test_faiss_and_torch_return_the_same_neighbours_up_to_ties():
    X = _blobs(800, 24, seed=1)
    a_idx, a_s = knn_graph(X, 10, backend="faiss")
    b_idx, b_s = knn_graph(X, 10, backend="torch")
    np.testing.assert_allclose(a_s, b_s, atol=1e-5)
    differ = (a_idx != b_idx).any(1)
    # rows whose neighbour lists differ may only differ among equal similarities
    for r in np.flatnonzero(differ):
        sa = dict(zip(a_idx[r], a_s[r]))
        sb = dict(zip(b_idx[r], b_s[r]))
        for j in set(sa) ^ set(sb):
            s = sa.get(j, sb.get(j))
            assert abs(s - a_s[r, -1]) < 1e-5  # only at the k-th boundary
    assert differ.mean() < 0.01


def test_approximate_graph_recall_is_measured_and_high():
    X = _blobs(30_000, 32, seed=2)
    idx, sims = knn_graph(X, 16, exact=False, random_state=0)
    recall = knn_recall(X, idx, n_queries=500)
    assert recall >= 0.90, recall  # measured 0.923 (n_probe=2 + two-hop rounds; the first search: 0.888)
    more, _ = knn_graph(X, 16, exact=False, n_probe=16, random_state=0)
    assert knn_recall(X, more, n_queries=500) >= max(0.95, recall)  # measured 0.998
    np.testing.assert_array_equal(idx[:, 0], np.arange(X.shape[0]))
    exact_idx, _ = knn_graph(X[:2000], 16, exact=True)
    assert knn_recall(X[:2000], exact_idx, n_queries=300) == 1.0


def test_euclidean_kernel_semantics():
    X = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    gamma = 0.1
    S = dense_similarity(X, "euclidean", gamma=gamma)
    np.testing.assert_allclose(S[0, 1], np.exp(-0.1 * 25))
    np.testing.assert_allclose(S[0, 2], np.exp(-0.1 * 1))
    np.testing.assert_allclose(np.diag(S), 1.0)
    # the median heuristic: 1 / median of pairwise squared distances
    d2 = sorted([25.0, 1.0, 18.0])
    assert euclidean_gamma(X, n_pairs=20_000) == pytest.approx(1 / d2[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pair_distances_are_numpys_bits(dtype):
    """The compiled pair distances behind euclidean_gamma equal numpy's
    ``((X[a] - X[b]) ** 2).sum(1)`` bit for bit: short rows, numpy's 8-lane
    blocks, the halving above 128, strided input, and overflow to inf."""
    from coreset.similarity._pairs import pair_sq_dists

    rng = np.random.default_rng(7)
    for d in (1, 2, 7, 8, 9, 15, 16, 17, 64, 127, 128, 129, 200, 300, 777):
        X = (rng.standard_normal((40, d)) * 10.0 ** rng.integers(-6, 6, size=(40, 1))).astype(dtype)
        a, b = rng.integers(0, 40, 500), rng.integers(0, 40, 500)
        ref = ((X[a].astype(np.float64) - X[b]) ** 2).sum(1)
        np.testing.assert_array_equal(pair_sq_dists(X, a, b), ref)
        Xs = np.asfortranarray(X)[:, ::-1]  # neither C- nor F-contiguous rows
        ref = ((Xs[a].astype(np.float64) - Xs[b]) ** 2).sum(1)
        np.testing.assert_array_equal(pair_sq_dists(Xs, a, b), ref)
    if dtype == np.float64:
        big = np.array([[1e200, 0.0], [-1e200, 0.0]])
        assert np.isinf(pair_sq_dists(big, np.array([0]), np.array([1]))[0])


def test_euclidean_gamma_is_the_median_of_numpys_pair_distances():
    X = _blobs(300).astype(np.float32)
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 300, 5000), rng.integers(0, 300, 5000)
    keep = a != b
    d2 = ((X[a[keep]].astype(np.float64) - X[b[keep]]) ** 2).sum(1)
    assert euclidean_gamma(X, n_pairs=5000, seed=3) == 1.0 / float(np.median(d2[d2 > 0]))


def test_cosine_is_clipped_at_zero():
    X = np.array([[1.0, 0.0], [-1.0, 0.1], [0.0, 1.0]])
    S = dense_similarity(X, "cosine")
    assert S[0, 1] == 0.0 and S[0, 0] == pytest.approx(1.0)


def test_dtype_preserved_in_dense():
    X = _blobs(50).astype(np.float64)
    assert dense_similarity(X).dtype == np.float64
    assert dense_similarity(X.astype(np.float32)).dtype == np.float32


def test_errors():
    X = _blobs(100)
    with pytest.raises(ValidationError, match="n_neighbors"):
        knn_graph(X, 101)
    with pytest.raises(UnknownNameError, match="did you mean 'cosine'"):
        knn_graph(X, 5, metric="cosin")
    with pytest.raises(UnknownNameError, match="backend"):
        knn_graph(X, 5, backend="annoy")
    Z = X.copy()
    Z[3] = 0
    with pytest.raises(DegenerateInputError, match="row 3"):
        knn_graph(Z, 5)
    with pytest.raises(ValidationError, match="device"):
        make_backend("torch", "gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(BackendUnavailableError, match="GPU"):
        make_backend("torch", "cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_torch_cuda_matches_cpu():
    X = _blobs(2000, 32)
    a_idx, a_s = knn_graph(X, 10, backend="torch", device="cuda")
    b_idx, b_s = knn_graph(X, 10, backend="torch", device="cpu")
    np.testing.assert_allclose(a_s, b_s, atol=1e-4)
    assert (a_idx == b_idx).mean() > 0.99


@pytest.mark.gpu
@pytest.mark.skipif(not (hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0), reason="needs faiss-gpu and a GPU")
def test_faiss_gpu_matches_cpu():
    X = _blobs(2000, 32)
    a_idx, a_s = knn_graph(X, 10, backend="faiss", device="cuda")
    b_idx, b_s = knn_graph(X, 10, backend="faiss", device="cpu")
    np.testing.assert_allclose(a_s, b_s, atol=1e-4)


@pytest.mark.parametrize("form", ["dense", "sparse32", "sparse64"])
def test_precomputed_knn_is_the_top_k_of_each_row(form):
    import scipy.sparse as sp

    X = _blobs(300)
    S = dense_similarity(X, "cosine")
    M = S
    if form != "dense":
        M = sp.csr_matrix(np.where(S > 0.3, S, 0))  # a sparse matrix with some short rows
        dt = np.int32 if form == "sparse32" else np.int64
        M.indices, M.indptr = M.indices.astype(dt), M.indptr.astype(dt)
    idx, sims = knn_graph(M, 10, metric="precomputed")
    dense = M.toarray() if sp.issparse(M) else M
    np.testing.assert_array_equal(idx[:, 0], np.arange(300))
    np.testing.assert_allclose(sims, np.take_along_axis(dense, idx, 1), atol=1e-6)
    kth = -np.sort(-dense, axis=1)[:, 9]
    np.testing.assert_allclose(sims[:, 9], kth, atol=1e-6)
    # embeddings and their precomputed cosine give the same neighbourhoods (up to ties)
    if form == "dense":
        e_idx, e_sims = knn_graph(X, 10)
        np.testing.assert_allclose(sims, e_sims, atol=1e-5)


def test_precomputed_knn_rejects_bad_matrices():
    with pytest.raises(ValidationError, match="square"):
        knn_graph(np.ones((3, 4)), 2, metric="precomputed")
    with pytest.raises(ValidationError, match="non-negative"):
        knn_graph(-np.eye(3), 2, metric="precomputed")
