"""Small API gaps (issue 17): a warm start for the random and k-center
baselines, bfloat16 tensors, DynamicPruning's row check, GreeDi's refusal
of parameters it knows but does not support."""

from __future__ import annotations

import numpy as np
import pytest

import coreset
from coreset.exceptions import ValidationError
from coreset.selectors import KCenterSelector, RandomSelector, SubmodularSelector
from coreset.selectors._baselines import k_center_greedy


# ---------------------------------------------------------------- k-center greedy from given centres
def _brute_k_center(X, k, initial, metric):
    """Farthest-first from ``initial`` by brute force in float64: every
    point's distance to every centre, the first farthest point each step;
    radii (covering radius before each pick) and Voronoi cell sizes (ties to
    the earlier centre)."""
    Z = np.asarray(X, np.float64)
    if metric == "cosine":
        Z = Z / np.linalg.norm(Z, axis=1, keepdims=True)
    D = np.sqrt(((Z[:, None, :] - Z[None, :, :]) ** 2).sum(-1))
    chosen, radii = [], []
    while len(chosen) < k:
        cover = D[:, chosen].min(axis=1) if chosen else np.full(len(Z), np.inf)
        radii.append(float(cover.max()))
        chosen.append(initial[len(chosen)] if len(chosen) < len(initial) else int(np.argmax(cover)))
    owner = np.argmin(D[:, chosen], axis=1)
    return np.array(chosen), np.array(radii), np.bincount(owner, minlength=k).astype(float)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("initial", [[7], [3, 31, 12], list(range(0, 40, 5))])
def test_k_center_from_initial_centres_matches_brute_force(metric, initial):
    X = np.random.default_rng(4).standard_normal((40, 3))
    k = 12
    want_idx, want_radii, want_w = _brute_k_center(X, k, initial, metric)
    idx, radii, w = k_center_greedy(X, k, np.random.default_rng(0), metric=metric, initial=np.array(initial))
    np.testing.assert_array_equal(idx, want_idx)
    assert radii[0] == np.inf
    np.testing.assert_allclose(radii[1:], want_radii[1:], rtol=1e-5)
    np.testing.assert_array_equal(w, want_w)
    # the estimator and select() pass the warm start through
    sel = KCenterSelector(k, metric=metric, random_state=0).fit(X, initial_subset=initial).selection_
    np.testing.assert_array_equal(sel.indices, want_idx)
    np.testing.assert_array_equal(sel.weights, want_w)
    sel = coreset.select(X, k, method="k_center_greedy", metric=metric, initial_subset=initial, random_state=3)
    np.testing.assert_array_equal(sel.indices, want_idx)


def test_k_center_initial_of_the_full_size_is_kept_as_is():
    X = np.random.default_rng(5).standard_normal((30, 2))
    sel = coreset.select(X, 3, method="k_center_greedy", initial_subset=[9, 4, 20], random_state=0)
    np.testing.assert_array_equal(sel.indices, [9, 4, 20])
    assert sel.weights.sum() == 30


# ---------------------------------------------------------------- random with a warm start
def test_random_keeps_the_initial_rows_first_and_draws_the_rest():
    X = np.random.default_rng(6).standard_normal((500, 4))
    initial = [42, 7, 300]
    a = coreset.select(X, 50, method="random", initial_subset=initial, random_state=11)
    b = RandomSelector(50, random_state=11).fit(X, initial_subset=initial).selection_
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.indices[:3], initial)
    rest = a.indices[3:]
    assert rest.size == 47 and np.unique(a.indices).size == 50 and not np.isin(rest, initial).any()
    assert np.all(np.diff(rest) > 0)  # the draws, sorted as without a warm start
    np.testing.assert_allclose(a.weights, 500 / 50)
    # the draws are a seeded uniform sample of the other rows
    others = np.setdiff1d(np.arange(500), initial)
    np.testing.assert_array_equal(rest, np.sort(np.random.default_rng(11).choice(others, 47, replace=False)))
    c = coreset.select(X, 3, method="random", initial_subset=initial, random_state=0)
    np.testing.assert_array_equal(c.indices, initial)


