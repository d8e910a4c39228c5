"""What notebook 05a must leave behind: checks that used to be asserts in its cells.

These run after the notebooks (marker ``after_notebooks``) and read the notebook's own
outputs: results/<dataset>/bert_tfhub_{frozen,finetuned}/ and models/<dataset>/bert_tfhub_finetuned/.
The offline CI copy of the encoder has random weights: the scores then say nothing about
BERT, so the score check is skipped, while every check of the code paths still runs.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from utils import config
from utils.evaluation.results import load_results

pytestmark = pytest.mark.after_notebooks

FROZEN, FINETUNED = "bert_tfhub_frozen", "bert_tfhub_finetuned"


@pytest.fixture(scope="module")
def dataset(notebook_outputs):
    return notebook_outputs("05a", config.results_dir() / FINETUNED / "metrics.json")


@pytest.mark.parametrize("name", [FROZEN, FINETUNED])
def test_one_probability_per_plot_and_genre(dataset, name):
    res = load_results(name, dataset)
    n_genres = len(res["genres"])
    for split in ("val", "test"):
        prob = res[f"{split}_prob"]
        assert prob.shape == (len(res[f"{split}_ids"]), n_genres) == res[f"{split}_true"].shape
        assert np.isfinite(prob).all() and prob.min() >= 0 and prob.max() <= 1
    assert res["metrics"]["handle"].startswith(("https://", "http://", "/"))


def test_the_head_on_frozen_features_lowered_its_training_loss(dataset):
    first, last = load_results(FROZEN, dataset)["metrics"]["head_loss"]
    assert last < first


def test_finetuning_lowered_the_loss_on_training_plots(dataset):
    metrics = load_results(FINETUNED, dataset)["metrics"]
    assert metrics["train_loss_after"] < metrics["train_loss_before"]
    assert 1 <= metrics["epochs"] and metrics["n_train_used"] > 0


def test_frozen_bert_beats_the_trivial_baseline(dataset):
    metrics = load_results(FROZEN, dataset)["metrics"]
    if metrics["random_weights"]:
        pytest.skip("the encoder had random weights (offline CI copy): its scores are no verdict on BERT")
    assert metrics["val"]["global"]["micro_f1"] > metrics["baseline_val_micro_f1"]


RELOAD = """
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from utils.modelfiles.predictor import load_predictor
texts = json.loads(sys.stdin.read())
print("PROBS " + json.dumps(load_predictor(sys.argv[2]).predict_proba(texts).tolist()))
"""


def test_saved_model_reloads_and_reproduces_the_notebook_probabilities(dataset):
    """In a fresh process (TensorFlow with Keras 2 must not mix with this session's Keras 3)."""
    from utils.data.corpus import load_corpus

    res = load_results(FINETUNED, dataset)
    folder = config.models_dir(dataset) / FINETUNED
    manifest = json.loads((folder / "predictor.json").read_text())
    assert manifest["random_weights"] == res["metrics"]["random_weights"]
    assert manifest["seq_len"] == res["metrics"]["seq_len"]
    assert manifest["thresholds"]["global"] == pytest.approx(res["thresholds"]["global"])

    raw = load_corpus(dataset).df.set_index("id").loc[list(res["test_ids"][:40]), "text"].tolist()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", RELOAD, str(config.ROOT), str(folder)], input=json.dumps(raw),
                          capture_output=True, text=True, env=env, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("PROBS ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    got = np.array(json.loads(lines[-1][len("PROBS "):]))
    np.testing.assert_allclose(got, res["test_prob"][:40], atol=1e-5)
