"""Notebook 06's comparison on synthetic saved results: loading and alignment (utils.evaluation.compare),
the tables and threshold studies written in the notebook (utils.lessons.comparison, utils.lessons.thresholds),
the figures (utils.evaluation.plots)."""
import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from utils import config
from utils.evaluation import compare, plots, results
from utils.evaluation.metrics import MostFrequentBaseline, apply_thresholds, evaluate, f1_scores, per_genre_report
from utils.lessons import comparison, thresholds

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
    table = comparison.comparison_table(saved)
    res = saved["tfidf_logreg"]
    expected = evaluate(res["test_true"], res["test_prob"], res["thresholds"]["global"])
    assert table.loc["tfidf_logreg", "micro_f1"] == pytest.approx(expected["micro_f1"])
    assert table.loc["tfidf_logreg", "micro_f1"] == pytest.approx(res["metrics"]["test"]["global"]["micro_f1"])
    assert table.loc["trivial_baseline", "micro_f1_vs_baseline"] == 0
    assert table.loc["tfidf_logreg", "micro_f1"] > table.loc["bilstm_w2v", "micro_f1"] > table.loc["trivial_baseline", "micro_f1"]
    per = comparison.comparison_table(saved, "per_genre")
    assert per.loc["bilstm_w2v", "micro_f1"] == pytest.approx(saved["bilstm_w2v"]["metrics"]["test"]["per_genre"]["micro_f1"])
    assert per["threshold"].isna().all()
    assert comparison.comparison_table({}).empty


def test_strategy_thresholds(saved):
    res = saved["bilstm_w2v"]
    y, p = res["val_true"], res["val_prob"]
    glob = thresholds.strategy_thresholds(y, p)
    assert np.all(glob == res["thresholds"]["global"])
    kept = thresholds.strategy_thresholds(y, p, min_positives=20)
    saved_per = compare.threshold_vector(res, "per_genre")
    assert np.allclose(kept, saved_per)                     # what save_results chose with its >= 20 rule
    halfway = thresholds.strategy_thresholds(y, p, min_positives=1, shrink=0.5)
    free = thresholds.strategy_thresholds(y, p, min_positives=1)
    assert np.allclose(halfway, (free + glob) / 2)


def test_validation_halves_cover_every_title_twice():
    pairs = thresholds.validation_halves(11, repeats=3, seed=1)
    assert len(pairs) == 6
    for a, b in pairs:
        assert sorted(np.concatenate([a, b])) == list(range(11)) and not set(a) & set(b)
    assert all(np.array_equal(x, y) for (x, _), (_, y) in zip(pairs[::2], pairs[1::2]))   # used both ways


def test_tuning_study(saved):
    res = saved["tfidf_logreg"]
    study = thresholds.tuning_study(res, repeats=2)
    assert list(study.index) == list(thresholds.STRATEGIES)
    assert ((study >= 0) & (study <= 1)).all().all()
    glob = evaluate(res["test_true"], res["test_prob"], res["thresholds"]["global"])
    assert study.loc["global", "test_micro"] == pytest.approx(glob["micro_f1"])
    # held out = scored on titles the thresholds were not tuned on: not the in-sample score
    in_sample = f1_scores(res["val_true"], apply_thresholds(res["val_prob"], res["thresholds"]["global"]))
    assert study.loc["global", "heldout_micro"] != pytest.approx(in_sample["micro_f1"])
    shrinks = {f"shrink {s}": (1, s) for s in [0, 1.0]}
    two = thresholds.tuning_study(res, strategies=shrinks, repeats=2)
    assert two.loc["shrink 1.0"].to_dict() == pytest.approx(study.loc["global"].to_dict())


def test_f1_matrix_and_cardinality(saved):
    matrix = comparison.per_genre_f1_matrix(saved)
    assert matrix.shape == (3, len(GENRES)) and list(matrix.columns[:2]) == ["G0", "G1"]
    assert (matrix.loc["trivial_baseline"].iloc[-3:] == 0).all()   # the baseline never predicts rare genres
    res = saved["bilstm_w2v"]
    report = per_genre_report(res["test_true"], compare.predict(res), GENRES).set_index("genre")
    assert matrix.loc["bilstm_w2v", "G3"] == pytest.approx(report.loc["G3", "f1"])
    assert comparison.per_genre_f1_matrix({}).empty
    card = comparison.cardinality_table(saved)
    assert card.loc["trivial_baseline", "share_none_predicted"] == 0
    assert card["true_mean"].nunique() == 1
    assert card.loc["bilstm_w2v", "pred_mean"] == pytest.approx(compare.predict(res).sum(axis=1).mean())
    shares = comparison.cardinality_shares(saved, max_count=3)
    assert list(shares.index) == ["0", "1", "2", "3+"] and list(shares.columns) == ["true genres", *saved]
    assert np.allclose(shares.sum(), 1)
    true_counts = res["test_true"].sum(axis=1)
    assert shares.loc["3+", "true genres"] == pytest.approx((true_counts >= 3).mean())
    assert comparison.cardinality_shares({}).empty


