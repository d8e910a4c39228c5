"""Files and benchmark run of the TF-IDF + logistic regression model of notebook 03.

The model itself (``build_pipeline``, ``fit``, ``predict_proba``, ``top_words``) is
written in notebook 03 and exported to :mod:`utils.lessons.tfidf`. Here:

* :func:`save_model` writes ``models/<dataset>/tfidf_logreg/`` as plain data, never a
  pickle: ``tfidf.json`` (settings and vocabulary in column order), ``weights.npz``
  (IDF weights, coefficients, intercepts; read with ``allow_pickle=False``), then
  ``predictor.json``. Loading such a folder runs no code from it.
* :class:`TfidfPredictor` / :func:`load_predictor` recompute the same probabilities
  from those arrays: TF-IDF with the saved vocabulary and IDF, then
  ``sigmoid(X @ coef.T + intercept)`` per genre, exactly what the fitted
  one-vs-rest logistic regressions compute (without scikit-learn at prediction time).
* :func:`benchmark` trains and evaluates the notebook's model for ``python -m utils.benchmark``.

The pipeline reads text that :mod:`utils.data.text` has already cleaned (``clean_text``),
so the predictor applies the same cleaning to raw plots before predicting.
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np

from utils.modelfiles.predictor import ModelFormatError, Predictor, read_json_object

MODEL_NAME = "tfidf_logreg"   # name under results/ and models/
KIND = "tfidf_logreg"         # predictor kind in utils.modelfiles.predictor.KINDS
SETTINGS_FILE = "tfidf.json"
WEIGHTS_FILE = "weights.npz"
LEGACY_PICKLE = "pipeline.joblib"
FORMAT = "tfidf-logreg-arrays/1"
TEXT_KINDS = ("clean", "light")
FAST_SIZES = {"max_train": 2000, "max_eval": 500}  # as the other models: notebook 06 compares the same titles
PARALLEL_FROM = 5000  # training plots from which benchmark() fits the genres in parallel


def prepare_texts(texts, kind: str = "clean") -> list[str]:
    """Raw plots -> the text the pipeline expects (``utils.data.text.clean_text`` or ``light_text``)."""
    from utils.data.text import check_text, clean_text, light_text

    if kind not in TEXT_KINDS:
        raise ValueError(f"text kind must be one of {TEXT_KINDS}, not {kind!r}.")
    fn = clean_text if kind == "clean" else light_text
    return [fn(check_text(t)) for t in texts]


def vocabulary_size(pipeline) -> int:
    return len(pipeline.named_steps["tfidf"].vocabulary_)


def top_words_table(pipeline, genres, n: int = 10):
    """``utils.lessons.tfidf.top_words`` as a DataFrame: one row per genre."""
    import pandas as pd

    from utils.lessons.tfidf import top_words

    words = top_words(pipeline, genres, n)
    return pd.DataFrame({"genre": list(words),
                         "top words": [", ".join(w for w, _ in ws) for ws in words.values()]}).set_index("genre")


# --------------------------------------------------------------------------- saving


def _arrays(pipeline) -> tuple[dict, dict]:
    vectorizer = pipeline.named_steps["tfidf"]
    estimators = pipeline.named_steps["logreg"].estimators_
    features = vectorizer.get_feature_names_out()
    if vectorizer.norm != "l2" or not vectorizer.use_idf or vectorizer.analyzer != "word":
        raise ValueError("save_model handles the course's TF-IDF (word n-grams, IDF, L2 norm) only.")
    settings = {"format": FORMAT, "ngram_range": list(vectorizer.ngram_range),
                "sublinear_tf": bool(vectorizer.sublinear_tf), "token_pattern": vectorizer.token_pattern,
                "lowercase": bool(vectorizer.lowercase), "norm": "l2", "vocabulary": [str(f) for f in features]}
    try:
        check_settings(settings)
    except ModelFormatError as err:   # never write a model the loader would refuse
        raise ValueError(f"save_model cannot save this TF-IDF: {err}".replace("; re-run notebook 03 to save "
                                                                              "the model again", "")) from None
    coef = np.stack([np.ravel(e.coef_) for e in estimators]).astype(np.float64)
    intercept = np.array([float(np.ravel(e.intercept_)[0]) for e in estimators], dtype=np.float64)
    return settings, {"idf": np.asarray(vectorizer.idf_, np.float64), "coef": coef, "intercept": intercept}


def save_model(pipeline, folder, genres, thresholds: dict, dataset: str, text_kind: str = "clean",
               text: str | None = None, **extra) -> Path:
    """Write ``tfidf.json`` and ``weights.npz``, then ``predictor.json`` (each atomically).

    ``text``: what the pipeline was trained on, ``"plot"`` (default) or ``"title+plot"`` (``corpus.text``).
    """
    from utils.files import atomic_write_bytes
    from utils.modelfiles.predictor import write_manifest

    from utils.data.text_setting import check_setting

    if text_kind not in TEXT_KINDS:
        raise ValueError(f"text_kind must be one of {TEXT_KINDS}, not {text_kind!r}.")
    text = check_setting(text)
    n_model = len(pipeline.named_steps["logreg"].estimators_)
    if n_model != len(genres):
        raise ValueError(f"The pipeline predicts {n_model} genres but {len(genres)} names were given.")
    folder = Path(folder)
    settings, arrays = _arrays(pipeline)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(folder / WEIGHTS_FILE, buf.getvalue())
    atomic_write_bytes(folder / SETTINGS_FILE, json.dumps(settings).encode("utf-8"))
    (folder / LEGACY_PICKLE).unlink(missing_ok=True)
    write_manifest(folder, KIND, genres, thresholds, dataset, text=text, text_kind=text_kind,
                   files=[SETTINGS_FILE, WEIGHTS_FILE], vocabulary_size=len(settings["vocabulary"]), **extra)
    return folder


class TfidfPredictor(Predictor):
    """A saved TF-IDF + logistic regression model that predicts genres of raw plots.

    The transform is computed from the saved arrays, one plot at a time (what a server sees):
    the vectorizer's token pattern and n-grams, counts of the words in the vocabulary, optional
    sublinear TF, IDF weights, L2 norm, then ``sigmoid(x @ coef.T + intercept)`` over the few
    columns the plot uses. It equals scikit-learn's ``TfidfVectorizer.transform`` + the fitted
    regressions (tested to 1e-6) without their per-call input validation, which cost about
    1.3 ms per call (``python -m utils.loadtest --transform-cost`` prints the figures).
    """

    def __init__(self, settings: dict, arrays: dict, genres, thresholds: dict, text_kind: str = "clean"):
        import re

        vocabulary = settings["vocabulary"]
        super().__init__(genres, thresholds, vocabulary={w for w in vocabulary if " " not in w})
        self.index = {w: i for i, w in enumerate(vocabulary)}
        self.token = re.compile(settings["token_pattern"])
        self.lowercase = bool(settings["lowercase"])
        self.ngram_range = tuple(settings["ngram_range"])
        self.sublinear_tf = bool(settings["sublinear_tf"])
        self.idf = np.asarray(arrays["idf"], np.float64)
        self.coef, self.intercept = arrays["coef"], arrays["intercept"]
        self.coef_t = np.ascontiguousarray(self.coef.T)     # features x genres: a plot's rows are contiguous
        self.text_kind = text_kind

    def _grams(self, text: str) -> list[str]:
        """scikit-learn's word analyzer: lowercase, token pattern, n-grams from min_n to max_n."""
        tokens = self.token.findall(text.lower() if self.lowercase else text)
        lo, hi = self.ngram_range
        if hi == 1:
            return tokens
        grams = list(tokens) if lo == 1 else []
        for n in range(max(lo, 2), min(hi, len(tokens)) + 1):
            grams += [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
        return grams

    def _logits(self, cleaned: str) -> np.ndarray:
        counts: dict[int, int] = {}   # column -> count
        index = self.index
        for gram in self._grams(cleaned):
            j = index.get(gram)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        if not counts:
            return self.intercept.copy()
        cols = np.fromiter(counts.keys(), np.intp, len(counts))
        tf = np.fromiter(counts.values(), np.float64, len(counts))
        if self.sublinear_tf:
            tf = 1.0 + np.log(tf)
        x = tf * self.idf[cols]
        norm = np.sqrt(x @ x)
        if norm > 0:
            x /= norm
        return x @ self.coef_t[cols] + self.intercept

    def _known(self, cleaned: str) -> tuple[int, int]:
        tokens = cleaned.split()
        return sum(map(self.vocabulary.__contains__, tokens)), len(tokens)

    def predict_with_known_words(self, texts) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, (known, total) words per plot), cleaning each plot once (the server's path)."""
        if isinstance(texts, str):
            texts = [texts]
        cleaned = prepare_texts(texts, self.text_kind)
        logits = np.array([self._logits(c) for c in cleaned], np.float64).reshape(len(cleaned), len(self.genres))
        known = np.array([self._known(c) for c in cleaned], np.int64).reshape(len(cleaned), 2)
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32), known

    def predict_proba(self, texts) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        cleaned = prepare_texts(texts, self.text_kind)
        logits = np.array([self._logits(c) for c in cleaned], np.float64).reshape(len(cleaned), len(self.genres))
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def known_words(self, text: str) -> tuple[int, int]:
        """(known, total) counts of the plot's cleaned words against the TF-IDF vocabulary."""
        return self._known(prepare_texts([text], self.text_kind)[0])


