"""Dynamic pruning: the well-learned rule (per class and InfoBatch's global
one) on hand-set losses, the rescaling, every class kept every epoch, full
data in the annealing epochs, fixed-length epochs for step-based LR
schedulers, and refusing losses that are not per sample."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from coreset import ValidationError  # noqa: E402
from coreset.pipelines import DynamicPruning, IndexedDataset, train  # noqa: E402

D = 6


def zipf_data(seed=0, sizes=(80, 40, 20, 8, 3, 1)):
    rng = np.random.default_rng(seed)
    c = len(sizes)
    y = np.repeat(np.arange(c), sizes)
    rng.shuffle(y)
    centers = rng.standard_normal((c, D)) * 3
    X = (centers[y] + rng.standard_normal((y.size, D))).astype(np.float32)
    return torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(y)), y


def mlp(c=6, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(D, 16), torch.nn.ReLU(), torch.nn.Linear(16, c))


def record(pr, losses):
    pr.rescale(np.arange(losses.size), torch.tensor(losses, dtype=torch.float64))


def test_well_learned_rule_by_class_and_global_on_hand_set_losses():
    y = np.array([0, 0, 0, 0, 1, 1])
    losses = np.array([1.0, 2.0, 3.0, 10.0, 0.1, 0.2])  # class means 4 and 0.15; global mean 16.3 / 6
    ca = DynamicPruning(0.5, rule="class_aware", min_per_class=0).attach(labels=y, epochs=10)
    ib = DynamicPruning(0.5, rule="infobatch").attach(labels=y, epochs=10)
    record(ca, losses)
    record(ib, losses)
    assert ca._well_learned().tolist() == [True, True, True, False, True, False]
    assert ib._well_learned().tolist() == [True, True, False, False, True, True]


def test_prune_rates_and_rescaling_within_each_class():
    """Two classes on different loss scales: InfoBatch's global mean prunes
    (almost) only the low-loss class; the per-class rule prunes within both."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 1000)
    losses = np.concatenate([rng.uniform(0, 1, 1000), rng.uniform(5, 6, 1000)])
    r = 0.6
    for rule, expect in (("class_aware", (0.5 * r, 0.5 * r)), ("infobatch", (r, 0.0))):
        pr = DynamicPruning(r, rule=rule).attach(labels=y, epochs=10)
        record(pr, losses)
        well = pr._well_learned()
        pr.on_epoch_start(1)
        kept = np.zeros(y.size, bool)
        kept[pr.epoch_indices()] = True
        for c in (0, 1):
            rate = 1 - kept[y == c].mean()
            assert abs(rate - expect[c]) < 0.05, (rule, c, rate)
        assert not (~kept & ~well).any()  # only well-learned rows are skipped
        out = pr.rescale(np.arange(y.size), torch.ones(y.size, dtype=torch.float64)).numpy()
        assert np.allclose(out[kept & well], 1 / (1 - r)) and np.allclose(out[~(kept & well)], 1.0)


def test_every_class_kept_every_epoch_and_full_data_when_annealing():
    ds, y = zipf_data()
    sched = DynamicPruning(0.7, delta=0.25, min_per_class=1)
    res = train(mlp(), ds, schedule=sched, epochs=12, batch_size=16, device="cpu")
    n = y.size
    anneal = 12 - int(np.ceil(0.25 * 12))
    assert sched.anneal_start == anneal == 9
    for h in sched.history:
        assert all(k >= 1 for k in h["kept_per_class"]), h  # every class, the 1-row one too
        if h["epoch"] == 0 or h["epoch"] >= anneal:
            assert h["kept"] == n  # full data first and in the annealing epochs
    assert res.epoch_sizes == [h["kept"] for h in sched.history]
    assert min(res.epoch_sizes[1:anneal]) < n and res.sample_gradients < 12 * n  # it does prune


def test_floor_and_protection_versus_infobatch_on_a_singleton_class():
    y = np.array([0] * 50 + [1] * 50 + [2])
    losses = np.concatenate([np.linspace(0, 1, 50), np.linspace(0, 1, 50), [0.0]])  # the singleton: loss 0
    dropped = {"class_aware": 0, "infobatch": 0}
    for rule in dropped:
        pr = DynamicPruning(0.9, rule=rule, min_per_class=1).attach(labels=y, epochs=40, random_state=1)
        for epoch in range(1, 30):
            record(pr, losses)
            pr.on_epoch_start(epoch)
            dropped[rule] += int(100 not in pr.epoch_indices())
    assert dropped["class_aware"] == 0 and dropped["infobatch"] > 15  # InfoBatch drops the whole class
    pr = DynamicPruning(0.9, min_per_class=0, protect_below=10).attach(labels=y, epochs=40)
    record(pr, np.concatenate([np.linspace(0, 1, 50), np.linspace(0, 1, 50), [-1.0]]))
    assert not pr._well_learned()[100]  # a class below protect_below is never pruned


