"""Lightning callbacks that train on a coreset schedule: dynamic pruning
(:class:`~coreset.pipelines.DynamicPruning`), adaptive reselection
(:class:`~coreset.pipelines.AdaptiveReselection`) and per-epoch resampling
(:class:`~coreset.pipelines.ResampleSchedule`), the same schedules
:func:`coreset.pipelines.train` runs.

>>> cb = CoresetCallback(DynamicPruning(prune_ratio=0.5), train_set, batch_size=64)
>>> trainer = L.Trainer(max_epochs=10, callbacks=[cb], reload_dataloaders_every_n_epochs=1)
>>> trainer.fit(module, train_dataloaders=cb.train_dataloader())

The contract:

* **rows**: the callback owns the training loader's sampler
  (:meth:`CoresetCallback.train_dataloader`, or :attr:`CoresetCallback.sampler`
  in a loader of your own over ``IndexedDataset(train_set)``). Each epoch it
  yields the rows the schedule chose, in the schedule's seeded order, so a
  batch is ``(x, y, rows)``. Epoch ``e`` is decided when epoch ``e - 1``
  ends (``on_train_epoch_end``: after its validation, on the trained model),
  where ``train`` decides it, so the rows match ``train``'s on the same seed.
* **loss**: ``training_step`` computes per-sample losses
  (``reduction="none"``) and passes them through ``cb.rescale(rows, losses)``
  (or :meth:`CoresetLossMixin.coreset_loss`), then takes the mean. The
  schedule records them (dynamic pruning ranks rows by them) and returns
  them weighted (pruned rows' survivors scaled up; CRAIG weights). An epoch
  whose losses never reached ``rescale`` raises an error at its end.
* **length**: epochs of a pruning or reselection schedule differ in length,
  so ``Trainer(reload_dataloaders_every_n_epochs=1)`` is required (the loader's
  length is read again each epoch); ``trainer.estimated_stepping_batches``
  assumes epoch 0's length: size a learning-rate schedule with
  :meth:`CoresetCallback.total_steps`.
* **limits**: one process (no DDP: the schedule's state lives in one
  process), ``max_epochs`` set (the schedules plan per epoch), no resuming
  from a checkpoint (the schedule's state, e.g. recorded losses, is not in
  it). Each is refused with a clear error.

``lightning`` (``lightning.pytorch``) is used when installed, else the
standalone ``pytorch_lightning``; the Trainer must come from the same package.
"""

from __future__ import annotations

import logging

import numpy as np

from ..exceptions import BackendUnavailableError, ValidationError

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - the standalone package
    try:
        import pytorch_lightning as pl
    except ImportError:
        raise BackendUnavailableError(
            "coreset.integrations.lightning needs Lightning: pip install 'coreset[lightning]' "
            "(or: pip install lightning)") from None

import torch  # noqa: E402  (Lightning imports it anyway)

from ..pipelines._dataset import BatchFetcher, IndexedDataset, dataset_labels  # noqa: E402

__all__ = ["CoresetCallback", "CoresetLossMixin", "find_coreset_callback"]

log = logging.getLogger(__name__)


class _EpochSampler(torch.utils.data.Sampler):
    """Yields the rows of the current epoch, as the callback's schedule chose them."""

    def __init__(self, callback):
        self.callback = callback

    def __iter__(self):
        return iter(self.callback._current_rows().tolist())

    def __len__(self) -> int:
        return int(self.callback._current_rows().size)


