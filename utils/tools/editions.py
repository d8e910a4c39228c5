"""Student and instructor editions of the course, written from the committed notebooks (the one source).

    python -m utils.editions --out editions/          # editions/student/*.ipynb, editions/instructor/*.ipynb
    python -m utils.editions --out editions/ --check  # also verify that no solution leaked (exit 1 if so)

Nothing is executed. The markers are cell tags (students never see them) and nbgrader's region lines:

=====================  ==========================================================================
tag ``solution``        the whole cell is an instructor's cell (solutions, questionnaire answers):
                        dropped from the student edition.
tag ``solutions-inline`` a markdown cell whose text from its ``## Solutions`` heading on is the
                        instructor's (older chapters keep summary, exercises and solutions in one
                        cell): the student edition keeps the text before that heading.
tag ``exercise``        a code cell: the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION``
                        become ``...  # YOUR CODE HERE`` in the student edition (same indentation).
tag ``check``           the cell that runs :func:`utils.tools.exercises.check`; kept in both editions.
=====================  ==========================================================================

The instructor edition is the source with its outputs stripped and the region marker lines removed.
The student edition's Colab badges and setup cells name the branch ``--student-branch`` (default
``student``): commit ``editions/student/*.ipynb`` as ``notebooks/`` on that branch and every badge
opens the student edition.
"""
from __future__ import annotations

import argparse
import copy
import os
import re
import sys
from pathlib import Path

import nbformat

from utils import config

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BLANK = "...  # YOUR CODE HERE"
SOLUTIONS_HEADING = re.compile(r"^## Solutions\b", re.MULTILINE)
STUDENT_NOTE = ("> **Student edition.** Exercises have blanks (`...  # YOUR CODE HERE`) and a check cell "
                "below them that says *passed* or gives a hint. Solutions and questionnaire answers are in "
                "the instructor edition.")


class MarkerError(ValueError):
    """A notebook's exercise markers are malformed."""


