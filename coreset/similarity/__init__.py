"""Similarity: configured objects (``KNNGraph``, ``DenseSimilarity``,
``AutoSimilarity``, ``Precomputed``) over kNN graphs on FAISS / torch (GPU
when present) and dense blocks."""

from ._backends import Backend, FaissBackend, TorchBackend, make_backend
from ._knn import EXACT_MAX_N, build_knn, knn_graph, knn_recall, nearest_among
from ._blas import one_blas_thread, pmap, small_product_guard
from ._dense import dense_block, dense_similarity, prepare_dense
from ._kmeans import lloyd, sample_rows, top_centroids
from ._metrics import as_similarity, euclidean_gamma, unit_rows
from ._spec import (
    DEFAULT_N_NEIGHBORS,
    DENSE_AUTO_MAX,
    AutoSimilarity,
    DenseSimilarity,
    KNNGraph,
    Precomputed,
    Similarity,
    greedy_device,
    make_similarity,
    with_device,
)

__all__ = [
    "Similarity", "KNNGraph", "DenseSimilarity", "AutoSimilarity", "Precomputed", "make_similarity",
    "DENSE_AUTO_MAX", "DEFAULT_N_NEIGHBORS",
    "as_similarity", "knn_graph", "build_knn", "dense_similarity", "euclidean_gamma", "knn_recall", "nearest_among", "EXACT_MAX_N",
    "Backend", "FaissBackend", "TorchBackend", "make_backend",
    # the engine's parts other packages of the library build on (not the user-facing API)
    "unit_rows", "one_blas_thread", "small_product_guard", "pmap", "dense_block", "prepare_dense", "lloyd",
    "sample_rows", "top_centroids", "greedy_device", "with_device",
]
