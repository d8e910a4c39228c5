"""One folder per served model: the model's own files plus a ``model_card.json`` beside them.

An export folder holds exactly what the course saves in ``models/<dataset>/<model>/`` (plain
arrays for TF-IDF, a ``.keras`` file read with ``safe_mode=True`` for the BiLSTM, weights + a
JSON config + a vocabulary for MiniLM, a SavedModel for TF Hub BERT; see :mod:`utils.modelfiles`)
and a model card::

    {"format": "course-serving/1", "name": "tfidf_logreg", "kind": "tfidf_logreg",
     "dataset": "netflix", "genres": [...], "thresholds": {...},
     "split": {"seed": 42, "fast": true, "n_val": 500, "n_test": 500, "split_sha256": "..."},
     "test_scores": {"global": {"micro_f1": ...}, ...}, "version": "tfidf_logreg-3f2a9c1d0b7e",
     "exported_at": "2026-12-01T00:10:00Z", "text_cleaning": "...", "versions": {...}}

Loading runs no code from the folder: the model is read by the course's own loaders
(:func:`utils.modelfiles.predictor.load_predictor`), and the raw-text cleaning the model was
trained with (:mod:`utils.data.text`, MiniLM's ``normalize_text``) is applied by the course's
code before the model, never by code shipped in the folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from utils import config
from utils.modelfiles.predictor import MANIFEST, ModelFormatError, Predictor, read_json_object, read_manifest

CARD = "model_card.json"
CARD_FORMAT = "course-serving/1"
# the text cleaning each kind's serving code applies to a raw plot before the model sees it
TEXT_CLEANING = {
    "tfidf_logreg": "utils.data.text.clean_text (HTML unescaping, markup and URL removal, ASCII folding, "
                    "lowercase letters only, NLTK stopwords removed)",
    "bilstm": "utils.data.text.light_text (as clean_text, stopwords kept); the model's TextVectorization "
              "layer splits on spaces",
    "minilm": "utils.modelfiles.minilm.normalize_text (BERT uncased: spaces, lowercase, accents stripped), "
              "then the WordPiece vocabulary saved in the folder",
    "bert_tfhub": "TF Hub's BERT preprocessing SavedModel saved in the folder",
}
BATCHED_KINDS = {"bilstm", "minilm", "bert_tfhub"}   # neural: requests are grouped into micro-batches


@dataclass
class ServedModel:
    """A loaded export: ``predict_proba(texts)`` on raw plots, and the card that describes it."""

    predictor: Predictor
    card: dict
    folder: Path
    _fast: object = field(default=None, repr=False)

    @property
    def genres(self) -> list[str]:
        return self.predictor.genres

    @property
    def kind(self) -> str:
        return self.card["kind"]

    @property
    def version(self) -> str:
        return self.card["version"]

    @property
    def batched(self) -> bool:
        return self.kind in BATCHED_KINDS

    def threshold_vector(self, which: str | None = None) -> np.ndarray:
        return self.predictor.threshold_vector(which)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Probabilities (texts x genres) of raw plots, the same numbers as the notebook's predictor."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.genres)), np.float32)
        fn = self._fast or self.predictor.predict_proba
        return np.asarray(fn(texts), dtype=np.float32)


def _files_of(folder: Path, manifest: dict) -> list[str]:
    files = manifest.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ModelFormatError(f"{folder / MANIFEST}: field 'files' must list the model's files; "
                               f"save the model again with its notebook.")
    for name in files:
        path = folder / name
        if Path(name).is_absolute() or ".." in Path(name).parts or not path.exists():
            raise ModelFormatError(f"{folder}: the file {name!r} named in {MANIFEST} is missing or outside the folder.")
    return files


def _fingerprint(folder: Path, files: list[str]) -> str:
    digest = hashlib.sha256()
    for name in [MANIFEST, *sorted(files)]:
        path = folder / name
        paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for p in paths:
            digest.update(str(p.relative_to(folder)).encode())
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:12]


def _split_info(dataset: str, metrics: dict) -> dict:
    info = {"seed": config.seed(), "fast": metrics.get("fast"), "n_val": metrics.get("n_val"),
            "n_test": metrics.get("n_test")}
    manifest = config.processed_dir(dataset) / "manifest.json"
    try:
        info["split_sha256"] = json.loads(manifest.read_text())["files"]["split.csv"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        info["split_sha256"] = None
    return info


def build_card(folder, name: str | None = None) -> dict:
    """The model card of a model folder: its manifest plus the test scores in ``results/<dataset>/<name>/``."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    files = _files_of(folder, manifest)
    name = name or folder.name
    dataset = manifest.get("dataset", "?")
    metrics_path = config.results_dir(dataset) / name / "metrics.json" if dataset != "?" else None
    metrics = {}
    if metrics_path is not None and metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    if manifest["kind"] == "bert_tfhub":
        from utils.modelfiles.bert_tfhub import RANDOM_MARKER

        if (folder / RANDOM_MARKER).exists():
            raise ModelFormatError(f"{folder} is a TF Hub BERT with RANDOM weights (the offline CI copy): "
                                   f"its predictions mean nothing, so it is not exported for serving.")
    scores = {choice: {m: metrics["test"][choice][m] for m in ("micro_f1", "macro_f1", "samples_f1")
                       if m in metrics["test"][choice]}
              for choice in ("global", "per_genre", "0.5") if choice in metrics.get("test", {})}
    return {
        "format": CARD_FORMAT, "name": name, "kind": manifest["kind"], "dataset": dataset,
        "genres": manifest["genres"], "thresholds": manifest["thresholds"],
        "split": _split_info(dataset, metrics) if metrics else None,
        "test_scores": scores or None,
        "scores_note": metrics.get("notes") if metrics else f"no results/{dataset}/{name}/metrics.json found",
        "version": f"{name}-{_fingerprint(folder, files)}",
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "text_cleaning": TEXT_CLEANING.get(manifest["kind"], "?"),
        "versions": manifest.get("versions", {}),
        "files": files,
    }


