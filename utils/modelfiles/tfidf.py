"""The classical baseline: TF-IDF features and one logistic regression per genre.

* :func:`build_pipeline` returns an unfitted scikit-learn ``Pipeline``
  (``TfidfVectorizer`` -> ``OneVsRestClassifier(LogisticRegression)``). Fitting the
  pipeline on the training split only is what keeps validation and test words out
  of the vocabulary and the IDF weights.
* :func:`fit` / :func:`predict_proba` train it and return one probability per genre.
* :func:`top_words` lists the words with the largest positive coefficient per genre.
* :func:`save_model` / :func:`load_predictor` write and read
  ``models/<dataset>/tfidf_logreg/`` (``pipeline.joblib`` + ``predictor.json``).
* :func:`benchmark` trains and evaluates the baseline for ``python -m utils.benchmark``.

The pipeline reads text that :mod:`utils.data.text` has already cleaned (``clean_text``:
lowercase words, stopwords removed), so its tokenizer only splits on spaces; the
saved predictor applies the same cleaning to raw plots before predicting.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from utils.modelfiles.predictor import Predictor

MODEL_NAME = "tfidf_logreg"   # name under results/ and models/
KIND = "tfidf_logreg"         # predictor kind in utils.modelfiles.predictor.KINDS
PIPELINE_FILE = "pipeline.joblib"
TEXT_KINDS = ("clean", "light")

# Chosen on the Netflix validation split (see notebook 03's exercises for the search).
DEFAULTS = {
    "C": 10.0,               # inverse regularisation strength of each logistic regression
    "ngram_range": (1, 2),   # words and pairs of words
    "min_df": 2,             # ignore words seen in a single training plot
    "max_df": 0.9,           # ... and words in more than 90% of them
    "max_features": 200_000,  # cap the vocabulary (memory) on the large CMU corpus
    "sublinear_tf": True,    # 1 + log(tf): a word said ten times is not ten times as telling
}


def _sorted_csr(X):
    """Sort the sparse matrix's indices in place (joblib workers get read-only copies)."""
    X.sort_indices()
    return X


