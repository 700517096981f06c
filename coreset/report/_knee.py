"""Moved to :mod:`coreset._knee` (``Selection.knee`` uses it, and the
selection sits below ``report/``); re-exported here for the report."""

from .._knee import STRAIGHT, knee, knee_of_gains

__all__ = ["knee", "knee_of_gains", "STRAIGHT"]
