"""Optional heavy dependencies (torch, faiss) load here, on first use, and the
``device`` argument is resolved once."""

from __future__ import annotations

import logging
import re

from .exceptions import BackendUnavailableError, ValidationError

__all__ = ["import_torch", "import_faiss", "faiss_num_gpus", "torch_cuda_available", "parse_device", "resolve_device",
           "PRECISIONS", "check_precision"]

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


def resolve_device(device) -> str:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; an explicit
    ``"cuda[:N]"`` without one is a :class:`BackendUnavailableError` (never a
    silent CPU run)."""
    device = parse_device(device)
    if device == "auto":
        return "cuda" if torch_cuda_available() else "cpu"
    if device.startswith("cuda") and not torch_cuda_available():
        raise BackendUnavailableError(f"device={device!r} asks for a GPU but torch sees none; use device='cpu'")
    return device


#: precisions of the kNN similarity matmul (accumulation is always fp32)
PRECISIONS = ("fp32", "fp16", "bf16")


def check_precision(precision, device: str | None = None) -> str:
    """Validate ``precision``; half precisions need a CUDA ``device`` (on the CPU
    they are slower than fp32 and would only lose recall)."""
    if precision not in PRECISIONS:
        raise ValidationError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}; got {precision!r}")
    if precision != "fp32" and device is not None and not device.startswith("cuda"):
        raise ValidationError(
            f"precision={precision!r} applies to the kNN matmul on a CUDA device; the device here is "
            f"{device!r}: use precision='fp32' (the default) on the CPU")
    return precision
