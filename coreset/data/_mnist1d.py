"""MNIST-1D (Greydanus, 2020, "Scaling down deep learning"), generated
procedurally and made long-tailed.

Ten hand-made 1-D templates (12 points each, one per digit) are padded with
zeros, stretched back to a fixed length (so the digit occupies a random share
of the signal), scaled, circularly shifted, corrupted with Gaussian-smoothed
(correlated) and iid noise, sheared by a random linear trend, and resampled
to 40 points. Nothing is downloaded: the templates below are the paper's and
the transforms follow its description and reference defaults. Unlike the
reference code, the zero padding is not filled with a ramp before the noise
is added (the paper does not describe that step); the rest is the same
pipeline, vectorised over samples.

The result is hard for a linear probe (the digit's position and width vary),
which is what makes it useful for telling subset-selection methods apart.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_float, check_int, check_random_state
from ..exceptions import ValidationError

__all__ = ["MNIST1D_DEFAULTS", "mnist1d_templates", "render_mnist1d", "make_mnist1d", "load_mnist1d_lt"]

#: the reference generator's transform parameters
MNIST1D_DEFAULTS = dict(
    padding=(36, 60),
    scale_coeff=0.4,
    max_translation=48,
    corr_noise_scale=0.25,
    iid_noise_scale=0.02,
    shear_scale=0.75,
    length=40,
)

_TEMPLATES = np.array([
    [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
    [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
    [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
    [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
    [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
    [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
    [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
    [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
], dtype=np.float64)


def mnist1d_templates() -> np.ndarray:
    """The 10 digit templates (10 x 12, float64): standardised per row, shifted
    to start at 0, divided by 6 (as in the paper)."""
    x = _TEMPLATES - _TEMPLATES.mean(1, keepdims=True)
    x /= x.std(1, keepdims=True)
    x -= x[:, :1]
    return x / 6.0


def _resample(x: np.ndarray, src_len: np.ndarray, out_len: int) -> np.ndarray:
    """Row i: linear interpolation of ``x[i, :src_len[i]]`` (on [0, 1]) at
    ``out_len`` evenly spaced points."""
    n = x.shape[0]
    pos = np.linspace(0.0, 1.0, out_len)[None, :] * (src_len[:, None] - 1)
    i0 = np.floor(pos).astype(np.int64)
    i0 = np.minimum(i0, np.maximum(src_len[:, None] - 2, 0))
    frac = pos - i0
    i1 = np.minimum(i0 + 1, src_len[:, None] - 1)
    rows = np.arange(n)[:, None]
    return x[rows, i0] * (1.0 - frac) + x[rows, i1] * frac


def render_mnist1d(y, pad, shift, *, scale=None, shear=None, corr_noise=None, iid_noise=None,
                   max_pad: int | None = None, length: int = 40) -> np.ndarray:
    """Deterministic part of the generator, one sample per entry of ``y``.

    ``pad`` (zeros appended to the 12-point template), ``shift`` (circular
    shift right), ``scale`` (multiplier), ``shear`` (slope of the subtracted
    trend) are per-sample arrays; ``corr_noise`` / ``iid_noise`` are noise
    fields of shape (n, 12 + max_pad) added before the shear. ``None`` means
    "no such transform". Returns float64 (n, length).
    """
    templates = mnist1d_templates()
    y = np.asarray(y, dtype=np.int64)
    n = y.shape[0]
    pad = np.broadcast_to(np.asarray(pad, dtype=np.int64), (n,))
    shift = np.broadcast_to(np.asarray(shift, dtype=np.int64), (n,))
    max_pad = int(pad.max(initial=0)) if max_pad is None else int(max_pad)
    t_len = templates.shape[1]
    width = t_len + max_pad
    padded = np.zeros((n, width + 1))
    padded[:, :t_len] = templates[y]
    x = _resample(padded, t_len + pad, width)  # dilate: the digit fills 12 / (12 + pad) of the signal
    if scale is not None:
        x *= np.asarray(scale, dtype=np.float64)[:, None]
    cols = (np.arange(width)[None, :] - shift[:, None]) % width
    x = x[np.arange(n)[:, None], cols]
    if corr_noise is not None:
        x += corr_noise
    if iid_noise is not None:
        x += iid_noise
    if shear is not None:
        x -= np.asarray(shear, dtype=np.float64)[:, None] * np.linspace(-0.5, 0.5, width)[None, :]
    return _resample(x, np.full(n, width), length)


def _check_padding(padding) -> tuple[int, int]:
    try:
        low, high = (int(v) for v in padding)
    except (TypeError, ValueError):
        raise ValidationError(f"padding must be a pair (low, high) of integers >= 0; got {padding!r}") from None
    if not 0 <= low <= high:
        raise ValidationError(f"padding must satisfy 0 <= low <= high; got {padding!r}")
    return low, high


def make_mnist1d(y, *, random_state=0, padding=(36, 60), scale_coeff: float = 0.4, max_translation: int = 48,
                 corr_noise_scale: float = 0.25, iid_noise_scale: float = 0.02, shear_scale: float = 0.75,
                 length: int = 40, dtype=np.float32) -> np.ndarray:
    """MNIST-1D signals (len(y) x ``length``) for the digit labels ``y``.

    Per sample: padding ``p ~ U{low..high}``, scale ``1 + scale_coeff * (u - 0.5)``,
    shift ``k ~ U{0..max_translation-1}``, correlated noise
    ``gaussian_filter1d(corr_noise_scale * N(0, 1), sigma=2)``, iid noise
    ``iid_noise_scale * N(0, 1)``, shear slope ``shear_scale * (u - 0.5)``.
    Setting the noise, scale and shear knobs to 0 gives clean (noise-free,
    still padded and shifted) signals.
    """
    from scipy.ndimage import gaussian_filter1d

    rng = check_random_state(random_state)
    y = np.asarray(y, dtype=np.int64)
    if y.ndim != 1 or (y.size and (y.min() < 0 or y.max() > 9)):
        raise ValidationError("y must be a 1-D array of digit labels in [0, 9]")
    low, high = _check_padding(padding)
    scale_coeff = check_float(scale_coeff, "scale_coeff", low=0.0, high=2.0, high_open=True)
    max_translation = check_int(max_translation, "max_translation", low=1)
    corr_noise_scale = check_float(corr_noise_scale, "corr_noise_scale", low=0.0)
    iid_noise_scale = check_float(iid_noise_scale, "iid_noise_scale", low=0.0)
    shear_scale = check_float(shear_scale, "shear_scale", low=0.0)
    length = check_int(length, "length", low=2)
    n = y.shape[0]
    width = 12 + high
    pad = low + np.floor(rng.random(n) * (high - low + 1)).astype(np.int64)
    scale = 1.0 + scale_coeff * (rng.random(n) - 0.5)
    shift = rng.integers(0, max_translation, size=n)
    corr = gaussian_filter1d(corr_noise_scale * rng.standard_normal((n, width)), 2.0, axis=1)
    iid = iid_noise_scale * rng.standard_normal((n, width))
    shear = shear_scale * (rng.random(n) - 0.5)
    X = render_mnist1d(y, pad, shift, scale=scale, shear=shear, corr_noise=corr, iid_noise=iid,
                       max_pad=high, length=length)
    return X.astype(dtype, copy=False)


def load_mnist1d_lt(n_samples: int = 6000, *, s: float = 2.0, n_test_per_class: int = 200, random_state=0,
                    label_noise: float = 0.0, noise_model: str = "symmetric", duplicates: float = 0.0,
                    **transform):
    """Long-tailed MNIST-1D: digit c (0 = head, 9 = tail) has
    ``zipf_class_sizes(n_samples, 10, s)[c]`` training signals; the test split
    has ``n_test_per_class`` of every digit. ``transform`` overrides
    :data:`MNIST1D_DEFAULTS` (see :func:`make_mnist1d`). ``label_noise`` /
    ``noise_model`` / ``duplicates`` corrupt the training split (copies are
    made on the 40-point signals): see ``coreset.data._noise``."""
    from ._base import Dataset, zipf_class_sizes
    from ._noise import apply_noise, check_noise

    check_noise(label_noise, noise_model, duplicates)
    n_test_per_class = check_int(n_test_per_class, "n_test_per_class", low=0)
    unknown = set(transform) - set(MNIST1D_DEFAULTS)
    if unknown:
        raise ValidationError(f"unknown MNIST-1D transform parameter(s) {sorted(unknown)}; "
                              f"choose from {sorted(MNIST1D_DEFAULTS)}")
    knobs = {**MNIST1D_DEFAULTS, **transform}
    seed = random_state if isinstance(random_state, (int, np.integer)) else None
    rng = check_random_state(random_state)
    sizes = zipf_class_sizes(n_samples, 10, s)
    y = rng.permutation(np.repeat(np.arange(10, dtype=np.int64), sizes))
    y_test = np.repeat(np.arange(10, dtype=np.int64), n_test_per_class)
    X = make_mnist1d(y, random_state=rng, **knobs)
    X_test = make_mnist1d(y_test, random_state=rng, **knobs) if n_test_per_class else None
    ds = Dataset(
        "mnist1d_lt", X, y, X_test, y_test if n_test_per_class else None,
        description=f"MNIST-1D signals (40 points), 10 digits, share ∝ 1/c^{s}",
        params=dict(n_samples=n_samples, s=s, n_test_per_class=n_test_per_class, random_state=seed, **knobs),
        class_names=tuple(str(d) for d in range(10)),
    )
    return apply_noise(ds, label_noise=label_noise, noise_model=noise_model, duplicates=duplicates,
                       random_state=random_state)
