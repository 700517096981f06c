"""``select``'s keyword arguments reach the part whose signature names them."""

import inspect

import numpy as np
import pytest

import coreset
from coreset.selectors._select import make_selector
from coreset.exceptions import UnknownNameError
from coreset.similarity import KNNGraph


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).standard_normal((120, 6)).astype(np.float32)


def _defaults(cls):
    return {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items() if k != "self"}


@pytest.mark.parametrize("knob", [k for k in _defaults(KNNGraph) if k != "n_neighbors"])
def test_every_knn_graph_knob_reaches_the_graph(X, knob):
    """Each of KNNGraph's keywords, given to select with a value other than its
    default where one is easy to make, ends up on the selector's similarity."""
    value = {"metric": "euclidean", "backend": "numpy", "device": "cpu", "exact": True, "n_probe": 3,
             "n_clusters": 4, "batch_size": 64, "gamma": 0.5, "precision": "fp32"}[knob]
    model = make_selector(n_select=10, n_neighbors=8, **{knob: value})
    assert getattr(model.similarity, knob) == value


def test_budget_knobs_reach_the_wrapper(X):
    model = make_selector(n_select=10, class_budget="tempered", alpha=0.25, min_per_class=2)
    assert (model.alpha, model.min_per_class) == (0.25, 2)


def test_an_unknown_keyword_is_refused_with_a_suggestion(X):
    with pytest.raises(UnknownNameError, match="n_neighbors"):
        coreset.select(X, n_select=10, n_neighbours=8)
