"""Per-example difficulty scores from a preliminary model (the torch side of
the score-based selectors in :mod:`coreset.selectors._scores` and of
``ClassBalanced(policy="error")``). It sits below ``selectors/``;
``coreset.pipelines._scoring`` re-exports it.

Every score is "higher = harder":

* ``el2n`` (Paul et al. 2021): ``|softmax(f(x)) - onehot(y)|_2`` after a few
  epochs, averaged over ``n_models`` seeds.
* ``grand`` (Paul et al. 2021): the expected norm of the loss gradient, here
  of the **last layer only** (weights and bias), in closed form
  ``|p - e_y| * sqrt(1 + |h|^2)`` with ``h`` the last layer's input; averaged
  over ``n_models`` seeds.
* ``forgetting`` (Toneva et al. 2019): correct -> incorrect transitions of an
  example between its successive presentations in training minibatches;
  an example never classified correctly after its first presentation (where
  being right is chance) scores ``epochs + 1`` (beyond any count reachable),
  i.e. most forgotten.
* ``least_confidence`` ``1 - max p``, ``entropy`` ``-sum p log p``, ``margin``
  ``1 - (p_1 - p_2)`` (uncertainty; ``p`` averaged over the models).

The preliminary model is a linear probe (``hidden=0``) or a one-hidden-layer
MLP on standardised inputs, trained with Adam on seeded minibatches; a
trained ``model`` of your own (any ``nn.Module`` mapping a float tensor batch
to logits) can be scored instead (not for ``forgetting``, which needs the
training run).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import numpy as np

from .._validation import check_float, check_int
from ..exceptions import BackendUnavailableError, ValidationError
from ._torch import require_torch

__all__ = ["SCORES", "compute_scores", "class_errors", "fit_probe", "predict_proba", "torch_device", "one_cpu_thread"]

log = logging.getLogger(__name__)

SCORES = ("el2n", "grand", "forgetting", "least_confidence", "entropy", "margin")


def torch_device(device="auto") -> str:
    """``"auto"`` -> cuda when torch sees a GPU, else cpu; an explicit cuda
    without one is a :class:`BackendUnavailableError` (no silent CPU run)."""
    from .._device import parse_device

    device = parse_device(device)
    torch = require_torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendUnavailableError(f"device={device!r} asks for a GPU but torch sees none")
    return device


@contextmanager
def one_cpu_thread(device):
    """Small probes on CPU run on one torch thread: their batches are too small
    to gain from more, and on a loaded machine the extra threads' spinning
    made them ~10x slower (measured). The previous setting is restored."""
    torch = require_torch()
    if not str(device).startswith("cpu"):
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _encode(y):
    classes, inv = np.unique(np.asarray(y), return_inverse=True)
    return classes, inv.astype(np.int64)


def _make_probe(d: int, c: int, hidden: int):
    nn = require_torch().nn
    if hidden:
        return nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, c))
    return nn.Sequential(nn.Linear(d, c))


class Standardize(require_torch().nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x):
        return (x - self.mean) / self.std


def fit_probe(X, y, *, n_classes=None, hidden: int = 0, epochs: int = 10, lr: float = 5e-2, batch_size: int = 32,
              weight_decay: float = 0.0, sample_weight=None, random_state: int = 0, device: str = "cpu",
              on_batch=None, callback=None):
    """A linear probe (``hidden=0``) or one-hidden-layer MLP trained on
    ``(X, y)`` (``y`` integer codes 0..C-1) with Adam, seeded: the same
    ``random_state`` gives the same weights. ``on_batch(idx, logits)`` sees
    every minibatch's logits before its step (forgetting events).
    ``sample_weight`` weights the loss (a weighted coreset). Returns the
    model (standardisation included) in eval mode."""
    torch = require_torch()
    epochs = check_int(epochs, "epochs", low=1)
    batch_size = check_int(batch_size, "batch_size", low=1)
    hidden = check_int(hidden, "hidden", low=0)
    lr = check_float(lr, "lr", low=0.0)
    Xt = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=device)
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64), device=device)
    n, d = Xt.shape
    c = int(n_classes if n_classes is not None else int(yt.max()) + 1)
    w = None if sample_weight is None else torch.as_tensor(np.asarray(sample_weight, np.float32), device=device)
    mean = Xt.mean(0)
    std = Xt.std(0, unbiased=False).clamp_min(1e-6) if n > 1 else torch.ones(d, device=device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(random_state))
        model = torch.nn.Sequential(Standardize(mean, std), _make_probe(int(d), c, hidden)).to(device)
    with one_cpu_thread(device):
        _train_loop(model, Xt, yt, w, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                    random_state=random_state, device=device, on_batch=on_batch, callback=callback)
    return model.eval()


def _train_loop(model, Xt, yt, w, *, epochs, batch_size, lr, weight_decay, random_state, device, on_batch,
                callback):
    torch = require_torch()
    n = Xt.shape[0]
    gen = torch.Generator().manual_seed(int(random_state) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    steps = (n + batch_size - 1) // batch_size
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen).to(device)
        for s in range(steps):
            idx = order[s * batch_size:(s + 1) * batch_size]
            logits = model(Xt[idx])
            if on_batch is not None:
                on_batch(idx.cpu().numpy(), logits.detach())
            loss = torch.nn.functional.cross_entropy(logits, yt[idx], reduction="none")
            loss = (loss * w[idx]).sum() / w[idx].sum() if w is not None else loss.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if callback is not None:
            callback("train", epoch + 1, epochs)


def predict_proba(model, X, *, batch_size: int = 1024, device: str = "cpu", capture_features: bool = False):
    """Softmax of ``model`` over ``X`` in batches, float64 (N, C); with
    ``capture_features`` also the last nn.Linear layer's input (N, h)."""
    torch = require_torch()
    Xt = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))
    probs, feats = [], []
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with torch.no_grad():
            for s in range(0, Xt.shape[0], batch_size):
                xb = Xt[s:s + batch_size].to(device)
                if capture_features:
                    from ._torch import LastLayerCapture

                    with LastLayerCapture(model) as cap:
                        logits = model(xb)
                    feats.append(cap.features.reshape(xb.shape[0], -1).double().cpu().numpy())
                else:
                    logits = model(xb)
                if not torch.is_tensor(logits) or logits.ndim != 2:
                    raise ValidationError(
                        f"model must map a batch (b, d) to logits (b, n_classes); got {getattr(logits, 'shape', logits)}")
                probs.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
    finally:
        if was_training:
            model.train()
    P = np.concatenate(probs)
    return (P, np.concatenate(feats)) if capture_features else P


