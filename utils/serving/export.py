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
import math
import os
import re
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from utils import config
from utils.data.text_setting import check_setting
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
        if (not name or Path(name).is_absolute() or ".." in Path(name).parts or len(Path(name).parts) != 1
                or name in (MANIFEST, CARD) or not path.exists()):
            raise ModelFormatError(f"{folder}: the file {name!r} named in {MANIFEST} is missing or outside the folder.")
    return files


def _file_paths(folder: Path, files: list[str]) -> list[Path]:
    """Every file of the model (``predictor.json`` and the listed files, folders walked), in a fixed order.

    A symbolic link or anything but a plain file is refused: it could point outside the folder."""
    out = []
    for name in [MANIFEST, *sorted(files)]:
        path = folder / name
        inner = sorted(path.rglob("*")) if path.is_dir() and not path.is_symlink() else []
        for p in [path, *inner]:
            if p.is_symlink() or not (p.is_file() or p.is_dir()):
                raise ModelFormatError(f"{folder}: {p.relative_to(folder)} is a symbolic link or not a plain "
                                       f"file; a model folder holds plain files only (save the model again).")
            if p.is_file():
                out.append(p)
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(folder: Path, files: list[str]) -> dict[str, str]:
    """``{relative path: sha256}`` of every file of the model (what the card records and loading checks)."""
    return {p.relative_to(folder).as_posix(): _sha256(p) for p in _file_paths(Path(folder), files)}


