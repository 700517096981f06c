"""Batch augmentation on the training device, and the policy deciding which
samples of a batch get augmented.

Augmenters are ``nn.Module`` callables ``augment(x, y) -> (x, y)``: the batch
stays on its device with its dtype and shape; ``Mixup`` returns soft labels
``(B, num_classes)``. Each is seeded by ``random_state``: two augmenters with
the same seed produce the same sequence of batches (the global torch RNG is
left as it was).

* :class:`ImageAugment` (kornia): random crop with padding, horizontal flip,
  colour jitter (brightness/contrast; saturation/hue for 3 channels),
  cutout (``RandomErasing``), on ``(B, C, H, W)`` float images.
* :class:`GaussianNoise`: ``x + std * N(0, 1)`` for embedding inputs.
* :class:`SignalAugment`: 1-D signals circularly shifted by up to
  ``max_shift`` positions, plus Gaussian noise (MNIST-1D).
* :class:`Mixup` (Zhang et al. 2018): ``lam * x + (1 - lam) * x[perm]`` with
  one ``lam ~ Beta(alpha, alpha)`` per batch, labels mixed with the same ``lam``.

:class:`AugmentPolicy` applies one of them to ``mode="all"`` samples, to
``mode="coreset"`` samples only (those whose dataset index is in
``selected``: Liu & Mirzasoleiman, NeurIPS 2022, augmenting only a coreset
keeps most of the benefit of augmenting everything at a fraction of the
cost), or to none.
"""

from __future__ import annotations

import numpy as np

from .._registry import check_name
from .._validation import check_float, check_int
from ..exceptions import BackendUnavailableError, ValidationError
from ._hooks import require_torch

__all__ = ["ImageAugment", "GaussianNoise", "SignalAugment", "Mixup", "AugmentPolicy", "AUGMENT_MODES"]

AUGMENT_MODES = ("all", "coreset", "none")

_torch = require_torch()
_nn = _torch.nn


def _kornia():
    try:
        import kornia.augmentation as K
    except ImportError:
        raise BackendUnavailableError("image augmentation needs kornia: pip install 'kornia>=0.7' "
                                      "(or pip install 'coreset[augment]')") from None
    return K


class _Seeded(_nn.Module):
    """Runs each call under its own seed (random_state + call number) with the
    global RNG saved and restored; random_state=None draws from the global RNG."""

    def __init__(self, random_state=None):
        super().__init__()
        if random_state is not None:
            check_int(random_state, "random_state", low=0)
        self.random_state = random_state
        self._calls = 0

    def forward(self, x, y=None):
        if not _torch.is_tensor(x) or not x.is_floating_point():
            raise ValidationError(f"x must be a floating-point torch tensor; got {type(x).__name__} "
                                  f"{getattr(x, 'dtype', '')}")
        if self.random_state is None:
            return self._apply(x, y)
        devices = [x.device] if x.is_cuda else []
        with _torch.random.fork_rng(devices=devices):
            _torch.manual_seed(self.random_state + self._calls)
            self._calls += 1
            return self._apply(x, y)

    def _apply(self, x, y):
        raise NotImplementedError


class ImageAugment(_Seeded):
    """Crop (``crop_padding`` pixels of zero padding, then a random crop back to
    H x W; 0 = off), horizontal flip with probability ``flip``, colour jitter
    of strength ``jitter`` (0 = off) and cutout (``RandomErasing``) with
    probability ``erase``, on ``(B, C, H, W)`` float images."""

    def __init__(self, *, crop_padding=4, flip=0.5, jitter=0.2, erase=0.25, random_state=None):
        super().__init__(random_state)
        K = _kornia()
        self.crop_padding = check_int(crop_padding, "crop_padding", low=0)
        self.flip = check_float(flip, "flip", low=0.0, high=1.0)
        self.jitter = check_float(jitter, "jitter", low=0.0)
        self.erase = check_float(erase, "erase", low=0.0, high=1.0)
        self._K = K
        self._built_for = None
        self.ops = _nn.ModuleList()

    def _build(self, c, h, w):
        K = self._K
        ops = []
        if self.crop_padding:
            ops.append(K.RandomCrop((h, w), padding=self.crop_padding))
        if self.flip:
            ops.append(K.RandomHorizontalFlip(p=self.flip))
        if self.jitter:
            colour = dict(saturation=self.jitter, hue=min(0.5, self.jitter / 2)) if c == 3 else {}
            ops.append(K.ColorJiggle(brightness=self.jitter, contrast=self.jitter, p=1.0, **colour))
        if self.erase:
            ops.append(K.RandomErasing(p=self.erase))
        self.ops = _nn.ModuleList(ops)
        self._built_for = (c, h, w)

    def _apply(self, x, y):
        if x.ndim != 4:
            raise ValidationError(f"ImageAugment needs images (B, C, H, W); got shape {tuple(x.shape)}")
        if self._built_for != tuple(x.shape[1:]):
            self._build(*x.shape[1:])
        dtype = x.dtype
        out = x.float() if dtype not in (_torch.float32, _torch.float64) else x
        for op in self.ops:
            out = op(out)
        return out.to(dtype), y


class GaussianNoise(_Seeded):
    """``x + std * N(0, 1)`` (embeddings); labels unchanged."""

    def __init__(self, std=0.1, *, random_state=None):
        super().__init__(random_state)
        self.std = check_float(std, "std", low=0.0)

    def _apply(self, x, y):
        noise = _torch.randn(x.shape, dtype=x.dtype, device="cpu").to(x.device)  # same draws on any device
        return x + self.std * noise, y