def _from_probs(score, P, codes, feats=None):
    n = P.shape[0]
    if score in ("el2n", "grand"):
        if codes.max(initial=0) >= P.shape[1]:
            raise ValidationError(f"the model has {P.shape[1]} outputs but y has class codes up to {codes.max()}")
        E = P.copy()
        E[np.arange(n), codes] -= 1.0
        r = np.linalg.norm(E, axis=1)
        if score == "grand":
            r = r * np.sqrt(1.0 + np.einsum("ij,ij->i", feats, feats))
        return r
    if score == "least_confidence":
        return 1.0 - P.max(axis=1)
    if score == "entropy":
        return -(P * np.log(np.clip(P, 1e-300, None))).sum(axis=1)
    top = -np.sort(-P, axis=1)
    return 1.0 - (top[:, 0] - (top[:, 1] if P.shape[1] > 1 else 0.0))


def compute_scores(X, y, score: str = "el2n", *, model=None, n_models: int = 3, epochs: int = 10, hidden: int = 0,
                   lr: float = 5e-2, batch_size: int = 32, random_state: int = 0, device: str = "auto",
                   callback=None) -> np.ndarray:
    """One difficulty score per row of ``X`` (float64, higher = harder); see the
    module doc for each ``score``. Without ``model``, ``n_models`` probes are
    trained for ``epochs`` with seeds ``random_state + m``; with ``model``
    (trained, your own) it is scored as is. ``y``: labels (any values; the
    model's output ``j`` is the ``j``-th class in sorted order)."""
    from .._registry import check_name
    from .._validation import as_embeddings, check_labels

    score = check_name("score", score, SCORES)
    X = as_embeddings(X)
    codes = _encode(check_labels(y, X.shape[0]))[1]
    n_models = check_int(n_models, "n_models", low=1)
    dev = torch_device(device)
    grand = score == "grand"
    if model is not None:
        if score == "forgetting":
            raise ValidationError("score='forgetting' counts events during training; it cannot score a given model "
                                  "(pass model=None)")
        out = predict_proba(model, X, device=dev, capture_features=grand)
        P, F = out if grand else (out, None)
        return _from_probs(score, P, codes, F)
    c = int(codes.max()) + 1
    if c < 2:
        raise ValidationError(f"score={score!r} needs at least 2 classes in y; got {c}")
    total = n_models * epochs
    if score == "forgetting":
        return _forgetting(X, codes, c, epochs=epochs, hidden=hidden, lr=lr, batch_size=batch_size,
                           random_state=random_state, device=dev, callback=callback)
    acc = np.zeros(X.shape[0])
    Pacc = np.zeros((X.shape[0], c))
    for m in range(n_models):
        cb = None if callback is None else (lambda st, done, tot, m=m: callback("train", m * epochs + done, total))
        net = fit_probe(X, codes, n_classes=c, hidden=hidden, epochs=epochs, lr=lr, batch_size=batch_size,
                        random_state=random_state + m, device=dev, callback=cb)
        if score in ("el2n", "grand"):
            out = predict_proba(net, X, device=dev, capture_features=grand)
            P, F = out if grand else (out, None)
            acc += _from_probs(score, P, codes, F)
        else:
            Pacc += predict_proba(net, X, device=dev)
    if score in ("el2n", "grand"):
        return acc / n_models
    return _from_probs(score, Pacc / n_models, codes)