class CoresetCallback(pl.Callback):
    """Train a LightningModule on the rows a coreset schedule picks each epoch.

    Parameters
    ----------
    schedule : DynamicPruning | AdaptiveReselection | ResampleSchedule
        Any object with the schedule protocol of :func:`coreset.pipelines.train`
        (``attach``, ``on_epoch_start``, ``epoch_indices``, ``rescale``,
        ``total_steps``); each fit attaches it afresh (its state restarts).
    dataset : map-style dataset, items ``(x, y)``
        The training set (the loader reads ``IndexedDataset(dataset)``).
    batch_size : int, optional
        The loader's batch size: :meth:`train_dataloader` uses it and the
        schedule plans with it (adaptive reselection gives epochs whole
        batches), as ``train(batch_size=...)`` does.
    labels : array, optional
        Class ids of the rows (default: read from ``dataset``).
    random_state : int
        Seed of the schedule, as ``train(random_state=...)``.
    model : str, optional
        Attribute of the LightningModule holding the network the schedule
        looks at (adaptive reselection's gradient proxies call it on a batch
        of ``x`` and hook its last ``nn.Linear``); default: the
        LightningModule itself, whose ``forward(x)`` must return the logits.

    After ``fit``: :attr:`epoch_sizes` (rows whose losses went through
    ``rescale``, per epoch), :attr:`sample_gradients` (their sum),
    :attr:`epoch_rows` (each epoch's planned rows, in order).
    """

    def __init__(self, schedule, dataset, *, batch_size=None, labels=None, random_state=0, model=None):
        from .._validation import check_int

        for name in ("attach", "on_epoch_start", "epoch_indices", "rescale"):
            if not callable(getattr(schedule, name, None)):
                raise ValidationError(f"schedule must have the schedule protocol (attach, on_epoch_start, "
                                      f"epoch_indices, rescale); {type(schedule).__name__} has no {name}()")
        self.schedule = schedule
        self.dataset = dataset
        self.batch_size = None if batch_size is None else check_int(batch_size, "batch_size", low=1)
        self.labels = labels
        self.random_state = check_int(random_state, "random_state", low=0)
        self.model = model
        self.sampler = _EpochSampler(self)
        self.epoch_sizes: list[int] = []
        self.epoch_rows: list[np.ndarray] = []
        self._trainer = self._module = None
        self._device = self._epoch = self._rows = None
        self._done, self._open = 0, False

    # ------------------------------------------------------------ the loader
    def train_dataloader(self, batch_size=None, **loader_kwargs):
        """A ``DataLoader`` over ``IndexedDataset(dataset)`` (batches
        ``(x, y, rows)``) driven by this callback's sampler. ``loader_kwargs``
        go to ``DataLoader`` (``num_workers``, ``pin_memory``, ...); a
        ``sampler``, ``batch_sampler`` or ``shuffle`` is refused (the schedule
        orders the rows)."""
        from .._validation import check_int

        for key in ("sampler", "batch_sampler", "shuffle"):
            if key in loader_kwargs:
                raise ValidationError(f"{key}= is not accepted: the schedule chooses and orders the rows")
        if batch_size is not None:
            self.batch_size = check_int(batch_size, "batch_size", low=1)
        if self.batch_size is None:
            raise ValidationError("give batch_size (here or to CoresetCallback)")
        return torch.utils.data.DataLoader(IndexedDataset(self.dataset), batch_size=self.batch_size,
                                           sampler=self.sampler, **loader_kwargs)

    def total_steps(self, batch_size=None):
        """Optimizer steps of the whole fit (for OneCycleLR and friends), or
        None when the schedule's epoch lengths are not known up front
        (``DynamicPruning`` without ``fixed_length``)."""
        b = batch_size or self.batch_size
        if b is None:
            raise ValidationError("give batch_size (here or to CoresetCallback)")
        self._attach()
        return self.schedule.total_steps(int(b))

    # ------------------------------------------------------------- the state
    def _network(self):
        if self.model is None:
            return self._module
        net = getattr(self._module, self.model, None)
        if not isinstance(net, torch.nn.Module):
            raise ValidationError(f"model={self.model!r}: the LightningModule has no nn.Module attribute of that name")
        return net

    def _attach(self):
        """Attach the schedule (once per device); needs the trainer (``setup``)."""
        if self._trainer is None:
            raise ValidationError("the callback is not in a fit: pass it to Trainer(callbacks=[...])")
        device = self._module.device if self._module is not None else torch.device("cpu")
        if self._device == device:
            return
        trainer = self._trainer
        epochs = trainer.max_epochs
        if epochs is None or epochs < 1:
            raise ValidationError(f"Trainer(max_epochs=...) must be set to a number of epochs >= 1 (the schedule "
                                  f"plans per epoch); got max_epochs={epochs}")
        y = dataset_labels(self.dataset, self.labels)
        dev = str(device)
        self.schedule.attach(self.dataset, epochs=int(epochs), labels=y, random_state=self.random_state,
                             batch_size=self.batch_size, device=dev, fetcher=BatchFetcher(self.dataset, dev))
        self.epochs = int(epochs)
        self._device, self._epoch, self._rows = device, None, None
        self.epoch_sizes, self.epoch_rows, self._done, self._open = [], [], 0, False

    def _prepare(self, epoch):
        """Decide epoch ``epoch``'s rows (once)."""
        self._attach()
        epoch = min(int(epoch), self.epochs - 1)
        if epoch == self._epoch:
            return
        if self._epoch is not None and epoch != self._epoch + 1:
            raise ValidationError(f"the schedule goes one epoch at a time; asked for epoch {epoch} after {self._epoch}")
        self._close_epoch()
        self.schedule.on_epoch_start(epoch, self._network())
        self._rows = np.asarray(self.schedule.epoch_indices(), dtype=np.int64)
        self._epoch, self._done, self._open = epoch, 0, True
        self.epoch_rows.append(self._rows)

    def _close_epoch(self):
        """Record the epoch that ends: rows trained, and the loss contract checked."""
        if not self._open:
            return
        self._open = False
        planned = int(self._rows.size)
        if self._done == 0 and planned:
            raise ValidationError(
                f"epoch {self._epoch}: no per-sample losses reached CoresetCallback.rescale(rows, losses); the "
                "LightningModule's training_step must pass its losses (reduction='none') through it (or "
                "self.coreset_loss with CoresetLossMixin): the schedule weights and ranks rows by them")
        if self._done != planned:
            log.warning("epoch %d: %d of the %d planned rows were trained on (limit_train_batches?)",
                        self._epoch, self._done, planned)
        self.epoch_sizes.append(int(self._done))

    def _current_rows(self) -> np.ndarray:
        if self._trainer is None:
            raise ValidationError("the callback's sampler runs inside a fit: pass the callback to "
                                  "Trainer(callbacks=[...])")
        self._prepare(self._trainer.current_epoch if self._epoch is None else
                      max(self._epoch, self._trainer.current_epoch))
        return self._rows

    @property
    def sample_gradients(self) -> int:
        """Rows trained on so far (losses through :meth:`rescale`)."""
        return int(sum(self.epoch_sizes) + (self._done if self._open else 0))

    # ------------------------------------------------------------- the loss
    def rescale(self, rows, losses):
        """Per-sample ``losses`` (one per row of the batch, from a
        ``reduction="none"`` loss) recorded by the schedule and returned
        weighted; take their mean as the training loss."""
        if self._epoch is None:
            raise ValidationError("rescale is called during training (training_step) of a fit with this callback")
        out = self.schedule.rescale(rows, losses)
        self._done += int(losses.shape[0])
        return out

    # ------------------------------------------------------------ the hooks
    def setup(self, trainer, pl_module, stage):
        # before configure_optimizers, which may size the loader (total_steps, estimated_stepping_batches)
        self._trainer, self._module = trainer, pl_module
        if str(getattr(stage, "value", stage)) == "fit":
            self._device = None  # a new fit attaches the schedule afresh

    def on_fit_start(self, trainer, pl_module):
        self._trainer, self._module = trainer, pl_module
        if trainer.world_size > 1:
            raise ValidationError(f"CoresetCallback runs in one process; got a Trainer with world_size="
                                  f"{trainer.world_size} (DDP is not supported: the schedule's state lives in one "
                                  "process)")
        if trainer.current_epoch > 0:
            raise ValidationError(f"resuming a fit at epoch {trainer.current_epoch} is not supported: the "
                                  "schedule's state (recorded losses, selections) is not in the checkpoint")
        self._attach()  # on the module's device now (a re-attach if the loader was sized on another device)
        if not self._fixed_length() and trainer.reload_dataloaders_every_n_epochs != 1:
            raise ValidationError(
                f"{type(self.schedule).__name__} trains on epochs of different lengths: "
                f"Trainer(reload_dataloaders_every_n_epochs=1) is required (the loader's length is read again each "
                f"epoch); got reload_dataloaders_every_n_epochs={trainer.reload_dataloaders_every_n_epochs}")
        self._prepare(0)

    def _fixed_length(self) -> bool:
        sizes = getattr(self.schedule, "epoch_sizes", None)
        if isinstance(sizes, (list, tuple)) and sizes:
            return len(set(sizes)) == 1
        return isinstance(getattr(self.schedule, "epoch_size", None), int) and not hasattr(self.schedule,
                                                                                          "prune_ratio")

    def on_train_epoch_end(self, trainer, pl_module):
        if self._epoch is None:
            return
        if self._epoch + 1 < self.epochs and not trainer.should_stop:
            self._prepare(self._epoch + 1)  # decided on the trained model, before the next loader is built
        else:
            self._close_epoch()

    def on_fit_end(self, trainer, pl_module):
        if self._open and self._done:  # a fit stopped inside an epoch
            self._close_epoch()


def find_coreset_callback(trainer) -> CoresetCallback:
    """The one :class:`CoresetCallback` of ``trainer``."""
    found = [cb for cb in getattr(trainer, "callbacks", []) if isinstance(cb, CoresetCallback)]
    if len(found) != 1:
        raise ValidationError(f"the Trainer must have exactly one CoresetCallback; it has {len(found)}")
    return found[0]


class CoresetLossMixin:
    """For a LightningModule trained with a :class:`CoresetCallback`:

    >>> class Net(CoresetLossMixin, L.LightningModule):
    ...     def training_step(self, batch, batch_idx):
    ...         x, y, rows = batch
    ...         losses = F.cross_entropy(self(x), y, reduction="none")
    ...         return self.coreset_loss(losses, rows)
    """

    def coreset_loss(self, losses, rows):
        """The training loss: the mean of the schedule's weighted per-sample ``losses``."""
        if not hasattr(losses, "ndim") or losses.ndim != 1:
            shape = tuple(getattr(losses, "shape", ()))
            raise ValidationError(f"losses must hold one value per row (a loss built with reduction='none'); "
                                  f"got shape {shape}")
        return find_coreset_callback(self.trainer).rescale(rows, losses).mean()
