"""Training on a selection: samplers (one process and a real 2-process gloo
group), the weighted subset, ``train`` / ``evaluate``, and the bad inputs
refused before training starts."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from coreset import Selection, ValidationError  # noqa: E402
from coreset.data import input_fingerprint  # noqa: E402
from coreset.pipelines import (  # noqa: E402
    CoresetSampler,
    DistributedCoresetSampler,
    WeightedSubset,
    evaluate,
    normalize_weights,
    train,
)

N, D, C = 120, 6, 4


def make_data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((C, D)) * 3
    y = rng.integers(0, C, size=n)
    X = (centers[y] + rng.standard_normal((n, D))).astype(np.float32)
    return X, y.astype(np.int64)


def tensor_ds(X, y):
    return torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(y))


class ListDataset(torch.utils.data.Dataset):
    """A plain map-style dataset (not a TensorDataset): exercises the item-by-item path."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return torch.tensor(self.X[i]), int(self.y[i])


def mlp(seed=0, out=C):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(D, 16), torch.nn.ReLU(), torch.nn.Linear(16, out))


def a_selection(k=30, seed=1):
    rng = np.random.default_rng(seed)
    idx = rng.choice(N, size=k, replace=False)
    return Selection(idx, rng.integers(1, 6, size=k).astype(float), np.zeros(k))


# ------------------------------------------------------------------ samplers


def test_sampler_yields_each_selected_index_once_per_epoch_with_aligned_weights():
    sel = a_selection()
    s = CoresetSampler(sel, random_state=3)
    orders = []
    for epoch in range(3):
        s.set_epoch(epoch)
        order = np.array(list(s))
        assert len(order) == len(s) == len(sel)
        assert np.array_equal(np.sort(order), np.sort(sel.indices))  # only selected rows, each exactly once
        orders.append(order)
        w = s.weights_of(order)
        expected = {int(i): float(v) * len(sel) / sel.weights.sum() for i, v in zip(sel.indices, sel.weights)}
        assert np.allclose(w, [expected[int(i)] for i in order])
    assert not np.array_equal(orders[0], orders[1])  # a fresh order each epoch
    s.set_epoch(1)
    assert np.array_equal(np.array(list(s)), orders[1])  # the same epoch gives the same order
    assert np.isclose(s.weights.mean(), 1.0)
    with pytest.raises(ValidationError, match="not in the selection"):
        s.weights_of([int(np.setdiff1d(np.arange(N), sel.indices)[0])])


def test_normalize_weights_hand_computed():
    w = np.array([1.0, 2.0, 3.0, 6.0])
    assert np.allclose(normalize_weights(w, "mean"), [1 / 3, 2 / 3, 1, 2])
    assert np.allclose(normalize_weights(w, "sum"), w / 12)
    assert np.allclose(normalize_weights(w, "none"), 1)
    assert np.allclose(normalize_weights(w, None), w)
    with pytest.raises(ValidationError, match="normalize"):
        normalize_weights(w, "max")


def test_weighted_subset_items_match_the_dataset_rows():
    X, y = make_data()
    sel = a_selection()
    sub = WeightedSubset(ListDataset(X, y), sel)
    assert len(sub) == len(sel)
    for i in (0, 7, len(sel) - 1):
        x, label, w = sub[i]
        j = sel.indices[i]
        assert torch.equal(x, torch.tensor(X[j])) and label == y[j]
        assert np.isclose(float(w), sel.weights[i] * len(sel) / sel.weights.sum())
    batch = next(iter(torch.utils.data.DataLoader(sub, batch_size=len(sub))))
    assert np.isclose(float(batch[2].mean()), 1.0, atol=1e-6)


KS = (40, 41)  # even and odd selection sizes (the odd one is padded)


