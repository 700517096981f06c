"""Long-tail (Zipf) datasets generated on the fly or from scikit-learn's bundled
data, and readers for embeddings on disk."""

from ._longtail import DATASETS, Dataset, load_dataset, load_digits_lt, make_zipf, zipf_class_sizes
from ._readers import input_fingerprint, read_embeddings, read_labels

__all__ = [
    "Dataset", "make_zipf", "load_digits_lt", "zipf_class_sizes", "DATASETS", "load_dataset",
    "read_embeddings", "read_labels", "input_fingerprint",
]
