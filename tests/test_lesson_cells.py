"""Every chapter stands on the chapters before it, and its cells hold the lesson and nothing else.

(a) A notebook never uses a name that a later notebook's ``#@save`` cells define: neither by importing
    it from ``utils.lessons`` nor through a ``utils`` module whose imported function, class or
    constant reaches it (followed name by name: what a function's body refers to, its own lazy
    imports, the module-level imports it uses). Notebooks are ordered by their file names (01, 02,
    03, 04a, 04b, ...); which lessons module a ``#@save`` cell feeds is what ``utils.export`` says.
(b) No code cell carries test scaffolding: no ``assert`` statement and no ``numpy.testing``; guards
    belong in ``tests/``.
(c) No cell, markdown or code, names a test file (``tests/...``, ``test_*.py``) or CI (the word, or
    a variable that only CI sets), and no lesson reads such a variable: that is plumbing.

Each check has a test that plants a violation and sees it caught.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from utils import config
from utils.tools import export

# Variables that only CI (or the course's own tests) set: a lesson never names them. Users' variables
# (COURSE_FAST, COURSE_DATASET, COURSE_SEED, COURSE_DATA_DIR, ...) are fine.
CI_VARIABLES = ("COURSE_TFHUB_RANDOM_ENCODER", "COURSE_TEST_FLAG", "COLAB_SIM_ALONE", "GITHUB_ACTIONS")
TEST_OR_CI = re.compile(r"\btests/|\btest_\w+\.py\b|\bCI\b|(?i:continuous integration)|"
                        + "|".join(rf"\b{v}\b" for v in CI_VARIABLES))
SCAFFOLDING = re.compile(r"\b(?:np|numpy)\.testing\b")   # np.testing.assert_*, from numpy.testing import ...

# Known violations still waiting for a fix: none (issue 24 removed the last ones). An entry here is a
# (notebook, cell id) -> kind that the checks skip; test_pending_entries_still_apply fails on a stale one.
PENDING: dict[tuple[str, str], str] = {}


# --------------------------------------------------------------------------- reading notebooks

def notebooks(folder: Path = config.NOTEBOOKS_DIR) -> list[Path]:
    return sorted(Path(folder).glob("[0-9]*.ipynb"))


def cells(path: Path) -> list[dict]:
    out = []
    for i, cell in enumerate(json.loads(Path(path).read_text(encoding="utf-8"))["cells"]):
        source = cell.get("source", "")
        out.append({"type": cell["cell_type"], "id": cell.get("id") or str(i),
                    "source": "".join(source) if isinstance(source, list) else source})
    return out


def code_tree(source: str) -> ast.Module:
    """The cell as Python: IPython's ``%magic`` and ``!shell`` lines become ``pass`` (indentation kept)."""
    first = source.lstrip().split("\n", 1)[0]
    if first.startswith("%%") and first.split()[0] not in ("%%time", "%%timeit", "%%capture"):
        return ast.Module(body=[], type_ignores=[])       # a cell in another language (%%bash, %%html, ...)
    return ast.parse("\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in source.splitlines()))


# --------------------------------------------------------------------------- (a) chapter order

def lesson_definitions(folder: Path = config.NOTEBOOKS_DIR) -> dict[tuple[str, str], str]:
    """``{(lessons module, name): notebook}`` for every top-level name a ``#@save`` cell defines (first one wins)."""
    found = {}
    for module, parts in export.collect(folder).items():
        for notebook, _, body in parts:
            for node in ast.parse(body).body:
                for name in _defined_names(node):
                    found.setdefault((module, name), notebook)
    return found


def _defined_names(node) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _imports(statements, package: str = "") -> dict[str, tuple[str, str | None]]:
    """``{local name: (module, name or None for the module itself)}`` of the import statements among ``statements``."""
    out = {}
    for node in statements:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = (alias.name, None)
                else:
                    out[alias.name.split(".")[0]] = (alias.name.split(".")[0], None)
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if node.level:
                module = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [module])
            for alias in node.names:
                out[alias.asname or alias.name] = (module, alias.name)
    return out


def _top_level(tree: ast.Module):
    """Module-level statements, including those inside module-level ``if``/``try``/``with`` blocks."""
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            todo[:0] = [n for field in ("body", "orelse", "finalbody", "handlers") for n in getattr(node, field, [])
                        if isinstance(n, ast.stmt) or isinstance(n, ast.ExceptHandler)]
        elif isinstance(node, ast.ExceptHandler):
            todo[:0] = node.body


