"""Adaptive reselection: exactly every R epochs, the warm start keeps the
sample-gradient total at the budget, the picks are the engine's facility
location on hand-checked gradient proxies, and models hooks cannot reach
get a clear error."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import coreset  # noqa: E402
from coreset import ValidationError  # noqa: E402
from coreset.pipelines import AdaptiveReselection, IndexedDataset, gradient_proxies, train  # noqa: E402
from coreset.pipelines._dataset import BatchFetcher  # noqa: E402

N, D, C = 120, 6, 4


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((C, D)) * 3
    y = np.repeat(np.arange(C), [60, 35, 20, 5])
    rng.shuffle(y)
    X = (centers[y] + rng.standard_normal((N, D))).astype(np.float32)
    return torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(y)), X, y


def mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(D, 16), torch.nn.ReLU(), torch.nn.Linear(16, C))


def test_reselection_happens_exactly_every_R_epochs():
    ds, _, y = make_data()
    sched = AdaptiveReselection(0.25, every=3)
    res = train(mlp(), ds, schedule=sched, epochs=10, batch_size=16, device="cpu")
    assert [r["epoch"] for r in res.reselections] == [0, 3, 6, 9]
    assert res.forward_samples == 4 * N  # one forward pass over every row per reselection
    assert all(r["forward_samples"] == N and r["seconds"] > 0 for r in res.reselections)
    assert res.sample_gradients == round(0.25 * 10 * N) == sum(res.epoch_sizes)
    assert np.isclose(res.selection_seconds, sum(r["seconds"] for r in res.reselections))


@pytest.mark.parametrize("fraction,kappa,epochs,warm", [(0.3, 0.5, 10, 1), (0.5, 0.6, 7, 2), (0.2, 0.0, 6, 0),
                                                        (0.3, 0.2, 10, 0)])
def test_warm_start_keeps_the_sample_gradient_total_at_the_budget(fraction, kappa, epochs, warm):
    ds, _, _ = make_data()
    sched = AdaptiveReselection(fraction, every=2, kappa=kappa)
    res = train(mlp(), ds, schedule=sched, epochs=epochs, batch_size=32, device="cpu")
    budget = round(fraction * epochs * N)
    assert res.sample_gradients == budget
    assert sched.warm_epochs == warm == int(np.floor(kappa * fraction * epochs))
    assert res.epoch_sizes[:warm] == [N] * warm  # full data first
    sub = res.epoch_sizes[warm:]
    assert max(sub) < N and sched.n_select == max(sub)
    rest = budget - warm * N
    if rest // 32 >= len(sub):  # whole batches: the fewest steps the budget allows, one partial batch at most
        assert res.steps == warm * -(-N // 32) + -(-rest // 32)
        assert all(s % 32 == 0 for s in sub[1:]) and max(sub[1:]) - min(sub[1:]) <= 32
    else:  # fewer rows than a batch per epoch: sizes differ by one row at most
        assert max(sub) - min(sub) <= 1
    assert [r["epoch"] for r in res.reselections] == list(range(warm, epochs, 2))


def test_epoch_plan_in_whole_batches_by_hand():
    from coreset.pipelines._adaptive import plan_epochs

    # digits-lt's adaptive plan: 5,600 rows over 41 epochs, batch 32 -> 175 full batches, none partial
    sizes = plan_epochs(5600, 41, 280, 32)
    assert sizes == [160] * 11 + [128] * 30 and sum(-(-s // 32) for s in sizes) == 175
    assert sum(-(-s // 32) for s in plan_epochs(5600, 41, 280)) == 205  # the row plan: 136-137 rows, 5 steps each
    assert plan_epochs(10, 3, 280) == [4, 3, 3]
    assert plan_epochs(100, 3, 280, 32) == [36, 32, 32]  # the 4 rows left over: one partial batch, first
    assert plan_epochs(50, 3, 280, 32) == [17, 17, 16]  # no full batch per epoch: by rows
    assert plan_epochs(810, 3, 280, 32) == [270, 270, 270]  # 9 batches + 10 rows would exceed the 280 rows


def test_gradient_proxies_match_a_hand_computation():
    ds, X, y = make_data()
    model = mlp(3)
    G = gradient_proxies(model, BatchFetcher(ds, "cpu"), y, batch_size=50)
    with torch.no_grad():
        p = torch.softmax(model(torch.tensor(X)), 1).numpy()
    p[np.arange(N), y] -= 1
    assert np.allclose(G, p, atol=1e-6)
    Gf = gradient_proxies(model, BatchFetcher(ds, "cpu"), y, features=True)
    with torch.no_grad():
        h = model[1](model[0](torch.tensor(X))).numpy()
    assert np.allclose(Gf, np.hstack([p, h]), atol=1e-5)


def test_picks_are_the_engines_per_class_facility_location_in_a_user_loop():
    ds, _, y = make_data()
    model = mlp()
    sched = AdaptiveReselection(0.2, every=2, min_per_class=1).attach(ds, epochs=4, random_state=2)
    loader = torch.utils.data.DataLoader(IndexedDataset(ds), batch_size=10, sampler=sched.sampler)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for epoch in range(4):
        sched.on_epoch_start(epoch, model)
        if epoch in (0, 2):
            G = gradient_proxies(model, BatchFetcher(ds, "cpu"), y)
            ref = coreset.select(G, n_select=sched.n_select, y=y, class_budget="proportional", min_per_class=1,
                                 metric="euclidean", random_state=(2 * 1_000_003 + epoch) % 2**31)
            assert np.array_equal(sched.indices, ref.indices)
            assert set(y[sched.indices]) == set(range(C))  # every class, the 5-row one included
            w = sched.rescale(torch.tensor(ref.indices), torch.ones(ref.indices.size))
            assert np.allclose(w.numpy(), ref.weights * ref.indices.size / ref.weights.sum())
        rows_seen = []
        for x, t, rows in loader:
            loss = sched.rescale(rows, torch.nn.functional.cross_entropy(model(x), t, reduction="none")).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            rows_seen.extend(rows.tolist())
        assert sorted(rows_seen) == sorted(sched.indices.tolist())  # only the selection, each once


class FunctionalHead(torch.nn.Module):
    """The classifier is a raw parameter used through F.linear: no nn.Linear to hook."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.ReLU()
        self.w = torch.nn.Parameter(torch.randn(C, D))

    def forward(self, x):
        return torch.nn.functional.linear(self.body(x), self.w)


