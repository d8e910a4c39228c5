"""The course site (utils.tools.site): staged from executed notebooks; built when jupyter-book 1 is installed.

In CI (``COURSE_SITE_RUNS``) the site is built from the FAST run's executed notebooks, every one of them,
once, and opened page by page in a real browser; elsewhere from two small synthetic notebooks.
"""
import base64
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from utils import config
from utils.tools import colab, site

# a 1x1 PNG: the figure an executed notebook carries
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082")).decode()


def _write_runs(folder):
    """Two small executed notebooks, each with a printed score, a figure and math."""
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


@pytest.fixture
def runs(tmp_path):
    return _write_runs(tmp_path / "runs" / "netflix-full")


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


def test_widget_views_are_reduced_to_their_text(runs, tmp_path):
    """05a/05b executed show Keras/TF Hub progress widgets: on a page they would fetch require.js from a CDN."""
    path = next(runs.glob("01_*.ipynb"))
    nb = nbformat.read(path, as_version=4)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    nb.cells[1].outputs.append(nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2}, "text/plain": "HBox()"}))
    nbformat.write(nb, path)
    site.stage(runs, tmp_path / "src")
    page = nbformat.read(tmp_path / "src" / "notebooks" / path.name, as_version=4)
    assert "widgets" not in page.metadata
    assert page.cells[1].outputs[-1]["data"] == {"text/plain": "HBox()"}


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
# CI (.ci/run, stage 3): the executed copies of the FAST run that `python -m pytest` made in stage 1
# (COURSE_EXECUTED_DIR, see conftest.py); without it, the two small notebooks of the `runs` fixture.
SITE_RUNS = os.environ.get("COURSE_SITE_RUNS")