def default_export_dir(name: str, dataset: str | None = None) -> Path:
    """``exports/<dataset>/<name>/`` beside ``models/`` (the repository's top, or ``COURSE_OUTPUT_DIR``)."""
    return Path(config.MODELS_DIR).parent / "exports" / (dataset or config.dataset_name()) / name


def export_model(model, dest=None, dataset: str | None = None, overwrite: bool = True) -> Path:
    """Copy a saved model (a name under ``models/<dataset>/`` or a folder) into one export folder.

    The folder is written beside ``dest`` under a temporary name and renamed at the end: an
    interrupted export leaves no half-written folder.
    """
    from utils.files import atomic_write_json
    from utils.tools.predict import resolve_model_dir

    source = resolve_model_dir(model, dataset)
    card = build_card(source)
    dest = Path(dest) if dest is not None else default_export_dir(card["name"], card["dataset"])
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} exists: pass overwrite=True (or --force) to replace it.")
    if dest.resolve() == source.resolve():
        raise ValueError(f"The export folder must differ from the model folder {source}.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        for name in [MANIFEST, *card["files"]]:
            src = source / name
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, tmp / name)
            else:
                shutil.copy2(src, tmp / name)
        atomic_write_json(tmp / CARD, card)
        old = None
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def read_card(folder) -> dict:
    """``model_card.json`` of an export, checked against its ``predictor.json``; built on the fly for a plain model folder."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    path = folder / CARD
    if not path.is_file():
        return build_card(folder)
    card = read_json_object(path, CARD_FORMAT, "export the model again", what="model card")
    for key in ("genres", "thresholds", "kind"):
        if card.get(key) != manifest.get(key):
            raise ModelFormatError(f"{path}: field {key!r} differs from {MANIFEST}: the folder was edited; "
                                   f"export the model again.")
    if not isinstance(card.get("version"), str) or not card["version"]:
        raise ModelFormatError(f"{path}: field 'version' must be a non-empty string.")
    return card


def _bilstm_fast_path(predictor):
    """The BiLSTM through one traced ``tf.function`` (``model.predict`` costs milliseconds per call)."""
    import tensorflow as tf

    model = predictor.model
    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True,
                     input_signature=[tf.TensorSpec([None, predictor.sequence_length], tf.int32)])
    return lambda texts: fn(tf.constant(predictor.encode(texts), tf.int32)).numpy()


def load_export(folder, warm_up: bool = True) -> ServedModel:
    """Load an export folder (or a plain model folder) for serving; runs no code from the folder."""
    from utils.modelfiles.predictor import load_predictor
    from utils.tools.predict import _prepare_tensorflow

    folder = Path(folder)
    card = read_card(folder)
    _prepare_tensorflow(card["kind"])
    predictor = load_predictor(folder)
    served = ServedModel(predictor, card, folder)
    if card["kind"] == "bilstm":
        served._fast = _bilstm_fast_path(predictor)
    if warm_up:   # trace the graphs now, not during the first request
        served.predict_proba(["A warm-up plot about a detective in a small town."])
    return served
