"""utils.evaluation.metrics (notebook 03's F1 flavours and baseline, and more) against hand-computed values
and scikit-learn."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from utils.evaluation.metrics import (
    MostFrequentBaseline,
    apply_thresholds,
    evaluate,
    f1_from_counts,
    f1_scores,
    per_genre_report,
    top_k_predictions,
)
from utils.lessons.thresholds import tune_global_threshold, tune_per_genre_thresholds

Y_TRUE = np.array([[1, 0, 1],
                   [0, 1, 0],
                   [1, 1, 0]])
Y_PRED = np.array([[1, 0, 0],   # TP g0, FN g2            -> movie F1 2/3
                   [0, 1, 1],   # TP g1, FP g2            -> movie F1 2/3
                   [1, 1, 0]])  # TP g0, TP g1            -> movie F1 1


def test_f1_flavours_by_hand():
    scores = f1_scores(Y_TRUE, Y_PRED)
    # micro: TP=4, FP=1, FN=1 -> 8/10
    assert scores["micro_f1"] == pytest.approx(0.8)
    # macro: g0 F1=1, g1 F1=1, g2 (TP 0, FP 1, FN 1) F1=0 -> 2/3
    assert scores["macro_f1"] == pytest.approx(2 / 3)
    # samples: mean of 2/3, 2/3, 1
    assert scores["samples_f1"] == pytest.approx(7 / 9)


def test_evaluate_by_hand():
    y_prob = np.where(Y_PRED == 1, 0.8, 0.2)
    y_prob[0, 2] = 0.4  # a missed true genre still ranks above a wrong one in movie 0
    out = evaluate(Y_TRUE, y_prob, 0.5)
    assert out["micro_f1"] == pytest.approx(0.8)
    assert out["hamming_loss"] == pytest.approx(2 / 9)
    assert out["pred_cardinality"] == pytest.approx(5 / 3)
    assert out["true_cardinality"] == pytest.approx(5 / 3)
    # LRAP: movie 0 ranks g0, g2 first (1.0); movie 1 has g1 tied with g2 at 0.8 (1/2... -> rank 2: 0.5); movie 2: 1
    assert out["lrap"] == pytest.approx((1 + 0.5 + 1) / 3)
    # a row-vector of thresholds is applied per genre
    per = evaluate(Y_TRUE, y_prob, [0.5, 0.5, 0.9])
    assert per["micro_f1"] == pytest.approx(2 * 4 / (2 * 4 + 0 + 1))


def test_evaluate_without_any_true_label_gives_nan_lrap():
    out = evaluate(np.zeros((2, 2)), np.full((2, 2), 0.7), 0.5)
    assert np.isnan(out["lrap"]) and out["micro_f1"] == 0.0 and out["pred_cardinality"] == 2.0


def test_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match=r"same shape \(movies x genres\)"):
        evaluate(Y_TRUE, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="2-D"):
        f1_scores([1, 0], [1, 0])


def test_apply_thresholds_is_inclusive():
    assert apply_thresholds([[0.5, 0.49, 0.7]], 0.5).tolist() == [[1, 0, 1]]
    assert apply_thresholds([[0.5, 0.49, 0.7]], [0.6, 0.4, 0.7]).tolist() == [[0, 1, 1]]


def test_per_genre_report():
    table = per_genre_report(Y_TRUE, Y_PRED, ["A", "B", "C"])
    assert isinstance(table, pd.DataFrame)
    assert table["genre"].tolist()[2] == "C"  # support 1: last
    row = table.set_index("genre").loc["C"]
    assert row["precision"] == 0 and row["recall"] == 0 and row["f1"] == 0 and row["support"] == 1
    assert table.set_index("genre").loc["A", "f1"] == 1.0


def test_global_threshold_finds_the_known_optimum():
    # second genre: never true, scored below every grid threshold, so it never counts
    y_true = np.array([[1, 0], [1, 0], [1, 0], [0, 0]])
    y_prob = np.array([[0.8, 0.01], [0.6, 0.01], [0.31, 0.01], [0.2, 0.01]])
    best, curve = tune_global_threshold(y_true, y_prob)
    # every threshold in (0.20, 0.31] is perfect; the one closest to 0.5 is chosen
    assert best == pytest.approx(0.31)
    assert curve[0.31] == 1.0 and curve[0.21] == 1.0 and curve[0.32] < 1.0 and curve[0.2] < 1.0
    assert len(curve) == 91 and min(curve) == pytest.approx(0.05) and max(curve) == pytest.approx(0.95)


def test_global_threshold_metric_and_grid():
    y_true = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
    y_prob = np.array([[0.9, 0.3], [0.1, 0.35], [0.6, 0.1], [0.2, 0.2]])
    best, curve = tune_global_threshold(y_true, y_prob, metric="macro_f1", grid=[0.25, 0.3, 0.5])
    assert set(curve) == {0.25, 0.3, 0.5}
    assert best == 0.3  # catches g1's 0.35 without g1's false 0.3
    with pytest.raises(ValueError, match="metric must be"):
        tune_global_threshold(y_true, y_prob, metric="accuracy")


# genre 0: perfect anywhere in (0.65, 0.75]; genre 1: one positive, perfect in (0.2, 0.3]; genre 2: none
Y3 = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0]])
P3 = np.array([[0.9, 0.1, 0.2], [0.8, 0.1, 0.1], [0.65, 0.3, 0.3],
               [0.6, 0.2, 0.1], [0.75, 0.1, 0.1], [0.1, 0.1, 0.9]])


def test_per_genre_thresholds_tuned_and_fallbacks():
    t = tune_per_genre_thresholds(Y3, P3, fallback=0.5)
    assert t.tolist() == pytest.approx([0.66, 0.30, 0.5])  # closest optimum to the fallback; no positives: fallback
    t = tune_per_genre_thresholds(Y3, P3, fallback=0.5, min_positives=2)
    assert t.tolist() == pytest.approx([0.66, 0.5, 0.5])   # a single positive is too few to tune on


def test_per_genre_default_fallback_is_the_global_threshold():
    best, _ = tune_global_threshold(Y3, P3)
    t = tune_per_genre_thresholds(Y3, P3, min_positives=100)
    assert t.tolist() == pytest.approx([best] * 3)


def test_per_genre_shrink():
    t = tune_per_genre_thresholds(Y3, P3, fallback=0.5, shrink=0.5)
    assert t.tolist() == pytest.approx([0.58, 0.40, 0.5])
    assert tune_per_genre_thresholds(Y3, P3, fallback=0.5, shrink=1.0).tolist() == pytest.approx([0.5] * 3)
    with pytest.raises(ValueError, match="shrink must be between 0 and 1"):
        tune_per_genre_thresholds(Y3, P3, shrink=1.5)


def test_top_k_predictions():
    scores = np.array([[0.1, 0.5, 0.3], [0.9, 0.2, 0.8]])
    assert top_k_predictions(scores, 2).tolist() == [[0, 1, 1], [1, 0, 1]]
    assert top_k_predictions(scores, 3).tolist() == [[1, 1, 1], [1, 1, 1]]
    assert top_k_predictions([[0.5, 0.5, 0.1]], 1).tolist() == [[1, 0, 0]]  # ties: first genre
    for k in (0, 4):
        with pytest.raises(ValueError, match="k must be between 1 and the number of genres"):
            top_k_predictions(scores, k)


def test_most_frequent_baseline_picks_k_on_validation():
    y_train = np.array([[1, 1, 0]] * 6 + [[1, 0, 0]] * 2 + [[0, 0, 1]] * 2)  # freq .8 .6 .2
    y_val = np.array([[1, 1, 0]] * 5)
    base = MostFrequentBaseline().fit(y_train, y_val)
    assert base.frequency_.tolist() == pytest.approx([0.8, 0.6, 0.2])
    assert base.val_scores_ == pytest.approx({1: 2 / 3, 2: 1.0, 3: 0.8})
    assert base.k_ == 2
    assert base.predict(4).tolist() == [[1, 1, 0]] * 4
    assert base.predict(1, k=1).tolist() == [[1, 0, 0]]
    np.testing.assert_allclose(base.predict_proba(2), [[0.8, 0.6, 0.2]] * 2)
    # with validation where one genre is best, k follows
    assert MostFrequentBaseline().fit(y_train, np.array([[1, 0, 0]] * 3)).k_ == 1
    # without validation data k defaults to 1; max_k bounds the search
    assert MostFrequentBaseline().fit(y_train).k_ == 1
    assert MostFrequentBaseline().fit(y_train, np.ones((3, 3)), max_k=2).k_ == 2
    assert MostFrequentBaseline().fit(y_train, np.ones((3, 3))).k_ == 3


def test_f1_scores_match_scikit_learn_on_random_predictions():
    from sklearn.metrics import f1_score

    from utils.evaluation.metrics import f1_scores

    rng = np.random.default_rng(7)
    for _ in range(30):
        n, k = rng.integers(1, 50), rng.integers(2, 9)
        y = (rng.random((n, k)) < rng.random()).astype(int)
        p = (rng.random((n, k)) < rng.random()).astype(int)
        ours = f1_scores(y, p)
        for average in ("micro", "macro", "samples"):
            ref = f1_score(y, p, average=average, zero_division=0)
            assert ours[f"{average}_f1"] == pytest.approx(ref, abs=1e-12)
        t, q = y.astype(bool), p.astype(bool)
        per_genre = f1_from_counts((t & q).sum(0), (~t & q).sum(0), (t & ~q).sum(0))
        np.testing.assert_allclose(per_genre, f1_score(y, p, average=None, zero_division=0), atol=1e-12)


def test_the_metrics_are_notebook_03s():
    """One source: utils.evaluation.metrics hands out the functions notebook 03 writes (#@save metrics)."""
    from utils.evaluation import metrics
    from utils.lessons import metrics as lesson

    for name in ("apply_thresholds", "f1_from_counts", "f1_scores", "top_k_predictions", "MostFrequentBaseline"):
        assert getattr(metrics, name) is getattr(lesson, name), name


# --------------------------------------------------------------------------- bootstrap intervals


def _one_label_each(n, accuracy, genres=4, seed=0, which=0):
    """Every title has one true genre and one predicted genre; ``accuracy`` of them are right.

    Then micro-F1 = samples-F1 = the share right, a binomial proportion whose 95 % interval over
    resampled titles is known: p ± 1.96 * sqrt(p (1 - p) / n).
    """
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, genres, n)
    right = np.zeros(n, dtype=bool)
    right[np.random.default_rng(100 + which).permutation(n)[:round(accuracy * n)]] = True   # which titles are right
    pred = np.where(right, truth, (truth + 1) % genres)
    eye = np.eye(genres, dtype=int)
    return eye[truth], eye[pred]