def _fingerprint(hashes: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name, value in sorted(hashes.items()):
        digest.update(name.encode())
        digest.update(bytes.fromhex(value))
    return digest.hexdigest()[:12]


def _finite(value):
    """A test score as JSON can carry it: a finite number, else ``None`` (JSON has no NaN)."""
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _split_info(dataset: str, metrics: dict) -> dict:
    info = {"seed": config.seed(), "fast": metrics.get("fast"), "n_val": metrics.get("n_val"),
            "n_test": metrics.get("n_test")}
    manifest = config.processed_dir(dataset) / "manifest.json"
    try:
        info["split_sha256"] = json.loads(manifest.read_text())["files"]["split.csv"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        info["split_sha256"] = None
    return info


def _text_setting(value, where) -> str:
    """What the model reads, ``"plot"`` or ``"title+plot"`` (missing: ``"plot"``); anything else is refused."""
    try:
        return check_setting(value)
    except ValueError as err:
        raise ModelFormatError(f"{where}: field 'text': {err}") from None


def build_card(folder, name: str | None = None) -> dict:
    """The model card of a model folder: its manifest plus the test scores in ``results/<dataset>/<name>/``."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    files = _files_of(folder, manifest)
    name = name or folder.resolve().name
    dataset = manifest.get("dataset") or "?"
    metrics_path = (config.results_dir(dataset) / name / "metrics.json"
                    if dataset != "?" and is_safe_name(name) else None)
    metrics = {}
    if metrics_path is not None and metrics_path.is_file():
        try:
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as err:
            raise ModelFormatError(f"{metrics_path} is not valid JSON ({type(err).__name__}); re-run the "
                                   f"model's notebook to write its results again.") from None
        if not isinstance(metrics, dict) or not isinstance(metrics.get("test", {}), dict):
            metrics = {}
    if manifest["kind"] == "bert_tfhub":
        from utils.modelfiles.bert_tfhub import RANDOM_MARKER

        if (folder / RANDOM_MARKER).exists():
            raise ModelFormatError(f"{folder} is a TF Hub BERT with RANDOM weights (the offline CI copy): "
                                   f"its predictions mean nothing, so it is not exported for serving.")
    scores = {choice: {m: _finite(metrics["test"][choice][m]) for m in ("micro_f1", "macro_f1", "samples_f1")
                       if m in metrics["test"][choice]}
              for choice in ("global", "per_genre", "0.5")
              if isinstance(metrics.get("test", {}).get(choice), dict)}
    hashes = file_hashes(folder, files)
    return {
        "format": CARD_FORMAT, "name": name, "kind": manifest["kind"], "dataset": dataset,
        "genres": manifest["genres"], "thresholds": manifest["thresholds"],
        "split": _split_info(dataset, metrics) if metrics else None,
        "test_scores": scores or None,
        "scores_note": metrics.get("notes") if metrics else f"no results/{dataset}/{name}/metrics.json found",
        "version": f"{name}-{_fingerprint(hashes)}",
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "text_cleaning": TEXT_CLEANING.get(manifest["kind"], "?"),
        "text": _text_setting(manifest.get("text"), folder / MANIFEST),   # "plot" or "title+plot"
        "versions": manifest.get("versions", {}),
        "files": files,
        "sha256": hashes,   # every file of the export but this card; checked when the export is loaded
    }


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def is_safe_name(name) -> bool:
    """One folder name (letters, digits, ``_``, ``.``, ``-``), never ``..``: it cannot leave its parent folder."""
    return isinstance(name, str) and bool(_SAFE_NAME.fullmatch(name)) and ".." not in name


def exports_root() -> Path:
    """``exports/`` beside ``models/`` (the repository's top, or ``COURSE_OUTPUT_DIR``)."""
    return Path(config.MODELS_DIR).parent / "exports"


def default_export_dir(name: str, dataset: str | None = None) -> Path:
    """``exports/<dataset>/<name>/``, from confined names only: it can never point outside ``exports/``."""
    dataset = dataset or config.dataset_name()
    try:
        config.check_dataset_name(dataset)
    except ValueError:
        raise ModelFormatError(f"The model's dataset {dataset!r} is not a dataset folder name (lowercase letters, "
                               f"digits, '_', '-'), so it cannot name a folder under exports/: give the export "
                               f"folder yourself (dest=..., or --export DEST).") from None
    if not is_safe_name(name):
        raise ModelFormatError(f"The model's folder name {name!r} cannot name a folder under exports/ (letters, "
                               f"digits, '_', '.', '-'): give the export folder yourself (dest=..., or --export DEST).")
    root = exports_root()
    dest = root / dataset / name
    if not dest.resolve().is_relative_to(root.resolve()):   # belt and braces: a symbolic link inside exports/
        raise ModelFormatError(f"{dest} resolves outside {root}: give the export folder yourself.")
    return dest


def _is_export(folder: Path) -> bool:
    """Whether ``folder`` is an export this code wrote (a model card in the course's format)."""
    try:
        return json.loads((folder / CARD).read_text(encoding="utf-8")).get("format") == CARD_FORMAT
    except (OSError, ValueError, RecursionError, AttributeError):
        return False


def _make_readable(folder: Path) -> None:
    """Folders 0755, files 0644, whatever the umask or mkstemp made: a container's other user reads them."""
    for p in [folder, *folder.rglob("*")]:
        if not p.is_symlink():
            os.chmod(p, 0o755 if p.is_dir() else 0o644)


def export_model(model, dest=None, dataset: str | None = None, overwrite: bool = True) -> Path:
    """Copy a saved model (a name under ``models/<dataset>/`` or a folder) into one export folder.

    The folder is written beside ``dest`` under a temporary name and renamed at the end: an
    interrupted export leaves no half-written folder. An existing ``dest`` is replaced only when
    it is an earlier export (it holds a course model card) or an empty folder, and ``overwrite``
    is true; the replacement is reported on stderr. Anything else there is never touched.
    """
    from utils.files import atomic_write_json
    from utils.tools.predict import resolve_model_dir

    source = resolve_model_dir(model, dataset)
    card = build_card(source)
    dest = Path(dest) if dest is not None else default_export_dir(card["name"], card["dataset"])
    if dest.exists() and dest.resolve() == source.resolve():
        raise ValueError(f"The export folder must differ from the model folder {source}.")
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise FileExistsError(f"{dest} exists and is not a folder: choose another export folder.")
    replacing = dest.is_dir() and any(dest.iterdir())
    if replacing and not _is_export(dest):
        raise FileExistsError(f"{dest} exists and is not an export written by this course (no {CARD}): "
                              f"refusing to replace it. Choose another export folder, or remove it yourself.")
    if replacing and not overwrite:
        raise FileExistsError(f"{dest} holds an earlier export: pass overwrite=True to replace it.")
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
        if file_hashes(tmp, card["files"]) != card["sha256"]:
            raise ModelFormatError(f"{source} changed while it was being exported: export it again.")
        atomic_write_json(tmp / CARD, card)
        _make_readable(tmp)
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
    if replacing:
        print(f"note: replaced the earlier export in {dest}", file=sys.stderr)
    return dest


def _bad_numbers(value, where: str = ""):
    """Paths of the NaN / infinite numbers in a JSON value (JSON has none: the API could not send them)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield where or "(top)"
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _bad_numbers(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _bad_numbers(v, f"{where}[{i}]")


def verify_files(folder, card: dict) -> None:
    """Refuse an export whose files differ from the SHA-256 hashes its model card recorded at export."""
    folder = Path(folder)
    path = folder / CARD
    want = card.get("sha256")
    if not isinstance(want, dict) or not want or not all(isinstance(v, str) for v in want.values()):
        raise ModelFormatError(f"{path} records no file hashes (field 'sha256'): it was written by an older "
                               f"version of the course, or edited. Export the model again.")
    if card.get("version") != f"{card.get('name')}-{_fingerprint(want)}":
        raise ModelFormatError(f"{path}: field 'version' is not the model's name plus the hash of the files the "
                               f"card lists: the card was edited. Export the model again.")
    have = file_hashes(folder, card["files"])
    changed = sorted(n for n in want.keys() & have.keys() if want[n] != have[n])
    missing, extra = sorted(want.keys() - have.keys()), sorted(have.keys() - want.keys())
    if changed or missing or extra:
        what = "; ".join(part for part in (
            f"changed: {', '.join(changed[:3])}" if changed else "",
            f"missing: {', '.join(missing[:3])}" if missing else "",
            f"not in the card: {', '.join(extra[:3])}" if extra else "") if part)
        raise ModelFormatError(f"{folder} does not match the SHA-256 hashes in its {CARD} ({what}): the model "
                               f"files were edited or damaged after export, so version {card.get('version')!r} "
                               f"would be a lie. Export the model again.")


def read_card(folder) -> dict:
    """``model_card.json`` of an export, checked against its ``predictor.json`` and its files' hashes;
    built on the fly for a plain model folder."""
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
    if _text_setting(card.get("text"), path) != _text_setting(manifest.get("text"), folder / MANIFEST):
        raise ModelFormatError(f"{path}: field 'text' differs from {MANIFEST}: the folder was edited; "
                               f"export the model again.")
    if not isinstance(card.get("version"), str) or not card["version"]:
        raise ModelFormatError(f"{path}: field 'version' must be a non-empty string.")
    bad = list(_bad_numbers(card))
    if bad:
        raise ModelFormatError(f"{path}: field {bad[0]!r} is NaN or infinite, which JSON cannot carry (the "
                               f"server could not send the card): export the model again.")
    if card.get("files") != manifest.get("files"):
        raise ModelFormatError(f"{path}: field 'files' differs from {MANIFEST}: export the model again.")
    _files_of(folder, manifest)
    verify_files(folder, card)
    return card


def _bilstm_fast_path(predictor):
    """The BiLSTM through one traced ``tf.function``, its ``TextVectorization`` included: ``model.predict``
    costs milliseconds per call, and the vectorizer run eagerly spent more of the model thread than the
    network (string split, ragged tensors, lookups dispatched op by op from Python)."""
    import tensorflow as tf

    from utils.modelfiles.bilstm import prepare_texts

    model, vectorizer = predictor.model, predictor.vectorizer
    fn = tf.function(lambda s: model(tf.cast(vectorizer(s), tf.int32), training=False), reduce_retracing=True,
                     input_signature=[tf.TensorSpec([None], tf.string)])
    return lambda texts: fn(tf.constant(prepare_texts(texts), tf.string)).numpy()


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
