"""A bidirectional LSTM on word2vec embeddings (notebook 04).

The steps, each a function the notebook calls one by one:

* :func:`prepare_texts` cleans raw plots with :func:`utils.data.text.light_text`
  (lowercased words, stopwords kept: word order and "not" matter to an LSTM).
  Training and prediction both clean in Python, so the Keras ``TextVectorization``
  layer only splits on spaces (``standardize=None``): one cleaning, no drift.
* :func:`train_word2vec` learns word vectors with gensim on the training plots only.
* :func:`build_vocabulary`, :func:`choose_sequence_length` and :func:`make_vectorizer`
  turn texts into right-padded integer sequences.
* :func:`embedding_matrix` copies the word2vec vectors into an ``Embedding`` weight
  matrix and counts the words word2vec does not know (OOV).
* :func:`build_model`: embedding -> bidirectional LSTM -> dropout -> one sigmoid per genre,
  trained with binary cross-entropy, :func:`soft_f1_loss` or :class:`WeightedBCE`.
* :func:`train` fits with early stopping on the validation loss and times each epoch.
* :func:`save_model` / :func:`load_predictor` write and read ``models/<dataset>/bilstm_w2v/``
  (``model.keras`` + ``vocabulary.txt`` + ``predictor.json``).
* :func:`benchmark` runs everything at full settings for ``python -m utils.benchmark``.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from utils.tools import keras_tools
from utils.modelfiles.predictor import Predictor

MODEL_NAME = "bilstm_w2v"               # BCE model: results/ and models/ folder name
SOFTF1_MODEL_NAME = "bilstm_w2v_softf1"  # the same network trained with the soft-F1 loss
KIND = "bilstm"                          # predictor kind in utils.modelfiles.predictor.KINDS
MODEL_FILE = "model.keras"
VOCAB_FILE = "vocabulary.txt"
PAD, UNK = "", "[UNK]"                   # TextVectorization's index 0 (padding) and 1 (unknown)

# Chosen on the Netflix validation split (notebook 04 and its exercises).
DEFAULTS = {
    "embedding_dim": 100,    # word2vec vector size = Embedding width
    "w2v_window": 5,         # context words on each side
    "w2v_min_count": 2,      # word2vec ignores words seen once in the training plots
    "w2v_epochs": 30,        # passes over the corpus: a small corpus needs many
    "w2v_sg": 1,             # 1 = skip-gram (better than CBOW for rare words on small corpora)
    "vocab_min_count": 2,    # words seen once in training map to [UNK]
    "max_tokens": 30_000,    # cap on the vocabulary (CMU plots have many names)
    "percentile": 95,        # sequence length = this percentile of training lengths
    "max_length": 400,       # ... but never more (long CMU plots cost time)
    "trainable": True,       # fine-tune the word2vec vectors (slightly ahead of frozen on Netflix val)
    "lstm_units": 64,        # per direction
    "dropout": 0.5,
    "learning_rate": 1e-3,
    "batch_size": 64,
    "epochs": 30,            # at most; early stopping usually ends sooner
    "patience": 3,           # epochs without a better val loss before stopping
    "f1_threshold": 0.5,     # cut-off of the per-epoch micro-F1 curve (not the tuned threshold)
}
FAST_OVERRIDES = {"epochs": 12, "patience": 2}
FAST_SIZES = {"max_train": 2000, "max_eval": 500}


# --------------------------------------------------------------------------- text


def prepare_texts(texts) -> list[str]:
    """Raw plots -> lowercased words separated by single spaces (:func:`utils.data.text.light_text`)."""
    from utils.data.text import check_text, light_text

    if isinstance(texts, str):
        texts = [texts]
    return [light_text(check_text(t)) for t in texts]


def split_tokens(texts) -> list[list[str]]:
    """Cleaned texts -> token lists (the cleaned text is already space-separated)."""
    return [t.split() for t in texts]


# --------------------------------------------------------------------------- word2vec


def train_word2vec(token_lists, vector_size: int = DEFAULTS["embedding_dim"],
                   window: int = DEFAULTS["w2v_window"], min_count: int = DEFAULTS["w2v_min_count"],
                   epochs: int = DEFAULTS["w2v_epochs"], sg: int = DEFAULTS["w2v_sg"],
                   seed: int = 42, workers: int = 1):
    """Train gensim word2vec on tokenized *training* plots; return its ``KeyedVectors``.

    ``workers=1`` with a fixed ``seed`` makes the vectors reproducible (more worker
    threads are faster but the order of updates, hence the vectors, changes run to run).
    """
    from gensim.models import Word2Vec

    token_lists = [list(t) for t in token_lists]
    if not any(token_lists):
        raise ValueError("word2vec needs at least one non-empty tokenized plot.")
    model = Word2Vec(sentences=token_lists, vector_size=vector_size, window=window,
                     min_count=min_count, sg=sg, epochs=epochs, seed=seed, workers=workers)
    return model.wv


def nearest_neighbours(wv, words, topn: int = 6) -> dict[str, list[tuple[str, float]] | None]:
    """Most similar words of each word; ``None`` for a word the vectors do not know."""
    return {w: ([(n, float(s)) for n, s in wv.most_similar(w, topn=topn)] if w in wv else None)
            for w in words}


def project_2d(wv, groups: dict[str, list[str]]):
    """PCA of the vectors of ``groups`` (name -> words); unknown words are skipped.

    Returns a DataFrame ``word, group, x, y`` and the explained variance ratios.
    """
    import pandas as pd
    from sklearn.decomposition import PCA

    rows = [(w, g) for g, words in groups.items() for w in words if w in wv]
    if len(rows) < 2:
        raise ValueError("Fewer than two of the words are in the word2vec vocabulary: choose others.")
    vectors = np.stack([wv[w] for w, _ in rows])
    pca = PCA(n_components=2, random_state=0)
    xy = pca.fit_transform(vectors)
    table = pd.DataFrame({"word": [w for w, _ in rows], "group": [g for _, g in rows],
                          "x": xy[:, 0], "y": xy[:, 1]})
    return table, pca.explained_variance_ratio_


# --------------------------------------------------------------------------- vocabulary and sequences


def build_vocabulary(token_lists, min_count: int = DEFAULTS["vocab_min_count"],
                     max_tokens: int | None = DEFAULTS["max_tokens"]) -> list[str]:
    """``["", "[UNK]", most frequent word, ...]``: training words seen ``min_count`` times or more.

    Ties are broken alphabetically so the vocabulary is the same on every run.
    """
    counts = Counter(t for tokens in token_lists for t in tokens)
    words = sorted((w for w, c in counts.items() if c >= min_count and w not in (PAD, UNK)),
                   key=lambda w: (-counts[w], w))
    if max_tokens is not None:
        words = words[: max(0, max_tokens - 2)]
    if not words:
        raise ValueError(f"No word occurs {min_count} times in the training texts: lower min_count.")
    return [PAD, UNK] + words


def length_stats(token_lists, length: int) -> dict[str, float]:
    """How much a cut at ``length`` tokens loses: share of plots cut and of tokens dropped."""
    lengths = np.array([len(t) for t in token_lists])
    total = max(int(lengths.sum()), 1)
    return {"sequence_length": int(length),
            "plots_cut": float((lengths > length).mean()),
            "tokens_dropped": float(np.clip(lengths - length, 0, None).sum() / total)}


def choose_sequence_length(token_lists, percentile: float = DEFAULTS["percentile"],
                           max_length: int | None = DEFAULTS["max_length"]) -> int:
    """The ``percentile`` of the training token counts (capped at ``max_length``)."""
    lengths = [len(t) for t in token_lists]
    if not lengths:
        raise ValueError("No training texts to measure.")
    length = int(np.ceil(np.percentile(lengths, percentile)))
    return max(1, min(length, max_length) if max_length else length)


def make_vectorizer(vocabulary, sequence_length: int):
    """Keras ``TextVectorization`` with a fixed vocabulary: split on spaces, no standardization.

    Output: int sequences of exactly ``sequence_length``; longer texts keep their first
    tokens, shorter ones are padded with 0 on the right (what the cuDNN LSTM needs).
    """
    vocabulary = list(vocabulary)
    if vocabulary[:2] != [PAD, UNK]:
        raise ValueError(f"The vocabulary must start with {PAD!r} and {UNK!r} (build_vocabulary does that).")
    return keras.layers.TextVectorization(standardize=None, split="whitespace", output_mode="int",
                                          output_sequence_length=int(sequence_length),
                                          vocabulary=vocabulary[2:])


def vectorize(vectorizer, texts, batch_size: int = 4096) -> np.ndarray:
    """Cleaned texts -> int32 array (texts x sequence length)."""
    texts = list(texts)
    parts = [np.asarray(vectorizer(np.array(texts[i:i + batch_size], dtype=object)))
             for i in range(0, len(texts), batch_size)]
    if not parts:
        return np.zeros((0, vectorizer.get_config()["output_sequence_length"]), dtype=np.int32)
    return np.concatenate(parts).astype(np.int32)


def unknown_rate(x: np.ndarray) -> float:
    """Share of the non-padding positions that are [UNK] (index 1)."""
    x = np.asarray(x)
    real = (x != 0).sum()
    return float((x == 1).sum() / real) if real else 0.0


def embedding_matrix(vocabulary, wv, oov: str = "random", scale: float | None = None,
                     seed: int = 42) -> tuple[np.ndarray, dict]:
    """Embedding weights: row ``i`` is the word2vec vector of ``vocabulary[i]``.

    Row 0 (padding) and row 1 ([UNK]) are zeros. A vocabulary word that word2vec does
    not know (OOV) gets ``oov="random"``: small random numbers with the spread of the
    known vectors (fine-tuning can then learn it), or ``oov="zeros"``.
    Returns ``(matrix, info)``; ``info`` has the counts and the OOV words.
    """
    if oov not in ("random", "zeros"):
        raise ValueError(f"oov must be 'random' or 'zeros', not {oov!r}.")
    vocabulary = list(vocabulary)
    dim = int(wv.vector_size)
    known = [w for w in vocabulary[2:] if w in wv]
    if scale is None:
        scale = float(np.std(np.stack([wv[w] for w in known]))) if known else 0.1
    rng = np.random.default_rng(seed)
    matrix = np.zeros((len(vocabulary), dim), dtype=np.float32)
    missing = []
    for i, word in enumerate(vocabulary[2:], start=2):
        if word in wv:
            matrix[i] = wv[word]
        else:
            missing.append(word)
            if oov == "random":
                matrix[i] = rng.normal(0.0, scale, dim)
    n = max(len(vocabulary) - 2, 1)
    info = {"vocabulary_size": len(vocabulary), "found": len(vocabulary) - 2 - len(missing),
            "oov": len(missing), "oov_share": len(missing) / n, "oov_words": missing}
    return matrix, info


# --------------------------------------------------------------------------- losses


@keras.saving.register_keras_serializable(package="course_bilstm")
def soft_f1_loss(y_true, y_pred, eps: float = 1e-7):
    """``1 - soft macro-F1`` of a batch: F1 computed from probabilities instead of 0/1 labels.

    Per genre: soft TP = sum(y*p), FP = sum((1-y)*p), FN = sum(y*(1-p)) over the
    batch; F1 = 2TP / (2TP + FP + FN); the loss is 1 minus the mean over genres.
    Differentiable, so the network optimises (an approximation of) the metric directly.
    """
    ops = keras.ops
    y_true = ops.cast(y_true, y_pred.dtype)
    tp = ops.sum(y_true * y_pred, axis=0)
    fp = ops.sum((1.0 - y_true) * y_pred, axis=0)
    fn = ops.sum(y_true * (1.0 - y_pred), axis=0)
    f1 = 2.0 * tp / (2.0 * tp + fp + fn + eps)
    return 1.0 - ops.mean(f1)


def positive_weights(y, cap: float = 10.0) -> np.ndarray:
    """Per-genre weight of positive examples: negatives / positives, clipped to [1, ``cap``]."""
    y = np.asarray(y, dtype=float)
    pos = y.sum(axis=0)
    neg = len(y) - pos
    return np.clip(neg / np.maximum(pos, 1.0), 1.0, cap).astype(np.float32)


def log_odds(y, eps: float = 1e-3) -> np.ndarray:
    """Per-genre log(p / (1 - p)) of the label frequencies ``p`` (clipped away from 0 and 1)."""
    p = np.clip(np.asarray(y, dtype=float).mean(axis=0), eps, 1 - eps)
    return np.log(p / (1 - p)).astype(np.float32)


@keras.saving.register_keras_serializable(package="course_bilstm")
class WeightedBCE(keras.losses.Loss):
    """Binary cross-entropy where a positive label of genre ``j`` counts ``pos_weight[j]`` times."""

    def __init__(self, pos_weight, name="weighted_bce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pos_weight = [float(w) for w in np.ravel(pos_weight)]

    def call(self, y_true, y_pred):
        ops = keras.ops
        y_true = ops.cast(y_true, y_pred.dtype)
        p = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
        w = ops.convert_to_tensor(self.pos_weight, dtype=y_pred.dtype)
        loss = -(w * y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p))
        return ops.mean(loss, axis=-1)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight}


def make_loss(loss, y_train=None):
    """``"bce"``, ``"soft_f1"``, ``"weighted_bce"`` (weights from ``y_train``) or a Keras loss."""
    if not isinstance(loss, str):
        return loss
    if loss == "bce":
        return "binary_crossentropy"
    if loss == "soft_f1":
        return soft_f1_loss
    if loss == "weighted_bce":
        if y_train is None:
            raise ValueError("loss='weighted_bce' needs y_train to compute the positive weights.")
        return WeightedBCE(positive_weights(y_train))
    raise ValueError(f"loss must be 'bce', 'soft_f1', 'weighted_bce' or a Keras loss, not {loss!r}.")


# --------------------------------------------------------------------------- model


def build_model(matrix: np.ndarray, n_genres: int, sequence_length: int,
                trainable: bool = DEFAULTS["trainable"], lstm_units: int = DEFAULTS["lstm_units"],
                dropout: float = DEFAULTS["dropout"], loss="bce", y_train=None,
                learning_rate: float = DEFAULTS["learning_rate"],
                f1_threshold: float = DEFAULTS["f1_threshold"], seed: int = 42, prior_bias: bool = True):
    """Embedding (word2vec, frozen or fine-tuned) -> BiLSTM -> dropout -> sigmoid per genre; compiled.

    With ``y_train`` and ``prior_bias``, the output biases start at each genre's log-odds in
    the training labels, so the untrained network already predicts the genre frequencies
    instead of 0.5 everywhere (the first epochs are not spent learning them).

    The LSTM keeps Keras' defaults (tanh, sigmoid recurrent activation, no recurrent
    dropout, bias, not unrolled) and the padding is masked and on the right, so on a
    GPU Keras runs the fast cuDNN kernel.
    """
    matrix = np.asarray(matrix, dtype=np.float32)
    inputs = keras.Input(shape=(int(sequence_length),), dtype="int32", name="token_ids")
    embedding = keras.layers.Embedding(matrix.shape[0], matrix.shape[1], mask_zero=True,
                                       trainable=trainable, name="word2vec")
    x = embedding(inputs)
    embedding.set_weights([matrix])  # not a Constant initializer: that would copy the matrix into the config
    x = keras.layers.Bidirectional(keras.layers.LSTM(lstm_units, seed=seed), name="bilstm")(x)
    x = keras.layers.Dropout(dropout, seed=seed, name="dropout")(x)
    bias = "zeros"
    if prior_bias and y_train is not None:
        bias = keras.initializers.Constant(log_odds(y_train))
    outputs = keras.layers.Dense(n_genres, activation="sigmoid", bias_initializer=bias, name="genres")(x)
    model = keras.Model(inputs, outputs, name="bilstm_w2v")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=make_loss(loss, y_train),
                  metrics=[keras.metrics.F1Score(average="micro", threshold=f1_threshold, name="micro_f1")])
    return model


@dataclass
class TrainLog:
    """What :func:`train` returns: the per-epoch history, epoch times and the best epoch."""

    history: dict
    epoch_seconds: list
    best_epoch: int
    train_seconds: float
    stopped_early: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def seconds_per_epoch(self) -> float:
        """Mean over all epochs (the first one also builds and traces the graph)."""
        return float(np.mean(self.epoch_seconds)) if self.epoch_seconds else float("nan")

    @property
    def steady_seconds_per_epoch(self) -> float:
        """Median over the epochs after the first: the cost of one more epoch."""
        later = self.epoch_seconds[1:] or self.epoch_seconds
        return float(np.median(later)) if later else float("nan")

    def frame(self):
        """The history as a DataFrame, one row per epoch (1-based)."""
        import pandas as pd

        table = pd.DataFrame(self.history)
        table.index = pd.RangeIndex(1, len(table) + 1, name="epoch")
        table["seconds"] = self.epoch_seconds
        return table


def train(model, x_train, y_train, x_val, y_val, epochs: int = DEFAULTS["epochs"],
          batch_size: int = DEFAULTS["batch_size"], patience: int = DEFAULTS["patience"],
          verbose: int = 0) -> TrainLog:
    """Fit with early stopping on the validation loss, keeping the best epoch's weights."""
    y_train = np.asarray(y_train, dtype=np.float32)
    y_val = np.asarray(y_val, dtype=np.float32)
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise ValueError(f"texts and labels differ in length: train {len(x_train)}/{len(y_train)}, "
                         f"val {len(x_val)}/{len(y_val)}.")
    timer = keras_tools.epoch_timer(keras)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                         restore_best_weights=True, verbose=0)
    start = time.perf_counter()
    fit = model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=epochs,
                    batch_size=batch_size, callbacks=[stop, timer], verbose=verbose, shuffle=True)
    seconds = time.perf_counter() - start
    history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
    best = int(np.argmin(history["val_loss"])) + 1
    return TrainLog(history, timer.seconds, best, seconds, stopped_early=len(history["val_loss"]) < epochs)