def test_fixed_length_epochs_keep_step_schedulers_working():
    ds, y = zipf_data()
    n, bs, epochs = y.size, 16, 8
    sched = DynamicPruning(0.5, delta=0.25, fixed_length=True)
    seen = {}

    def one_cycle(opt, total_steps):
        seen["total"] = total_steps
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=total_steps)

    res = train(mlp(), ds, schedule=sched, epochs=epochs, batch_size=bs, device="cpu", lr_scheduler=one_cycle)
    length = round(n * 0.75)
    assert res.epoch_sizes == [n] + [length] * 5 + [n] * 2
    assert seen["total"] == res.steps == sched.total_steps(bs)
    for h in sched.history:
        assert all(k >= 1 for k in h["kept_per_class"])
    with pytest.raises(ValidationError, match="fixed_length=True"):
        train(mlp(), ds, schedule=DynamicPruning(0.5), epochs=2, device="cpu", lr_scheduler=one_cycle)


def test_fixed_length_rescales_by_the_realised_keep_rate():
    y = np.repeat([0, 1], 100)
    losses = np.tile(np.linspace(0, 1, 100), 2)
    pr = DynamicPruning(0.5, fixed_length=True, epoch_size=150).attach(labels=y, epochs=5)
    record(pr, losses)
    well = pr._well_learned()
    pr.on_epoch_start(1)
    kept = np.zeros(200, bool)
    kept[pr.epoch_indices()] = True
    assert kept.sum() == 150 and not (~kept & ~well).any()
    out = pr.rescale(np.arange(200), torch.ones(200, dtype=torch.float64)).numpy()
    for c in (0, 1):
        m = (y == c) & well
        assert np.allclose(out[m & kept], m.sum() / (m & kept).sum())  # sum over kept = sum over all
        assert np.isclose(out[m & kept].sum(), m.sum())


def test_losses_that_are_not_per_sample_are_refused():
    ds, y = zipf_data()
    with pytest.raises(ValidationError, match=r"reduction='none'"):
        train(mlp(), ds, schedule=DynamicPruning(), epochs=2, device="cpu", loss=torch.nn.CrossEntropyLoss())
    pr = DynamicPruning().attach(ds, epochs=3)
    pr.on_epoch_start(0)
    with pytest.raises(ValidationError, match=r"one value per row.*reduction='none'"):
        pr.rescale(np.arange(4), torch.tensor(1.0))


def test_user_loop_and_same_seed_same_result():
    ds, y = zipf_data()
    results = []
    for _ in range(2):
        model = mlp()
        pr = DynamicPruning(0.5, delta=0.2).attach(ds, epochs=5, random_state=3)
        loader = torch.utils.data.DataLoader(IndexedDataset(ds), batch_size=16, sampler=pr.sampler)
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        torch.manual_seed(0)
        for epoch in range(5):
            pr.on_epoch_start(epoch)
            rows_seen = []
            for x, t, rows in loader:
                loss = pr.rescale(rows, torch.nn.functional.cross_entropy(model(x), t, reduction="none")).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                rows_seen.extend(rows.tolist())
            assert sorted(rows_seen) == sorted(pr.epoch_indices().tolist())
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(results[0], results[1])
    a = train(mlp(), ds, schedule=DynamicPruning(0.5), epochs=4, device="cpu", random_state=1)
    b = train(mlp(), ds, schedule=DynamicPruning(0.5), epochs=4, device="cpu", random_state=1)
    assert a.loss_history == b.loss_history and a.epoch_sizes == b.epoch_sizes


def test_pruning_parameter_errors():
    with pytest.raises(ValidationError, match="prune_ratio"):
        DynamicPruning(1.0)
    with pytest.raises(ValidationError, match="rule"):
        DynamicPruning(rule="global")
    with pytest.raises(ValidationError, match="epoch_size"):
        DynamicPruning(epoch_size=10_000, fixed_length=True).attach(labels=np.zeros(5, int), epochs=2)