@pytest.mark.parametrize("method", ["random", "k_center_greedy"])
def test_bad_initial_subset_is_refused(method):
    X = np.random.default_rng(7).standard_normal((50, 3))
    with pytest.raises(ValidationError, match=r"initial_subset indices must be in \[0, 49\]; got 50"):
        coreset.select(X, 5, method=method, initial_subset=[1, 50])
    with pytest.raises(ValidationError, match="initial_subset has 6 points but the selection's size is 5"):
        coreset.select(X, 5, method=method, initial_subset=[0, 1, 2, 3, 4, 5])


# ---------------------------------------------------------------- bfloat16 tensors
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_select_accepts_half_precision_tensors(dtype):
    torch = pytest.importorskip("torch")
    X = torch.randn(300, 8, generator=torch.Generator().manual_seed(0)).to(getattr(torch, dtype))
    got = coreset.select(X, 15, random_state=0)
    want = coreset.select(X.float().numpy(), 15, random_state=0)  # the same values, exactly, in float32
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.weights, want.weights)
    assert got.objective == want.objective


# ---------------------------------------------------------------- DynamicPruning.rescale
@pytest.mark.parametrize("rows, match", [
    ([0, 6], r"rows must be row indices of the attached data, in \[0, 5\]; got 6"),
    ([-1, 2], r"rows must be row indices of the attached data, in \[0, 5\]; got -1"),  # would wrap silently
    ([[1, 2]], r"rows must be a 1-D array of integer row indices"),
    ([0.0, 1.0], r"rows must be a 1-D array of integer row indices .*; got dtype float32"),
])
def test_dynamic_pruning_rescale_checks_rows(rows, match):
    torch = pytest.importorskip("torch")
    from coreset.pipelines._pruning import DynamicPruning

    p = DynamicPruning().attach(labels=np.array([0, 1, 0, 1, 1, 0]), epochs=4)
    rows = torch.tensor(rows)
    with pytest.raises(ValidationError, match=match):
        p.rescale(rows, torch.ones(rows.shape[-1]))
    assert np.isnan(p.scores).all()  # nothing recorded
    out = p.rescale(torch.tensor([5, 0]), torch.tensor([0.5, 2.0]))  # in range: recorded, scaled (epoch 0: by 1)
    np.testing.assert_allclose(out.numpy(), [0.5, 2.0])
    assert p.scores[5] == 0.5 and p.scores[0] == 2.0


# ---------------------------------------------------------------- GreeDi: known, not supported
@pytest.mark.parametrize("key, value", [("initial_subset", [1, 2]), ("costs", np.ones(200))])
def test_greedi_refuses_known_parameters_by_name(key, value):
    from coreset.selectors._greedi import GreeDi

    with pytest.raises(ValidationError, match=rf"^{key} \(.*\) is not supported by GreeDi: .*select without partitions"):
        GreeDi(SubmodularSelector(), 2, n_select=10, **{key: value})
    X = np.random.default_rng(8).standard_normal((200, 4)).astype(np.float32)
    with pytest.raises(ValidationError, match=rf"^{key} \(.*\) is not supported by GreeDi"):
        GreeDi(SubmodularSelector(), 2, n_select=10).fit(X, **{key: value})
    with pytest.raises(TypeError, match="unexpected keyword argument 'initial_subsets'"):
        GreeDi(SubmodularSelector(), 2, initial_subsets=[1])


def test_cli_partitions_with_initial_subset_says_greedi_does_not_support_it(tmp_path):
    from typer.testing import CliRunner

    from coreset.cli import app

    np.save(tmp_path / "x.npy", np.random.default_rng(9).standard_normal((300, 4)).astype(np.float32))
    np.save(tmp_path / "init.npy", np.array([3, 1, 4]))
    r = CliRunner().invoke(app, ["select", str(tmp_path / "x.npy"), "--n-select", "10", "--partitions", "2",
                                 "--initial-subset", str(tmp_path / "init.npy"), "-o", str(tmp_path / "o.npz")])
    assert r.exit_code == 1, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: initial_subset (a warm start) is not supported by GreeDi")
    assert not (tmp_path / "o.npz").exists()
