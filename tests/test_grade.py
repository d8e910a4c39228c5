"""Grading a folder of submissions (utils.tools.grade): a small synthetic notebook, run in fresh kernels."""
import csv

import nbformat
import pytest

from utils.tools import editions, grade

SOLUTION = ("def make_batches(requests, max_size):\n    ### BEGIN SOLUTION\n    requests = list(requests)\n"
            "    return [requests[i:i + max_size] for i in range(0, len(requests), max_size)]\n    ### END SOLUTION")


def _submission(body):
    """A student's notebook: the student edition of a one-exercise notebook, blank filled with ``body``."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 09 · a tiny chapter"),
        nbformat.v4.new_code_cell(SOLUTION),
        nbformat.v4.new_code_cell('from utils.tools.exercises import check\ncheck("09.batches", make_batches)'),
    ])
    nb.cells[1].metadata["tags"] = ["exercise"]
    nb.cells[2].metadata["tags"] = ["check"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    student = editions.student_edition(nb)
    student.cells[1].source = student.cells[1].source.replace(editions.BLANK, body)
    return student


@pytest.fixture
def submissions(tmp_path):
    folder = tmp_path / "submitted"
    folder.mkdir()
    right = "return [list(requests)[i:i + max_size] for i in range(0, len(requests), max_size)]"
    for name, body in [("ada", right), ("bob", "return [list(requests)]"),
                       ("cy", "raise RuntimeError('my code crashes')")]:
        nbformat.write(_submission(body), folder / f"{name}.ipynb")
    return folder


def test_three_submissions_give_the_expected_csv(submissions, tmp_path):
    out = tmp_path / "grades.csv"
    grade.grade_folder(submissions, out, cwd=tmp_path, timeout=120, cell_timeout=60)
    rows = list(csv.DictReader(out.open()))
    assert [r["student"] for r in rows] == ["ada", "bob", "cy"]
    assert list(rows[0]) == ["student", "09.batches", "total", "reason"]
    assert [(r["09.batches"], r["total"]) for r in rows] == [("1", "1"), ("0", "0"), ("0", "0")]
    assert rows[0]["reason"] == ""
    assert "larger than the maximum size" in rows[1]["reason"]
    assert "RuntimeError: my code crashes" in rows[2]["reason"]


def test_a_looping_or_broken_submission_gets_zeros_and_a_reason(tmp_path):
    folder = tmp_path / "subs"
    folder.mkdir()
    nbformat.write(_submission("while True:\n        pass"), folder / "loops.ipynb")
    (folder / "garbage.ipynb").write_text("{not json")
    rows = grade.grade_folder(folder, tmp_path / "g.csv", ids=["09.batches"], cwd=tmp_path,
                              timeout=60, cell_timeout=3)
    by = {r["student"]: r for r in rows}
    assert by["loops"]["09.batches"] == 0 and "time limit" in by["loops"]["reason"]
    assert by["garbage"]["09.batches"] == 0 and "not a readable notebook" in by["garbage"]["reason"]


def test_an_empty_folder_is_a_clear_error(tmp_path, capsys):
    assert grade.main([str(tmp_path), "--out", str(tmp_path / "g.csv")]) == 2
    assert "no .ipynb submissions" in capsys.readouterr().err
