"""What notebook 09 must leave behind: an export that reproduces the notebook's model, and a served API
that answered with the same numbers.

These run after the notebooks (marker ``after_notebooks``) and read the notebook's own outputs:
``exports/<dataset>/<model>/`` and ``results/<dataset>/serving/<model>.json``.
"""
import json

import numpy as np
import pytest

from utils import config

pytestmark = pytest.mark.after_notebooks


@pytest.fixture(scope="module")
def record(notebook_outputs):
    dataset = notebook_outputs("09", config.results_dir() / "serving")
    newest = max((config.results_dir(dataset) / "serving").glob("*.json"), key=lambda p: p.stat().st_mtime)
    return dataset, json.loads(newest.read_text())


@pytest.fixture(scope="module")
def served(record):
    from utils.serving.export import load_export

    return load_export(config.ROOT / record[1]["export"])


def test_export_card_carries_the_models_test_scores_and_split(record, served):
    from utils.evaluation.results import load_results

    dataset, rec = record
    metrics = load_results(rec["model"], dataset)["metrics"]
    card = served.card
    assert card["dataset"] == dataset and card["version"] == rec["version"]
    assert card["test_scores"]["global"]["micro_f1"] == pytest.approx(metrics["test"]["global"]["micro_f1"])
    assert card["split"]["n_test"] == metrics["n_test"]


def test_export_reproduces_the_saved_test_probabilities_from_raw_text(record, served):
    from utils.data.corpus import load_corpus
    from utils.evaluation.results import load_results

    dataset, rec = record
    res = load_results(rec["model"], dataset)
    raw = load_corpus(dataset).df.set_index("id").loc[list(res["test_ids"][:40]), "text"].tolist()
    np.testing.assert_allclose(served.predict_proba(raw), res["test_prob"][:40], atol=1e-5)


def test_the_api_answered_what_the_model_computes(record, served):
    _, rec = record
    direct = served.predict_proba([rec["plot"]])[0]
    api = np.array([rec["api_probabilities"][g] for g in served.genres])
    np.testing.assert_allclose(api, direct, atol=1e-5)
    assert rec["max_difference_served_vs_notebook"] < 1e-5


def test_the_load_test_ran_without_errors_and_batches_formed(record):
    _, rec = record
    assert [row["clients"] for row in rec["levels"]] == [1, 8]
    assert all(row["errors"] == 0 and row["requests"] > 0 and row["p99_ms"] >= row["p50_ms"] for row in rec["levels"])
    if rec["model"] != "tfidf_logreg":
        assert rec["batching"]["texts"] >= sum(row["requests"] for row in rec["levels"])
        assert rec["batching"]["largest_batch"] > 1, "8 concurrent clients should share forward passes"