# What the course's TF-IDF can write (notebook 03 splits cleaned text on spaces; scikit-learn's default
# patterns are accepted too). A pattern is never taken from the file otherwise: a crafted one could
# backtrack for hours (ReDoS) or not compile at all.
TOKEN_PATTERNS = (r"\S+", r"(?u)\b\w\w+\b", r"(?u)\b\w+\b")
MAX_NGRAM = 3
MAX_VOCABULARY = 5_000_000
MAX_TERM_CHARS = 1_000
SETTINGS_FIELDS = {"format", "ngram_range", "sublinear_tf", "token_pattern", "lowercase", "norm", "vocabulary"}


def check_settings(settings: dict, where: str = SETTINGS_FILE) -> None:
    """Check ``tfidf.json``'s fields against what :func:`save_model` can write; one-line :class:`ModelFormatError`."""
    def bad(field, must):
        return ModelFormatError(f"{where}: field {field!r} {must}; re-run notebook 03 to save the model again.")

    unknown = sorted(set(settings) - SETTINGS_FIELDS)
    if unknown:
        raise bad(unknown[0], f"is not a field the course writes (known: {sorted(SETTINGS_FIELDS)})")
    pattern = settings.get("token_pattern")
    if pattern not in TOKEN_PATTERNS:
        raise bad("token_pattern", f"must be one of the patterns the course writes {list(TOKEN_PATTERNS)}, not "
                                   f"{str(pattern)[:60]!r} (a pattern from a file is never compiled)")
    ngrams = settings.get("ngram_range")
    if (not isinstance(ngrams, list) or len(ngrams) != 2 or not all(type(n) is int for n in ngrams)
            or not 1 <= ngrams[0] <= ngrams[1] <= MAX_NGRAM):
        raise bad("ngram_range", f"must be [lo, hi] with 1 <= lo <= hi <= {MAX_NGRAM}, not {str(ngrams)[:60]}")
    for field in ("sublinear_tf", "lowercase"):
        if not isinstance(settings.get(field), bool):
            raise bad(field, "must be true or false")
    if settings.get("norm", "l2") != "l2":
        raise bad("norm", "must be \"l2\"")
    vocabulary = settings.get("vocabulary")
    if not isinstance(vocabulary, list) or not vocabulary or len(vocabulary) > MAX_VOCABULARY:
        raise bad("vocabulary", f"must be a non-empty list of at most {MAX_VOCABULARY:,} terms")
    lo, hi = ngrams
    for term in vocabulary:
        if (not isinstance(term, str) or not 0 < len(term) <= MAX_TERM_CHARS
                or not lo <= term.count(" ") + 1 <= hi):
            raise bad("vocabulary", f"holds {str(term)[:40]!r}, not a term of {lo} to {hi} words of at most "
                                    f"{MAX_TERM_CHARS} characters")
    if len(set(vocabulary)) != len(vocabulary):
        raise bad("vocabulary", "holds the same term twice")


