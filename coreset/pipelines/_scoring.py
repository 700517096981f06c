"""Moved to :mod:`coreset.probes._scoring` (probe scoring sits below
``selectors/``, which use it); re-exported here for compatibility."""

from ..probes._scoring import (  # noqa: F401
    SCORES,
    Standardize,
    class_errors,
    compute_scores,
    fit_probe,
    one_cpu_thread,
    predict_proba,
    torch_device,
)

__all__ = ["SCORES", "compute_scores", "class_errors", "fit_probe", "predict_proba", "torch_device", "one_cpu_thread"]
