"""Long-tail (Zipf) datasets generated on the fly or from scikit-learn's bundled
data, and readers for embeddings on disk. See docs/datasets.md."""

from ._longtail import (
    DATASETS,
    ZIPF_HARD,
    Dataset,
    DatasetInfo,
    load_dataset,
    load_digits_lt,
    make_zipf,
    zipf_class_sizes,
)
from ._mnist1d import load_mnist1d_lt, make_mnist1d, mnist1d_templates
from ._noise import NOISE_MODELS, apply_noise, confusion_map
from ._fingerprint import fingerprint as input_fingerprint
from ._readers import read_embeddings, read_labels
from ._split import train_validation_split, validation_indices
from ._text import load_text_lt, make_topic_sentences

__all__ = [
    "Dataset", "DatasetInfo", "make_zipf", "load_digits_lt", "zipf_class_sizes", "ZIPF_HARD", "DATASETS",
    "load_dataset", "make_mnist1d", "mnist1d_templates", "load_mnist1d_lt", "make_topic_sentences",
    "load_text_lt", "read_embeddings", "read_labels", "input_fingerprint", "NOISE_MODELS", "apply_noise",
    "confusion_map", "train_validation_split", "validation_indices",
]
