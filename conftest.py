"""Test-session defaults: notebooks run in FAST mode unless told otherwise.

Set COURSE_FAST=0 to execute the notebooks at full size, COURSE_DATASET=netflix to
run them offline on the Netflix file (what CI does).

Tests marked ``after_notebooks`` check what the notebooks left behind (results/,
models/); they are moved after the notebooks that nbval executes in the same session.

``COURSE_EXECUTED_DIR=folder``: every notebook nbval executes is also written there with its
outputs (figures included: its kernel starts without ``MPLBACKEND=Agg``, so the inline backend keeps
them), the way ``python -m utils.run_course`` writes ``runs/<dataset>-<mode>/``. CI builds the course
site from these copies (``.ci/run``), so the site costs no second run of the notebooks. Each notebook's wall
time goes to ``durations.json`` there (``python -m utils.costs --compare`` checks the speed probe against it).
"""
import json
import os
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("COURSE_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

EXECUTED_ENV = "COURSE_EXECUTED_DIR"


def pytest_configure(config):
    config.addinivalue_line("markers", "after_notebooks: runs after the notebooks (checks their results/ and models/)")


def pytest_collection_modifyitems(session, config, items):
    late = [item for item in items if item.get_closest_marker("after_notebooks")]
    items[:] = [item for item in items if not item.get_closest_marker("after_notebooks")] + late


def _nbval_cell(item) -> bool:
    return type(item).__name__ == "IPyNbCell" and hasattr(item, "cell")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """Saving executed copies: the notebook's kernel (started in this setup) runs without MPLBACKEND=Agg."""
    keep = _nbval_cell(item) and os.environ.get(EXECUTED_ENV) and getattr(item.parent, "kernel", None) is None
    if not keep:
        yield
        return
    item.parent._course_started = time.monotonic()   # the notebook's wall time starts with its kernel
    from utils.tools.run_course import kernel_environment

    with kernel_environment():
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    yield
    if call.when == "call" and _nbval_cell(item) and os.environ.get(EXECUTED_ENV):
        # what the kernel sent for this cell (nbval keeps it, an error included); the notebook object is
        # nbval's own copy read at collection, never the committed file
        item.cell.outputs = list(getattr(item, "test_outputs", None) or [])
        done = getattr(item.parent, "_course_cells_run", 0) + 1
        item.parent._course_cells_run = done
        item.cell.execution_count = done


def pytest_runtest_teardown(item, nextitem):
    """After a notebook's last cell: write its executed copy to ``COURSE_EXECUTED_DIR``."""
    folder = os.environ.get(EXECUTED_ENV)
    if not (folder and _nbval_cell(item)) or (nextitem is not None and nextitem.parent is item.parent):
        return
    from utils.tools.run_course import record_provenance, write_notebook

    nb = item.parent.nb
    record_provenance(nb, "python -m pytest (nbval)")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    name = Path(str(item.parent.fspath)).name
    write_notebook(nb, out / name)
    # each notebook's wall time, for `python -m utils.costs --compare` (the probe's prediction, #28)
    started = getattr(item.parent, "_course_started", None)
    if started is not None:
        from utils.files import atomic_write_json

        durations = out / "durations.json"
        try:
            seen = json.loads(durations.read_text())
        except (OSError, ValueError):
            seen = {}
        seen[name.split("_")[0]] = round(time.monotonic() - started, 1)
        atomic_write_json(durations, seen)