def _read_settings(path: Path) -> dict:
    settings = read_json_object(path, FORMAT, "re-run notebook 03")
    check_settings(settings, str(path))
    return settings


def _read_arrays(path: Path, n_features: int, n_genres: int) -> dict:
    import zipfile
    import zlib

    want = {"idf": (n_features,), "coef": (n_genres, n_features), "intercept": (n_genres,)}
    try:
        with zipfile.ZipFile(path) as archive:   # sizes first: a crafted header could ask for terabytes
            sizes = {info.filename: info.file_size for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ModelFormatError(f"{path} is damaged or not an .npz archive ({type(err).__name__}: {err}): "
                               f"re-run notebook 03.") from None
    for name, shape in want.items():
        limit = 8 * int(np.prod(shape)) + 4096   # float64 data and the .npy header
        if sizes.get(f"{name}.npy", 0) > limit:
            raise ModelFormatError(f"{path}: {name} holds {sizes[name + '.npy']:,} bytes, more than the "
                                   f"{limit:,} its shape {shape} needs: re-run notebook 03.")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k], dtype=np.float64) for k in ("idf", "coef", "intercept")}
    except KeyError as err:
        raise ModelFormatError(f"{path} lacks the array {err}: re-run notebook 03.") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        # a pickled object array, a truncated or foreign file
        raise ModelFormatError(f"{path} is not a plain-array .npz file ({type(err).__name__}: {err}): "
                               f"re-run notebook 03.") from None
    for name, shape in want.items():
        if arrays[name].shape != shape:
            raise ModelFormatError(f"{path}: {name} has shape {arrays[name].shape}, expected {shape}.")
        if not np.isfinite(arrays[name]).all():
            raise ModelFormatError(f"{path}: {name} holds NaN or infinite values.")
    return arrays


