"""``train``: a small reference loop on a selection or a schedule (adaptive
reselection, dynamic pruning), with a weighted per-sample loss, AMP on CUDA,
seeded order, and compute accounting; ``evaluate``: accuracy, balanced
accuracy and per-class accuracy."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from .._device import parse_device
from .._validation import check_float, check_int
from .._registry import check_name
from ..exceptions import ValidationError
from ._dataset import BatchFetcher, dataset_labels
from ._hooks import as_index_array, check_fingerprint, check_within, require_torch
from ._sampler import CoresetSampler, normalize_weights

__all__ = ["train", "evaluate", "TrainResult", "EvalResult", "resolve_loss", "resolve_device", "LogitAdjustedLoss",
           "check_prior", "LOSSES", "LR_SCHEDULES"]

log = logging.getLogger(__name__)
_torch = require_torch()
#: loss names ``train`` accepts; the last two are matched to the class prior of what is trained on
LOSSES = ("cross_entropy", "logit_adjusted", "balanced_softmax")
_PRIOR_LOSSES = LOSSES[1:]
#: learning-rate schedules by name, each sized by the run's optimizer steps (budget-aware: a short run
#: decays over its own steps, not over full data's): "constant" (none), "linear" (from ``lr`` to 0),
#: "cosine" (cosine annealing from ``lr`` to 0), "onecycle" (OneCycleLR peaking at ``lr``)
LR_SCHEDULES = ("constant", "linear", "cosine", "onecycle")


@dataclass
class TrainResult:
    """What :func:`train` did and what it cost.

    ``sample_gradients``: per-sample gradients computed (rows through a
    backward pass); ``samples_seen``: rows through a training forward pass
    (equal here); ``forward_samples``: rows through forward-only passes spent
    on selection (gradient proxies); ``selection_seconds``: time in selection
    (reselections, and a given Selection's recorded ``timings['total']``);
    ``training_seconds``: time in the training loop itself;
    ``examples_per_second`` = samples_seen / training_seconds."""

    epochs: int
    loss_history: list
    epoch_sizes: list
    samples_seen: int
    sample_gradients: int
    forward_samples: int
    selection_seconds: float
    training_seconds: float
    total_seconds: float
    examples_per_second: float
    device: str
    random_state: int
    reselections: list = field(default_factory=list)
    steps: int = 0
    class_prior: list | None = None


@dataclass
class EvalResult:
    """``per_class_accuracy[c]`` is NaN for a class absent from the data;
    ``balanced_accuracy`` is the mean over the classes present."""

    accuracy: float
    balanced_accuracy: float
    per_class_accuracy: np.ndarray
    n_samples: int


def resolve_device(device) -> str:
    device = parse_device(device)
    if device == "auto":
        return "cuda" if _torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not _torch.cuda.is_available():
        from ..exceptions import BackendUnavailableError

        raise BackendUnavailableError(f"device={device!r} but torch sees no CUDA device")
    return device


def check_prior(class_prior, trained_classes=(), n_classes=None) -> np.ndarray:
    """``class_prior`` as shares summing to 1 (float64, length ``n_classes``
    when given). Refused: not 1-D, negative, non-finite, all zero, longer
    than ``n_classes``, or 0 for a class in ``trained_classes`` (a class
    that is trained on must be in the prior)."""
    p = np.asarray(class_prior, dtype=np.float64) if not hasattr(class_prior, "cpu") else \
        class_prior.detach().cpu().numpy().astype(np.float64)
    if p.ndim != 1 or p.size == 0 or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
        raise ValidationError(f"class_prior must be finite shares >= 0, one per class, not all 0; got {class_prior!r}")
    if n_classes is not None:
        if p.size > n_classes:
            raise ValidationError(f"class_prior must have at most one entry per model output ({n_classes}); "
                                  f"got {p.size}")
        p = np.concatenate([p, np.zeros(n_classes - p.size)])
    for c in np.unique(np.asarray(trained_classes, dtype=np.int64)):
        if c >= p.size or p[c] == 0:
            raise ValidationError(
                f"class_prior: class {int(c)} appears in the labels trained on but is absent from the prior "
                f"(prior 0); a logit-adjusted loss needs a prior > 0 for every class trained on")
    return p / p.sum()


class LogitAdjustedLoss(_torch.nn.Module):
    """Cross-entropy on ``logits + tau * log(prior)``, one value per sample
    (``reduction="none"``): logit adjustment (Menon et al., ICLR 2021) with
    ``tau``; with ``tau=1`` it is also Balanced Softmax (Ren et al., NeurIPS
    2020). Used in training only: evaluate on the plain logits. A class with
    prior 0 (never trained on) is shifted like the rarest class present, so
    its logit is still pushed down (a ``-inf`` shift would leave it untrained)."""

    reduction = "none"

    def __init__(self, class_prior, tau=1.0):
        super().__init__()
        from .._validation import check_float

        p = check_prior(class_prior)
        self.tau = check_float(tau, "tau", low=0.0)
        logp = np.log(np.where(p > 0, p, p[p > 0].min()))
        self.register_buffer("log_prior", _torch.as_tensor(logp, dtype=_torch.float32))

    def forward(self, logits, target):
        shift = self.log_prior.to(logits.device)
        if logits.shape[-1] != shift.shape[0]:
            raise ValidationError(f"the model outputs {logits.shape[-1]} classes but class_prior has "
                                  f"{shift.shape[0]}")
        return _torch.nn.functional.cross_entropy(logits.float() + self.tau * shift, target, reduction="none")


def resolve_loss(loss, class_prior=None):
    """A loss callable returning one value per sample. ``"cross_entropy"`` is
    ``nn.CrossEntropyLoss(reduction="none")``; ``"logit_adjusted"`` and
    ``"balanced_softmax"`` are :class:`LogitAdjustedLoss` (``tau=1``) on
    ``class_prior``; a loss module with another ``reduction`` is refused
    (per-sample losses are needed for weights and pruning); a plain function
    is checked on the first batch."""
    if loss == "cross_entropy":
        return _torch.nn.CrossEntropyLoss(reduction="none")
    if loss in _PRIOR_LOSSES:
        if class_prior is None:
            raise ValidationError(f"loss={loss!r} needs class_prior (the class shares of what is trained on)")
        return LogitAdjustedLoss(class_prior, tau=1.0)
    if isinstance(loss, str):
        raise ValidationError(f"loss must be one of {', '.join(LOSSES)} or a callable with reduction='none'; "
                              f"got {loss!r}")
    if not callable(loss):
        raise ValidationError(f"loss must be one of {', '.join(LOSSES)} or a callable; got {type(loss).__name__}")
    red = getattr(loss, "reduction", "none")
    if red != "none":
        raise ValidationError(
            f"loss must return one value per sample (reduction='none'); got a loss with reduction={red!r}: "
            f"construct it as {type(loss).__name__}(reduction='none')")
    return loss


def _per_sample(loss_fn, out, y):
    val = loss_fn(out, y)
    if val.ndim != 1 or val.shape[0] != y.shape[0]:
        raise ValidationError(
            f"loss must return one value per sample (reduction='none'): expected shape ({y.shape[0]},), "
            f"got {tuple(val.shape)}")
    return val


def _check_outputs(model, fetcher, rows, y_max, device) -> int:
    """One forward pass on two rows (eval mode, no grad): the model's output
    must have more than max(label) columns; returns their number."""
    was = model.training
    model.eval()
    try:
        with _torch.no_grad():
            out = model(fetcher.fetch(rows[:2])[0])
    finally:
        model.train(was)
    if out.ndim != 2:
        raise ValidationError(f"the model must output logits of shape (batch, n_classes); got {tuple(out.shape)}")
    if y_max >= out.shape[1]:
        raise ValidationError(
            f"labels out of range for the model: the largest label is {y_max} but the model outputs "
            f"{out.shape[1]} classes (labels must be in [0, {out.shape[1] - 1}])")
    return int(out.shape[1])


def resolve_lr_scheduler(lr_scheduler):
    """``f(optimizer, total_steps) -> scheduler`` (or None) for a name of
    :data:`LR_SCHEDULES`, a callable (returned as is) or None."""
    if lr_scheduler is None or callable(lr_scheduler):
        return lr_scheduler
    if not isinstance(lr_scheduler, str):
        raise ValidationError(f"lr_scheduler must be one of {', '.join(LR_SCHEDULES)}, a callable "
                              f"f(optimizer, total_steps) or None; got {type(lr_scheduler).__name__}")
    check_name("lr_scheduler", lr_scheduler, LR_SCHEDULES)
    sch = _torch.optim.lr_scheduler
    if lr_scheduler == "constant":
        return None
    if lr_scheduler == "linear":
        return lambda opt, total: sch.LambdaLR(opt, lambda step: max(0.0, 1.0 - step / max(1, total)))
    if lr_scheduler == "cosine":
        return lambda opt, total: sch.CosineAnnealingLR(opt, T_max=max(1, total))
    return lambda opt, total: sch.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=max(2, total))


def _optimizer(model, optimizer, lr, momentum, weight_decay):
    if optimizer is None or optimizer == "sgd":
        return _torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    if optimizer == "adam":
        return _torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if isinstance(optimizer, _torch.optim.Optimizer):
        return optimizer
    raise ValidationError(f"optimizer must be 'sgd', 'adam' or a torch.optim.Optimizer; got {optimizer!r}")


class _Static:
    """Schedule of a fixed selection (or the full data): weights from the
    selection, the same rows every epoch in a fresh seeded order."""

    def __init__(self, indices, weights, normalize):
        self.indices, self.weights_raw, self.normalize = indices, weights, normalize
        self.reselections, self.selection_seconds, self.forward_samples = [], 0.0, 0

    def attach(self, dataset, *, epochs, labels=None, random_state=0, **_):
        w = np.ones(self.indices.size) if self.weights_raw is None else self.weights_raw
        self.sampler = CoresetSampler(self.indices, random_state=random_state)
        picked = None if labels is None else labels[self.indices]
        self.sampler.weights = normalize_weights(w, self.normalize, labels=picked)
        self._labels = picked
        self._table = np.zeros(int(self.indices.max()) + 1)
        self._table[self.indices] = self.sampler.weights
        self.epochs = epochs
        return self

    def on_epoch_start(self, epoch, model=None):
        self.sampler.set_epoch(epoch)

    def epoch_indices(self):
        return self.sampler.order()

    def total_steps(self, batch_size):
        return self.epochs * -(-self.indices.size // batch_size)

    def rescale(self, rows, losses):
        rows = rows.cpu().numpy() if hasattr(rows, "cpu") else np.asarray(rows)
        w = _torch.as_tensor(self._table[rows], dtype=losses.dtype, device=losses.device)
        return losses * w

    def class_prior(self):
        """The weighted class shares of the selection, as trained (normalised weights)."""
        return np.bincount(self._labels, weights=self.sampler.weights)

    def trained_classes(self):
        return np.unique(self._labels[self.sampler.weights > 0])


def _effective_prior(schedule, class_prior, y_all, n_out):
    """The class prior a logit-adjusted loss is matched to: ``class_prior``
    if given, else what the schedule trains on (a fixed selection: its
    weighted class shares; a resampling schedule: its per-epoch quotas; the
    full data: the class frequencies)."""
    own = getattr(schedule, "class_prior", None)
    if class_prior is None:
        if own is None:
            raise ValidationError(
                f"a logit-adjusted loss needs the class prior of what is trained on, and {type(schedule).__name__} "
                "does not give one (its class shares change during training); pass class_prior=")
        class_prior = own()
    if hasattr(schedule, "trained_classes"):
        trained = schedule.trained_classes()
    elif own is not None:
        trained = np.flatnonzero(own() > 0)
    else:
        trained = np.unique(y_all)
    return check_prior(class_prior, trained, n_out)


def train(model, dataset, *, selection=None, schedule=None, epochs, batch_size=128, optimizer=None, lr=0.05,
          momentum=0.9, weight_decay=0.0, lr_scheduler=None, loss="cross_entropy", normalize="mean",
          labels=None, device="auto", amp=True, random_state=0, callback=None, embeddings=None,
          fingerprint=None, class_prior=None) -> TrainResult:
    """Train ``model`` in place on ``dataset`` (map-style, items ``(x, y)``;
    a ``TensorDataset`` is indexed directly) and return a :class:`TrainResult`.

    What is trained on: the full data (default), a fixed ``selection``
    (Selection, index-file path or index array; its weights normalised by
    ``normalize``: "mean", "class", "sum", "none", None), or a ``schedule``
    (:class:`AdaptiveReselection`, :class:`DynamicPruning`,
    :class:`ResampleSchedule`). Each step minimises the mean over the batch of
    ``weight * loss_i`` with ``loss`` per sample (``reduction="none"``):
    "cross_entropy", a callable, or "logit_adjusted" / "balanced_softmax"
    (cross-entropy on ``logits + log(prior)``; evaluation uses the plain
    logits), matched to ``class_prior`` if given, else to the effective prior
    of what is trained on: a selection's weighted class shares (after
    ``normalize``), a resampling schedule's per-epoch quota shares, the full
    data's class frequencies (recorded in ``TrainResult.class_prior``).
    ``optimizer``: "sgd" (momentum), "adam" or an instance; ``lr_scheduler``:
    a name of :data:`LR_SCHEDULES` ("linear", "cosine", "onecycle": sized by
    this run's own steps) or ``f(optimizer, total_steps) -> scheduler``,
    stepped every batch (needs a schedule whose step count is known up front).
    ``amp``: autocast float16 + gradient scaling on CUDA (ignored on CPU).
    On CPU the same ``random_state`` and initial model give the same result.
    Checked before training starts: selection indices within the dataset,
    labels within the model's outputs, the loss's reduction, and the
    selection's input fingerprint against ``embeddings`` / ``fingerprint``.
    """
    t_start = time.perf_counter()
    if not isinstance(model, _torch.nn.Module):
        raise ValidationError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    epochs = check_int(epochs, "epochs", low=1)
    batch_size = check_int(batch_size, "batch_size", low=1)
    lr = check_float(lr, "lr", low=0.0, low_open=True)
    random_state = check_int(random_state, "random_state", low=0)
    device = resolve_device(device)
    lr_scheduler = resolve_lr_scheduler(lr_scheduler)
    prior_loss = isinstance(loss, str) and loss in _PRIOR_LOSSES
    loss_fn = None if prior_loss else resolve_loss(loss)
    n = len(dataset)
    y_all = dataset_labels(dataset, labels)
    selection_seconds = 0.0
    if selection is not None and schedule is not None:
        raise ValidationError("give selection= or schedule=, not both (a schedule selects for itself)")
    if schedule is None:
        if selection is None:
            idx, w, sel = np.arange(n, dtype=np.int64), None, None
        else:
            idx, w, sel = as_index_array(selection)
            check_within(idx, n)
            check_fingerprint(sel, embeddings=embeddings, fingerprint=fingerprint)
            if sel is not None:
                selection_seconds = float((sel.meta.get("timings") or {}).get("total") or 0.0)
        schedule = _Static(idx, w, normalize)
    elif embeddings is not None or fingerprint is not None:
        raise ValidationError("embeddings= / fingerprint= check a given selection; a schedule selects for itself")
    rows_check = schedule.indices if isinstance(schedule, _Static) else np.arange(min(n, 2))
    y_max = int(y_all[rows_check].max()) if isinstance(schedule, _Static) else int(y_all.max())
    model.to(device)
    fetcher = BatchFetcher(dataset, device)
    n_out = _check_outputs(model, fetcher, rows_check, y_max, device)
    schedule.attach(dataset, epochs=epochs, labels=y_all, random_state=random_state, batch_size=batch_size,
                    device=device, fetcher=fetcher)
    prior = None
    if prior_loss:
        prior = _effective_prior(schedule, class_prior, y_all, n_out)
        loss_fn = resolve_loss(loss, prior).to(device)
        log.info("loss=%s matched to the class prior %s", loss, np.round(prior, 4).tolist())
    elif class_prior is not None:
        raise ValidationError(f"class_prior= applies to loss='logit_adjusted' or 'balanced_softmax'; got loss={loss!r}")
    if hasattr(schedule, "check_model"):
        schedule.check_model(model)
    opt = _optimizer(model, optimizer, lr, momentum, weight_decay)
    sched = None
    if lr_scheduler is not None:
        total = schedule.total_steps(batch_size)
        if total is None:
            raise ValidationError("lr_scheduler needs the number of steps up front; this schedule's epochs vary "
                                  "in length (use DynamicPruning(fixed_length=True))")
        sched = lr_scheduler(opt, total)
    use_amp = bool(amp) and device.startswith("cuda")
    scaler = _torch.amp.GradScaler("cuda") if use_amp else None
    devices = [_torch.device(device).index or 0] if device.startswith("cuda") else []
    loss_history, epoch_sizes, seen, steps = [], [], 0, 0
    with _torch.random.fork_rng(devices=devices):
        _torch.manual_seed(random_state)
        for epoch in range(epochs):
            schedule.on_epoch_start(epoch, model)
            model.train()
            order = schedule.epoch_indices()
            total_loss = 0.0
            for start in range(0, order.size, batch_size):
                rows = order[start:start + batch_size]
                x, y = fetcher.fetch(rows)
                with _torch.autocast("cuda", dtype=_torch.float16, enabled=use_amp):
                    per = _per_sample(loss_fn, model(x), y)
                    obj = schedule.rescale(rows, per.float()).mean()
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(obj).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    obj.backward()
                    opt.step()
                if sched is not None:
                    sched.step()
                total_loss += float(per.detach().sum())
                steps += 1
            seen += int(order.size)
            epoch_sizes.append(int(order.size))
            loss_history.append(total_loss / max(1, order.size))
            if callback is not None:
                callback("train", epoch + 1, epochs)
    if device.startswith("cuda"):
        _torch.cuda.synchronize()
    total_seconds = time.perf_counter() - t_start
    selection_seconds += schedule.selection_seconds
    training_seconds = max(total_seconds - schedule.selection_seconds, 1e-12)
    return TrainResult(
        epochs=epochs, loss_history=loss_history, epoch_sizes=epoch_sizes, samples_seen=seen,
        sample_gradients=seen, forward_samples=int(schedule.forward_samples), selection_seconds=selection_seconds,
        training_seconds=training_seconds, total_seconds=total_seconds,
        examples_per_second=seen / training_seconds, device=device, random_state=random_state,
        reselections=list(schedule.reselections), steps=steps,
        class_prior=None if prior is None else prior.tolist())


def evaluate(model, dataset, *, batch_size=1024, device="auto", n_classes=None) -> EvalResult:
    """Accuracy, balanced accuracy (mean per-class accuracy over the classes
    present) and per-class accuracy of ``model`` on ``dataset``."""
    device = resolve_device(device)
    batch_size = check_int(batch_size, "batch_size", low=1)
    y = dataset_labels(dataset)
    fetcher = BatchFetcher(dataset, device)
    model.to(device)
    was = model.training
    model.eval()
    preds = []
    try:
        with _torch.no_grad():
            for start in range(0, y.size, batch_size):
                rows = np.arange(start, min(start + batch_size, y.size))
                preds.append(model(fetcher.fetch(rows)[0]).argmax(1).cpu().numpy())
    finally:
        model.train(was)
    pred = np.concatenate(preds)
    c = max(int(y.max()) + 1, int(n_classes or 0))
    correct = np.bincount(y, weights=(pred == y).astype(float), minlength=c)
    count = np.bincount(y, minlength=c)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(count > 0, correct / np.maximum(count, 1), np.nan)
    return EvalResult(accuracy=float((pred == y).mean()), balanced_accuracy=float(np.nanmean(per)),
                      per_class_accuracy=per, n_samples=int(y.size))