# Methods the check does not follow, each with why no chapter's call takes that path: (module, class, method).
OPTIONAL_PATHS = {
    # 02's cleaning of a title joined to its plot: only for load_corpus(text="title+plot"), which no chapter
    # before 02 asks for (01 loads plots alone)
    ("utils.data.corpus", "Corpus", "with_text"),
}


class Resolver:
    """Which ``#@save`` definitions a name imported from a ``utils`` module reaches, name by name."""

    def __init__(self, root: Path = config.ROOT, notebooks_dir: Path = config.NOTEBOOKS_DIR):
        self.root = Path(root)
        self.definitions = lesson_definitions(notebooks_dir)
        self._modules: dict[str, dict | None] = {}
        self._reached: dict[tuple[str, str], set] = {}

    def module(self, name: str) -> dict | None:
        """Imports and top-level definitions of the ``utils`` module ``name`` (None: not a file of utils/)."""
        if name not in self._modules:
            self._modules[name] = None
            parts = name.split(".")
            if parts[0] == "utils":
                for path in (self.root.joinpath(*parts).with_suffix(".py"), self.root.joinpath(*parts, "__init__.py")):
                    if path.is_file():
                        tree = ast.parse(path.read_text(encoding="utf-8"))
                        top = list(_top_level(tree))
                        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
                        self._modules[name] = {
                            "imports": _imports(top, package),
                            "defs": {n: node for node in top for n in _defined_names(node)},
                            "package": package}
                        break
        return self._modules[name]

    def is_module(self, name: str) -> bool:
        return self.module(name) is not None or name.startswith("utils.lessons.")

    def reached(self, module: str, name: str) -> set[tuple[str, str]]:
        """``{(lessons module, name)}`` of the ``#@save`` definitions that ``module.name`` uses."""
        key = (module, name)
        if key in self._reached:
            return self._reached[key]
        self._reached[key] = set()                      # a cycle contributes nothing new
        found = set()
        if module.startswith("utils.lessons.") and (module.split(".")[2], name) in self.definitions:
            found.add((module.split(".")[2], name))
        elif self.is_module(f"{module}.{name}"):
            pass                                          # a submodule: what the caller uses of it counts
        elif (info := self.module(module)) is not None:
            if name in info["imports"]:
                target, attr = info["imports"][name]
                if attr is not None:
                    found |= self.reached(target, attr)
            elif name in info["defs"]:
                found |= self._used_by(module, info, info["defs"][name])
        self._reached[key] = found
        return found

    def _used_by(self, module: str, info: dict, node) -> set:
        if isinstance(node, ast.ClassDef) and any(m == module and c == node.name for m, c, _ in OPTIONAL_PATHS):
            skip = {meth for m, c, meth in OPTIONAL_PATHS if m == module and c == node.name}
            node = ast.ClassDef(name=node.name, bases=node.bases, keywords=node.keywords, decorator_list=[],
                                body=[n for n in node.body if getattr(n, "name", None) not in skip] or [ast.Pass()],
                                type_params=[])
        lazy = _imports([n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))], info["package"])
        found = set()
        for target, attr in lazy.values():
            if attr is not None:
                found |= self.reached(target, attr)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id != getattr(node, "name", None):
                found |= self.reached(module, sub.id)
            elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name):
                target = lazy.get(sub.value.id) or info["imports"].get(sub.value.id)
                if target is not None:
                    modname = target[0] if target[1] is None else f"{target[0]}.{target[1]}"
                    if self.is_module(modname):
                        found |= self.reached(modname, sub.attr)
        return found


def notebook_uses(path: Path) -> list[tuple[str, str, str]]:
    """``(cell id, module, name)`` of every name a notebook takes from a ``utils`` module."""
    uses, aliases = [], {}
    trees = [(c["id"], code_tree(c["source"])) for c in cells(path) if c["type"] == "code"]
    for cid, tree in trees:
        imported = _imports([n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))])
        for local, (module, name) in imported.items():
            if module != "utils" and not module.startswith("utils."):
                continue
            if name is None:
                aliases[local] = module
            else:
                aliases[local] = f"{module}.{name}"       # maybe a submodule: its attributes are read below
                uses.append((cid, module, name))
    for cid, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                uses.append((cid, aliases[node.value.id], node.attr))
    return uses


