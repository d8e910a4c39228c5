"""Student/instructor editions and self-checking exercises (utils.tools.editions, utils.tools.exercises).

Nothing here executes a notebook: the exercise cells are plain functions, run in a fresh namespace.
"""
import re

import nbformat
import pytest

from utils import config
from utils.tools import editions, exercises

NOTEBOOKS = sorted(config.NOTEBOOKS_DIR.glob("[0-9]*.ipynb"))
CHECK_CALL = re.compile(r'check\("([^"]+)",\s*(\w+)\)')


def _read(path):
    return nbformat.read(path, as_version=4)


def _exercise_cells(nb):
    """[(exercise id, answer name, exercise cell source)] of a notebook."""
    out = []
    cells = nb.cells
    for i, cell in enumerate(cells):
        if cell.cell_type == "code" and "check" in editions.tags(cell):
            exercise_id, name = CHECK_CALL.search(cell.source).groups()
            source = next(c.source for c in reversed(cells[:i])
                          if c.cell_type == "code" and "exercise" in editions.tags(c))
            out.append((exercise_id, name, source))
    return out


ALL = [(p.name, *e) for p in NOTEBOOKS for e in _exercise_cells(_read(p))]


def _answer(source, name):
    namespace = {}
    exec(compile(source, "<exercise>", "exec"), namespace)  # the exercise cell defines the answer
    return namespace[name]


def test_every_chapter_has_a_checked_exercise_and_every_check_is_used():
    chapters = {name.split("_")[0] for name, *_ in ALL}
    assert chapters == {p.name.split("_")[0] for p in NOTEBOOKS}
    assert sorted(e for _, e, *_ in ALL) == sorted(exercises.EXERCISES)
    for _, exercise_id, name, _ in ALL:
        assert exercises.EXERCISES[exercise_id].name == name, f"{exercise_id}: the check cell passes {name}"


@pytest.mark.parametrize("nb_name, exercise_id, name, source", ALL, ids=[a[1] for a in ALL])
class TestExercise:
    def test_the_solution_passes(self, nb_name, exercise_id, name, source):
        answer = _answer(editions.instructor_exercise(source), name)
        assert exercises.result(exercise_id, answer) == (True, "passed")

    def test_the_blank_fails_with_a_hint(self, nb_name, exercise_id, name, source):
        blank = editions.blank_exercise(source)
        assert editions.BLANK in blank and editions.BEGIN not in blank
        ok, hint = exercises.result(exercise_id, _answer(blank, name))
        assert not ok and "not answered yet" in hint or "returns nothing" in hint

    def test_a_wrong_answer_fails_without_revealing_the_answer(self, nb_name, exercise_id, name, source):
        def wrong(*args):
            return args[0]  # plausible nonsense: hand back the input
        ok, hint = exercises.result(exercise_id, wrong)
        assert not ok and hint
        def boom(*args):
            raise ZeroDivisionError("oops")
        ok, hint = exercises.result(exercise_id, boom)
        assert not ok and "ZeroDivisionError" in hint


def test_check_prints_pass_or_hint(capsys):
    assert exercises.check("09.batches", lambda r, n: [list(r)[i:i + n] for i in range(0, len(r), n)])
    assert not exercises.check("09.batches", lambda r, n: [list(r)])
    out = capsys.readouterr().out.splitlines()
    assert "passed" in out[0] and "09.batches" in out[1] and "passed" not in out[1]
    with pytest.raises(KeyError, match="no exercise"):
        exercises.check("99.nope", None)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_edition_has_no_solution(path):
    nb = _read(path)
    student = editions.student_edition(nb, path.name)
    assert editions.leaks(nb, student, path.name) == []
    text = "\n".join(c.source for c in student.cells)
    # solutions sit in numbered <details> blocks ("<summary>5. ..."); a lesson's own <details> may stay
    assert "## Solutions" not in text and not re.search(r"<summary>\s*\d+\.", text)
    assert "## Exercises" in text and "YOUR CODE HERE" in text and "check(" in text
    assert "Student edition" in student.cells[0].source
    # the instructor edition keeps every solution, without the marker lines
    instructor = "\n".join(c.source for c in editions.instructor_edition(nb, path.name).cells)
    assert "## Solutions" in instructor and editions.BEGIN not in instructor
    assert all(h in instructor for h in editions.hidden_text(nb, path.name))


def test_the_leak_check_finds_a_leak():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 01 · t"),
        nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return sorted(x, key=len)[::-1]\n    ### END SOLUTION"),
    ])
    nb.cells[1].metadata["tags"] = ["exercise"]
    student = editions.student_edition(nb)
    assert editions.leaks(nb, student) == []
    student.cells[1].source += "\n# return sorted(x, key=len)[::-1]"
    assert editions.leaks(nb, student) == ["return sorted(x, key=len)[::-1]"]


