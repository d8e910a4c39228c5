"""Your own CSV of plots and genres as a course dataset (``COURSE_DATASET=csv:PATH``, ``--dataset csv:PATH``).

Common shapes work without options:

* one row per title with the genres in one column, as ``"Action,Adventure,Sci-Fi"``,
  ``"Action|Adventure"``, ``"Drama; Romance"``, a JSON list ``["Action", "Sci-Fi"]`` or a
  Python list ``['Action', 'Sci-Fi']``;
* one row per (title, genre): rows that share an id (or title and text) are merged.

The columns are found by name (case-insensitive): the text in ``plot``, ``description``,
``overview``, ``summary``, ``synopsis``, ``storyline`` or ``text``; the genres in ``genres``,
``genre``, ``listed_in``, ``categories``, ``category``, ``tags`` or ``labels``; optionally a
``title`` (or ``name``, ``movie_title``...) and an ``id``. Anything else goes in a sidecar file
``<file>.course.json`` beside the CSV::

    {"text_column": "Plot", "genres_column": "Genre", "genre_sep": "|", "title_column": "Title",
     "id_column": "imdb_id", "delimiter": ",", "mapping": "my_mapping.json"}

``mapping`` names a JSON file (beside the sidecar) that overrides the genre mapping:
``{"Film-Noir": "Crime", "Superhero": ["Action & Adventure", "Sci-Fi & Fantasy"], "Musical": null}``
(``null``: leave the genre out). Without it, names are mapped onto the course's canonical
genres by :func:`utils.data.genres.map_csv_genre` and reported (:func:`genre_report`).
"""
from __future__ import annotations

import ast
import json
from collections import Counter
from pathlib import Path

import pandas as pd

from utils import config

TEXT_COLUMNS = ("plot", "description", "overview", "summary", "synopsis", "storyline", "plot_summary", "text")
GENRE_COLUMNS = ("genres", "genre", "listed_in", "categories", "category", "tags", "labels")
TITLE_COLUMNS = ("title", "name", "movie_title", "original_title", "movie", "film")
ID_COLUMNS = ("id", "movie_id", "imdb_id", "tconst", "show_id", "film_id")
YEAR_COLUMNS = ("year", "release_year", "startyear", "release_date", "date")
SIDECAR_KEYS = {"text_column", "genres_column", "genre_sep", "title_column", "id_column", "delimiter",
                "mapping", "encoding"}
MAX_GENRE_VALUE = 2_000        # characters in one genre cell: more is not a genre list
MAX_GENRES_PER_TITLE = 100


class CsvFormatError(ValueError):
    """A CSV, sidecar or mapping file the course cannot use as it is (the message says how to fix it)."""


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + config.CSV_SIDECAR_SUFFIX)


def _json_object(file: Path, example: str) -> dict:
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise CsvFormatError(f"{file} is not valid UTF-8 JSON ({err}).") from None
    if not isinstance(value, dict):
        raise CsvFormatError(f"{file} must hold a JSON object such as {example}.")
    return value


def read_options(path: Path) -> dict:
    """The sidecar's options (``{}`` without a sidecar), checked key by key."""
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    options = _json_object(side, '{"text_column": "plot"}')
    unknown = set(options) - SIDECAR_KEYS
    if unknown:
        raise CsvFormatError(f"{side}: unknown option(s) {sorted(unknown)}; known: {sorted(SIDECAR_KEYS)}.")
    bad = [k for k, v in options.items() if v is not None and not isinstance(v, str)]
    if bad:
        raise CsvFormatError(f"{side}: option(s) {bad} must be strings.")
    return options


def read_mapping(path: Path, options: dict) -> dict[str, tuple[str, ...]] | None:
    """The user's genre mapping (raw name -> canonical genres; an empty tuple leaves it out)."""
    from utils.data.genres import CANONICAL_GENRES

    name = options.get("mapping")
    if not name:
        return None
    folder = sidecar_path(path).parent.resolve()
    file = (folder / name).resolve()
    if not file.is_relative_to(folder):
        raise CsvFormatError(f"{sidecar_path(path)}: the mapping file must be in the CSV's folder, not {name!r}.")
    if not file.is_file():
        raise CsvFormatError(f"{sidecar_path(path)}: mapping file {name!r} not found next to it.")
    raw = _json_object(file, '{"raw genre": "canonical genre" (or a list, or null)}')
    mapping = {}
    for key, value in raw.items():
        targets = [] if value is None else [value] if isinstance(value, str) else value
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise CsvFormatError(f"{file}: {key!r} must map to a genre name, a list of names or null.")
        unknown = [t for t in targets if t not in CANONICAL_GENRES]
        if unknown:
            raise CsvFormatError(f"{file}: {key!r} maps to {unknown}, which are not canonical genres; "
                                 f"choose from {CANONICAL_GENRES} (or null to leave it out).")
        mapping[key] = tuple(targets)
    return mapping


def _find(columns, wanted: str | None, candidates, what: str, path: Path, required: bool = True):
    lower = {c.strip().lower(): c for c in columns}
    if wanted:
        if wanted in columns:
            return wanted
        if wanted.strip().lower() in lower:
            return lower[wanted.strip().lower()]
        raise CsvFormatError(f"{path} has no column {wanted!r} (the {what} column named in "
                             f"{sidecar_path(path).name}); its columns are {list(columns)}.")
    for name in candidates:
        if name in lower:
            return lower[name]
    if required:
        raise CsvFormatError(
            f"{path}: no {what} column found among {list(columns)}. Name it one of {list(candidates)}, or say "
            f"which it is in {sidecar_path(path)}, e.g. {{\"{what}_column\": \"{list(columns)[0]}\"}}.")
    return None


