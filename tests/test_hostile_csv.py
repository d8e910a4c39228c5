"""Hostile CSVs through the real commands: `python -m utils.benchmark` and `python -m utils.run_course`
give one clear message (exit code 2, no traceback, nothing half-written) for a file the course cannot use,
and read UTF-16 and Windows-1252 files after a one-line note.

Every file is written here, in tmp_path. The run_course cases prove that the error comes before any
notebook runs (its output folder is never created); notebook 01 itself runs on one hostile file, to show
what a student who opens it sees.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from utils import config
from utils.data import own_csv
from utils.data.datasets import DatasetError, load_dataset
from utils.tools import benchmark, run_course

GENRES = {"Sci-Fi": "alien spaceship planet robot", "Comedy": "funny joke prank laugh",
          "Horror": "ghost haunted blood scream", "Romance": "love kiss wedding heart"}
N_GOOD = 160          # 40 titles per genre: above the course's minimum of usable titles


def good_rows(n=N_GOOD):
    names = list(GENRES)
    return [[f"Film {i}", f"{GENRES[names[i % 4]]} in the café of a naïve town, story {i}", names[i % 4]]
            for i in range(n)]


def csv_text(header, rows, delimiter=","):
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


HEADER = ["title", "plot", "genres"]
# name -> (file content, a fragment of the one error message); content is bytes
UNUSABLE = {
    "empty": (b"", "is empty (0 bytes)"),
    "binary": (bytes(range(256)) * 16, "is not a text file"),
    "xlsx": (b"PK\x03\x04" + bytes(200), "Excel .xlsx workbook"),
    "header_only": (csv_text(HEADER, []).encode(), "has a header row (title, plot, genres) but no rows under it"),
    "empty_texts": (csv_text(HEADER, [[t, "", g] for t, _, g in good_rows()]).encode(),
                    f"none of its {N_GOOD} titles has both a plot and a genre ({N_GOOD} have an empty 'plot')"),
    "five_rows": (csv_text(HEADER, good_rows(5)).encode(), "it has only 5 titles: too few to train"),
    "no_text_column": (csv_text(["title", "blurb", "genres"], good_rows()).encode(), "no text column found"),
    "no_genre_column": (csv_text(["title", "plot", "kind"], good_rows()).encode(), "no genres column found"),
    "nested_genres": (csv_text(HEADER, [[t, p, json.dumps([[g], ["Drama"]])] for t, p, g in good_rows()]).encode(),
                      "must be a flat list of genre names"),
    "one_genre": (csv_text(HEADER, [[t, p, "Comedy"] for t, p, _ in good_rows()]).encode(),
                  "Only one genre (Comedy) has"),
    "no_story_genre": (csv_text(HEADER, [[t, p, "TV Movie|Short Film"] for t, p, _ in good_rows()]).encode(),
                       f"None of the {N_GOOD} titles keeps a genre"),
}
READABLE = {   # name -> (content, the note printed before reading it)
    "utf16": (csv_text(HEADER, good_rows()).encode("utf-16"), "is UTF-16 (it starts with a UTF-16 byte-order mark)"),
    "cp1252": (csv_text(HEADER, good_rows()).encode("cp1252"),
               "is not UTF-8 (byte 0xE9 at position"),
}
SMALLEST = "The smallest file that works has 100 titles"


def write(tmp_path, name, content):
    path = tmp_path / "files" / f"{name}.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return path


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """processed/ and results/ in tmp_path; COURSE_DATASET restored after commands that set it."""
    monkeypatch.setattr(config, "PROCESSED_DIR", tmp_path / "processed")
    monkeypatch.setattr(config, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setenv("COURSE_DATASET", "netflix")
    monkeypatch.setenv("COURSE_FAST", "1")
    return tmp_path


def test_the_loader_explains_every_unusable_file(tmp_path):
    for name, (content, message) in UNUSABLE.items():
        path = write(tmp_path, name, content)
        if name in ("one_genre", "no_story_genre"):   # found once genres are mapped (prepare, notebook 01)
            assert len(load_dataset(f"csv:{path}", verbose=False)) == N_GOOD
            continue
        with pytest.raises(DatasetError) as err:
            load_dataset(f"csv:{path}", verbose=False)
        assert message in str(err.value), (name, str(err.value))
        if name in ("header_only", "empty_texts", "five_rows"):
            assert SMALLEST in str(err.value)


def test_other_encodings_are_read_after_a_one_line_note(tmp_path, capsys):
    expected = load_dataset(f"csv:{write(tmp_path, 'utf8', csv_text(HEADER, good_rows()).encode())}", verbose=False)
    variants = {**READABLE,
                "utf16_no_bom": (csv_text(HEADER, good_rows()).encode("utf-16-le"), "UTF-16 without a byte-order mark"),
                "utf8_bom": (b"\xef\xbb\xbf" + csv_text(HEADER, good_rows()).encode(), None),
                "latin1_undefined_in_cp1252": (csv_text(HEADER, good_rows()).encode("latin-1") + b"x,\x81plot,Comedy\n",
                                               "read it as Latin-1"),
                "semicolons": (csv_text(HEADER, good_rows(), delimiter=";").encode(), "has semicolons and no comma")}
    for name, (content, note) in variants.items():
        table = load_dataset(f"csv:{write(tmp_path, name, content)}")
        out = capsys.readouterr().out
        notes = [line for line in out.splitlines() if line.startswith("note:")]
        assert len(notes) == (note is not None) and (note is None or note in notes[0]), (name, out)
        assert table["text"].tolist()[:N_GOOD] == expected["text"].tolist(), name     # accents intact
        assert table["genres"].tolist()[:N_GOOD] == expected["genres"].tolist(), name
    (tmp_path / "files" / "cp1252.csv.course.json").write_text(json.dumps({"encoding": "utf-8"}))
    with pytest.raises(DatasetError, match="is not utf-8"):      # the sidecar's encoding is used as it is
        load_dataset(f"csv:{tmp_path / 'files' / 'cp1252.csv'}", verbose=False)
    (tmp_path / "files" / "cp1252.csv.course.json").write_text(json.dumps({"encoding": "klingon"}))
    with pytest.raises(DatasetError, match="not an encoding Python knows"):
        load_dataset(f"csv:{tmp_path / 'files' / 'cp1252.csv'}", verbose=False)


def test_an_absurd_plot_is_refused_with_its_row(tmp_path):
    rows = good_rows()
    rows[7][1] = "word " * 30_000
    with pytest.raises(DatasetError, match=r"row 9, column 'plot': a plot of 150,000 characters"):
        load_dataset(f"csv:{write(tmp_path, 'long', csv_text(HEADER, rows).encode())}", verbose=False)


# --------------------------------------------------------------------------- utils.benchmark
@pytest.mark.parametrize("name", list(UNUSABLE))
def test_benchmark_gives_one_clear_message_for_an_unusable_file(workspace, name, capsys):
    content, message = UNUSABLE[name]
    path = write(workspace, name, content)
    code = benchmark.main(["--dataset", f"csv:{path}", "--model", "tfidf", "--processed-dir",
                           str(workspace / "processed"), "--out", str(workspace / "bench")])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.startswith("error: ") and message in err and "The data is the problem" in err
    assert "Traceback" not in out + err
    folder = workspace / "processed"       # nothing half-written: no dataset folder, no temporary one
    assert not folder.exists() or not any(folder.iterdir())
    assert not (workspace / "bench").exists()


def test_benchmark_command_line_has_no_traceback(workspace):
    path = write(workspace, "binary", UNUSABLE["binary"][0])
    env = {**os.environ, "PYTHONPATH": str(config.ROOT)}
    run = subprocess.run([sys.executable, "-m", "utils.benchmark", "--dataset", f"csv:{path}", "--processed-dir",
                          str(workspace / "processed"), "--out", str(workspace / "bench")],
                         cwd=config.ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "is not a text file" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("name", list(READABLE))
def test_benchmark_reads_utf16_and_cp1252_after_a_note(workspace, name, nltk_data, capsys):
    content, note = READABLE[name]
    path = write(workspace, name, content)
    code = benchmark.main(["--dataset", f"csv:{path}", "--model", "tfidf", "--processed-dir",
                           str(workspace / "processed"), "--out", str(workspace / "bench")])
    out, err = capsys.readouterr()
    assert code == 0, err[-2000:]
    assert note in out and "FAST mode, as COURSE_FAST=1 asks" in out
    record = json.loads(next((workspace / "bench").glob("csv-*-tfidf-fast.json")).read_text())
    assert record["mode"] == "fast" and record["metrics"]["micro_f1"] > 0.5


# --------------------------------------------------------------------------- utils.run_course
@pytest.fixture
def marker_notebooks(tmp_path):
    """A course of one notebook that leaves a file behind when it runs."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nb = new_notebook(cells=[new_code_cell("open('ran.txt', 'w').write('yes')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "01_marker.ipynb")
    return folder


