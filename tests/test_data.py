import numpy as np
import pytest

from coreset.data import DATASETS, load_dataset, load_digits_lt, make_zipf, zipf_class_sizes
from coreset.exceptions import UnknownNameError


def test_zipf_class_sizes_follow_the_power_law():
    sizes = zipf_class_sizes(100_000, 400, s=1.1)
    assert sizes.sum() == 100_000 and (sizes >= 1).all()
    c = np.arange(1, 401)
    expected = 100_000 * (1 / c**1.1) / (1 / c**1.1).sum()
    big = expected > 50
    np.testing.assert_allclose(sizes[big], expected[big], rtol=0.05)
    assert (np.diff(sizes) <= 0).all()


def test_make_zipf_has_a_real_tail_and_is_seeded():
    d = make_zipf(10_000, 16, random_state=1)
    counts = np.bincount(d.y)
    assert d.X.shape == (10_000, 16) and d.X.dtype == np.float32
    assert counts.max() > 100 * counts.min()
    assert ((counts >= 1) & (counts <= 5)).sum() >= 50  # a tail of classes with 1-5 points
    assert counts[:10].sum() > 0.4 * 10_000  # a few head classes hold much of the data
    e = make_zipf(10_000, 16, random_state=1)
    np.testing.assert_array_equal(d.X, e.X)
    assert not np.array_equal(d.X, make_zipf(10_000, 16, random_state=2).X)


def test_digits_lt_is_long_tailed_with_balanced_test():
    d = load_digits_lt(random_state=0)
    counts = np.sort(np.bincount(d.y, minlength=10))[::-1]
    assert counts[0] > 10 * counts[-1]
    assert np.bincount(d.y_test).tolist() == [40] * 10
    assert d.X.shape[1] == 64 and 0 <= d.X.min() and d.X.max() <= 1


def test_registry():
    assert {"zipf", "digits-lt"} <= set(DATASETS)
    assert load_dataset("digits-lt").name == "digits-lt"
    with pytest.raises(UnknownNameError, match="did you mean 'zipf'"):
        load_dataset("zip")
