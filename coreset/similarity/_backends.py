"""Exact maximum-inner-product search backends (strategy classes).

Each backend answers ``search(Q, B, k)``: for every row of ``Q`` the ``k`` rows
of ``B`` with the largest inner product, as (similarities float32, indices
int64), best first. Everything else (metrics, partitioning, self-inclusion) is
built on top of this one primitive in ``_knn.py``.
"""

from __future__ import annotations

import logging

import numpy as np

from .._device import (
    faiss_available,
    faiss_num_gpus,
    import_faiss,
    import_torch,
    parse_device,
    torch_cuda_available,
)
from .._registry import BACKENDS, check_name
from ..exceptions import BackendUnavailableError

__all__ = ["Backend", "FaissBackend", "TorchBackend", "make_backend"]

log = logging.getLogger(__name__)


class Backend:
    name: str = ""
    device: str = "cpu"

    def search(self, Q: np.ndarray, B: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self.device!r})"


class FaissBackend(Backend):
    """``faiss.knn`` (BLAS + heap) on CPU, ``faiss.knn_gpu`` on a GPU."""

    name = "faiss"

    def __init__(self, device: str = "auto"):
        self._faiss = import_faiss()
        n_gpus = faiss_num_gpus()
        if device == "auto":
            device = "cuda" if n_gpus > 0 else "cpu"
            if n_gpus == 0 and torch_cuda_available():
                log.warning(
                    "a CUDA GPU is present but this faiss build has none: searching on the CPU. "
                    "Install faiss-gpu (instead of faiss-cpu) or pass backend='torch' to use the GPU."
                )
        elif device.startswith("cuda") and n_gpus == 0:
            raise BackendUnavailableError(
                f"device={device!r} asks for a GPU but faiss sees none "
                "(faiss-cpu installed, or no CUDA device); use device='cpu' or backend='torch'"
            )
        self.device = device
        self._res = None
        if device.startswith("cuda"):
            self._gpu_id = int(device.split(":")[1]) if ":" in device else 0
            self._res = self._faiss.StandardGpuResources()

    def search(self, Q, B, k):
        """In blocks of queries of about ``SEARCH_WORK`` multiply-adds each
        (at least 20 rows, FAISS's BLAS threshold; a GPU takes 1024 times more
        a call): one FAISS call returns to Python within a fraction of a
        second, where Ctrl-C raises (``coreset._pace``). The blocks depend
        only on the shapes; each query's result is its own."""
        from .._pace import SEARCH_WORK, row_blocks

        faiss = self._faiss
        Q = np.ascontiguousarray(Q, dtype=np.float32)
        B = np.ascontiguousarray(B, dtype=np.float32)
        n = Q.shape[0]
        work = SEARCH_WORK * (1024 if self._res is not None else 1)
        D = np.empty((n, k), np.float32)
        I = np.empty((n, k), np.int64)
        for start, stop in row_blocks(n, B.shape[0] * max(1, B.shape[1]), at_least=20, work=work):
            q = Q[start:stop]
            if self._res is not None:
                d, i = faiss.knn_gpu(self._res, q, B, k, metric=faiss.METRIC_INNER_PRODUCT, device=self._gpu_id)
            else:
                d, i = faiss.knn(q, B, k, metric=faiss.METRIC_INNER_PRODUCT)
            D[start:stop], I[start:stop] = d, i
        return D, I


