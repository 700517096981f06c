"""Lightning callbacks: a real ``Trainer.fit`` on CPU driven by a coreset
schedule trains on the same rows, epoch by epoch, as
``coreset.pipelines.train`` with the same schedule and seed, and ends with
the same weights (same batches, same SGD steps: equal to float rounding;
in practice bit for bit). Lightning's import is slow: one fit runs in CI,
the other schedules and the error paths are marked slow."""

import copy
import logging

import numpy as np
import pytest
import torch

import lightning.pytorch as L  # the test extra installs it: pip install -e ".[test]"

from coreset.exceptions import ValidationError
from coreset.integrations.lightning import CoresetCallback, CoresetLossMixin, find_coreset_callback
from coreset.pipelines import AdaptiveReselection, DynamicPruning, ResampleSchedule, train

N, D, C, B, E, LR = 240, 8, 4, 32, 6, 0.05
#: the documented tolerance on the final weights of the two loops (same batches, same steps)
ATOL = 1e-6


class Recorder:
    """A schedule that remembers the rows it hands out for each epoch."""

    def __init__(self, inner):
        self.inner, self.rows = inner, {}

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def epoch_indices(self):
        rows = self.inner.epoch_indices()
        self.rows[self.inner.epoch] = np.array(rows)
        return rows


class Module(CoresetLossMixin, L.LightningModule):
    def __init__(self, net, *, use_rescale=True, scheduler_steps=None):
        super().__init__()
        self.net, self.use_rescale, self.scheduler_steps = net, use_rescale, scheduler_steps
        self.batches = []  # rows of every training batch, in order
        self.validated = []  # the epoch of every validation batch

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y, rows = batch
        self.batches.append(rows.cpu().numpy().copy())
        losses = torch.nn.functional.cross_entropy(self(x), y, reduction="none")
        return self.coreset_loss(losses, rows) if self.use_rescale else losses.mean()

    def validation_step(self, batch, batch_idx):
        self.validated.append(self.current_epoch)

    def train_dataloader(self):  # used only when fit() gets no loader: the callback's, rebuilt each epoch
        return find_coreset_callback(self.trainer).train_dataloader()

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=LR, momentum=0.9)
        if self.scheduler_steps is None:
            return opt
        total = self.scheduler_steps(self.trainer)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(N) % C
    X = torch.randn(C, D, generator=g)[y] * 2 + torch.randn(N, D, generator=g)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(D, 16), torch.nn.ReLU(), torch.nn.Linear(16, C))
    return torch.utils.data.TensorDataset(X, y), net


def trainer(tmp_path, cb, epochs=E, **kw):
    kw.setdefault("reload_dataloaders_every_n_epochs", 1)
    return L.Trainer(max_epochs=epochs, callbacks=[cb], accelerator="cpu", devices=1, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     default_root_dir=tmp_path, **kw)


def fit_both(make_schedule, data, tmp_path, seed=3, lr_scheduler=False, loader_hook=False, **cb_kwargs):
    """(TrainResult, rows by epoch, net) of ``train`` and (callback, module, net) of Lightning."""
    ds, net0 = data
    rec = Recorder(make_schedule())
    net_a = copy.deepcopy(net0)
    sched = (lambda opt, total: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=total)) \
        if lr_scheduler else None
    res = train(net_a, ds, schedule=rec, epochs=E, batch_size=B, lr=LR, momentum=0.9, device="cpu",
                random_state=seed, lr_scheduler=sched)
    cb = CoresetCallback(make_schedule(), ds, batch_size=B, random_state=seed, **cb_kwargs)
    net_b = copy.deepcopy(net0)
    module = Module(net_b, scheduler_steps=(lambda tr: cb.total_steps()) if lr_scheduler else None)
    val = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(16)), batch_size=16)
    loader = None if loader_hook else cb.train_dataloader()
    trainer(tmp_path, cb, num_sanity_val_steps=0).fit(module, train_dataloaders=loader, val_dataloaders=val)
    return (res, rec.rows, net_a), (cb, module, net_b)


def assert_same_training(ref, got):
    (res, rows, net_a), (cb, module, net_b) = ref, got
    assert len(cb.epoch_rows) == E
    for e in range(E):  # the same rows, in the same order, every epoch
        np.testing.assert_array_equal(cb.epoch_rows[e], rows[e], err_msg=f"epoch {e}")
    # the loader yielded exactly those rows to training_step, in batches of B
    np.testing.assert_array_equal(np.concatenate(module.batches), np.concatenate([rows[e] for e in range(E)]))
    assert cb.epoch_sizes == res.epoch_sizes
    assert module.validated == list(range(E))  # validation still ends every (shorter) epoch
    assert cb.sample_gradients == res.sample_gradients == sum(rows[e].size for e in range(E))
    for a, b in zip(net_a.parameters(), net_b.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=ATOL)


def test_pruning_callback_trains_on_the_rows_train_trains_on(data, tmp_path):
    ref, got = fit_both(lambda: DynamicPruning(prune_ratio=0.5, delta=0.2), data, tmp_path)
    cb = got[0]
    # the expected number of sample-gradients: full first and annealed epochs, pruned ones in between
    anneal = E - int(np.ceil(0.2 * E))
    assert [s == N for s in cb.epoch_sizes] == [e == 0 or e >= anneal for e in range(E)]
    assert all(s < N for s in cb.epoch_sizes[1:anneal])
    assert_same_training(ref, got)


