"""What notebook 05b must leave behind: checks that used to be asserts in its cells.

These run after the notebooks (marker ``after_notebooks``) and read the notebook's own
outputs: results/<dataset>/minilm_{frozen,finetuned}/ and models/<dataset>/minilm_*/.
The tokenizer-parity check that the notebook used to assert is a unit test in
tests/test_minilm.py (it needs no notebook run), as are the embeddings' shape and padding
invariance (the notebook's `backbone_embedder` through `Encoder.embed`), `normalize_text` and `pack`.
"""
import numpy as np
import pytest

from utils import config
from utils.evaluation.results import load_results

pytestmark = pytest.mark.after_notebooks

FROZEN, FINETUNED = "minilm_frozen", "minilm_finetuned"


@pytest.fixture(scope="module")
def dataset(notebook_outputs):
    # minilm_finetuned is the last of the two result folders the notebook writes
    return notebook_outputs("05b", config.results_dir() / FINETUNED / "metrics.json")


def _raw_test_plots(dataset, ids):
    from utils.data.corpus import load_corpus

    return load_corpus(dataset).df.set_index("id").loc[list(ids), "text"].tolist()


def test_frozen_features_beat_the_trivial_baseline_on_validation(dataset):
    from utils.data.corpus import load_corpus
    from utils.evaluation.metrics import MostFrequentBaseline
    from utils.modelfiles import minilm

    res = load_results(FROZEN, dataset)
    corpus = load_corpus(dataset)
    if res["metrics"]["fast"]:
        corpus = corpus.subset(**minilm.FAST_SIZES, seed=res["metrics"]["seed"])
    assert list(corpus.ids("val")) == list(res["val_ids"]), "the notebook's corpus is not the one rebuilt here"
    baseline = MostFrequentBaseline().fit(corpus.y("train"), corpus.y("val"))
    ours = res["metrics"]["val"]["global"]["micro_f1"]
    assert ours > baseline.val_scores_[baseline.k_], (ours, baseline.val_scores_)


def test_frozen_head_training_lowered_its_loss(dataset):
    history = load_results(FROZEN, dataset)["metrics"]["head_history"]
    assert history["loss"][-1] < history["loss"][0], history["loss"]
    assert min(history["val_loss"]) < history["val_loss"][0], history["val_loss"]


def test_finetuning_lowered_the_loss_on_its_training_plots(dataset):
    metrics = load_results(FINETUNED, dataset)["metrics"]
    assert metrics["loss_after"] < metrics["loss_before"], (metrics["loss_before"], metrics["loss_after"])


@pytest.mark.parametrize("model", [FROZEN, FINETUNED])
def test_reloaded_model_reproduces_the_notebook_probabilities_from_raw_text(dataset, model):
    """The saved folder alone (weights, backbone config, vocabulary) gives the notebook's test probabilities."""
    from utils.modelfiles.predictor import load_predictor

    res = load_results(model, dataset)
    predictor = load_predictor(config.models_dir(dataset) / model)
    raw = _raw_test_plots(dataset, res["test_ids"][:64])
    np.testing.assert_allclose(predictor.predict_proba(raw), res["test_prob"][:64], atol=1e-4)
    assert predictor.thresholds["global"] == pytest.approx(res["thresholds"]["global"])


def test_the_frozen_model_from_token_ids_gives_the_heads_probabilities(dataset):
    """build_classifier(backbone, head), saved and reloaded, equals the head on the cached embeddings.

    The notebook prints this difference (section 5, "The frozen model as one piece"); here it must be small.
    """
    from utils.modelfiles.predictor import load_predictor

    res = load_results(FROZEN, dataset)
    predictor = load_predictor(config.models_dir(dataset) / FROZEN)
    raw = _raw_test_plots(dataset, res["val_ids"][:64])
    np.testing.assert_allclose(predictor.predict_proba(raw), res["val_prob"][:64], atol=1e-4)