def test_focus(saved):
    assert compare.pick_focus(saved) == "tfidf_logreg"
    assert compare.pick_focus({"trivial_baseline": saved["trivial_baseline"]}) is None


def test_disagreement():
    a = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 0, 1]])
    b = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0], [1, 0, 0]])
    assert np.allclose(comparison.disagreement({"a": a, "b": b}), [0, 0.5, 0, 1])
    c = np.zeros_like(a)
    # pairs (a,b), (a,c), (b,c): mean of the three Jaccard distances
    expected = (np.array([0, 0.5, 0, 1]) + np.array([1, 1, 0, 1]) + np.array([1, 1, 0, 1])) / 3
    assert np.allclose(comparison.disagreement({"a": a, "b": b, "c": c}), expected)
    with pytest.raises(ValueError, match="at least two"):
        comparison.disagreement({"a": a})


def test_titles_and_texts_without_prepared_data():
    assert compare.titles_and_texts("no_such_dataset") is None


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

    res = saved["tfidf_logreg"]
    curve = pd.DataFrame({"micro_f1": {0.3: 0.5, 0.4: 0.6, 0.5: 0.55}, "macro_f1": {0.3: 0.4, 0.4: 0.35, 0.5: 0.3}})
    pr = {"G0": {"recall": [1, 0.5, 0], "precision": [0.45, 0.8, 1], "positives": 10, "share": 0.45,
                 "points": {"global 0.40": (0.5, 0.8), "per-genre 0.90": None}},
          "G7": {"recall": [], "precision": [], "positives": 0, "share": 0.0, "points": {}}}
    table = comparison.comparison_table(saved)
    per_genre = pd.DataFrame({"genre": GENRES, "val_positives": range(8, 0, -1), "threshold": np.linspace(0.2, 0.6, 8)})
    gains = per_genre.assign(val_gain=0.01, test_gain=-0.01)
    gain_table = pd.DataFrame({"micro_gain": [0.01, -0.02], "macro_gain": [0.03, 0.0]}, index=["a", "b"])
    figs = [plots.plot_threshold_curves({"m": curve}, {"m": 0.4}), plots.plot_pr_curves(pr, "m"),
            plots.plot_comparison(table), plots.plot_f1_heatmap(comparison.per_genre_f1_matrix(saved)),
            plots.plot_cardinality(comparison.cardinality_shares(saved)),
            plots.plot_per_genre_thresholds(per_genre, res["thresholds"]["global"], "m"),
            plots.plot_per_genre_gains(gains, "m"), plots.plot_gains(gain_table),
            plots.plot_threshold_curves({}, {}), plots.plot_pr_curves({}), plots.plot_comparison(pd.DataFrame()),
            plots.plot_f1_heatmap(pd.DataFrame()), plots.plot_cardinality(pd.DataFrame()),
            plots.plot_per_genre_thresholds(pd.DataFrame(), 0.5), plots.plot_per_genre_gains(pd.DataFrame()),
            plots.plot_gains(pd.DataFrame())]
    for fig in figs:
        assert fig.axes and all(ax.get_title() or not ax.axison for ax in fig.axes if ax.get_label() != "<colorbar>")
        plt.close(fig)


def test_reliability_bins_and_ece():
    rng = np.random.default_rng(1)
    p = rng.random((4000, 5))
    y = (rng.random(p.shape) < p).astype(int)                  # calibrated by construction
    bins = comparison.reliability_bins(y, p)
    assert len(bins) == 10 and bins["count"].sum() == y.size
    assert np.allclose(bins["confidence"], np.arange(10) / 10 + 0.05, atol=0.01)
    assert comparison.expected_calibration_error(y, p) < 0.02
    assert comparison.expected_calibration_error(y, np.clip(p + 0.2, 0, 1)) > 0.15   # shifted: miscalibrated
    assert comparison.expected_calibration_error([[1, 0]], [[1.0, 0.0]]) == 0.0      # p = 1 lands in the last bin
    assert comparison.reliability_bins([[1]], [[0.95]])["count"].iloc[-1] == 1


