"""Score-based selectors (EL2N, GraNd, forgetting, uncertainty) and the
error-driven class budget: directions on hand-made easy/hard points, oracles
for the closed forms, seeds, and the composition with ClassBalanced."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import coreset  # noqa: E402
from coreset.exceptions import UnknownNameError, ValidationError  # noqa: E402
from coreset.pipelines._scoring import class_errors, compute_scores, fit_probe  # noqa: E402
from coreset.selectors import ClassBalanced, allocate_budget  # noqa: E402
from coreset.selectors._scores import EL2NSelector, ScoreSelector, rank_by_score  # noqa: E402


@pytest.fixture(scope="module")
def easy_hard():
    """Two classes split by x0 = 0: 'far' points at |x0| ~ 4, 'boundary' points
    at |x0| < 0.4 (labelled by their side), 'flipped' points deep in class 1's region labelled 0 (and back)."""
    rng = np.random.default_rng(0)
    far0 = np.c_[rng.normal(-4, 0.3, 60), rng.normal(0, 1, 60)]
    far1 = np.c_[rng.normal(4, 0.3, 60), rng.normal(0, 1, 60)]
    side = np.where(np.arange(20) % 2 == 1, 1.0, -1.0)
    bnd = np.c_[side * rng.uniform(0.05, 0.4, 20), rng.normal(0, 1, 20)]  # correctly labelled, near the line
    flip = np.c_[np.r_[rng.normal(4, 0.3, 5), rng.normal(-4, 0.3, 5)], rng.normal(0, 1, 10)]
    X = np.r_[far0, far1, bnd, flip].astype(np.float32)
    y = np.r_[np.zeros(60), np.ones(60), np.arange(20) % 2, np.zeros(5), np.ones(5)].astype(np.int64)
    groups = {"far": np.arange(120), "boundary": np.arange(120, 140), "flipped": np.arange(140, 150)}
    return X, y, groups


@pytest.mark.parametrize("score", ["el2n", "grand", "forgetting"])
def test_label_aware_scores_rank_flipped_hardest_and_far_easiest(easy_hard, score):
    X, y, g = easy_hard
    s = compute_scores(X, y, score, epochs=15, random_state=0, device="cpu")
    assert s.shape == (150,) and np.isfinite(s).all()
    if score == "forgetting":
        # most flipped points are never learned (scored epochs + 1); a few may be "learned" while the
        # early model is still inverted, then forgotten once
        assert (s[g["flipped"]] == 16).sum() >= 7 and s[g["flipped"]].mean() > s[g["boundary"]].max()
        assert s[g["boundary"]].mean() > s[g["far"]].mean() and (s[g["far"]] == 0).all()
    elif score == "grand":  # |p - e| * sqrt(1 + |h|^2): a boundary point far along x1 can outscore a flipped one
        assert s[g["flipped"]].mean() > s[g["boundary"]].mean() > s[g["far"]].mean()
        assert np.median(s[g["flipped"]]) > np.percentile(s[g["boundary"]], 75)
    else:
        assert s[g["flipped"]].min() > s[g["boundary"]].max(), score
        assert s[g["boundary"]].min() > np.median(s[g["far"]]), score
    # the selector, keep="hardest", takes exactly the flipped points first
    sel = coreset.select(X, n_select=10, y=y, method=score, random_state=0, device="cpu",
                         **({"epochs": 15} if score != "forgetting" else {}))
    # GraNd's last-layer norm also grows with |h| (the input here), so a boundary point may slip in
    need = {"el2n": 10, "grand": 8, "forgetting": 7}[score]
    assert np.isin(sel.indices, g["flipped"]).sum() >= need, (score, sel.indices)
    easy = coreset.select(X, n_select=30, y=y, method=score, keep="easiest", random_state=0, device="cpu")
    assert set(easy.indices) <= set(g["far"])


@pytest.mark.parametrize("kind", ["least_confidence", "entropy", "margin"])
def test_uncertainty_is_highest_on_the_boundary(easy_hard, kind):
    X, y, g = easy_hard
    s = compute_scores(X, y, kind, epochs=15, random_state=0, device="cpu")
    assert s[g["boundary"]].mean() > s[g["far"]].mean() + 0.1
    sel = coreset.select(X, n_select=15, y=y, method="uncertainty", score=kind, random_state=0, device="cpu",
                         epochs=15)
    assert np.isin(sel.indices, g["boundary"]).mean() >= 0.8
    # no label information: flipped points sit deep in a class region, the model is sure of them
    assert s[g["flipped"]].mean() < s[g["boundary"]].mean()


