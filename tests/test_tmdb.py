"""TMDB's movies_metadata.csv as the `tmdb` dataset, and list-of-dicts genres and non-UTF-8 files in csv:.

The files are written here in the real format: Kaggle's 24-column header, genres as a Python-literal
list of ``{'id': ..., 'name': ...}`` dicts, and the real file's kind of broken record (an overview cut
by a bare line break: a short row, then a row whose columns are shifted, with a date in ``id``)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from utils import config
from utils.data import datasets
from utils.data.datasets import DatasetError, load_dataset, load_tmdb
from utils.data.genres import map_genres

SHARED_TMDB = Path(config.ROOT).parent / "shared" / "data" / "tmdb" / "movies_metadata.csv"
@pytest.fixture
def tmdb_file(course_dirs, tmp_path, write_tmdb_csv):
    """A small movies_metadata.csv with every case, in COURSE_DATA_DIR/tmdb/, and a file hostile code would touch."""
    touched = tmp_path / "PWNED"
    tmdb_row = write_tmdb_csv.row
    rows = [
        tmdb_row(862, ["Animation", "Comedy", "Family"], 'Led by Woody, Andy\'s "toys" live happily,\nuntil Buzz.',
                 title="Toy Story"),
        tmdb_row(8844, ["Science Fiction", "Foreign"], "A board game opens a door to another world.", title="Jumanji"),
        tmdb_row(15602, ["TV Movie"], "A made-for-TV story of two old friends.", title="Grumpier Old Men"),
        tmdb_row(31357, [], "A film TMDB gave no genre.", title="No Genre"),                # no genres
        tmdb_row(11862, ["Drama"], "   ", title="No Overview"),                               # empty overview
        tmdb_row(949, ["Crime"], "No overview found.", title="Heat"),                        # TMDB's placeholder
        tmdb_row(862, ["Drama"], "The same id again, as the full file has a few dozen times."),  # repeated id
        tmdb_row(710, f"[{{'id': 1, 'name': __import__('pathlib').Path({str(touched)!r}).touch()}}]",
                 "A hostile genre cell: code inside a list.", title="GoldenEye"),
        tmdb_row(9091, f"__import__('pathlib').Path({str(touched)!r}).touch()", "A hostile cell, no list.",
                 title="Sudden Death"),
        tmdb_row(1408, "[" * 600 + "]" * 600, "A genre cell nested 600 deep.", title="Cutthroat Island"),
        tmdb_row("1997-08-20", ["Drama"], "A row with a date in its id (shifted columns).", title="Shifted"),
        tmdb_row(524, ["Drama", "Crime"], "Greed and deception in Las Vegas.", title="Casino", release_date=""),
    ]
    path = write_tmdb_csv(course_dirs.extra / "tmdb" / "movies_metadata.csv", rows, tail=write_tmdb_csv.broken_record())
    return path, touched


def test_tmdb_real_format_malformed_rows_are_skipped_and_counted(tmdb_file, capsys):
    path, touched = tmdb_file
    df = load_dataset("tmdb")
    out = capsys.readouterr().out
    assert not touched.exists()                       # the hostile literals were never run
    assert df["id"].tolist() == ["862", "8844", "15602", "524"]
    assert df.loc[0, "title"] == "Toy Story" and df.loc[0, "text"].startswith('Led by Woody, Andy\'s "toys"')
    assert "\n" in df.loc[0, "text"]                  # a quoted line break stays inside its overview
    assert df.loc[0, "genres"] == ["Animation", "Comedy", "Family"]
    assert df.loc[1, "genres"] == ["Science Fiction", "Foreign"]
    assert df.loc[0, "year"] == 1995 and pd.isna(df.loc[3, "year"])
    assert df.loc[0, "countries"] == ["United States of America"] and df.loc[0, "language"] == "en"
    assert df.attrs["dataset"] == "tmdb"
    # the broken record is two malformed rows (10 and 15 fields), plus the 24-field row with a date in its id
    assert df.attrs["dropped"] == {"malformed rows": 3, "genres not a list of names": 3, "repeated ids": 1,
                                   "placeholder overview ('No overview found.')": 1, "without text": 1,
                                   "without genres": 1}
    assert "tmdb: 4 titles with text and genres (left out: 3 malformed rows, 3 genres not a list of names" in out
    note = next(line for line in out.splitlines() if line.startswith("tmdb: skipped"))
    assert "3 malformed rows" in note and "id '1997-08-20'" in note and "10 of 24 fields" in note  # examples
    assert "3 rows whose genres are not a list of names" in note
    assert "Carousel Productions" not in {g for gs in df["genres"] for g in gs}


def test_tmdb_genres_map_onto_the_course_taxonomy(tmdb_file, write_tmdb_csv):
    from utils.data.genres import MAPPINGS, TMDB_GROUPS, TMDB_UNMAPPED

    assert sorted({raw for raws in TMDB_GROUPS.values() for raw in raws} | set(TMDB_UNMAPPED)) == sorted(write_tmdb_csv.genre_ids)
    assert MAPPINGS["tmdb"]["Science Fiction"] == ("Sci-Fi & Fantasy",)
    assert map_genres(["Science Fiction", "Fantasy", "Foreign", "TV Movie"], "tmdb") == ["Sci-Fi & Fantasy",
                                                                                        "World Cinema"]
    assert map_genres(["TV Movie"], "tmdb") == []
    from utils.data import pipeline

    labelled = pipeline.label_movies(load_dataset("tmdb", verbose=False), datasets.genre_source("tmdb"),
                                     verbose=False)
    assert labelled["id"].tolist() == ["862", "8844", "524"]       # the TV-Movie-only film keeps no genre
    assert labelled["genres"].tolist() == [["Animation", "Comedy", "Family & Kids"],
                                           ["Sci-Fi & Fantasy", "World Cinema"], ["Crime", "Drama"]]


def test_tmdb_missing_file_explains_kaggle(course_dirs):
    with pytest.raises(DatasetError) as err:
        load_tmdb()
    message = str(err.value)
    assert "Kaggle login" in message and "kaggle.com/datasets/rounakbanik/the-movies-dataset" in message
    assert "data/raw/tmdb/movies_metadata.csv" in message and "COURSE_DATA_DIR" in message
    assert str(course_dirs.extra) in message


@pytest.mark.parametrize("content, fragment", [
    ("title,overview,genres\nA,B,\"['Drama']\"\n", "lacks the Kaggle columns"),
    ("", "is empty"),
])
def test_tmdb_wrong_files_get_one_clear_error(course_dirs, content, fragment):
    path = course_dirs.root / "movies_metadata.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError, match=fragment):
        load_tmdb(path)


def test_tmdb_not_utf8_is_a_clear_error(course_dirs, write_tmdb_csv):
    path = write_tmdb_csv(course_dirs.root / "movies_metadata.csv", [write_tmdb_csv.row(1, ["Drama"], "Café society.")])
    path.write_bytes(path.read_text(encoding="utf-8").encode("cp1252"))
    with pytest.raises(DatasetError, match="is not UTF-8"):
        load_tmdb(path)


def test_tmdb_offline_copy(shared_dir):
    if not SHARED_TMDB.is_file():
        pytest.skip(f"offline TMDB copy not found at {SHARED_TMDB}")
    df = load_tmdb(SHARED_TMDB, verbose=False)
    # the first 2,996 rows (../shared/README.md: 18 empty overviews, 73 empty genre lists) hold one repeated id
    assert len(df) == 2904 and df.attrs["dropped"] == {
        "malformed rows": 0, "genres not a list of names": 0, "repeated ids": 1,
        "placeholder overview ('No overview found.')": 5, "without text": 18, "without genres": 68}
    names = {g for gs in df["genres"] for g in gs}
    from utils.data.genres import MAPPINGS, TMDB_UNMAPPED

    assert names <= set(MAPPINGS["tmdb"]) | set(TMDB_UNMAPPED) and len(names) == 20


# --------------------------------------------------------------------------- csv:PATH with TMDB's genre format
@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_csv_reads_lists_of_dicts_and_non_utf8_after_a_note(tmp_path, encoding, capsys):
    from utils.data import own_csv

    rows = [["Café {}".format(i), f"A plot of film {i}, in a café.",
             (json.dumps if i % 2 else repr)([{"id": 18, "name": "Drama"}, {"id": 35, "name": "Comedy"}])]
            for i in range(120)]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([["title", "overview", "genres"], *rows])
    path = tmp_path / f"films-{encoding}.csv"
    path.write_bytes(out.getvalue().encode(encoding))
    df = load_dataset(f"csv:{path}")
    printed = capsys.readouterr().out
    assert len(df) == 120 and df["genres"].map(tuple).unique().tolist() == [("Drama", "Comedy")]
    assert df.loc[0, "title"] == "Café 0"
    notes = [line for line in printed.splitlines() if line.startswith("note:")]
    if encoding == "utf-8":
        assert notes == []
    else:
        assert len(notes) == 1 and "is not UTF-8" in notes[0] and "Windows-1252" in notes[0]
    with pytest.raises(own_csv.CsvFormatError, match="dicts with a 'name' key"):
        own_csv.parse_genres("[{'id': 18}]", None, "row 2")
    with pytest.raises(own_csv.CsvFormatError, match="looks like a list"):
        own_csv.parse_genres("[{'name': __import__('os').getcwd()}]", None, "row 2")
