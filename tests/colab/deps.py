"""What each notebook's code can import, read statically, and what its Colab setup cell installs.

A notebook's code paths are its code cells plus every ``utils`` module they import, followed
transitively, function-level imports included (a fallback such as 08 training the BiLSTM when
04b's results are missing imports gensim only inside a function). Used by tests/test_colab_deps.py.
"""
from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLAB_PROVIDED = {"google.colab"}          # Colab's own package: the stand-in in tests/colab/stub


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _code(source: str) -> str:
    """Notebook cell source without IPython's ``!shell`` and ``%magic`` lines."""
    return "\n".join(line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("!", "%")) else line
                     for line in source.splitlines())


def _imports(tree: ast.AST, package: str | None) -> set[str]:
    """Absolute module names imported anywhere in ``tree`` (``from x import y`` gives x and x.y)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = (package or "").split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def module_file(name: str) -> Path | None:
    """The source file of a course module (``utils...``), or None."""
    if name != "utils" and not name.startswith("utils."):
        return None
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=None)
def notebook_modules(path: Path) -> frozenset[str]:
    """Every module a notebook's code paths may import: its cells and the course modules, transitively."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    todo = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            todo |= _imports(ast.parse(_code(cell.source)), None)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.update(".".join(parts[:i]) for i in range(1, len(parts)))   # importing a.b.c runs a and a.b
        file = module_file(name)
        if file is not None:
            package = name if file.name == "__init__.py" else name.rpartition(".")[0]
            todo |= _imports(ast.parse(file.read_text(encoding="utf-8")), package) - seen
    return frozenset(seen)


def third_party(modules) -> set[str]:
    """The top-level names of ``modules`` that are neither the standard library, the course, nor Colab's own."""
    tops = set()
    for name in modules:
        if any(name == p or name.startswith(p + ".") for p in COLAB_PROVIDED):
            continue
        top = name.split(".")[0]
        if top and top != "utils" and top not in sys.stdlib_module_names and top != "__future__":
            tops.add(top)
    return tops - {"google"} | ({"google"} if any(m.startswith("google.protobuf") for m in modules) else set())


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> dict:
    return md.packages_distributions()


def distributions(tops) -> dict[str, set[str]]:
    """``{top-level module: {canonical distribution names}}`` from this environment's metadata."""
    table = _packages_distributions()
    return {top: {canonical(d) for d in table.get(top, [])} for top in tops}


def setup_call(path: Path) -> dict:
    """The literal keyword arguments of the setup cell's ``notebook.setup(...)`` call."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.get("id") == "setup")
    for node in ast.walk(ast.parse(_code(cell.source))):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "setup":
            return {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
    raise ValueError(f"{path.name}: the setup cell does not call notebook.setup(...)")


def read_freeze(text: str) -> dict[str, str]:
    """``{canonical name: version}`` of a pip freeze (``name==v`` and ``name @ url`` lines)."""
    found = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
        elif " @ " in line:
            name, version = line.split(" @ ", 1)[0], "@"
        else:
            continue
        found[canonical(name.strip())] = version.strip()
    return found