def _figures(nb) -> int:
    return sum(1 for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {}))


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The folder of executed notebooks the site is built from."""
    if SITE_RUNS:
        folder = Path(SITE_RUNS)
        have = sorted(p.name for p in folder.glob("[0-9]*.ipynb"))
        want = sorted(p.name for p in config.NOTEBOOKS_DIR.glob("[0-9]*.ipynb"))
        assert have == want, f"{folder} must hold an executed copy of every notebook: missing {sorted(set(want) - set(have))}"
        return folder
    return _write_runs(tmp_path_factory.mktemp("runs") / "netflix-full")


@pytest.fixture(scope="module")
def built(executed, tmp_path_factory):
    """The site, built once for the build test and the browser test (served MathJax: the vendored file)."""
    if not JB:
        pytest.skip("jupyter-book 1 not installed (pip install -r requirements-site.txt)")
    out = tmp_path_factory.mktemp("site")
    report = site.build(executed, out, JB, mathjax=os.environ.get("COURSE_MATHJAX") or site.MATHJAX)
    return report, out / "_build" / "html"


def test_the_site_builds_offline_from_executed_notebooks(executed, built):
    report, html = built
    sources = sorted(executed.glob("[0-9]*.ipynb"))
    assert report["pages"] == len(sources) + 1 and report["external_assets"] == {}
    total = 0
    for path in sources:
        nb = nbformat.read(path, as_version=4)
        page = (html / "notebooks" / f"{path.stem}.html").read_text()
        assert "Outputs on this page" in page and "colab.research.google.com" in page   # provenance, Colab button
        if SITE_RUNS:
            assert "<strong>FAST mode</strong>" in page, path.name      # CI's run, said on every page
        figures = _figures(nb)
        shown = len(re.findall(r'<img[^>]+src="\.\./_images/', page))
        assert shown >= figures, f"{path.name}: {figures} figures executed, {shown} on its page"
        total += figures
    assert total > 0 and len(list(html.rglob("*.png"))) >= total, "no figure reached the site (MPLBACKEND=Agg?)"
    if not SITE_RUNS:
        page = (html / "notebooks" / "01_metadata_exploration.html").read_text()
        assert "micro-F1 0.612" in page and "dataset <strong>netflix</strong>" in page


def _webdriver(driver, browser, port):
    """A minimal W3C WebDriver client (no selenium): returns (call, quit)."""
    import json
    import subprocess
    import time
    import urllib.request

    from utils.serving.browser import FLAGS

    proc = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def call(method, path, body=None):
        req = urllib.request.Request(base + path, method=method, headers={"Content-Type": "application/json"},
                                     data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())["value"]

    deadline = time.monotonic() + 30
    while True:
        try:
            call("GET", "/status")
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.terminate()
                raise
            time.sleep(0.2)
    caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:loggingPrefs": {"browser": "ALL"},
                                             "goog:chromeOptions": {"binary": browser, "args": FLAGS}}}}
    session = call("POST", "/session", caps)["sessionId"]

    def quit():
        try:
            call("DELETE", f"/session/{session}")
        finally:
            proc.terminate()
            proc.wait(10)

    return (lambda method, path, body=None: call(method, f"/session/{session}{path}", body)), quit


def test_every_page_in_a_real_browser(executed, built):
    """Every page: its images load, its math renders (MathJax served locally), the console has no errors."""
    import functools
    import http.server
    import threading
    import time

    from utils.serving.browser import find_browser
    from utils.serving.loadtest import free_port

    browser, driver = find_browser()
    if browser is None or driver is None:
        pytest.skip("no headless browser here: apt-get install chromium chromium-driver")
    _, html = built
    figures = {f"notebooks/{p.stem}.html": _figures(nbformat.read(p, as_version=4)) for p in executed.glob("[0-9]*.ipynb")}
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cmd, quit = _webdriver(driver, browser, free_port())
    try:
        pages = sorted(str(p.relative_to(html)) for p in html.glob("**/*.html")
                       if p.name not in ("search.html", "genindex.html") and "_static" not in p.parts)
        assert "index.html" in pages and "notebooks/01_metadata_exploration.html" in pages
        for page in pages:
            cmd("POST", "/url", {"url": f"http://127.0.0.1:{server.server_port}/{page}"})
            deadline = time.monotonic() + 20
            state = {}
            while time.monotonic() < deadline:
                state = cmd("POST", "/execute/sync", {"args": [], "script": """
                    const imgs = [...document.images];
                    return {bad: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
                            images: imgs.length, math: document.querySelectorAll('.math').length,
                            rendered: document.querySelectorAll('mjx-container').length};"""})
                if not state["bad"] and state["rendered"] >= min(state["math"], 1):
                    break
                time.sleep(0.3)
            assert state["bad"] == [], f"{page}: images that did not load: {state['bad']}"
            if state["math"]:
                assert state["rendered"] > 0, f"{page}: math not rendered by MathJax"
            errors = [e for e in cmd("POST", "/se/log", {"type": "browser"}) if e.get("level") == "SEVERE"]
            assert errors == [], f"{page}: console errors {errors}"
            if page in figures:    # every figure the notebook drew is on its page, and loaded (above)
                assert state["images"] >= figures[page], f"{page}: {state['images']} images, {figures[page]} figures"
            if page.startswith("notebooks/") and not SITE_RUNS:
                assert state["images"] >= 1 and state["math"] >= 1
        assert set(figures) <= set(pages)
    finally:
        quit()
        server.shutdown()


def test_the_pages_workflow_runs_the_documented_commands():
    import yaml

    from utils import config

    flow = yaml.safe_load((config.ROOT / ".github" / "workflows" / "site.yml").read_text())
    steps = flow["jobs"]["build"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert uses == ["actions/checkout", "actions/setup-python", "actions/upload-pages-artifact"]
    assert any("pip install -r requirements-site.txt" in r for r in runs)
    assert any(r.startswith("python -m utils.run_course --$MODE --dataset $DATASET") for r in runs)
    build = next(r for r in runs if "utils.site" in r)
    assert "--runs runs/$DATASET-$MODE" in build and "--out site" in build
    assert steps[-1]["with"]["path"] == "site/_build/html"
    assert flow["jobs"]["deploy"]["steps"][0]["uses"].startswith("actions/deploy-pages")
    readme = (config.ROOT / "README.md").read_text()
    section = readme.split("## The course site", 1)[1].split("\n## ", 1)[0]
    for command in ("pip install -r requirements-site.txt", "python -m utils.run_course --full --dataset netflix",
                    "python -m utils.site --runs runs/netflix-full", ".github/workflows/site.yml"):
        assert command in section, command
    # the runner writes runs/<dataset>-<mode>, the folder the workflow and the README build from
    assert "runs/<dataset>-<mode>" in (config.ROOT / "utils" / "tools" / "run_course.py").read_text()


def test_notebooks_without_figures_are_flagged(runs, tmp_path, capsys):
    site.stage(runs, tmp_path / "with")
    assert "no figure" not in capsys.readouterr().err
    for path in runs.glob("*.ipynb"):  # as executed with MPLBACKEND=Agg: plt.show() leaves no image
        nb = nbformat.read(path, as_version=4)
        nb.cells[1].outputs = nb.cells[1].outputs[:1]
        nbformat.write(nb, path)
    site.stage(runs, tmp_path / "without")
    assert "MPLBACKEND=Agg" in capsys.readouterr().err


def test_the_build_shows_one_progress_line_per_page(monkeypatch, capsys, tmp_path):
    """#28: Sphinx redraws one status line with \\r; the site build turns it into one line per page read and
    written when the output is not a terminal (a CI log), never a flood, and keeps the builder's output."""
    import sys
    import time

    monkeypatch.setenv("COURSE_PROGRESS", "lines")
    script = tmp_path / "fake_builder.py"
    script.write_text(
        "import sys\n"
        "for phase in ('reading sources', 'writing output'):\n"
        "    for k, page in enumerate(['index', 'notebooks/01_a', 'notebooks/02_b'], 1):\n"
        "        for _ in range(3):   # Sphinx may redraw the same page's line\n"
        "            sys.stdout.write(f'\\x1b[2K\\x1b[01m{phase}... \\x1b[39;49;00m[{100 * k // 3:3d}%] {page}\\r')\n"
        "    sys.stdout.write('\\n')\n"
        "print('build succeeded.')\n")
    code, output = site._run_builder([sys.executable, str(script)], 3, time.perf_counter())
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("[progress] site")]
    assert code == 0 and "build succeeded." in output and "\x1b" not in output
    assert len(lines) == 6 and "\r" not in err, err
    assert lines[0].startswith("[progress] site · reading page 1/3 · index")
    assert lines[-1].startswith("[progress] site · writing page 3/3 · notebooks/02_b") and "elapsed" in lines[-1]