def test_reliability_bins_match_sklearns_calibration_curve():
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(3)
    p = rng.beta(0.5, 3.0, (3000, 6))                          # skewed toward 0, like genre probabilities
    y = (rng.random(p.shape) < np.clip(1.3 * p, 0, 1)).astype(int)   # probabilities a little too low
    bins = comparison.reliability_bins(y, p)
    used = bins[bins["count"] > 0]
    frequency, confidence = calibration_curve(y.ravel(), p.ravel(), n_bins=10, strategy="uniform")
    assert len(used) == len(frequency)
    assert np.allclose(used["frequency"], frequency) and np.allclose(used["confidence"], confidence)
    # the ECE from sklearn's bins: weights = the pairs per non-empty bin
    counts = np.bincount(np.minimum((p.ravel() * 10).astype(int), 9), minlength=10)
    counts = counts[counts > 0]
    ece = float((counts / counts.sum() * np.abs(frequency - confidence)).sum())
    assert comparison.expected_calibration_error(y, p) == pytest.approx(ece)


def test_reliability_bins_on_the_edges_follow_the_documented_convention():
    """A probability exactly on an inner edge (the trivial baseline's k/n frequencies: 400/2000 = 0.2)
    goes to the UPPER bin in the course's bins, to the lower one in sklearn's calibration_curve."""
    from sklearn.calibration import calibration_curve

    # the convention: 0.2 lands in "0.2-0.3", 0.9 in the last bin, 1.0 in the last bin, 0.0 in the first
    assert comparison.reliability_bins([1], [0.2])["count"]["0.2-0.3"] == 1
    assert comparison.reliability_bins([1], [0.9])["count"]["0.9-1.0"] == 1
    assert comparison.reliability_bins([1], [1.0])["count"]["0.9-1.0"] == 1
    assert comparison.reliability_bins([0], [0.0])["count"]["0.0-0.1"] == 1
    # against sklearn, with 8 bins, whose edges k/8 are exact in binary (0.3 is not: 0.3 * 10 and
    # sklearn's linspace edge 0.30000000000000004 round differently)
    rng = np.random.default_rng(5)
    edges = np.repeat(np.arange(1, 8) / 8, 40)                 # 0.125, 0.25, ..., 0.875, exactly
    p = np.concatenate([edges, rng.uniform(0, 1, 640), [0.0, 1.0]])
    y = (rng.random(p.size) < p).astype(int)
    used = comparison.reliability_bins(y, p, n_bins=8)
    assert (used["count"] > 0).all()
    # sklearn's bins are (a, b]: moving every probability up by one ulp sends exactly the edge values to
    # the upper bin and nothing else, and then sklearn reproduces the course's bins
    frequency, confidence = calibration_curve(y, np.nextafter(p, 2.0).clip(0, 1), n_bins=8, strategy="uniform")
    assert np.allclose(used["frequency"], frequency) and np.allclose(used["confidence"], confidence)
    # on the raw probabilities the two conventions differ: the edge values sit one bin lower in sklearn's
    raw_frequency, raw_confidence = calibration_curve(y, p, n_bins=8, strategy="uniform")
    assert not np.allclose(used["confidence"], raw_confidence)
    down = comparison.reliability_bins(y, np.nextafter(p, -1.0).clip(0, 1), n_bins=8)   # edges one ulp lower
    assert np.allclose(down["frequency"], raw_frequency) and np.allclose(down["confidence"], raw_confidence)


def test_classwise_ece_averages_the_genres_and_ece_terms_sum_to_the_pooled_one():
    rng = np.random.default_rng(4)
    rare = rng.uniform(0.0, 0.05, (5000, 4))                   # four rare genres, calibrated
    common = rng.uniform(0.3, 0.9, (5000, 1))                  # one frequent genre, probabilities too high by 0.2
    p = np.hstack([rare, common])
    y = (rng.random(p.shape) < np.hstack([rare, common - 0.2])).astype(int)
    per_genre = [comparison.expected_calibration_error(y[:, j], p[:, j]) for j in range(5)]
    assert comparison.classwise_ece(y, p) == pytest.approx(np.mean(per_genre))
    assert per_genre[4] == pytest.approx(0.2, abs=0.02) and max(per_genre[:4]) < 0.01
    bins = comparison.reliability_bins(y, p)
    terms = comparison.ece_terms(bins)
    assert terms.sum() == pytest.approx(comparison.expected_calibration_error(y, p))
    assert bins["count"].iloc[0] / bins["count"].sum() == pytest.approx(0.8, abs=0.01)   # the rare genres' pairs
    assert terms.iloc[0] < 0.01 < terms.iloc[3:9].sum()        # the first bin is well calibrated, the gap is above


