"""From a raw dataset to the files every model notebook reads.

Notebooks 01 and 02 run these steps one by one, with explanations; the benchmark
and the tests call :func:`prepare`, which runs them all. Both write the same files
to ``data/processed/<dataset>/``:

* ``movies.parquet``: ``id, title, text, genres`` (canonical, kept genres only),
  ``raw_genres`` and the dataset's metadata;
* ``genres.json``: the genres the models predict, in column order, and how they were chosen;
* ``split.csv``: ``id, split`` (train / val / test);
* ``clean.parquet``: ``id, clean_text, light_text`` (notebook 02);
* ``manifest.json``: written LAST, after the files it lists: their sizes and SHA-256, the
  hash of the raw table they come from and the code version. :func:`is_prepared` trusts
  nothing else: a folder whose files do not match its manifest (a run killed half-way)
  is not prepared, so a mix of old and new files is never used.

:func:`prepare` builds the whole set in a temporary folder beside the target and swaps it
into place, so a forced re-prepare killed at any moment leaves either the old complete
set or no valid set (then the next run rebuilds).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from utils import config
from utils.data.datasets import genre_source, load_dataset
from utils.data.download import sha256
from utils.data.genres import genre_counts, map_genres, select_genres
from utils.files import atomic_write_bytes, atomic_write_json
from utils.data.splits import binarize, make_split, save_split
from utils.data.text import clean_text, light_text

DEFAULT_TOP_N = 20
DEFAULT_MIN_COUNT = 50
MANIFEST = "manifest.json"
PREPARE_VERSION = 2   # bump when the prepared files change meaning: older folders are rebuilt


def label_movies(df: pd.DataFrame, source: str, verbose: bool = True) -> pd.DataFrame:
    """Map raw genres to canonical ones; keep the raw list as ``raw_genres``.

    Titles whose raw genres all fall outside the taxonomy are dropped and counted. For
    your own CSV (``source="csv"``) every raw name is mapped, left out or kept as its
    own genre, and one table says which (:func:`utils.data.own_csv.genre_report`).
    """
    out = df.rename(columns={"genres": "raw_genres"})
    if source == "csv":
        from utils.data import own_csv

        mapped = own_csv.map_genres(df, df.attrs["csv_path"], verbose=verbose)
    else:
        mapped = out["raw_genres"].map(lambda g: map_genres(g, source))
    out.insert(3, "genres", mapped)
    keep = out["genres"].map(len) > 0
    if verbose:
        print(f"canonical genres: {len(df) - int(keep.sum()):,} of {len(df):,} titles have no genre "
              f"in the taxonomy and are left out")
    if len(df) and not keep.any():
        from utils.data.datasets import DatasetError

        raise DatasetError(f"None of the {len(df):,} titles keeps a genre: every genre name they carry is left out "
                           f"(labels of form rather than story, such as 'TV Movie' or 'Short Film', or names your "
                           f"mapping file maps to null). Check the genre column, or map its names with a mapping file "
                           f"(README, \"Your own CSV\").")
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


def source_hash(df: pd.DataFrame) -> str:
    """SHA-256 of the raw table a prepared set comes from (ids, texts, genres in order)."""
    h = hashlib.sha256()
    for row in df[["id", "text", "genres"]].itertuples(index=False):
        h.update(json.dumps([str(row.id), str(row.text), list(row.genres)], ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


def read_manifest(folder: Path) -> dict | None:
    """The folder's ``manifest.json``, or ``None`` when it is missing or unreadable."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("files"), dict) else None


def _write_manifest(folder: Path, names, source: str | None = None) -> None:
    """Record ``names`` (sizes and hashes, as they are now on disk) in the manifest, last."""
    old = read_manifest(folder) or {}
    files = {n: {"size": (folder / n).stat().st_size, "sha256": sha256(folder / n)} for n in names}
    atomic_write_json(folder / MANIFEST, {"version": PREPARE_VERSION, "source_sha256": source or old.get("source_sha256"),
                                          "written": time.strftime("%Y-%m-%d %H:%M:%S"), "files": files})


def save_labelled(df: pd.DataFrame, genres: list[str], split: pd.Series, dataset: str,
                  settings: dict | None = None, folder: Path | None = None, source: str | None = None) -> None:
    """Write ``movies.parquet``, ``genres.json`` and ``split.csv`` (each atomically), then the manifest.

    The manifest then lists only these three files: an older ``clean.parquet`` no longer
    counts until notebook 02 (:func:`save_clean`) cleans this very table.
    """
    folder = Path(folder or config.processed_dir(dataset))
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
    _write_manifest(folder, LABELLED_FILES, source or source_hash(df))


def clean_table(df: pd.DataFrame, verbose: bool = True) -> pd.DataFrame:
    """``id, clean_text, light_text`` for every movie (notebook 02's output)."""
    start = time.perf_counter()
    out = pd.DataFrame({"id": df["id"].astype(str),
                        "clean_text": df["text"].map(clean_text),
                        "light_text": df["text"].map(light_text)})
    if verbose:
        print(f"cleaned {len(out):,} plots in {time.perf_counter() - start:.1f} s")
    return out


def save_clean(clean: pd.DataFrame, dataset: str, folder: Path | None = None) -> None:
    """Write ``clean.parquet``, then add it to the manifest of the labelled files it cleans."""
    folder = Path(folder or config.processed_dir(dataset))
    if not files_match(folder, LABELLED_FILES):
        raise ValueError(f"{folder} has no complete set of notebook 01's files to clean: run notebook 01 "
                         f"(or utils.data.pipeline.prepare) first.")
    buf = io.BytesIO()
    clean.to_parquet(buf, index=False)
    atomic_write_bytes(folder / "clean.parquet", buf.getvalue())
    _write_manifest(folder, LABELLED_FILES + CLEAN_FILES)