class SignalAugment(_Seeded):
    """1-D signals ``(B, L)`` or ``(B, 1, L)``: each row circularly shifted by
    an integer drawn uniformly from ``[-max_shift, max_shift]``, then
    ``noise * N(0, 1)`` added (MNIST-1D's own nuisances: its signals are
    circularly shifted and noisy); labels unchanged."""

    def __init__(self, *, max_shift=3, noise=0.05, random_state=None):
        super().__init__(random_state)
        self.max_shift = check_int(max_shift, "max_shift", low=0)
        self.noise = check_float(noise, "noise", low=0.0)

    def _apply(self, x, y):
        if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[1] != 1):
            raise ValidationError(f"SignalAugment needs signals (B, L) or (B, 1, L); got shape {tuple(x.shape)}")
        length = x.shape[-1]
        shifts = _torch.randint(-self.max_shift, self.max_shift + 1, (x.shape[0],))  # drawn on the CPU
        cols = (_torch.arange(length)[None, :] - shifts[:, None]) % length
        flat = x.reshape(x.shape[0], length)
        out = _torch.gather(flat, 1, cols.to(x.device))
        if self.noise:
            out = out + self.noise * _torch.randn(out.shape, dtype=out.dtype, device="cpu").to(x.device)
        return out.reshape(x.shape), y


class Mixup(_Seeded):
    """Mixup: returns ``(lam * x + (1 - lam) * x[perm], lam * onehot(y) + (1 - lam) * onehot(y[perm]))``
    with one ``lam ~ Beta(alpha, alpha)`` per batch (``lam_`` keeps the last one).
    ``y`` may be class codes (B,) or soft labels (B, num_classes)."""

    def __init__(self, num_classes, *, alpha=0.2, random_state=None):
        super().__init__(random_state)
        self.num_classes = check_int(num_classes, "num_classes", low=2)
        self.alpha = check_float(alpha, "alpha", low=0.0, low_open=True)
        self.lam_ = None

    def soft(self, y, dtype):
        if y.ndim == 2:
            return y.to(dtype)
        return _torch.nn.functional.one_hot(y.long(), self.num_classes).to(dtype)

    def _apply(self, x, y):
        if y is None:
            raise ValidationError("Mixup needs the labels y")
        lam = float(np.random.default_rng(int(_torch.randint(0, 2**31 - 1, (1,)))).beta(self.alpha, self.alpha))
        perm = _torch.randperm(x.shape[0]).to(x.device)
        ys = self.soft(y, x.dtype if x.is_floating_point() else _torch.float32)
        self.lam_ = lam
        return lam * x + (1 - lam) * x[perm], lam * ys + (1 - lam) * ys[perm]


class AugmentPolicy:
    """Which samples of a batch get ``augment``: ``mode="all"``, ``"coreset"``
    (samples whose dataset index is in ``selected``: a Selection, an index file
    path or an index array) or ``"none"``.

    ``policy(x, y, batch_indices) -> (x, y)``: the chosen rows go through
    ``augment`` together, the others pass unchanged (with a label-mixing
    augmenter, their labels become one-hot so the batch has one label form).
    """

    def __init__(self, augment, mode="coreset", selected=None):
        self.mode = check_name("mode", mode, AUGMENT_MODES)
        if not callable(augment):
            raise ValidationError(f"augment must be callable as augment(x, y); got {type(augment).__name__}")
        self.augment = augment
        self._selected = None
        if mode == "coreset":
            if selected is None:
                raise ValidationError("mode='coreset' needs selected= (the coreset's indices); got None")
            from ._hooks import as_index_array

            self._selected = np.unique(as_index_array(selected)[0])
        elif selected is not None:
            raise ValidationError(f"selected= applies to mode='coreset'; got mode={mode!r}")

    def mask(self, batch_indices):
        """Boolean tensor: which rows of the batch are augmented."""
        idx = batch_indices.detach().cpu().numpy() if _torch.is_tensor(batch_indices) else np.asarray(batch_indices)
        idx = idx.astype(np.int64).reshape(-1)
        if self.mode == "all":
            m = np.ones(idx.size, bool)
        elif self.mode == "none":
            m = np.zeros(idx.size, bool)
        else:
            m = np.isin(idx, self._selected)
        return _torch.from_numpy(m)

    def __call__(self, x, y, batch_indices):
        m = self.mask(batch_indices)
        if m.numel() != x.shape[0]:
            raise ValidationError(f"batch_indices has {m.numel()} entries but the batch has {x.shape[0]} rows")
        m = m.to(x.device)
        if not bool(m.any()):
            return x, y
        if bool(m.all()):
            return self.augment(x, y)
        xa, ya = self.augment(x[m], y[m])
        x_out = x.clone()
        x_out[m] = xa.to(x.dtype)
        if ya.shape[1:] == y.shape[1:] and ya.dtype == y.dtype:
            y_out = y.clone()
        else:  # label-mixing augmenter: the rest become one-hot
            y_out = self.augment.soft(y, ya.dtype) if hasattr(self.augment, "soft") else None
            if y_out is None or y_out.shape[1:] != ya.shape[1:]:
                raise ValidationError("augment changed the labels' form and cannot express the others' labels the "
                                      "same way; give it a soft(y, dtype) method")
        y_out[m] = ya
        return x_out, y_out
