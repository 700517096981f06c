"""Log-determinant on a torch device (the GPU path).

The incremental Cholesky of :class:`LogDeterminant` with tensors on ``device``:
``d2`` (float64, N) and the rows of ``c`` in a float64 (capacity x N) buffer
that doubles when full. ``update(p)`` is one matrix-vector product,
``e = (s_p - C[:k, p] @ C[:k]) / sqrt(d2_p)``, and ``gains`` one gather. The
product sums in a different order than the numba loop, so gains agree to
rounding (~1e-12 relative), not bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from .._device import import_torch
from ..exceptions import ValidationError

__all__ = ["TorchLogDeterminant"]


class TorchLogDeterminant:
    """Log-determinant with tensors on ``device`` ("cpu", "cuda", "cuda:N").

    Accepts a bound :class:`LogDeterminant` (``reg`` is its own; the argument is kept for compatibility).
    Implements the Objective protocol.
    """

    def __init__(self, similarity, device: str = "cuda", *, reg: float = 1.0):
        torch = self._torch = import_torch()
        base = _bound(similarity, 'LogDeterminant')
        base._require_bound()
        self.n = n = base.n
        self.reg = base.reg
        self.device = dev = torch.device(device)
        self.S = torch.as_tensor(base._arrays.S, device=dev)
        self.d2 = torch.as_tensor(base._d2, device=dev).clone()
        self.C = torch.zeros((16, n), dtype=torch.float64, device=dev)
        self.k = 0
        self.selected = np.zeros(n, bool)
        self.order = []
        self._value = 0.0

    @property
    def value(self) -> float:
        return self._value

    def gains(self, candidates) -> np.ndarray:
        torch = self._torch
        cands = np.asarray(candidates, dtype=np.int64)
        c = torch.as_tensor(cands, device=self.device)
        with torch.inference_mode():
            d = self.d2[c]
            out = torch.where(d > 0, torch.log(d.clamp_min(1e-300)), torch.full_like(d, -math.inf))
        out = out.cpu().numpy()
        out[self.selected[cands]] = 0.0
        return out

    def update(self, index: int) -> float:
        torch = self._torch
        j = int(index)
        dj2 = float(self.d2[j])
        if not dj2 > 0.0:
            raise ValidationError("log_determinant: the similarity restricted to the selection plus reg * I is not "
                             "positive definite (Schur complement <= 0); use reg > 0 and a positive "
                             "semi-definite similarity (e.g. metric='euclidean')")
        with torch.inference_mode():
            k = self.k
            e = self.S[j].double()
            if k:
                e = e - self.C[:k, j] @ self.C[:k]
            e = e / math.sqrt(dj2)
            if k == self.C.shape[0]:
                self.C = torch.cat([self.C, torch.zeros_like(self.C)])
            self.d2 -= e * e
            e[j] = math.sqrt(dj2)
            self.C[k] = e
        self.k += 1
        self.selected[j] = True
        self.order.append(j)
        g = math.log(dj2)
        self._value += g
        return g


def _bound(objective, kind: str):
    """The LogDeterminant this tensor copy is made from. This module imports the shared
    kernels only, never ``_log_determinant.py``
    (whose ``to_torch`` imports it), so it checks the class by name."""
    if not any(c.__name__ == kind for c in type(objective).__mro__):
        from ..exceptions import ValidationError

        raise ValidationError(f"similarity must be a {kind} (build one, then call its .to_torch(device)); "
                              f"got {type(objective).__name__}")
    return objective
