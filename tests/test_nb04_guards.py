"""What notebooks 04a and 04b must leave behind: checks that used to be asserts in notebook 04's cells.

These run after the notebooks (marker ``after_notebooks``) and read the notebooks' own
outputs: the word vectors in data/processed/<dataset>/word2vec/ (04a), and
results/<dataset>/bilstm_w2v{,_softf1}/ and models/<dataset>/bilstm_w2v/ (04b).
The cuDNN conditions are unit tests in tests/test_bilstm.py.
"""
from collections import Counter

import numpy as np
import pytest

from utils import config
from utils.evaluation.results import load_results

pytestmark = pytest.mark.after_notebooks


def _corpus(fast: bool):
    """The corpus as the notebooks saw it (the same FAST subset for the same seed)."""
    from utils.data.corpus import load_corpus
    from utils.modelfiles.bilstm import FAST_SIZES

    return load_corpus(config.dataset_name(), require_clean=True).for_mode(fast, **FAST_SIZES)


@pytest.fixture(scope="module")
def dataset(notebook_outputs):
    return notebook_outputs("04b", config.results_dir() / "bilstm_w2v" / "metrics.json")


@pytest.fixture(scope="module")
def results(dataset):
    return load_results("bilstm_w2v", dataset)


def test_word2vec_vectors_of_04a_cover_the_training_words(notebook_outputs):
    from utils.data import word_vectors
    from utils.lessons.word2vec import W2V_SETTINGS

    notebook_outputs("04a", config.processed_dir() / word_vectors.FOLDER)
    texts = _corpus(config.fast_mode()).texts("train", kind="light")
    path = word_vectors.vectors_path(texts, {**W2V_SETTINGS, "seed": config.seed()})
    assert path.exists(), f"no word vectors for this run's training plots: {path}"
    words, vectors, meta = word_vectors.read_arrays(path)
    counts = Counter(t for text in texts for t in text.split())
    assert set(words) == {w for w, c in counts.items() if c >= W2V_SETTINGS["min_count"]}
    assert vectors.dtype == np.float32 and vectors.shape == (len(words), W2V_SETTINGS["vector_size"])
    assert np.isfinite(vectors).all() and (np.linalg.norm(vectors, axis=1) > 0).all()
    assert meta["texts"] == len(texts) and meta["settings"]["seed"] == config.seed()


def test_corpus_light_text_matches_the_predictor_cleaning(dataset):
    from utils.modelfiles.bilstm import prepare_texts

    corpus = _corpus(False)
    raw, light = corpus.texts("train", kind="raw")[:300], corpus.texts("train", kind="light")[:300]
    assert prepare_texts(raw) == light


def test_bilstm_beats_the_trivial_baseline_on_validation(dataset, results):
    from utils.evaluation.metrics import MostFrequentBaseline

    corpus = _corpus(results["metrics"]["fast"])
    np.testing.assert_array_equal(corpus.y("val"), results["val_true"])   # the notebook's validation set
    baseline = MostFrequentBaseline().fit(corpus.y("train"), corpus.y("val"))
    ours = results["metrics"]["val"]["global"]["micro_f1"]
    assert ours > baseline.val_scores_[baseline.k_], (ours, baseline.val_scores_)


def test_saved_thresholds_are_tuned_on_validation(dataset, results):
    from utils.lessons.thresholds import tune_global_threshold

    best, _ = tune_global_threshold(results["val_true"], results["val_prob"])
    assert results["thresholds"]["global"] == pytest.approx(best)
    soft = load_results("bilstm_w2v_softf1", dataset)
    assert soft["thresholds"]["global"] == pytest.approx(tune_global_threshold(soft["val_true"], soft["val_prob"])[0])


def test_reloaded_model_reproduces_the_notebook_probabilities_from_raw_text(dataset, results):
    from utils.data.corpus import load_corpus
    from utils.modelfiles.predictor import load_predictor

    corpus = load_corpus(dataset)
    raw = corpus.df.set_index("id").loc[list(results["test_ids"][:100]), "text"].tolist()
    predictor = load_predictor(config.models_dir(dataset) / "bilstm_w2v")
    np.testing.assert_allclose(predictor.predict_proba(raw), results["test_prob"][:100], atol=1e-5)


def test_bilstm_and_tfidf_are_scored_on_the_same_test_titles(dataset, results, notebook_outputs):
    """04b compares itself with 03's TF-IDF on the same test titles: in one run both must draw the same subset."""
    notebook_outputs("03", config.results_dir() / "tfidf_logreg" / "metrics.json")
    tfidf = load_results("tfidf_logreg", dataset)
    assert tfidf["metrics"]["fast"] == results["metrics"]["fast"]
    np.testing.assert_array_equal(tfidf["test_ids"], results["test_ids"])
    np.testing.assert_array_equal(tfidf["test_true"], results["test_true"])


def test_softf1_results_hold_both_cuts_of_the_claim_table(dataset):
    """The soft-F1 claim table (0.5 vs tuned) is computed from what 04b saved: both cuts must match the saved probabilities."""
    from utils.evaluation.metrics import evaluate

    soft = load_results("bilstm_w2v_softf1", dataset)
    for cut, key in ((0.5, "0.5"), (soft["thresholds"]["global"], "global")):
        scores = evaluate(soft["test_true"], soft["test_prob"], cut)
        assert scores["micro_f1"] == pytest.approx(soft["metrics"]["test"][key]["micro_f1"])
        assert scores["macro_f1"] == pytest.approx(soft["metrics"]["test"][key]["macro_f1"])
