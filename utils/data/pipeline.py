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
into place, so a forced re-prepare killed at any moment leaves the old complete set, or the
new one, never a mix; the caches kept in the folder (``word2vec/``, ``embeddings/``) survive
any kill too (:func:`recover`, run by the next start, finishes a swap that was cut short).
Preparations of one dataset never overlap: they take a file lock (:class:`utils.files.FileLock`).

**One rule, wherever preparation starts.** Notebook 01, :func:`prepare` (the benchmark, a
fresh Colab machine) and :func:`ensure_prepared` all choose the genres with
:func:`preparation_settings`: at most ``DEFAULT_TOP_N`` genres, each with at least
:func:`default_min_count` titles. The settings are saved in ``genres.json`` (and so vouched for
by the manifest); a folder prepared with other settings is prepared again, with a message.
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
from utils.files import FileLock, atomic_write_bytes, atomic_write_json
from utils.data.splits import binarize, make_split, save_split
from utils.data.text import clean_text, light_text

DEFAULT_TOP_N = 20
DEFAULT_MIN_COUNT = 50
MANIFEST = "manifest.json"
PREPARE_VERSION = 2   # bump when the prepared files change meaning: older folders are rebuilt


def default_min_count(n_titles: int) -> int:
    """Fewest titles a genre needs to be predicted: 50, or 1 % of a small dataset (at least 10).

    ``n_titles`` is the number of titles with at least one canonical genre (the output of
    :func:`label_movies`). CMU and Netflix get 50; a CSV of 1,000 films gets 10.
    """
    return min(DEFAULT_MIN_COUNT, max(10, n_titles // 100))


MIN_COUNT_RULE = f"min({DEFAULT_MIN_COUNT}, max(10, titles // 100))"


def preparation_settings(labelled, top_n: int | None = DEFAULT_TOP_N, min_count: int | None = None,
                         seed: int | None = None) -> dict:
    """The settings that choose the genres and the split of ``labelled`` (:func:`label_movies`'s table).

    The course's one rule, used by notebook 01 and by :func:`prepare` alike: at most ``top_n``
    genres, each with at least ``min_count`` titles, :func:`default_min_count` unless given.
    ``labelled_titles`` is recorded so that the rule can be checked later (:func:`settings_problem`).
    """
    n = len(labelled)
    return {"top_n": top_n, "min_count": default_min_count(n) if min_count is None else int(min_count),
            "seed": config.seed() if seed is None else int(seed), "labelled_titles": n}


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
    counts until notebook 02 (:func:`save_clean`) cleans this very table. ``settings`` is
    :func:`preparation_settings`' dict: it is the folder's identity (:func:`settings_problem`).
    """
    if folder is None:                 # the dataset's own folder (notebook 01): not while a prepare() runs
        with _lock(dataset):
            recover(dataset)
            return save_labelled(df, genres, split, dataset, settings, config.processed_dir(dataset), source)
    folder = Path(folder)
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
    if folder is None:                 # the dataset's own folder (notebook 02): not while a prepare() runs
        with _lock(dataset):
            recover(dataset)
            return save_clean(clean, dataset, config.processed_dir(dataset))
    folder = Path(folder)
    if not files_match(folder, LABELLED_FILES):
        raise ValueError(f"{folder} has no complete set of notebook 01's files to clean: run notebook 01 "
                         f"(or utils.data.pipeline.prepare) first.")
    buf = io.BytesIO()
    clean.to_parquet(buf, index=False)
    atomic_write_bytes(folder / "clean.parquet", buf.getvalue())
    _write_manifest(folder, LABELLED_FILES + CLEAN_FILES)


LABELLED_FILES = ("movies.parquet", "genres.json", "split.csv")  # notebook 01
CLEAN_FILES = ("clean.parquet",)                                  # notebook 02


def file_problems(folder: Path, names) -> dict[str, str]:
    """What is wrong with each of ``names`` in ``folder`` (``{}`` when all are as the manifest lists them).

    ``"missing"``, or ``"damaged (...)"`` when the file is there but its size or SHA-256 is not the
    one its manifest recorded (cut short by a killed run or a full disk, or edited since), or a
    reason why no manifest vouches for it.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    out = {}
    for name in names:
        path = folder / name
        entry = (manifest or {}).get("files", {}).get(name)
        if not path.is_file():
            out[name] = "missing"
        elif manifest is None:
            out[name] = f"not vouched for ({MANIFEST} is missing or unreadable: a run killed before it ended?)"
        elif manifest.get("version") != PREPARE_VERSION:
            out[name] = "written by an older version of the course"
        elif not isinstance(entry, dict):
            out[name] = f"not listed in {MANIFEST} (written after it, or by another run)"
        elif path.stat().st_size != entry.get("size"):
            out[name] = (f"damaged ({path.stat().st_size:,} bytes, {MANIFEST} says {entry.get('size'):,}: cut short "
                         f"by a killed run or a full disk?)" if isinstance(entry.get("size"), int) else
                         f"damaged (its size is not the one {MANIFEST} records)")
        elif sha256(path) != entry.get("sha256"):
            out[name] = f"damaged (its content differs from the SHA-256 that {MANIFEST} records: changed since it was written)"
    return out


def files_match(folder: Path, names) -> bool:
    """Whether ``names`` in ``folder`` are exactly the files its manifest lists (version, sizes, SHA-256)."""
    return not file_problems(folder, names)


def is_prepared(dataset: str | None = None, need_clean: bool = True) -> bool:
    """Whether notebook 01's files (and, with ``need_clean``, notebook 02's) are complete and
    exactly those the manifest lists (sizes and hashes)."""
    return files_match(config.processed_dir(dataset), LABELLED_FILES + (CLEAN_FILES if need_clean else ()))


def settings_problem(dataset: str | None = None, top_n: int | None = DEFAULT_TOP_N,
                     min_count: int | None = None) -> str | None:
    """Why the prepared genres of ``dataset`` were not chosen with these settings; ``None`` when they were.

    ``min_count=None`` means the course's rule (:func:`default_min_count` of the labelled titles
    the folder records). The seed is not checked here: a run records the split it used itself.
    """
    try:
        have = read_genres_file(dataset).get("settings") or {}
    except (OSError, ValueError, AttributeError):
        return "has no readable genres.json"
    n = have.get("labelled_titles")
    want = min_count if min_count is not None else (default_min_count(n) if isinstance(n, int) else None)
    if have.get("top_n") == top_n and want is not None and have.get("min_count") == want:
        return None
    rule = (f"min_count={min_count}" if min_count is not None else
            f"the course's rule, min_count = {MIN_COUNT_RULE}" + (f" = {want}" if want is not None else ""))
    return (f"was prepared with top_n={have.get('top_n')}, min_count={have.get('min_count')}"
            + ("" if isinstance(n, int) else " (without a record of the rule: an older version, or another tool)")
            + f", not with top_n={top_n} and {rule}")


def _lock(dataset: str, verbose: bool = True) -> FileLock:
    """The lock that serialises every preparation of ``dataset`` (processes and notebooks)."""
    folder = config.processed_dir(dataset)
    return FileLock(folder.parent / f".{folder.name}.prepare.lock", purpose=f"the preparation of {folder.name}",
                    wait=True, log=(lambda msg: print(msg, flush=True)) if verbose else (lambda *_: None))


def _move_caches(src: Path, dst: Path) -> None:
    """Move what ``src`` holds besides the prepared files (caches) into ``dst``, keeping what ``dst`` has."""
    for entry in list(src.iterdir()):
        if entry.name in (*LABELLED_FILES, *CLEAN_FILES, MANIFEST):
            continue
        target = dst / entry.name
        if not target.exists():
            os.replace(entry, target)
        elif entry.is_dir() and target.is_dir():
            _move_caches(entry, target)


def _leftovers(folder: Path) -> list[Path]:
    return sorted(folder.parent.glob(f".{folder.name}.old-*"))


def recover(dataset: str | None = None, verbose: bool = True) -> None:
    """Finish a swap that a killed :func:`prepare` left half done (call it with the preparation lock held).

    Killed between its two renames, the complete old folder waits in ``.<dataset>.old-*/``: it is put
    back. Killed after them, the new folder is in place and the caches still in the old one move over.
    Temporary folders of killed runs (``.<dataset>.tmp-*``) are removed.
    """
    folder = config.processed_dir(dataset)
    for old in _leftovers(folder):
        kept = old / folder.name
        if kept.is_dir():
            if not folder.exists():
                os.replace(kept, folder)
                if verbose:
                    print(f"{folder.name}: a preparation was killed half-way; the folder as it was before is back.")
            else:
                _move_caches(kept, folder)
        shutil.rmtree(old, ignore_errors=True)
    for stale in folder.parent.glob(f".{folder.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _swap_into_place(tmp: Path, folder: Path) -> None:
    """Replace ``folder`` by the complete ``tmp``; caches kept in ``folder`` (word2vec/, embeddings/, ...) move over.

    Crash-safe: until the new set is in place the old folder exists, whole, either at its place or
    in ``.<name>.old-*/`` (from where :func:`recover` puts it back); the caches move only after.
    """
    if not folder.exists():
        os.replace(tmp, folder)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
    os.replace(folder, old / folder.name)   # killed here: recover() puts the old folder back
    os.replace(tmp, folder)                 # killed after this: recover() moves the caches over
    _move_caches(old / folder.name, folder)
    shutil.rmtree(old, ignore_errors=True)


def check_dataset(dataset: str | None = None, top_n: int | None = DEFAULT_TOP_N, min_count: int | None = None,
                  verbose: bool = True) -> None:
    """Load, label and select the genres as :func:`prepare` does, writing nothing: a file the course cannot
    use fails here, with the error (:class:`utils.data.datasets.DatasetError`) that ``prepare`` and notebook
    01 would give later. ``python -m utils.run_course`` calls it before the first notebook."""
    dataset = config.resolve_dataset(dataset) if dataset else config.dataset_name()
    raw = load_dataset(dataset, verbose=verbose)
    labelled = label_movies(raw, genre_source(dataset), verbose=False)
    settings = preparation_settings(labelled, top_n=top_n, min_count=min_count)
    select_genres(labelled["genres"], top_n=settings["top_n"], min_count=settings["min_count"])


def prepare(dataset: str | None = None, top_n: int | None = DEFAULT_TOP_N, min_count: int | None = None,
            seed: int | None = None, force: bool = False, verbose: bool = True, **load_kwargs) -> None:
    """Run notebooks 01-02's steps: load, label, select genres, split, clean, save (all or nothing).

    A complete folder prepared with these settings is kept unless ``force``; one prepared with other
    settings (:func:`settings_problem`) is prepared again. One preparation of a dataset at a time:
    a second waits for the first (file lock).
    """
    dataset = config.resolve_dataset(dataset) if dataset else config.dataset_name()
    folder = config.processed_dir(dataset)
    with _lock(dataset, verbose):
        recover(dataset, verbose)
        if is_prepared(dataset) and not force:
            problem = settings_problem(dataset, top_n, min_count)
            if problem is None:
                if verbose:
                    print(f"{folder} is ready (force=True rebuilds it)")
                return
            if verbose:
                print(f"{config.display_path(folder)} {problem}: preparing it again.")
        raw = load_dataset(dataset, verbose=verbose, **load_kwargs)
        labelled = label_movies(raw, genre_source(dataset), verbose=verbose)
        settings = preparation_settings(labelled, top_n, min_count, seed)
        genres = select_genres(labelled["genres"], top_n=top_n, min_count=settings["min_count"])
        labelled = restrict_to_genres(labelled, genres, verbose=verbose)
        split = make_split(labelled["id"], binarize(labelled["genres"], genres), seed=settings["seed"])
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dataset}.tmp-", dir=folder.parent))
        try:
            save_labelled(labelled, genres, split, dataset, settings, folder=tmp, source=source_hash(raw))
            save_clean(clean_table(labelled, verbose=verbose), dataset, folder=tmp)
            _swap_into_place(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def read_genres_file(dataset: str | None = None) -> dict:
    return json.loads((config.processed_dir(dataset) / "genres.json").read_text())


def needs_preparing(dataset: str | None = None, need_clean: bool = True, top_n: int | None = DEFAULT_TOP_N,
                    min_count: int | None = None, **_) -> str | None:
    """Why ``dataset``'s folder must be (re)built before use, or ``None`` when it is ready as it is."""
    dataset = config.resolve_dataset(dataset) if dataset else config.dataset_name()
    folder = config.processed_dir(dataset)
    if _leftovers(folder):
        return "was being replaced by a preparation that was killed"
    problems = file_problems(folder, LABELLED_FILES + (CLEAN_FILES if need_clean else ()))
    if problems:
        if all(p == "missing" for p in problems.values()) and not folder.exists():
            return "does not exist yet (notebooks 01-02 have not run on this machine)"
        return "is incomplete: " + "; ".join(f"{name} is {p}" for name, p in problems.items())
    return settings_problem(dataset, top_n, min_count)


def ensure_prepared(dataset: str | None = None, need_clean: bool = True, verbose: bool = True,
                    **prepare_kwargs) -> None:
    """Build the processed files with :func:`prepare` when notebooks 01-02 have not run here.

    A fresh Colab machine, for example, starts without ``data/processed/``: rather than
    failing, the notebook runs the same steps notebooks 01-02 run, and says so. A folder
    prepared with other settings than the course's rule is prepared again, and one left
    half-replaced by a killed preparation is put right (:func:`recover`).
    """
    dataset = config.resolve_dataset(dataset) if dataset else config.dataset_name()
    if needs_preparing(dataset, need_clean, **prepare_kwargs) is None:
        return
    with _lock(dataset, verbose):                      # another process may be preparing it right now
        recover(dataset, verbose)
        reason = needs_preparing(dataset, need_clean, **prepare_kwargs)
        if reason is None:
            return
        if verbose:
            print(f"data/processed/{dataset}/ {reason}: building it now with "
                  f"utils.data.pipeline.prepare({dataset!r}), the same steps notebooks 01-02 run.")
        prepare(dataset, force=True, verbose=verbose, **prepare_kwargs)
