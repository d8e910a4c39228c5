"""The committed notebooks: numbered, stripped, with badge, setup cell, title, Summary and Exercises."""
import re

import nbformat
import pytest

from utils import config
from utils.tools import colab

NOTEBOOKS = colab.notebook_files(config.NOTEBOOKS_DIR)
GPU_CHAPTERS = ("04", "05")  # deep networks: a GPU note in the first cell


def read(path):
    return nbformat.read(path, as_version=4)


def markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no NN_name.ipynb notebooks in {config.NOTEBOOKS_DIR}"


def test_numbered_consecutively():
    names = [p.name for p in config.NOTEBOOKS_DIR.glob("*.ipynb")]
    assert colab.numbering_problems(names) == []


def test_colab_links_and_badges_in_sync():
    """Run `python -m utils.tools.colab` to fix whatever this reports."""
    assert colab.check(numbering=False) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
class TestNotebook:
    def test_valid_nbformat_4(self, path):
        nb = read(path)
        nbformat.validate(nb)
        assert nb.nbformat == 4
        assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
        ids = [c.get("id") for c in nb.cells]
        assert all(ids) and len(set(ids)) == len(ids), "cell ids must exist and be unique"

    def test_committed_without_outputs(self, path):
        nb = read(path)
        dirty = [c.id for c in nb.cells if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
        assert not dirty, f"cells with outputs/execution counts: {dirty}. Strip them before committing " \
                          f"(jupyter nbconvert --clear-output --inplace {path.name})"

    def test_title_and_badge_first(self, path):
        first = read(path).cells[0]
        assert first.cell_type == "markdown"
        prefix = path.name.split("_")[0]
        title = first.source.splitlines()[0]
        assert re.match(rf"# (?:{prefix}|{prefix[:2]})\b", title), f"first line must be '# {prefix} · Title', got {title!r}"
        badge = colab.BADGE_RE.search(first.source)
        assert badge and badge["file"] == path.name, "the Colab badge must open this very notebook"
        if prefix.startswith(GPU_CHAPTERS):
            assert "GPU" in first.source, "deep-learning notebooks say how to get a GPU on Colab"

    def test_setup_cell(self, path):
        nb = read(path)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and code[0].get("id") == "setup", "the first code cell must have id 'setup'"
        src = code[0].source
        assert colab.SETUP_RE.search(src), "the setup cell needs the REPO, BRANCH line for Colab"
        assert "IN_COLAB" in src and "git clone" in src and "notebook.setup(" in src

    def test_parameters_cell_follows_the_setup_cell(self, path):
        """papermill's convention: a cell tagged 'parameters' with FAST, DATASET and SEED, env vars overriding."""
        code = [c for c in read(path).cells if c.cell_type == "code"]
        params = code[1]
        assert "parameters" in params.metadata.get("tags", []), "the second code cell must be tagged 'parameters'"
        for name in ("FAST", "DATASET", "SEED"):
            assert re.search(rf"^{name} = ", params.source, re.MULTILINE), f"the parameters cell sets {name}"
        assert "notebook.parameters(" in params.source, "environment variables must still override the cell"

    def test_lesson_cells_carry_no_test_scaffolding(self, path):
        """Guards live in tests/; at most two asserts remain, where they teach."""
        code = "\n".join(c.source for c in read(path).cells if c.cell_type == "code")
        asserts = re.findall(r"^\s*assert\b|\bnp\.testing\.assert_", code, re.MULTILINE)
        assert len(asserts) <= 2, f"{len(asserts)} assert statements in the code cells"

    def test_summary_and_exercises(self, path):
        text = markdown(read(path))
        for heading in ("## Summary", "## Exercises"):
            assert re.search(rf"^{heading}\b", text, re.MULTILINE), f"missing {heading!r}"
        solutions = text.split("## Solutions", 1)
        if len(solutions) == 2:
            assert "<details>" in solutions[1], "solutions are collapsed in <details> blocks"


# ------------------------------------------------------------------ openings, setup cells, short cells (issue 24)
OPENING_MAX_LINES = 15    # title, badge, one line of intro, "What you will learn" and its bullets, the cost line
SETUP_MAX_CHARS = 100     # the setup cell is read by every student first
CELL_MAX_LINES = 40
# Notebooks allowed long cells: none (05a, 05b and 08 were split in issue 24). Do not add one.
LONG_CELLS_ALLOWED: set[str] = set()
EXTRA_CODE_NOTEBOOKS = ("01", "04a", "04b", "06", "07")   # helper-only code marked the handson-ml3 way
SECTION_REF = re.compile(r"§(\d+(?:\.\d+)*)")
HEADING_NUMBER = re.compile(r"^#{2,4}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)


def prefix_of(path) -> str:
    return path.name.split("_")[0]


def learn_bullets(first: str) -> list[str]:
    """The bullets of the first cell's "What you will learn" list."""
    lines = first.split("**What you will learn**", 1)[1].split("\n")[1:]
    bullets = []
    for line in lines:
        if not line.strip():
            if bullets:
                break
            continue
        if line.startswith("- "):
            bullets.append(line[2:])
        elif bullets:
            bullets[-1] += " " + line.strip()
    return bullets


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
class TestOpening:
    def test_first_cell_is_at_most_about_15_lines(self, path):
        """Title, badge, what you will learn, one cost line; the chapter's longer introduction and its notes
        (GPU, Colab) go in the next markdown cell, the full cost table stays in the README. Every line counts,
        blank ones and any <details> block included (no notebook needs one)."""
        first = read(path).cells[0].source.strip()
        n = len(first.splitlines())
        assert n <= OPENING_MAX_LINES, f"the first cell has {n} lines (at most {OPENING_MAX_LINES})"
        assert "**What you will learn**" in first and "What a run costs" in first

    def test_what_you_will_learn_names_existing_sections(self, path):
        nb = read(path)
        bullets = learn_bullets(nb.cells[0].source)
        assert len(bullets) >= 3, "the first cell lists what the notebook teaches, as bullets"
        numbers = set(HEADING_NUMBER.findall(markdown(nb)))
        for bullet in bullets:
            refs = SECTION_REF.findall(bullet)
            assert refs, f"this bullet names no section (§N): {bullet!r}"
            missing = [r for r in refs if r not in numbers]
            assert not missing, f"no heading numbered {missing} for the bullet {bullet!r}"

    def test_setup_cell_is_readable_and_shows_its_version_checks(self, path):
        src = next(c for c in read(path).cells if c.get("id") == "setup").source
        long = [line for line in src.splitlines() if len(line) > SETUP_MAX_CHARS]
        assert not long, f"setup lines over {SETUP_MAX_CHARS} characters: {long}"
        assert "sys.version_info" in src, "the Python version check is visible in the cell"
        assert re.search(r"minimum=\{", src), "the packages' minimum versions are visible in the cell"

    def test_parameters_cell_does_not_talk_about_ci(self, path):
        params = next(c for c in read(path).cells if c.get("id") == "parameters").source
        assert not re.search(r"\bCI\b", params), "the parameters cell speaks to the student, not about CI"

    def test_code_cells_are_at_most_40_lines(self, path):
        if prefix_of(path) in LONG_CELLS_ALLOWED:
            pytest.skip(f"{prefix_of(path)}: long cells still being split (LONG_CELLS_ALLOWED)")
        long = {c.get("id"): len(c.source.splitlines()) for c in read(path).cells
                if c.cell_type == "code" and len(c.source.splitlines()) > CELL_MAX_LINES}
        assert not long, f"code cells over {CELL_MAX_LINES} lines (split them, a markdown why before each): {long}"

    def test_extra_code_marks_give_a_reason(self, path):
        """handson-ml3's convention: `# extra code – <why>` marks code a reader may skip (plots, progress bars)."""
        code = [c.source for c in read(path).cells if c.cell_type == "code"]
        marks = [line.strip() for src in code for line in src.splitlines() if "# extra code" in line]
        bad = [m for m in marks if not re.search(r"# extra code – \S.{8,}", m)]
        assert not bad, f"write `# extra code – <one-line why>`: {bad}"
        if prefix_of(path) in EXTRA_CODE_NOTEBOOKS:
            assert marks, "this notebook's helper-only code (plots, progress bars) is marked `# extra code – ...`"
