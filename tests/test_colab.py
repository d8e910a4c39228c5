"""utils.tools.colab: badges, setup cells and colab_links.md follow REPO/BRANCH, and forks are one command."""
import json
import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from utils.tools import colab

SETUP = '''# Setup
import os, sys
IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    REPO, BRANCH = "{repo}", "{branch}"
    if not os.path.isdir("/content/course"):
        !git clone -q --depth 1 --branch {{BRANCH}} https://github.com/{{REPO}}.git /content/course
    %cd /content/course/notebooks
'''


def make_notebook(path, repo=colab.REPO, branch=colab.BRANCH, with_badge=True, gpu=False, gpu_metadata=True):
    intro = f"# {path.name[:3].rstrip('_')} · Title of {path.stem}\n\n"
    if with_badge:
        intro += colab.badge(path.name, repo, branch) + "\n\n"
    if gpu:
        intro += "GPU: Runtime → Change runtime type → GPU.\n\n"
    intro += "What you will learn:\n- things"
    cells = [new_markdown_cell(intro), new_code_cell(SETUP.format(repo=repo, branch=branch)),
             new_markdown_cell("## Summary"), new_markdown_cell("## Exercises")]
    cells[1]["id"] = "setup"
    nb = new_notebook(cells=cells)
    if gpu and gpu_metadata:
        nb.metadata.update({"accelerator": "GPU", "colab": {"gpuType": "T4"}})
    nbformat.write(nb, path)
    return path


