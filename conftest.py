"""Test-session defaults: notebooks run in FAST mode unless told otherwise.

Set COURSE_FAST=0 to execute the notebooks at full size, COURSE_DATASET=netflix to
run them offline on the Netflix file (what CI does).

Tests marked ``after_notebooks`` check what the notebooks left behind (results/,
models/); they are moved after the notebooks that nbval executes in the same session.
"""
import os
import sys
from pathlib import Path

os.environ.setdefault("COURSE_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_configure(config):
    config.addinivalue_line("markers", "after_notebooks: runs after the notebooks (checks their results/ and models/)")


def pytest_collection_modifyitems(session, config, items):
    late = [item for item in items if item.get_closest_marker("after_notebooks")]
    items[:] = [item for item in items if not item.get_closest_marker("after_notebooks")] + late
