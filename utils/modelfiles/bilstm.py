"""Files and benchmark run of the BiLSTM on word2vec embeddings (notebooks 04a and 04b).

The model itself is written in the notebooks and exported to :mod:`utils.lessons`:
word2vec (``train_word2vec``, ``W2V_SETTINGS``) in notebook 04a -> :mod:`utils.lessons.word2vec`;
the vocabulary, ``TextVectorization``, embedding matrix, network, losses (soft-F1, weighted
BCE) and training loop in notebook 04b -> :mod:`utils.lessons.bilstm`. The word vectors
04a saves for 04b are read and written by :mod:`utils.data.word_vectors` (plain arrays).
Here, only plumbing:

* :func:`prepare_texts` cleans raw plots with :func:`utils.data.text.light_text`
  (lowercased words, stopwords kept: word order and "not" matter to an LSTM).
  Training and prediction both clean in Python, so the Keras ``TextVectorization``
  layer only splits on spaces (``standardize=None``): one cleaning, no drift.
* :func:`fit` runs notebook 04b's recipe in one call (word2vec, vocabulary, sequences,
  embedding matrix, model, training), calling the notebook's functions in the notebook's order.
* :func:`save_model` / :func:`load_predictor` write and read ``models/<dataset>/bilstm_w2v/``
  (``model.keras`` + ``vocabulary.txt`` + ``predictor.json``); :class:`BiLSTMPredictor`
  predicts from raw plots.
* :func:`benchmark` / :func:`benchmark_softf1` run the recipe at full settings for
  ``python -m utils.benchmark``.

gensim is imported only when word2vec is trained (:func:`fit`, :func:`benchmark`), so
loading a saved model and predicting do not need it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from utils.tools.quiet_tf import import_tensorflow

import_tensorflow()   # before keras: notebooks 04a and 07 reach TensorFlow through this module, quietly
import keras  # noqa: E402
import numpy as np  # noqa: E402

from utils.lessons.bilstm import (  # noqa: E402
    FAST_SETTINGS,
    PAD,
    SETTINGS,
    UNK,
    build_model,
    build_vocabulary,
    choose_sequence_length,
    compile_model,
    embedding_matrix,
    log_odds,
    make_dataset,
    make_loss,
    make_vectorizer,
    predict_proba,
    summarize,
    train,
    training_rows,
    vectorize,
)
from utils.modelfiles.predictor import Predictor

MODEL_NAME = "bilstm_w2v"               # BCE model: results/ and models/ folder name
SOFTF1_MODEL_NAME = "bilstm_w2v_softf1"  # the same network trained with the soft-F1 loss
KIND = "bilstm"                          # predictor kind in utils.modelfiles.predictor.KINDS
MODEL_FILE = "model.keras"
VOCAB_FILE = "vocabulary.txt"
FAST_SIZES = {"max_train": 2000, "max_eval": 500}
NOTEBOOK = "04b"                         # the notebook that trains and saves the model


# --------------------------------------------------------------------------- text


def prepare_texts(texts) -> list[str]:
    """Raw plots -> lowercased words separated by single spaces (:func:`utils.data.text.light_text`)."""
    from utils.data.text import check_text, light_text

    if isinstance(texts, str):
        texts = [texts]
    return [light_text(check_text(t)) for t in texts]


# --------------------------------------------------------------------------- the recipe in one call


@dataclass
class Trained:
    """What :func:`fit` builds, kept together for saving and predicting."""

    model: object
    vocabulary: list
    sequence_length: int
    history: dict
    embedding_info: dict
    wv: object = None

    def vectorizer(self):
        return make_vectorizer(self.vocabulary, self.sequence_length)

    def predict_proba(self, cleaned_texts) -> np.ndarray:
        return predict_proba(self.model, vectorize(self.vectorizer(), cleaned_texts))


def fit(train_texts, y_train, val_texts, y_val, loss="bce", seed: int = 42, verbose: int = 0,
        wv=None, w2v: dict | None = None, gpu: bool | None = None, **params) -> Trained:
    """Notebook 04b's recipe on *cleaned* texts: word2vec, vocabulary, sequences, model, training.

    ``params`` override :data:`utils.lessons.bilstm.SETTINGS`; ``w2v`` overrides notebook 04a's
    ``W2V_SETTINGS``; pass ``wv`` to reuse word vectors already trained. Without a GPU (``gpu``:
    detected when ``None``) the network trains on at most ``cpu_train_plots`` of the training plots,
    as in the notebook.
    """
    from utils import config

    unknown = set(params) - set(SETTINGS)
    if unknown:
        raise ValueError(f"Unknown settings {sorted(unknown)}; known: {sorted(SETTINGS)}.")
    p = {**SETTINGS, **params}
    if gpu is None:
        import tensorflow as tf

        gpu = bool(tf.config.list_physical_devices("GPU"))
    config.set_seeds(seed)
    tokens = [t.split() for t in train_texts]
    if wv is None:
        from utils.lessons.word2vec import train_word2vec

        wv = train_word2vec(tokens, seed=seed, **(w2v or {}))
    vocabulary = build_vocabulary(tokens, p["vocab_min_count"], p["max_tokens"])
    length = choose_sequence_length(tokens, p["percentile"], p["max_length"])
    vectorizer = make_vectorizer(vocabulary, length)
    x_train, x_val = vectorize(vectorizer, train_texts), vectorize(vectorizer, val_texts)
    rows = training_rows(len(x_train), None if gpu else p["cpu_train_plots"], seed)
    x_train, y_train = x_train[rows], np.asarray(y_train)[rows]
    train_ds = make_dataset(x_train, y_train, p["batch_size"], seed=seed, bucket=p["bucket_by_length"])
    val_ds = make_dataset(x_val, y_val, p["batch_size"], bucket=p["bucket_by_length"])
    matrix, info = embedding_matrix(vocabulary, wv, seed=seed)
    config.set_seeds(seed)
    model = build_model(matrix, np.asarray(y_train).shape[1], trainable=p["trainable"],
                        lstm_units=p["lstm_units"], dropout=p["dropout"], output_bias=log_odds(y_train),
                        seed=seed)
    compile_model(model, make_loss(loss, y_train), p["learning_rate"], p["f1_threshold"])
    history = train(model, train_ds, None, val_ds, None, epochs=p["epochs"], patience=p["patience"],
                    verbose=verbose)
    info = {k: v for k, v in info.items() if k != "oov_words"}
    info["trained_on"] = int(len(rows))
    return Trained(model, vocabulary, length, history, info, wv)


# --------------------------------------------------------------------------- saving and loading


def save_model(folder, model, vocabulary, sequence_length: int, genres, thresholds: dict,
               dataset: str, **extra) -> Path:
    """Write ``model.keras``, ``vocabulary.txt`` (one token a line) and then ``predictor.json``."""
    import os
    import uuid

    from utils.modelfiles.predictor import write_manifest
    from utils.files import atomic_write_bytes

    vocabulary = list(vocabulary)
    n_out = int(model.output_shape[-1])
    if n_out != len(genres):
        raise ValueError(f"The model predicts {n_out} genres but {len(genres)} names were given.")
    if any("\n" in w or " " in w for w in vocabulary):
        raise ValueError("Vocabulary tokens must not contain spaces or newlines.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".model.{uuid.uuid4().hex}.keras"   # Keras creates it (normal file permissions)
    try:
        model.save(tmp)            # Keras 3 needs the .keras suffix; rename makes it atomic
        os.replace(tmp, folder / MODEL_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    atomic_write_bytes(folder / VOCAB_FILE, ("\n".join(vocabulary) + "\n").encode("utf-8"))
    write_manifest(folder, KIND, genres, thresholds, dataset, files=[MODEL_FILE, VOCAB_FILE],
                   sequence_length=int(sequence_length), vocabulary_size=len(vocabulary),
                   text_kind="light", **extra)
    return folder


def read_vocabulary(path) -> list[str]:
    """Read ``vocabulary.txt`` back (its first line is the empty padding token)."""
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    return lines


class BiLSTMPredictor(Predictor):
    """A saved BiLSTM that predicts the genres of raw plots."""

    def __init__(self, model, vocabulary, sequence_length: int, genres, thresholds: dict):
        super().__init__(genres, thresholds, vocabulary=set(vocabulary[2:]))
        self.model = model
        self.vocabulary_list = list(vocabulary)
        self.sequence_length = int(sequence_length)
        self.vectorizer = make_vectorizer(self.vocabulary_list, self.sequence_length)

    def encode(self, texts) -> np.ndarray:
        """Raw plots -> the int sequences the network reads."""
        return vectorize(self.vectorizer, prepare_texts(texts))

    def predict_proba(self, texts) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        return predict_proba(self.model, self.encode(texts))

    def known_words(self, text: str) -> tuple[int, int]:
        """(known, total) words of the cleaned plot (all of them, not only the first ``sequence_length``)."""
        tokens = prepare_texts([text])[0].split()
        return sum(t in self.vocabulary for t in tokens), len(tokens)


def load_predictor(folder) -> BiLSTMPredictor:
    """Reload ``models/<dataset>/bilstm_w2v/`` (written by :func:`save_model`)."""
    from utils.modelfiles.predictor import ModelFormatError, read_manifest

    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest["kind"] != KIND:
        raise ModelFormatError(f"{folder} holds a {manifest['kind']!r} model, not {KIND!r}.")
    for name in (MODEL_FILE, VOCAB_FILE):
        if not (folder / name).exists():
            raise ModelFormatError(f"{folder / name} is missing: the model folder is incomplete; "
                                   f"re-run notebook {NOTEBOOK}.")
    try:
        model = keras.saving.load_model(folder / MODEL_FILE, compile=False, safe_mode=True)  # never runs code (lambdas) from the file
    except Exception as err:
        raise ModelFormatError(f"Could not load {folder / MODEL_FILE} ({type(err).__name__}: {err}). "
                               f"It was saved with {manifest.get('versions', {})}; re-run notebook {NOTEBOOK}.") from err
    try:
        vocabulary = read_vocabulary(folder / VOCAB_FILE)
    except UnicodeDecodeError as err:
        raise ModelFormatError(f"{folder / VOCAB_FILE} is not UTF-8 text ({err.reason} at byte {err.start}): "
                               f"re-run notebook {NOTEBOOK}.") from None
    if vocabulary[:2] != [PAD, UNK] or len(vocabulary) != manifest.get("vocabulary_size", len(vocabulary)):
        raise ModelFormatError(f"{folder / VOCAB_FILE} does not match predictor.json: re-run notebook {NOTEBOOK}.")
    n_in = int(model.get_layer("word2vec").input_dim)
    if n_in != len(vocabulary):
        raise ModelFormatError(f"The embedding has {n_in} rows but the vocabulary {len(vocabulary)} words.")
    if int(model.output_shape[-1]) != len(manifest["genres"]):
        raise ModelFormatError(f"The model predicts {model.output_shape[-1]} genres but predictor.json "
                               f"lists {len(manifest['genres'])}: re-run notebook {NOTEBOOK}.")
    return BiLSTMPredictor(model, vocabulary, manifest["sequence_length"], manifest["genres"],
                           manifest["thresholds"])


# --------------------------------------------------------------------------- benchmark


def benchmark(corpus, fast: bool = False, loss="bce", **params) -> dict:
    """Train on train, tune the threshold on val, evaluate once on test; return the figures.

    ``fast`` subsamples the corpus (:data:`FAST_SIZES`) and shortens training
    (``FAST_SETTINGS``). Metrics use the global threshold tuned on validation.
    """
    from utils import config
    from utils.evaluation.metrics import apply_thresholds, bootstrap_interval, evaluate, kept_predictions
    from utils.evaluation.results import choose_thresholds
    from utils.data import word_vectors
    from utils.lessons.word2vec import W2V_SETTINGS, train_word2vec

    seed = config.seed()
    if fast:
        corpus = corpus.subset(**FAST_SIZES, seed=seed)
        params = {**FAST_SETTINGS, **params}
    genres = list(corpus.genres)
    start = time.perf_counter()
    x_train, x_val, x_test = (prepare_texts(corpus.texts(s, kind="raw")) for s in ("train", "val", "test"))
    y_train, y_val, y_test = (corpus.y(s) for s in ("train", "val", "test"))
    clean_seconds = time.perf_counter() - start
    start = time.perf_counter()
    w2v_key = {**W2V_SETTINGS, "seed": seed}     # the same file notebook 04a writes and 04b reads
    w2v_path = word_vectors.vectors_path(x_train, w2v_key, corpus.dataset)
    wv = word_vectors.load_vectors(w2v_path)
    w2v_cached = wv is not None
    if wv is None:
        wv = train_word2vec([t.split() for t in x_train], seed=seed)
        word_vectors.save_vectors(w2v_path, wv, meta={"dataset": corpus.dataset, "fast": fast,
                                                      "texts": len(x_train), "settings": w2v_key})
    w2v_seconds = time.perf_counter() - start
    trained = fit(x_train, y_train, x_val, y_val, loss=loss, seed=seed, wv=wv, **params)
    start = time.perf_counter()
    val_prob, test_prob = trained.predict_proba(x_val), trained.predict_proba(x_test)
    predict_seconds = time.perf_counter() - start
    thresholds = choose_thresholds(y_val, val_prob, genres)
    per = np.array([thresholds["per_genre"][g] for g in genres])
    test_pred = apply_thresholds(test_prob, thresholds["global"])   # the headline's decisions
    s = summarize(trained.history)
    p = {**SETTINGS, **params}
    return {
        "model": MODEL_NAME if loss == "bce" else (SOFTF1_MODEL_NAME if loss == "soft_f1" else f"bilstm_w2v_{loss}"),
        "n_train": len(y_train), "n_val": len(y_val), "n_test": len(y_test), "n_genres": len(genres),
        "test": evaluate(y_test, test_prob, thresholds["global"]),
        "test_per_genre": evaluate(y_test, test_prob, per),
        "test_0.5": evaluate(y_test, test_prob, 0.5),
        "test_interval": bootstrap_interval(y_test, test_pred),
        **kept_predictions(corpus.ids("test"), y_test, test_pred),
        "threshold": thresholds["global"],
        "epochs": s["epochs"], "best_epoch": s["best_epoch"],
        "seconds_per_epoch": round(s["train_seconds"] / max(s["epochs"], 1), 2),
        "steady_seconds_per_epoch": round(s["seconds_per_epoch"], 2),
        "first_epoch_seconds": round(s["first_epoch_seconds"], 2),
        "train_seconds": round(w2v_seconds + s["train_seconds"], 2),
        "word2vec_seconds": round(w2v_seconds, 2), "word2vec_cached": w2v_cached,
        "trained_on": trained.embedding_info.get("trained_on"),
        "network_seconds": round(s["train_seconds"], 2),
        "clean_seconds": round(clean_seconds, 2),
        "predict_seconds": round(predict_seconds, 2),
        "sequence_length": trained.sequence_length,
        "embedding": trained.embedding_info,
        "params": {**p, "word2vec": W2V_SETTINGS, "loss": loss if isinstance(loss, str) else type(loss).__name__},
        "notes": f"notebook 04b's recipe: word2vec (gensim, train plots) -> frozen={not p['trainable']} "
                 f"embedding -> BiLSTM ({p['lstm_units']} units/direction) -> sigmoid; loss={loss}; early "
                 f"stopping on val loss; global threshold tuned on val",
    }


def benchmark_softf1(corpus, fast: bool = False, **params) -> dict:
    """:func:`benchmark` with the soft-F1 loss (``python -m utils.benchmark --model bilstm_softf1``)."""
    return benchmark(corpus, fast=fast, loss="soft_f1", **params)