class UnusedLinear(torch.nn.Module):
    """Has an nn.Linear, but forward never calls it."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(D, C)

    def forward(self, x):
        return torch.nn.functional.linear(x, self.head.weight, self.head.bias)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_models_hooks_cannot_reach_get_a_clear_error():
    ds, _, _ = make_data()
    with pytest.raises(ValidationError, match="no nn.Linear submodule that a forward hook can reach"):
        train(FunctionalHead(), ds, schedule=AdaptiveReselection(0.2, every=2), epochs=2, device="cpu")
    model = UnusedLinear()
    before = [p.detach().clone() for p in model.parameters()]
    warm = AdaptiveReselection(0.5, every=2, kappa=0.9)  # full-data epochs first: still refused before any step
    with pytest.raises(ValidationError, match="hook on layer 'head' never ran"):
        train(model, ds, schedule=warm, epochs=6, device="cpu")
    assert warm.warm_epochs == 2 and all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    scripted = torch.jit.script(mlp())
    with pytest.raises(ValidationError, match="TorchScript"):
        train(scripted, ds, schedule=AdaptiveReselection(0.2, every=2), epochs=2, device="cpu")
    with pytest.raises(ValidationError, match=r"layer='fc' is not a submodule.*\['0', '2'\]"):
        train(mlp(), ds, schedule=AdaptiveReselection(0.2, every=2, layer="fc"), epochs=2, device="cpu")


def test_adaptive_parameter_errors():
    ds, _, _ = make_data()
    with pytest.raises(ValidationError, match="fraction"):
        AdaptiveReselection(1.5)
    with pytest.raises(ValidationError, match="every"):
        AdaptiveReselection(0.1, every=0)
    with pytest.raises(ValidationError, match="kappa"):
        AdaptiveReselection(0.1, kappa=1.0)
    with pytest.raises(ValidationError, match="attach"):
        AdaptiveReselection(0.1).on_epoch_start(0, mlp())
    with pytest.raises(ValidationError, match="fewer than 1 row"):
        AdaptiveReselection(0.001).attach(ds, epochs=1)


def test_adaptive_same_seed_same_result():
    ds, _, _ = make_data()
    runs = []
    for _ in range(2):
        model = mlp()
        r = train(model, ds, schedule=AdaptiveReselection(0.3, every=2, kappa=0.4), epochs=6, batch_size=16,
                  device="cpu", random_state=4)
        runs.append((r.loss_history, torch.cat([p.detach().flatten() for p in model.parameters()])))
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])


def test_random_baseline_keeps_the_schedule_and_class_counts_without_forward_passes():
    ds, _, y = make_data()
    fl = AdaptiveReselection(0.4, every=2, class_budget="tempered", min_per_class=1)
    rnd = AdaptiveReselection(0.4, every=2, class_budget="tempered", min_per_class=1, method="random")
    a = train(mlp(), ds, schedule=fl, epochs=6, batch_size=16, device="cpu", random_state=3)
    b = train(mlp(), ds, schedule=rnd, epochs=6, batch_size=16, device="cpu", random_state=3)
    assert [r["epoch"] for r in b.reselections] == [r["epoch"] for r in a.reselections] == [0, 2, 4]
    assert b.sample_gradients == a.sample_gradients and b.epoch_sizes == a.epoch_sizes
    assert b.forward_samples == 0 and a.forward_samples == 3 * N
    # the same per-class counts as facility location (the class budget), other rows
    assert np.array_equal(np.bincount(y[rnd.indices], minlength=C), np.bincount(y[fl.indices], minlength=C))
    assert not np.array_equal(np.sort(rnd.indices), np.sort(fl.indices))


def test_partition_keeps_class_budgets_and_most_of_the_objective():
    from coreset.selectors import allocate_budget
    from coreset.similarity import dense_similarity, euclidean_gamma

    ds, X, y = make_data(5)
    sched = AdaptiveReselection(0.4, every=2, class_budget="tempered", partition=16).attach(ds, epochs=4)
    whole = AdaptiveReselection(0.4, every=2, class_budget="tempered").attach(ds, epochs=4)
    G = gradient_proxies(mlp(1), BatchFetcher(ds, "cpu"), y)
    groups, owner = sched._chunks(np.random.default_rng(0))
    assert all(g.size <= 16 for g in groups) and sorted(np.concatenate(groups).tolist()) == list(range(N))
    assert all(set(y[g]) == {y[g][0]} for g in groups)  # a chunk holds one class
    idx, w = sched._select(G, 0)
    ref, _ = whole._select(G, 0)
    budgets = allocate_budget(np.bincount(y), sched.n_select, "tempered", min_per_class=1)
    assert np.bincount(y[idx], minlength=C).tolist() == budgets.tolist()  # each class keeps its budget
    for g in groups:  # ... shared by its chunks in proportion to their sizes (within one pick)
        share = budgets[y[g][0]] * g.size / np.sum(y == y[g][0])
        assert abs(np.isin(idx, g).sum() - share) < 1
    assert w.sum() == N  # every row represented within its chunk
    assert np.array_equal(idx, sched._select(G, 0)[0]) and not np.array_equal(idx, sched._select(G, 1)[0])
    gamma = euclidean_gamma(G)

    def value(sel):  # facility location of each class on its whole dense block
        total = 0.0
        for c in range(C):
            rows = np.flatnonzero(y == c)
            S = dense_similarity(G[rows], "euclidean", gamma=gamma)
            total += S[np.isin(rows, sel)].max(0).astype(np.float64).sum()
        return total

    assert value(idx) >= 0.98 * value(ref)


def test_partition_errors():
    with pytest.raises(ValidationError, match="partition"):
        AdaptiveReselection(0.2, partition=1)
    with pytest.raises(ValidationError, match=r"partition=16 .*n_neighbors"):
        AdaptiveReselection(0.2, partition=16, n_neighbors=5)
    AdaptiveReselection(0.2, partition=16, method="random")  # the random baseline ignores it


def test_smaller_epochs_keep_every_selected_class():
    """With whole batches the selection is larger than most epochs: the rows an
    epoch skips never take a class's last row (here nine classes of 3 rows get
    one pick each, and epochs skip up to 15 of ~40 selected rows)."""
    rng = np.random.default_rng(1)
    sizes = [60, 30, 10] + [3] * 9
    y = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    X = (rng.standard_normal((len(sizes), D))[y] + rng.standard_normal((y.size, D))).astype(np.float32)
    ds = torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(y))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(D, 16), torch.nn.ReLU(), torch.nn.Linear(16, len(sizes)))
    sched = AdaptiveReselection(0.3, every=2, min_per_class=1).attach(ds, epochs=12, batch_size=16)
    assert min(sched.epoch_sizes) < sched.n_select  # some epochs skip selected rows
    skipped = 0
    for epoch in range(12):
        sched.on_epoch_start(epoch, model)
        rows = sched.epoch_indices()
        assert rows.size == sched.epoch_sizes[epoch] and np.unique(rows).size == rows.size
        assert set(rows.tolist()) <= set(sched.indices.tolist())
        assert set(y[rows]) == set(y[sched.indices]) == set(range(len(sizes)))
        skipped += sched.indices.size - rows.size
    assert skipped > 0


def test_non_finite_gradient_proxies_are_refused_with_the_row():
    ds, _, _ = make_data()
    model = mlp()
    sched = AdaptiveReselection(0.3, every=1).attach(ds, epochs=2)
    sched.on_epoch_start(0, model)
    with torch.no_grad():
        model[2].bias[1] = float("nan")  # a diverged classifier: NaN logits, NaN proxies
    with pytest.raises(ValidationError, match=r"gradient proxies must be finite; found nan at row 0"):
        sched.on_epoch_start(1, model)


def test_a_class_above_the_dense_limit_gets_no_label_filter_either():
    """Without select parameters the reselection is select's facility location
    with label_filter=None, whatever the class sizes: a class above 2,000
    rows (the kNN path) used to run the default label filter on the gradient
    proxies, unlike the dense path."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), [2600, 150, 60])
    X = (rng.standard_normal((3, D))[y] * 2 + rng.standard_normal((y.size, D))).astype(np.float32)
    flip = rng.random(y.size) < 0.15  # wrong labels: the filter has suspects to keep out
    y_noisy = np.where(flip, (y + 1) % 3, y)
    ds = torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(y_noisy))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(D, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    # features=True: the penultimate features join the proxies, and they follow the true classes
    sched = AdaptiveReselection(0.1, every=2, features=True).attach(ds, epochs=2, random_state=1)
    sched.on_epoch_start(0, model)
    G = gradient_proxies(model, BatchFetcher(ds, "cpu"), y_noisy, features=True)
    kw = dict(n_select=sched.n_select, y=y_noisy, class_budget="proportional", metric="euclidean",
              random_state=(1 * 1_000_003 + 0) % 2**31)
    assert np.bincount(y_noisy).max() > 2000  # a class on the kNN path, after the flips too
    off = coreset.select(G, label_filter=None, **kw)
    on = coreset.select(G, **kw)
    assert on.suspects is not None and on.suspects.size > 0 and not np.array_equal(on.indices, off.indices)
    np.testing.assert_array_equal(sched.indices, off.indices)