@pytest.mark.parametrize("name", list(UNUSABLE))
def test_run_course_refuses_an_unusable_file_before_any_notebook(workspace, marker_notebooks, name, capsys):
    content, message = UNUSABLE[name]
    path = write(workspace, name, content)
    out_dir = workspace / "runs"
    code = run_course.main(["--fast", "--dataset", f"csv:{path}", "--notebooks", str(marker_notebooks),
                            "--out", str(out_dir)])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert message in err and "The data is the problem" in err and "No notebook was run" in err
    assert "Traceback" not in out + err
    assert not out_dir.exists() and not (marker_notebooks / "ran.txt").exists()


@pytest.mark.parametrize("name", list(READABLE))
def test_run_course_reads_utf16_and_cp1252_after_a_note(workspace, marker_notebooks, name, capsys):
    content, note = READABLE[name]
    path = write(workspace, name, content)
    code = run_course.main(["--fast", "--dataset", f"csv:{path}", "--notebooks", str(marker_notebooks),
                            "--out", str(workspace / "runs")])
    out, err = capsys.readouterr()
    assert code == 0, (out, err)
    assert note in out and (marker_notebooks / "ran.txt").read_text() == "yes"


def test_notebook_01_stops_at_its_load_cell_and_the_advice_names_the_data(workspace, monkeypatch):
    """What a student sees who runs notebook 01 itself on a header-only file (one real notebook run)."""
    path = write(workspace, "header_only", UNUSABLE["header_only"][0])
    monkeypatch.setenv("COURSE_DATASET", f"csv:{path}")
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(workspace / "output"))
    notebook = next(config.NOTEBOOKS_DIR.glob("01_*.ipynb"))
    _, failure = run_course.execute_notebook(notebook, workspace / notebook.name, log=lambda *a: None, timeout=300)
    assert failure is not None and failure.cell_id == "load", failure
    assert failure.error.startswith("DatasetError: ") and "but no rows under it" in failure.error
    lines = []
    run_course.report_failure(failure, lines.append)
    advice = lines[-1]
    assert "The data is the problem, not the notebook" in advice and "Fix the notebook" not in advice
    assert not (workspace / "output" / "processed").exists()


def test_advice_names_the_notebook_for_a_code_error(tmp_path):
    failure = run_course.Failure("03_x.ipynb", 4, "fit", "fit()", "ValueError: shapes do not match", "", tmp_path / "x")
    lines = []
    run_course.report_failure(failure, lines.append)
    assert lines[-1].startswith("Fix the notebook (or its module)") and not run_course.is_data_error(failure)
    for name in ("DatasetError", "utils.data.own_csv.CsvFormatError", "DownloadError", "ArchiveError"):
        assert run_course.is_data_error(run_course.Failure("01_x.ipynb", 5, "load", "", f"{name}: bad", "", tmp_path))


def test_a_usable_file_is_checked_once_then_trusted(workspace, nltk_data):
    from utils.data.pipeline import check_dataset, prepare

    path = write(workspace, "good", csv_text(HEADER, good_rows()).encode())
    check_dataset(f"csv:{path}", verbose=False)               # writes nothing
    assert not (workspace / "processed").exists()
    prepare(f"csv:{path}", verbose=False)
    logs = []
    run_course.check_data(f"csv:{path}", logs.append)         # prepared: not read again
    assert logs == []
    assert own_csv.MIN_TITLES <= N_GOOD
