"""Preliminary models trained on the embeddings (linear probes, small MLPs)
and the per-example scores read from them (EL2N, GraNd, forgetting,
uncertainty; held-out class errors). They sit below ``selectors/``: the
score selectors and ``ClassBalanced(policy="error")`` use them, and the
training pipelines build on them. torch is imported on first use."""

__all__ = ["SCORES", "compute_scores", "class_errors", "fit_probe", "predict_proba"]


def __getattr__(name):  # lazy: importing the package does not import torch
    if name in __all__:
        from . import _scoring

        return getattr(_scoring, name)
    raise AttributeError(f"module 'coreset.probes' has no attribute {name!r}")