def test_temperature_scaling_recovers_the_temperature():
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, (3000, 4))
    y = (rng.random(z.shape) < 1 / (1 + np.exp(-z))).astype(int)
    overconfident = 1 / (1 + np.exp(-3 * z))                    # logits three times too large
    assert comparison.fit_temperature(y, overconfident) == pytest.approx(3.0, rel=0.1)
    moderate = np.abs(3 * z) < 15                               # beyond that, the logits are clipped at 1e-7
    assert np.allclose(comparison.scale_probabilities(overconfident, 3.0)[moderate], 1 / (1 + np.exp(-z[moderate])),
                       atol=1e-6)
    assert comparison.binary_cross_entropy(y, comparison.scale_probabilities(overconfident, 3.0)) < \
        comparison.binary_cross_entropy(y, overconfident)
    assert np.allclose(comparison.to_logits([0.5, 0.8]), [0.0, np.log(4)])


def test_calibration_figures():
    import matplotlib.pyplot as plt

    bins = comparison.reliability_bins([[1, 0], [0, 0]], [[0.9, 0.2], [0.1, 0.05]])
    points = pd.DataFrame({"best_f1": [0.2, 0.6], "threshold": [0.1, 0.3]})
    figs = [plots.plot_reliability({"m": bins}), plots.plot_reliability({}),
            plots.plot_threshold_vs_best_f1({"m": points}), plots.plot_threshold_vs_best_f1({})]
    for fig in figs:
        assert fig.axes and all(ax.get_title() or not ax.axison for ax in fig.axes)
        plt.close(fig)


def test_rebuild_missing_runs_notebook_03_fast_only_when_no_real_model(monkeypatch, capsys):
    import subprocess

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", ""))
    assert compare.rebuild_missing({"trivial_baseline": {}, "tfidf_logreg": {}}, "netflix") is False
    assert calls == []
    assert compare.rebuild_missing({"trivial_baseline": {}}, "netflix") is True
    cmd = calls[0]
    assert cmd[cmd.index("--only") + 1] == "03" and "--fast" in cmd and "--full" not in cmd
    out = capsys.readouterr().out
    assert "FAST size" in out and "minutes" in out and "quick run" in out


def test_rebuild_missing_failure_says_what_to_run(monkeypatch):
    import subprocess

    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "cell 'save' failed", ""))
    with pytest.raises(RuntimeError, match="03_.*run that notebook yourself"):
        compare.rebuild_missing({}, "netflix")


def test_load_all_leaves_out_results_of_another_split(tmp_path, monkeypatch):
    from utils.data.splits import split_identity

    monkeypatch.setattr(config, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(config, "PROCESSED_DIR", tmp_path / "processed")   # no prepared split: the first recorded one
    rng = np.random.default_rng(0)
    y_val, pv = synthetic(1.0, 50, rng)
    y_test, pt = synthetic(1.0, 60, rng)
    val_ids, test_ids = [f"v{i}" for i in range(50)], [f"t{i}" for i in range(60)]
    for name, split in (("tfidf_logreg", split_identity(test_ids, 1)), ("bilstm_w2v", split_identity(val_ids, 2))):
        results.save_results(name, GENRES, val_ids, y_val, pv, test_ids, y_test, pt, dataset="toy", split=split)
    with pytest.warns(UserWarning, match="bilstm_w2v was made on another split .*left out of the comparison"):
        loaded = compare.load_all("toy")
    assert list(loaded) == ["tfidf_logreg"]


@pytest.mark.parametrize("env, expected", [(None, ["bilstm_w2v"]), ("0", ["bilstm_w2v"]),
                                           ("1", ["bilstm_w2v", "bert_tfhub_frozen", "bert_tfhub_finetuned"])])
def test_random_weight_models_marked_or_from_the_offline_encoder(monkeypatch, env, expected):
    """Notebook 06's list: results their notebook marked, plus every TF Hub BERT result while the
    environment says the TF Hub encoder is the offline random copy (COURSE_TFHUB_RANDOM_ENCODER=1)."""
    if env is None:
        monkeypatch.delenv("COURSE_TFHUB_RANDOM_ENCODER", raising=False)
    else:
        monkeypatch.setenv("COURSE_TFHUB_RANDOM_ENCODER", env)
    results = {"tfidf_logreg": {"metrics": {"notes": "TF-IDF"}},
               "bilstm_w2v": {"metrics": {"notes": "RANDOM WEIGHTS, NOT A RESULT"}},
               "bert_tfhub_frozen": {"metrics": {"notes": "BERT"}},
               "bert_tfhub_finetuned": {"metrics": {}},
               "minilm_frozen": {"metrics": {"notes": "MiniLM"}}}
    assert compare.random_weight_models(results) == expected
