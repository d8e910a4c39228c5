"""One place for the course's settings: paths, seed, dataset and the FAST switch.

Every setting can be changed with an environment variable, so that tests, CI and
the headless course runner can steer the notebooks without editing them:

====================  ===========================================================
``COURSE_DATASET``    dataset the notebooks use: ``cmu`` (default), ``netflix``, ``tmdb`` or ``csv:PATH``
``COURSE_FAST``       ``1`` = subsample and few epochs (minutes on a CPU)
``COURSE_SEED``       random seed (default 42)
``COURSE_SPLIT_SEED`` the benchmark's split seed (``--split-seed``): split the prepared titles anew with it
``COURSE_DATA_DIR``   extra folder searched first for raw data files
``COURSE_CACHE_DIR``  where downloads are cached (default ``data/raw``)
``COURSE_OUTPUT_DIR`` put processed/, results/ and models/ there instead (a separate workspace)
====================  ===========================================================
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
RAW_DIR = DATA_DIR / "raw"
PROCESSED_DIR = DATA_DIR / "processed"
RESULTS_DIR = ROOT / "results"
MODELS_DIR = ROOT / "models"
NOTEBOOKS_DIR = ROOT / "notebooks"
if os.environ.get("COURSE_OUTPUT_DIR"):   # a separate workspace (the dress rehearsal): processed/, results/, models/
    _out = Path(os.environ["COURSE_OUTPUT_DIR"]).expanduser().resolve()
    PROCESSED_DIR, RESULTS_DIR, MODELS_DIR = _out / "processed", _out / "results", _out / "models"

DEFAULT_DATASET = "cmu"
DEFAULT_SEED = 42

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_flag(name: str, default: bool = False) -> bool:
    """Read a yes/no environment variable; anything unrecognised is an error."""
    value = os.environ.get(name)
    if value is None:
        return default
    value = value.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={os.environ[name]!r} is not a yes/no value: use 1 or 0.")


def fast_mode() -> bool:
    """True when ``COURSE_FAST`` asks for the quick version of every notebook."""
    return env_flag("COURSE_FAST", default=False)


def split_seed() -> int | None:
    """The split seed the benchmark's worker was given (``COURSE_SPLIT_SEED``); ``None``: the prepared split.

    Separate from :func:`seed` (how models start and shuffle): it decides which titles are tested.
    """
    raw = os.environ.get("COURSE_SPLIT_SEED", "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"COURSE_SPLIT_SEED={raw!r} is not an integer.") from None


def seed() -> int:
    """The course's random seed (``COURSE_SEED``, default 42)."""
    raw = os.environ.get("COURSE_SEED", str(DEFAULT_SEED))
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"COURSE_SEED={raw!r} is not an integer.") from None


# --------------------------------------------------------------------------- the parameters cell's switches

SWITCHES = ("COURSE_FAST", "COURSE_DATASET", "COURSE_SEED")
_AT_START = {name: os.environ.get(name) for name in SWITCHES}   # as the process (the kernel) started
_WRITTEN: dict[str, str] = {}                                   # what write_switches() put there since


def switch_override(name: str) -> str | None:
    """The environment's value of a notebook switch when it overrides the ``parameters`` cell, else ``None``.

    A value overrides the cell when it came from outside the cell: it was set before the process (the
    notebook's kernel) started, as CI and ``python -m utils.run_course`` do, or set later by other code.
    The value that an earlier run of the cell wrote back (:func:`write_switches`) is no override, so an
    edited ``parameters`` cell that is run again in a live kernel takes effect.
    """
    if name not in SWITCHES:
        raise ValueError(f"{name!r} is not one of the notebook switches {SWITCHES}.")
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None          # unset, or set empty: no override (for every switch alike)
    if value == _WRITTEN.get(name):
        # our own echo of an earlier run of the cell; a value set before the kernel started still holds,
        # in its own spelling (COURSE_FAST=true was echoed as "1", COURSE_SEED=03 as "3")
        start = _AT_START[name]
        return start if start is not None and start.strip() else None
    return value


def write_switches(fast: bool, dataset: str, seed: int) -> None:
    """Write the notebook's final FAST, dataset and seed to the environment, so that every ``utils``
    function (and a process the notebook starts) agrees with it; remembered as no override."""
    values = {"COURSE_FAST": "1" if fast else "0", "COURSE_DATASET": str(dataset), "COURSE_SEED": str(int(seed))}
    os.environ.update(values)
    _WRITTEN.update(values)


_DATASET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
CSV_PREFIX = "csv:"
CSV_SIDECAR_SUFFIX = ".course.json"     # my.csv -> my.csv.course.json: column names, separator, mapping
_CSV_SOURCES: dict[str, Path] = {}      # csv-<hash> -> the user's file, for this process
_HASHES: dict[tuple, str] = {}


def check_dataset_name(name: str) -> str:
    """``name`` if it can name folders under data/, results/ and models/; a clear error otherwise.

    Dataset names are single folder names (lowercase letters, digits, ``_``, ``-``), so that
    ``--dataset ../..`` can never reach outside those folders.
    """
    if not isinstance(name, str) or not _DATASET_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a dataset name: use cmu, netflix, tmdb, csv:PATH for your own file, "
                         f"or a name made of lowercase letters, digits, '_' and '-'.")
    return name


