"""What notebook 06 must leave behind: the checks that used to be asserts in its cells.

These run after the notebooks (marker ``after_notebooks``). Notebook 06 compares the
models that notebooks 03-05 saved, so notebook 03 must have run in this session first;
06 then writes its comparison table to results/<dataset>/comparison.csv.
"""
import json

import pandas as pd
import pytest

from utils import config
from utils.evaluation.compare import BASELINE

pytestmark = pytest.mark.after_notebooks


@pytest.fixture(scope="module")
def dataset(notebook_outputs):
    notebook_outputs("03", config.results_dir() / "tfidf_logreg" / "metrics.json")
    return notebook_outputs("06", config.results_dir() / "comparison.csv")


@pytest.fixture(scope="module")
def table(dataset):
    return pd.read_csv(config.results_dir(dataset) / "comparison.csv", index_col="model")


def test_notebook_03_models_are_in_the_comparison(table):
    assert {BASELINE, "tfidf_logreg"} <= set(table.index), list(table.index)


def test_tfidf_beats_the_trivial_baseline_in_the_comparison(table):
    ours, trivial = table.loc["tfidf_logreg", "micro_f1"], table.loc[BASELINE, "micro_f1"]
    assert ours > trivial, (ours, trivial)
    assert table.loc["tfidf_logreg", "micro_f1_vs_baseline"] == pytest.approx(ours - trivial)


def test_comparison_uses_each_models_saved_threshold_and_metrics(dataset, table):
    """Same titles for every model: the notebook's table must reproduce what each model notebook saved."""
    for model, row in table.iterrows():
        folder = config.results_dir(dataset) / model
        saved = json.loads((folder / "thresholds.json").read_text())
        metrics = json.loads((folder / "metrics.json").read_text())
        assert row["threshold"] == pytest.approx(saved["global"]), model
        if metrics["n_test"] == row["n_test"]:
            for metric in ("micro_f1", "macro_f1", "samples_f1", "hamming_loss"):
                assert row[metric] == pytest.approx(metrics["test"]["global"][metric], abs=1e-9), (model, metric)