def predict_proba(model, x, batch_size: int = 256) -> np.ndarray:
    """Probabilities (texts x genres) for int sequences ``x``."""
    return np.asarray(model.predict(np.asarray(x), batch_size=batch_size, verbose=0), dtype=np.float32)


# --------------------------------------------------------------------------- everything in one call


@dataclass
class Trained:
    """The pieces :func:`fit` builds, kept together for saving and predicting."""

    model: object
    vocabulary: list
    sequence_length: int
    log: TrainLog
    embedding_info: dict
    wv: object = None

    def vectorizer(self):
        return make_vectorizer(self.vocabulary, self.sequence_length)

    def predict_proba(self, cleaned_texts) -> np.ndarray:
        return predict_proba(self.model, vectorize(self.vectorizer(), cleaned_texts))


def fit(train_texts, y_train, val_texts, y_val, loss="bce", seed: int = 42, verbose: int = 0,
        wv=None, **params) -> Trained:
    """Whole recipe on *cleaned* texts: word2vec, vocabulary, sequences, model, training.

    ``params`` override :data:`DEFAULTS`; pass ``wv`` to reuse word vectors already trained.
    """
    from utils import config

    p = {**DEFAULTS, **params}
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"Unknown settings {sorted(unknown)}; known: {sorted(DEFAULTS)}.")
    config.set_seeds(seed)
    tokens = split_tokens(train_texts)
    if wv is None:
        wv = train_word2vec(tokens, vector_size=p["embedding_dim"], window=p["w2v_window"],
                            min_count=p["w2v_min_count"], epochs=p["w2v_epochs"], sg=p["w2v_sg"], seed=seed)
    vocabulary = build_vocabulary(tokens, p["vocab_min_count"], p["max_tokens"])
    length = choose_sequence_length(tokens, p["percentile"], p["max_length"])
    vectorizer = make_vectorizer(vocabulary, length)
    x_train, x_val = vectorize(vectorizer, train_texts), vectorize(vectorizer, val_texts)
    matrix, info = embedding_matrix(vocabulary, wv, seed=seed)
    config.set_seeds(seed)
    model = build_model(matrix, np.asarray(y_train).shape[1], length, trainable=p["trainable"],
                        lstm_units=p["lstm_units"], dropout=p["dropout"], loss=loss, y_train=y_train,
                        learning_rate=p["learning_rate"], f1_threshold=p["f1_threshold"], seed=seed)
    log = train(model, x_train, y_train, x_val, y_val, epochs=p["epochs"], batch_size=p["batch_size"],
                patience=p["patience"], verbose=verbose)
    info = {k: v for k, v in info.items() if k != "oov_words"}
    return Trained(model, vocabulary, length, log, info, wv)


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
                                   f"re-run notebook 04.")
    try:
        model = keras.saving.load_model(folder / MODEL_FILE, compile=False)
    except Exception as err:
        raise ModelFormatError(f"Could not load {folder / MODEL_FILE} ({type(err).__name__}: {err}). "
                               f"It was saved with {manifest.get('versions', {})}; re-run notebook 04.") from err
    vocabulary = read_vocabulary(folder / VOCAB_FILE)
    if vocabulary[:2] != [PAD, UNK] or len(vocabulary) != manifest.get("vocabulary_size", len(vocabulary)):
        raise ModelFormatError(f"{folder / VOCAB_FILE} does not match predictor.json: re-run notebook 04.")
    n_in = int(model.get_layer("word2vec").input_dim)
    if n_in != len(vocabulary):
        raise ModelFormatError(f"The embedding has {n_in} rows but the vocabulary {len(vocabulary)} words.")
    if int(model.output_shape[-1]) != len(manifest["genres"]):
        raise ModelFormatError(f"The model predicts {model.output_shape[-1]} genres but predictor.json "
                               f"lists {len(manifest['genres'])}: re-run notebook 04.")
    return BiLSTMPredictor(model, vocabulary, manifest["sequence_length"], manifest["genres"],
                           manifest["thresholds"])


