"""User-facing selection: ``select``, the estimator, class budgets, baselines."""

from ._baselines import k_center_greedy
from ._budget import allocate_budget
from ._estimator import SubmodularSelector
from ._select import DEFAULT_N_NEIGHBORS, DENSE_AUTO_MAX, select

__all__ = ["select", "SubmodularSelector", "allocate_budget", "k_center_greedy", "DENSE_AUTO_MAX", "DEFAULT_N_NEIGHBORS"]