LABELLED_FILES = ("movies.parquet", "genres.json", "split.csv")  # notebook 01
CLEAN_FILES = ("clean.parquet",)                                  # notebook 02


def files_match(folder: Path, names) -> bool:
    """Whether ``names`` in ``folder`` are exactly the files its manifest lists (version, sizes, SHA-256)."""
    manifest = read_manifest(folder)
    if manifest is None or manifest.get("version") != PREPARE_VERSION:
        return False
    for name in names:
        entry, path = manifest["files"].get(name), folder / name
        if not isinstance(entry, dict) or not path.is_file() or path.stat().st_size != entry.get("size"):
            return False
        if sha256(path) != entry.get("sha256"):
            return False
    return True


def is_prepared(dataset: str | None = None, need_clean: bool = True) -> bool:
    """Whether notebook 01's files (and, with ``need_clean``, notebook 02's) are complete and
    exactly those the manifest lists (sizes and hashes)."""
    return files_match(config.processed_dir(dataset), LABELLED_FILES + (CLEAN_FILES if need_clean else ()))


def _swap_into_place(tmp: Path, folder: Path) -> None:
    """Replace ``folder`` by the complete ``tmp``; caches kept in ``folder`` (embeddings, ...) move over."""
    if folder.exists():
        for entry in folder.iterdir():
            if entry.name not in (*LABELLED_FILES, *CLEAN_FILES, MANIFEST) and not (tmp / entry.name).exists():
                os.replace(entry, tmp / entry.name)
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
        os.replace(folder, old / folder.name)   # killed right after this: no valid set, the next run rebuilds
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, folder)


def default_min_count(n_titles: int) -> int:
    """Fewest titles a genre needs to be predicted: 50, or 1 % of a small dataset (at least 10)."""
    return min(DEFAULT_MIN_COUNT, max(10, n_titles // 100))


def check_dataset(dataset: str | None = None, top_n: int | None = DEFAULT_TOP_N, min_count: int | None = None,
                  verbose: bool = True) -> None:
    """Load, label and select the genres as :func:`prepare` does, writing nothing: a file the course cannot
    use fails here, with the error (:class:`utils.data.datasets.DatasetError`) that ``prepare`` and notebook
    01 would give later. ``python -m utils.run_course`` calls it before the first notebook."""
    dataset = config.resolve_dataset(dataset) if dataset else config.dataset_name()
    raw = load_dataset(dataset, verbose=verbose)
    labelled = label_movies(raw, genre_source(dataset), verbose=False)
    min_count = default_min_count(len(labelled)) if min_count is None else min_count
    select_genres(labelled["genres"], top_n=top_n, min_count=min_count)


def prepare(dataset: str | None = None, top_n: int | None = DEFAULT_TOP_N, min_count: int | None = None,
            seed: int | None = None, force: bool = False, verbose: bool = True, **load_kwargs) -> None:
    """Run notebooks 01-02's steps: load, label, select genres, split, clean, save (all or nothing)."""
    dataset = config.resolve_dataset(dataset) if dataset else config.dataset_name()
    folder = config.processed_dir(dataset)
    if is_prepared(dataset) and not force:
        if verbose:
            print(f"{folder} is ready (force=True rebuilds it)")
        return
    seed = config.seed() if seed is None else seed
    raw = load_dataset(dataset, verbose=verbose, **load_kwargs)
    labelled = label_movies(raw, genre_source(dataset), verbose=verbose)
    min_count = default_min_count(len(labelled)) if min_count is None else min_count
    genres = select_genres(labelled["genres"], top_n=top_n, min_count=min_count)
    labelled = restrict_to_genres(labelled, genres, verbose=verbose)
    split = make_split(labelled["id"], binarize(labelled["genres"], genres), seed=seed)
    folder.parent.mkdir(parents=True, exist_ok=True)
    for stale in folder.parent.glob(f".{dataset}.tmp-*"):   # left by an earlier run that was killed
        shutil.rmtree(stale, ignore_errors=True)
    for stale in folder.parent.glob(f".{dataset}.old-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dataset}.tmp-", dir=folder.parent))
    try:
        save_labelled(labelled, genres, split, dataset, {"top_n": top_n, "min_count": min_count, "seed": seed},
                      folder=tmp, source=source_hash(raw))
        save_clean(clean_table(labelled, verbose=verbose), dataset, folder=tmp)
        _swap_into_place(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_genres_file(dataset: str | None = None) -> dict:
    return json.loads((config.processed_dir(dataset) / "genres.json").read_text())


def ensure_prepared(dataset: str | None = None, need_clean: bool = True, verbose: bool = True,
                    **prepare_kwargs) -> None:
    """Build the processed files with :func:`prepare` when notebooks 01-02 have not run here.

    A fresh Colab machine, for example, starts without ``data/processed/``: rather than
    failing, the notebook runs the same steps notebooks 01-02 run, and says so.
    """
    dataset = config.resolve_dataset(dataset) if dataset else config.dataset_name()
    if is_prepared(dataset, need_clean=need_clean):
        return
    if verbose:
        print(f"data/processed/{dataset}/ is incomplete (notebooks 01-02 have not run on this machine): "
              f"building it now with utils.data.pipeline.prepare({dataset!r}), the same steps they run.")
    prepare(dataset, force=True, verbose=verbose, **prepare_kwargs)
