"""Augmenters (kornia images, gaussian noise, mixup) and the augment-only-the-coreset policy."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("kornia")

from coreset.exceptions import UnknownNameError, ValidationError  # noqa: E402
from coreset.pipelines import AugmentPolicy, GaussianNoise, ImageAugment, Mixup  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def images(b=8, c=3, h=16, w=16, dtype=torch.float32, device="cpu"):
    g = torch.Generator().manual_seed(0)
    return torch.rand((b, c, h, w), generator=g, dtype=dtype).to(device), torch.arange(b) % 3


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("c", [1, 3])
def test_image_augment_keeps_shape_dtype_device_and_changes_pixels(device, dtype, c):
    x, y = images(c=c, dtype=dtype, device=device)
    aug = ImageAugment(random_state=0)
    xa, ya = aug(x, y)
    assert xa.shape == x.shape and xa.dtype == dtype and xa.device == x.device
    assert torch.equal(ya, y)
    assert not torch.equal(xa, x)
    # each part alone does what it says: flip-only with p=1 is an exact mirror
    flip = ImageAugment(crop_padding=0, flip=1.0, jitter=0.0, erase=0.0, random_state=0)
    assert torch.equal(flip(x, y)[0], torch.flip(x, dims=[3]))


def test_seeded_reproducible_and_global_rng_untouched():
    x, y = images()
    a, b = ImageAugment(random_state=7), ImageAugment(random_state=7)
    state = torch.get_rng_state()
    first = [a(x, y)[0] for _ in range(3)]
    assert torch.equal(state, torch.get_rng_state())
    second = [b(x, y)[0] for _ in range(3)]
    assert all(torch.equal(p, q) for p, q in zip(first, second))
    assert not torch.equal(first[0], first[1])  # successive batches differ
    assert not torch.equal(first[0], ImageAugment(random_state=8)(x, y)[0])
    e = torch.randn(16, 5, dtype=torch.float64)
    n1, n2 = GaussianNoise(0.5, random_state=1)(e), GaussianNoise(0.5, random_state=1)(e)
    assert torch.equal(n1[0], n2[0]) and n1[0].dtype == torch.float64
    assert 0.3 < float((n1[0] - e).std()) < 0.7


def test_mixup_mixes_inputs_and_labels_with_the_same_lambda():
    x = torch.randn(32, 6)
    y = torch.arange(32) % 4
    mix = Mixup(4, alpha=0.4, random_state=3)
    xm, ym = mix(x, y)
    lam = mix.lam_
    assert 0 < lam < 1 and ym.shape == (32, 4) and torch.allclose(ym.sum(1), torch.ones(32))
    onehot = torch.nn.functional.one_hot(y, 4).float()
    # recover each row's partner from the inputs, then check the labels used the same lam
    for i in range(32):
        partner = (x - (xm[i] - lam * x[i]) / (1 - lam)).norm(dim=1).argmin()
        assert torch.allclose(xm[i], lam * x[i] + (1 - lam) * x[partner], atol=1e-5)
        assert torch.allclose(ym[i], lam * onehot[i] + (1 - lam) * onehot[partner], atol=1e-6)
    xm2, _ = Mixup(4, alpha=0.4, random_state=3)(x, y)
    assert torch.equal(xm, xm2)


def test_policy_augments_exactly_the_selected_samples():
    x = torch.zeros(10, 4)
    y = torch.arange(10) % 2
    batch_idx = torch.tensor([50, 3, 7, 12, 99, 0, 41, 8, 5, 77])
    selected = np.array([3, 8, 41, 99, 1000])
    pol = AugmentPolicy(GaussianNoise(1.0, random_state=0), mode="coreset", selected=selected)
    assert pol.mask(batch_idx).tolist() == [i in set(selected) for i in batch_idx.tolist()]
    xa, ya = pol(x, y, batch_idx)
    changed = (xa != 0).any(1)
    assert changed.tolist() == pol.mask(batch_idx).tolist()
    assert torch.equal(ya, y)
    xa, _ = AugmentPolicy(GaussianNoise(1.0, random_state=0), mode="all")(x, y, batch_idx)
    assert (xa != 0).any(1).all()
    xa, _ = AugmentPolicy(GaussianNoise(1.0), mode="none")(x, y, batch_idx)
    assert torch.equal(xa, x)
    # with mixup, the selected rows are mixed among themselves and the rest keep one-hot labels
    xr = torch.randn(10, 4)
    xm, ym = AugmentPolicy(Mixup(2, random_state=1), mode="coreset", selected=selected)(xr, y, batch_idx)
    m = pol.mask(batch_idx)
    assert ym.shape == (10, 2) and torch.equal(ym[~m], torch.nn.functional.one_hot(y[~m], 2).float())
    assert torch.equal(xm[~m], xr[~m]) and not torch.equal(xm[m], xr[m])


def test_errors():
    with pytest.raises(ValidationError, match="needs selected"):
        AugmentPolicy(GaussianNoise(), mode="coreset")
    with pytest.raises(UnknownNameError, match="did you mean 'coreset'"):
        AugmentPolicy(GaussianNoise(), mode="corset", selected=[1])
    with pytest.raises(ValidationError, match=r"\(B, C, H, W\)"):
        ImageAugment()(torch.zeros(3, 4), None)
    with pytest.raises(ValidationError, match="floating-point"):
        GaussianNoise()(torch.zeros(3, 4, dtype=torch.int64))
    with pytest.raises(ValidationError, match="std"):
        GaussianNoise(-1.0)