def load_predictor(folder) -> TfidfPredictor:
    """Reload ``models/<dataset>/tfidf_logreg/`` (written by :func:`save_model`); runs no code from it."""
    from utils.modelfiles.predictor import read_manifest

    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest["kind"] != KIND:
        raise ModelFormatError(f"{folder} holds a {manifest['kind']!r} model, not {KIND!r}.")
    if (folder / LEGACY_PICKLE).exists() and not (folder / WEIGHTS_FILE).exists():
        raise ModelFormatError(f"{folder} holds {LEGACY_PICKLE}, a pickle, which can run arbitrary code when "
                               f"loaded: the course no longer loads it. Re-run notebook 03 to save the model "
                               f"as plain arrays.")
    for name in (SETTINGS_FILE, WEIGHTS_FILE):
        if not (folder / name).exists():
            raise ModelFormatError(f"{folder / name} is missing: the model folder is incomplete; re-run notebook 03.")
    settings = _read_settings(folder / SETTINGS_FILE)
    arrays = _read_arrays(folder / WEIGHTS_FILE, len(settings["vocabulary"]), len(manifest["genres"]))
    text_kind = manifest.get("text_kind", "clean")
    if text_kind not in TEXT_KINDS:
        raise ModelFormatError(f"{folder / 'predictor.json'}: text_kind must be one of {TEXT_KINDS}.")
    return TfidfPredictor(settings, arrays, manifest["genres"], manifest["thresholds"], text_kind)


# --------------------------------------------------------------------------- benchmark


def benchmark(corpus, fast: bool = False, text_kind: str = "clean", **params) -> dict:
    """Notebook 03's model: train on train, tune thresholds on val, evaluate once on test.

    ``fast`` subsamples the corpus (:data:`FAST_SIZES`). The headline metrics use the
    global threshold tuned on validation; per-genre thresholds are reported beside.
    """
    from utils.evaluation.metrics import apply_thresholds, bootstrap_interval, evaluate, kept_predictions
    from utils.evaluation.results import choose_thresholds
    from utils.lessons.tfidf import TFIDF_SETTINGS, fit, predict_proba

    if fast:
        corpus = corpus.subset(**FAST_SIZES)
    genres = list(corpus.genres)
    x_train, x_val, x_test = (corpus.texts(s, kind=text_kind) for s in ("train", "val", "test"))
    y_train, y_val, y_test = (corpus.y(s) for s in ("train", "val", "test"))
    # worker processes cost seconds to start: worth it only on a large training split
    settings = {**TFIDF_SETTINGS, "n_jobs": -1 if len(y_train) >= PARALLEL_FROM else None, **params}
    start = time.perf_counter()
    pipeline = fit(x_train, y_train, **settings)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    val_prob = predict_proba(pipeline, x_val)
    test_prob = predict_proba(pipeline, x_test)
    predict_seconds = time.perf_counter() - start
    thresholds = choose_thresholds(y_val, val_prob, genres)
    per = np.array([thresholds["per_genre"][g] for g in genres])
    test_pred = apply_thresholds(test_prob, thresholds["global"])   # the headline's decisions
    return {
        "model": MODEL_NAME,
        "text": corpus.text,
        "n_train": len(y_train), "n_val": len(y_val), "n_test": len(y_test),
        "n_genres": len(genres),
        "test": evaluate(y_test, test_prob, thresholds["global"]),
        "test_per_genre": evaluate(y_test, test_prob, per),
        "test_0.5": evaluate(y_test, test_prob, 0.5),
        "test_interval": bootstrap_interval(y_test, test_pred),
        **kept_predictions(corpus.ids("test"), y_test, test_pred),
        "threshold": thresholds["global"],
        "train_seconds": round(train_seconds, 2),
        "predict_seconds": round(predict_seconds, 2),
        "vocabulary_size": vocabulary_size(pipeline),
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()},
        "notes": f"TF-IDF on {text_kind} text ({corpus.text}); one-vs-rest logistic regression (liblinear, "
                 f"C={settings['C']}); global threshold tuned on val",
    }
