"""``random_kept:<policy>``: random with the same class budget, drawn from the
rows the default label filter keeps (what the filter alone adds)."""

from __future__ import annotations

import numpy as np
import pytest

from coreset.data import make_zipf
from coreset.pipelines._compare_methods import budget_counts, parse_method, run_selection
from coreset.selectors._label_noise import find_label_suspects


@pytest.fixture(scope="module")
def noisy():
    ds = make_zipf(3000, 16, n_classes=8, random_state=0, label_noise=0.1)
    return np.ascontiguousarray(ds.X, dtype=np.float32), np.asarray(ds.y), np.asarray(ds.flipped)


@pytest.mark.parametrize("policy", ["equal", "proportional"])
def test_same_counts_as_random_budget_and_no_suspect_where_a_class_has_enough(noisy, policy):
    X, y, flipped = noisy
    C, k = int(y.max()) + 1, 300
    kept = run_selection(parse_method(f"random_kept:{policy}"), X, y, C, k, 0)
    rb = run_selection(parse_method(f"random_budget:{policy}"), X, y, C, k, 0)
    counts = budget_counts(y, C, k, policy)
    np.testing.assert_array_equal(np.bincount(y[kept.indices], minlength=C), counts)
    np.testing.assert_array_equal(np.bincount(y[rb.indices], minlength=C), counts)
    assert np.unique(kept.indices).size == k
    found = find_label_suspects(X, y, random_state=0)
    for c in range(C):  # a class with at least its count of kept rows draws no suspect
        rows = np.flatnonzero(y == c)
        if (~found.mask[rows]).sum() >= counts[c]:
            assert not found.mask[kept.indices[y[kept.indices] == c]].any()
    # the filter removes most flipped rows: far fewer of them than in the plain random draw
    assert flipped[kept.indices].mean() < 0.5 * flipped[rb.indices].mean()
