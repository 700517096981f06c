"""Training on coresets: samplers, weighted subset training, adaptive
reselection, dynamic pruning, augmentation and transfer learning.

This is the only part of ``coreset`` that trains models; torch is imported
here (lazily: names load on first use), never by ``import coreset``.
"""

from __future__ import annotations

import importlib

# name -> private module that defines it. Each module adds its own lines.
_EXPORTS = {
    # training on a selection (_sampler.py, _dataset.py, _train.py)
    "CoresetSampler": "_sampler", "DistributedCoresetSampler": "_sampler", "normalize_weights": "_sampler",
    "WeightedSubset": "_dataset", "IndexedDataset": "_dataset",
    "train": "_train", "evaluate": "_train", "TrainResult": "_train", "EvalResult": "_train",
    # adaptive reselection (_adaptive.py), dynamic pruning (_pruning.py)
    "AdaptiveReselection": "_adaptive", "gradient_proxies": "_adaptive", "DynamicPruning": "_pruning",
    # per-epoch resampling within class quotas (_resample.py), prior-matched losses (_train.py)
    "ResampleSchedule": "_resample", "LogitAdjustedLoss": "_train",
    # augmentation (_augment.py), transfer learning (_transfer.py)
    "ImageAugment": "_augment", "GaussianNoise": "_augment", "Mixup": "_augment", "AugmentPolicy": "_augment",
    "SignalAugment": "_augment",
    "embed": "_transfer", "linear_probe": "_transfer", "fine_tune": "_transfer", "LinearProbe": "_transfer",
    "load_backbone": "_backbones", "BACKBONES": "_backbones", "TextBackbone": "_backbones",
    # scores from a preliminary model (_scoring.py)
    "compute_scores": "_scoring", "class_errors": "_scoring", "fit_probe": "_scoring",
    # fractions x methods x seeds comparison (_compare.py, _compare_methods.py)
    "compare": "_compare", "CompareResult": "_compare", "cell_metrics": "_compare", "class_groups": "_compare",
    "COMPARE_METHODS": "_compare_methods",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'coreset.pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
