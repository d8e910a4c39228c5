"""Where the course lives on GitHub, and the Colab links that depend on it.

``REPO`` and ``BRANCH`` below are the one place the GitHub location is written by
hand. Everything that repeats it is generated from them:

* the "Open in Colab" badge in the first cell of every notebook,
* the ``REPO, BRANCH = ...`` line of every notebook's setup cell (what Colab clones),
* ``colab_links.md`` (all notebooks with their badges),
* the notebook metadata that opens a GPU runtime (``accelerator``, Colab's ``gpuType``) for the
  notebooks whose first cell recommends a GPU (:func:`needs_gpu`).

For a fork::

    python -m utils.colab --repo you/your-fork --branch main   # rewrite everything
    python -m utils.colab --check                                # report drift, exit 1 if any
    python -m utils.colab                                        # regenerate from REPO/BRANCH
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = "movie-genres-course/multilabel-genres-tf2"
BRANCH = "main"

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = ROOT / "notebooks"
LINKS_FILE = ROOT / "colab_links.md"
BADGE_IMG = "https://colab.research.google.com/assets/colab-badge.svg"

# notebooks are NN_name.ipynb; a chapter may be split into parts NNa_, NNb_, ...
NAME_RE = re.compile(r"^(?P<chapter>\d{2})(?P<part>[a-z]?)_(?P<slug>[a-z0-9_]+)\.ipynb$")
BADGE_RE = re.compile(
    r'<a href="https://colab\.research\.google\.com/github/(?P<repo>[^/"\s]+/[^/"\s]+)/blob/'
    r'(?P<branch>[^"\s]+?)/notebooks/(?P<file>[^/"\s]+\.ipynb)" target="_parent">'
    r'<img src="[^"]*" alt="Open In Colab"/></a>')
SETUP_RE = re.compile(r'^(?P<indent>[ \t]*)REPO, BRANCH = "(?P<repo>[^"]*)", "(?P<branch>[^"]*)"[ \t]*$',
                      re.MULTILINE)
_CONST_RE = {name: re.compile(rf'^{name} = "[^"]*"$', re.MULTILINE) for name in ("REPO", "BRANCH")}
_REPO_OK = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_BRANCH_OK = re.compile(r"^[A-Za-z0-9_./-]+$")


def colab_url(notebook: str, repo: str = REPO, branch: str = BRANCH) -> str:
    """The Colab address that opens ``notebooks/<notebook>`` from GitHub."""
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{notebook}"


def badge(notebook: str, repo: str = REPO, branch: str = BRANCH) -> str:
    """The HTML "Open in Colab" badge for one notebook (the exact line every notebook carries)."""
    return (f'<a href="{colab_url(notebook, repo, branch)}" target="_parent">'
            f'<img src="{BADGE_IMG}" alt="Open In Colab"/></a>')


def check_location(repo: str, branch: str) -> None:
    """Refuse an owner/name or branch that would produce a broken link."""
    if not _REPO_OK.match(repo or ""):
        raise ValueError(f"--repo must look like owner/name (letters, digits, '.', '_', '-'), not {repo!r}.")
    if not _BRANCH_OK.match(branch or "") or ".." in branch:
        raise ValueError(f"--branch {branch!r} is not a valid branch name.")


def notebook_files(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The course notebooks (``NN_name.ipynb`` / ``NNa_name.ipynb``) in reading order."""
    return sorted(p for p in Path(folder).glob("*.ipynb") if NAME_RE.match(p.name))


def numbering_problems(names) -> list[str]:
    """What is wrong with the numbering of these notebook file names (empty list: all good).

    Chapters must run 01, 02, 03, ... with no gap or repeat; a chapter split into
    parts is 05a_, 05b_, ... (consecutive letters from a) and has no plain 05_ file.
    """
    problems, chapters = [], {}
    for name in names:
        m = NAME_RE.match(name)
        if not m:
            problems.append(f"{name}: not named NN_name.ipynb or NNa_name.ipynb (lower case, digits, _).")
            continue
        chapters.setdefault(int(m["chapter"]), []).append(m["part"])
    numbers = sorted(chapters)
    if numbers and numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"chapters are {['%02d' % n for n in numbers]}: they must run 01, 02, ... without gaps.")
    for number, parts in sorted(chapters.items()):
        if len(parts) > 1 and "" in parts:
            problems.append(f"chapter {number:02d} has both a plain {number:02d}_ notebook and parts.")
        letters = sorted(p for p in parts if p)
        if len(letters) != len(set(letters)):
            problems.append(f"chapter {number:02d} repeats a part letter: {letters}.")
        elif letters and letters != [chr(ord("a") + i) for i in range(len(letters))]:
            problems.append(f"chapter {number:02d} parts are {letters}: they must be a, b, c, ...")
        if parts.count("") > 1:
            problems.append(f"chapter {number:02d} has {parts.count('')} notebooks: split it into parts a, b, ...")
    return problems


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _set_source(cell, text: str) -> None:
    cell["source"] = text.splitlines(keepends=True) if isinstance(cell.get("source"), list) else text


