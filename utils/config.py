"""One place for the course's settings: paths, seed, dataset and the FAST switch.

Every setting can be changed with an environment variable, so that tests, CI and
the headless course runner can steer the notebooks without editing them:

====================  ===========================================================
``COURSE_DATASET``    dataset the notebooks use: ``cmu`` (default) or ``netflix``
``COURSE_FAST``       ``1`` = subsample and few epochs (minutes on a CPU)
``COURSE_SEED``       random seed (default 42)
``COURSE_DATA_DIR``   extra folder searched first for raw data files
``COURSE_CACHE_DIR``  where downloads are cached (default ``data/raw``)
====================  ===========================================================
"""
from __future__ import annotations

import os
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
RAW_DIR = DATA_DIR / "raw"
PROCESSED_DIR = DATA_DIR / "processed"
RESULTS_DIR = ROOT / "results"
MODELS_DIR = ROOT / "models"
NOTEBOOKS_DIR = ROOT / "notebooks"

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


def seed() -> int:
    """The course's random seed (``COURSE_SEED``, default 42)."""
    raw = os.environ.get("COURSE_SEED", str(DEFAULT_SEED))
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"COURSE_SEED={raw!r} is not an integer.") from None


_DATASET_NAME = __import__("re").compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def check_dataset_name(name: str) -> str:
    """``name`` if it can name folders under data/, results/ and models/; a clear error otherwise.

    Dataset names are single folder names (lowercase letters, digits, ``_``, ``-``), so that
    ``--dataset ../..`` can never reach outside those folders.
    """
    if not isinstance(name, str) or not _DATASET_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a dataset name: use cmu, netflix or another name made of "
                         f"lowercase letters, digits, '_' and '-'.")
    return name


def dataset_name() -> str:
    """The dataset the notebooks work on (``COURSE_DATASET``, default ``cmu``)."""
    name = os.environ.get("COURSE_DATASET", DEFAULT_DATASET).strip().lower() or DEFAULT_DATASET
    try:
        return check_dataset_name(name)
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


def processed_dir(dataset: str | None = None) -> Path:
    """``data/processed/<dataset>``: the labelled table, the split and the cleaned text."""
    return PROCESSED_DIR / check_dataset_name(dataset or dataset_name())


def results_dir(dataset: str | None = None) -> Path:
    """``results/<dataset>``: one sub-folder per model (see :mod:`utils.evaluation.results`)."""
    return RESULTS_DIR / check_dataset_name(dataset or dataset_name())


def models_dir(dataset: str | None = None) -> Path:
    """``models/<dataset>``: trained models that the predict command loads."""
    return MODELS_DIR / check_dataset_name(dataset or dataset_name())


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
