"""``coreset report``: a self-contained HTML page of a selection (the map of
the embeddings with the picks, class counts, the gain curve and its knee,
per-class coverage, duplicates and suspects, thumbnails or sentences).

``import coreset.report`` stays light: plotly and scikit-learn load when a
report is built. See docs/report.md.
"""

from __future__ import annotations

from ._build import Report, build_report
from ._knee import knee, knee_of_gains

__all__ = ["Report", "build_report", "knee", "knee_of_gains"]