@pytest.fixture
def course(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    for name in ["01_data.ipynb", "02_clean.ipynb", "03_tfidf.ipynb"]:
        make_notebook(nbs / name)
    make_notebook(nbs / "04_bilstm.ipynb", gpu=True)
    links = tmp_path / "colab_links.md"
    links.write_text(colab.render_links(nbs))
    return nbs, links


@pytest.mark.parametrize("note, gpu", [
    ("GPU: Runtime → Change runtime type → GPU.", True),
    ("Training is much faster on a GPU.", True),
    ("No GPU is needed for this notebook.", False),
    ("Runs on any CPU.", False),
])
def test_gpu_note(note, gpu):
    assert colab.needs_gpu({"cells": [{"cell_type": "markdown", "source": f"# 01 · T\n\n{note}"}]}) is gpu


def test_badge_is_the_documented_line():
    assert colab.badge("06_thresholds_and_f1.ipynb") == (
        '<a href="https://colab.research.google.com/github/movie-genres-course/multilabel-genres-tf2/'
        'blob/main/notebooks/06_thresholds_and_f1.ipynb" target="_parent"><img '
        'src="https://colab.research.google.com/assets/colab-badge.svg" alt="Open In Colab"/></a>')
    assert colab.BADGE_RE.fullmatch(colab.badge("01_x.ipynb", "a/b", "dev"))["branch"] == "dev"


@pytest.mark.parametrize("names, problem", [
    (["01_a.ipynb", "02_b.ipynb", "03_c.ipynb", "04_d.ipynb", "05a_e.ipynb", "05b_f.ipynb", "06_g.ipynb"], None),
    (["01_a.ipynb", "03_c.ipynb"], "without gaps"),
    (["02_a.ipynb", "03_c.ipynb"], "without gaps"),
    (["01_a.ipynb", "01_b.ipynb"], "split it into parts"),
    (["01_a.ipynb", "02a_b.ipynb", "02c_c.ipynb"], "must be a, b, c"),
    (["01_a.ipynb", "02_b.ipynb", "02a_c.ipynb"], "both a plain 02_"),
    (["01_a.ipynb", "2_b.ipynb"], "not named"),
    (["01_a.ipynb", "02_Clean-Text.ipynb"], "not named"),
])
def test_numbering(names, problem):
    problems = colab.numbering_problems(names)
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_in_sync_course_has_no_drift(course):
    nbs, links = course
    assert colab.check(folder=nbs, links_file=links) == []
    text = links.read_text()
    for name in ["01_data", "02_clean", "03_tfidf", "04_bilstm"]:
        assert colab.badge(f"{name}.ipynb") in text
    assert "| [04_bilstm.ipynb](notebooks/04_bilstm.ipynb) | 04 · Title of 04_bilstm | recommended |" in text


def test_check_reports_every_kind_of_drift(course):
    nbs, links = course
    make_notebook(nbs / "02_clean.ipynb", repo="someone/else")              # badge + setup elsewhere
    make_notebook(nbs / "03_tfidf.ipynb", with_badge=False)                  # badge missing
    wrong = json.loads((nbs / "01_data.ipynb").read_text())                  # badge points at another file
    wrong["cells"][0]["source"] = "".join(wrong["cells"][0]["source"]).replace("01_data", "04_bilstm")
    (nbs / "01_data.ipynb").write_text(json.dumps(wrong))
    make_notebook(nbs / "05_extra.ipynb")                                   # new notebook, links out of date
    problems = "\n".join(colab.check(folder=nbs, links_file=links))
    assert "02_clean.ipynb: badge points at someone/else@main/02_clean.ipynb" in problems
    assert "02_clean.ipynb: setup cell clones someone/else@main" in problems
    assert "03_tfidf.ipynb: the first cell has no Open-in-Colab badge" in problems
    assert "01_data.ipynb: badge points at" in problems and "/04_bilstm.ipynb" in problems
    assert "colab_links.md is out of date" in problems


def test_rewrite_for_a_fork_then_back(course):
    nbs, links = course
    make_notebook(nbs / "03_tfidf.ipynb", with_badge=False)
    before = nbformat.read(nbs / "04_bilstm.ipynb", as_version=4)
    changed = colab.rewrite("fork-owner/my-course", "dev", folder=nbs, links_file=links)
    assert set(changed) == {"01_data.ipynb", "02_clean.ipynb", "03_tfidf.ipynb", "04_bilstm.ipynb",
                            "colab_links.md"}
    assert colab.check("fork-owner/my-course", "dev", folder=nbs, links_file=links) == []
    assert colab.check(folder=nbs, links_file=links) != []          # no longer the default location
    after = nbformat.read(nbs / "04_bilstm.ipynb", as_version=4)
    assert 'REPO, BRANCH = "fork-owner/my-course", "dev"' in after.cells[1].source
    assert after.cells[1].source.replace("fork-owner/my-course", colab.REPO).replace('"dev"', '"main"') \
        == before.cells[1].source                                     # only that line changed
    assert [c.source for c in after.cells[2:]] == [c.source for c in before.cells[2:]]
    inserted = nbformat.read(nbs / "03_tfidf.ipynb", as_version=4).cells[0].source
    assert inserted.startswith("# 03 · Title") and colab.badge("03_tfidf.ipynb", "fork-owner/my-course", "dev") in inserted
    assert colab.rewrite("fork-owner/my-course", "dev", folder=nbs, links_file=links) == []   # idempotent
    colab.rewrite(folder=nbs, links_file=links)
    assert colab.check(folder=nbs, links_file=links) == []


@pytest.mark.parametrize("repo, branch", [("no-slash", "main"), ("a/b/c", "main"), ("a/b", "x y"),
                                          ('a/b"><script>', "main"), ("a/b", "../x")])
def test_bad_locations_are_refused(repo, branch):
    with pytest.raises(ValueError):
        colab.check_location(repo, branch)


def test_set_location_rewrites_the_constants(tmp_path):
    copy = tmp_path / "colab.py"
    shutil.copy(colab.__file__, copy)
    assert colab.set_location("me/fork", "dev", module_file=copy)
    text = copy.read_text()
    assert 'REPO = "me/fork"' in text and 'BRANCH = "dev"' in text
    assert text.count("me/fork") == 1
    assert not colab.set_location("me/fork", "dev", module_file=copy)


def test_command_line_check_and_bad_repo(capsys):
    with pytest.raises(SystemExit) as exc:
        colab.main(["--repo", "not a repo", "--check"])
    assert exc.value.code == 2 and "owner/name" in capsys.readouterr().err


def test_gpu_notebooks_open_a_gpu_runtime(course):
    nbs, links = course
    make_notebook(nbs / "04_bilstm.ipynb", gpu=True, gpu_metadata=False)
    nb = json.loads((nbs / "04_bilstm.ipynb").read_text())
    assert "recommends a GPU" in colab.gpu_metadata_problem(nb)
    assert any("04_bilstm.ipynb: recommends a GPU" in p for p in colab.check(folder=nbs, links_file=links))
    colab.rewrite(folder=nbs, links_file=links)
    meta = json.loads((nbs / "04_bilstm.ipynb").read_text())["metadata"]
    assert meta["accelerator"] == "GPU" and meta["colab"]["gpuType"] == "T4"
    assert "accelerator" not in json.loads((nbs / "01_data.ipynb").read_text())["metadata"]
    assert colab.check(folder=nbs, links_file=links) == []


def test_the_course_notebooks_that_recommend_a_gpu_open_one():
    gpu = {p.name[:3] for p in colab.notebook_files() if colab._read(p)["metadata"].get("accelerator") == "GPU"}
    assert gpu == {"04b", "05a", "05b"}
    assert all(colab.gpu_metadata_problem(colab._read(p)) is None for p in colab.notebook_files())
