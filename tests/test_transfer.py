"""Notebook 10's lesson code (utils/lessons/transfer.py, exported from its #@save cells), on small arrays."""
import numpy as np
import pytest
import scipy.sparse as sp

from utils.data.genres import CANONICAL_GENRES
from utils.lessons import transfer


def test_shared_genres_follow_the_taxonomy_and_need_two():
    a = ["Thriller", "Drama", "Comedy", "Anime Shorts", "Horror"]
    b = ["Comedy", "Horror", "Drama", "Anime Shorts", "Western", "Thriller"]
    assert transfer.shared_genres(a, b) == ["Comedy", "Drama", "Horror", "Thriller", "Anime Shorts"]
    assert transfer.shared_genres(b, a) == transfer.shared_genres(a, b)
    with pytest.raises(ValueError, match="share 1 genre"):
        transfer.shared_genres(["Drama", "War"], ["Drama", "Comedy"])


def test_titles_fold_case_and_punctuation_only():
    assert transfer.normalise_title("The Matrix!") == transfer.normalise_title("  the   MATRIX ") == "the matrix"
    assert transfer.normalise_title("Se7en") != transfer.normalise_title("Seven")
    assert transfer.normalise_title(float("nan")) == "nan"   # a missing title is a string, not a crash


def test_select_columns_by_name_in_the_order_asked():
    y = np.array([[1, 0, 1], [0, 1, 0]])
    assert transfer.select_columns(y, ["A", "B", "C"], ["C", "A"]).tolist() == [[1, 1], [0, 0]]
    with pytest.raises(ValueError, match="not among the columns"):
        transfer.select_columns(y, ["A", "B", "C"], ["D"])


def test_transfer_table_uses_the_source_threshold_and_scores_each_pair():
    y = {"a": np.array([[1, 0], [0, 1], [1, 1], [0, 0]]), "b": np.array([[1, 1], [0, 1], [1, 0]])}
    probs = {("a", "a"): y["a"] * 0.8 + 0.1, ("a", "b"): y["b"] * 0.8 + 0.1,
             ("b", "a"): y["a"] * 0.8 + 0.1, ("b", "b"): y["b"] * 0.8 + 0.1}
    table = transfer.transfer_table(probs, {"a": 0.5, "b": 0.95}, y, n_boot=50)
    assert len(table) == 4
    by = table.set_index(["trained on", "tested on"])
    assert by.loc[("a", "b"), "micro_f1"] == 1.0 and by.loc[("a", "b"), "micro_f1_low"] == 1.0
    assert by.loc[("b", "a"), "micro_f1"] == 0.0        # b's threshold (0.95) predicts nothing, on any target
    assert (table["micro_f1_low"] <= table["micro_f1"]).all() and (table["micro_f1"] <= table["micro_f1_high"]).all()


def test_per_genre_drop_is_in_domain_minus_transferred():
    y = np.array([[1, 0], [0, 1], [1, 1]])
    table = transfer.per_genre_drop(y, y, np.array([[1, 0], [0, 0], [0, 0]]), ["A", "B"])
    assert table.loc["A", "F1 in-domain"] == 1.0 and table.loc["B", "F1 transferred"] == 0.0
    assert np.allclose(table["drop"], table["F1 in-domain"] - table["F1 transferred"])
    assert table.loc["A", "drop"] == pytest.approx(1 - 2 / 3)


def test_every_canonical_genre_has_a_description():
    assert set(transfer.GENRE_DESCRIPTIONS) == set(CANONICAL_GENRES)
    assert all(10 < len(text) < 120 for text in transfer.GENRE_DESCRIPTIONS.values())


def test_zero_shot_scores_are_cosines_and_centring_uses_the_reference_means():
    rng = np.random.default_rng(0)
    plots, descriptions = rng.normal(size=(5, 8)), rng.normal(size=(3, 8))
    scores = transfer.zero_shot_scores(plots, descriptions)
    want = (plots / np.linalg.norm(plots, axis=1, keepdims=True)) @ (
        descriptions / np.linalg.norm(descriptions, axis=1, keepdims=True)).T
    assert np.allclose(scores, want, atol=1e-6)
    assert np.allclose(transfer.zero_shot_scores(3 * plots, descriptions), scores, atol=1e-6)
    zero = transfer.zero_shot_scores(np.zeros((1, 8)), descriptions)
    assert np.isfinite(zero).all() and np.allclose(zero, 0)
    assert np.allclose(transfer.centred(scores, scores).mean(axis=0), 0, atol=1e-6)
    assert transfer.SIMILARITY_GRID.min() < 0 < transfer.SIMILARITY_GRID.max() < 1


def _dependent_labels(n=300, seed=0):
    """Two genres read from the features, a third that is their AND: only the label dependence gives it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    y0, y1 = (x[:, 0] > 0).astype(int), (x[:, 1] > 0).astype(int)
    return x, np.column_stack([y0, y1, y0 & y1])


def test_chains_and_stacker_give_probabilities_in_the_original_genre_order():
    x, y = _dependent_labels()
    chains = transfer.chain_ensemble(x, y, n_chains=3, C=1.0, seed=0)
    assert len({tuple(c.order_) for c in chains}) > 1       # random orders, one per chain
    prob = transfer.chain_proba(chains, x)
    assert prob.shape == y.shape and ((prob >= 0) & (prob <= 1)).all()
    assert np.corrcoef(prob[:, 2], y[:, 2])[0, 1] > 0.5     # column 2 is still the AND genre
    stackers = transfer.fit_stacker(transfer.out_of_fold_proba(x, y, C=1.0), y)
    stacked = transfer.stacker_proba(stackers, transfer.one_vs_rest(x, y, C=1.0).predict_proba(x))
    assert stacked.shape == y.shape and ((stacked >= 0) & (stacked <= 1)).all()
    assert len(stackers[0].coef_[0]) == y.shape[1]            # each genre's stacker sees every genre


def test_out_of_fold_probabilities_come_from_models_that_never_saw_the_title():
    # one feature per title: a model that saw a title can memorise its labels, one that did not cannot
    n = 60
    x = sp.identity(n, format="csr")
    y = np.column_stack([np.arange(n) % 2, (np.arange(n) % 3 == 0).astype(int)])
    in_sample = transfer.one_vs_rest(x, y, C=100.0).predict_proba(x)
    oof = transfer.out_of_fold_proba(x, y, C=100.0, folds=5, seed=0)
    assert np.corrcoef(in_sample[:, 0], y[:, 0])[0, 1] > 0.9
    assert abs(np.corrcoef(oof[:, 0], y[:, 0])[0, 1]) < 0.5


def test_the_control_stacker_sees_only_its_own_genre():
    x, y = _dependent_labels(seed=1)
    oof = transfer.out_of_fold_proba(x, y, C=1.0)
    own = transfer.fit_stacker(oof, y, own_only=True)
    assert [m.n_features_in_ for m in own] == [1, 1, 1]
    prob = transfer.one_vs_rest(x, y, C=1.0).predict_proba(x)
    stacked = transfer.stacker_proba(own, prob)
    # its own logit alone: a monotone map of that genre's probability, so the ranking within a genre is kept
    for j in range(3):
        order = np.argsort(prob[:, j])
        assert np.all(np.diff(stacked[order, j]) >= -1e-12) or np.all(np.diff(stacked[order, j]) <= 1e-12)
