"""The course site: a static HTML book of the notebooks WITH their outputs, built offline.

    python -m utils.run_course --full --dataset netflix           # once: executed copies in runs/netflix-full/
    python -m utils.site --runs runs/netflix-full --out site/      # then: site/_build/html/index.html

The notebooks are never executed here: the site is built from the executed copies the course runner
wrote (``runs/<dataset>-<mode>/``), so rebuilding it retrains nothing. Builder: Jupyter Book 1
(Sphinx + MyST-NB + sphinx-book-theme), whose theme ships inside the Python package, so the build
needs no network (Jupyter Book 2 fetches its theme at build time). Install it apart from the course's
pins: ``pip install -r requirements-site.txt``.

Each page says which dataset, mode, date and machine produced its outputs; the landing page has the
course map and the README's results and cost tables; every page has a Colab and a download button.
Math: Sphinx would load MathJax from a CDN; the site serves the vendored single-file MathJax 3
(``utils/site_assets/mathjax/tex-svg.js``) instead. :func:`external_assets` lists every asset a built
page would fetch from the network (none).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from utils import config
from utils.tools import colab, progress

FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" '
           'fill="#1f6feb"/><text x="8" y="12" font-size="10" text-anchor="middle" fill="#fff">G</text></svg>')
SCRIPT_RE = re.compile(r"^\s*<script\b[^>]*>.*?</script>\s*$", re.M)
ASSET_RE = re.compile(r'<(?:script|img|link|iframe|source)\b[^>]*?\b(?:src|href)="(https?:)?//[^"]+"', re.I)


def _readme_section(heading: str) -> str:
    text = (config.ROOT / "README.md").read_text(encoding="utf-8")
    if f"\n## {heading}\n" not in text:
        return ""
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0].strip()


def _run_label(runs: Path) -> dict:
    dataset, _, mode = runs.name.partition("-")
    return {"dataset": dataset or "?", "mode": {"fast": "FAST", "full": "full"}.get(mode, mode or "?")}


def _provenance(nb, nb_path: Path, label: dict) -> dict:
    """What ran the notebook, on what, when and where: the executed copy's own record
    (``utils.tools.run_course.record_provenance``), else the folder's name and the file's date."""
    run = dict(nb.metadata.get("course_run") or {})
    when = dt.datetime.fromtimestamp(nb_path.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return {"dataset": run.get("dataset") or label["dataset"], "mode": run.get("mode") or label["mode"],
            "date": run.get("date") or when, "executed_by": run.get("executed_by") or "python -m utils.run_course",
            "machine": run.get("machine") or f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}"}


def _stamp(run: dict) -> str:
    return (f"> **Outputs on this page**: dataset **{run['dataset']}**, **{run['mode']} mode**, executed "
            f"{run['date']} by `{run['executed_by']}` on {run['machine']}.")


def stage(runs: Path, src: Path, repo: str = colab.REPO, branch: str = colab.BRANCH) -> list[str]:
    """Write the book's sources into ``src``: the executed notebooks, the landing page, config and toc."""
    import nbformat

    runs = Path(runs)
    paths = sorted(p for p in runs.glob("[0-9]*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no executed notebooks in {runs}: run `python -m utils.run_course --full "
                                f"--dataset netflix` first (it writes runs/<dataset>-<mode>/)")
    label = _run_label(runs)
    (src / "notebooks").mkdir(parents=True, exist_ok=True)
    names, figures = [], 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        drop_widgets(nb)
        figures += sum(1 for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
        run = _provenance(nb, path, label)
        label = {"dataset": run["dataset"], "mode": run["mode"]}          # the landing page says the same
        first = nb.cells[0]
        # the site has its own Colab button; the badge's image would be fetched from colab.research.google.com
        first.source = colab.BADGE_RE.sub("", first.source)
        lines = first.source.split("\n", 1)
        first.source = lines[0] + "\n\n" + _stamp(run) + ("\n" + lines[1] if len(lines) > 1 else "")
        nbformat.write(nb, src / "notebooks" / path.name)
        names.append(path.stem)
    if not figures:
        print(f"warning: the notebooks in {runs} hold no figure: were they run with MPLBACKEND=Agg? "
              "Run the course without it (the inline backend keeps the figures).", file=sys.stderr)
    course_map = re.sub(r"\]\(notebooks/([^)]+)\.ipynb\)", r"](notebooks/\1.ipynb)",
                        _readme_section("The notebooks"))
    index = ["# Multi-label movie genres with TensorFlow 2", "",
             f"The course's notebooks with their outputs (dataset **{label['dataset']}**, **{label['mode']} "
             "mode**; each page says when and where it ran). Open any page in Colab or download it with the "
             "buttons at its top.", "", "## The notebooks", "", course_map, "",
             "## Results", "", _readme_section("Results"), "", "## What it costs", "",
             _readme_section("What it costs")]
    (src / "index.md").write_text("\n".join(index) + "\n", encoding="utf-8")
    (src / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n" +
                                  "".join(f"- file: notebooks/{n}\n" for n in names), encoding="utf-8")
    (src / "_config.yml").write_text(json.dumps({
        "title": "Multi-label movie genres with TensorFlow 2",
        "author": "the course",
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "off"},
        "repository": {"url": f"https://github.com/{repo}", "branch": branch, "path_to_book": "."},
        "launch_buttons": {"colab_url": "https://colab.research.google.com", "notebook_interface": "classic"},
        "html": {"use_repository_button": False, "use_download_button": True},
        "sphinx": {"config": {"html_show_copyright": False, "suppress_warnings": ["mystnb.unknown_mime_type"],
                              "html_context": {"default_mode": "light"}, "html_favicon": "favicon.svg"}},
    }, indent=1), encoding="utf-8")
    (src / "favicon.svg").write_text(FAVICON, encoding="utf-8")  # else browsers ask for /favicon.ico (a 404)
    return names


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def drop_widgets(nb) -> int:
    """Keep a widget output's text only (``HBox(...)``, a finished progress bar's line): a widget view on a
    page makes MyST-NB load require.js and the widget manager from CDNs, and a static page cannot run it."""
    dropped = int(bool(nb.metadata.pop("widgets", None)))
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if WIDGET_VIEW in out.get("data", {}):
                del out["data"][WIDGET_VIEW]
                dropped += 1
    return dropped


def dedupe_scripts(html_dir: Path) -> int:
    """Drop repeated <script> lines: with Sphinx 7.4, sphinx-thebe's config and MathJax are added twice,
    and a second MathJax or a second ``const`` declaration is a console error. Returns the lines removed."""
    removed = 0
    for page in Path(html_dir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        seen, out = set(), []
        for line in text.split("\n"):
            if SCRIPT_RE.match(line):
                key = re.sub(r'\s(?:defer|async)="[^"]*"', "", line.strip())
                if key in seen:
                    removed += 1
                    continue
                seen.add(key)
            out.append(line)
        if len(out) != len(text.split("\n")):
            page.write_text("\n".join(out), encoding="utf-8")
    return removed


def external_assets(html_dir: Path) -> dict:
    """{page: [asset URLs]} that a browser would fetch from the network to show the built pages."""
    found = {}
    for page in sorted(Path(html_dir).rglob("*.html")):
        urls = [m.group(0) for m in ASSET_RE.finditer(page.read_text(encoding="utf-8", errors="replace"))]
        if urls:
            found[str(page.relative_to(html_dir))] = urls
    return found


MATHJAX = config.ROOT / "utils" / "site_assets" / "mathjax" / "tex-svg.js"


ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Sphinx's status lines: "reading sources... [ 50%] notebooks/03_tfidf_logistic_baseline"
SPHINX_STEP_RE = re.compile(r"(reading sources|writing output)\.\.\. \[\s*(\d+)%\]\s+(\S+)")


def _run_builder(cmd: list[str], pages: int, start: float) -> tuple[int, str]:
    """Run jupyter-book; turn Sphinx's status lines into progress (one line per page read and written when
    the output is not a terminal, redrawn in place on one). Returns (exit status, its whole output)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    kept, pending, seen = [], b"", set()
    while True:
        chunk = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096)
        if not chunk:
            break
        kept.append(chunk)
        pending += chunk
        *done, pending = re.split(rb"[\r\n]", pending)   # Sphinx redraws its status line with \r
        for raw in done:
            match = SPHINX_STEP_RE.search(ANSI_RE.sub("", raw.decode("utf-8", "replace")))
            if match and (match.group(1), match.group(3)) not in seen:
                seen.add((match.group(1), match.group(3)))
                phase = "reading" if match.group(1).startswith("reading") else "writing"
                k = min(pages, sum(1 for p, _ in seen if p == match.group(1)))
                progress.emit(progress.format_line([f"{phase} page {k}/{pages}", match.group(3)],
                                                   elapsed=time.perf_counter() - start, label="site"),
                              final=progress.mode() != "bar")
    proc.wait()
    if progress._state["open_bar"]:
        progress.emit(progress.format_line(["built"], elapsed=time.perf_counter() - start, label="site"))
    return proc.returncode, ANSI_RE.sub("", b"".join(kept).decode("utf-8", "replace"))


def build(runs: Path, out: Path, jupyter_book: str = "jupyter-book", mathjax: Path | None = MATHJAX) -> dict:
    out = Path(out)
    src = out / "src"
    if src.exists():
        shutil.rmtree(src)
    names = stage(Path(runs), src)
    progress.emit(progress.format_line([f"{len(names)} executed notebooks staged from {runs}", "building HTML"],
                                       label="site"))
    if mathjax:
        static = src / "_static" / "mathjax"
        static.mkdir(parents=True)
        shutil.copy2(mathjax, static / Path(mathjax).name)  # a single-file build (tex-svg.js needs no fonts)
        cfg = json.loads((src / "_config.yml").read_text())
        cfg["sphinx"]["config"]["mathjax_path"] = f"mathjax/{Path(mathjax).name}"
        cfg["sphinx"]["config"]["html_static_path"] = ["_static"]
        (src / "_config.yml").write_text(json.dumps(cfg, indent=1))
    start = time.perf_counter()
    returncode, output = _run_builder([jupyter_book, "build", str(src), "--path-output", str(out), "--builder", "html"],
                                      len(names) + 1, start)
    seconds = time.perf_counter() - start
    if returncode != 0:
        raise RuntimeError(f"jupyter-book build failed ({returncode}):\n{output[-6000:]}")
    html = out / "_build" / "html"
    dedupe_scripts(html)
    return {"pages": len(names) + 1, "seconds": round(seconds, 1), "html": str(html),
            "external_assets": external_assets(html)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.site", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default=str(config.ROOT / "runs" / "netflix-full"),
                        help="folder of executed notebooks written by utils.run_course (default: runs/netflix-full)")
    parser.add_argument("--out", default=str(config.ROOT / "site"), help="output folder (default: site/)")
    parser.add_argument("--jupyter-book", default=shutil.which("jupyter-book") or "jupyter-book",
                        help="the jupyter-book 1.x executable (pip install -r requirements-site.txt)")
    parser.add_argument("--mathjax", default=str(MATHJAX),
                        help="a single-file MathJax 3 build served with the site (default: the vendored tex-svg.js)")
    args = parser.parse_args(argv)
    try:
        report = build(Path(args.runs), Path(args.out), args.jupyter_book, Path(args.mathjax) if args.mathjax else None)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"built {report['pages']} pages in {report['seconds']} s (load average {load:.1f}) -> "
          f"{report['html']}/index.html")
    ext = report["external_assets"]
    print("offline: every asset is local" if not ext else
          f"fetched from the network at view time ({sum(map(len, ext.values()))} assets): " +
          "; ".join(sorted({u for us in ext.values() for u in us}))[:600])
    return 0
