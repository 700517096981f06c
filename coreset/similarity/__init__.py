"""kNN similarity graphs on FAISS / torch (GPU when present) and dense blocks."""

from ._backends import Backend, FaissBackend, TorchBackend, make_backend
from ._knn import EXACT_MAX_N, as_similarity, build_knn, dense_similarity, euclidean_gamma, knn_graph, knn_recall, nearest_among

__all__ = [
    "as_similarity", "knn_graph", "build_knn", "dense_similarity", "euclidean_gamma", "knn_recall", "nearest_among", "EXACT_MAX_N",
    "Backend", "FaissBackend", "TorchBackend", "make_backend",
]
