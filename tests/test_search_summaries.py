"""Notebook 08's summaries of a random search (utils.lessons.search, exported from its #@save cells) with
settings whose value is ``None`` ("no character n-grams", "no class weights"): under pandas 3,
``astype(str)`` kept ``None`` as a missing value, so ``groupby`` dropped those trials from the importance
table and ``sorted`` crashed the plot (``'<' not supported between 'str' and 'float'``)."""
import math

import pandas as pd
import pytest

search = pytest.importorskip("utils.lessons.search")


def trials(values, scores, name="class_weight"):
    return [{"trial": i, name: v, "C": 1.0 + i, "val_micro_f1": s} for i, (v, s) in enumerate(zip(values, scores))]


def test_none_is_a_label_of_its_own_whatever_the_column_dtype():
    for column in (pd.Series([None, "balanced", None], dtype=object),          # as drawn
                   pd.DataFrame({"c": [None, "balanced", None]})["c"],          # pandas 3 infers str: NaN
                   pd.Series([None, (2, 4), (3, 5)], dtype=object),
                   pd.Series([None, 2.0, 3.0])):                                # numbers with one left out
        labels = search.setting_labels(column)
        assert labels.iloc[0] == "None" and labels.notna().all()
        assert sorted(labels.unique())                                          # the plot's ticks: no str/float mix
        assert list(labels.index) == list(column.index)
    assert search.setting_labels(pd.Series([(1, 2), True, 5])).tolist() == ["(1, 2)", "True", "5"]


def test_a_setting_that_explains_everything_gets_all_the_variance_even_when_it_is_none():
    # class_weight alone decides the score: None -> 0.5, "balanced" -> 0.6
    table = trials([None, "balanced", None, "balanced", None, "balanced"], [0.5, 0.6, 0.5, 0.6, 0.5, 0.6])
    shares = search.importance(table, ["class_weight", "C"])
    assert shares["class_weight"] == pytest.approx(1.0)       # with the None trials dropped it was 0.0
    assert shares.index[0] == "class_weight" and all(math.isfinite(v) for v in shares)


def test_importance_of_a_real_search_space_with_none_values():
    from sklearn.model_selection import ParameterSampler

    drawn = list(ParameterSampler(search.TFIDF_SPACE, n_iter=12, random_state=0))
    assert any(d["char_ngrams"] is None for d in drawn) and any(d["class_weight"] is None for d in drawn)
    # a made-up objective: character n-grams help, everything else is noise-free and irrelevant
    rows = [{"trial": i, **d, "val_micro_f1": 0.5 + 0.1 * (d["char_ngrams"] is not None)} for i, d in enumerate(drawn)]
    shares = search.importance(rows, list(search.TFIDF_SPACE))
    assert set(shares.index) == set(search.TFIDF_SPACE) and shares.notna().all()
    assert shares["char_ngrams"] == pytest.approx(1.0) and shares.index[0] == "char_ngrams"
    table = pd.DataFrame(rows)
    for p in ("char_ngrams", "class_weight", "word_ngrams"):       # what the trial table saves and plots
        labels = search.setting_labels(table[p])
        assert labels.notna().all() and len(labels.unique()) == len({repr(d[p]) for d in drawn})
