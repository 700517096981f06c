"""Augmentation, measured, in compare (coreset.pipelines._compare_augment), the
CNN models (coreset.pipelines._models) and SignalAugment: exact accounting of
augmented sample-gradients, which rows the augmentation saw, shapes, errors.
Tiny real runs (torch, 1-3 epochs)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from coreset.exceptions import UnknownNameError, ValidationError  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one torch thread (a busy machine makes the thread pool spin), restored after."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ------------------------------------------------------------------ models
@pytest.mark.parametrize("name, d, c, shape_in", [("cnn2d", 64, 10, (1, 8, 8)), ("cnn2d", 49, 3, (1, 7, 7)),
                                                  ("cnn1d", 40, 10, (1, 40)), ("cnn1d", 3, 2, (1, 3)),
                                                  ("mlp", 5, 4, None), ("linear", 5, 4, None)])
def test_models_map_rows_to_logits(name, d, c, shape_in):
    from coreset.pipelines._models import make_model

    net = make_model(name, d, c)
    x = torch.randn(6, d)
    assert net(x).shape == (6, c)
    if shape_in is not None:  # the first layer reshapes the flat rows to one channel of the right shape
        assert net[0](x).shape == (6, *shape_in)
        # the CNN reads the rows as images / signals: a convolution, not a linear layer, comes first
        assert isinstance(net[1], (torch.nn.Conv1d, torch.nn.Conv2d)) and net[1].in_channels == 1


def test_cnn1d_is_the_paper_convbase_on_mnist1d():
    from coreset.pipelines._models import cnn1d

    net = cnn1d(40, 10)
    convs = [m for m in net if isinstance(m, torch.nn.Conv1d)]
    assert [(m.out_channels, m.kernel_size[0], m.stride[0]) for m in convs] == [(64, 5, 2), (64, 3, 2), (64, 3, 2)]
    assert net[-1].in_features == 64 * 5  # 40 -> 19 -> 10 -> 5


def test_model_errors():
    from coreset.pipelines._compare import _model_factory
    from coreset.pipelines._models import cnn1d, cnn2d

    with pytest.raises(ValidationError, match=r"n_features must be a perfect square.*got 60"):
        cnn2d(60, 3)
    with pytest.raises(ValidationError, match=r"at least 3 features .*; got n_features=2"):
        cnn1d(2, 3)
    with pytest.raises(UnknownNameError, match="did you mean 'cnn2d'"):
        _model_factory("cnn3d")


# ------------------------------------------------------------------ SignalAugment
def test_signal_augment_rolls_each_row_within_max_shift():
    from coreset.pipelines import SignalAugment

    x = torch.arange(5 * 12, dtype=torch.float32).reshape(5, 12)
    aug = SignalAugment(max_shift=2, noise=0.0, random_state=3)
    out, y = aug(x, None)
    assert y is None and out.shape == x.shape
    shifts = []
    for row, orig in zip(out, x):
        found = [s for s in range(-2, 3) if torch.equal(row, torch.roll(orig, s))]
        assert len(found) == 1
        shifts.append(found[0])
    again, _ = SignalAugment(max_shift=2, noise=0.0, random_state=3)(x, None)
    assert torch.equal(out, again)                      # seeded
    noisy, _ = SignalAugment(max_shift=0, noise=0.5, random_state=0)(x, None)
    assert 0.3 < float((noisy - x).std()) < 0.7         # noise only, of the asked std
    with pytest.raises(ValidationError, match="max_shift must be in"):
        SignalAugment(max_shift=-1)


# ------------------------------------------------------------------ names
def test_augment_method_names():
    from coreset.pipelines._compare_augment import AugmentSpec
    from coreset.pipelines._compare_augment import parse_any as parse_method

    s = parse_method("full+aug")
    assert isinstance(s, AugmentSpec) and s.rows is None and s.full_data and s.base == "full"
    s = parse_method("full_balanced+aug:facility_location:equal")
    assert s.base == "full_balanced" and not s.full_data and s.rows.kind == "objective"
    assert s.rows.policy == "equal" and s.rows.objective == "facility_location"
    for bad in ("full+aug:facility_location:equal+weighted", "full+aug:random+la", "full+aug:rs2:equal",
                "full+aug:adaptive", "full+aug:full"):
        with pytest.raises(ValidationError, match="fixed-selection method"):
            parse_method(bad)
    with pytest.raises(UnknownNameError):
        parse_method("full+aug:randon")
    with pytest.raises(UnknownNameError):
        parse_method("full+augx")


# ------------------------------------------------------------------ the schedule, through train()
class _Tag:
    """An augmenter that adds 1000 to the copies and records which rows it got."""

    def __init__(self):
        self.seen = []

    def __call__(self, x, y, mask):
        self.seen.append(x[mask][:, 0].long().tolist())
        out = x.clone()
        out[mask] = out[mask] + 1000
        return out, y


class _Spy(torch.nn.Module):
    def __init__(self, d, c):
        super().__init__()
        self.lin = torch.nn.Linear(d, c)
        self.inputs = []

    def forward(self, x):
        if self.training:
            self.inputs.append(x[:, 0].detach().long().tolist())
        return self.lin(x)


def test_copies_of_exactly_the_chosen_rows_counted_exactly():
    from coreset.pipelines import train
    from coreset.pipelines._compare_augment import AugmentedCopies

    n, epochs, rows = 20, 3, np.array([7, 1, 5])
    X = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 2)  # feature 0 = the row number
    y = torch.arange(n) % 2
    tag, net = _Tag(), _Spy(2, 2)
    sched = AugmentedCopies(rows, tag)
    res = train(net, torch.utils.data.TensorDataset(X, y), schedule=sched, epochs=epochs, batch_size=4,
                device="cpu", random_state=0)
    assert res.sample_gradients == epochs * (n + 3)
    assert sched.augment_gradients == epochs * 3
    # the augmentation saw the chosen rows, each once per epoch, and nothing else
    seen = np.bincount(np.concatenate(tag.seen), minlength=n)
    assert seen.tolist() == [epochs if i in (1, 5, 7) else 0 for i in range(n)]
    assert sched.augmented_counts.tolist() == seen.tolist()
    # the model trained on every original once per epoch, and on the augmented copies (tagged +1000)
    got = np.concatenate(net.inputs)
    assert np.bincount(got[got < 1000], minlength=n).tolist() == [epochs] * n
    assert sorted(got[got >= 1000].tolist()) == sorted([1001, 1005, 1007] * epochs)


def test_standardised_rows_are_augmented_in_raw_space():
    from coreset.pipelines._compare_augment import make_augmenter

    rng = np.random.default_rng(0)
    raw = rng.normal(size=(6, 10)).astype(np.float32)
    mu, sd = raw.mean(0), raw.std(0)
    x = torch.from_numpy((raw - mu) / sd)
    y = torch.arange(6) % 3
    mask = torch.tensor([True, False, True, False, False, True])
    fn = make_augmenter("signal", 10, 3, params=dict(max_shift=2, noise=0.0), random_state=1, scale=(mu, sd))
    out, y2 = fn(x, y, mask)
    assert torch.equal(y2, y) and torch.equal(out[~mask], x[~mask])
    shifts = []
    for i in np.flatnonzero(mask.numpy()):  # a shift of the raw signal, standardised again
        match = [s for s in range(-2, 3) if np.allclose(out[i].numpy(), (np.roll(raw[i], s) - mu) / sd, atol=1e-5)]
        assert len(match) == 1
        shifts += match
    assert any(shifts)  # a real shift (rolling the standardised row instead would not match)


def test_mixup_copies_get_soft_labels_the_originals_one_hot():
    from coreset.pipelines._compare_augment import make_augmenter

    x = torch.randn(8, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    mask = torch.zeros(8, dtype=torch.bool)
    mask[[2, 6]] = True
    out, soft = make_augmenter("mixup", 4, 3, params=dict(alpha=1.0), random_state=0)(x, y, mask)
    assert soft.shape == (8, 3) and torch.allclose(soft.sum(1), torch.ones(8))
    assert torch.equal(out[~mask], x[~mask])
    assert torch.equal(soft[~mask], torch.nn.functional.one_hot(y[~mask], 3).float())


def test_image_copies_are_8x8_images():
    pytest.importorskip("kornia")
    from coreset.pipelines._compare_augment import make_augmenter

    x = torch.zeros(3, 64)
    x[:, 27] = 1.0  # one bright pixel at (3, 3)
    mask = torch.tensor([True, True, False])
    out, _ = make_augmenter("image", 64, 2, params=dict(crop_padding=1), random_state=0)(x, torch.zeros(3), mask)
    assert torch.equal(out[2], x[2])
    for i in (0, 1):  # a crop moves the pixel by at most one step each way, as an 8 x 8 image
        r, c = divmod(int(out[i].argmax()), 8)
        assert float(out[i].max()) == 1.0 and abs(r - 3) <= 1 and abs(c - 3) <= 1


# ------------------------------------------------------------------ through compare
def _tiny(seed=0):
    rng = np.random.default_rng(seed)
    n, d = 60, 4
    y = np.repeat([0, 1, 2], [36, 16, 8])
    X = rng.normal(size=(n, d)) + y[:, None]
    yt = np.repeat([0, 1, 2], 10)
    Xt = rng.normal(size=(30, d)) + yt[:, None]
    return X, y, Xt, yt


def test_compare_accounts_augmented_gradients_and_augments_the_coresets_rows():
    from coreset.pipelines import compare
    from coreset.pipelines._compare_augment import plan_augment
    from coreset.pipelines._compare_augment import parse_any as parse_method
    from coreset.pipelines._compare_methods import run_selection

    data = _tiny()
    epochs, f = 2, 0.25
    n, k = 60, 15
    res = compare(data, methods=["full", "full+aug", "full+aug:random_budget:equal",
                                 "full_balanced+aug:facility_location:equal"],
                  fractions=[f], seeds=[0], epochs=epochs, plots=False)
    by = {r["method"]: r for r in res.rows}
    assert by["full"]["augment_gradients"] == 0 and by["full"]["sample_gradients"] == epochs * n
    assert by["full+aug"]["augment_gradients"] == epochs * n and by["full+aug"]["sample_gradients"] == 2 * epochs * n
    assert by["full+aug"]["fraction"] == 1.0
    for m in ("full+aug:random_budget:equal", "full_balanced+aug:facility_location:equal"):
        assert by[m]["fraction"] == f and by[m]["n_train_rows"] == n
        assert by[m]["augment_gradients"] == epochs * k and by[m]["sample_gradients"] == epochs * (n + k)
    assert res.summary[1]["augment_gradients_mean"] == epochs * n
    # the rows augmented are exactly those the inner method selects
    X = (data[0] - data[0].mean(0)) / data[0].std(0)
    ctx = dict(X=X.astype(np.float32), y=data[1], n_classes=3, select_params=None, epochs=epochs,
               augment=dict(kind="mixup", params=None), scale=None)
    spec = parse_method("full+aug:facility_location:equal")
    chosen, sched, _ = plan_augment(spec, f, 0, ctx, k)
    want = run_selection(spec.rows, ctx["X"], data[1], 3, k, 0).indices
    assert chosen.indices is None and sched.rows.tolist() == sorted(want.tolist()) and len(want) == k


def test_compare_augment_settings_recorded_and_checked():
    from coreset.pipelines import compare

    kw = dict(methods=["full+aug"], seeds=[0], epochs=1, plots=False)
    assert "augment" not in compare(_tiny(), **kw).config
    cfg = compare(_tiny(), augment="signal", augment_params=dict(max_shift=1), **kw).config
    assert cfg["augment"] == "signal" and cfg["augment_params"] == dict(max_shift=1, noise=0.05)
    with pytest.raises(UnknownNameError, match="did you mean 'mixup'"):
        compare(_tiny(), augment="mixpu", **kw)
    with pytest.raises(ValidationError, match="augment_params for augment='mixup' takes alpha; got 'beta'"):
        compare(_tiny(), augment_params=dict(beta=1.0), **kw)
    with pytest.raises(ValidationError, match="alpha must be"):
        compare(_tiny(), augment_params=dict(alpha=0.0), **kw)
