"""What the GreeDi tests share (tests/test_greedi*.py): seeded blobs, the
inner selector, exact equality of two selections, a local Ray cluster."""

from __future__ import annotations

import numpy as np
import pytest

from coreset import SubmodularSelector


def blobs(n=1200, d=12, centers=8, seed=0, scale=3.0):
    """``n`` points around ``centers`` Gaussian centres (labels: the centre)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, d)) * scale
    y = rng.integers(0, centers, n)
    return (c[y] + rng.standard_normal((n, d))).astype(np.float32), y


def inner(**kw):
    return SubmodularSelector(similarity="dense", **kw)


def same(a, b):
    """Two selections equal to the bit: picks, weights, gains, objective."""
    assert np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.gains, b.gains)
    assert a.objective == b.objective


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
