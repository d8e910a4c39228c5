"""BERT from TensorFlow Hub on Keras 2 (notebook 05a), the way TensorFlow's BERT tutorial does it.

TF Hub's ``hub.KerasLayer`` is a Keras 2 layer: it lives in ``tf_keras`` and cannot sit
inside a Keras 3 model. Notebook 05a and this module therefore use ``tf_keras``;
notebooks and scripts also set ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is first
imported, so that ``tf.keras`` means the same Keras 2 (see :func:`keras_setup`).
Saved models are reloaded with ``tf.saved_model.load``, which needs no Keras at all.

The model itself is written in notebook 05a and exported to :mod:`utils.lessons.small_berts`
(the encoder table ``ENCODERS``, ``choose_encoder``, ``finetune_lr``, ``encoder_table``),
:mod:`utils.lessons.bert_tfhub` (``load_hub_models``, ``MaskedMean``, ``hub_embedder``, ``build_model``,
``finetune``, ``save_model``) and :mod:`utils.lessons.heads` (the head on frozen features, AdamW with
warm-up and linear decay). This module is plumbing:

* :func:`resolve_handle`: the notebook's ``choose_encoder``, ``$COURSE_TFHUB_ENCODER`` and the
  offline cache's old tfhub.dev names (:data:`LEGACY_HANDLES`).
* :func:`load_encoder`: the notebook's ``load_hub_models`` wrapped in :class:`HubEncoder`
  (token ids, masks, embeddings with a disk cache). :func:`random_encoder_reasons` tells
  whether the encoder carries random weights (the offline CI copy does).
* :func:`predict_proba`: genre probabilities of raw texts from a model or a reloaded SavedModel.
* :func:`save_model` (the notebook's, with the encoder's handles) / :func:`load_predictor`:
  ``models/<dataset>/bert_tfhub_*/``.
* :func:`benchmark`: figures for ``python -m utils.benchmark --model bert_tfhub``.

TensorFlow is imported inside the functions only, so that importing this module leaves a
script free to set ``TF_USE_LEGACY_KERAS`` first. Importing it installs the ``pkg_resources``
stand-in that tensorflow-hub needs with setuptools >= 82 (:mod:`utils.compat`; TF Hub's path only).
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from utils.compat import install_pkg_resources_shim
from utils.lessons.small_berts import (CPU_SMALL_MAX_PLOTS, ENCODERS, KAGGLE, choose_encoder,  # noqa: F401
                                       encoder_table, finetune_lr)
from utils.tools import keras_tools
from utils.modelfiles.predictor import Predictor

install_pkg_resources_shim()   # before any `import tensorflow_hub` below (setuptools >= 82 has no pkg_resources)

FROZEN_NAME = "bert_tfhub_frozen"        # results/ and models/ folder names
FINETUNED_NAME = "bert_tfhub_finetuned"
KIND = "bert_tfhub"                      # predictor kind in utils.modelfiles.predictor.KINDS
SAVED_MODEL_DIR = "saved_model"
RANDOM_LABEL = "random weights, not a result"
ENV_RANDOM = "COURSE_TFHUB_RANDOM_ENCODER"   # CI sets 1: the cached encoder is not pretrained
ENV_ENCODER = "COURSE_TFHUB_ENCODER"         # overrides the encoder handle
RANDOM_MARKER = "RANDOM_WEIGHTS_NOT_PRETRAINED.txt"

# TF Hub models live on Kaggle Models now; tfhub.dev handles redirect there. The course addresses them
# by their Kaggle handles and keeps the old tfhub.dev handle of each (LEGACY_HANDLES): a TF Hub cache
# folder is named by the SHA-1 of the handle string, so an offline cache made with the old handles
# (CI's ../shared/tfhub_cache) is found through them (see cached_handle).
HUB = "https://tfhub.dev/tensorflow/"
PREPROCESS_HANDLE = KAGGLE + "en-uncased-preprocess/3"
# ENCODERS (name -> handle, layers, width, heads, parameters, fine-tuning learning rate) is notebook 05a's.
LEGACY_HANDLES = {
    PREPROCESS_HANDLE: HUB + "bert_en_uncased_preprocess/3",
    **{h: HUB + f"small_bert/bert_en_uncased_L-{L}_H-{H}_A-{A}/2" for h, L, H, A, *_ in ENCODERS.values()},
}


def _cache_folder(handle: str) -> Path | None:
    import hashlib

    cache = os.environ.get("TFHUB_CACHE_DIR")
    return Path(cache) / hashlib.sha1(handle.encode("utf8")).hexdigest() if cache else None


def cached_handle(handle: str) -> str:
    """``handle``, or its old tfhub.dev name when only that one is in ``TFHUB_CACHE_DIR`` (same model)."""
    legacy = LEGACY_HANDLES.get(handle)
    here, old = _cache_folder(handle), _cache_folder(legacy) if legacy else None
    if here is not None and not here.is_dir() and old is not None and old.is_dir():
        return legacy
    return handle


def short_name(handle: str) -> str:
    """A handle without its site prefix, for tables and notes."""
    return handle.replace(KAGGLE, "").replace(HUB, "").replace("https://", "")


def resolve_preprocess_handle() -> str:
    """The BERT preprocessing model's handle (Kaggle; the cached tfhub.dev name offline)."""
    return cached_handle(PREPROCESS_HANDLE)