def test_the_callback_checks_its_arguments(data):
    ds, _ = data
    with pytest.raises(ValidationError, match="schedule protocol"):
        CoresetCallback(object(), ds)
    cb = CoresetCallback(DynamicPruning(), ds)
    with pytest.raises(ValidationError, match="give batch_size"):
        cb.train_dataloader()
    with pytest.raises(ValidationError, match="shuffle= is not accepted"):
        cb.train_dataloader(8, shuffle=True)
    loader = cb.train_dataloader(8)
    with pytest.raises(ValidationError, match="Trainer"):
        next(iter(loader))  # outside a fit the sampler has no epoch to serve


@pytest.mark.slow
@pytest.mark.parametrize("make, cb_kwargs", [
    (lambda: AdaptiveReselection(fraction=0.3, every=2, kappa=0.3), {}),
    (lambda: AdaptiveReselection(fraction=0.3, every=2), {"model": "net"}),  # proxies from the sub-module
    (lambda: ResampleSchedule(fraction=0.25), {}),
], ids=["adaptive", "adaptive-submodule", "resample"])
def test_other_schedules_match_train(make, cb_kwargs, data, tmp_path):
    assert_same_training(*fit_both(make, data, tmp_path, **cb_kwargs))


@pytest.mark.slow
def test_a_step_lr_schedule_sized_by_total_steps(data, tmp_path):
    ref, got = fit_both(lambda: DynamicPruning(0.4, 0.2, fixed_length=True), data, tmp_path, lr_scheduler=True,
                        loader_hook=True)
    assert_same_training(ref, got)
    assert sum(-(-s // B) for s in got[0].epoch_sizes) == got[0].total_steps() == ref[0].steps


@pytest.mark.slow
def test_a_module_that_skips_rescale_is_refused(data, tmp_path):
    ds, net0 = data
    cb = CoresetCallback(DynamicPruning(0.5), ds, batch_size=B)
    with pytest.raises(ValidationError, match="epoch 0: no per-sample losses reached CoresetCallback.rescale"):
        trainer(tmp_path, cb).fit(Module(copy.deepcopy(net0), use_rescale=False),
                                  train_dataloaders=cb.train_dataloader())


@pytest.mark.slow
def test_varying_epochs_need_reloaded_loaders_and_max_epochs(data, tmp_path, caplog):
    ds, net0 = data
    cb = CoresetCallback(DynamicPruning(0.5), ds, batch_size=B)
    with pytest.raises(ValidationError, match=r"reload_dataloaders_every_n_epochs=1\) is required.*got "
                                              r"reload_dataloaders_every_n_epochs=0"):
        trainer(tmp_path, cb, reload_dataloaders_every_n_epochs=0).fit(
            Module(copy.deepcopy(net0)), train_dataloaders=cb.train_dataloader())
    cb = CoresetCallback(DynamicPruning(0.5), ds, batch_size=B)
    with pytest.raises(ValidationError, match=r"max_epochs=.*got max_epochs=-1"):
        trainer(tmp_path, cb, epochs=-1, max_steps=3).fit(Module(copy.deepcopy(net0)),
                                                          train_dataloaders=cb.train_dataloader())
    # a fixed epoch length needs no reload
    cb = CoresetCallback(ResampleSchedule(0.25), ds, batch_size=B)
    with caplog.at_level(logging.WARNING, logger="coreset"):
        trainer(tmp_path, cb, epochs=2, reload_dataloaders_every_n_epochs=0).fit(
            Module(copy.deepcopy(net0)), train_dataloaders=cb.train_dataloader())
    assert cb.epoch_sizes == [60, 60]
    assert not [r for r in caplog.records if r.name.startswith("coreset") and r.levelno >= logging.WARNING]


@pytest.mark.slow
def test_the_docs_snippet_runs(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    text = (Path(__file__).resolve().parents[1] / "docs" / "integrations.md").read_text(encoding="utf-8")
    block = re.findall(r"```python\n(.*?)```", text, flags=re.S)[1]
    scope = {}
    exec(compile(block, "docs/integrations.md", "exec"), scope)
    cb = scope["cb"]
    assert len(cb.epoch_sizes) == 8 and cb.epoch_sizes[0] == cb.epoch_sizes[-1] == 600
    assert min(cb.epoch_sizes) < 600 and cb.sample_gradients == sum(cb.epoch_sizes)


@pytest.mark.slow
def test_a_second_fit_starts_the_schedule_afresh(data, tmp_path):
    ds, net0 = data
    cb = CoresetCallback(DynamicPruning(0.5, 0.2), ds, batch_size=B, random_state=3)
    sizes = []
    for _ in range(2):  # the same initial weights: the same run twice
        trainer(tmp_path, cb).fit(Module(copy.deepcopy(net0)), train_dataloaders=cb.train_dataloader())
        sizes.append(list(cb.epoch_sizes))
    assert sizes[0] == sizes[1] == [240, 182, 168, 163, 240, 240]
