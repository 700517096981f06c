"""Selectors: estimators with ``fit(X, y)`` -> ``selection_``, the wrappers
that compose them, class budgets, and the ``select`` function."""

from ._base import BaseSelector
from ._baselines import KCenterSelector, RandomSelector, StratifiedRandomSelector, k_center_greedy
from ._budget import allocate_budget
from ._ccs import CCSSelector
from ._class_balanced import ClassBalanced
from ._dedup import DedupSelector, Deduplicated
from ._greedi import GreeDi
from ._label_noise import LabelSuspects, find_label_suspects
from ._scores import EL2NSelector, ForgettingSelector, GraNdSelector, ScoreSelector, UncertaintySelector
from ._select import make_selector, select
from ._submodular import SubmodularSelector

__all__ = ["select", "make_selector", "BaseSelector", "SubmodularSelector", "RandomSelector",
           "StratifiedRandomSelector", "KCenterSelector", "ClassBalanced", "allocate_budget", "k_center_greedy",
           "DedupSelector", "Deduplicated", "GreeDi", "ScoreSelector", "EL2NSelector", "GraNdSelector",
           "ForgettingSelector", "UncertaintySelector", "CCSSelector", "find_label_suspects", "LabelSuspects"]
