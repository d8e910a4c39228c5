"""What notebooks 01-02 must leave behind in data/processed/<dataset>/ (checks that were asserts in their cells)."""
import pytest

from utils import config
from utils.data import pipeline
from utils.data.corpus import load_corpus

pytestmark = pytest.mark.after_notebooks


@pytest.fixture(scope="module")
def corpus(notebook_outputs):
    notebook_outputs("01", config.processed_dir() / "genres.json")
    dataset = notebook_outputs("02", config.processed_dir() / "clean.parquet")
    assert pipeline.is_prepared(dataset)
    return load_corpus(dataset, require_clean=True)


def test_every_genre_has_examples_in_every_split(corpus):
    for split in ("train", "val", "test"):
        assert corpus.y(split).sum(axis=0).min() > 0, split


def test_cleaning_keeps_almost_every_plot(corpus):
    assert corpus.df["clean_text"].notna().all() and corpus.df["light_text"].notna().all()
    assert corpus.df["clean_text"].str.len().eq(0).mean() < 0.01
