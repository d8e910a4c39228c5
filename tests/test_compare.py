"""utils.evaluation.compare on synthetic saved results: alignment, tables, threshold studies, figures."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from utils import config
from utils.evaluation import compare, results
from utils.evaluation.metrics import MostFrequentBaseline, evaluate, f1_scores, apply_thresholds
from utils.lessons.thresholds import tune_global_threshold

GENRES = [f"G{j}" for j in range(8)]
FREQ = np.array([0.45, 0.35, 0.25, 0.15, 0.1, 0.06, 0.04, 0.03])


def synthetic(signal, n, rng, y=None):
    y = (rng.random((n, len(GENRES))) < FREQ).astype(int) if y is None else y
    logit = np.log(FREQ / (1 - FREQ)) + signal * (2 * y - 1) + rng.normal(0, 1.0, y.shape)
    return y, 1 / (1 + np.exp(-logit))


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    """A temporary results/ with a baseline and two models saved by utils.evaluation.results (once per module)."""
    folder = tmp_path_factory.mktemp("course") / "results"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(config, "RESULTS_DIR", folder)
        _save_all()
    return folder


@pytest.fixture
def saved(results_dir, monkeypatch):
    monkeypatch.setattr(config, "RESULTS_DIR", results_dir)
    return compare.load_all("toy")


def _save_all():
    rng = np.random.default_rng(0)
    y_train, _ = synthetic(0, 600, rng)
    y_val, _ = synthetic(0, 300, rng)
    y_test, _ = synthetic(0, 400, rng)
    val_ids, test_ids = [f"v{i}" for i in range(300)], [f"t{i}" for i in range(400)]
    base = MostFrequentBaseline().fit(y_train, y_val)
    results.save_results("trivial_baseline", GENRES, val_ids, y_val, base.predict_proba(300), test_ids, y_test,
                         base.predict_proba(400), dataset="toy")
    for name, signal in [("tfidf_logreg", 2.0), ("bilstm_w2v", 1.0)]:
        _, pv = synthetic(signal, 300, rng, y_val)
        _, pt = synthetic(signal, 400, rng, y_test)
        results.save_results(name, GENRES, val_ids, y_val, pv, test_ids, y_test, pt, dataset="toy", notes="synthetic")


def test_load_all_in_course_order(saved):
    assert list(saved) == ["trivial_baseline", "tfidf_logreg", "bilstm_w2v"]
    assert all(r["genres"] == GENRES for r in saved.values())


def test_align_common_titles_and_genre_order(saved):
    a = dict(saved["tfidf_logreg"])
    b = dict(saved["bilstm_w2v"])
    # b: other genre order, and only the last 300 test titles, shuffled
    order = np.arange(len(GENRES))[::-1]
    keep = np.random.default_rng(1).permutation(np.arange(100, 400))
    b.update(genres=[GENRES[j] for j in order], val_prob=b["val_prob"][:, order], val_true=b["val_true"][:, order],
             test_ids=b["test_ids"][keep], test_prob=b["test_prob"][keep][:, order],
             test_true=b["test_true"][keep][:, order])
    with pytest.warns(UserWarning, match="different titles"):
        aligned = compare.align({"a": a, "b": b})
    assert list(aligned["a"]["test_ids"]) == list(aligned["b"]["test_ids"]) == [f"t{i}" for i in range(100, 400)]
    assert np.array_equal(aligned["a"]["test_true"], aligned["b"]["test_true"])
    assert np.allclose(aligned["b"]["test_prob"], saved["bilstm_w2v"]["test_prob"][100:])
    c = dict(a, genres=[g + "x" for g in GENRES])
    with pytest.warns(UserWarning, match="other genres"):
        assert list(compare.align({"a": a, "c": c})) == ["a"]
    assert compare.align({}) == {}


def test_comparison_table_matches_evaluate(saved):
    table = compare.comparison_table(saved)
    res = saved["tfidf_logreg"]
    expected = evaluate(res["test_true"], res["test_prob"], res["thresholds"]["global"])
    assert table.loc["tfidf_logreg", "micro_f1"] == pytest.approx(expected["micro_f1"])
    assert table.loc["tfidf_logreg", "micro_f1"] == pytest.approx(res["metrics"]["test"]["global"]["micro_f1"])
    assert table.loc["trivial_baseline", "micro_f1_vs_baseline"] == 0
    assert table.loc["tfidf_logreg", "micro_f1"] > table.loc["bilstm_w2v", "micro_f1"] > table.loc["trivial_baseline", "micro_f1"]
    assert compare.comparison_table({}).empty


def test_threshold_curve_matches_sklearn_and_tuning(saved):
    res = saved["bilstm_w2v"]
    curve = compare.threshold_curve(res["val_true"], res["val_prob"])
    for i in [0, 30, 60, 90]:
        ref = f1_scores(res["val_true"], apply_thresholds(res["val_prob"], curve.threshold[i]))
        for metric, value in ref.items():
            assert curve.loc[i, metric] == pytest.approx(value)
    best, _ = tune_global_threshold(res["val_true"], res["val_prob"])
    assert compare.best_global_threshold(res["val_true"], res["val_prob"]) == best == res["thresholds"]["global"]


def test_per_genre_tuning_gains_are_never_negative_on_validation(saved):
    res = saved["bilstm_w2v"]
    from utils.lessons.thresholds import tune_per_genre_thresholds

    free = tune_per_genre_thresholds(res["val_true"], res["val_prob"], min_positives=1,
                                     fallback=res["thresholds"]["global"])
    gains = compare.per_genre_gains(res, free)
    assert (gains["val_gain"] >= -1e-12).all()
    assert list(gains["val_positives"]) == sorted(gains["val_positives"], reverse=True)
    table = compare.per_genre_threshold_table(res, free)
    assert np.allclose(table["from_0.5"], table["threshold"] - 0.5)


def test_tuning_study(saved):
    res = saved["tfidf_logreg"]
    study = compare.tuning_study(res, repeats=2)
    assert list(study.index) == list(compare.TUNING_SETTINGS)
    assert ((study >= 0) & (study <= 1)).all().all()
    glob = evaluate(res["test_true"], res["test_prob"], res["thresholds"]["global"])
    assert study.loc["global", "test_micro"] == pytest.approx(glob["micro_f1"])


def test_global_vs_per_genre(saved):
    table = compare.global_vs_per_genre(saved)
    m = saved["bilstm_w2v"]["metrics"]["test"]
    assert table.loc["bilstm_w2v", "micro_per_genre"] == pytest.approx(m["per_genre"]["micro_f1"])
    assert table.loc["bilstm_w2v", "micro_gain"] == pytest.approx(m["per_genre"]["micro_f1"] - m["global"]["micro_f1"])


def test_f1_matrix_cardinality_focus(saved):
    matrix = compare.per_genre_f1_matrix(saved)
    assert matrix.shape == (3, len(GENRES)) and list(matrix.columns[:2]) == ["G0", "G1"]
    assert (matrix.loc["trivial_baseline"].iloc[-3:] == 0).all()   # the baseline never predicts rare genres
    card = compare.cardinality_table(saved)
    assert card.loc["trivial_baseline", "share_none_predicted"] == 0
    assert card["true_mean"].nunique() == 1
    assert compare.pick_focus(saved) == "tfidf_logreg"
    assert compare.pick_focus({"trivial_baseline": saved["trivial_baseline"]}) is None


def test_disagreements(saved):
    texts = pd.DataFrame({"title": [f"Movie {i}" for i in range(400)], "text": ["word " * 100] * 400},
                         index=[f"t{i}" for i in range(400)])
    table = compare.disagreements(saved, n=4, texts=texts, max_chars=50)
    assert len(table) == 4 and list(table["disagreement"]) == sorted(table["disagreement"], reverse=True)
    assert {"title", "plot", "true", "tfidf_logreg", "bilstm_w2v"} <= set(table.columns)
    assert "trivial_baseline" not in table.columns
    assert table["plot"].str.len().max() <= 55 and table["plot"].iloc[0].endswith("...")
    assert compare.disagreements({"tfidf_logreg": saved["tfidf_logreg"]}).empty


def test_missing_and_text_report(saved):
    missing = compare.missing_models(saved)
    assert "bilstm_w2v" not in sum(missing.values(), []) and any("minilm_finetuned" in v for v in missing.values())
    text = compare.comparison_text("toy")
    assert "Model comparison on the test split (toy" in text and "tfidf_logreg" in text
    assert "--only 05b" in text
    assert "No model results" in compare.comparison_text("nothing_here")
    assert "RANDOM weights" not in text


def test_random_encoder_results_are_flagged(saved, monkeypatch):
    import json

    path = config.RESULTS_DIR / "toy" / "bilstm_w2v" / "metrics.json"
    original = path.read_text()
    metrics = json.loads(original)
    metrics["notes"] = "small BERT, frozen; RANDOM WEIGHTS, NOT A RESULT"
    try:
        path.write_text(json.dumps(metrics))
        assert "note: bilstm_w2v used an encoder with RANDOM weights" in compare.comparison_text("toy")
        flagged = compare.load_all("toy")
        assert compare.is_random_encoder(flagged["bilstm_w2v"])
        tfidf = flagged.pop("tfidf_logreg")
        assert compare.pick_focus(flagged) is None      # only the baseline and a random encoder left
        flagged["tfidf_logreg"] = tfidf
        assert compare.pick_focus(flagged) == "tfidf_logreg"
    finally:
        path.write_text(original)


def test_figures_with_and_without_results(saved):
    import matplotlib.pyplot as plt

    figs = [compare.plot_threshold_curves(saved), compare.plot_pr_curves(saved["tfidf_logreg"], ["G0", "G7"]),
            compare.plot_comparison(compare.comparison_table(saved)),
            compare.plot_f1_heatmap(compare.per_genre_f1_matrix(saved)), compare.plot_cardinality(saved),
            compare.plot_gains(compare.global_vs_per_genre(saved)),
            compare.plot_threshold_curves({}), compare.plot_comparison(pd.DataFrame()),
            compare.plot_f1_heatmap(pd.DataFrame()), compare.plot_cardinality({})]
    for fig in figs:
        assert fig.axes and all(ax.get_title() or not ax.axison for ax in fig.axes if ax.get_label() != "<colorbar>")
        plt.close(fig)