FAST_ENCODER = ENCODERS["BERT-Tiny"][0]
DEFAULT_ENCODER = ENCODERS["BERT-Small"][0]   # fine-tunes in minutes on a Colab GPU
CPU_ENCODER = ENCODERS["BERT-Mini"][0]        # full mode without a GPU on a large corpus: 4x less compute

# The benchmark's settings; the model's own (head sizes, dropout, AdamW, warm-up, patience) are
# the defaults of the notebook's functions in utils.lessons.heads / utils.lessons.bert_tfhub.
DEFAULTS = {
    "seq_len": 128,          # cap on tokens per plot incl. [CLS]/[SEP]
    "pooling": "mean",       # frozen features: masked mean of sequence_output (or "pooled")
    "embed_batch_size": 32,
    "ft_epochs": 5,
    "ft_batch_size": 32,
}
FAST_SIZES = {"max_train": 2000, "max_eval": 500}


# --------------------------------------------------------------------------- setup


class KerasSetupError(RuntimeError):
    """TensorFlow, TF Text, TF Hub or tf-keras missing or in the wrong mode."""


def keras_setup() -> dict:
    """Import TensorFlow, TF Text, TF Hub and tf-keras; report which Keras ``tf.keras`` is.

    Setting ``TF_USE_LEGACY_KERAS=1`` before TensorFlow's first import makes
    ``tf.keras`` the Keras 2 of ``tf-keras``. This module uses ``tf_keras`` directly,
    so it works either way, but code copied from the TF tutorials needs the variable.
    """
    legacy_env = os.environ.get("TF_USE_LEGACY_KERAS", "") in ("1", "true", "True")
    tf_was_imported = "tensorflow" in sys.modules
    try:
        import tensorflow as tf
        import tensorflow_hub as hub  # noqa: F401
        import tensorflow_text  # noqa: F401  (registers the ops the preprocessing model needs)
        import tf_keras
    except ImportError as err:
        from utils.tools.notebook import matching_tf_companions

        try:
            hint = " ".join(matching_tf_companions())
        except RuntimeError:
            hint = "tensorflow tensorflow-text tf-keras"
        raise KerasSetupError(f"{err}. TF Hub BERT needs tensorflow, tensorflow-hub, tensorflow-text and "
                              f"tf-keras of the same version: python -m pip install tensorflow-hub {hint}") from err
    keras2 = tf.keras.layers.Layer is tf_keras.layers.Layer
    return {"tensorflow": tf.__version__, "tf_keras": tf_keras.__version__, "tf.keras is Keras 2": keras2,
            "TF_USE_LEGACY_KERAS": legacy_env, "tensorflow imported before": tf_was_imported}


