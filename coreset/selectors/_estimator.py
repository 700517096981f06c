"""scikit-learn style estimator around :func:`select`."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from ._select import select

__all__ = ["SubmodularSelector"]


class SubmodularSelector(BaseEstimator):
    """Facility-location subset selection as a scikit-learn estimator.

    ``__init__`` only stores parameters; ``fit(X, y=None)`` validates and
    selects. Fitted attributes: ``selection_`` (:class:`~coreset.Selection`),
    ``ranking_`` (indices in selection order), ``weights_``, ``gains_``,
    ``n_features_in_``. ``transform(X)`` returns the selected rows of ``X``.
    """

    def __init__(self, n_select=None, *, fraction=None, method="submodular", objective="facility_location",
                 optimizer="lazy_greedy", metric="cosine", n_neighbors="auto", backend="auto", device="auto",
                 class_budget=None, min_per_class=0, alpha=0.5, epsilon=0.01, random_state=None,
                 batch_size=None, exact=None, n_probe=8, n_clusters=None, objective_device=None, verbose=False):
        self.n_select = n_select
        self.fraction = fraction
        self.method = method
        self.objective = objective
        self.optimizer = optimizer
        self.metric = metric
        self.n_neighbors = n_neighbors
        self.backend = backend
        self.device = device
        self.class_budget = class_budget
        self.min_per_class = min_per_class
        self.alpha = alpha
        self.epsilon = epsilon
        self.random_state = random_state
        self.batch_size = batch_size
        self.exact = exact
        self.n_probe = n_probe
        self.n_clusters = n_clusters
        self.objective_device = objective_device
        self.verbose = verbose

    def fit(self, X, y=None):
        params = self.get_params()
        params.pop("verbose")
        self.selection_ = select(X, y=y, **params)
        self.ranking_ = self.selection_.indices
        self.weights_ = self.selection_.weights
        self.gains_ = self.selection_.gains
        self.n_features_in_ = int(np.shape(X)[1])
        return self

    def transform(self, X):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "ranking_")
        return np.asarray(X)[self.ranking_]

    def fit_transform(self, X, y=None):
        return self.fit(X, y).transform(X)