def _forgetting(X, codes, c, *, epochs, hidden, lr, batch_size, random_state, device, callback):
    n = X.shape[0]
    prev = np.zeros(n, bool)
    ever = np.zeros(n, bool)
    forgot = np.zeros(n, np.float64)

    seen = np.zeros(n, np.int64)

    def on_batch(idx, logits):
        correct = (logits.argmax(1).cpu().numpy() == codes[idx])
        forgot[idx] += prev[idx] & ~correct
        prev[idx] = correct
        ever[idx] |= correct & (seen[idx] > 0)  # right at the first presentation is chance, not learning
        seen[idx] += 1

    fit_probe(X, codes, n_classes=c, hidden=hidden, epochs=epochs, lr=lr, batch_size=batch_size,
              random_state=random_state, device=device, on_batch=on_batch, callback=callback)
    forgot[~ever] = epochs + 1
    return forgot


def class_errors(X, y, *, n_folds: int = 3, hidden: int = 0, epochs: int = 20, lr: float = 5e-2,
                 batch_size: int = 32, random_state: int = 0, device: str = "auto"):
    """``(classes, error)``: each class's held-out error rate of a preliminary
    probe, by ``n_folds``-fold cross-validation (every point predicted by a
    probe that did not train on it); the per-class quota of DRoP."""
    from .._validation import as_embeddings, check_labels

    X = as_embeddings(X)
    classes, codes = _encode(check_labels(y, X.shape[0]))
    n, c = X.shape[0], classes.size
    n_folds = check_int(n_folds, "n_folds", low=2, high=max(2, n))
    dev = torch_device(device)
    rng = np.random.default_rng(random_state)
    fold = np.empty(n, np.int64)
    for k in range(c):  # stratified: each class spread over the folds
        members = rng.permutation(np.flatnonzero(codes == k))
        fold[members] = np.arange(members.size) % n_folds
    wrong = np.zeros(n, bool)
    for f in range(n_folds):
        test, train = fold == f, fold != f
        if not test.any() or not train.any():
            continue
        net = fit_probe(X[train], codes[train], n_classes=c, hidden=hidden, epochs=epochs, lr=lr,
                        batch_size=batch_size, random_state=random_state + f, device=dev)
        wrong[test] = predict_proba(net, X[test], device=dev).argmax(1) != codes[test]
    err = np.bincount(codes, weights=wrong.astype(np.float64), minlength=c) / np.bincount(codes, minlength=c)
    return classes, err