def _imports():
    keras_setup()
    import tensorflow as tf
    import tensorflow_hub as hub
    import tf_keras

    return tf, hub, tf_keras


def resolve_handle(handle: str | None = None, fast: bool | None = None, gpu: bool = True, n_plots: int = 0) -> str:
    """``handle`` if given, else ``$COURSE_TFHUB_ENCODER``, else notebook 05a's ``choose_encoder``: BERT-Tiny
    (FAST), else BERT-Small, except without a GPU (``gpu=False``) on a corpus of more than
    :data:`CPU_SMALL_MAX_PLOTS` plots: BERT-Mini (Kaggle handles; their cached tfhub.dev names when only
    those are in ``TFHUB_CACHE_DIR``)."""
    from utils import config

    if handle:
        return handle
    if os.environ.get(ENV_ENCODER):
        return os.environ[ENV_ENCODER]
    fast = config.fast_mode() if fast is None else fast
    return cached_handle(ENCODERS[choose_encoder(fast, gpu, n_plots)][0])


# --------------------------------------------------------------------------- random encoder detection


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def untrained_layer_norms(weights) -> bool:
    """True when every LayerNorm has gamma = 1 and beta = 0: initial values, never trained."""
    norms = [w for w in weights if "norm" in w.name and ("gamma" in w.name or "beta" in w.name)]
    if not norms:
        return False
    for w in norms:
        value = w.numpy()
        target = 1.0 if "gamma" in w.name else 0.0
        if not np.all(value == target):
            return False
    return True


def offline_random_encoder() -> bool:
    """True when the environment says the TF Hub encoder is the offline copy with random weights.

    ``COURSE_TFHUB_RANDOM_ENCODER=1`` (CI and other offline runs on ``../shared`` set it): every score
    of a TF Hub BERT model is then meaningless, whatever its results say.
    """
    return _truthy(ENV_RANDOM)


def random_encoder_reasons(handle: str, encoder_layer=None) -> list[str]:
    """Why the encoder behind ``handle`` has random weights; ``[]`` when nothing says so.

    Three independent signals: ``COURSE_TFHUB_RANDOM_ENCODER=1`` (CI sets it), the
    offline cache's marker file next to the model, and untrained LayerNorm values.
    """
    import tensorflow_hub as hub

    reasons = []
    if offline_random_encoder():
        reasons.append(f"{ENV_RANDOM}=1 is set (CI's offline copy of the encoder)")
    try:
        folder = Path(hub.resolve(handle))
    except Exception:
        folder = None
    if folder is not None and (folder / RANDOM_MARKER).exists():
        reasons.append(f"the model folder {folder} contains {RANDOM_MARKER}")
    if folder is not None and folder.parent.name == "tfhub_cache" and folder.parent.parent.name == "shared":
        reasons.append(f"it was loaded from the course's offline test cache {folder.parent}")
    if encoder_layer is not None and untrained_layer_norms(encoder_layer.weights):
        reasons.append("every LayerNorm of the encoder has gamma=1 and beta=0, i.e. untrained initial values")
    return reasons


# --------------------------------------------------------------------------- encoder


