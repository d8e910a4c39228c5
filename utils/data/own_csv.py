"""Your own CSV of plots and genres as a course dataset (``COURSE_DATASET=csv:PATH``, ``--dataset csv:PATH``).

Common shapes work without options:

* one row per title with the genres in one column, as ``"Action,Adventure,Sci-Fi"``,
  ``"Action|Adventure"``, ``"Drama; Romance"``, a JSON list ``["Action", "Sci-Fi"]``, a
  Python list ``['Action', 'Sci-Fi']``, or a list of dicts with a ``name`` key as TMDB writes them,
  ``[{'id': 18, 'name': 'Drama'}]`` (JSON or Python literal, read without running any code);
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

UTF-8 is read as it is, UTF-16 is recognised, and any other file is read as Windows-1252 after a
one-line note (:func:`decode`). A file the course cannot use (empty, binary, a header with no rows,
fewer than :data:`MIN_TITLES` titles with a plot and a genre, ...) raises :class:`CsvFormatError` with a
message that says what is wrong and what the smallest working file looks like (:func:`smallest_file`).
"""
from __future__ import annotations

import ast
import json
from collections import Counter
from pathlib import Path

import pandas as pd

from utils import config
from utils.data.text import MAX_CHARS as MAX_TEXT   # characters in one plot: the models refuse more

TEXT_COLUMNS = ("plot", "description", "overview", "summary", "synopsis", "storyline", "plot_summary", "text")
GENRE_COLUMNS = ("genres", "genre", "listed_in", "categories", "category", "tags", "labels")
TITLE_COLUMNS = ("title", "name", "movie_title", "original_title", "movie", "film")
ID_COLUMNS = ("id", "movie_id", "imdb_id", "tconst", "show_id", "film_id")
YEAR_COLUMNS = ("year", "release_year", "startyear", "release_date", "date")
SIDECAR_KEYS = {"text_column", "genres_column", "genre_sep", "title_column", "id_column", "delimiter",
                "mapping", "encoding"}
MIN_TITLES = 100               # usable titles (plot and genre) below which the course refuses a CSV
MIN_GENRE_TITLES = 50          # titles of each of two genres in the smallest file that surely works
MAX_GENRE_VALUE = 2_000        # characters in one genre cell: more is not a genre list
MAX_GENRES_PER_TITLE = 100


class CsvFormatError(ValueError):
    """A CSV, sidecar or mapping file the course cannot use as it is (the message says how to fix it)."""


def smallest_file() -> str:
    """The sentence that ends every "too small" error: what the smallest file that works looks like."""
    return (f"The smallest file that works has {MIN_TITLES} titles, each with a plot and at least one genre, and "
            f"two genres with {MIN_GENRE_TITLES} titles each; a few thousand titles give steadier scores.")


def check_size(table: pd.DataFrame, usable: pd.DataFrame, path) -> None:
    """Refuse a CSV with too few titles that have both a plot and a genre, saying which and why.

    ``table`` is the file as read (one row per title), ``usable`` what is left once titles without a
    plot or without a genre are dropped (with the counts in ``usable.attrs["dropped"]``).
    """
    if len(usable) >= MIN_TITLES:
        return
    cols = table.attrs.get("columns", {"text": "text", "genres": "genres"})
    dropped = usable.attrs.get("dropped", {})
    lost = [f"{dropped[k]:,} {what}" for k, what in (("without text", f"have an empty {cols['text']!r}"),
                                                      ("without genres", f"have no genre in {cols['genres']!r}"))
            if dropped.get(k)]
    why = f" ({' and '.join(lost)})" if lost else ""
    if usable.empty:
        problem = f"none of its {len(table):,} titles has both a plot and a genre{why}"
    else:
        which = (f"only {len(usable):,} of its {len(table):,} titles have both a plot and a genre{why}"
                 if len(usable) < len(table) else f"it has only {len(usable):,} titles")
        problem = f"{which}: too few to train, tune and test a classifier"
    raise CsvFormatError(f"{path}: {problem}. {smallest_file()}")


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
    """One genre cell -> a list of names: a separated string, or a JSON or Python-literal list of names or of
    dicts with a ``name`` key (TMDB's ``[{'id': 18, 'name': 'Drama'}]``).

    A Python literal is read with :func:`ast.literal_eval`, which builds literals and never runs code
    (``__import__('os')`` is refused); anything else is a :class:`CsvFormatError` naming ``where``.
    """
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
        names = _list_names(parsed)
        if names is None:
            raise CsvFormatError(f"{where}: {text[:60]!r} must be a flat list of genre names (strings) or of dicts "
                                 f"with a 'name' key, as [{{'id': 18, 'name': 'Drama'}}].")
    else:
        names = [g.strip() for g in text.split(sep or ",")]
    names = [n for n in dict.fromkeys(names) if n]
    if len(names) > MAX_GENRES_PER_TITLE:
        raise CsvFormatError(f"{where}: {len(names)} genres for one title (at most {MAX_GENRES_PER_TITLE}).")
    return names