def build_pipeline(C: float = DEFAULTS["C"], ngram_range=DEFAULTS["ngram_range"],
                   min_df=DEFAULTS["min_df"], max_df=DEFAULTS["max_df"],
                   max_features=DEFAULTS["max_features"], sublinear_tf=DEFAULTS["sublinear_tf"],
                   class_weight=None, n_jobs: int | None = None, seed: int = 0):
    """An unfitted ``Pipeline``: TF-IDF on space-separated tokens, then one-vs-rest logistic regression.

    ``n_jobs`` fits that many genres in parallel (``-1``: all cores).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    vectorizer = TfidfVectorizer(
        token_pattern=r"\S+",        # the text is already tokenized by utils.data.text
        lowercase=False,
        ngram_range=tuple(ngram_range),
        min_df=min_df,
        max_df=max_df,
        max_features=max_features,
        sublinear_tf=sublinear_tf,
        dtype=np.float32,
    )
    classifier = OneVsRestClassifier(
        LogisticRegression(C=C, solver="liblinear", max_iter=1000, class_weight=class_weight,
                           random_state=seed),
        n_jobs=n_jobs,
    )
    return Pipeline([("tfidf", vectorizer),
                     ("sort", FunctionTransformer(_sorted_csr, accept_sparse=True)),
                     ("logreg", classifier)])


def _check_labels(y) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 2:
        raise ValueError(f"Labels must be a 0/1 matrix (movies x genres), got shape {y.shape}.")
    empty = np.flatnonzero(y.sum(axis=0) == 0)
    full = np.flatnonzero(y.sum(axis=0) == len(y))
    if len(empty) or len(full):
        raise ValueError(f"Every genre needs positive and negative training examples; genre columns "
                         f"{list(empty) + list(full)} have only one class. Use a larger training "
                         f"split or drop those genres.")
    return y


def fit(texts, y, **params):
    """Fit :func:`build_pipeline` (``params`` override :data:`DEFAULTS`) on cleaned training texts."""
    texts = list(texts)
    y = _check_labels(y)
    if len(texts) != len(y):
        raise ValueError(f"{len(texts)} texts but {len(y)} label rows.")
    return build_pipeline(**params).fit(texts, y)


def predict_proba(pipeline, texts) -> np.ndarray:
    """Probability of every genre for every (cleaned) text: array movies x genres."""
    return np.asarray(pipeline.predict_proba(list(texts)), dtype=np.float32)


def vocabulary_size(pipeline) -> int:
    return len(pipeline.named_steps["tfidf"].vocabulary_)


def top_words(pipeline, genres, n: int = 10) -> dict[str, list[tuple[str, float]]]:
    """The ``n`` features with the largest positive coefficient for each genre."""
    features = pipeline.named_steps["tfidf"].get_feature_names_out()
    estimators = pipeline.named_steps["logreg"].estimators_
    if len(estimators) != len(genres):
        raise ValueError(f"The model has {len(estimators)} genres but {len(genres)} names were given.")
    out = {}
    for genre, est in zip(genres, estimators):
        coef = np.ravel(est.coef_)
        best = np.argsort(-coef, kind="stable")[:n]
        out[str(genre)] = [(str(features[i]), float(coef[i])) for i in best]
    return out


def top_words_table(pipeline, genres, n: int = 10):
    """:func:`top_words` as a DataFrame: one row per genre, its top words in one column."""
    import pandas as pd

    words = top_words(pipeline, genres, n)
    return pd.DataFrame({"genre": list(words),
                         "top words": [", ".join(w for w, _ in ws) for ws in words.values()]}
                        ).set_index("genre")


def prepare_texts(texts, kind: str = "clean") -> list[str]:
    """Raw plots -> the text the pipeline expects (``utils.data.text.clean_text`` or ``light_text``)."""
    from utils.data.text import check_text, clean_text, light_text

    if kind not in TEXT_KINDS:
        raise ValueError(f"text kind must be one of {TEXT_KINDS}, not {kind!r}.")
    fn = clean_text if kind == "clean" else light_text
    return [fn(check_text(t)) for t in texts]


# --------------------------------------------------------------------------- saving


def save_model(pipeline, folder, genres, thresholds: dict, dataset: str, text_kind: str = "clean",
               **extra) -> Path:
    """Write ``pipeline.joblib`` then ``predictor.json`` into ``folder`` (both atomically)."""
    import io

    import joblib

    from utils.modelfiles.predictor import write_manifest
    from utils.evaluation.results import atomic_write_bytes

    if text_kind not in TEXT_KINDS:
        raise ValueError(f"text_kind must be one of {TEXT_KINDS}, not {text_kind!r}.")
    n_model = len(pipeline.named_steps["logreg"].estimators_)
    if n_model != len(genres):
        raise ValueError(f"The pipeline predicts {n_model} genres but {len(genres)} names were given.")
    folder = Path(folder)
    buf = io.BytesIO()
    joblib.dump(pipeline, buf, compress=3)
    atomic_write_bytes(folder / PIPELINE_FILE, buf.getvalue())
    write_manifest(folder, KIND, genres, thresholds, dataset, text_kind=text_kind,
                   files=[PIPELINE_FILE], vocabulary_size=vocabulary_size(pipeline), **extra)
    return folder


class TfidfPredictor(Predictor):
    """A saved TF-IDF + logistic regression model that predicts genres of raw plots."""

    def __init__(self, pipeline, genres, thresholds: dict, text_kind: str = "clean"):
        vocab = pipeline.named_steps["tfidf"].vocabulary_
        super().__init__(genres, thresholds, vocabulary={w for w in vocab if " " not in w})
        self.pipeline = pipeline
        self.text_kind = text_kind

    def predict_proba(self, texts) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        return predict_proba(self.pipeline, prepare_texts(texts, self.text_kind))

    def known_words(self, text: str) -> tuple[int, int]:
        """(known, total) counts of the plot's cleaned words against the TF-IDF vocabulary."""
        tokens = prepare_texts([text], self.text_kind)[0].split()
        return sum(t in self.vocabulary for t in tokens), len(tokens)