@dataclass
class HubEncoder:
    """The TF Hub preprocessing model and a BERT encoder, frozen, for embeddings and inspection."""

    handle: str
    preprocess_handle: str
    seq_len: int
    preprocessor: object       # hub.load(preprocess_handle): .tokenize, .bert_pack_inputs
    encoder: object            # hub.KerasLayer(handle, trainable=False)
    random_reasons: list = field(default_factory=list)
    _fn: object = field(default=None, repr=False)

    @classmethod
    def wrap(cls, handle: str, preprocess_handle: str, preprocessor, encoder,
             seq_len: int = DEFAULTS["seq_len"]) -> "HubEncoder":
        """Wrap what the notebook's ``load_hub_models`` returned; checks the weights for randomness."""
        if not 2 < int(seq_len) <= 512:
            raise ValueError(f"seq_len must be between 3 and 512, not {seq_len}.")
        return cls(handle, preprocess_handle, int(seq_len), preprocessor, encoder,
                   random_encoder_reasons(handle, encoder))

    @property
    def is_random(self) -> bool:
        return bool(self.random_reasons)

    @property
    def dim(self) -> int:
        return int(self.encode(["x"])["pooled_output"].shape[-1])

    def tokenize(self, texts):
        """Word pieces per word per text (a ``tf.RaggedTensor`` [texts, words, pieces])."""
        import tensorflow as tf

        return self.preprocessor.tokenize(tf.constant(list(texts)))

    def vocabulary(self) -> list[str]:
        """The word pieces of the preprocessing model (``assets/vocab.txt``), by id."""
        import tensorflow_hub as hub

        path = Path(hub.resolve(self.preprocess_handle)) / "assets" / "vocab.txt"
        return path.read_text(encoding="utf-8").splitlines()

    def word_pieces(self, ids) -> list[str]:
        """Ids -> word pieces, e.g. ``[101, 7592, 102]`` -> ``['[CLS]', 'hello', '[SEP]']``."""
        if not hasattr(self, "_vocab"):
            self._vocab = self.vocabulary()
        return [self._vocab[int(i)] for i in ids]

    def token_counts(self, texts) -> np.ndarray:
        """Number of word pieces of each text, before truncation and without [CLS]/[SEP]."""
        tokens = self.tokenize(texts)
        return tokens.merge_dims(1, 2).row_lengths().numpy()

    def pack(self, texts, seq_len: int | None = None) -> dict:
        """``input_word_ids``, ``input_mask``, ``input_type_ids`` padded/truncated to ``seq_len``."""
        return self.preprocessor.bert_pack_inputs([self.tokenize(texts)], seq_length=int(seq_len or self.seq_len))

    def encode(self, texts, seq_len: int | None = None) -> dict:
        """The encoder's outputs: ``pooled_output`` [B, H], ``sequence_output`` [B, T, H], ..."""
        return self.encoder(self.pack(texts, seq_len))

    def _embed_fn(self):
        if self._fn is None:   # notebook 05a's feature extractor: each batch padded to its longest plot
            from utils.lessons.bert_tfhub import hub_embedder

            self._fn = hub_embedder(self.preprocessor, self.encoder, self.seq_len)
        return self._fn

    def embed(self, texts, pooling: str = DEFAULTS["pooling"], batch_size: int = DEFAULTS["embed_batch_size"],
              progress: bool = False) -> np.ndarray:
        """Embeddings (texts x width), no cache: ``pooling`` is ``"mean"`` or ``"pooled"``."""
        from utils.data.embeddings_cache import embed_with_cache

        vectors, _ = embed_with_cache(texts, self._batch_embedder(pooling), None, batch_size, progress=progress)
        return vectors

    def _batch_embedder(self, pooling: str):
        import tensorflow as tf

        if pooling not in ("mean", "pooled"):
            raise ValueError(f"pooling must be 'mean' or 'pooled', not {pooling!r}.")
        fn = self._embed_fn()
        which = 1 if pooling == "mean" else 0
        return lambda batch: fn(tf.constant(batch))[which].numpy()

    def cache_key(self) -> str:
        from utils.data.embeddings_cache import weights_fingerprint

        name = self.handle.replace(HUB, "").replace("https://", "")
        return f"tfhub-{name}-{weights_fingerprint([w.numpy() for w in self.encoder.weights[-3:]])}"

    def embed_cached(self, texts, dataset: str | None = None, pooling: str = DEFAULTS["pooling"],
                     batch_size: int = DEFAULTS["embed_batch_size"], progress: bool = True, desc: str = "embedding"):
        """:meth:`embed` through the disk cache; returns ``(vectors, info)``."""
        from utils.data.embeddings_cache import cache_path, embed_with_cache

        key = self.cache_key()
        meta = {"encoder": key, "seq_len": self.seq_len, "pooling": pooling}
        return embed_with_cache(texts, self._batch_embedder(pooling), cache_path(key, self.seq_len, pooling, dataset),
                                batch_size, meta=meta, progress=progress, desc=desc)


