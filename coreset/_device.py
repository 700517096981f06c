"""Optional heavy dependencies (torch, faiss) load here, on first use, and the
``device`` argument is resolved once."""

from __future__ import annotations

import logging
import re

from .exceptions import BackendUnavailableError, ValidationError

__all__ = ["import_torch", "import_faiss", "faiss_num_gpus", "torch_cuda_available", "parse_device"]

log = logging.getLogger(__name__)

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def import_torch():
    try:
        import torch
    except ImportError:
        raise BackendUnavailableError(
            "torch is not installed; on a CPU machine run `pip install torch==2.13.0` "
            "(the CPU build), on a GPU machine the CUDA build for your driver"
        ) from None
    return torch


def import_faiss():
    try:
        import faiss
    except ImportError:
        raise BackendUnavailableError(
            "faiss is not installed; run `pip install faiss-cpu` (or `pip install faiss-gpu` on a "
            "CUDA machine; never both in one environment), or pass backend='torch'"
        ) from None
    return faiss


def faiss_available() -> bool:
    try:
        import_faiss()
    except BackendUnavailableError:
        return False
    return True


def faiss_num_gpus() -> int:
    faiss = import_faiss()
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def nvidia_gpu_present() -> bool:
    """Cheap check (no torch import) for an NVIDIA GPU driven by this machine."""
    import os
    import sys

    if "torch" in sys.modules:
        return bool(sys.modules["torch"].cuda.is_available())
    gpus = "/proc/driver/nvidia/gpus"
    return os.path.isdir(gpus) and bool(os.listdir(gpus))


def torch_cuda_available() -> bool:
    if not nvidia_gpu_present():  # spares the ~1.5 s torch import on CPU machines
        return False
    try:
        torch = import_torch()
    except BackendUnavailableError:
        return False
    return bool(torch.cuda.is_available())


def parse_device(device) -> str:
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        raise ValidationError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
    return device