def tags(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


def _regions(source: str, where: str):
    """Split a cell into (kind, lines) runs: kind is 'code' or 'solution'."""
    runs, current, kind = [], [], "code"
    for line in source.splitlines():
        mark = line.strip()
        if mark == BEGIN:
            if kind == "solution":
                raise MarkerError(f"{where}: {BEGIN} inside a solution region")
            runs.append((kind, current))
            current, kind = [line[:len(line) - len(line.lstrip())]], "solution"  # first item: the indent
        elif mark == END:
            if kind != "solution":
                raise MarkerError(f"{where}: {END} without {BEGIN}")
            runs.append((kind, current))
            current, kind = [], "code"
        else:
            current.append(line)
    if kind == "solution":
        raise MarkerError(f"{where}: {BEGIN} without {END}")
    runs.append((kind, current))
    return runs


def blank_exercise(source: str, where: str = "cell") -> str:
    """The student's version of an exercise cell."""
    out = []
    runs = _regions(source, where)
    if not any(kind == "solution" for kind, _ in runs):
        raise MarkerError(f"{where}: an 'exercise' cell needs a {BEGIN} ... {END} region")
    for kind, lines in runs:
        out.extend(lines if kind == "code" else [lines[0] + BLANK])
    return "\n".join(out)


def solution_text(source: str, where: str = "cell") -> list[str]:
    """The solution lines of an exercise cell."""
    return [line for kind, lines in _regions(source, where) if kind == "solution" for line in lines[1:]]


def instructor_exercise(source: str, where: str = "cell") -> str:
    return "\n".join(line for kind, lines in _regions(source, where)
                     for line in (lines if kind == "code" else lines[1:]))


def _stripped(nb):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def point_to_branch(nb, branch: str):
    """The student edition opens from its own badges: badge and setup cell name ``branch``."""
    from utils.tools import colab

    for cell in nb.cells:
        cell.source = colab.BADGE_RE.sub(lambda m: colab.badge(m["file"], m["repo"], branch), cell.source)
        if cell.cell_type == "code":
            cell.source = colab.SETUP_RE.sub(
                lambda m: f'{m["indent"]}REPO, BRANCH = "{m["repo"]}", "{branch}"', cell.source)
    return nb


def student_edition(nb, name: str = "notebook", branch: str | None = None):
    """The student's notebook; ``branch``: the git branch its Colab badge and setup cell point to."""
    nb = _stripped(nb)
    if branch:
        point_to_branch(nb, branch)
    cells = []
    for i, cell in enumerate(nb.cells):
        t, where = tags(cell), f"{name} cell {i} ({cell.get('id')})"
        if "solution" in t:
            continue
        if "solutions-inline" in t:
            parts = SOLUTIONS_HEADING.split(cell.source, 1)
            if len(parts) != 2:
                raise MarkerError(f"{where}: tagged 'solutions-inline' but has no '## Solutions' heading")
            cell.source = parts[0].rstrip() + "\n"
        if "exercise" in t and cell.cell_type == "code":
            cell.source = blank_exercise(cell.source, where)
        cells.append(cell)
    if cells and cells[0].cell_type == "markdown":
        cells[0].source = cells[0].source.rstrip() + "\n\n" + STUDENT_NOTE
    nb.cells = cells
    return nb


def instructor_edition(nb, name: str = "notebook"):
    nb = _stripped(nb)
    for i, cell in enumerate(nb.cells):
        if "exercise" in tags(cell) and cell.cell_type == "code":
            cell.source = instructor_exercise(cell.source, f"{name} cell {i}")
    return nb


def hidden_text(nb, name: str = "notebook") -> list[str]:
    """Every substantial line the student edition must not contain."""
    hidden = []
    for i, cell in enumerate(nb.cells):
        t = tags(cell)
        if "solution" in t:
            hidden += cell.source.splitlines()
        elif "solutions-inline" in t:
            parts = SOLUTIONS_HEADING.split(cell.source, 1)
            hidden += parts[-1].splitlines() if len(parts) == 2 else []
        elif "exercise" in t and cell.cell_type == "code":
            hidden += solution_text(cell.source, f"{name} cell {i}")
    # lines short or generic enough to appear elsewhere (a fence, "</details>", "print(x)") are no leak
    return [h.strip() for h in hidden if len(h.strip()) >= 25 and not h.strip().startswith(("<", "```", "#"))]


def leaks(source_nb, student_nb, name: str = "notebook") -> list[str]:
    """Solution lines found in the student edition (a line the lesson itself also has is no leak)."""
    text = "\n".join(c.source for c in student_nb.cells)
    marked = ("solution", "solutions-inline", "exercise")
    lesson = "\n".join(c.source for c in source_nb.cells if not set(tags(c)) & set(marked))
    found = [h for h in hidden_text(source_nb, name) if h in text and h not in lesson]
    found += [f"marker {m!r}" for m in (BEGIN, END) if m in text]
    found += [f"cell tagged 'solution' ({c.get('id')})" for c in student_nb.cells if "solution" in tags(c)]
    return found


def _write(nb, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)


def write_editions(out: Path, notebooks_dir: Path = config.NOTEBOOKS_DIR, branch: str | None = "student") -> dict:
    """Write both editions of every NN_name.ipynb; returns {name: [leaks]} (empty lists when clean)."""
    out = Path(out)
    paths = sorted(Path(notebooks_dir).glob("[0-9]*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no NN_name.ipynb notebooks in {notebooks_dir}")
    from utils.tools import progress

    built, problems = [], {}
    for path in progress.each(paths, "notebook", "editions", name=lambda p: p.stem):
        # build everything first: a malformed marker writes nothing
        nb = nbformat.read(path, as_version=4)
        student, instructor = student_edition(nb, path.name, branch), instructor_edition(nb, path.name)
        problems[path.name] = leaks(nb, student, path.name)
        built.append((path.name, student, instructor))
    for name, student, instructor in built:
        _write(student, out / "student" / name)
        _write(instructor, out / "instructor" / name)
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.editions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="editions", help="folder for student/ and instructor/ (default: editions)")
    parser.add_argument("--notebooks", default=str(config.NOTEBOOKS_DIR), help=argparse.SUPPRESS)
    parser.add_argument("--student-branch", default="student",
                        help="branch the student edition's Colab badges and setup cells point to (default: student); "
                             "publish editions/student/*.ipynb as notebooks/ on that branch")
    parser.add_argument("--check", action="store_true", help="exit 1 if any solution text reached the student edition")
    args = parser.parse_args(argv)
    try:
        problems = write_editions(Path(args.out), Path(args.notebooks), args.student_branch)
    except (MarkerError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, found in problems.items():
        print(f"{name}: {'LEAKS ' + '; '.join(found[:3]) if found else 'ok'}")
    print(f"wrote {len(problems)} notebooks to {Path(args.out) / 'student'} and {Path(args.out) / 'instructor'}")
    return 1 if args.check and any(problems.values()) else 0
