"""From a raw dataset to the files every model notebook reads.

Notebooks 01 and 02 run these steps one by one, with explanations; the benchmark
and the tests call :func:`prepare`, which runs them all. Both write the same files
to ``data/processed/<dataset>/``:

* ``movies.parquet``: ``id, title, text, genres`` (canonical, kept genres only),
  ``raw_genres`` and the dataset's metadata;
* ``genres.json``: the genres the models predict, in column order, and how they were chosen;
* ``split.csv``: ``id, split`` (train / val / test);
* ``clean.parquet``: ``id, clean_text, light_text`` (notebook 02).
"""
from __future__ import annotations

import io
import json
import time

import pandas as pd

from utils import config
from utils.data.datasets import GENRE_SOURCE, load_dataset
from utils.data.genres import genre_counts, map_genres, select_genres
from utils.files import atomic_write_bytes, atomic_write_json
from utils.data.splits import binarize, make_split, save_split
from utils.data.text import clean_text, light_text

DEFAULT_TOP_N = 20
DEFAULT_MIN_COUNT = 50


def label_movies(df: pd.DataFrame, source: str, verbose: bool = True) -> pd.DataFrame:
    """Map raw genres to canonical ones; keep the raw list as ``raw_genres``.

    Titles whose raw genres all fall outside the taxonomy are dropped and counted.
    """
    out = df.rename(columns={"genres": "raw_genres"})
    out.insert(3, "genres", out["raw_genres"].map(lambda g: map_genres(g, source)))
    keep = out["genres"].map(len) > 0
    if verbose:
        print(f"canonical genres: {len(df) - int(keep.sum()):,} of {len(df):,} titles have no genre "
              f"in the taxonomy and are left out")
    return out.loc[keep].reset_index(drop=True)


def restrict_to_genres(df: pd.DataFrame, genres: list[str], verbose: bool = True) -> pd.DataFrame:
    """Keep only ``genres`` in each title's list; drop titles left with none."""
    wanted = set(genres)
    out = df.copy()
    out["genres"] = out["genres"].map(lambda gs: [g for g in gs if g in wanted])
    keep = out["genres"].map(len) > 0
    if verbose:
        print(f"kept genres: {len(genres)}; {len(df) - int(keep.sum()):,} titles had none of them "
              f"and are left out; {int(keep.sum()):,} remain")
    return out.loc[keep].reset_index(drop=True)


def save_labelled(df: pd.DataFrame, genres: list[str], split: pd.Series, dataset: str,
                  settings: dict | None = None) -> None:
    """Write ``movies.parquet``, ``genres.json`` and ``split.csv`` (each atomically)."""
    folder = config.processed_dir(dataset)
    missing = set(df["id"]) - set(split.index)
    if missing:
        raise ValueError(f"{len(missing)} movies have no split; make the split from this table.")
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(folder / "movies.parquet", buf.getvalue())
    counts = genre_counts(df["genres"])
    atomic_write_json(folder / "genres.json", {"dataset": dataset, "genres": list(genres),
                                                "counts": {g: counts[g] for g in genres},
                                                "settings": settings or {}})
    save_split(split.loc[df["id"]], folder / "split.csv")


def clean_table(df: pd.DataFrame, verbose: bool = True) -> pd.DataFrame:
    """``id, clean_text, light_text`` for every movie (notebook 02's output)."""
    start = time.perf_counter()
    out = pd.DataFrame({"id": df["id"].astype(str),
                        "clean_text": df["text"].map(clean_text),
                        "light_text": df["text"].map(light_text)})
    if verbose:
        print(f"cleaned {len(out):,} plots in {time.perf_counter() - start:.1f} s")
    return out


def save_clean(clean: pd.DataFrame, dataset: str) -> None:
    buf = io.BytesIO()
    clean.to_parquet(buf, index=False)
    atomic_write_bytes(config.processed_dir(dataset) / "clean.parquet", buf.getvalue())


LABELLED_FILES = ("movies.parquet", "genres.json", "split.csv")  # notebook 01
CLEAN_FILES = ("clean.parquet",)                                  # notebook 02


def is_prepared(dataset: str | None = None, need_clean: bool = True) -> bool:
    """Whether notebook 01's files (and, with ``need_clean``, notebook 02's) exist."""
    folder = config.processed_dir(dataset)
    files = LABELLED_FILES + (CLEAN_FILES if need_clean else ())
    return all((folder / f).exists() for f in files)


def prepare(dataset: str | None = None, top_n: int | None = DEFAULT_TOP_N, min_count: int = DEFAULT_MIN_COUNT,
            seed: int | None = None, force: bool = False, verbose: bool = True, **load_kwargs) -> None:
    """Run notebooks 01-02's steps: load, label, select genres, split, clean, save."""
    dataset = dataset or config.dataset_name()
    if is_prepared(dataset) and not force:
        if verbose:
            print(f"{config.processed_dir(dataset)} is ready (force=True rebuilds it)")
        return
    seed = config.seed() if seed is None else seed
    raw = load_dataset(dataset, verbose=verbose, **load_kwargs)
    labelled = label_movies(raw, GENRE_SOURCE.get(dataset, "identity"), verbose=verbose)
    genres = select_genres(labelled["genres"], top_n=top_n, min_count=min_count)
    labelled = restrict_to_genres(labelled, genres, verbose=verbose)
    split = make_split(labelled["id"], binarize(labelled["genres"], genres), seed=seed)
    save_labelled(labelled, genres, split, dataset,
                  {"top_n": top_n, "min_count": min_count, "seed": seed})
    save_clean(clean_table(labelled, verbose=verbose), dataset)


def read_genres_file(dataset: str | None = None) -> dict:
    return json.loads((config.processed_dir(dataset) / "genres.json").read_text())


def ensure_prepared(dataset: str | None = None, need_clean: bool = True, verbose: bool = True,
                    **prepare_kwargs) -> None:
    """Build the processed files with :func:`prepare` when notebooks 01-02 have not run here.

    A fresh Colab machine, for example, starts without ``data/processed/``: rather than
    failing, the notebook runs the same steps notebooks 01-02 run, and says so.
    """
    dataset = dataset or config.dataset_name()
    if is_prepared(dataset, need_clean=need_clean):
        return
    if verbose:
        print(f"data/processed/{dataset}/ is incomplete (notebooks 01-02 have not run on this machine): "
              f"building it now with utils.data.pipeline.prepare({dataset!r}), the same steps they run.")
    prepare(dataset, force=True, verbose=verbose, **prepare_kwargs)
