"""Loading the course's datasets into one common table.

Every loader returns a ``pandas.DataFrame`` with the columns ``id`` (str),
``title``, ``text`` (the plot), ``genres`` (list of raw genre names) plus the
dataset's useful metadata. Use :func:`load_dataset`::

    load_dataset("cmu")        # CMU Movie Summary Corpus (downloaded and cached)
    load_dataset("netflix")    # Kaggle "Netflix Movies and TV Shows" (netflix_titles.csv)
    load_dataset("tmdb")       # Kaggle "The Movies Dataset" (movies_metadata.csv): TMDB overviews
    load_dataset("csv", path="my.csv", text_column="plot", genres_column="genres", genre_sep="|")

Files are looked for in ``COURSE_DATA_DIR`` (if set), then ``data/raw/``; the CMU
archive is downloaded into ``data/raw/`` when it is in neither.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd

from utils import config
from utils.data.download import ArchiveError, DownloadError, download, git_blob_sha1, safe_extract

CMU_URL = "http://www.cs.cmu.edu/~ark/personas/data/MovieSummaries.tar.gz"
CMU_FOLDER = "MovieSummaries"
# git blob SHA-1 of the original archive's members (see ../shared/README.md)
CMU_MEMBERS = {
    "movie.metadata.tsv": "3a047d6cd6b5bb551de35ac3e4a003b92a3ea905",
    "plot_summaries.txt": "626050f66b20018f983dcfec0ca5dd89370d0b8a",
    "character.metadata.tsv": "77a7562afaf7d88a16d3e9f33f2f19f3a6820957",
    "README.txt": "12f5982d66a55f66320d6f1fcb2ae2b8b26781c6",
}
CMU_METADATA_COLUMNS = ["id", "freebase_id", "title", "release_date", "box_office", "runtime",
                        "languages", "countries", "genres"]

NETFLIX_FILE = "netflix_titles.csv"
NETFLIX_COLUMNS = ["show_id", "type", "title", "director", "cast", "country", "date_added",
                   "release_year", "rating", "duration", "listed_in", "description"]
NETFLIX_HELP = (
    "The Netflix file cannot be downloaded without a Kaggle login. Get netflix_titles.csv from "
    "https://www.kaggle.com/datasets/shivamb/netflix-shows (Download, unzip) and put it at "
    "data/raw/netflix/netflix_titles.csv, or point COURSE_DATA_DIR at a folder that has "
    "netflix/netflix_titles.csv."
)

TMDB_FILE = "movies_metadata.csv"
TMDB_COLUMNS = ["adult", "belongs_to_collection", "budget", "genres", "homepage", "id", "imdb_id",
                "original_language", "original_title", "overview", "popularity", "poster_path",
                "production_companies", "production_countries", "release_date", "revenue", "runtime",
                "spoken_languages", "status", "tagline", "title", "video", "vote_average", "vote_count"]
TMDB_HELP = (
    "The TMDB file cannot be downloaded without a Kaggle login. Get movies_metadata.csv from "
    "https://www.kaggle.com/datasets/rounakbanik/the-movies-dataset (Download, unzip; about 34 MB) and put it "
    "at data/raw/tmdb/movies_metadata.csv, or point COURSE_DATA_DIR at a folder that has "
    "tmdb/movies_metadata.csv."
)
# what TMDB writes where a film has no overview: no text to learn from
TMDB_NO_OVERVIEW = re.compile(r"\s*no\s+(movie\s+)?overview(\s+(found|available|yet))?\.?\s*", re.IGNORECASE)

COMMON_COLUMNS = ["id", "title", "text", "genres"]


class DatasetError(ValueError):
    """A dataset that is unknown, missing, corrupt or not in the expected format."""


# Errors that say the DATA is the problem (a bad or missing file, a failed download), not the code: the
# commands print their message alone, with no traceback, and say so (`utils.benchmark`, `utils.run_course`).
DATA_ERROR_NAMES = ("DatasetError", "CsvFormatError", "ArchiveError", "DownloadError")


def data_errors() -> tuple[type[Exception], ...]:
    """The exception classes of :data:`DATA_ERROR_NAMES`, to catch."""
    from utils.data.own_csv import CsvFormatError

    return DatasetError, CsvFormatError, ArchiveError, DownloadError


# --------------------------------------------------------------------------- helpers
def find_file(*candidates: str) -> Path | None:
    """First existing ``data_dir / candidate`` over :func:`config.data_dirs`."""
    for folder in config.data_dirs():
        for name in candidates:
            path = folder / name
            if path.is_file():
                return path
    return None


def _report(df: pd.DataFrame, name: str, dropped: dict[str, int], verbose: bool) -> pd.DataFrame:
    df.attrs["dataset"] = name
    df.attrs["dropped"] = dropped
    if verbose:
        lost = ", ".join(f"{n:,} {why}" for why, n in dropped.items() if n) or "none"
        print(f"{name}: {len(df):,} titles with text and genres (left out: {lost})")
    return df


def _finish(df: pd.DataFrame, name: str, verbose: bool, dropped: dict[str, int] | None = None) -> pd.DataFrame:
    """Drop rows with empty text or no genres, counting them; common columns first."""
    dropped = dict(dropped or {})
    text = df["text"].fillna("").astype(str).str.strip()
    no_text = text.eq("")
    no_genres = df["genres"].map(len).eq(0)
    dropped["without text"] = dropped.get("without text", 0) + int(no_text.sum())
    dropped["without genres"] = dropped.get("without genres", 0) + int((no_genres & ~no_text).sum())
    df = df.loc[~no_text & ~no_genres].copy()
    df["text"] = text[df.index]
    df["id"] = df["id"].astype(str)
    if df["id"].duplicated().any():
        dup = df.loc[df["id"].duplicated(), "id"].iloc[0]
        raise DatasetError(f"{name}: id {dup!r} appears more than once; ids must be unique.")
    attrs = dict(df.attrs)
    df = df[COMMON_COLUMNS + [c for c in df.columns if c not in COMMON_COLUMNS]].reset_index(drop=True)
    df.attrs.update(attrs)
    return _report(df, name, dropped, verbose)


def _names(freebase_json: str) -> list[str]:
    """Names from a Freebase JSON object ``{"/m/..": "Drama", ...}`` ('' -> [])."""
    if not isinstance(freebase_json, str) or not freebase_json.strip():
        return []
    return list(json.loads(freebase_json).values())


# --------------------------------------------------------------------------- CMU
def _cmu_files(download_if_missing: bool, url: str, quiet: bool) -> tuple[Path, Path]:
    meta = find_file(f"{CMU_FOLDER}/movie.metadata.tsv", f"{CMU_FOLDER}/movie.metadata.tsv.gz")
    plots = find_file(f"{CMU_FOLDER}/plot_summaries.txt", f"{CMU_FOLDER}/plot_summaries.txt.gz")
    if meta and plots:
        return meta, plots
    cache = config.cache_dir()
    extracted = cache / CMU_FOLDER
    if (extracted / "movie.metadata.tsv").is_file() and (extracted / "plot_summaries.txt").is_file():
        return extracted / "movie.metadata.tsv", extracted / "plot_summaries.txt"
    if not download_if_missing:
        raise DatasetError(f"The CMU plot summaries are not in {[str(d) for d in config.data_dirs()]}; "
                           f"call with download=True or get {url} by hand.")
    return download_cmu(url=url, quiet=quiet)


def download_cmu(url: str = CMU_URL, quiet: bool = False) -> tuple[Path, Path]:
    """Download, safely extract and verify the CMU archive into the cache folder.

    Returns the paths of ``movie.metadata.tsv`` and ``plot_summaries.txt``.
    """
    cache = config.cache_dir()
    archive = cache / "MovieSummaries.tar.gz"
    if not archive.exists():
        try:
            download(url, archive, quiet=quiet)
        except DownloadError as err:
            raise DownloadError(f"{err}\nOffline? The course also runs on the Netflix file: set "
                                f"COURSE_DATASET=netflix.") from None
    target = cache / CMU_FOLDER
    try:
        safe_extract(archive, target, members=set(CMU_MEMBERS))
        verify_cmu(target)
    except ArchiveError:
        archive.unlink(missing_ok=True)  # a bad archive must not be reused next time
        raise
    return target / "movie.metadata.tsv", target / "plot_summaries.txt"


def verify_cmu(folder: Path, members: dict[str, str] | None = None) -> None:
    """Check the extracted files against the known hashes; remove them if they differ."""
    members = CMU_MEMBERS if members is None else members
    problems = []
    for name, expected in members.items():
        path = Path(folder) / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif git_blob_sha1(path) != expected:
            problems.append(f"{name} differs from the published file")
    if problems:
        for name in members:
            (Path(folder) / name).unlink(missing_ok=True)
        raise ArchiveError("The CMU archive is not the published one: " + "; ".join(problems) +
                           ". It was deleted; run again to download a fresh copy.")


def read_cmu_metadata(path: Path) -> pd.DataFrame:
    """``movie.metadata.tsv`` (or ``.gz``) as a table with genre/language/country lists."""
    try:
        meta = pd.read_csv(path, sep="\t", header=None, names=CMU_METADATA_COLUMNS, dtype=str,
                           quoting=3, keep_default_na=False, on_bad_lines="error")
        for col in ("genres", "languages", "countries"):
            meta[col] = meta[col].map(_names)
    except (pd.errors.ParserError, json.JSONDecodeError, UnicodeDecodeError, EOFError, OSError) as err:
        raise DatasetError(f"{path} is not a valid CMU movie.metadata.tsv ({err}). "
                           f"Delete it and download the archive again.") from None
    meta["year"] = pd.to_numeric(meta["release_date"].str[:4], errors="coerce").astype("Int64")
    meta["box_office"] = pd.to_numeric(meta["box_office"], errors="coerce")
    meta["runtime"] = pd.to_numeric(meta["runtime"], errors="coerce")
    return meta


def read_cmu_plots(path: Path) -> pd.DataFrame:
    """``plot_summaries.txt``: one ``<wikipedia id> TAB <summary>`` per line."""
    import gzip

    rows = []
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line:
                    continue
                movie_id, sep, summary = line.partition("\t")
                if not sep or not movie_id.strip().isdigit():
                    raise DatasetError(f"{path}, line {n}: expected '<wikipedia id>\\t<summary>', got "
                                       f"{line[:60]!r}. Delete the file and download the archive again.")
                rows.append((movie_id.strip(), summary))
    except (UnicodeDecodeError, EOFError, OSError) as err:
        raise DatasetError(f"{path} could not be read ({err}); delete it and download again.") from None
    return pd.DataFrame(rows, columns=["id", "text"])


def load_cmu(download: bool = True, url: str = CMU_URL, verbose: bool = True, quiet: bool = False) -> pd.DataFrame:
    """The CMU Movie Summary Corpus: 42,306 Wikipedia plots joined to Freebase metadata."""
    meta_path, plots_path = _cmu_files(download, url, quiet)
    meta = read_cmu_metadata(meta_path)
    plots = read_cmu_plots(plots_path).drop_duplicates("id")
    df = plots.merge(meta, on="id", how="left", indicator=True)
    no_meta = df["_merge"].eq("left_only")
    df = df.loc[~no_meta].drop(columns="_merge")
    dropped = {"plots without metadata": int(no_meta.sum())}
    df.attrs["metadata_without_plot"] = int(len(meta) - len(df))
    out = _finish(df, "cmu", verbose=False, dropped=dropped)
    out.attrs["metadata_without_plot"] = df.attrs["metadata_without_plot"]
    if verbose:
        print(f"cmu: {len(meta):,} movies in the metadata, {len(meta) - df.attrs['metadata_without_plot']:,} "
              f"with a plot; kept {len(out):,} with plot and genres "
              f"(left out: {out.attrs['dropped']['without genres']:,} without genres, "
              f"{out.attrs['dropped']['without text']:,} with an empty plot, "
              f"{dropped['plots without metadata']:,} plots without metadata)")
    return out


# --------------------------------------------------------------------------- Netflix
def netflix_path() -> Path:
    path = find_file(f"netflix/{NETFLIX_FILE}", NETFLIX_FILE)
    if path is None:
        raise DatasetError(f"{NETFLIX_FILE} not found in {[str(d) for d in config.data_dirs()]}. {NETFLIX_HELP}")
    return path


def load_netflix(path: Path | None = None, verbose: bool = True) -> pd.DataFrame:
    """The Kaggle Netflix titles: ``description`` as text, ``listed_in`` as genres."""
    path = Path(path) if path else netflix_path()
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise DatasetError(f"{path} is not a readable CSV ({err}). {NETFLIX_HELP}") from None
    missing = [c for c in NETFLIX_COLUMNS if c not in raw.columns]
    if missing:
        raise DatasetError(f"{path} lacks the Kaggle columns {missing}; is it netflix_titles.csv? {NETFLIX_HELP}")
    df = pd.DataFrame({
        "id": raw["show_id"],
        "title": raw["title"],
        "text": raw["description"],
        "genres": raw["listed_in"].map(lambda s: [g.strip() for g in s.split(",") if g.strip()]),
        "type": raw["type"],
        "year": pd.to_numeric(raw["release_year"], errors="coerce").astype("Int64"),
        "countries": raw["country"].map(lambda s: [c.strip() for c in s.split(",") if c.strip()]),
        "director": raw["director"],
        "rating": raw["rating"],
        "duration": raw["duration"],
        "date_added": raw["date_added"].str.strip(),
    })
    return _finish(df, "netflix", verbose)


# --------------------------------------------------------------------------- TMDB
def tmdb_path() -> Path:
    path = find_file(f"tmdb/{TMDB_FILE}", TMDB_FILE)
    if path is None:
        raise DatasetError(f"{TMDB_FILE} not found in {[str(d) for d in config.data_dirs()]}. {TMDB_HELP}")
    return path


def _literal_names(cell: str) -> list[str] | None:
    """The names of a TMDB list cell (``"[{'id': 18, 'name': 'Drama'}]"``); ``None`` when it is not such a list.

    Parsed by :func:`utils.data.own_csv.parse_genres` (JSON, else :func:`ast.literal_eval`: literals only,
    never code), so ``"[__import__('os').system('...')]"`` is a malformed cell, not a command.
    """
    from utils.data.own_csv import CsvFormatError, parse_genres

    cell = cell.strip()
    if not cell:
        return []
    if not (cell.startswith("[") and cell.endswith("]")):
        return None
    try:
        return parse_genres(cell, None, "tmdb")
    except CsvFormatError:
        return None


def read_tmdb_rows(path: Path) -> tuple[list[dict], dict[str, int], dict[str, list[str]]]:
    """The well-formed rows of ``movies_metadata.csv`` as dicts, what was skipped, and examples of it.

    The real file has three broken records whose overview was cut by a bare line break: the first
    part is a row that ends early, the rest a row whose columns are shifted (a date in ``id``,
    production companies in ``genres``). A row is skipped and counted, never parsed, when it has
    another number of fields than the header, an ``id`` that is not a number, or a genre cell
    that is not a list of ``{'id': ..., 'name': ...}`` dicts; a repeated id (the full file has a
    few dozen) keeps its first row.
    """
    skipped = {"malformed rows": 0, "genres not a list of names": 0, "repeated ids": 0}
    examples: dict[str, list[str]] = {"malformed rows": [], "genres not a list of names": []}
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                raise DatasetError(f"{path} is empty. {TMDB_HELP}")
            missing = [c for c in TMDB_COLUMNS if c not in header]
            if missing:
                raise DatasetError(f"{path} lacks the Kaggle columns {missing}; is it movies_metadata.csv? {TMDB_HELP}")
            col = {c: header.index(c) for c in TMDB_COLUMNS}
            rows, seen = [], set()
            for n, fields in enumerate(reader, 1):
                if not any(v.strip() for v in fields):
                    continue
                movie_id = fields[col["id"]].strip() if len(fields) > col["id"] else ""
                if len(fields) != len(header) or not re.fullmatch(r"[0-9]{1,12}", movie_id):
                    skipped["malformed rows"] += 1
                    examples["malformed rows"].append(f"record {n}: {len(fields)} of {len(header)} fields, "
                                                      f"id {movie_id[:20]!r}")
                    continue
                genres = _literal_names(fields[col["genres"]])
                if genres is None:
                    skipped["genres not a list of names"] += 1
                    examples["genres not a list of names"].append(
                        f"record {n} (id {movie_id}): genres {fields[col['genres']][:40]!r}")
                    continue
                if movie_id in seen:
                    skipped["repeated ids"] += 1
                    continue
                seen.add(movie_id)
                row = {c: fields[i] for c, i in col.items()}
                row["genres"] = genres
                rows.append(row)
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path} is not UTF-8 ({err.reason} at byte {err.start}), as the Kaggle file is: was it "
                           f"saved again by another program? {TMDB_HELP}") from None
    except csv.Error as err:
        raise DatasetError(f"{path} is not a readable CSV ({err}). {TMDB_HELP}") from None
    return rows, skipped, examples


def load_tmdb(path: Path | None = None, verbose: bool = True) -> pd.DataFrame:
    """TMDB's ``movies_metadata.csv`` (Kaggle "The Movies Dataset"): ``overview`` as text, ``title``, and
    the names of the ``genres`` list; malformed rows are skipped and counted (:func:`read_tmdb_rows`)."""
    path = Path(path) if path else tmdb_path()
    rows, skipped, examples = read_tmdb_rows(path)
    raw = pd.DataFrame(rows, columns=TMDB_COLUMNS)
    placeholder = raw["overview"].map(lambda t: bool(TMDB_NO_OVERVIEW.fullmatch(t)))
    raw = raw.loc[~placeholder].reset_index(drop=True)
    countries = raw["production_countries"].map(_literal_names)
    df = pd.DataFrame({
        "id": raw["id"].str.strip(),
        "title": raw["title"].str.strip(),
        "text": raw["overview"],
        "genres": raw["genres"],
        "year": pd.to_numeric(raw["release_date"].str[:4], errors="coerce").astype("Int64"),
        "language": raw["original_language"],
        "countries": countries.map(lambda c: c or []),
        "runtime": pd.to_numeric(raw["runtime"], errors="coerce"),
        "vote_average": pd.to_numeric(raw["vote_average"], errors="coerce"),
        "vote_count": pd.to_numeric(raw["vote_count"], errors="coerce").astype("Int64"),
        "imdb_id": raw["imdb_id"],
    })
    skipped["placeholder overview ('No overview found.')"] = int(placeholder.sum())
    if verbose and any(examples.values()):
        parts = [f"{len(found):,} {what} (e.g. {'; '.join(found[:2])})" for what, found in
                 (("malformed rows", examples["malformed rows"]),
                  ("rows whose genres are not a list of names", examples["genres not a list of names"])) if found]
        print(f"tmdb: skipped {' and '.join(parts)} in {path.name}")
    out = _finish(df, "tmdb", verbose, dropped=skipped)
    out.attrs["skipped_examples"] = examples
    return out


# --------------------------------------------------------------------------- your own CSV
def _split_genres(value, sep: str) -> list[str]:
    """One genre cell: names split on ``sep``, or a JSON / Python-literal list (:func:`own_csv.parse_genres`)."""
    from utils.data.own_csv import parse_genres

    return parse_genres(value, sep, "a genre cell")


def load_csv(path, text_column: str, genres_column: str, genre_sep: str = ",", id_column: str | None = None,
             title_column: str | None = None, delimiter: str = ",", verbose: bool = True) -> pd.DataFrame:
    """Any CSV with a text column and a genre-list column.

    Genres are split on ``genre_sep`` (or parsed when they look like ``["A", "B"]``).
    Rows get ids ``0..n-1`` when there is no ``id_column``.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path} does not exist.")
    try:
        raw = pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise DatasetError(f"{path} is not a readable CSV ({err}).") from None
    for col in (text_column, genres_column, id_column, title_column):
        if col is not None and col not in raw.columns:
            raise DatasetError(f"{path} has no column {col!r}; its columns are {list(raw.columns)}.")
    try:
        genres = raw[genres_column].map(lambda v: _split_genres(v, genre_sep))
    except (ValueError, SyntaxError) as err:
        raise DatasetError(f"{path}: column {genres_column!r} has a value that is not a genre list ({err}).") from None
    df = pd.DataFrame({
        "id": raw[id_column] if id_column else pd.Series(range(len(raw))).astype(str),
        "title": raw[title_column] if title_column else "",
        "text": raw[text_column],
        "genres": genres,
    })
    used = {text_column, genres_column, id_column, title_column, *COMMON_COLUMNS}  # never overwrite these
    extra = [c for c in raw.columns if c not in used]
    for col in extra:
        df[col] = raw[col]
    return _finish(df, path.stem, verbose)