def load_predictor(folder) -> TfidfPredictor:
    """Reload ``models/<dataset>/tfidf_logreg/`` (written by :func:`save_model`).

    ``pipeline.joblib`` is a pickle: only load model folders you trust.
    """
    import joblib

    from utils.modelfiles.predictor import ModelFormatError, read_manifest

    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest["kind"] != KIND:
        raise ModelFormatError(f"{folder} holds a {manifest['kind']!r} model, not {KIND!r}.")
    path = folder / PIPELINE_FILE
    if not path.exists():
        raise ModelFormatError(f"{path} is missing: the model folder is incomplete; re-run notebook 03.")
    try:
        pipeline = joblib.load(path)
    except Exception as err:  # truncated file, other scikit-learn version, ...
        raise ModelFormatError(f"Could not load {path} ({type(err).__name__}: {err}). It was saved with "
                               f"{manifest.get('versions', {})}; re-run notebook 03 to save it again.") from err
    n_model = len(pipeline.named_steps["logreg"].estimators_)
    if n_model != len(manifest["genres"]):
        raise ModelFormatError(f"{path} predicts {n_model} genres but predictor.json lists "
                               f"{len(manifest['genres'])}: re-run notebook 03.")
    return TfidfPredictor(pipeline, manifest["genres"], manifest["thresholds"],
                          manifest.get("text_kind", "clean"))


# --------------------------------------------------------------------------- benchmark

FAST_SIZES = {"max_train": 2000, "max_eval": 500}  # as the other models: notebook 06 compares the same titles
PARALLEL_FROM = 5000  # training plots from which benchmark() fits the genres in parallel


def benchmark(corpus, fast: bool = False, text_kind: str = "clean", **params) -> dict:
    """Train on train, tune thresholds on val, evaluate once on test; return the figures.

    ``fast`` subsamples the corpus (:data:`FAST_SIZES`). The headline metrics use the
    global threshold tuned on validation; per-genre thresholds are reported beside.
    """
    from utils.evaluation.metrics import evaluate
    from utils.evaluation.results import choose_thresholds

    if fast:
        corpus = corpus.subset(**FAST_SIZES)
    genres = list(corpus.genres)
    x_train, x_val, x_test = (corpus.texts(s, kind=text_kind) for s in ("train", "val", "test"))
    y_train, y_val, y_test = (corpus.y(s) for s in ("train", "val", "test"))
    # worker processes cost seconds to start: worth it only on a large training split
    settings = {**DEFAULTS, "n_jobs": -1 if len(y_train) >= PARALLEL_FROM else None, **params}
    start = time.perf_counter()
    pipeline = fit(x_train, y_train, **settings)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    val_prob = predict_proba(pipeline, x_val)
    test_prob = predict_proba(pipeline, x_test)
    predict_seconds = time.perf_counter() - start
    thresholds = choose_thresholds(y_val, val_prob, genres)
    per = np.array([thresholds["per_genre"][g] for g in genres])
    return {
        "model": MODEL_NAME,
        "n_train": len(y_train), "n_val": len(y_val), "n_test": len(y_test),
        "n_genres": len(genres),
        "test": evaluate(y_test, test_prob, thresholds["global"]),
        "test_per_genre": evaluate(y_test, test_prob, per),
        "test_0.5": evaluate(y_test, test_prob, 0.5),
        "threshold": thresholds["global"],
        "train_seconds": round(train_seconds, 2),
        "predict_seconds": round(predict_seconds, 2),
        "vocabulary_size": vocabulary_size(pipeline),
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()},
        "notes": f"TF-IDF on {text_kind} text; one-vs-rest logistic regression (liblinear, "
                 f"C={settings['C']}); global threshold tuned on val",
    }
