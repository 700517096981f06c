"""Similarity: configured objects (``KNNGraph``, ``DenseSimilarity``,
``AutoSimilarity``, ``Precomputed``) over kNN graphs on FAISS / torch (GPU
when present) and dense blocks."""

from ._backends import Backend, FaissBackend, TorchBackend, make_backend
from ._knn import EXACT_MAX_N, as_similarity, build_knn, dense_similarity, euclidean_gamma, knn_graph, knn_recall, nearest_among
from ._spec import (
    DEFAULT_N_NEIGHBORS,
    DENSE_AUTO_MAX,
    AutoSimilarity,
    DenseSimilarity,
    KNNGraph,
    Precomputed,
    Similarity,
    make_similarity,
)

__all__ = [
    "Similarity", "KNNGraph", "DenseSimilarity", "AutoSimilarity", "Precomputed", "make_similarity",
    "DENSE_AUTO_MAX", "DEFAULT_N_NEIGHBORS",
    "as_similarity", "knn_graph", "build_knn", "dense_similarity", "euclidean_gamma", "knn_recall", "nearest_among", "EXACT_MAX_N",
    "Backend", "FaissBackend", "TorchBackend", "make_backend",
]