def _dist_worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        for k in KS:
            idx = np.arange(1000, 1000 + 2 * k, 2)  # any selection: even rows from 1000
            s = DistributedCoresetSampler(idx, random_state=5)
            for epoch in range(2):
                s.set_epoch(epoch)
                mine = torch.tensor(list(s), dtype=torch.int64)
                gathered = [torch.zeros_like(mine) for _ in range(world)]
                dist.all_gather(gathered, mine)  # equal lengths on every rank, or all_gather fails
                if rank == 0:
                    np.save(f"{out_dir}/k{k}-epoch{epoch}.npy", torch.stack(gathered).numpy())
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_distributed_sampler_shards_disjointly_in_a_real_gloo_group(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_dist_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    for k, epoch in [(k, e) for k in KS for e in range(2)]:
        idx = np.arange(1000, 1000 + 2 * k, 2)
        shards = np.load(tmp_path / f"k{k}-epoch{epoch}.npy")
        assert shards.shape == (2, -(-k // 2))  # equal length per rank
        union = np.concatenate(shards)
        assert set(union.tolist()) == set(idx.tolist())  # together they cover the selection
        if k % 2 == 0:
            assert not set(shards[0]) & set(shards[1])  # disjoint
        else:  # padded with exactly one repeat of the epoch order's first index
            assert union.size == k + 1 and np.unique(union).size == k
        oracle = CoresetSampler(idx, random_state=5)
        oracle.set_epoch(epoch)
        full = oracle.order()
        padded = np.concatenate([full, full[: union.size - k]])
        for r in range(2):
            assert np.array_equal(shards[r], padded[r::2])


def test_distributed_sampler_drop_last_and_explicit_ranks():
    idx = np.arange(11)
    shards = [DistributedCoresetSampler(idx, num_replicas=3, rank=r, drop_last=True) for r in range(3)]
    got = [list(s) for s in shards]
    assert all(len(g) == 3 for g in got)
    assert len(set(sum(got, []))) == 9
    with pytest.raises(ValidationError, match="rank"):
        DistributedCoresetSampler(idx, num_replicas=2, rank=2)


# ---------------------------------------------------------------- training


def test_one_weighted_step_equals_the_hand_computed_update():
    """Full-batch SGD without momentum: one step on the selection moves the
    parameters by -lr * grad of mean_i(w_i * CE_i), w normalised to mean 1."""
    X, y = make_data()
    sel = a_selection()
    model = mlp()
    ref = copy.deepcopy(model)
    res = train(model, tensor_ds(X, y), selection=sel, epochs=1, batch_size=len(sel), lr=0.1, momentum=0.0,
                device="cpu")
    w = torch.tensor(sel.weights * len(sel) / sel.weights.sum(), dtype=torch.float32)
    xs, ys = torch.tensor(X[sel.indices]), torch.tensor(y[sel.indices])
    loss = (torch.nn.functional.cross_entropy(ref(xs), ys, reduction="none") * w).mean()
    loss.backward()
    with torch.no_grad():
        for p in ref.parameters():
            p -= 0.1 * p.grad
    for a, b in zip(model.parameters(), ref.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert res.sample_gradients == res.samples_seen == len(sel) and res.steps == 1
    assert res.forward_samples == 0


def test_same_seed_same_result_on_cpu_and_accounting():
    X, y = make_data()
    runs = []
    for seed in (0, 0, 1):
        model = mlp()
        r = train(model, ListDataset(X, y), selection=a_selection().indices, epochs=3, batch_size=8,
                  device="cpu", random_state=seed)
        runs.append((r, torch.cat([p.detach().flatten() for p in model.parameters()])))
    (r0, p0), (r1, p1), (r2, p2) = runs
    assert r0.loss_history == r1.loss_history and torch.equal(p0, p1)
    assert r0.loss_history != r2.loss_history
    assert r0.epoch_sizes == [30, 30, 30] and r0.sample_gradients == 90 and r0.steps == 3 * 4
    assert r0.examples_per_second > 0 and r0.training_seconds <= r0.total_seconds


def test_training_learns_and_evaluate_matches_a_hand_count():
    X, y = make_data()
    model = mlp()
    res = train(model, tensor_ds(X, y), epochs=15, batch_size=16, device="cpu")
    assert res.loss_history[-1] < 0.5 * res.loss_history[0]
    Xt, yt = make_data(seed=0)  # same centres: the model should do well
    ev = evaluate(model, tensor_ds(Xt, yt), device="cpu")
    pred = model(torch.tensor(Xt)).argmax(1).numpy()
    per = [np.mean(pred[yt == c] == c) for c in range(C)]
    assert np.isclose(ev.accuracy, np.mean(pred == yt))
    assert np.allclose(ev.per_class_accuracy, per) and np.isclose(ev.balanced_accuracy, np.mean(per))
    assert ev.balanced_accuracy > 0.8


def test_evaluate_hand_computed_balanced_accuracy():
    model = torch.nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3))
    X = np.eye(3, dtype=np.float32)[[0, 0, 0, 1, 2, 2]]  # predictions: 0 0 0 1 2 2
    y = np.array([0, 0, 1, 1, 2, 0])  # class 0: 2/3, class 1: 1/2, class 2: 1/1
    ev = evaluate(model, tensor_ds(X, y), device="cpu", n_classes=4)
    assert np.isclose(ev.accuracy, 4 / 6)
    assert np.allclose(ev.per_class_accuracy[:3], [2 / 3, 1 / 2, 1.0]) and np.isnan(ev.per_class_accuracy[3])
    assert np.isclose(ev.balanced_accuracy, (2 / 3 + 1 / 2 + 1) / 3)


def test_selection_from_an_index_file_and_lr_scheduler(tmp_path):
    X, y = make_data()
    sel = a_selection()
    sel.save(tmp_path / "sel.npz")
    seen = {}

    def one_cycle(opt, total_steps):
        seen["total"] = total_steps
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=total_steps)

    res = train(mlp(), tensor_ds(X, y), selection=tmp_path / "sel.npz", epochs=2, batch_size=7, device="cpu",
                lr_scheduler=one_cycle)
    assert seen["total"] == res.steps == 2 * 5  # OneCycleLR would raise on a step past total_steps


# ---------------------------------------------------------------- bad input


def test_dataset_shorter_than_the_selection_is_refused():
    X, y = make_data()
    sel = Selection(np.array([3, 5, N + 10]), np.ones(3), np.zeros(3))
    for call in (lambda: train(mlp(), tensor_ds(X, y), selection=sel, epochs=1, device="cpu"),
                 lambda: WeightedSubset(tensor_ds(X, y), sel),
                 lambda: CoresetSampler(sel, n_samples=N)):
        with pytest.raises(ValidationError, match=rf"addresses row {N + 10} but the dataset has {N} rows"):
            call()


def test_labels_out_of_range_for_the_model_are_refused():
    X, y = make_data()
    y = y.copy()
    y[5] = 7
    model = mlp(out=C)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValidationError, match=r"largest label is 7 but the model outputs 4 classes"):
        train(model, tensor_ds(X, y), epochs=1, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # nothing trained


def test_selection_from_different_data_is_refused_by_fingerprint():
    X, y = make_data()
    X2, _ = make_data(seed=9)
    sel = a_selection().with_meta(input_fingerprint=input_fingerprint(X))
    ds = tensor_ds(X, y)
    with pytest.raises(ValidationError, match="made from different data"):
        train(mlp(), ds, selection=sel, epochs=1, device="cpu", embeddings=X2)
    with pytest.raises(ValidationError, match="made from different data"):
        WeightedSubset(ds, sel, fingerprint=input_fingerprint(X2))
    with pytest.raises(ValidationError, match="made from different data"):
        CoresetSampler(sel, embeddings=X2)
    train(mlp(), ds, selection=sel, epochs=1, device="cpu", embeddings=X)  # the right data passes


def test_loss_without_per_sample_reduction_is_refused():
    X, y = make_data()
    with pytest.raises(ValidationError, match=r"reduction='none'.*reduction='mean'"):
        train(mlp(), tensor_ds(X, y), epochs=1, device="cpu", loss=torch.nn.CrossEntropyLoss())
    with pytest.raises(ValidationError, match=r"one value per sample"):
        train(mlp(), tensor_ds(X, y), epochs=1, device="cpu",
              loss=lambda out, t: torch.nn.functional.cross_entropy(out, t))


def test_parameter_errors_name_the_parameter():
    X, y = make_data()
    with pytest.raises(ValidationError, match="epochs"):
        train(mlp(), tensor_ds(X, y), epochs=0, device="cpu")
    with pytest.raises(ValidationError, match="selection= or schedule="):
        from coreset.pipelines import DynamicPruning

        train(mlp(), tensor_ds(X, y), epochs=1, selection=a_selection(), schedule=DynamicPruning(), device="cpu")
    with pytest.raises(ValidationError, match="distinct"):
        CoresetSampler(np.array([1, 1, 2]))


@pytest.mark.gpu
def test_amp_training_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    X, y = make_data()
    model = mlp()
    res = train(model, tensor_ds(X, y), epochs=5, batch_size=16, device="cuda")
    assert res.device == "cuda" and res.loss_history[-1] < res.loss_history[0]
    assert evaluate(model, tensor_ds(X, y), device="cuda").accuracy > 0.5