def parse_genres(value, sep: str | None, where: str) -> list[str]:
    """One genre cell -> a list of names: a separated string, a JSON list or a Python list of strings."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    text = str(value).strip()
    if len(text) > MAX_GENRE_VALUE:
        raise CsvFormatError(f"{where}: a genre value of {len(text):,} characters is not a genre list "
                             f"(at most {MAX_GENRE_VALUE:,}).")
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            try:
                parsed = ast.literal_eval(text)       # literals only: never runs code
            except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError):
                raise CsvFormatError(f"{where}: {text[:60]!r} looks like a list but is not one.") from None
        if not isinstance(parsed, (list, tuple)) or not all(isinstance(g, str) for g in parsed):
            raise CsvFormatError(f"{where}: {text[:60]!r} must be a flat list of genre names (strings).")
        names = [g.strip() for g in parsed]
    else:
        names = [g.strip() for g in text.split(sep or ",")]
    names = [n for n in dict.fromkeys(names) if n]
    if len(names) > MAX_GENRES_PER_TITLE:
        raise CsvFormatError(f"{where}: {len(names)} genres for one title (at most {MAX_GENRES_PER_TITLE}).")
    return names


def _guess_sep(values: pd.Series) -> str:
    sample = values.head(2000).astype(str)
    for sep in ("|", ";", ","):
        if sample.str.contains(sep, regex=False).any():
            return sep
    return ","


def read_table(path: Path, options: dict) -> pd.DataFrame:
    """The CSV as ``id, title, text, genres`` (raw names), one row per title."""
    try:
        raw = pd.read_csv(path, sep=options.get("delimiter") or ",", dtype=str, keep_default_na=False,
                          encoding=options.get("encoding") or "utf-8-sig")
    except UnicodeDecodeError as err:
        raise CsvFormatError(f"{path} is not UTF-8 ({err.reason} at byte {err.start}); save it as UTF-8 or set "
                             f"\"encoding\" in {sidecar_path(path).name}.") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise CsvFormatError(f"{path} is not a readable CSV ({err}).") from None
    cols = list(raw.columns)
    text_col = _find(cols, options.get("text_column"), TEXT_COLUMNS, "text", path)
    genre_col = _find(cols, options.get("genres_column"), GENRE_COLUMNS, "genres", path)
    title_col = _find(cols, options.get("title_column"), TITLE_COLUMNS, "title", path, required=False)
    id_col = _find(cols, options.get("id_column"), ID_COLUMNS, "id", path, required=False)
    year_col = _find(cols, None, YEAR_COLUMNS, "year", path, required=False)
    sep = options.get("genre_sep") or _guess_sep(raw[genre_col])
    genres = [parse_genres(v, sep, f"{path.name} row {i + 2}, column {genre_col!r}")
              for i, v in enumerate(raw[genre_col])]
    table = pd.DataFrame({"title": raw[title_col] if title_col else "", "text": raw[text_col], "genres": genres})
    table["id"] = raw[id_col].astype(str) if id_col else None
    years = raw[year_col].astype(str).str.extract(r"((?:18|19|20)\d\d)")[0] if year_col else None
    table["year"] = pd.to_numeric(years, errors="coerce").astype("Int64") if year_col else pd.array([pd.NA] * len(raw), "Int64")
    # one row per (title, genre): merge rows of the same title, keeping the genres' first-seen order
    key = ["id"] if id_col else ["title", "text"]
    if table.duplicated(key).any():
        table = (table.groupby(key, sort=False, as_index=False)
                 .agg({**{c: "first" for c in ("title", "text", "id", "year") if c not in key},
                       "genres": lambda lists: list(dict.fromkeys(g for gs in lists for g in gs))}))
    if not id_col:
        table["id"] = [str(i) for i in range(len(table))]
    return table[["id", "title", "text", "genres", "year"]]


def genre_report(raw_lists, mapping_override=None) -> pd.DataFrame:
    """One row per raw genre name: how many titles, and what happened to it (mapped, left out, kept)."""
    from utils.data.genres import map_csv_genre

    counts = Counter(g for gs in raw_lists for g in set(gs))
    rows = []
    for name, n in counts.most_common():
        targets, how = map_csv_genre(name, mapping_override)
        if how == "excluded":
            outcome = "left out (form or format, not story)"
        elif how == "override-excluded":
            outcome = "left out (your mapping file)"
        elif how == "kept":
            outcome = "kept as its own genre (not in the course's taxonomy)"
        else:
            outcome = ("mapped by your mapping file to " if how == "override" else "mapped to ") + " + ".join(targets)
        rows.append({"genre": name, "titles": n, "what happened": outcome})
    return pd.DataFrame(rows, columns=["genre", "titles", "what happened"])


def load(path, verbose: bool = True) -> pd.DataFrame:
    """Read the user's CSV; raw genre names in ``genres`` (mapped later by :func:`map_genres`)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise CsvFormatError(f"{path} does not exist.")
    options = read_options(path)
    read_mapping(path, options)                        # fail early on a broken mapping file
    table = read_table(path, options)
    table.attrs["csv_path"] = str(path)
    return table


def map_genres(df: pd.DataFrame, path, verbose: bool = True) -> pd.Series:
    """Canonical (or kept) genres of every title; prints the one-table report when ``verbose``."""
    from utils.data.genres import map_csv_genre

    path = Path(path)
    override = read_mapping(path, read_options(path))
    if verbose:
        with pd.option_context("display.max_rows", 60, "display.width", 120):
            print(genre_report(df["genres"], override).to_string(index=False))
    return df["genres"].map(lambda gs: list(dict.fromkeys(t for g in gs for t in map_csv_genre(g, override)[0])))
