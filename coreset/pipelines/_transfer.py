"""Transfer learning: a frozen pretrained backbone -> embeddings -> select ->
a linear probe (or fine-tuning) on the selection.

``embed(backbone, data)`` turns texts (a text backbone such as ``"minilm"``)
or tensors / arrays / a map-style dataset (any ``nn.Module``) into an
``(N, dim)`` float32 array, batch by batch, with progress
``callback("embed", done, total)``; :func:`iter_embed` yields the batches
(what the resumable ``coreset embed`` builds on). ``linear_probe`` and
``fine_tune`` train with :func:`coreset.pipelines.train` on a Selection,
index array or the full data.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int
from ..exceptions import ValidationError
from ._backbones import load_backbone
from ._hooks import require_torch

__all__ = ["embed", "iter_embed", "linear_probe", "fine_tune", "LinearProbe"]

_torch = require_torch()


def _n_items(data) -> int:
    try:
        return len(data)
    except TypeError:
        raise ValidationError(f"data must have a length (a list, array, tensor or map-style dataset); "
                              f"got {type(data).__name__}") from None


def _slice(data, start, stop, kind):
    if kind == "text":
        texts = list(data[start:stop]) if not isinstance(data, (list, tuple)) else data[start:stop]
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise ValidationError(f"a text backbone needs strings; got {type(bad).__name__} in data")
        return texts
    if _torch.is_tensor(data) or isinstance(data, np.ndarray):
        return data[start:stop]
    items = [data[i] for i in range(start, stop)]  # map-style dataset: items x or (x, y, ...)
    xs = [it[0] if isinstance(it, (tuple, list)) else it for it in items]
    return _torch.stack([x if _torch.is_tensor(x) else _torch.as_tensor(np.asarray(x)) for x in xs])


def iter_embed(backbone, data, *, batch_size: int = 64, device: str = "auto", start: int = 0,
               normalize: bool = False):
    """Yield ``(start, block)`` of embeddings from row ``start`` on, one batch at a time."""
    bb = load_backbone(backbone, device=device)
    batch_size = check_int(batch_size, "batch_size", low=1)
    n = _n_items(data)
    if isinstance(data, str):
        raise ValidationError("data is one string; pass a list of texts")
    for s in range(check_int(start, "start", low=0, high=n), n, batch_size):
        block = bb.encode(_slice(data, s, min(n, s + batch_size), bb.kind), batch_size=batch_size, normalize=normalize)
        yield s, block


def embed(backbone, data, *, batch_size: int = 64, device: str = "auto", callback=None,
          normalize: bool = False) -> np.ndarray:
    """Embeddings ``(N, dim)`` float32 of ``data`` by ``backbone`` (a name from
    :data:`~coreset.pipelines.BACKBONES`, a TorchScript path, an ``nn.Module``
    or a loaded backbone), frozen (eval mode, no gradients)."""
    n = _n_items(data)
    blocks = []
    for s, block in iter_embed(backbone, data, batch_size=batch_size, device=device, normalize=normalize):
        blocks.append(block)
        if callback is not None:
            callback("embed", s + block.shape[0], n)
    if not blocks:
        raise ValidationError("data is empty: nothing to embed")
    return np.concatenate(blocks)


class LinearProbe:
    """A trained linear classifier over embeddings: ``predict``, ``score``
    (accuracy), ``model`` (standardisation + ``nn.Linear``), ``classes_``."""

    def __init__(self, model, classes, device, result):
        self.model, self.classes_, self.device, self.result_ = model, classes, device, result

    def decision_function(self, X) -> np.ndarray:
        self.model.eval()
        with _torch.no_grad():
            return self.model(_torch.as_tensor(np.asarray(X, np.float32), device=self.device)).cpu().numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(1)]

    def score(self, X, y) -> float:
        return float((self.predict(X) == np.asarray(y)).mean())


def linear_probe(X, y, *, selection=None, epochs: int = 50, lr: float = 1e-2, weight_decay: float = 1e-4,
                 batch_size: int = 64, normalize="mean", device: str = "auto", random_state: int = 0,
                 callback=None) -> LinearProbe:
    """A linear classifier trained on the embeddings ``X`` (standardised by
    the training rows' mean and std) with Adam, on ``selection`` (a Selection
    with its weights, an index file or an index array) or all of ``X``."""
    from .._validation import as_embeddings, check_labels
    from ._scoring import Standardize, torch_device
    from ._train import train

    X = as_embeddings(X)
    classes, codes = np.unique(check_labels(y, X.shape[0]), return_inverse=True)
    dev = torch_device(device)
    rows = np.arange(X.shape[0])
    if selection is not None:
        from ._hooks import as_index_array

        rows = as_index_array(selection)[0]
    Xt = _torch.as_tensor(np.ascontiguousarray(X, np.float32))
    ref = Xt[_torch.as_tensor(rows)]
    std = ref.std(0, unbiased=False).clamp_min(1e-6) if ref.shape[0] > 1 else _torch.ones(X.shape[1])
    with _torch.random.fork_rng(devices=[]):
        _torch.manual_seed(random_state)
        model = _torch.nn.Sequential(Standardize(ref.mean(0), std), _torch.nn.Linear(X.shape[1], classes.size))
    ds = _torch.utils.data.TensorDataset(Xt, _torch.as_tensor(codes.astype(np.int64)))
    result = train(model, ds, selection=selection, epochs=epochs, batch_size=batch_size, optimizer="adam", lr=lr,
                   weight_decay=weight_decay, normalize=normalize, device=dev, random_state=random_state,
                   callback=callback)
    return LinearProbe(model.eval(), classes, dev, result)


def fine_tune(backbone, head, dataset, *, selection=None, freeze_backbone: bool = False, epochs: int = 5,
              lr: float = 1e-3, batch_size: int = 64, device: str = "auto", random_state: int = 0, callback=None):
    """``nn.Sequential(backbone, head)`` trained end to end (or only ``head``
    with ``freeze_backbone``) on a map-style ``dataset`` of ``(x, y)`` with
    :func:`~coreset.pipelines.train` (Adam); returns ``(model, TrainResult)``."""
    from ._scoring import torch_device
    from ._train import train

    if not isinstance(backbone, _torch.nn.Module) or not isinstance(head, _torch.nn.Module):
        raise ValidationError("fine_tune needs nn.Module backbone and head; got "
                              f"{type(backbone).__name__} and {type(head).__name__}")
    for p in backbone.parameters():
        p.requires_grad_(not freeze_backbone)
    model = _torch.nn.Sequential(backbone, _torch.nn.Flatten(), head)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _torch.optim.Adam(params, lr=lr)
    result = train(model, dataset, selection=selection, epochs=epochs, batch_size=batch_size, optimizer=opt, lr=lr,
                   device=torch_device(device), random_state=random_state, callback=callback)
    return model, result