def test_forgetting_never_learned_counts_most_and_matches_a_naive_replay(easy_hard):
    X, y, g = easy_hard
    epochs = 8
    s = compute_scores(X, y, "forgetting", epochs=epochs, random_state=3, device="cpu")
    assert (s[g["flipped"]] == epochs + 1).sum() >= 7  # mislabelled: never learned -> most forgotten
    # replay the same seeded run, recording each example's correctness at every presentation
    seq = {i: [] for i in range(150)}

    def record(idx, logits):
        for i, p in zip(idx.tolist(), logits.argmax(1).tolist()):
            seq[i].append(p == y[i])

    fit_probe(X, y, n_classes=2, epochs=epochs, lr=5e-2, random_state=3, on_batch=record)
    naive = np.array([epochs + 1 if not any(v[1:]) else sum(a and not b for a, b in zip(v, v[1:])) for v in
                      (seq[i] for i in range(150))], float)
    np.testing.assert_array_equal(s, naive)
    assert s.max() == epochs + 1 and (s[g["far"]] < epochs + 1).all()


def test_el2n_and_grand_of_a_given_model_match_hand_and_autograd():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((12, 4)).astype(np.float32)
    y = rng.integers(0, 3, 12)
    y[:3] = [0, 1, 2]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()
    model = model.float()
    with torch.no_grad():
        logits = model(torch.from_numpy(X)).double().numpy()
    P = np.exp(logits - logits.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    el2n = np.linalg.norm(P - np.eye(3)[y], axis=1)
    np.testing.assert_allclose(compute_scores(X, y, "el2n", model=model, device="cpu"), el2n, rtol=1e-5)
    # GraNd: the norm of d CE / d (last layer weight, bias), one example at a time, by autograd
    last = model[2]
    ref = []
    for i in range(12):
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(X[i:i + 1])), torch.tensor([int(y[i])]))
        loss.backward()
        ref.append(np.sqrt(float((last.weight.grad ** 2).sum() + (last.bias.grad ** 2).sum())))
    np.testing.assert_allclose(compute_scores(X, y, "grand", model=model, device="cpu"), ref, rtol=1e-4)
    # uncertainty by hand
    top = -np.sort(-P, axis=1)
    np.testing.assert_allclose(compute_scores(X, y, "margin", model=model, device="cpu"), 1 - (top[:, 0] - top[:, 1]),
                               rtol=1e-5)
    np.testing.assert_allclose(compute_scores(X, y, "entropy", model=model, device="cpu"),
                               -(P * np.log(P)).sum(1), rtol=1e-5)


def test_scores_reproducible_with_a_seed_and_differ_across_seeds(easy_hard):
    X, y, _ = easy_hard
    a = compute_scores(X, y, "el2n", n_models=2, epochs=3, random_state=5, device="cpu")
    b = compute_scores(X, y, "el2n", n_models=2, epochs=3, random_state=5, device="cpu")
    c = compute_scores(X, y, "el2n", n_models=2, epochs=3, random_state=6, device="cpu")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    s1 = EL2NSelector(20, random_state=4, device="cpu").fit(X, y)
    s2 = EL2NSelector(20, random_state=4, device="cpu").fit(X, y)
    np.testing.assert_array_equal(s1.scores_, s2.scores_)
    np.testing.assert_array_equal(s1.selection_.indices, s2.selection_.indices)


def test_rank_by_score_hand_cases():
    s = [0.1, 0.9, 0.5, 0.9, 0.3]
    assert rank_by_score(s, 2, "hardest").tolist() == [1, 3]          # tie -> lower index first
    assert rank_by_score(s, 2, "easiest").tolist() == [0, 4]
    assert rank_by_score(s, 2, "middle").tolist() == [2, 4]           # median 0.5: |0|, then |0.2|
    assert rank_by_score(s, 2, "hardest", prune_hardest=0.4).tolist() == [2, 4]  # cut 1 and 3 first
    assert rank_by_score(s, 5, "hardest", prune_hardest=0.4).tolist() == [1, 3, 2, 4, 0]  # never cut below k


