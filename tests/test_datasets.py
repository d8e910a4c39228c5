"""utils.data.datasets on small files in the real formats: CMU (downloaded from a local
server, verified, cached), the Kaggle Netflix file and any CSV."""
from __future__ import annotations

import gzip
import os

import pandas as pd
import pytest

from utils.data import datasets
from utils.data.datasets import DatasetError, load_cmu, load_csv, load_dataset, load_netflix
from utils.data.download import ArchiveError, DownloadError

EXPECTED_CMU_LINE = ("cmu: 5 movies in the metadata, 4 with a plot; kept 2 with plot and genres "
                     "(left out: 1 without genres, 1 with an empty plot, 1 plots without metadata)")


def _files(folder):
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


# --------------------------------------------------------------------------- CMU download
@pytest.fixture
def fake_hashes(monkeypatch, cmu_tarball):
    """Make the fake archive 'the published one'."""
    monkeypatch.setattr(datasets, "CMU_MEMBERS", dict(cmu_tarball.hashes))
    return cmu_tarball


def test_cmu_download_extract_verify_and_load(course_dirs, http_server, fake_hashes, capsys):
    url = http_server.script("/MovieSummaries.tar.gz", {"body": fake_hashes.bytes})
    df = load_cmu(url=url, quiet=True)
    assert http_server.count("/MovieSummaries.tar.gz") == 1
    # cached archive and the four verified members, nothing else (no temp files)
    assert _files(course_dirs.cache) == sorted(["MovieSummaries.tar.gz", "MovieSummaries", "README.txt",
                                                "character.metadata.tsv", "movie.metadata.tsv",
                                                "plot_summaries.txt"])
    assert list(df.columns[:4]) == ["id", "title", "text", "genres"]
    assert df["id"].tolist() == ["101", "102"]
    ghosts, cafe = df.iloc[0], df.iloc[1]
    assert ghosts["genres"] == ["Thriller", "Horror", "Space western"]
    assert ghosts["text"].startswith("Set in the second half") and "\tA police unit" in ghosts["text"]
    assert ghosts["year"] == 2001 and ghosts["box_office"] == 14010832 and ghosts["runtime"] == 98.0
    assert ghosts["languages"] == ["English Language"]
    assert ghosts["countries"] == ["United States of America"]
    assert cafe["title"] == "Café Romance" and "Pokémon" in cafe["text"] and cafe["genres"] == ["Romantic comedy"]
    # every left-out movie is counted, in attrs and in the printed line
    assert df.attrs["dropped"] == {"plots without metadata": 1, "without text": 1, "without genres": 1}
    assert df.attrs["metadata_without_plot"] == 1
    assert EXPECTED_CMU_LINE in capsys.readouterr().out


def test_cmu_second_load_uses_the_cache(course_dirs, http_server, fake_hashes):
    url = http_server.script("/MovieSummaries.tar.gz", {"body": fake_hashes.bytes})
    first = load_cmu(url=url, quiet=True, verbose=False)
    second = load_cmu(url=url, quiet=True, verbose=False)
    assert http_server.count("/MovieSummaries.tar.gz") == 1
    pd.testing.assert_frame_equal(first, second)


def test_cmu_download_retries_a_503(course_dirs, http_server, fake_hashes, no_sleep):
    url = http_server.script("/MovieSummaries.tar.gz", {"status": 503, "body": b"busy"},
                             {"body": fake_hashes.bytes})
    df = load_cmu(url=url, quiet=True, verbose=False)
    assert len(df) == 2
    assert http_server.count("/MovieSummaries.tar.gz") == 2 and len(no_sleep) == 1


def test_cmu_with_the_real_hashes_fails_verification_and_deletes(course_dirs, http_server, cmu_tarball):
    url = http_server.script("/MovieSummaries.tar.gz", {"body": cmu_tarball.bytes})
    with pytest.raises(ArchiveError) as err:
        load_cmu(url=url, quiet=True)
    message = str(err.value)
    assert "not the published one" in message and "deleted" in message
    assert "movie.metadata.tsv differs from the published file" in message
    assert _files(course_dirs.cache) == ["MovieSummaries"]  # archive and every member removed
    assert not (course_dirs.cache / "MovieSummaries.tar.gz").exists()