class TorchBackend(Backend):
    """Blocked matmul + ``topk`` in torch, on CUDA when there is one.

    ``precision="fp16"`` / ``"bf16"`` (CUDA only) runs the similarity matmul on
    half-precision copies of the vectors with fp32 accumulation (reduced-
    precision split-K reductions are switched off for the call), takes the
    top ``k`` of that, and re-scores the ``k`` winners in fp32: the returned
    similarities are exact, only the neighbour set can differ (recall).
    """

    name = "torch"

    def __init__(self, device: str = "auto", batch_size: int | None = None, precision: str = "fp32"):
        from .._device import check_precision

        self._torch = torch = import_torch()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"device={device!r} asks for a GPU but torch sees none; use device='cpu'"
            )
        self.device = device
        self.batch_size = batch_size
        self.precision = check_precision(precision, device)

    def __repr__(self) -> str:
        return f"TorchBackend(device={self.device!r}, precision={self.precision!r})"

    def search(self, Q, B, k):
        torch = self._torch
        dev = torch.device(self.device)
        Bt = torch.as_tensor(np.ascontiguousarray(B, dtype=np.float32), device=dev)
        half = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision)
        Bh = Bt.to(half) if half is not None else Bt
        n = Q.shape[0]
        # keep one (batch x |B|) block of similarities in memory: ~256 MB of float32; on the CPU
        # also about SEARCH_WORK multiply-adds a block, so that Ctrl-C raises between blocks (coreset._pace)
        bs = self.batch_size or max(1, min(n, (64 * 2**20) // max(1, B.shape[0])))
        if dev.type == "cpu":
            from .._pace import SEARCH_WORK, rows_per_call

            bs = min(bs, rows_per_call(n, B.shape[0] * max(1, B.shape[1]), work=SEARCH_WORK))
        out_s = np.empty((n, k), dtype=np.float32)
        out_i = np.empty((n, k), dtype=np.int64)
        with torch.inference_mode(), _fp32_accumulation(torch, half is not None):
            for start in range(0, n, bs):
                q = torch.as_tensor(np.ascontiguousarray(Q[start:start + bs], dtype=np.float32), device=dev)
                if half is None:
                    s, i = torch.topk(q @ Bt.T, k, dim=1, largest=True, sorted=True)
                else:
                    _, i = torch.topk(q.to(half) @ Bh.T, k, dim=1, largest=True, sorted=True)
                    s = torch.einsum("bd,bkd->bk", q, Bt[i])  # exact fp32 scores of the winners
                    s, order = torch.sort(s, dim=1, descending=True, stable=True)
                    i = torch.gather(i, 1, order)
                out_s[start:start + bs] = s.cpu().numpy()
                out_i[start:start + bs] = i.cpu().numpy()
        return out_s, out_i


class _fp32_accumulation:
    """Within the block: fp16 / bf16 GEMMs reduce in fp32 (cuBLAS may otherwise
    use reduced-precision split-K reductions); the flags are restored after."""

    _FLAGS = ("allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction")

    def __init__(self, torch, active: bool):
        self._m = torch.backends.cuda.matmul if active else None
        self._saved = {}

    def __enter__(self):
        if self._m is not None:
            for f in self._FLAGS:
                if hasattr(self._m, f):
                    self._saved[f] = getattr(self._m, f)
                    setattr(self._m, f, False)
        return self

    def __exit__(self, *exc):
        for f, v in self._saved.items():
            setattr(self._m, f, v)
        return False


def make_backend(backend: str = "auto", device: str = "auto", batch_size: int | None = None,
                 precision: str = "fp32") -> Backend:
    """Resolve ``backend`` ("auto" prefers faiss, then torch) and ``device`` once.

    ``precision`` other than "fp32" needs a CUDA device and the torch backend
    ("auto" then picks torch)."""
    from .._device import check_precision

    check_name("backend", backend, BACKENDS)
    device = parse_device(device)
    check_precision(precision)
    if precision != "fp32":
        if backend == "faiss":
            raise BackendUnavailableError(
                f"precision={precision!r} is implemented by the torch backend; use backend='torch' or 'auto'")
        return TorchBackend(device, batch_size, precision)
    if backend == "auto":
        if faiss_available() and not (device.startswith("cuda") and faiss_num_gpus() == 0):
            if device == "auto" and faiss_num_gpus() == 0 and torch_cuda_available():
                return TorchBackend("cuda", batch_size)  # use the GPU torch sees
            return FaissBackend(device)
        try:
            return TorchBackend(device, batch_size)
        except BackendUnavailableError:
            if not faiss_available():
                raise BackendUnavailableError(
                    "neither faiss nor torch is installed; run `pip install faiss-cpu` "
                    "(or `pip install torch==2.13.0` for the CPU build of torch)"
                ) from None
            raise
    if backend == "faiss":
        return FaissBackend(device)
    return TorchBackend(device, batch_size)
