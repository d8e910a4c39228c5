"""Nothing is defined twice: no run of 6+ code lines is shared by a notebook and the plumbing in utils/.

utils/lessons/ is generated from the notebooks' #@save cells (checked by test_export.py), so it is
not a copy; every other module of utils/ must call the notebooks' code, not repeat it.
"""
import json
import re

from utils import config

WINDOW = 6


def _normalise(lines):
    out = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith(("#", "import ", "from ", '"""', "'''")) or re.fullmatch(r"[\])}\[({,:]+", line):
            continue
        out.append(re.sub(r"\s+", " ", line))
    return out


def _windows(lines):
    return {tuple(lines[i:i + WINDOW]) for i in range(len(lines) - WINDOW + 1)}


def plumbing_windows():
    found = {}
    for path in sorted((config.ROOT / "utils").rglob("*.py")):
        if "lessons" in path.parts:
            continue
        for w in _windows(_normalise(path.read_text(encoding="utf-8").splitlines())):
            found.setdefault(w, path.relative_to(config.ROOT))
    return found


def test_no_notebook_code_is_repeated_in_utils():
    plumbing = plumbing_windows()
    repeated = []
    for nb_path in sorted(config.NOTEBOOKS_DIR.glob("[0-9]*.ipynb")):
        for cell in json.loads(nb_path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for w in _windows(_normalise(source.splitlines())):
                if w in plumbing:
                    repeated.append(f"{nb_path.name} cell {cell.get('id')!r} ~ {plumbing[w]}: {w[0]!r}")
    assert not repeated, "code written in a notebook is repeated in utils/:\n" + "\n".join(sorted(set(repeated))[:20])


def test_the_check_finds_a_copy():
    code = ["def f(x):", "    a = x + 1", "    b = a * 2", "    c = b - 3", "    d = c / 4", "    e = d ** 5", "    return e"]
    assert _windows(_normalise(code)) & _windows(_normalise(["# a copy", *code]))