def _read(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _write(path: Path, nb: dict) -> None:
    import nbformat

    from utils.files import atomic_write_bytes

    text = nbformat.writes(nbformat.from_dict(nb))
    atomic_write_bytes(path, (text if text.endswith("\n") else text + "\n").encode("utf-8"))


def title(nb: dict, fallback: str = "") -> str:
    """The ``# ...`` heading of a notebook's first markdown cell."""
    for cell in nb.get("cells", [])[:1]:
        for line in _source(cell).splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return fallback


def needs_gpu(nb: dict) -> bool:
    """True when the first cell recommends a GPU (says how to get one, or mentions one without "no GPU")."""
    cells = nb.get("cells", [])
    text = _source(cells[0]) if cells else ""
    if re.search(r"change runtime type", text, re.IGNORECASE):
        return True
    return bool(re.search(r"\bGPU\b", text)) and not re.search(r"\bno GPU\b", text, re.IGNORECASE)


GPU_TYPE = "T4"                                # the GPU of Colab's free tier


def gpu_metadata_problem(nb: dict) -> str | None:
    """What is wrong with the GPU metadata: a GPU notebook must open a GPU runtime, the others must not ask for one."""
    meta = nb.get("metadata", {})
    has = meta.get("accelerator") == "GPU" and meta.get("colab", {}).get("gpuType") == GPU_TYPE
    asks = "accelerator" in meta or "gpuType" in meta.get("colab", {})
    if needs_gpu(nb) and not has:
        return f'recommends a GPU but its metadata does not open one ("accelerator": "GPU", colab.gpuType {GPU_TYPE})'
    if not needs_gpu(nb) and asks:
        return "asks Colab for a GPU runtime in its metadata but its first cell says no GPU is needed"
    return None


def set_gpu_metadata(nb: dict) -> bool:
    """Make the metadata agree with :func:`needs_gpu`; True if it changed."""
    if gpu_metadata_problem(nb) is None:
        return False
    meta = nb.setdefault("metadata", {})
    if needs_gpu(nb):
        meta["accelerator"] = "GPU"
        meta.setdefault("colab", {})["gpuType"] = GPU_TYPE
        meta["colab"].setdefault("provenance", [])
    else:
        meta.pop("accelerator", None)
        meta.get("colab", {}).pop("gpuType", None)
    return True


def setup_cell(nb: dict):
    """The code cell with id ``setup`` (or None)."""
    return next((c for c in nb.get("cells", []) if c.get("id") == "setup" and c.get("cell_type") == "code"), None)


def notebook_problems(path: Path, repo: str = REPO, branch: str = BRANCH) -> list[str]:
    """Badge and setup-cell drift of one notebook against ``repo``/``branch``."""
    path = Path(path)
    nb = _read(path)
    cells = nb.get("cells", [])
    problems = []
    first = _source(cells[0]) if cells and cells[0].get("cell_type") == "markdown" else ""
    badges = list(BADGE_RE.finditer(first))
    want = badge(path.name, repo, branch)
    if not badges:
        problems.append(f"{path.name}: the first cell has no Open-in-Colab badge (expected {want}).")
    elif len(badges) > 1:
        problems.append(f"{path.name}: the first cell has {len(badges)} Colab badges, expected one.")
    elif badges[0].group(0) != want:
        problems.append(f"{path.name}: badge points at {badges[0]['repo']}@{badges[0]['branch']}/"
                        f"{badges[0]['file']}, expected {repo}@{branch}/{path.name}.")
    gpu = gpu_metadata_problem(nb)
    if gpu:
        problems.append(f"{path.name}: {gpu}: run python -m utils.colab")
    setup = setup_cell(nb)
    if setup is None:
        problems.append(f"{path.name}: no code cell with id 'setup'.")
    else:
        lines = list(SETUP_RE.finditer(_source(setup)))
        if len(lines) != 1:
            problems.append(f"{path.name}: the setup cell must have exactly one line "
                            f'REPO, BRANCH = "owner/name", "branch" (found {len(lines)}).')
        elif (lines[0]["repo"], lines[0]["branch"]) != (repo, branch):
            problems.append(f"{path.name}: setup cell clones {lines[0]['repo']}@{lines[0]['branch']}, "
                            f"expected {repo}@{branch}.")
    return problems


def render_links(folder: Path = NOTEBOOKS_DIR, repo: str = REPO, branch: str = BRANCH) -> str:
    """The text of ``colab_links.md`` for the notebooks in ``folder``."""
    rows = []
    for path in notebook_files(folder):
        nb = _read(path)
        gpu = "recommended" if needs_gpu(nb) else "not needed"
        rows.append(f"| [{path.name}](notebooks/{path.name}) | {title(nb, path.stem)} | {gpu} | "
                    f"{badge(path.name, repo, branch)} |")
    return "\n".join([
        "# Open the notebooks in Colab",
        "",
        f"Repository `{repo}`, branch `{branch}`. This file is generated by `python -m utils.colab`;",
        "do not edit it by hand. For a fork: `python -m utils.colab --repo you/your-fork --branch main`",
        "rewrites this file, every notebook's badge and the setup cells' `REPO, BRANCH` line.",
        "",
        "For a GPU in Colab: Runtime → Change runtime type → GPU.",
        "",
        "| Notebook | Title | GPU | Open |",
        "|---|---|---|---|",
        *rows,
        "",
    ])


def check(repo: str = REPO, branch: str = BRANCH, folder: Path = NOTEBOOKS_DIR,
          links_file: Path = LINKS_FILE, numbering: bool = True) -> list[str]:
    """Every place that disagrees with ``repo``/``branch`` or with the notebook list."""
    folder, links_file = Path(folder), Path(links_file)
    problems = numbering_problems([p.name for p in folder.glob("*.ipynb")]) if numbering else []
    for path in notebook_files(folder):
        problems += notebook_problems(path, repo, branch)
    want = render_links(folder, repo, branch)
    if not links_file.exists():
        problems.append(f"{links_file.name} is missing: run python -m utils.colab")
    elif links_file.read_text(encoding="utf-8") != want:
        problems.append(f"{links_file.name} is out of date with the notebooks: run python -m utils.colab")
    return problems


def rewrite_notebook(path: Path, repo: str = REPO, branch: str = BRANCH) -> bool:
    """Point one notebook's badge and setup cell at ``repo``/``branch``; True if it changed.

    A first cell without a badge gets one right after its ``# `` title line.
    """
    path = Path(path)
    nb = _read(path)
    cells = nb.get("cells", [])
    changed = False
    want = badge(path.name, repo, branch)
    if cells and cells[0].get("cell_type") == "markdown":
        text = _source(cells[0])
        new = BADGE_RE.sub(lambda m: want, text) if BADGE_RE.search(text) else None
        if new is None:
            lines = text.split("\n")
            at = next((i + 1 for i, line in enumerate(lines) if line.startswith("# ")), 0)
            new = "\n".join(lines[:at] + ["", want] + lines[at:])
        if new != text:
            _set_source(cells[0], new)
            changed = True
    changed = set_gpu_metadata(nb) or changed
    setup = setup_cell(nb)
    if setup is not None:
        text = _source(setup)
        new = SETUP_RE.sub(lambda m: f'{m["indent"]}REPO, BRANCH = "{repo}", "{branch}"', text)
        if new != text:
            _set_source(setup, new)
            changed = True
    if changed:
        _write(path, nb)
    return changed


def set_location(repo: str, branch: str, module_file: Path = Path(__file__)) -> bool:
    """Rewrite the ``REPO``/``BRANCH`` constants of this module; True if it changed."""
    from utils.files import atomic_write_bytes

    text = Path(module_file).read_text(encoding="utf-8")
    new = _CONST_RE["REPO"].sub(f'REPO = "{repo}"', text, count=1)
    new = _CONST_RE["BRANCH"].sub(f'BRANCH = "{branch}"', new, count=1)
    if new != text:
        atomic_write_bytes(Path(module_file), new.encode("utf-8"))
    return new != text


def rewrite(repo: str = REPO, branch: str = BRANCH, folder: Path = NOTEBOOKS_DIR,
            links_file: Path = LINKS_FILE) -> list[str]:
    """Point every badge, setup cell and ``colab_links.md`` at ``repo``/``branch``.

    Returns the names of the files that changed.
    """
    from utils.files import atomic_write_bytes

    check_location(repo, branch)
    changed = [p.name for p in notebook_files(folder) if rewrite_notebook(p, repo, branch)]
    text = render_links(folder, repo, branch)
    links_file = Path(links_file)
    if not links_file.exists() or links_file.read_text(encoding="utf-8") != text:
        atomic_write_bytes(links_file, text.encode("utf-8"))
        changed.append(links_file.name)
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m utils.colab",
        description="Point the Colab badges, setup cells and colab_links.md at a GitHub repository.")
    parser.add_argument("--repo", help=f"owner/name on GitHub (default: {REPO})")
    parser.add_argument("--branch", help=f"branch Colab opens and clones (default: {BRANCH})")
    parser.add_argument("--check", action="store_true",
                        help="only report what is out of date (exit status 1 if anything is)")
    args = parser.parse_args(argv)
    repo, branch = args.repo or REPO, args.branch or BRANCH
    try:
        check_location(repo, branch)
    except ValueError as err:
        parser.error(str(err))
    if args.check:
        problems = check(repo, branch)
        for problem in problems:
            print(f"drift: {problem}")
        print(f"{len(problems)} problem(s) against {repo}@{branch}." if problems
              else f"All notebooks and colab_links.md point at {repo}@{branch}.")
        return 1 if problems else 0
    changed = rewrite(repo, branch)
    if (repo, branch) != (REPO, BRANCH) and set_location(repo, branch):
        changed.append("utils/colab.py")
    print(f"Pointed the course at {repo}@{branch}: "
          + (", ".join(changed) if changed else "everything was already up to date") + ".")
    remaining = numbering_problems([p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")])
    for problem in remaining:
        print(f"warning: {problem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
