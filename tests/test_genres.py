"""utils.data.genres: the taxonomy tables, mapping, selection and coverage on the real metadata."""
from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from utils import config
from utils.data import genres
from utils.data.datasets import DatasetError
from utils.data.genres import (
    CANONICAL_GENRES,
    CMU_GROUPS,
    CMU_UNMAPPED,
    MAPPINGS,
    NETFLIX_GROUPS,
    NETFLIX_UNMAPPED,
    coverage,
    genre_counts,
    map_genres,
    select_genres,
)

SHARED_DATA = config.ROOT.parent / "shared" / "data"
CMU_META = SHARED_DATA / "MovieSummaries" / "movie.metadata.tsv.gz"
NETFLIX_CSV = SHARED_DATA / "netflix" / "netflix_titles.csv"


# --------------------------------------------------------------------------- tables
@pytest.mark.parametrize("groups", [CMU_GROUPS, NETFLIX_GROUPS], ids=["cmu", "netflix"])
def test_tables_only_use_canonical_genres(groups):
    assert set(groups) <= set(CANONICAL_GENRES)
    for canonical, raws in groups.items():
        assert len(raws) == len(set(raws)), f"{canonical} lists a raw label twice"
        assert all(isinstance(r, str) and r == r.strip() and r for r in raws)


def test_canonical_genres_are_unique_and_mappings_point_into_them():
    assert len(CANONICAL_GENRES) == len(set(CANONICAL_GENRES)) == 22
    for table in MAPPINGS.values():
        for raw, targets in table.items():
            assert targets and set(targets) <= set(CANONICAL_GENRES), raw
            assert list(targets) == sorted(targets, key=CANONICAL_GENRES.index)


def test_unmapped_lists_do_not_overlap_the_mappings():
    assert not set(CMU_UNMAPPED) & set(MAPPINGS["cmu"])
    assert not set(NETFLIX_UNMAPPED) & set(MAPPINGS["netflix"])


def test_a_bad_table_is_refused():
    with pytest.raises(ValueError, match="'Cartoons' is not a canonical genre"):
        genres._invert({"Cartoons": ["Animation"]})


# --------------------------------------------------------------------------- mapping
def test_multi_mapping_and_taxonomy_order():
    assert map_genres(["Romantic comedy"], "cmu") == ["Comedy", "Romance"]
    assert map_genres(["Thriller", "Space western", "Romance Film"], "cmu") == [
        "Romance", "Sci-Fi & Fantasy", "Thriller", "Western"]
    assert map_genres(["Stand-Up Comedy & Talk Shows"], "netflix") == ["Comedy", "Reality & Talk"]
    assert map_genres(["TV Dramas", "Dramas", "International Movies"], "netflix") == ["Drama", "World Cinema"]


def test_unknown_and_unmapped_labels_are_dropped():
    assert map_genres(["Black-and-white", "Short Film"], "cmu") == []
    assert map_genres(["Not a genre", "Drama"], "cmu") == ["Drama"]
    assert map_genres([], "netflix") == []


def test_identity_source_keeps_labels():
    assert map_genres(["Drama ", "action", "Drama", ""], "identity") == ["Drama", "action"]


def test_unknown_source():
    with pytest.raises(ValueError, match="No genre mapping for 'imdb'"):
        map_genres(["Drama"], "imdb")


# --------------------------------------------------------------------------- selection
LISTS = [["A", "B"], ["A"], ["A", "C"], ["B", "C"], ["B"], ["D"], ["A", "A"]]


def test_genre_counts_count_movies_not_occurrences():
    assert genre_counts(LISTS) == Counter({"A": 4, "B": 3, "C": 2, "D": 1})


def test_select_genres_order_top_n_and_min_count():
    assert select_genres(LISTS) == ["A", "B", "C", "D"]
    assert select_genres(LISTS, top_n=2) == ["A", "B"]
    assert select_genres(LISTS, min_count=2) == ["A", "B", "C"]
    assert select_genres(LISTS, top_n=10, min_count=3) == ["A", "B"]
    # ties are broken by name, so the column order is stable
    assert select_genres([["Z"], ["M"], ["Z", "M"], ["B"]]) == ["M", "Z", "B"]