def _list_names(parsed) -> list[str] | None:
    """The names of a parsed list of strings or of ``{"name": ...}`` dicts; ``None`` for any other shape."""
    if not isinstance(parsed, (list, tuple)):
        return None
    names = []
    for item in parsed:
        if isinstance(item, dict):
            item = item.get("name")
        if not isinstance(item, str):
            return None
        names.append(item.strip())
    return names


def _guess_sep(values: pd.Series) -> str:
    sample = values.head(2000).astype(str)
    for sep in ("|", ";", ","):
        if sample.str.contains(sep, regex=False).any():
            return sep
    return ","


BOMS = ((b"\xef\xbb\xbf", "utf-8-sig", "UTF-8"), (b"\xff\xfe\x00\x00", "utf-32", "UTF-32"),
        (b"\x00\x00\xfe\xff", "utf-32", "UTF-32"), (b"\xff\xfe", "utf-16", "UTF-16"),
        (b"\xfe\xff", "utf-16", "UTF-16"))
SIGNATURES = ((b"PK\x03\x04", "a ZIP archive or an Excel .xlsx workbook"), (b"\x1f\x8b", "a gzip-compressed file"),
              (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook"), (b"%PDF", "a PDF document"),
              (b"PAR1", "a Parquet file"), (b"SQLite format 3", "an SQLite database"))
SAVE_AS = "Open it in a spreadsheet and save it as \"CSV UTF-8 (comma delimited)\""


def decode(path: Path, options: dict, verbose: bool = True) -> str:
    """The CSV's text. UTF-8 (with or without a byte-order mark) is read as it is; UTF-16/32 with a
    byte-order mark and UTF-16 without one are recognised; any other file that is not UTF-8 is read as
    Windows-1252 (what Excel on Windows writes; Latin-1 is a subset) after a one-line note. An
    ``"encoding"`` in the sidecar is used as it is. Empty and binary files are clear errors."""
    data = path.read_bytes()
    side = sidecar_path(path).name
    if not data.strip():
        raise CsvFormatError(f"{path} is empty ({len(data)} bytes): a CSV needs a header row (e.g. title,plot,genres) "
                             f"and one row per title.")
    if options.get("encoding"):
        try:
            return data.decode(options["encoding"])
        except LookupError:
            raise CsvFormatError(f"{sidecar_path(path)}: {options['encoding']!r} is not an encoding Python knows "
                                 f"(e.g. utf-8, cp1252, latin-1, utf-16).") from None
        except UnicodeDecodeError as err:
            raise CsvFormatError(f"{path} is not {options['encoding']} ({err.reason} at byte {err.start}): fix "
                                 f"\"encoding\" in {side}, or remove it to let the course guess.") from None
    for bom, encoding, label in BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError as err:
                raise CsvFormatError(f"{path} starts like {label} text but is not ({err.reason} at byte "
                                     f"{err.start}). {SAVE_AS}.") from None
            if encoding != "utf-8-sig" and verbose:
                print(f"note: {path.name} is {label} (it starts with a {label} byte-order mark): read as such.")
            return text
    for magic, what in SIGNATURES:
        if data.startswith(magic):
            raise CsvFormatError(f"{path} is {what}, not a CSV text file. {SAVE_AS}.")
    head = data[:65536]
    if b"\x00" in head:
        even, odd = head[0::2].count(0), head[1::2].count(0)   # UTF-16 without a byte-order mark: ASCII
        for encoding, nuls, other in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):   # letters have a 0 byte
            if nuls > len(head) // 4 and other == 0 and len(data) % 2 == 0:
                try:
                    text = data.decode(encoding)
                except UnicodeDecodeError:
                    break
                if verbose:
                    print(f"note: {path.name} is UTF-16 without a byte-order mark: read as {encoding.upper()}.")
                return text
        raise CsvFormatError(f"{path} is not a text file (it holds NUL bytes): is it a spreadsheet, an archive or "
                             f"another binary format? {SAVE_AS}.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        where, byte = err.start, data[err.start:err.start + 1].hex().upper()
    label = "Windows-1252 (cp1252)"
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:                           # one of the 5 bytes cp1252 leaves undefined
        label, text = "Latin-1 (ISO-8859-1)", data.decode("latin-1")
    control = sum(1 for c in text[:65536] if ord(c) < 32 and c not in "\t\r\n")
    if control > len(text[:65536]) // 100:
        raise CsvFormatError(f"{path} is not a text file ({control} control characters in its first "
                             f"{min(len(text), 65536):,}): is it a spreadsheet, an archive or another binary format? "
                             f"{SAVE_AS}.")
    if verbose:
        print(f"note: {path.name} is not UTF-8 (byte 0x{byte} at position {where:,}); read it as {label}, "
              f"the usual encoding of Windows exports. If accented letters look wrong, save it as UTF-8 or set "
              f"\"encoding\" in {side}.")
    return text


def _delimiter(text: str, options: dict, path: Path, verbose: bool) -> str:
    """The sidecar's delimiter; else a comma, or a semicolon or tab when the header has those and no comma."""
    if options.get("delimiter"):
        return options["delimiter"]
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    if "," not in header:
        for sep, name in ((";", "semicolons"), ("\t", "tabs")):
            if sep in header:
                if verbose:
                    print(f"note: the header of {path.name} has {name} and no comma: read with {sep!r} as the "
                          f"delimiter (set \"delimiter\" in {sidecar_path(path).name} to choose).")
                return sep
    return ","


def read_table(path: Path, options: dict, verbose: bool = True) -> pd.DataFrame:
    """The CSV as ``id, title, text, genres`` (raw names), one row per title."""
    import io

    text = decode(path, options, verbose).removeprefix("\ufeff")
    if not text.strip():
        raise CsvFormatError(f"{path} holds no text: a CSV needs a header row (e.g. title,plot,genres) and one row "
                             f"per title.")
    try:
        raw = pd.read_csv(io.StringIO(text), sep=_delimiter(text, options, path, verbose), dtype=str,
                          keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise CsvFormatError(f"{path} is not a readable CSV ({str(err).strip()}).") from None
    del text
    cols = list(raw.columns)
    text_col = _find(cols, options.get("text_column"), TEXT_COLUMNS, "text", path)
    genre_col = _find(cols, options.get("genres_column"), GENRE_COLUMNS, "genres", path)
    if raw.empty:
        raise CsvFormatError(f"{path} has a header row ({', '.join(map(str, cols))}) but no rows under it. "
                             f"{smallest_file()}")
    title_col = _find(cols, options.get("title_column"), TITLE_COLUMNS, "title", path, required=False)
    id_col = _find(cols, options.get("id_column"), ID_COLUMNS, "id", path, required=False)
    year_col = _find(cols, None, YEAR_COLUMNS, "year", path, required=False)
    sep = options.get("genre_sep") or _guess_sep(raw[genre_col])
    genres = [parse_genres(v, sep, f"{path.name} row {i + 2}, column {genre_col!r}")
              for i, v in enumerate(raw[genre_col])]
    too_long = raw[text_col].str.len() > MAX_TEXT
    if too_long.any():
        row = int(too_long.to_numpy().argmax())
        raise CsvFormatError(f"{path.name} row {row + 2}, column {text_col!r}: a plot of "
                             f"{len(raw[text_col].iloc[row]):,} characters (at most {MAX_TEXT:,}): is {text_col!r} "
                             f"really a plot, and is the file's quoting intact?")
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
    table = table[["id", "title", "text", "genres", "year"]]
    table.attrs["columns"] = {"text": text_col, "genres": genre_col}
    return table


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
    table = read_table(path, options, verbose)
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
