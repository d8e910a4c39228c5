"""Your own CSV as a course dataset: every supported shape, the genre mapping and its report,
clear errors, and folders keyed by the file's content (csv-<hash>), never by its path."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from utils import config
from utils.data import own_csv
from utils.data.datasets import DatasetError, load_dataset
from utils.data.pipeline import is_prepared, prepare

WORDS = {"Sci-Fi": "alien spaceship planet robot", "Comedy": "funny joke prank laugh",
         "Horror": "ghost haunted blood scream", "Romance": "love kiss wedding heart"}


def _rows(n=120):
    names = list(WORDS)
    rows = []
    for i in range(n):
        genres = [names[i % 4]] + ([names[(i + 1) % 4]] if i % 3 == 0 else [])
        text = " ".join(WORDS[g] for g in genres) + f" story number {i} of a town"
        rows.append({"title": f"Film {i}", "text": text, "genres": genres})
    return rows


def _write(path, header, rows, **kw):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, **kw)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def shapes(tmp_path):
    rows = _rows()
    return {
        "comma": _write(tmp_path / "comma.csv", ["Title", "Description", "Genre"],
                        [[r["title"], r["text"], ",".join(r["genres"])] for r in rows]),
        "pipe": _write(tmp_path / "pipe.csv", ["movie_title", "plot", "genres"],
                       [[r["title"], r["text"], "|".join(r["genres"])] for r in rows]),
        "json": _write(tmp_path / "json.csv", ["title", "overview", "genres"],
                       [[r["title"], r["text"], json.dumps(r["genres"])] for r in rows]),
        "python": _write(tmp_path / "python.csv", ["name", "summary", "genres"],
                         [[r["title"], r["text"], repr(r["genres"])] for r in rows]),
        "long": _write(tmp_path / "long.csv", ["id", "title", "synopsis", "genre"],
                       [[f"m{i}", r["title"], r["text"], g] for i, r in enumerate(rows) for g in r["genres"]]),
    }


@pytest.mark.parametrize("shape", ["comma", "pipe", "json", "python", "long"])
def test_every_shape_reads_the_same_titles_and_genres(shapes, shape):
    table = own_csv.load(shapes[shape])
    assert len(table) == len(_rows())
    expected = [r["genres"] for r in _rows()]
    assert table["genres"].tolist() == expected
    assert table["title"].tolist()[:2] == ["Film 0", "Film 1"] and table["text"].str.contains("story").all()


def test_missing_columns_are_named_with_the_columns_found(tmp_path):
    path = _write(tmp_path / "x.csv", ["Title", "Blurb", "Genre"], [["A", "a plot", "Drama"]])
    with pytest.raises(own_csv.CsvFormatError) as err:
        own_csv.load(path)
    assert "no text column" in str(err.value) and "['Title', 'Blurb', 'Genre']" in str(err.value)
    (tmp_path / "x.csv.course.json").write_text(json.dumps({"text_column": "Blurb"}))
    assert own_csv.load(path)["text"].tolist() == ["a plot"]
    (tmp_path / "x.csv.course.json").write_text(json.dumps({"text_column": "Plot"}))
    with pytest.raises(own_csv.CsvFormatError, match="no column 'Plot'"):
        own_csv.load(path)
    (tmp_path / "x.csv.course.json").write_text(json.dumps({"txt": "Blurb"}))
    with pytest.raises(own_csv.CsvFormatError, match="unknown option"):
        own_csv.load(path)


@pytest.mark.parametrize("value, why", [("[" * 5000 + "]" * 5000, "genre"), ("x" * 3000, "characters"),
                                        ("[1, 2]", "flat list"), ("[['a'], ['b']]", "flat list"),
                                        ("[__import__('os').system('touch PWNED')]", "list")])
def test_absurd_genre_values_get_clear_errors(tmp_path, value, why):
    path = _write(tmp_path / "bad.csv", ["title", "plot", "genres"], [["A", "a plot", value]])
    with pytest.raises(own_csv.CsvFormatError, match=why):
        own_csv.load(path)
    assert not (tmp_path / "PWNED").exists()


def test_genre_names_are_mapped_reported_and_never_claimed_falsely(tmp_path):
    lists = [["Sci-Fi", "SciFi"], ["Science Fiction"], ["Musical"], ["Comedies"], ["Short Film"],
             ["Black and White"], ["Space Western Noir Thing"], ["sci fi"]]
    report = own_csv.genre_report(lists).set_index("genre")["what happened"]
    assert report["Sci-Fi"] == report["SciFi"] == report["Science Fiction"] == "mapped to Sci-Fi & Fantasy"
    assert report["Musical"] == "mapped to Music & Musical" and report["Comedies"] == "mapped to Comedy"
    assert report["Short Film"].startswith("left out") and report["Black and White"].startswith("left out")
    assert report["Space Western Noir Thing"].startswith("kept as its own genre")


def test_a_mapping_file_overrides_the_course_mapping(tmp_path):
    path = _write(tmp_path / "m.csv", ["title", "plot", "genres"],
                  [["A", "a plot", "Superhero|Musical|Giallo"], ["B", "another", "Giallo"]])
    (tmp_path / "map.json").write_text(json.dumps({"Superhero": "Action & Adventure", "Musical": None,
                                                   "giallo": ["Horror", "Crime"]}))
    (tmp_path / "m.csv.course.json").write_text(json.dumps({"mapping": "map.json"}))
    table = own_csv.load(path)
    mapped = own_csv.map_genres(table, path, verbose=False)
    assert mapped.tolist() == [["Action & Adventure", "Horror", "Crime"], ["Horror", "Crime"]]
    override = own_csv.read_mapping(path, own_csv.read_options(path))
    report = own_csv.genre_report(table["genres"], override).set_index("genre")["what happened"]
    assert report["Musical"] == "left out (your mapping file)"
    assert report["Superhero"] == "mapped by your mapping file to Action & Adventure"
    (tmp_path / "map.json").write_text(json.dumps({"Superhero": "Superheroes"}))
    with pytest.raises(own_csv.CsvFormatError, match="not canonical genres"):
        own_csv.load(path)
    (tmp_path / "m.csv.course.json").write_text(json.dumps({"mapping": "../../etc/passwd"}))
    with pytest.raises(own_csv.CsvFormatError, match="in the CSV's folder"):
        own_csv.load(path)


def test_dataset_folders_are_keyed_by_content_not_path(tmp_path, shapes):
    a = config.resolve_dataset(f"csv:{shapes['comma']}")
    copy = tmp_path / "elsewhere" / "renamed.csv"
    copy.parent.mkdir()
    copy.write_bytes(shapes["comma"].read_bytes())
    assert config.resolve_dataset(f"csv:{copy}") == a and a.startswith("csv-")
    assert config.resolve_dataset(f"csv:{shapes['pipe']}") != a
    with open(copy, "a", encoding="utf-8") as f:
        f.write("Film X,a new plot,Comedy\n")
    assert config.resolve_dataset(f"csv:{copy}") != a                   # a changed file is a new dataset
    assert str(tmp_path) not in str(config.processed_dir(a)) and config.processed_dir(a).name == a
    with pytest.raises(ValueError, match="no such file"):
        config.resolve_dataset(f"csv:{tmp_path / 'missing.csv'}")


def test_prepare_a_csv_dataset_and_reuse_it(course_dirs, shapes, nltk_data, capsys, monkeypatch):
    monkeypatch.setenv("COURSE_DATASET", f"csv:{shapes['comma']}")
    name = config.dataset_name()
    prepare(top_n=None, min_count=5)
    out = capsys.readouterr().out
    assert "mapped to Sci-Fi & Fantasy" in out and is_prepared(name)
    assert (course_dirs.processed / name / "manifest.json").exists()
    genres = json.loads((course_dirs.processed / name / "genres.json").read_text())["genres"]
    assert set(genres) == {"Sci-Fi & Fantasy", "Comedy", "Horror", "Romance"}
    prepare(top_n=None, min_count=5)
    assert "is ready" in capsys.readouterr().out                        # unchanged file: reused
    with pytest.raises(DatasetError, match="csv:PATH"):
        load_dataset("csv")


def test_benchmark_and_predict_run_on_a_csv(course_dirs, shapes, nltk_data, tmp_path):
    """`--dataset csv:PATH` through the real commands, in fresh processes."""
    env = {**os.environ, "PYTHONPATH": str(config.ROOT), "COURSE_DATASET": "netflix"}
    spec = f"csv:{shapes['json']}"
    code = (f"import sys; sys.path.insert(0, {str(config.ROOT)!r}); from pathlib import Path; from utils import config; "
            f"config.PROCESSED_DIR = Path({str(course_dirs.processed)!r}); config.MODELS_DIR = Path({str(course_dirs.models)!r}); "
            f"from utils.tools import benchmark; sys.exit(benchmark.main(sys.argv[1:]))")
    run = subprocess.run([sys.executable, "-c", code, "--dataset", spec, "--model", "tfidf", "--fast",
                          "--out", str(tmp_path / "bench"), "--processed-dir", str(course_dirs.processed)],
                         env=env, capture_output=True, text=True, timeout=300, cwd=config.ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    name = config.resolve_dataset(spec)
    record = json.loads(next((tmp_path / "bench").glob(f"{name}-tfidf-fast.json")).read_text())
    assert record["dataset"] == name and record["metrics"]["micro_f1"] > 0.5
    # a model trained on the CSV, found by `predict --dataset csv:PATH`
    from utils.data.corpus import load_corpus
    from utils.lessons.tfidf import fit
    from utils.modelfiles import tfidf
    from utils.tools.predict import main

    corpus = load_corpus(spec, require_clean=True)
    pipe = fit(corpus.texts("train", kind="clean"), corpus.y("train"), min_df=1)
    thresholds = {"global": 0.3, "per_genre": {g: 0.3 for g in corpus.genres}, "default": "global"}
    tfidf.save_model(pipe, config.models_dir(spec) / "tfidf_logreg", corpus.genres, thresholds, name)
    assert main(["--dataset", spec, "A ghost haunted the old house and people scream."]) == 0
    assert np.isfinite(pipe.predict_proba(["ghost"])).all()