def test_select_genres_errors():
    with pytest.raises(ValueError, match="top_n must be at least 1"):
        select_genres(LISTS, top_n=0)
    with pytest.raises(DatasetError, match=r"No genre has 5 titles or more \(the most frequent genres: A 4, B 3, "
                                           r"C 2, D 1\): the data is too small"):
        select_genres(LISTS, min_count=5)
    with pytest.raises(DatasetError, match=r"Only one genre \(A\) has 4 titles or more.*two genres with 4 titles"):
        select_genres(LISTS, min_count=4)                   # one genre is no classification problem
    assert select_genres(LISTS, top_n=1, min_count=4) == ["A"]   # ... unless one is asked for


# --------------------------------------------------------------------------- coverage
def test_coverage_counts_on_a_small_example():
    cov = coverage([["Drama", "Black-and-white"], ["Short Film"], [], ["Romantic comedy"]], "cmu")
    assert cov["movies_with_genres"] == 3 and cov["movies_kept"] == 2
    assert cov["occurrences"] == 4 and cov["occurrences_mapped"] == 2
    assert cov["occurrence_coverage"] == pytest.approx(0.5)
    assert cov["movie_coverage"] == pytest.approx(2 / 3)
    assert cov["unmapped"] == [("Black-and-white", 1), ("Short Film", 1)]
    assert coverage([], "netflix")["movie_coverage"] == 0.0


@pytest.fixture(scope="module")
def real_cmu_genres():
    if not CMU_META.is_file():
        pytest.skip(f"real CMU metadata not found at {CMU_META} (needs ../shared beside the repo)")
    from utils.data.datasets import read_cmu_metadata

    return read_cmu_metadata(CMU_META)["genres"].tolist()


@pytest.fixture(scope="module")
def real_netflix_genres():
    if not NETFLIX_CSV.is_file():
        pytest.skip(f"real Netflix file not found at {NETFLIX_CSV} (needs ../shared beside the repo)")
    from utils.data.datasets import load_netflix

    return load_netflix(NETFLIX_CSV, verbose=False)["genres"].tolist()


def test_real_cmu_coverage(real_cmu_genres):
    assert len(real_cmu_genres) == 81_741
    cov = coverage(real_cmu_genres, "cmu")
    assert cov["occurrence_coverage"] >= 0.85, cov["unmapped"][:20]
    assert cov["movie_coverage"] >= 0.95, cov["unmapped"][:20]


def test_every_frequent_cmu_label_is_mapped_or_deliberately_left_out(real_cmu_genres):
    counts = genre_counts(real_cmu_genres)
    forgotten = {g: n for g, n in counts.items()
                 if n >= 200 and g not in MAPPINGS["cmu"] and g not in CMU_UNMAPPED}
    assert forgotten == {}
    # and the tables name real labels (a typo would silently map nothing)
    unused = [raw for raw in MAPPINGS["cmu"] if raw not in counts]
    assert unused == []


def test_every_netflix_category_is_mapped_or_deliberately_left_out(real_netflix_genres):
    counts = genre_counts(real_netflix_genres)
    assert len(counts) == 42
    forgotten = sorted(g for g in counts if g not in MAPPINGS["netflix"] and g not in NETFLIX_UNMAPPED)
    assert forgotten == []
    assert sorted(raw for raw in MAPPINGS["netflix"] if raw not in counts) == []
    cov = coverage(real_netflix_genres, "netflix")
    assert cov["occurrence_coverage"] >= 0.95 and cov["movie_coverage"] >= 0.95


def test_command_prints_the_coverage():
    if not CMU_META.is_file():
        pytest.skip(f"real CMU metadata not found at {CMU_META}")
    env = {**os.environ, "COURSE_DATA_DIR": str(SHARED_DATA)}
    run = subprocess.run([sys.executable, "-m", "utils.data.genres", "--show-unmapped", "3"], cwd=config.ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "dataset: cmu (81,741 titles in the metadata)" in out
    line = next(l for l in out.splitlines() if l.startswith("genre occurrences mapped:"))
    assert float(line.rsplit("=", 1)[1].strip().rstrip("%")) >= 85.0
    assert "movies keeping >= 1 genre:" in out
    assert "most frequent unmapped labels: Black-and-white (9,094), Short Film (8,141), Silent film" in out