def later_chapter_uses(notebooks_dir: Path = config.NOTEBOOKS_DIR, root: Path = config.ROOT) -> list[str]:
    """One line per name a notebook uses that a later notebook's ``#@save`` cells define."""
    resolver = Resolver(root, notebooks_dir)
    order = {p.name: i for i, p in enumerate(notebooks(notebooks_dir))}
    problems = set()
    for path in notebooks(notebooks_dir):
        for cid, module, name in notebook_uses(path):
            for lesson, defined in sorted(resolver.reached(module, name)):
                owner = resolver.definitions[(lesson, defined)]
                if order.get(owner, -1) > order[path.name]:
                    via = "" if (module, name) == (f"utils.lessons.{lesson}", defined) else f" (through {module}.{name})"
                    problems.add(f"{path.name} cell {cid!r} uses {defined}{via}, which {owner} defines "
                                 f"(utils.lessons.{lesson}): a chapter never uses what a later chapter teaches")
    return sorted(problems)


# --------------------------------------------------------------------------- (b), (c) cell contents

def scaffolding(source: str) -> list[str]:
    """What in a code cell is test scaffolding: ``assert`` statements and ``numpy.testing``."""
    found = [f"line {n.lineno}: assert" for n in ast.walk(code_tree(source)) if isinstance(n, ast.Assert)]
    found += [f"line {i}: {m.group()}" for i, line in enumerate(source.splitlines(), 1)
              for m in SCAFFOLDING.finditer(line)]
    return found


def mentions_test_or_ci(source: str) -> list[str]:
    """Every place a cell names a test file, CI or a variable only CI sets."""
    return [f"line {i}: {m.group()!r}" for i, line in enumerate(source.splitlines(), 1)
            for m in TEST_OR_CI.finditer(line)]


def cell_problems(notebooks_dir: Path = config.NOTEBOOKS_DIR, pending=PENDING) -> dict[str, list[str]]:
    """``{"scaffolding": [...], "test-or-ci": [...]}``: offending cells, known pending ones left out."""
    out = {"scaffolding": [], "test-or-ci": []}
    for path in notebooks(notebooks_dir):
        for cell in cells(path):
            checks = {"test-or-ci": mentions_test_or_ci}
            if cell["type"] == "code":
                checks["scaffolding"] = scaffolding
            for kind, check in checks.items():
                found = check(cell["source"])
                if found and pending.get((path.name, cell["id"])) != kind:
                    out[kind].append(f"{path.name} cell {cell['id']!r}: " + "; ".join(found))
    return out


# --------------------------------------------------------------------------- the checks

def test_no_chapter_uses_what_a_later_chapter_defines():
    problems = later_chapter_uses()
    assert not problems, "\n".join(problems)


def test_lesson_cells_hold_no_test_scaffolding():
    problems = cell_problems()["scaffolding"]
    assert not problems, "move these guards to tests/:\n" + "\n".join(problems)


def test_no_cell_names_a_test_file_or_ci():
    problems = cell_problems()["test-or-ci"]
    assert not problems, ("notebooks teach; they do not point at tests or CI (write 'interval' for a "
                          "confidence interval):\n" + "\n".join(problems))


def test_pending_entries_still_apply():
    """An entry of PENDING whose cell is clean (or gone) must be deleted, so that the check covers it again."""
    stale = []
    for (name, cid), kind in PENDING.items():
        matching = [c for c in cells(config.NOTEBOOKS_DIR / name) if c["id"] == cid]
        check = scaffolding if kind == "scaffolding" else mentions_test_or_ci
        if not matching or not check(matching[0]["source"]):
            stale.append(f"{name} cell {cid!r} ({kind})")
    assert not stale, "delete these PENDING entries of tests/test_lesson_cells.py:\n" + "\n".join(stale)


# --------------------------------------------------------------------------- each check catches a planted case