def load_encoder(handle: str | None = None, seq_len: int = DEFAULTS["seq_len"],
                 preprocess_handle: str | None = None) -> HubEncoder:
    """The notebook's ``load_hub_models`` (from ``TFHUB_CACHE_DIR`` or the web) in a :class:`HubEncoder`."""
    _imports()
    from utils.lessons.bert_tfhub import load_hub_models

    handle = resolve_handle(handle)
    preprocess_handle = preprocess_handle or resolve_preprocess_handle()
    try:
        preprocessor, encoder = load_hub_models(handle, preprocess_handle)
    except Exception as err:
        raise RuntimeError(load_failure_message(handle, preprocess_handle, err)) from err
    return HubEncoder.wrap(handle, preprocess_handle, preprocessor, encoder, seq_len)


def load_failure_message(handle: str, preprocess_handle: str, err: Exception) -> str:
    """What went wrong when a TF Hub model would not load, and what to do instead."""
    text = f"{type(err).__name__}: {err}"
    where = os.environ.get("TFHUB_CACHE_DIR")
    if "403" in text or "Forbidden" in text:
        why = ("the server refused the download (HTTP 403): Kaggle may be asking you to accept the model's "
               "terms, or a proxy blocks it. Open the handle in a browser once, or point COURSE_TFHUB_ENCODER "
               "at its tfhub.dev name")
    elif any(k in text for k in ("URLError", "Name or service not known", "Temporary failure", "timed out",
                                 "Network is unreachable", "Connection")):
        why = "there is no network: TF Hub downloads each model once, then reads it from its cache"
    else:
        why = "the download or the cache is damaged: delete the model's folder in the TF Hub cache and retry"
    return (f"Could not load {handle} or {preprocess_handle} ({text}). {why.capitalize()}. TFHUB_CACHE_DIR "
            f"{'is ' + where if where else 'is not set (TF Hub uses its default cache)'}. Alternative without TF "
            f"Hub: notebook 05b (KerasHub) teaches the same transfer learning with a pretrained MiniLM.")


