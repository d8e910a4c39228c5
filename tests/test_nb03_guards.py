"""What notebook 03 must leave behind: checks that used to be asserts in its cells.

These run after the notebooks (marker ``after_notebooks``) and read the notebook's
own outputs: results/<dataset>/{trivial_baseline,tfidf_logreg}/ and the saved model.
"""
import numpy as np
import pytest

from utils import config
from utils.evaluation.results import load_results

pytestmark = pytest.mark.after_notebooks


@pytest.fixture(scope="module")
def dataset(notebook_outputs):
    return notebook_outputs("03", config.results_dir() / "tfidf_logreg" / "metrics.json")


def test_tfidf_beats_the_trivial_baseline_on_test(dataset):
    ours = load_results("tfidf_logreg", dataset)["metrics"]["test"]["global"]["micro_f1"]
    trivial = load_results("trivial_baseline", dataset)["metrics"]["test"]["global"]["micro_f1"]
    assert ours > trivial + 0.05, (ours, trivial)


def test_saved_global_threshold_is_the_validation_sweep(dataset):
    from utils.lessons.thresholds import tune_global_threshold

    res = load_results("tfidf_logreg", dataset)
    best, _ = tune_global_threshold(res["val_true"], res["val_prob"])
    assert res["thresholds"]["global"] == pytest.approx(best)


def test_reloaded_model_reproduces_the_notebook_probabilities_from_raw_text(dataset):
    from utils.data.corpus import load_corpus
    from utils.modelfiles.predictor import load_predictor

    res = load_results("tfidf_logreg", dataset)
    corpus = load_corpus(dataset)
    raw = corpus.df.set_index("id").loc[list(res["test_ids"][:50]), "text"].tolist()
    predictor = load_predictor(config.models_dir(dataset) / "tfidf_logreg")
    np.testing.assert_allclose(predictor.predict_proba(raw), res["test_prob"][:50], atol=1e-5)
