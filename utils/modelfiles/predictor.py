"""The saved-model contract shared by every model and by ``python -m utils.predict``.

A trained model lives in ``models/<dataset>/<model>/`` with a ``predictor.json``::

    {"kind": "tfidf_logreg", "format_version": 1, "genres": [...],
     "thresholds": {"global": 0.3, "per_genre": {...}, "default": "global"},
     "dataset": "netflix", "versions": {"tensorflow": "2.21.0", ...}}

plus whatever files the model's own module writes next to it. ``kind`` names the
module that can load it (see ``KINDS``); every loader returns a :class:`Predictor`.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
MANIFEST = "predictor.json"

# kind -> "module:function" that takes the model folder and returns a Predictor
KINDS = {
    "tfidf_logreg": "utils.modelfiles.tfidf:load_predictor",
    "bilstm": "utils.modelfiles.bilstm:load_predictor",
    "minilm": "utils.modelfiles.minilm:load_predictor",
    "bert_tfhub": "utils.modelfiles.bert_tfhub:load_predictor",
}


class ModelFormatError(ValueError):
    """A model folder that is missing, incomplete or written by another version."""


class Predictor:
    """Base class: subclasses implement :meth:`predict_proba` (and may refine :meth:`known_words`)."""

    def __init__(self, genres, thresholds: dict, vocabulary=None):
        self.genres = list(genres)
        self.thresholds = thresholds
        self.vocabulary = vocabulary  # a set of known tokens, or None when any text is fine

    def predict_proba(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def threshold_vector(self, which: str | None = None) -> np.ndarray:
        which = which or self.thresholds.get("default", "global")
        if which == "global":
            return np.full(len(self.genres), float(self.thresholds["global"]))
        if which == "per_genre":
            return np.array([float(self.thresholds["per_genre"][g]) for g in self.genres])
        raise ValueError(f"threshold choice must be 'global' or 'per_genre', not {which!r}.")

    def known_words(self, text: str) -> tuple[int, int]:
        """(known, total) word counts of ``text`` against the model's vocabulary."""
        from utils.data.text import tokenize

        tokens = tokenize(text)
        if self.vocabulary is None:
            return len(tokens), len(tokens)
        return sum(t in self.vocabulary for t in tokens), len(tokens)


def write_manifest(folder: Path, kind: str, genres, thresholds: dict, dataset: str, **extra) -> Path:
    """Write ``predictor.json`` (atomically) after the model's own files are in place."""
    from utils.files import atomic_write_json

    if kind not in KINDS:
        raise ValueError(f"unknown predictor kind {kind!r}; known: {sorted(KINDS)}")
    versions = {}
    for name in ("numpy", "sklearn", "tensorflow", "keras", "tf_keras", "keras_hub"):
        try:
            import sys

            if name in sys.modules:
                versions[name] = getattr(sys.modules[name], "__version__", "?")
        except Exception:
            pass
    manifest = {"kind": kind, "format_version": FORMAT_VERSION, "genres": list(genres),
                "thresholds": thresholds, "dataset": dataset, "versions": versions, **extra}
    return atomic_write_json(Path(folder) / MANIFEST, manifest)


def read_manifest(folder) -> dict:
    """Read and check ``predictor.json``; raise :class:`ModelFormatError` with a fix."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFormatError(f"Model folder {folder} does not exist. Train a model first "
                               f"(notebooks 03-05 save theirs under models/<dataset>/<model>/).")
    path = folder / MANIFEST
    if not path.exists():
        raise ModelFormatError(f"{folder} has no {MANIFEST}: it is not a model saved by this course.")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ModelFormatError(f"{path} is not valid JSON ({err}); save the model again.") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"{folder} was saved in format {version!r}, this code reads format "
                               f"{FORMAT_VERSION}: re-run the notebook that trains it.")
    if manifest.get("kind") not in KINDS:
        raise ModelFormatError(f"{path}: unknown model kind {manifest.get('kind')!r}; known: {sorted(KINDS)}.")
    return manifest


def load_predictor(folder) -> Predictor:
    """Load any saved course model as a :class:`Predictor`."""
    manifest = read_manifest(folder)
    module, func = KINDS[manifest["kind"]].split(":")
    return getattr(importlib.import_module(module), func)(Path(folder))