# --------------------------------------------------------------------------- benchmark


def benchmark(corpus, fast: bool = False, loss="bce", **params) -> dict:
    """Train on train, tune the threshold on val, evaluate once on test; return the figures.

    ``fast`` subsamples the corpus (:data:`FAST_SIZES`) and shortens training
    (:data:`FAST_OVERRIDES`). Metrics use the global threshold tuned on validation.
    """
    from utils import config
    from utils.evaluation.metrics import evaluate
    from utils.evaluation.results import choose_thresholds

    seed = config.seed()
    if fast:
        corpus = corpus.subset(**FAST_SIZES, seed=seed)
        params = {**FAST_OVERRIDES, **params}
    genres = list(corpus.genres)
    start = time.perf_counter()
    x_train, x_val, x_test = (prepare_texts(corpus.texts(s, kind="raw")) for s in ("train", "val", "test"))
    y_train, y_val, y_test = (corpus.y(s) for s in ("train", "val", "test"))
    clean_seconds = time.perf_counter() - start
    start = time.perf_counter()
    tokens = split_tokens(x_train)
    p = {**DEFAULTS, **params}
    wv = train_word2vec(tokens, vector_size=p["embedding_dim"], window=p["w2v_window"],
                        min_count=p["w2v_min_count"], epochs=p["w2v_epochs"], sg=p["w2v_sg"], seed=seed)
    w2v_seconds = time.perf_counter() - start
    trained = fit(x_train, y_train, x_val, y_val, loss=loss, seed=seed, wv=wv, **params)
    start = time.perf_counter()
    val_prob, test_prob = trained.predict_proba(x_val), trained.predict_proba(x_test)
    predict_seconds = time.perf_counter() - start
    thresholds = choose_thresholds(y_val, val_prob, genres)
    per = np.array([thresholds["per_genre"][g] for g in genres])
    log = trained.log
    return {
        "model": MODEL_NAME if loss == "bce" else (SOFTF1_MODEL_NAME if loss == "soft_f1" else f"bilstm_w2v_{loss}"),
        "n_train": len(y_train), "n_val": len(y_val), "n_test": len(y_test), "n_genres": len(genres),
        "test": evaluate(y_test, test_prob, thresholds["global"]),
        "test_per_genre": evaluate(y_test, test_prob, per),
        "test_0.5": evaluate(y_test, test_prob, 0.5),
        "threshold": thresholds["global"],
        "epochs": len(log.epoch_seconds), "best_epoch": log.best_epoch,
        "seconds_per_epoch": round(log.seconds_per_epoch, 2),
        "steady_seconds_per_epoch": round(log.steady_seconds_per_epoch, 2),
        "first_epoch_seconds": round(log.epoch_seconds[0], 2),
        "train_seconds": round(w2v_seconds + log.train_seconds, 2),
        "word2vec_seconds": round(w2v_seconds, 2),
        "network_seconds": round(log.train_seconds, 2),
        "clean_seconds": round(clean_seconds, 2),
        "predict_seconds": round(predict_seconds, 2),
        "sequence_length": trained.sequence_length,
        "embedding": trained.embedding_info,
        "params": {**p, "loss": loss if isinstance(loss, str) else type(loss).__name__},
        "notes": f"word2vec (gensim, train plots) -> frozen={not p['trainable']} embedding -> BiLSTM "
                 f"({p['lstm_units']} units/direction) -> sigmoid; loss={loss}; early stopping on val "
                 f"loss; global threshold tuned on val",
    }


def benchmark_softf1(corpus, fast: bool = False, **params) -> dict:
    """:func:`benchmark` with the soft-F1 loss (``python -m utils.benchmark --model utils.modelfiles.bilstm:benchmark_softf1``)."""
    return benchmark(corpus, fast=fast, loss="soft_f1", **params)
