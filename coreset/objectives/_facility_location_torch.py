"""Facility location on a torch device (the GPU path).

Same function and state as :class:`FacilityLocation`, held as torch tensors on
``device``: ``gains(candidates)`` is one batched reduction (dense rows, or a
segment sum over CSR rows), which is what naive and stochastic greedy need on
a GPU. Similarities stay in their dtype; sums accumulate in float64.
"""

from __future__ import annotations

import numpy as np

from .._device import import_torch
from ._base import csr_positions

__all__ = ["TorchFacilityLocation"]


class TorchFacilityLocation:
    """Facility location with tensors on ``device`` ("cpu", "cuda", "cuda:N").

    Accepts a :class:`FacilityLocation` instance (``FacilityLocation(S).to_torch(device)``). Implements the Objective protocol.
    """

    def __init__(self, similarity, device: str = "cuda"):
        torch = self._torch = import_torch()
        base = _bound(similarity, 'FacilityLocation')
        self.n = base.n
        base = base._arrays
        self.device = torch.device(device)
        self.dense = base.mode == 0
        if self.dense:
            self.S = torch.as_tensor(base.S, device=self.device)
        else:
            self.indptr = torch.as_tensor(base.indptr, device=self.device)
            self.idx = torch.as_tensor(base.idx, device=self.device)
            self.data = torch.as_tensor(base.data, device=self.device).double()
            counts = base.indptr[1:] - base.indptr[:-1]
            self.row_of = torch.as_tensor(np.repeat(np.arange(self.n), counts), device=self.device)
        self.cur = torch.zeros(self.n, dtype=torch.float64, device=self.device)
        self.assign = torch.full((self.n,), -1, dtype=torch.int64, device=self.device)

    @property
    def value(self) -> float:
        return float(self.cur.sum().item())

    def gains(self, candidates) -> np.ndarray:
        torch = self._torch
        cands = torch.as_tensor(np.asarray(candidates, dtype=np.int64), device=self.device)
        with torch.inference_mode():
            if self.dense:
                out = (self.S[cands].double() - self.cur).clamp_min_(0).sum(1)
            else:
                pos, slot = csr_positions(torch, self.indptr, cands, self.device)
                vals = (self.data[pos] - self.cur[self.idx[pos]]).clamp_min_(0)
                out = torch.zeros(cands.numel(), dtype=torch.float64, device=self.device).index_add_(0, slot, vals)
        return out.cpu().numpy()

    def update(self, index: int) -> None:
        torch = self._torch
        j = int(index)
        with torch.inference_mode():
            if self.dense:
                row = self.S[j].double()
                better = row > self.cur
                self.cur = torch.where(better, row, self.cur)
                self.assign[better] = j
            else:
                lo, hi = int(self.indptr[j]), int(self.indptr[j + 1])
                pts, vals = self.idx[lo:hi], self.data[lo:hi]
                better = vals > self.cur[pts]
                self.cur[pts[better]] = vals[better]
                self.assign[pts[better]] = j


def _bound(objective, kind: str):
    """The FacilityLocation this tensor copy is made from. This module imports the shared
    kernels only, never ``_facility_location.py``
    (whose ``to_torch`` imports it), so it checks the class by name."""
    if not any(c.__name__ == kind for c in type(objective).__mro__):
        from ..exceptions import ValidationError

        raise ValidationError(f"similarity must be a {kind} (build one, then call its .to_torch(device)); "
                              f"got {type(objective).__name__}")
    return objective
