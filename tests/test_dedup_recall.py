"""Near-duplicate search recall: planted copies at cosine 0.99 (the hardest
copy the target names) on clustered and on unclustered data, and the sampled
exact check behind ``coreset dedup``'s recall line against a brute-force
count."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from coreset.cli import app
from coreset.selectors import DedupSelector
from coreset.selectors._dedup_recall import estimate_recall


def with_copies(base, n_copies, cos, rng):
    """``base`` plus ``n_copies`` rows, each at cosine ``cos`` to a distinct
    random base row. Returns (X, source of every row: itself for base rows)."""
    n, d = base.shape
    src = rng.choice(n, size=n_copies, replace=False)
    u = base[src] / np.linalg.norm(base[src], axis=1, keepdims=True)
    g = rng.standard_normal((n_copies, d))
    g -= np.einsum("ij,ij->i", g, u)[:, None] * u  # orthogonal to the source
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    copies = np.linalg.norm(base[src], axis=1, keepdims=True) * (cos * u + np.sqrt(1 - cos**2) * g)
    return np.concatenate([base, copies]).astype(np.float32), np.concatenate([np.arange(n), src])


def share_found(labels, source):
    copies = np.flatnonzero(source != np.arange(source.size))
    return float(np.mean(labels[copies] == labels[source[copies]]))


@pytest.mark.parametrize("data", ["uniform", "clustered"])
def test_planted_copies_at_cosine_099_are_found(data):
    """60,000 x 32 with 6,000 copies, one per source (each must be found
    directly), partitioned search with the defaults (cells of 64 rows, each row
    in its 3 nearest). Measured: 0.9992 uniform, 1.0 clustered; the previous
    defaults (cells of 256 rows, 2 per row) found 0.982 and 0.9997. Floor: the
    target, 0.995."""
    rng = np.random.default_rng(5)
    if data == "uniform":
        base = rng.standard_normal((54_000, 32))
    else:
        base = rng.standard_normal((300, 32))[rng.integers(0, 300, 54_000)] + 0.3 * rng.standard_normal((54_000, 32))
    X, source = with_copies(base, 6_000, 0.99, rng)
    perm = rng.permutation(X.shape[0])
    X, source = X[perm], np.argsort(perm)[source[perm]]
    est = DedupSelector(0.95, exact=False, random_state=0).fit(X)
    assert est.selection_.meta["graph"]["exact"] is False
    assert share_found(est.labels_, source) >= 0.995


def brute_force_recall(X, labels, keep):
    """Over rows ``keep``: pairs (q, j != q, rows not identical) with cosine >=
    0.95, and how many share a label."""
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = U[keep] @ U.T
    q, j = np.nonzero(S >= np.float32(0.95))
    q = keep[q]
    ok = (q != j) & ~(X[q] == X[j]).all(1)
    q, j = q[ok], j[ok]
    return q.size, int((labels[q] == labels[j]).sum())


def test_recall_estimate_is_the_brute_force_count():
    rng = np.random.default_rng(3)
    X, source = with_copies(rng.standard_normal((1500, 16)), 300, 0.99, rng)
    X = np.concatenate([X, X[:40]])  # exact copies: never counted (the hash groups them)
    labels = np.concatenate([source, source[:40]]).copy()
    labels[rng.choice(1500, 60, replace=False)] = -1 - np.arange(60)  # 60 rows split from their copies: misses
    pairs, found = brute_force_recall(X, labels, np.arange(X.shape[0]))
    assert 0 < found < pairs
    est = estimate_recall(X, labels, 0.95, n_samples=10**6)
    assert (est["pairs"], est["found"], est["rows"]) == (pairs, found, X.shape[0])
    assert est["recall"] == pytest.approx(found / pairs)
    # a sample: an unbiased share of the same pairs
    part = estimate_recall(X, labels, 0.95, n_samples=600, random_state=1)
    assert part["rows"] == 600 and 0 < part["pairs"] < pairs
    assert abs(part["recall"] - found / pairs) < 0.05


def test_recall_estimate_euclidean_and_bad_input():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 8)).astype(np.float32)
    X[150:] = X[:150] + 0.01 * rng.standard_normal((150, 8)).astype(np.float32)
    gamma, t = 0.05, 0.99
    d2 = ((X[:, None, :].astype(np.float64) - X[None, :, :]) ** 2).sum(-1)
    labels = np.arange(300) % 150
    labels[:10] += 1000  # ten originals split from their copy
    q, j = np.nonzero((np.exp(-gamma * d2) >= t) & ~np.eye(300, dtype=bool))
    est = estimate_recall(X, labels, t, metric="euclidean", gamma=gamma, n_samples=300)
    assert est["pairs"] == q.size and est["found"] == int((labels[q] == labels[j]).sum())
    from coreset import ValidationError

    with pytest.raises(ValidationError, match="gamma"):
        estimate_recall(X, labels, t, metric="euclidean")
    with pytest.raises(ValidationError, match="n_samples"):
        estimate_recall(X, labels, t, n_samples=0)


def test_cli_prints_the_estimated_recall(tmp_path):
    rng = np.random.default_rng(6)
    X, _ = with_copies(rng.standard_normal((3000, 16)), 300, 0.99, rng)
    np.save(tmp_path / "emb.npy", X)
    runner = CliRunner()
    res = runner.invoke(app, ["dedup", str(tmp_path / "emb.npy"), "--approximate", "-o", str(tmp_path / "a.npz")])
    assert res.exit_code == 0, res.output
    assert "estimated" in res.stdout and "sampled rows" in res.stdout
    res = runner.invoke(app, ["dedup", str(tmp_path / "emb.npy"), "--approximate", "--recall-sample", "500",
                              "--json", "-o", str(tmp_path / "b.npz")])
    r = json.loads(res.stdout)["recall_estimate"]
    est = DedupSelector(0.95, exact=False, random_state=0).fit(X)
    assert r == estimate_recall(X, est.labels_, 0.95, n_samples=500, random_state=0)
    res = runner.invoke(app, ["dedup", str(tmp_path / "emb.npy"), "--exact", "--json", "-o", str(tmp_path / "c.npz")])
    assert json.loads(res.stdout)["recall_estimate"] == {"recall": 1.0, "exact": True}
