"""TF-IDF + logistic regression: training, top words, saving/reloading, benchmark."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from utils.lessons.tfidf import fit, predict_proba, top_words
from utils.modelfiles import tfidf
from utils.data.corpus import Corpus
from utils.evaluation.metrics import MostFrequentBaseline, f1_scores
from utils.modelfiles.predictor import ModelFormatError
from utils.modelfiles.predictor import load_predictor as load_any_predictor

GENRES = ["Horror", "Comedy", "Western"]
SIGNAL = {"Horror": ["ghost", "haunted", "blood"], "Comedy": ["joke", "funny", "prank"],
          "Western": ["sheriff", "cowboy", "saloon"]}
NOISE = ["city", "family", "friend", "night", "journey", "secret", "house", "town", "young", "old"]


def synthetic(n: int = 240, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Plots whose words depend on their genres (plus noise), and the label matrix."""
    rng = np.random.default_rng(seed)
    texts, y = [], np.zeros((n, len(GENRES)), dtype=int)
    for i in range(n):
        labels = [g for g in GENRES if rng.random() < 0.4] or [GENRES[i % len(GENRES)]]
        words = list(rng.choice(NOISE, size=6))
        for g in labels:
            y[i, GENRES.index(g)] = 1
            words += list(rng.choice(SIGNAL[g], size=2))
        rng.shuffle(words)
        texts.append("The " + " and the ".join(words) + ".")
    return texts, y