def choose_seq_len(token_counts, percentile: float = 99, cap: int = DEFAULTS["seq_len"]) -> int:
    """A sequence length (multiple of 8, incl. [CLS]/[SEP]) covering ``percentile`` % of the plots."""
    need = int(np.percentile(np.asarray(token_counts), percentile)) + 2
    return int(min(cap, max(16, (need + 7) // 8 * 8)))


# --------------------------------------------------------------------------- predicting


def predict_proba(model, texts, batch_size: int = 64) -> np.ndarray:
    """Genre probabilities of raw ``texts`` from a ``build_model`` model (or one reloaded by
    ``tf.saved_model.load``), in batches."""
    import tensorflow as tf

    texts = [texts] if isinstance(texts, str) else list(texts)
    out = []
    for i in range(0, len(texts), batch_size):
        batch = tf.constant(texts[i:i + batch_size])
        if hasattr(model, "predict_on_batch"):
            out.append(np.asarray(model.predict_on_batch(batch)))
        else:  # tf.saved_model.load object
            result = model.signatures["serving_default"](text=batch)
            out.append(next(iter(result.values())).numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


# --------------------------------------------------------------------------- saving


def save_model(model, encoder: HubEncoder, folder, genres, thresholds: dict, dataset: str, seq_len: int,
               **extra) -> Path:
    """Notebook 05a's ``save_model`` (SavedModel + ``predictor.json``), with ``encoder``'s handles recorded.

    ``seq_len``: the length ``model`` packs plots to. A model whose encoder had random weights is
    marked ``random_weights: true`` (with the reasons).
    """
    from utils.lessons.bert_tfhub import save_model as save

    return save(model, folder, genres, thresholds, dataset, handle=encoder.handle,
                preprocess_handle=encoder.preprocess_handle, seq_len=int(seq_len),
                random_weights=encoder.is_random, random_reasons=encoder.random_reasons, **extra)


class BertHubPredictor(Predictor):
    """A reloaded SavedModel: raw plot strings in, genre probabilities out."""

    def __init__(self, model, genres, thresholds: dict, random_weights: bool = False, handle: str = ""):
        super().__init__(genres, thresholds)
        self.model, self.random_weights, self.handle = model, random_weights, handle

    def predict_proba(self, texts) -> np.ndarray:
        from utils.data.text import check_text

        texts = [texts] if isinstance(texts, str) else list(texts)
        return predict_proba(self.model, [check_text(t) for t in texts])


def load_predictor(folder) -> BertHubPredictor:
    """Reload a folder written by :func:`save_model` with ``tf.saved_model.load``.

    The SavedModel's graph is read as data first (:func:`utils.modelfiles.savedmodel_check.check_saved_model`):
    a folder whose graph holds any op the course's BERT is not made of (file I/O, Python calls) is
    refused before TensorFlow runs any of it. Works from a fresh process and whether or not ``TF_USE_LEGACY_KERAS`` is set: the
    SavedModel is plain TensorFlow. Needs ``tensorflow_text`` (imported here) for the
    preprocessing ops, but no network and no TF Hub cache.
    """
    from utils.modelfiles.predictor import ModelFormatError, read_manifest

    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest["kind"] != KIND:
        raise ModelFormatError(f"{folder} holds a {manifest['kind']!r} model, not {KIND!r}.")
    path = folder / SAVED_MODEL_DIR
    if not (path / "saved_model.pb").exists():
        raise ModelFormatError(f"{path} is missing: the model folder is incomplete; re-run notebook 05a.")
    try:
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the ops of the preprocessing graph)
    except ImportError as err:
        raise ModelFormatError(f"Loading {folder} needs tensorflow and tensorflow-text ({err}): "
                               f"python -m pip install -r requirements.txt") from err
    from utils.modelfiles.savedmodel_check import check_saved_model

    check_saved_model(path)   # read as data first: refuse any op that could touch files or run code
    try:
        model = tf.saved_model.load(str(path))
    except Exception as err:
        raise ModelFormatError(f"Could not load {path} ({type(err).__name__}: {err}). It was saved with "
                               f"{manifest.get('versions', {})}; re-run notebook 05a to save it again.") from err
    if manifest.get("random_weights"):
        print(f"warning: {folder} was trained on an encoder with RANDOM weights ({RANDOM_LABEL}).",
              file=sys.stderr)
    return BertHubPredictor(model, manifest["genres"], manifest["thresholds"],
                            bool(manifest.get("random_weights")), manifest.get("handle", ""))


# --------------------------------------------------------------------------- benchmark


def _load_for_benchmark(handle: str | None, fast: bool, gpu: bool = True, n_plots: int = 0):
    chosen, tiny = resolve_handle(handle, fast, gpu, n_plots), cached_handle(FAST_ENCODER)
    try:
        return load_encoder(chosen), ""
    except RuntimeError as err:
        if handle or chosen == tiny:
            raise
        cause = type(err.__cause__ or err).__name__
        return load_encoder(tiny), (f"could not load {short_name(chosen)} ({cause}: no network or "
                                    f"cache), used {short_name(tiny)} instead; ")


def benchmark(corpus, fast: bool = False, handle: str | None = None, finetune_run: bool = True,
              finetune_max_train: int | None = None) -> dict:
    """Frozen encoder + head (headline figures) and a fine-tuning run, with the handle used.

    With a random-weights encoder (the offline CI copy) every figure is labelled
    :data:`RANDOM_LABEL`. Without a GPU fine-tuning is timed on ``finetune_max_train``
    plots (default 1,000; FAST 400) for one epoch; s/epoch is scaled to the full split.
    """
    from functools import partial

    from utils import config
    from utils.evaluation.metrics import evaluate
    from utils.evaluation.results import choose_thresholds
    from utils.lessons.bert_tfhub import build_model, finetune
    from utils.lessons.heads import adamw, train_head

    tf, _, tf_keras = _imports()
    if fast:
        corpus = corpus.subset(**FAST_SIZES)
    genres = list(corpus.genres)
    texts, ys = corpus.by_split()
    tf.random.set_seed(0)
    np.random.seed(0)
    start = time.perf_counter()
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    encoder, note = _load_for_benchmark(handle, fast, has_gpu, sum(len(t) for t in texts.values()))   # as 05a
    load_seconds = time.perf_counter() - start
    throughput = keras_tools.measure_throughput(encoder.embed, texts["train"])
    start = time.perf_counter()
    emb = {s: encoder.embed_cached(texts[s], dataset=corpus.dataset, progress=False)[0] for s in texts}
    embed_seconds = time.perf_counter() - start
    head, head_figures = keras_tools.score_head_on_embeddings(partial(train_head, tf_keras), emb, ys, genres,
                                                              test_ids=corpus.ids("test"))
    label = RANDOM_LABEL if encoder.is_random else "pretrained encoder"
    seq_len = choose_seq_len(encoder.token_counts(texts["train"]))
    figures = {
        "model": FROZEN_NAME,
        "handle": encoder.handle,
        "label": label,
        "random_reasons": encoder.random_reasons,
        "n_train": len(ys["train"]), "n_val": len(ys["val"]), "n_test": len(ys["test"]),
        "n_genres": len(genres),
        **head_figures,
        "pooling": DEFAULTS["pooling"],
        "embedding_texts_per_s": round(throughput, 1),
        "embedding_seconds": round(embed_seconds, 1),
        "encoder_load_seconds": round(load_seconds, 1),
    }
    if finetune_run:
        limit = finetune_max_train or (400 if fast else (None if has_gpu else 1000))
        epochs = 1 if (fast or not has_gpu) else DEFAULTS["ft_epochs"]
        n = len(texts["train"]) if limit is None else min(limit, len(texts["train"]))
        batch_size = DEFAULTS["ft_batch_size"]
        model = build_model(encoder.preprocessor, encoder.handle, len(genres), seq_len)
        optimizer = adamw(tf_keras, epochs * int(np.ceil(n / batch_size)), lr=finetune_lr(encoder.handle))
        timer = keras_tools.epoch_timer(tf_keras)
        pick = np.random.default_rng(config.seed()).permutation(len(texts["train"]))[:n]   # as notebook 05a
        ft_hist = finetune(model, optimizer, [texts["train"][i] for i in pick], ys["train"][pick], texts["val"], ys["val"],
                           epochs=epochs, batch_size=batch_size, callbacks=[timer], verbose=0)
        ft_val, ft_test = predict_proba(model, texts["val"]), predict_proba(model, texts["test"])
        ft_thr = choose_thresholds(ys["val"], ft_val, genres)
        per_epoch = float(np.mean(timer.seconds))
        step = keras_tools.steady_step_seconds(timer.step_seconds)   # the first step traces the graph
        figures["seconds_per_epoch"] = round(step * int(np.ceil(len(texts["train"]) / batch_size)), 1)
        figures["finetuned"] = {
            "model": FINETUNED_NAME, "label": label, "n_train_used": n, "epochs": len(ft_hist["loss"]),
            "seq_len": seq_len, "seconds_per_epoch_measured": round(per_epoch, 1),
            "seconds_per_step_steady": round(step, 3),
            "seconds_per_epoch_full_train": figures["seconds_per_epoch"],
            "test": evaluate(ys["test"], ft_test, ft_thr["global"]),
            "device": "GPU" if has_gpu else "CPU",
        }
    prefix = "RANDOM WEIGHTS, NOT A RESULT: " if encoder.is_random else ""
    figures["notes"] = (f"{prefix}{note}{encoder.handle}: frozen {DEFAULTS['pooling']}-pooled "
                        f"embeddings + head; global threshold tuned on val"
                        + (f"; fine-tuned on {figures['finetuned']['n_train_used']} plots, s/epoch = steady "
                           f"s/step x full-train steps" if finetune_run else ""))
    return figures