def test_bootstrap_interval_matches_the_binomial_one_in_a_known_case():
    from utils.evaluation.metrics import bootstrap_interval

    y, pred = _one_label_each(4000, 0.6)
    half = 1.96 * np.sqrt(0.6 * 0.4 / 4000)                         # 0.0152
    ci = bootstrap_interval(y, pred, n_boot=2000, seed=1)
    for key in ("micro_f1", "samples_f1"):
        low, high = ci[key]
        assert low == pytest.approx(0.6 - half, abs=0.003) and high == pytest.approx(0.6 + half, abs=0.003)
    low, high = ci["macro_f1"]
    assert low < f1_scores(y, pred)["macro_f1"] < high
    assert bootstrap_interval(y, y)["micro_f1"] == [1.0, 1.0]         # perfect predictions: no spread


def test_paired_difference_calls_close_models_a_tie_and_far_ones_not():
    from utils.evaluation.metrics import paired_bootstrap_difference

    y, good = _one_label_each(1000, 0.70)
    _, close = _one_label_each(1000, 0.69, which=1)      # right on other titles, one point fewer
    _, poor = _one_label_each(1000, 0.50, which=2)
    tie = paired_bootstrap_difference(y, good, close)["micro_f1"]
    assert tie["tie"] and tie["low"] < 0 < tie["high"] and tie["difference"] == pytest.approx(0.01)
    win = paired_bootstrap_difference(y, good, poor)["micro_f1"]
    assert not win["tie"] and win["low"] > 0.12 and win["difference"] == pytest.approx(0.20)
    with pytest.raises(ValueError, match="at least 2 test titles"):
        paired_bootstrap_difference(y[:1], good[:1], poor[:1])
