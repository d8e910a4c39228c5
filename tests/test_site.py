"""The course site (utils.tools.site): staged from executed notebooks; built when jupyter-book 1 is installed."""
import base64
import os
import shutil

import nbformat
import pytest

from utils.tools import colab, site

# a 1x1 PNG: the figure an executed notebook carries
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082")).decode()


@pytest.fixture
def runs(tmp_path):
    folder = tmp_path / "runs" / "netflix-full"
    folder.mkdir(parents=True)
    for name in ("01_metadata_exploration", "03_tfidf_logistic_baseline"):
        nb = nbformat.v4.new_notebook(cells=[
            nbformat.v4.new_markdown_cell(f"# {name[:2]} · A chapter\n\n{colab.badge(name + '.ipynb')}\n\nWhy: $\\sigma(z)$."),
            nbformat.v4.new_code_cell("print('micro-F1 0.612')"),
        ])
        nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="micro-F1 0.612\n"),
                               nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})]
        nb.cells[1].execution_count = 1
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


def test_stage_writes_pages_with_outputs_and_their_provenance(runs, tmp_path):
    src = tmp_path / "src"
    names = site.stage(runs, src)
    assert names == ["01_metadata_exploration", "03_tfidf_logistic_baseline"]
    page = nbformat.read(src / "notebooks" / "01_metadata_exploration.ipynb", as_version=4)
    first = page.cells[0].source
    assert "dataset **netflix**, **full mode**" in first and "UTC" in first and "CPU cores" in first
    assert not colab.BADGE_RE.search(first), "the badge image would be fetched from the network"
    assert page.cells[1].outputs[1]["data"]["image/png"] == PNG
    index = (src / "index.md").read_text()
    assert "(notebooks/03_tfidf_logistic_baseline.ipynb)" in index
    assert "## Results" in index and "micro-F1" in index and "## What it costs" in index
    toc = (src / "_toc.yml").read_text()
    assert toc.splitlines()[1:] == ["root: index", "chapters:", "- file: notebooks/01_metadata_exploration",
                                    "- file: notebooks/03_tfidf_logistic_baseline"]


def test_no_executed_notebooks_is_a_clear_error(tmp_path, capsys):
    assert site.main(["--runs", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "utils.run_course" in capsys.readouterr().err


def test_external_assets_are_found(tmp_path):
    (tmp_path / "a.html").write_text('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>'
                                     '<script src="_static/x.js"></script><a href="https://github.com/x">link</a>')
    (tmp_path / "b.html").write_text('<img src="_images/fig.png"><link href="//fonts.example/css" rel="stylesheet">')
    found = site.external_assets(tmp_path)
    assert found == {"a.html": ['<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"'],
                     "b.html": ['<link href="//fonts.example/css"']}


JB = os.environ.get("COURSE_JUPYTER_BOOK") or shutil.which("jupyter-book")


@pytest.mark.skipif(not JB, reason="jupyter-book 1 not installed (pip install -r requirements-site.txt)")
def test_the_site_builds_offline_from_executed_notebooks(runs, tmp_path):
    mathjax = os.environ.get("COURSE_MATHJAX")
    report = site.build(runs, tmp_path / "site", JB, mathjax=mathjax)
    html = tmp_path / "site" / "_build" / "html"
    page = (html / "notebooks" / "01_metadata_exploration.html").read_text()
    assert "micro-F1 0.612" in page and "dataset <strong>netflix</strong>" in page
    assert list(html.rglob("*.png")), "the figure was not written"
    assert "colab.research.google.com" in page  # the Colab launch button
    if mathjax:
        assert report["external_assets"] == {}
