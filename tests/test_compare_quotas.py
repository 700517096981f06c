"""compare's quotas and losses: DRoP's error-driven quotas (hand-made recall),
its validation split carved from the training rows, the sqrt policy, the
``+la`` / ``+bs`` loss suffixes and ``rs2:<policy>`` schedules, on digits-lt."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from coreset.exceptions import UnknownNameError, ValidationError  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    from coreset.pipelines._compare import prepare_data

    return prepare_data("digits-lt")


def test_drop_quotas_hand_made_recall():
    from coreset.pipelines._compare_methods import drop_quotas

    # errors 0.1, 0.5, 1.0, 0.0; k = 60: class 2 is capped at its 10 rows, class 3 (no error) keeps its floor of 1,
    # the other 49 go 1 : 5 to classes 0 and 1 (8.17, 40.83 -> 8, 41 by largest remainder)
    q = drop_quotas([0.9, 0.5, 0.0, 1.0], [100, 50, 10, 40], 60)
    assert q.tolist() == [8, 41, 10, 1] and q.sum() == 60
    # surplus redistributed when a class's share exceeds its size; an unmeasured class (NaN) counts as error 1
    q = drop_quotas([np.nan, 0.5, 0.5], [3, 100, 100], 50)
    assert q.tolist() == [3, 24, 23] or q.tolist() == [3, 23, 24]
    assert q.sum() == 50
    np.testing.assert_array_equal(drop_quotas([0.2, 0.2], [10, 30], 40), [10, 30])       # whole data
    with pytest.raises(ValidationError, match="recall must be 3 values in"):
        drop_quotas([0.1, 1.5, 0.2], [10, 10, 10], 5)


def test_validation_split_is_stratified_seeded_and_inside_training():
    from coreset.pipelines._compare_methods import validation_split

    y = np.repeat(np.arange(5), [40, 10, 3, 2, 1])
    fit, val = validation_split(y, 0.2, seed=4)
    assert np.intersect1d(fit, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([fit, val])), np.arange(y.size))  # only training rows
    assert np.bincount(y[val], minlength=5).tolist() == [8, 2, 1, 1, 0]   # round(0.2 n), >= 1, never the last row
    again = validation_split(y, 0.2, seed=4)
    np.testing.assert_array_equal(again[1], val)
    assert not np.array_equal(validation_split(y, 0.2, seed=5)[1], val)


def test_drop_recall_on_the_validation_split(digits):
    from coreset.pipelines._compare_methods import SCORE_EPOCHS, drop_recall, validation_split
    from coreset.pipelines._scoring import fit_probe, predict_proba

    _, X, y, Xt, yt, classes = digits
    C = classes.size
    recall, grads, fwd = drop_recall(X, y, C, seed=2)
    fit, val = validation_split(y, seed=2)
    assert grads == SCORE_EPOCHS * fit.size and fwd == val.size
    net = fit_probe(X[fit], y[fit], n_classes=C, epochs=SCORE_EPOCHS, random_state=2, device="cpu")
    pred = predict_proba(net, X[val]).argmax(1)
    for c in range(C):
        m = y[val] == c
        assert recall[c] == pytest.approx((pred[m] == c).mean())


def test_method_names_losses_and_policies():
    from coreset.pipelines import COMPARE_METHODS
    from coreset.pipelines._compare_augment import parse_methods
    from coreset.pipelines._compare_methods import ALPHA, budget_counts, parse_method

    assert ALPHA == 0.5            # "tempered" in compare is sqrt; "sqrt" stays 0.5 whatever ALPHA becomes
    spec = parse_method("facility_location:tempered+weighted+la")
    assert (spec.kind, spec.policy, spec.weighted, spec.loss, spec.normalize) == (
        "objective", "tempered", True, "logit_adjusted", "class")
    assert parse_method("rs2:sqrt+bs").loss == "balanced_softmax" and parse_method("rs2:sqrt").kind == "rs2"
    assert parse_method("full+la").full_data and parse_method("random_budget:drop").policy == "drop"
    assert {"rs2:equal", "random_budget:sqrt", "facility_location:drop+weighted"} <= set(COMPARE_METHODS)
    assert not any(m.endswith(("+la", "+bs")) for m in COMPARE_METHODS)   # "all" has no loss variants
    for bad in ("full_balanced+la", "adaptive+bs"):
        with pytest.raises(ValidationError, match="takes no loss suffix"):
            parse_methods([bad])
    for bad in ("random_budget:equal+la+la", "rs2:equal+weighted", "rs2:sqrt+xx"):
        with pytest.raises(UnknownNameError):
            parse_methods([bad])
    with pytest.raises(UnknownNameError, match="did you mean 'random_budget:equal\\+la'"):
        parse_methods(["random_budget:equal+al"])
    y = np.repeat(np.arange(3), [100, 25, 4])
    assert budget_counts(y, 3, 34, "sqrt").tolist() == [20, 10, 4]


def test_compare_rs2_drop_and_losses_account(digits):
    from coreset.pipelines import compare
    from coreset.pipelines._compare_methods import SCORE_EPOCHS, budget_counts, validation_split

    _, X, y, Xt, yt, _ = digits
    methods = ["rs2:equal", "rs2:drop+la", "random_budget:drop", "random_budget:equal+la", "full+bs"]
    res = compare((X, y, Xt, yt), methods=methods, fractions=[0.2], seeds=[1], epochs=3, plots=False)
    by = {r["method"]: r for r in res.rows}
    n, k = y.size, round(0.2 * y.size)
    fit, val = validation_split(y, seed=1)
    for m in methods[:2]:     # per-epoch resampling: every row is a candidate, k sample-gradients per epoch
        assert by[m]["n_train_rows"] == n and by[m]["sample_gradients"] == 3 * k
    for m in ("rs2:drop+la", "random_budget:drop"):   # the preliminary probe counts as selection compute
        assert by[m]["selection_gradients"] == SCORE_EPOCHS * fit.size and by[m]["selection_forward"] == val.size
    assert by["rs2:equal"]["selection_gradients"] == 0 and by["full+bs"]["sample_gradients"] == 3 * n
    assert budget_counts(y, 10, k, "equal").sum() == k
    for r in res.rows:
        assert 0 <= r["balanced_accuracy"] <= 1