def _notebook(path: Path, *cells_):
    """A notebook of ``(kind, source)`` cells, ids c0, c1, ..."""
    nb_cells = []
    for i, (kind, source) in enumerate(cells_):
        cell = {"cell_type": kind, "id": f"c{i}", "metadata": {}, "source": source}
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
        nb_cells.append(cell)
    path.write_text(json.dumps({"cells": nb_cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


@pytest.fixture
def toy_course(tmp_path):
    """A two-chapter course: 01 teaches ``early`` and 02 teaches ``late`` (both into utils.lessons.toy),
    and a plumbing module ``utils/plumb.py`` with one function that calls ``late`` and one that does not."""
    nbs, plumb = tmp_path / "notebooks", tmp_path / "utils"
    nbs.mkdir()
    plumb.mkdir()
    (plumb / "__init__.py").write_text("")
    (plumb / "plumb.py").write_text(
        "from utils.lessons.toy import late\n\n\n"
        "def uses_late(x):\n    return late(x) + 1\n\n\n"
        "def helper(x):\n    return x\n\n\n"
        "def lazy(x):\n    from utils.lessons.toy import late as l\n    return l(x)\n")
    _notebook(nbs / "02_b.ipynb", ("code", "#@save toy\ndef late(x):\n    return x"))
    return tmp_path


def _first(course, *sources):
    _notebook(course / "notebooks" / "01_a.ipynb", ("code", "#@save toy\ndef early(x):\n    return x"),
              *(("code", s) for s in sources))
    return later_chapter_uses(course / "notebooks", course)


def test_order_check_catches_a_later_chapters_name(toy_course):
    assert _first(toy_course, "from utils.lessons.toy import early\nearly(1)") == []
    assert _first(toy_course, "from utils.plumb import helper") == []
    direct = _first(toy_course, "from utils.lessons.toy import late")
    assert len(direct) == 1 and "01_a.ipynb cell 'c1' uses late, which 02_b.ipynb defines" in direct[0]
    through = _first(toy_course, "from utils.plumb import uses_late   # plumbing that calls chapter 02")
    assert len(through) == 1 and "(through utils.plumb.uses_late)" in through[0]
    assert len(_first(toy_course, "from utils.plumb import lazy")) == 1            # an import inside the function
    assert len(_first(toy_course, "from utils import plumb\nplumb.uses_late(2)")) == 1   # a module, then its attribute
    assert len(_first(toy_course, "import utils.lessons.toy as toy\ntoy.late(1)")) == 1


def test_the_order_check_sees_the_real_course():
    """The resolver follows what the course really does: 03's thresholds come through utils.evaluation.results."""
    resolver = Resolver()
    assert ("thresholds", "tune_per_genre_thresholds") in resolver.reached("utils.evaluation.results",
                                                                           "choose_thresholds")
    assert resolver.definitions[("thresholds", "tune_global_threshold")].startswith("03")
    assert ("metrics", "f1_scores") in resolver.reached("utils.evaluation.metrics", "f1_scores")


@pytest.mark.parametrize("source", [
    "x = 1\nassert x == 1",
    "def f():\n    assert True, 'inside a function'",
    "import numpy as np\nnp.testing.assert_allclose(1.0, 1.0)",
    "from numpy.testing import assert_allclose",
    "if IN_COLAB:\n    !pip install x\nassert 1",
])
def test_scaffolding_check_catches_a_planted_assert(tmp_path, source):
    _notebook(tmp_path / "01_a.ipynb", ("markdown", "assert in prose is fine"), ("code", source))
    problems = cell_problems(tmp_path, pending={})
    assert len(problems["scaffolding"]) == 1 and "01_a.ipynb cell 'c1'" in problems["scaffolding"][0]
    assert cell_problems(tmp_path, pending={("01_a.ipynb", "c1"): "scaffolding"})["scaffolding"] == []


def test_scaffolding_check_passes_ordinary_code(tmp_path):
    _notebook(tmp_path / "01_a.ipynb", ("code", "asserted = 1\nprint('assert')  # a word, not a statement\n%time x = 1"))
    assert cell_problems(tmp_path, pending={})["scaffolding"] == []


@pytest.mark.parametrize("kind, source", [
    ("markdown", "a test, `tests/test_nb04_guards.py`, checks hundreds"),
    ("markdown", "read by test_nb09_guards.py"),
    ("code", "# COURSE_SEED (set by CI and by `python -m utils.run_course`) override this cell."),
    ("code", "random = os.environ.get(\"COURSE_TFHUB_RANDOM_ENCODER\") == \"1\""),
    ("markdown", "the offline copy that continuous integration uses"),
])
def test_test_or_ci_check_catches_a_planted_mention(tmp_path, kind, source):
    _notebook(tmp_path / "01_a.ipynb", (kind, source))
    assert len(cell_problems(tmp_path, pending={})["test-or-ci"]) == 1


def test_test_or_ci_check_passes_ordinary_text(tmp_path):
    _notebook(tmp_path / "01_a.ipynb",
              ("markdown", "The test split, the latest tests of a model, COURSE_DATASET=netflix, CIFAR, a CLI."),
              ("code", "test_prob = model.predict(X_test)\nos.environ.get('COURSE_FAST')"))
    assert cell_problems(tmp_path, pending={})["test-or-ci"] == []
