"""What notebook 08 must leave behind: its trial tables and the stacked ensemble's results.

These run after the notebooks (marker ``after_notebooks``) and read the notebook's own outputs:
results/<dataset>/search/{tfidf,head}_trials.csv and results/<dataset>/ensemble_stacked/.
"""
import pandas as pd
import pytest

from utils import config
from utils.evaluation.results import load_results

pytestmark = pytest.mark.after_notebooks


@pytest.fixture(scope="module")
def dataset(notebook_outputs):
    return notebook_outputs("08", config.results_dir() / "ensemble_stacked" / "metrics.json")


def test_each_search_ran_its_whole_budget_with_scores_in_range(dataset):
    search = config.results_dir(dataset) / "search"
    fast = load_results("ensemble_stacked", dataset)["metrics"]["fast"]
    for name, budget in (("tfidf_trials.csv", 6 if fast else 12), ("head_trials.csv", 5 if fast else 20)):
        table = pd.read_csv(search / name)
        assert len(table) == budget, (name, len(table))
        assert table["val_micro_f1"].between(0, 1).all(), name
    tfidf = pd.read_csv(search / "tfidf_trials.csv")
    assert tfidf["C"].between(0.3, 100).all() and set(tfidf["min_df"]) <= {2, 3, 5}


def test_stacked_threshold_is_tuned_on_the_out_of_fold_validation_probabilities(dataset):
    from utils.lessons.search import ENSEMBLE
    from utils.lessons.thresholds import tune_global_threshold

    res = load_results("ensemble_stacked", dataset)
    best, _ = tune_global_threshold(res["val_true"], res["val_prob"])
    assert res["thresholds"]["global"] == pytest.approx(best)
    assert res["metrics"]["members"] == list(ENSEMBLE["members"])   # the recipe the benchmark runs


def test_ensemble_uses_the_same_titles_as_the_corpus(dataset):
    from utils.data.corpus import load_corpus
    from utils.modelfiles.tfidf import FAST_SIZES

    res = load_results("ensemble_stacked", dataset)
    corpus = load_corpus(dataset).for_mode(res["metrics"]["fast"], **FAST_SIZES)
    assert list(res["val_ids"]) == [str(i) for i in corpus.ids("val")]
    assert list(res["test_ids"]) == [str(i) for i in corpus.ids("test")]