@pytest.mark.parametrize("source, error", [
    ("x = 1\n### BEGIN SOLUTION\nx = 2", "without ### END"),
    ("### END SOLUTION", "without ### BEGIN"),
    ("x = 1", "needs a ### BEGIN"),
])
def test_malformed_markers_are_refused(source, error):
    with pytest.raises(editions.MarkerError, match=error):
        editions.blank_exercise(source, "nb cell 3")


def test_the_blank_keeps_the_indentation():
    src = "def f(x):\n    y = x\n    ### BEGIN SOLUTION\n    return y + 1\n    ### END SOLUTION\nprint(f)"
    assert editions.blank_exercise(src) == "def f(x):\n    y = x\n    ...  # YOUR CODE HERE\nprint(f)"
    assert editions.instructor_exercise(src) == "def f(x):\n    y = x\n    return y + 1\nprint(f)"


def test_the_command_writes_both_editions(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("COURSE_PROGRESS", raising=False)           # captured stderr is no terminal: lines
    assert editions.main(["--out", str(tmp_path), "--check"]) == 0
    steps = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[progress] editions")]
    assert len(steps) == len(NOTEBOOKS) and "\r" not in "".join(steps)     # one line per notebook (#28)
    assert f"notebook {len(NOTEBOOKS)}/{len(NOTEBOOKS)} · {NOTEBOOKS[-1].stem}" in steps[-1]
    for edition in ("student", "instructor"):
        written = sorted(p.name for p in (tmp_path / edition).glob("*.ipynb"))
        assert written == [p.name for p in NOTEBOOKS]
    assert not list(tmp_path.rglob(".*.tmp*"))
    nb = _read(tmp_path / "student" / NOTEBOOKS[0].name)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_a_malformed_notebook_writes_nothing(tmp_path, capsys):
    src = tmp_path / "nbs"
    src.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1")])
    nb.cells[0].metadata["tags"] = ["exercise"]
    nbformat.write(nb, src / "01_x.ipynb")
    assert editions.main(["--out", str(tmp_path / "out"), "--notebooks", str(src)]) == 2
    assert "01_x.ipynb cell 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _numbered(text):
    return re.findall(r"^(\d+)\. ", text, re.MULTILINE)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_questionnaire_with_answers_for_instructors_only(path):
    nb = _read(path)
    quiz = [c for c in nb.cells if "questionnaire" in editions.tags(c)]
    assert [c.get("id") for c in quiz] == ["questionnaire", "questionnaire-answers"]
    questions, answers = quiz
    assert questions.source.startswith("## Questionnaire") and "solution" not in editions.tags(questions)
    assert "solution" in editions.tags(answers)
    n = len(_numbered(questions.source))
    assert 8 <= n <= 15 and _numbered(answers.source) == [str(i) for i in range(1, n + 1)]
    # after the exercises, before a references cell if there is one
    ids = [c.get("id") for c in nb.cells]
    assert ids.index("questionnaire") > ids.index("exercise-check")
    after = [c for c in nb.cells[ids.index("questionnaire-answers") + 1:]]
    assert all(c.cell_type == "markdown" and "eferences" in c.source.split("\n")[0] for c in after)
    student = "\n".join(c.source for c in editions.student_edition(nb, path.name).cells)
    assert questions.source in student and "answers (for instructors)" not in student


def test_the_student_edition_opens_from_its_own_badges(tmp_path):
    from utils.tools import colab

    assert editions.main(["--out", str(tmp_path), "--student-branch", "student-2027"]) == 0
    for path in NOTEBOOKS:
        student = nbformat.read(tmp_path / "student" / path.name, as_version=4)
        badge = colab.BADGE_RE.search(student.cells[0].source)
        assert badge and badge["branch"] == "student-2027" and badge["file"] == path.name
        setup = next(c for c in student.cells if c.get("id") == "setup")
        assert colab.SETUP_RE.search(setup.source)["branch"] == "student-2027"
        teacher = nbformat.read(tmp_path / "instructor" / path.name, as_version=4)
        assert colab.BADGE_RE.search(teacher.cells[0].source)["branch"] == colab.BRANCH


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_open_ended_exercises_say_what_a_good_answer_contains(path):
    nb = _read(path)
    ids = [c.get("id") for c in nb.cells]
    assert ids.index("good-answers") == ids.index("exercise-checked") - 1
    student = "\n".join(c.source for c in editions.student_edition(nb, path.name).cells)
    assert "## What a good answer contains" in student
