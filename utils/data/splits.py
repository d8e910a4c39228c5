"""Train / validation / test splits by multi-label iterative stratification.

Random splits can leave a rare genre with no test example; iterative
stratification (Sechidis et al., 2011; the ``iterative-stratification`` package)
keeps every genre's share close to the same in all three parts. The split is saved
by movie id, so every notebook and the benchmark use exactly the same movies.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


def binarize(genre_lists, genres) -> np.ndarray:
    """0/1 matrix (movies x ``genres``); labels not in ``genres`` are ignored."""
    index = {g: j for j, g in enumerate(genres)}
    y = np.zeros((len(genre_lists), len(genres)), dtype=np.int8)
    for i, labels in enumerate(genre_lists):
        for g in labels:
            j = index.get(g)
            if j is not None:
                y[i, j] = 1
    return y


def make_split(ids, y, val_size: float = 0.15, test_size: float = 0.15, seed: int = 42) -> pd.Series:
    """A Series ``id -> "train"|"val"|"test"`` stratified on the label matrix ``y``."""
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    ids = np.asarray(ids).astype(str)
    y = np.asarray(y)
    if len(ids) != len(y):
        raise ValueError(f"{len(ids)} ids but {len(y)} label rows.")
    if not (0 < val_size < 1 and 0 < test_size < 1 and val_size + test_size < 1):
        raise ValueError("val_size and test_size must be in (0, 1) and sum to less than 1.")
    if len(ids) < 10:
        raise ValueError(f"Only {len(ids)} movies: too few to split into train, validation and test.")
    holdout = val_size + test_size
    first = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=holdout, random_state=seed)
    train_idx, rest_idx = next(first.split(np.zeros(len(y)), y))
    second = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=test_size / holdout, random_state=seed)
    val_rel, test_rel = next(second.split(np.zeros(len(rest_idx)), y[rest_idx]))
    split = np.empty(len(ids), dtype=object)
    split[train_idx] = "train"
    split[rest_idx[val_rel]] = "val"
    split[rest_idx[test_rel]] = "test"
    return pd.Series(split, index=pd.Index(ids, name="id"), name="split")


def test_ids_hash(test_ids) -> str:
    """A short fingerprint of a split's test titles: SHA-256 of their sorted ids (16 hex digits).

    Two results with the same fingerprint were tested on exactly the same titles.
    """
    import hashlib

    ids = sorted(str(i) for i in np.asarray(test_ids).ravel())
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def split_identity(test_ids, seed: int | None = None) -> dict:
    """What identifies a split in every result: the seed that drew it (``None``: unknown) and
    :func:`test_ids_hash` of its test titles."""
    return {"split_seed": None if seed is None else int(seed), "test_ids_sha256": test_ids_hash(test_ids)}


def same_split(a: dict | None, b: dict | None) -> bool:
    """Whether two split identities name the same test titles (the hash decides; the seed is a label)."""
    return bool(a) and bool(b) and a.get("test_ids_sha256") == b.get("test_ids_sha256")


def save_split(split: pd.Series, path) -> None:
    """Write ``id,split`` (atomically)."""
    from utils.files import atomic_write_bytes

    atomic_write_bytes(path, split.rename("split").rename_axis("id").reset_index().to_csv(index=False).encode())


def load_split(path) -> pd.Series:
    """Read a split written by :func:`save_split`, checking its values."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)  # ids like "NA" stay strings
    if list(table.columns) != ["id", "split"] or not table["split"].isin(SPLITS).all():
        raise ValueError(f"{path} is not a split file (columns id,split with train/val/test).")
    return table.set_index("id")["split"]