def test_cmu_missing_member_fails_verification(course_dirs, http_server, make_tarball, monkeypatch, cmu_tarball):
    monkeypatch.setattr(datasets, "CMU_MEMBERS", dict(cmu_tarball.hashes))
    partial = {f"MovieSummaries/{n}": d for n, d in cmu_tarball.contents.items() if n != "README.txt"}
    archive = make_tarball(course_dirs.root / "partial.tar.gz", partial)
    url = http_server.script("/MovieSummaries.tar.gz", {"body": archive.read_bytes()})
    with pytest.raises(ArchiveError, match="README.txt is missing"):
        load_cmu(url=url, quiet=True)
    assert _files(course_dirs.cache) == ["MovieSummaries"]


@pytest.mark.parametrize("kind", ["random", "truncated"])
def test_cmu_corrupt_download_is_deleted(course_dirs, http_server, fake_hashes, kind):
    body = os.urandom(5000) if kind == "random" else fake_hashes.bytes[: len(fake_hashes.bytes) // 2]
    url = http_server.script("/MovieSummaries.tar.gz", {"body": body})
    with pytest.raises(ArchiveError, match="corrupt or truncated"):
        load_cmu(url=url, quiet=True)
    assert _files(course_dirs.cache) == []  # no archive to reuse, nothing half-extracted


def test_cmu_offline_suggests_netflix(course_dirs, closed_port, no_sleep):
    with pytest.raises(DownloadError) as err:
        load_cmu(url=f"http://127.0.0.1:{closed_port}/MovieSummaries.tar.gz", quiet=True)
    message = str(err.value)
    assert "offline" in message.lower() and "COURSE_DATASET=netflix" in message
    assert _files(course_dirs.cache) == []


def test_cmu_404_names_the_url(course_dirs, http_server, no_sleep):
    url = http_server.url("/nope/MovieSummaries.tar.gz")
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        load_cmu(url=url, quiet=True)
    assert url in str(err.value) and http_server.count("/nope/MovieSummaries.tar.gz") == 1


def test_cmu_without_download_says_how_to_get_it(course_dirs):
    with pytest.raises(DatasetError, match="download=True"):
        load_cmu(download=False)


@pytest.mark.parametrize("gz", [False, True])
def test_cmu_files_in_course_data_dir_are_used_without_download(course_dirs, write_cmu_files, gz, capsys):
    write_cmu_files(course_dirs.extra / "MovieSummaries", gz=gz)
    df = load_cmu(download=False)
    assert df["id"].tolist() == ["101", "102"]
    assert EXPECTED_CMU_LINE in capsys.readouterr().out
    assert _files(course_dirs.cache) == []


def test_cmu_bad_plot_line_names_the_line(course_dirs, tmp_path):
    path = tmp_path / "plot_summaries.txt"
    path.write_text("101\tA fine plot.\nnot an id here\n")
    with pytest.raises(DatasetError, match="line 2"):
        datasets.read_cmu_plots(path)


def test_cmu_bad_metadata_json(tmp_path):
    path = tmp_path / "movie.metadata.tsv"
    path.write_text("1\t/m/x\tT\t2000\t\t\t{}\t{}\t{not json\n")
    with pytest.raises(DatasetError, match="not a valid CMU movie.metadata.tsv"):
        datasets.read_cmu_metadata(path)


# --------------------------------------------------------------------------- Netflix
def test_netflix_real_format_with_embedded_newlines_and_commas(course_dirs, write_netflix_csv, capsys):
    row = write_netflix_csv.row
    rows = [
        row(1, "Dramas, International Movies", 'A widow, alone in "the" city,\nfinds a letter.\r\nThen, a key.'),
        row(2, "Documentaries", "A filmmaker stages his father's death."),
        row(3, "Comedies, Romantic Movies", "   "),        # empty description: dropped
        row(4, "", "A title Netflix forgot to categorise."),  # no genres: dropped
        row(5, "TV Dramas, TV Mysteries, International TV Shows", "Teens, secrets and a lake.",
            country=""),
    ]
    path = write_netflix_csv(course_dirs.extra / "netflix" / "netflix_titles.csv", rows)
    assert b'\n' in path.read_bytes().split(b"A widow", 1)[1].split(b"finds", 1)[0]  # really multi-line
    df = load_dataset("netflix")
    assert df["id"].tolist() == ["s1", "s2", "s5"]
    assert df.loc[0, "text"].startswith('A widow, alone in "the" city,\nfinds a letter.')
    assert df.loc[0, "genres"] == ["Dramas", "International Movies"]
    assert df.loc[2, "genres"] == ["TV Dramas", "TV Mysteries", "International TV Shows"]
    assert df.loc[0, "countries"] == ["United States", "India"] and df.loc[2, "countries"] == []
    assert df.loc[0, "title"] == 'Title 1, the "sequel"' and df.loc[0, "date_added"] == "September 25, 2021"
    assert df.loc[0, "year"] == 2001 and df.loc[0, "type"] == "Movie"
    assert df.attrs["dropped"] == {"without text": 1, "without genres": 1}
    assert "netflix: 3 titles with text and genres (left out: 1 without text, 1 without genres)" in \
        capsys.readouterr().out


def test_netflix_found_at_the_top_of_data_dir_too(course_dirs, write_netflix_csv):
    write_netflix_csv(course_dirs.raw / "netflix_titles.csv")
    assert len(load_netflix(verbose=False)) == 60


def test_netflix_missing_file_explains_kaggle(course_dirs):
    with pytest.raises(DatasetError) as err:
        load_netflix()
    message = str(err.value)
    assert "Kaggle" in message and "kaggle.com" in message
    assert "data/raw/netflix/netflix_titles.csv" in message and "COURSE_DATA_DIR" in message
    assert str(course_dirs.extra) in message  # where it looked


def test_netflix_wrong_header(course_dirs, write_netflix_csv):
    header = ["id", "type", "title", "director", "cast", "country", "date_added", "release_year",
              "rating", "duration", "genres", "plot"]
    path = write_netflix_csv(course_dirs.root / "other.csv", rows=[], header=header)
    with pytest.raises(DatasetError, match=r"lacks the Kaggle columns \['show_id', 'listed_in', 'description'\]"):
        load_netflix(path)


def test_netflix_empty_file(course_dirs):
    path = course_dirs.root / "empty.csv"
    path.write_text("")
    with pytest.raises(DatasetError, match="not a readable CSV"):
        load_netflix(path)


def test_netflix_duplicate_ids_are_an_error(course_dirs, write_netflix_csv):
    row = write_netflix_csv.row
    path = write_netflix_csv(course_dirs.root / "dup.csv", [row(1, "Dramas", "One."), row(1, "Comedies", "Two.")])
    with pytest.raises(DatasetError, match="'s1' appears more than once"):
        load_netflix(path, verbose=False)


# --------------------------------------------------------------------------- CSV
def _csv(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_custom_separator_and_empty_texts(tmp_path, capsys):
    path = _csv(tmp_path / "mine.csv",
                "plot,tags,year\n"
                "\"A heist, then a chase.\",Crime| Thriller |,1999\n"
                "   ,Drama,2000\n"
                ",Drama,2001\n"
                "A quiet drama.,,2002\n"
                "Aliens land.,Sci-Fi,2003\n")
    df = load_csv(path, text_column="plot", genres_column="tags", genre_sep="|")
    assert df["genres"].tolist() == [["Crime", "Thriller"], ["Sci-Fi"]]
    assert df["id"].tolist() == ["0", "4"]  # row numbers survive the drops
    assert df["text"].tolist() == ["A heist, then a chase.", "Aliens land."]
    assert df["year"].tolist() == ["1999", "2003"] and (df["title"] == "").all()
    assert df.attrs["dropped"] == {"without text": 2, "without genres": 1}
    assert df.attrs["dataset"] == "mine"
    assert "mine: 2 titles with text and genres (left out: 2 without text, 1 without genres)" in \
        capsys.readouterr().out


def test_csv_list_literal_genres_and_ids(tmp_path):
    path = _csv(tmp_path / "lists.tsv",
                "id\tname\tplot\tgenres\n"
                "m1\tFirst\tA plot.\t[\"Drama\", \"War\"]\n"
                "m2\tSecond\tAnother plot.\t['Comedy', 'Romance']\n"
                "m3\tThird\tA third plot.\t[]\n")
    df = load_csv(path, text_column="plot", genres_column="genres", id_column="id", title_column="name",
                  delimiter="\t", verbose=False)
    assert df["id"].tolist() == ["m1", "m2"]
    assert df["title"].tolist() == ["First", "Second"]
    assert df["genres"].tolist() == [["Drama", "War"], ["Comedy", "Romance"]]
    assert df.attrs["dropped"]["without genres"] == 1


def test_csv_missing_column_lists_the_columns(tmp_path):
    path = _csv(tmp_path / "c.csv", "plot,tags\nx,y\n")
    with pytest.raises(DatasetError) as err:
        load_csv(path, text_column="summary", genres_column="tags")
    assert "'summary'" in str(err.value) and "['plot', 'tags']" in str(err.value)


def test_csv_bad_list_literal(tmp_path):
    path = _csv(tmp_path / "c.csv", 'plot,tags\nx,"[Drama, War]"\n')  # looks like a list, is not one
    with pytest.raises(DatasetError, match="not a genre list"):
        load_csv(path, text_column="plot", genres_column="tags")


def test_csv_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_csv(tmp_path / "nope.csv", text_column="plot", genres_column="tags")


def test_csv_other_columns_never_replace_the_common_ones(tmp_path):
    # a column that happens to be called "text" or "genres" must not overwrite the chosen ones
    path = _csv(tmp_path / "c.csv", "summary,labels,text,genres\nA good plot.,Drama,ignored,ignored too\n")
    df = load_csv(path, text_column="summary", genres_column="labels", verbose=False)
    assert df.loc[0, "text"] == "A good plot." and df.loc[0, "genres"] == ["Drama"]


def test_csv_through_load_dataset(tmp_path):
    path = _csv(tmp_path / "c.csv", "plot,tags\nA plot.,Drama\n")
    df = load_dataset("CSV", path=path, text_column="plot", genres_column="tags", verbose=False)
    assert df["genres"].tolist() == [["Drama"]]


# --------------------------------------------------------------------------- registry
def test_unknown_dataset_lists_choices(monkeypatch):
    with pytest.raises(DatasetError) as err:
        load_dataset("imdb")
    assert "'imdb'" in str(err.value) and "cmu, netflix, tmdb or csv:PATH" in str(err.value)
    monkeypatch.setenv("COURSE_DATASET", "movielens")
    with pytest.raises(DatasetError, match="'movielens'"):
        load_dataset()


def test_default_dataset_comes_from_the_environment(course_dirs, write_netflix_csv, monkeypatch):
    write_netflix_csv(course_dirs.extra / "netflix" / "netflix_titles.csv")
    monkeypatch.setenv("COURSE_DATASET", " Netflix ")
    assert load_dataset(verbose=False).attrs["dataset"] == "netflix"


def test_load_raw_genres_cmu_includes_movies_without_plots(course_dirs, write_cmu_files):
    write_cmu_files(course_dirs.extra / "MovieSummaries", gz=True)
    raw = datasets.load_raw_genres("cmu")
    assert len(raw) == 5 and ["Drama"] in raw and [] in raw


def test_gzip_plots_are_read(tmp_path):
    path = tmp_path / "plot_summaries.txt.gz"
    path.write_bytes(gzip.compress("7\tÉclair plot.\n\n8\tSecond.\n".encode()))
    assert datasets.read_cmu_plots(path).values.tolist() == [["7", "Éclair plot."], ["8", "Second."]]