def _file_hash(path: Path) -> str:
    """SHA-256 of a file, remembered for its (path, size, mtime) in this process."""
    from utils.data.download import sha256

    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = sha256(path)
    return _HASHES[key]


def csv_dataset_name(path) -> str:
    """``csv-<hash>``: the folder name of a CSV dataset, from the content of the file, its sidecar
    options and their mapping file, never from the path (a changed file gets new folders)."""
    import hashlib
    import json

    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"{CSV_PREFIX}{path}: no such file. Give the path of your CSV, e.g. "
                         f"COURSE_DATASET=csv:/home/me/movies.csv")
    parts = [_file_hash(path)]
    sidecar = path.with_name(path.name + CSV_SIDECAR_SUFFIX)
    if sidecar.is_file():
        parts.append(_file_hash(sidecar))
        try:
            mapping = json.loads(sidecar.read_text(encoding="utf-8")).get("mapping")
        except (ValueError, AttributeError, UnicodeDecodeError):
            mapping = None        # the loader reports a broken sidecar with its own message
        if isinstance(mapping, str) and (sidecar.parent / mapping).is_file():
            parts.append(_file_hash(sidecar.parent / mapping))
    name = "csv-" + hashlib.sha256("/".join(parts).encode()).hexdigest()[:12]
    _CSV_SOURCES[name] = path
    return name


def csv_source(name: str) -> Path | None:
    """The CSV file behind a ``csv-<hash>`` dataset name (known once resolved in this process)."""
    if name not in _CSV_SOURCES:
        spec = os.environ.get("COURSE_DATASET", "").strip()
        if spec[:len(CSV_PREFIX)].lower() == CSV_PREFIX:
            csv_dataset_name(spec[len(CSV_PREFIX):])
    return _CSV_SOURCES.get(name)


def resolve_dataset(spec: str) -> str:
    """``cmu``, ``netflix``, ``tmdb`` or ``csv:PATH`` (your own file) -> the dataset's folder name."""
    spec = str(spec).strip()
    if spec[:len(CSV_PREFIX)].lower() == CSV_PREFIX:
        return csv_dataset_name(spec[len(CSV_PREFIX):])
    return check_dataset_name(spec.lower())


def dataset_name() -> str:
    """The dataset the notebooks work on (``COURSE_DATASET``, default ``cmu``; ``csv:PATH`` for a CSV)."""
    spec = os.environ.get("COURSE_DATASET", DEFAULT_DATASET).strip() or DEFAULT_DATASET
    try:
        return resolve_dataset(spec)
    except ValueError as err:
        raise ValueError(f"COURSE_DATASET: {err}") from None


def data_dirs() -> list[Path]:
    """Folders searched for raw data, in order: ``COURSE_DATA_DIR``, then ``data/raw``."""
    dirs = []
    extra = os.environ.get("COURSE_DATA_DIR")
    if extra:
        dirs.append(Path(extra).expanduser().resolve())
    dirs.append(RAW_DIR)
    return dirs


def cache_dir() -> Path:
    """Where downloaded archives are stored (``COURSE_CACHE_DIR``, default ``data/raw``)."""
    value = os.environ.get("COURSE_CACHE_DIR")
    return Path(value).expanduser().resolve() if value else RAW_DIR


def set_output_dir(folder) -> Path:
    """Put processed/, results/ and models/ under ``folder`` from now on, in this process and the
    processes it starts (``COURSE_OUTPUT_DIR``); e.g. a Google Drive folder that outlives a Colab VM."""
    global PROCESSED_DIR, RESULTS_DIR, MODELS_DIR
    out = Path(folder).expanduser().resolve()
    os.environ["COURSE_OUTPUT_DIR"] = str(out)
    PROCESSED_DIR, RESULTS_DIR, MODELS_DIR = out / "processed", out / "results", out / "models"
    return out


def display_path(path) -> Path:
    """``path`` relative to the repository when it is inside it, else as it is (a COURSE_OUTPUT_DIR elsewhere)."""
    path = Path(path)
    try:
        return path.resolve().relative_to(ROOT)
    except ValueError:
        return path


def processed_dir(dataset: str | None = None) -> Path:
    """``data/processed/<dataset>``: the labelled table, the split and the cleaned text."""
    return PROCESSED_DIR / (resolve_dataset(dataset) if dataset else dataset_name())


def results_dir(dataset: str | None = None) -> Path:
    """``results/<dataset>``: one sub-folder per model (see :mod:`utils.evaluation.results`)."""
    return RESULTS_DIR / (resolve_dataset(dataset) if dataset else dataset_name())


def models_dir(dataset: str | None = None) -> Path:
    """``models/<dataset>``: trained models that the predict command loads."""
    return MODELS_DIR / (resolve_dataset(dataset) if dataset else dataset_name())


def set_seeds(value: int | None = None) -> int:
    """Seed Python, NumPy and (if imported) TensorFlow; return the seed used."""
    value = seed() if value is None else value
    random.seed(value)
    os.environ["PYTHONHASHSEED"] = str(value)
    import numpy as np

    np.random.seed(value)
    import sys

    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(value)
    if "keras" in sys.modules and hasattr(sys.modules["keras"], "utils"):
        try:
            sys.modules["keras"].utils.set_random_seed(value)
        except Exception:  # Keras 2 without that helper: TF seed above is enough
            pass
    return value