def synthetic_corpus(n: int = 300) -> Corpus:
    from utils.data.text import clean_text, light_text

    texts, y = synthetic(n)
    split = np.array(["train"] * (n * 6 // 10) + ["val"] * (n * 2 // 10) + ["test"] * (n - n * 8 // 10))
    df = pd.DataFrame({"id": [f"m{i}" for i in range(n)], "title": "", "text": texts,
                       "genres": [[g for g, v in zip(GENRES, row) if v] for row in y], "split": split})
    df["clean_text"] = df["text"].map(clean_text)
    df["light_text"] = df["text"].map(light_text)
    return Corpus("netflix", GENRES, df)


@pytest.fixture
def fitted(nltk_data):
    from utils.data.text import clean_text

    texts, y = synthetic()
    return fit([clean_text(t) for t in texts], y, min_df=1), texts, y


def test_fit_predicts_one_probability_per_genre(fitted):
    pipeline, texts, y = fitted
    prob = predict_proba(pipeline, tfidf.prepare_texts(texts[:10]))
    assert prob.shape == (10, len(GENRES))
    assert ((prob >= 0) & (prob <= 1)).all()
    # the signal words make the training set easy: the model must get it nearly right
    assert f1_scores(y, (predict_proba(pipeline, tfidf.prepare_texts(texts)) >= 0.5))["micro_f1"] > 0.9


def test_vectorizer_is_fitted_on_training_text_only():
    train = ["ghost haunted house", "cowboy sheriff saloon", "ghost cowboy town"]
    y = np.array([[1, 0], [0, 1], [1, 1]])
    pipeline = fit(train, y, min_df=1, max_df=1.0)
    pipeline.predict_proba(["spaceship alien"])        # predicting never grows the vocabulary
    vocab = pipeline.named_steps["tfidf"].vocabulary_
    assert "ghost" in vocab and "spaceship" not in vocab and "alien" not in vocab


def test_top_words_are_the_genre_signals(fitted):
    pipeline, _, _ = fitted
    words = top_words(pipeline, GENRES, n=3)
    assert list(words) == GENRES
    for genre in GENRES:
        top = {w for w, _ in words[genre]}
        assert len(top & set(SIGNAL[genre])) >= 2, (genre, top)
        weights = [c for _, c in words[genre]]
        assert weights == sorted(weights, reverse=True) and weights[0] > 0
    table = tfidf.top_words_table(pipeline, GENRES, n=3)
    assert list(table.index) == GENRES


def test_labels_with_a_single_class_are_refused():
    with pytest.raises(ValueError, match="positive and negative"):
        fit(["a b", "c d", "e f"], np.array([[1, 0], [1, 1], [1, 0]]))
    with pytest.raises(ValueError, match="label row per text"):
        fit(["a b", "c d"], np.array([[1, 0], [0, 1], [1, 1]]))


def test_save_and_reload_gives_the_same_probabilities(fitted, tmp_path):
    pipeline, texts, _ = fitted
    thresholds = {"global": 0.4, "per_genre": {g: 0.3 for g in GENRES}, "default": "global"}
    folder = tmp_path / "tfidf_logreg"
    tfidf.save_model(pipeline, folder, GENRES, thresholds, dataset="netflix")
    manifest = json.loads((folder / "predictor.json").read_text())
    assert manifest["kind"] == "tfidf_logreg" and manifest["text_kind"] == "clean"
    assert manifest["genres"] == GENRES

    for loaded in (tfidf.load_predictor(folder), load_any_predictor(folder)):
        assert isinstance(loaded, tfidf.TfidfPredictor)
        assert loaded.genres == GENRES
        np.testing.assert_allclose(loaded.predict_proba(texts[:20]),
                                   predict_proba(pipeline, tfidf.prepare_texts(texts[:20])), atol=1e-6)
        assert loaded.threshold_vector().tolist() == [0.4] * 3
    known, total = loaded.known_words("The haunted ghost met a spaceship.")
    assert (known, total) == (2, 4)   # "the", "a" are stopwords; "met", "spaceship" are unknown


def test_reload_errors_say_what_is_wrong(fitted, tmp_path):
    pipeline, _, _ = fitted
    thresholds = {"global": 0.5, "per_genre": {g: 0.5 for g in GENRES}, "default": "global"}
    with pytest.raises(ValueError, match="3 genres"):
        tfidf.save_model(pipeline, tmp_path / "bad", GENRES[:2], thresholds, dataset="netflix")
    folder = tfidf.save_model(pipeline, tmp_path / "m", GENRES, thresholds, dataset="netflix")
    assert sorted(p.name for p in folder.iterdir()) == ["predictor.json", "tfidf.json", "weights.npz"]
    good = (folder / tfidf.WEIGHTS_FILE).read_bytes()
    (folder / tfidf.WEIGHTS_FILE).write_bytes(b"not an npz")
    with pytest.raises(ModelFormatError, match="re-run notebook 03"):
        tfidf.load_predictor(folder)
    (folder / tfidf.WEIGHTS_FILE).write_bytes(good)
    settings = json.loads((folder / tfidf.SETTINGS_FILE).read_text())
    (folder / tfidf.SETTINGS_FILE).write_text(json.dumps({**settings, "vocabulary": {"ghost": 0}}))
    with pytest.raises(ModelFormatError, match="vocabulary"):
        tfidf.load_predictor(folder)
    (folder / tfidf.SETTINGS_FILE).write_text(json.dumps({**settings, "vocabulary": settings["vocabulary"][:-1]}))
    with pytest.raises(ModelFormatError, match="shape"):
        tfidf.load_predictor(folder)
    (folder / tfidf.SETTINGS_FILE).write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(ModelFormatError, match="UTF-8"):
        tfidf.load_predictor(folder)
    (folder / tfidf.SETTINGS_FILE).unlink()
    with pytest.raises(ModelFormatError, match="missing"):
        tfidf.load_predictor(folder)


class _Payload:
    """Unpickling this calls open(path, 'w'): a file appears if the pickle is ever executed."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_pickle_is_never_loaded(fitted, tmp_path):
    import pickle

    pipeline, _, _ = fitted
    thresholds = {"global": 0.5, "per_genre": {g: 0.5 for g in GENRES}, "default": "global"}
    folder = tfidf.save_model(pipeline, tmp_path / "m", GENRES, thresholds, dataset="netflix")
    marker = tmp_path / "pwned.txt"
    crafted = pickle.dumps(_Payload(marker))
    # an old-style folder: the pickle alone is refused, with the reason
    (folder / tfidf.LEGACY_PICKLE).write_bytes(crafted)
    (folder / tfidf.WEIGHTS_FILE).rename(folder / "weights.bak")
    with pytest.raises(ModelFormatError, match="pickle"):
        tfidf.load_predictor(folder)
    # a pickled object array smuggled into the npz is refused too (allow_pickle=False)
    np.save(folder / "obj.npy", np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    import zipfile
    with zipfile.ZipFile(folder / tfidf.WEIGHTS_FILE, "w") as z:
        for name in ("idf", "coef", "intercept"):
            z.write(folder / "obj.npy", f"{name}.npy")
    with pytest.raises(ModelFormatError, match="plain-array"):
        tfidf.load_predictor(folder)
    assert not marker.exists()


def test_predictor_refuses_empty_text(fitted, tmp_path):
    from utils.data.text import TextError

    pipeline, _, _ = fitted
    thresholds = {"global": 0.5, "per_genre": {g: 0.5 for g in GENRES}, "default": "global"}
    predictor = tfidf.load_predictor(tfidf.save_model(pipeline, tmp_path / "m", GENRES, thresholds, "netflix"))
    with pytest.raises(TextError):
        predictor.predict_proba(["   "])
    assert predictor.predict_proba("a haunted ghost").shape == (1, 3)


def test_benchmark_beats_the_trivial_baseline(nltk_data):
    corpus = synthetic_corpus()
    figures = tfidf.benchmark(corpus, fast=False, min_df=1)
    assert (figures["n_train"], figures["n_val"], figures["n_test"]) == (180, 60, 60)
    for key in ("test", "test_per_genre", "test_0.5"):
        assert set(figures[key]) >= {"micro_f1", "macro_f1", "samples_f1"}
    trivial = MostFrequentBaseline().fit(corpus.y("train"), corpus.y("val"))
    trivial_f1 = f1_scores(corpus.y("test"), trivial.predict(len(corpus.y("test"))))["micro_f1"]
    assert figures["test"]["micro_f1"] > trivial_f1 + 0.2
    assert 0.05 <= figures["threshold"] <= 0.95 and figures["train_seconds"] >= 0
    json.dumps(figures)  # the benchmark CLI writes it as JSON


def test_benchmark_fast_subsamples(monkeypatch, nltk_data):
    corpus = synthetic_corpus(n=600)
    monkeypatch.setitem(tfidf.FAST_SIZES, "max_train", 200)
    monkeypatch.setitem(tfidf.FAST_SIZES, "max_eval", 50)
    figures = tfidf.benchmark(corpus, fast=True, min_df=1)
    assert (figures["n_train"], figures["n_val"], figures["n_test"]) == (200, 50, 50)
