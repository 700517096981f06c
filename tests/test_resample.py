"""Per-epoch resampling within class quotas (ResampleSchedule), logit-adjusted
/ Balanced Softmax losses matched to the effective class prior, and CRAIG
weights renormalised within each class: hand-computed cases, real torch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from coreset.exceptions import ValidationError  # noqa: E402


def _labels(sizes):
    rng = np.random.default_rng(5)
    return rng.permutation(np.repeat(np.arange(len(sizes)), sizes)).astype(np.int64)


# ------------------------------------------------------------------ RS2
def test_each_row_once_per_cycle_and_exact_quotas():
    from coreset.pipelines import ResampleSchedule

    y = _labels([10, 3, 30, 7])
    quotas = np.array([3, 5, 7, 7])          # class 1: quota > size -> every row every epoch
    epochs = 10
    s = ResampleSchedule(quotas=quotas).attach(labels=y, epochs=epochs, random_state=3)
    seen = np.zeros(y.size, dtype=np.int64)
    for e in range(epochs):
        s.on_epoch_start(e)
        rows = s.epoch_indices()
        assert np.unique(rows).size == rows.size                     # no row twice in an epoch
        np.testing.assert_array_equal(np.bincount(y[rows], minlength=4), [3, 3, 7, 7])
        seen[rows] += 1
        for c, n_c in enumerate([10, 3, 30, 7]):
            # without replacement inside the class: after t draws every row was drawn floor(t / n_c)
            # or ceil(t / n_c) times (each cycle of n_c draws covers every row once)
            t = (e + 1) * min(quotas[c], n_c)
            counts = seen[y == c]
            assert counts.min() == t // n_c and counts.max() == -(-t // n_c), (c, e, counts)
    # class 1: quota above its size -> every row every epoch; class 0: 30 draws = 3 cycles
    assert seen[y == 1].tolist() == [epochs] * 3 and seen[y == 0].tolist() == [3] * 10
    np.testing.assert_allclose(s.class_prior(), np.array([3, 3, 7, 7]) / 20)


def test_class_streams_straddling_cycles():
    from coreset.pipelines._resample import class_streams

    members = np.arange(100, 110)
    draws = class_streams(members, 4, 10, np.random.default_rng(0))   # 40 draws: 4 cycles, epochs straddle them
    assert draws.shape == (10, 4)
    assert all(np.unique(d).size == 4 for d in draws)
    flat = draws.ravel()
    for start in range(0, 40, 10):
        np.testing.assert_array_equal(np.sort(flat[start:start + 10]), members)


def test_sqrt_quotas_and_equal_sample_gradients():
    from coreset.pipelines import ResampleSchedule, train

    sizes = [100, 25, 4]                     # sqrt: 10 : 5 : 2 -> 34 rows = 20 + 10 + 4
    y = _labels(sizes)
    n = y.size
    frac = 34 / n
    s = ResampleSchedule(frac, "sqrt").attach(labels=y, epochs=2)
    assert s.quotas_.tolist() == [20, 10, 4]
    t = ResampleSchedule(frac, "tempered", alpha=0.5).attach(labels=y, epochs=2)
    assert t.quotas_.tolist() == [20, 10, 4]
    assert ResampleSchedule(frac, "equal").attach(labels=y, epochs=1).quotas_.tolist() == [15, 15, 4]
    X = torch.randn(n, 5)
    ds = torch.utils.data.TensorDataset(X, torch.from_numpy(y))
    epochs = 3
    res = train(torch.nn.Linear(5, 3), ds, schedule=ResampleSchedule(frac, "sqrt"), epochs=epochs, batch_size=8,
                device="cpu")
    full = train(torch.nn.Linear(5, 3), ds, epochs=epochs, batch_size=8, device="cpu")
    assert res.sample_gradients == epochs * 34 == round(frac * full.sample_gradients)
    assert res.epoch_sizes == [34] * epochs
    assert res.steps == ResampleSchedule(frac, "sqrt").attach(labels=y, epochs=epochs).total_steps(8)


def test_resample_bad_input():
    from coreset.exceptions import UnknownNameError
    from coreset.pipelines import ResampleSchedule

    with pytest.raises(UnknownNameError, match="did you mean 'sqrt'"):
        ResampleSchedule(0.1, "sqr")
    with pytest.raises(ValidationError, match="fraction"):
        ResampleSchedule(0.0)
    with pytest.raises(ValidationError, match="one of them"):
        ResampleSchedule(0.1, quotas=[1, 2])
    with pytest.raises(ValidationError, match="quotas"):
        ResampleSchedule(quotas=[1, -2])
    with pytest.raises(ValidationError, match="attach"):
        ResampleSchedule(0.1).epoch_indices()


# ------------------------------------------------------------------ losses
def test_logit_adjusted_loss_is_cross_entropy_on_shifted_logits():
    from coreset.pipelines import LogitAdjustedLoss

    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    y = torch.tensor([0, 2])
    prior = [0.6, 0.3, 0.1]
    shifted = logits + torch.log(torch.tensor(prior))
    # by hand: -z_y + log sum exp z over the shifted logits
    hand = torch.stack([-shifted[i, y[i]] + torch.log(torch.exp(shifted[i]).sum()) for i in range(2)])
    got = LogitAdjustedLoss(prior)(logits, y)
    torch.testing.assert_close(got, hand)
    torch.testing.assert_close(got, torch.nn.functional.cross_entropy(shifted, y, reduction="none"))
    tau2 = LogitAdjustedLoss(np.array(prior) * 7, tau=2.0)(logits, y)          # shares, not counts; tau scales
    torch.testing.assert_close(tau2, torch.nn.functional.cross_entropy(
        logits + 2 * torch.log(torch.tensor(prior)), y, reduction="none"))
    # a class of prior 0 (not trained on) is shifted like the rarest class present
    zero = LogitAdjustedLoss([0.75, 0.25, 0.0])(logits, y)
    torch.testing.assert_close(zero, torch.nn.functional.cross_entropy(
        logits + torch.log(torch.tensor([0.75, 0.25, 0.25])), y, reduction="none"))


def _toy(n=60, d=4, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    y = torch.from_numpy(np.arange(n) % c)
    y[: n // 2] = 0                                       # long-tailed: class 0 dominates
    return torch.utils.data.TensorDataset(X, y), y.numpy()


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("normalize", ["none", "mean", "class"])
def test_prior_of_a_weighted_subset(normalize):
    from coreset.pipelines import LogitAdjustedLoss, train
    from coreset.selection import Selection

    ds, y = _toy()
    idx = np.array([0, 1, 2, 31, 34, 37, 32, 35], dtype=np.int64)   # labels 0,0,0, 1,1,1, 2,2
    w = np.array([1.0, 2.0, 5.0, 1.0, 1.0, 2.0, 3.0, 1.0])
    assert y[idx].tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    sel = Selection(indices=idx, weights=w, gains=np.zeros(idx.size))
    hand = {"none": [3, 3, 2], "mean": [8, 4, 4], "class": [3, 3, 2]}[normalize]   # weighted class masses
    hand = np.array(hand, dtype=float) / sum(hand)
    torch.manual_seed(0)
    a = torch.nn.Linear(4, 3)
    b = torch.nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    res = train(a, ds, selection=sel, normalize=normalize, loss="logit_adjusted", epochs=3, batch_size=4,
                device="cpu")
    np.testing.assert_allclose(res.class_prior, hand)
    train(b, ds, selection=sel, normalize=normalize, loss=LogitAdjustedLoss(hand), epochs=3, batch_size=4,
          device="cpu")
    torch.testing.assert_close(_params(a), _params(b))                      # the loss used that prior


def test_effective_prior_of_full_data_and_schedules():
    from coreset.pipelines import DynamicPruning, ResampleSchedule, train

    ds, y = _toy()
    res = train(torch.nn.Linear(4, 3), ds, loss="balanced_softmax", epochs=1, device="cpu")
    np.testing.assert_allclose(res.class_prior, np.bincount(y) / y.size)
    rs = train(torch.nn.Linear(4, 3), ds, schedule=ResampleSchedule(quotas=[5, 3, 4]), loss="logit_adjusted",
               epochs=2, device="cpu")
    np.testing.assert_allclose(rs.class_prior, np.array([5, 3, 4]) / 12)
    # an explicit prior wins; a schedule whose class shares drift needs one
    given = train(torch.nn.Linear(4, 3), ds, loss="logit_adjusted", class_prior=[1, 1, 2], epochs=1, device="cpu")
    np.testing.assert_allclose(given.class_prior, [0.25, 0.25, 0.5])
    with pytest.raises(ValidationError, match="class_prior="):
        train(torch.nn.Linear(4, 3), ds, schedule=DynamicPruning(0.5), loss="logit_adjusted", epochs=2, device="cpu")
    ok = train(torch.nn.Linear(4, 3), ds, schedule=DynamicPruning(0.5), loss="logit_adjusted",
               class_prior=np.bincount(y), epochs=2, device="cpu")
    assert ok.class_prior is not None


def test_loss_bad_inputs():
    from coreset.pipelines import train
    from coreset.selection import Selection

    ds, y = _toy()
    m = torch.nn.Linear(4, 3)
    with pytest.raises(ValidationError, match="class 2 appears in the labels trained on but is absent"):
        train(m, ds, loss="logit_adjusted", class_prior=[0.5, 0.5, 0.0], epochs=1, device="cpu")
    sel = Selection(indices=np.array([0, 31, 32]), weights=np.ones(3), gains=np.zeros(3))   # labels 0, 1, 2
    with pytest.raises(ValidationError, match="class 2 appears"):
        train(m, ds, selection=sel, loss="balanced_softmax", class_prior=[3, 1], epochs=1, device="cpu")
    with pytest.raises(ValidationError, match="class_prior must be finite"):
        train(m, ds, loss="logit_adjusted", class_prior=[0.5, -0.1, 0.6], epochs=1, device="cpu")
    with pytest.raises(ValidationError, match="at most one entry per model output"):
        train(m, ds, loss="logit_adjusted", class_prior=[1, 1, 1, 1], epochs=1, device="cpu")
    with pytest.raises(ValidationError, match="class_prior= applies to"):
        train(m, ds, class_prior=[1, 1, 1], epochs=1, device="cpu")
    with pytest.raises(ValidationError, match="logit_adjusted, balanced_softmax"):
        train(m, ds, loss="logit_adjust", epochs=1, device="cpu")
    # a class absent from the prior but never trained on is fine (prior 0, not in the labels)
    sel = Selection(indices=np.array([0, 31, 34]), weights=np.ones(3), gains=np.zeros(3))
    res = train(m, ds, selection=sel, loss="logit_adjusted", epochs=1, device="cpu")
    np.testing.assert_allclose(res.class_prior, [1 / 3, 2 / 3, 0.0])


# ------------------------------------------------------------------ per-class weights
def test_class_normalised_weights_keep_mass_and_ratios():
    from coreset.pipelines import WeightedSubset, normalize_weights

    w = np.array([10.0, 30.0, 60.0, 1.0, 3.0, 7.0])
    labels = np.array([4, 4, 4, 9, 2, 2])
    out = normalize_weights(w, "class", labels=labels)
    for c in (4, 9, 2):
        m = labels == c
        assert out[m].sum() == pytest.approx(m.sum())                      # mass = picks of the class
        np.testing.assert_allclose(out[m] / out[m][0], w[m] / w[m][0])     # ratios kept inside the class
    np.testing.assert_allclose(out, [0.3, 0.9, 1.8, 1.0, 0.6, 1.4])
    with pytest.raises(ValidationError, match="labels"):
        normalize_weights(w, "class")
    with pytest.raises(ValidationError, match="'class'"):
        normalize_weights(w, "klass")
    ds, y = _toy()
    from coreset.selection import Selection

    sel = Selection(indices=np.array([0, 1, 31, 34]), weights=np.array([1.0, 3.0, 2.0, 2.0]), gains=np.zeros(4))
    np.testing.assert_allclose(WeightedSubset(ds, sel, normalize="class").weights, [0.5, 1.5, 1.0, 1.0])
