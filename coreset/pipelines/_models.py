"""Small reference models for ``compare`` (and anyone training on flat
feature rows): ``model(n_features, n_classes) -> nn.Module`` taking
``(batch, n_features)`` float rows and returning ``(batch, n_classes)`` logits.

* ``linear``: one linear layer.
* ``mlp``: ``d -> 128 -> C`` with a ReLU.
* ``cnn2d``: a small image CNN for square images stored as ``d = side * side``
  features (8 x 8 digits: 64): the rows are reshaped to ``(1, side, side)``,
  3x3 convolution to 32 channels, 3x3 stride-2 convolution to 64, ReLU after
  each, then a linear layer (``benchmarks/bench_training.py``'s ``cnn2d``).
* ``cnn1d``: the MNIST-1D paper's ConvBase for signals stored as ``d``
  features (MNIST-1D: 40): reshaped to ``(1, d)``, three stride-2
  convolutions (kernel 5, 3, 3, padding 1) of 64 channels with ReLU, then a
  linear layer (``bench_training.py``'s ``cnn``).
"""

from __future__ import annotations

from .._validation import check_int
from ..exceptions import ValidationError
from ._hooks import require_torch

__all__ = ["MODELS", "make_model", "linear", "mlp", "cnn2d", "cnn1d"]

_torch = require_torch()
_nn = _torch.nn


def _dims(n_features, n_classes):
    return check_int(n_features, "n_features", low=1), check_int(n_classes, "n_classes", low=1)


def linear(n_features, n_classes):
    d, c = _dims(n_features, n_classes)
    return _nn.Linear(d, c)


def mlp(n_features, n_classes, hidden=128):
    d, c = _dims(n_features, n_classes)
    return _nn.Sequential(_nn.Linear(d, hidden), _nn.ReLU(), _nn.Linear(hidden, c))


def image_side(n_features) -> int:
    """The side of the square image ``n_features`` pixels hold; refused when it is not a square."""
    d = check_int(n_features, "n_features", low=1)
    side = int(round(d ** 0.5))
    if side * side != d:
        raise ValidationError(f"model 'cnn2d' needs square single-channel images: n_features must be a perfect "
                              f"square (side * side, e.g. 64 for 8 x 8); got {d}")
    return side


def cnn2d(n_features, n_classes):
    d, c = _dims(n_features, n_classes)
    side = image_side(d)
    half = (side + 1) // 2  # the stride-2 convolution's output side
    return _nn.Sequential(_nn.Unflatten(1, (1, side, side)),
                          _nn.Conv2d(1, 32, 3, padding=1), _nn.ReLU(),
                          _nn.Conv2d(32, 64, 3, stride=2, padding=1), _nn.ReLU(),
                          _nn.Flatten(), _nn.Linear(64 * half * half, c))


def cnn1d(n_features, n_classes, channels=64):
    d, c = _dims(n_features, n_classes)
    length = d
    for k in (5, 3, 3):  # stride 2, padding 1
        length = (length + 2 - k) // 2 + 1
    if length < 1:
        raise ValidationError(f"model 'cnn1d' needs signals of at least 3 features (three stride-2 convolutions); "
                              f"got n_features={d}")
    return _nn.Sequential(_nn.Unflatten(1, (1, d)),
                          _nn.Conv1d(1, channels, 5, stride=2, padding=1), _nn.ReLU(),
                          _nn.Conv1d(channels, channels, 3, stride=2, padding=1), _nn.ReLU(),
                          _nn.Conv1d(channels, channels, 3, stride=2, padding=1), _nn.ReLU(),
                          _nn.Flatten(), _nn.Linear(channels * length, c))


#: model names ``compare`` accepts -> factory(n_features, n_classes)
MODELS = {"linear": linear, "mlp": mlp, "cnn2d": cnn2d, "cnn1d": cnn1d}


def make_model(name, n_features, n_classes):
    """``MODELS[name](n_features, n_classes)`` (did-you-mean on an unknown name)."""
    from .._registry import check_name

    return MODELS[check_name("model", name, tuple(MODELS))](n_features, n_classes)