# --------------------------------------------------------------------------- registry
DATASETS = {"cmu": load_cmu, "netflix": load_netflix, "tmdb": load_tmdb, "csv": load_csv}
GENRE_SOURCE = {"cmu": "cmu", "netflix": "netflix", "tmdb": "tmdb", "csv": "identity"}


def load_dataset(name: str | None = None, **kwargs) -> pd.DataFrame:
    """Load a dataset by name (default: ``COURSE_DATASET``) as the common table.

    ``cmu``, ``netflix``, ``tmdb``, or your own file as ``csv:PATH`` (its folder name is ``csv-<hash>``,
    see :mod:`utils.data.own_csv`); ``load_dataset("csv", path=..., text_column=..., ...)``
    reads a CSV with explicit column names.
    """
    name = str(name or config.dataset_name()).strip()
    if name[:len(config.CSV_PREFIX)].lower() == config.CSV_PREFIX:
        name = config.resolve_dataset(name)
    if name.startswith("csv-"):
        from utils.data import own_csv

        path = config.csv_source(name)
        if path is None:
            raise DatasetError(f"{name} is a CSV dataset, but which file? Name it as csv:PATH "
                               f"(COURSE_DATASET=csv:/path/to/movies.csv or --dataset csv:/path/to/movies.csv).")
        try:
            table = own_csv.load(path, verbose=kwargs.get("verbose", True))
            usable = _finish(table, name, kwargs.get("verbose", True))
            own_csv.check_size(table, usable, path)      # before any plot or split meets an empty table
        except own_csv.CsvFormatError as err:
            raise DatasetError(str(err)) from None
        return usable
    name = name.lower()
    if name == "csv" and "path" not in kwargs:
        raise DatasetError("Name your CSV file: csv:PATH (COURSE_DATASET=csv:/path/to/movies.csv), "
                           "or load_dataset('csv', path=..., text_column=..., genres_column=...).")
    if name not in DATASETS:
        raise DatasetError(f"Unknown dataset {name!r}. Choose one of cmu, netflix, tmdb or csv:PATH "
                           f"(set COURSE_DATASET, or pass the name).")
    return DATASETS[name](**kwargs)


def genre_source(dataset: str) -> str:
    """Which genre mapping a dataset's raw labels go through (see :func:`utils.data.genres.map_genres`)."""
    if dataset.startswith("csv-"):
        return "csv"
    return GENRE_SOURCE.get(dataset, "identity")


def load_raw_genres(name: str) -> list[list[str]]:
    """Raw genre lists of every title in the metadata (CMU: including movies without plots)."""
    if name == "cmu":
        meta = find_file(f"{CMU_FOLDER}/movie.metadata.tsv", f"{CMU_FOLDER}/movie.metadata.tsv.gz")
        if meta is None:
            meta, _ = _cmu_files(True, CMU_URL, quiet=False)
        return read_cmu_metadata(meta)["genres"].tolist()
    return load_dataset(name, verbose=False)["genres"].tolist()
