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