def test_given_scores_no_labels_weights_and_gains():
    X = np.random.default_rng(0).standard_normal((10, 3))
    scores = np.arange(10.0)[::-1]
    sel = ScoreSelector(3, scores=scores).fit(X).selection_
    assert sel.indices.tolist() == [0, 1, 2]
    assert sel.gains.tolist() == [9.0, 8.0, 7.0] and sel.weights.sum() == pytest.approx(10)
    assert sel.meta["score_source"] == "array" and sel.meta["keep"] == "hardest"
    with pytest.raises(ValidationError, match="scores must be 10 finite"):
        ScoreSelector(3, scores=np.ones(9)).fit(X)
    with pytest.raises(UnknownNameError, match="did you mean 'easiest'"):
        ScoreSelector(3, scores=scores, keep="easyest").fit(X)
    with pytest.raises(ValidationError, match="needs labels"):
        EL2NSelector(3).fit(X)
    with pytest.raises(ValidationError, match="forgetting"):
        compute_scores(X, np.arange(10) % 2, "forgetting", model=torch.nn.Linear(3, 2))


def test_class_balanced_ranks_each_class_by_the_global_scores():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 3))
    y = np.repeat([0, 1, 2, 3], 10)
    scores = rng.random(40)
    sel = ClassBalanced(ScoreSelector(scores=scores), policy="equal", n_select=8).fit(X, y).selection_
    for c in range(4):
        members = np.flatnonzero(y == c)
        want = members[np.argsort(-scores[members])[:2]]
        assert set(sel.indices[sel.labels == c]) == set(want)


def test_error_budget_hand_case_and_fallback():
    assert allocate_budget([50, 50, 50], 20, "error", class_errors=[0.1, 0.3, 0.0]).tolist() == [5, 15, 0]
    assert allocate_budget([50, 50, 50], 21, "error", class_errors=[0.1, 0.3, 0.0], min_per_class=1).tolist() \
        == [5, 15, 1]
    assert allocate_budget([60, 30, 10], 10, "error", class_errors=[0, 0, 0]).tolist() == [6, 3, 1]
    # the zero-error class only takes what the others cannot hold
    assert allocate_budget([5, 5, 90], 20, "error", class_errors=[0.5, 0.5, 0.0]).tolist() == [5, 5, 10]
    with pytest.raises(ValidationError, match="class_errors"):
        allocate_budget([5, 5], 4, "error")
    with pytest.raises(ValidationError, match="class_errors must be 2"):
        allocate_budget([5, 5], 4, "error", class_errors=[0.1])
    X = np.abs(np.random.default_rng(0).standard_normal((20, 3)))
    with pytest.raises(ValidationError, match="precomputed"):  # a similarity is not features to probe
        coreset.select(X @ X.T, n_select=4, y=np.repeat([0, 1], 10), metric="precomputed", class_budget="error")


def test_error_budget_gives_the_confused_classes_more():
    """Class 0 far from the rest; classes 1 and 2 overlap: DRoP gives 1 and 2 most of the budget."""
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(-6, 1, (80, 2)), rng.normal(1, 1, (80, 2)), rng.normal(1.5, 1, (80, 2))]
    y = np.repeat([0, 1, 2], 80)
    classes, err = class_errors(X, y, random_state=0, device="cpu")
    assert classes.tolist() == [0, 1, 2] and err[0] < 0.05 and min(err[1], err[2]) > 0.1 and err[1] + err[2] > 0.5
    sel = coreset.select(X, n_select=30, y=y, method="random", class_budget="error", random_state=0)
    counts = np.bincount(sel.labels, minlength=3)
    assert counts.sum() == 30 and counts[0] <= 3 and counts[1] >= 10 and counts[2] >= 10
    assert sel.meta["class_budget"] == "error"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_scores_on_cuda_match_cpu(easy_hard):
    X, y, _ = easy_hard
    cpu = compute_scores(X, y, "el2n", n_models=2, epochs=3, random_state=1, device="cpu")
    gpu = compute_scores(X, y, "el2n", n_models=2, epochs=3, random_state=1, device="cuda")
    np.testing.assert_allclose(gpu, cpu, atol=1e-3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error_not_a_cpu_run(easy_hard):
    from coreset.exceptions import BackendUnavailableError

    X, y, _ = easy_hard
    with pytest.raises(BackendUnavailableError, match="GPU"):
        compute_scores(X, y, "el2n", device="cuda")
