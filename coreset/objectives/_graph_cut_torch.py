"""Graph cut on a torch device (the GPU path).

Same function and state as :class:`GraphCut` (row sums, diagonal and the
penalty ``pen`` in float64 on ``device``): ``gains(candidates)`` is one
gather, ``update(j)`` adds row j (and column j when the similarity is not
symmetric) to ``pen``, the same float64 operations in the same order as the
numba kernel, so both paths pick identically.
"""

from __future__ import annotations

import numpy as np

from .._device import import_torch

__all__ = ["TorchGraphCut"]


class TorchGraphCut:
    """Graph cut with tensors on ``device`` ("cpu", "cuda", "cuda:N").

    Accepts a bound :class:`GraphCut` (``lambda_`` is its own; the argument is kept for compatibility).
    Implements the Objective protocol.
    """

    def __init__(self, similarity, device: str = "cuda", *, lambda_: float = 0.5):
        torch = self._torch = import_torch()
        base = _bound(similarity, 'GraphCut')
        base._require_bound()
        self.n = base.n
        self.lambda_ = float(base.lambda_)
        self.symmetric = bool(base.symmetric)
        a = base._arrays
        self.device = dev = torch.device(device)
        self.dense = a.mode == 0
        if self.dense:
            self.S = torch.as_tensor(a.S, device=dev)
        else:
            self.indptr = a.indptr
            self.idx = torch.as_tensor(a.idx, device=dev)
            self.data = torch.as_tensor(a.data, device=dev).double()
            tindptr, tidx, tdata = base._t
            self.tindptr = tindptr
            self.tidx = torch.as_tensor(tidx, device=dev)
            self.tdata = torch.as_tensor(tdata, device=dev).double()
        self.rsum = torch.as_tensor(base._rsum, device=dev)
        self.diag = torch.as_tensor(base._diag, device=dev)
        self.pen = torch.zeros(self.n, dtype=torch.float64, device=dev)
        self.selected = np.zeros(self.n, bool)
        self._value = 0.0

    @property
    def value(self) -> float:
        return self._value

    def gains(self, candidates) -> np.ndarray:
        torch = self._torch
        c = torch.as_tensor(np.asarray(candidates, dtype=np.int64), device=self.device)
        with torch.inference_mode():
            out = self.rsum[c] - self.lambda_ * (self.diag[c] + self.pen[c])
        return out.cpu().numpy()

    def update(self, index: int) -> float:
        torch = self._torch
        j = int(index)
        g = float(self.gains(np.array([j]))[0])
        with torch.inference_mode():
            if self.dense:
                row = self.S[j].double()
                self.pen += 2.0 * row if self.symmetric else row + self.S[:, j].double()
            else:
                lo, hi = int(self.indptr[j]), int(self.indptr[j + 1])
                if self.symmetric:
                    self.pen.index_add_(0, self.idx[lo:hi], 2.0 * self.data[lo:hi])
                else:
                    self.pen.index_add_(0, self.idx[lo:hi], self.data[lo:hi])
                    lo, hi = int(self.tindptr[j]), int(self.tindptr[j + 1])
                    self.pen.index_add_(0, self.tidx[lo:hi], self.tdata[lo:hi])
        self.selected[j] = True
        self._value += g
        return g


def _bound(objective, kind: str):
    """The GraphCut this tensor copy is made from. This module imports the shared
    kernels only, never ``_graph_cut.py``
    (whose ``to_torch`` imports it), so it checks the class by name."""
    if not any(c.__name__ == kind for c in type(objective).__mro__):
        from ..exceptions import ValidationError

        raise ValidationError(f"similarity must be a {kind} (build one, then call its .to_torch(device)); "
                              f"got {type(objective).__name__}")
    return objective
