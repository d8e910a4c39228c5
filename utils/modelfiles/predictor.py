"""The saved-model contract shared by every model and by ``python -m utils.predict``.

A trained model lives in ``models/<dataset>/<model>/`` with a ``predictor.json``::

    {"kind": "tfidf_logreg", "format_version": 1, "genres": [...],
     "thresholds": {"global": 0.3, "per_genre": {...}, "default": "global"},
     "dataset": "netflix", "text": "plot", "versions": {"tensorflow": "2.21.0", ...}}

``text`` says what the model reads: ``"plot"`` or ``"title+plot"`` (:mod:`utils.data.text_setting`;
a card without it is a plot model). Plus whatever files the model's own module writes next to it. ``kind`` names the
module that can load it (see ``KINDS``); every loader returns a :class:`Predictor`.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

from utils.data.text_setting import TEXT_SETTINGS

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

    text_setting = "plot"   # what the model reads (its card's "text"): set by load_predictor

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


def write_manifest(folder: Path, kind: str, genres, thresholds: dict, dataset: str, text: str | None = None,
                   **extra) -> Path:
    """Write ``predictor.json`` (atomically) after the model's own files are in place.

    ``text``: what the model was trained on, ``"plot"`` (``None``: the default) or ``"title+plot"``.
    """
    from utils.data.text_setting import check_setting
    from utils.files import atomic_write_json

    text = check_setting(text)

    if kind not in KINDS:
        raise ValueError(f"unknown predictor kind {kind!r}; known: {sorted(KINDS)}")
    if not _is_dataset_name(dataset):
        raise ValueError(f"dataset must be the dataset's folder name (config.dataset_name(), e.g. netflix or "
                         f"csv-1a2b3c4d5e6f), not {dataset!r}.")
    versions = {}
    for name in ("numpy", "sklearn", "tensorflow", "keras", "tf_keras", "keras_hub"):
        try:
            import sys

            if name in sys.modules:
                versions[name] = getattr(sys.modules[name], "__version__", "?")
        except Exception:
            pass
    manifest = {"kind": kind, "format_version": FORMAT_VERSION, "genres": list(genres),
                "thresholds": thresholds, "dataset": dataset, "text": text, "versions": versions, **extra}
    return atomic_write_json(Path(folder) / MANIFEST, manifest)


def _is_dataset_name(name) -> bool:
    from utils.config import check_dataset_name

    try:
        check_dataset_name(name)
    except ValueError:
        return False
    return True


def _check_thresholds(path: Path, thresholds, genres: list) -> None:
    import math

    def bad(value) -> bool:
        return (isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value)
                or not 0.0 <= value <= 1.0)

    if not isinstance(thresholds, dict):
        raise ModelFormatError(f"{path}: field 'thresholds' must be an object, not {type(thresholds).__name__}.")
    if "global" not in thresholds or bad(thresholds["global"]):
        raise ModelFormatError(f"{path}: field 'thresholds.global' must be a number in [0, 1], "
                               f"not {thresholds.get('global')!r}.")
    per = thresholds.get("per_genre")
    if per is not None:
        if not isinstance(per, dict):
            raise ModelFormatError(f"{path}: field 'thresholds.per_genre' must be an object (genre -> threshold).")
        if sorted(per) != sorted(genres):
            raise ModelFormatError(f"{path}: field 'thresholds.per_genre' has {len(per)} thresholds for "
                                   f"{len(genres)} genres, or other genre names.")
        wrong = [g for g, t in per.items() if bad(t)]
        if wrong:
            raise ModelFormatError(f"{path}: field 'thresholds.per_genre' holds values outside [0, 1] or NaN "
                                   f"for {wrong[:3]}.")
    if thresholds.get("default", "global") not in ("global", "per_genre"):
        raise ModelFormatError(f"{path}: field 'thresholds.default' must be 'global' or 'per_genre'.")
    if thresholds.get("default") == "per_genre" and per is None:
        raise ModelFormatError(f"{path}: 'thresholds.default' is 'per_genre' but there are no per-genre thresholds.")


MAX_JSON_BYTES = 256 * 2**20   # a TF-IDF vocabulary of 200,000 word pairs takes a few MB


def _json_bytes(path: Path, remedy: str) -> bytes:
    size = Path(path).stat().st_size
    if size > MAX_JSON_BYTES:
        raise ModelFormatError(f"{path} has {size:,} bytes, more than any file the course writes "
                               f"({MAX_JSON_BYTES:,}): {remedy}.")
    return Path(path).read_bytes()


def read_json_object(path: Path, fmt: str, remedy: str, what: str = "file") -> dict:
    """A JSON object whose ``format`` is ``fmt`` from ``path``; else :class:`ModelFormatError` ending in ``remedy``."""
    try:
        obj = json.loads(_json_bytes(path, remedy).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFormatError(f"{path} is not valid UTF-8 JSON ({err}): {remedy}.") from None
    except RecursionError:
        raise ModelFormatError(f"{path} is nested too deeply to be a file the course writes: {remedy}.") from None
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        raise ModelFormatError(f"{path} is not a {fmt} {what}: {remedy}.")
    return obj


def read_manifest(folder) -> dict:
    """Read and check ``predictor.json`` field by field; raise :class:`ModelFormatError` naming the file and field."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFormatError(f"Model folder {folder} does not exist. Train a model first "
                               f"(notebooks 03-05 save theirs under models/<dataset>/<model>/).")
    path = folder / MANIFEST
    if not path.is_file():
        raise ModelFormatError(f"{folder} has no {MANIFEST}: it is not a model saved by this course.")
    try:
        manifest = json.loads(_json_bytes(path, "save the model again").decode("utf-8"),
                              parse_constant=lambda name: float("nan"))
    except RecursionError:
        raise ModelFormatError(f"{path} is nested too deeply to be a file the course writes; save the model "
                               f"again.") from None
    except UnicodeDecodeError as err:
        raise ModelFormatError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); save the model again.") from None
    except json.JSONDecodeError as err:
        raise ModelFormatError(f"{path} is not valid JSON ({err}); save the model again.") from None
    if not isinstance(manifest, dict):
        raise ModelFormatError(f"{path} must hold a JSON object, not a {type(manifest).__name__}.")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFormatError(f"{folder} was saved in format {version!r}, this code reads format "
                               f"{FORMAT_VERSION}: re-run the notebook that trains it.")
    if manifest.get("kind") not in KINDS:
        raise ModelFormatError(f"{path}: unknown model kind {manifest.get('kind')!r}; known: {sorted(KINDS)}.")
    genres = manifest.get("genres")
    if (not isinstance(genres, list) or not genres or not all(isinstance(g, str) and g for g in genres)
            or len(set(genres)) != len(genres)):
        raise ModelFormatError(f"{path}: field 'genres' must be a non-empty list of distinct genre names.")
    if "thresholds" not in manifest:
        raise ModelFormatError(f"{path}: field 'thresholds' is missing.")
    _check_thresholds(path, manifest["thresholds"], genres)
    dataset = manifest.get("dataset")
    if dataset is not None and not _is_dataset_name(dataset):
        raise ModelFormatError(f"{path}: field 'dataset' must be a dataset folder name (lowercase letters, "
                               f"digits, '_', '-'; e.g. netflix or csv-1a2b3c4d5e6f), not {str(dataset)[:80]!r}.")
    text = manifest.get("text")
    if text is not None and (not isinstance(text, str) or text not in TEXT_SETTINGS):
        raise ModelFormatError(f"{path}: field 'text' must be one of {', '.join(TEXT_SETTINGS)} (what the model "
                               f"reads), not {str(text)[:40]!r}; save the model again.")
    return manifest


def load_predictor(folder) -> Predictor:
    """Load any saved course model as a :class:`Predictor`; its ``text_setting`` is the card's ``"text"``."""
    from utils.data.text_setting import check_setting

    manifest = read_manifest(folder)
    module, func = KINDS[manifest["kind"]].split(":")
    predictor = getattr(importlib.import_module(module), func)(Path(folder))
    predictor.text_setting = check_setting(manifest.get("text"))
    return predictor
