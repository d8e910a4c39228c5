"""utils.data.splits: binarize, stratified split, save/load."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from utils.data.splits import SPLITS, binarize, load_split, make_split, save_split

RATES = [0.5, 0.3, 0.15, 0.06, 0.03]  # from common to rare genres


@pytest.fixture(scope="module")
def labels():
    rng = np.random.default_rng(0)
    y = (rng.random((1000, len(RATES))) < RATES).astype(np.int8)
    ids = [f"m{i}" for i in range(len(y))]
    return ids, y


def test_binarize_ignores_unknown_labels():
    y = binarize([["Drama", "War"], [], ["Comedy", "Unknown"]], ["Comedy", "Drama"])
    assert y.dtype == np.int8
    assert y.tolist() == [[0, 1], [0, 0], [1, 0]]


def test_split_sizes_are_close_to_requested(labels):
    ids, y = labels
    split = make_split(ids, y, val_size=0.15, test_size=0.15, seed=1)
    assert list(split.index) == ids and split.index.name == "id"
    counts = split.value_counts()
    assert set(counts.index) == set(SPLITS)
    assert abs(counts["train"] - 700) <= 15
    assert abs(counts["val"] - 150) <= 15 and abs(counts["test"] - 150) <= 15
    other = make_split(ids, y, val_size=0.1, test_size=0.2, seed=1).value_counts()
    assert abs(other["val"] - 100) <= 15 and abs(other["test"] - 200) <= 15


def test_every_genre_has_similar_share_in_every_split(labels):
    ids, y = labels
    split = make_split(ids, y, seed=3).to_numpy()
    overall = y.mean(axis=0)
    for part in SPLITS:
        rows = y[split == part]
        assert len(rows) > 0
        assert (rows.sum(axis=0) > 0).all(), f"a genre has no example in {part}"
        assert np.abs(rows.mean(axis=0) - overall).max() < 0.03, (part, rows.mean(axis=0), overall)


def test_split_is_deterministic_for_a_seed(labels):
    ids, y = labels
    a = make_split(ids, y, seed=7)
    b = make_split(ids, y, seed=7)
    c = make_split(ids, y, seed=8)
    pd.testing.assert_series_equal(a, b)
    assert (a != c).sum() > 50


def test_small_dataset_every_split_non_empty():
    y = np.array([[1, 0], [0, 1]] * 6)
    split = make_split([str(i) for i in range(12)], y, seed=0)
    assert set(split) == set(SPLITS)


@pytest.mark.parametrize("kwargs, message", [
    (dict(val_size=0.5, test_size=0.5), "sum to less than 1"),
    (dict(val_size=0.0), "must be in"),
    (dict(test_size=1.2), "must be in"),
])
def test_bad_sizes(labels, kwargs, message):
    ids, y = labels
    with pytest.raises(ValueError, match=message):
        make_split(ids, y, **kwargs)


def test_too_few_movies_and_mismatched_lengths():
    with pytest.raises(ValueError, match="Only 5 movies"):
        make_split(list("abcde"), np.ones((5, 1)))
    with pytest.raises(ValueError, match="12 ids but 11 label rows"):
        make_split([str(i) for i in range(12)], np.ones((11, 1)))


def test_save_load_round_trip_keeps_string_ids(tmp_path, labels):
    ids, y = labels
    split = make_split(ids, y, seed=2)
    split.index = ["007", "1e3", "NA", "null", *split.index[4:]]  # ids pandas would mangle
    path = tmp_path / "sub" / "split.csv"
    save_split(split, path)
    back = load_split(path)
    pd.testing.assert_series_equal(back, split.rename_axis("id").rename("split"), check_index_type=False)
    assert back.index[:4].tolist() == ["007", "1e3", "NA", "null"]
    assert [p.name for p in path.parent.iterdir()] == ["split.csv"]  # no temporary file left


@pytest.mark.parametrize("content", [
    "id,fold\n1,train\n",            # wrong column
    "id,split\n1,train\n2,dev\n",    # unknown split name
    "split,id\ntrain,1\n",           # columns swapped
])
def test_bad_split_file(tmp_path, content):
    path = tmp_path / "split.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match="is not a split file"):
        load_split(path)


# --------------------------------------------------------------------------- split seeds and split identity


def test_split_identity_fingerprints_the_test_titles_not_their_order():
    from utils.data.splits import same_split, split_identity, test_ids_hash

    assert test_ids_hash(["b", "a", "c"]) == test_ids_hash(["c", "b", "a"])
    assert test_ids_hash(["a", "b"]) != test_ids_hash(["a", "c"])
    one, two = split_identity(["a", "b"], seed=7), split_identity(["b", "a"], seed=None)
    assert one["split_seed"] == 7 and same_split(one, two)
    assert not same_split(one, split_identity(["a", "x"], 7)) and not same_split(one, None)


def _corpus(labels, seed=42):
    from utils.data.corpus import Corpus

    ids, y = labels
    genres = [f"g{j}" for j in range(y.shape[1])]
    split = make_split(ids, y, seed=seed)
    df = pd.DataFrame({"id": ids, "text": [f"plot {i}" for i in ids],
                       "genres": [[g for g, v in zip(genres, row) if v] for row in y],
                       "split": split.loc[ids].to_numpy()})
    return Corpus("netflix", genres, df, split_seed=seed)


def test_resplit_draws_a_new_split_of_the_same_titles(labels):
    corpus = _corpus(labels)
    other = corpus.resplit(101)
    assert corpus.resplit(42) is corpus                                 # its own seed: nothing to do
    assert other.split_seed == 101 and other.genres == corpus.genres
    assert sorted(other.ids()) == sorted(corpus.ids()) and np.array_equal(other.y(), corpus.y())
    assert set(other.ids("test")) != set(corpus.ids("test"))
    assert other.split_identity() != corpus.split_identity()
    assert other.split_identity() == corpus.resplit(101).split_identity()   # a seed always draws the same split
    expected = make_split(corpus.ids(), corpus.y(), seed=101)
    assert set(other.ids("test")) == set(expected[expected == "test"].index)
    assert abs(len(other.ids("test")) - 150) <= 2                       # the same proportions
    assert other.subset(max_train=50, max_eval=20).split_seed == 101
