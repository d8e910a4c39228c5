"""utils.config: environment switches and paths."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest

from utils import config


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "On"])
def test_env_flag_true(monkeypatch, value):
    monkeypatch.setenv("COURSE_TEST_FLAG", value)
    assert config.env_flag("COURSE_TEST_FLAG") is True


@pytest.mark.parametrize("value", ["0", "false", "No", "off", "", "  "])
def test_env_flag_false(monkeypatch, value):
    monkeypatch.setenv("COURSE_TEST_FLAG", value)
    assert config.env_flag("COURSE_TEST_FLAG", default=True) is False


def test_env_flag_default_and_error(monkeypatch):
    monkeypatch.delenv("COURSE_TEST_FLAG", raising=False)
    assert config.env_flag("COURSE_TEST_FLAG") is False
    assert config.env_flag("COURSE_TEST_FLAG", default=True) is True
    monkeypatch.setenv("COURSE_TEST_FLAG", "maybe")
    with pytest.raises(ValueError, match="COURSE_TEST_FLAG='maybe' is not a yes/no value: use 1 or 0"):
        config.env_flag("COURSE_TEST_FLAG")


def test_fast_mode(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    assert config.fast_mode() is True
    monkeypatch.setenv("COURSE_FAST", "0")
    assert config.fast_mode() is False
    monkeypatch.delenv("COURSE_FAST")
    assert config.fast_mode() is False
    monkeypatch.setenv("COURSE_FAST", "fast")
    with pytest.raises(ValueError, match="COURSE_FAST"):
        config.fast_mode()


def test_seed(monkeypatch):
    monkeypatch.delenv("COURSE_SEED", raising=False)
    assert config.seed() == 42
    monkeypatch.setenv("COURSE_SEED", " 7 ")
    assert config.seed() == 7
    monkeypatch.setenv("COURSE_SEED", "seven")
    with pytest.raises(ValueError, match="COURSE_SEED='seven' is not an integer"):
        config.seed()


def test_dataset_name(monkeypatch):
    monkeypatch.delenv("COURSE_DATASET", raising=False)
    assert config.dataset_name() == "cmu"
    monkeypatch.setenv("COURSE_DATASET", " Netflix ")
    assert config.dataset_name() == "netflix"
    monkeypatch.setenv("COURSE_DATASET", "  ")
    assert config.dataset_name() == "cmu"


def test_data_dirs_order(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    assert config.data_dirs() == [config.RAW_DIR]
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "a" / ".." / "shared"))
    assert config.data_dirs() == [(tmp_path / "shared").resolve(), config.RAW_DIR]
    monkeypatch.setenv("COURSE_DATA_DIR", "")
    assert config.data_dirs() == [config.RAW_DIR]


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_CACHE_DIR", raising=False)
    assert config.cache_dir() == config.RAW_DIR
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    assert config.cache_dir() == tmp_path.resolve()


def test_repository_paths():
    assert (config.ROOT / "utils" / "config.py").is_file()
    assert config.RAW_DIR == config.ROOT / "data" / "raw"
    assert config.PROCESSED_DIR == config.ROOT / "data" / "processed"
    assert config.RESULTS_DIR == config.ROOT / "results" and config.MODELS_DIR == config.ROOT / "models"


def test_per_dataset_folders(course_dirs, monkeypatch):
    monkeypatch.setenv("COURSE_DATASET", "netflix")
    assert config.processed_dir() == course_dirs.processed / "netflix"
    assert config.results_dir() == course_dirs.results / "netflix"
    assert config.models_dir("cmu") == course_dirs.models / "cmu"
    assert config.data_dirs() == [course_dirs.extra.resolve(), course_dirs.raw]
    assert config.cache_dir() == course_dirs.cache.resolve()


def test_course_dirs_fixture_keeps_the_repository_clean(course_dirs):
    assert Path(config.processed_dir("netflix")).is_relative_to(course_dirs.root)
    assert not Path(config.results_dir("netflix")).is_relative_to(config.ROOT)


def test_set_seeds_makes_runs_repeatable(monkeypatch):
    monkeypatch.setenv("COURSE_SEED", "123")
    monkeypatch.setenv("PYTHONHASHSEED", "0")  # set_seeds writes it; monkeypatch restores it afterwards
    assert config.set_seeds() == 123
    assert config.os.environ["PYTHONHASHSEED"] == "123"
    a = (random.random(), np.random.rand())
    assert config.set_seeds(123) == 123
    assert (random.random(), np.random.rand()) == a
    config.set_seeds(124)
    assert (random.random(), np.random.rand()) != a


def _fresh_switches(monkeypatch, at_start=None):
    """A kernel that started with the switches ``at_start`` (default: none set) and no cell run yet."""
    at_start = at_start or {}
    for name in config.SWITCHES:
        monkeypatch.setenv(name, "placeholder")       # so that monkeypatch restores the session's value
        if name in at_start:
            monkeypatch.setenv(name, at_start[name])
        else:
            monkeypatch.delenv(name)
    monkeypatch.setattr(config, "_AT_START", {name: at_start.get(name) for name in config.SWITCHES})
    monkeypatch.setattr(config, "_WRITTEN", {})


def test_an_edited_parameters_cell_run_again_takes_effect(monkeypatch):
    from utils.tools import notebook

    _fresh_switches(monkeypatch)
    assert notebook.parameters(False, "cmu", 42) == (False, "cmu", 42)
    assert os.environ["COURSE_SEED"] == "42"               # written back for the utils functions
    # the student edits the cell and runs it again in the same kernel: the new values hold
    assert notebook.parameters(True, "netflix", 7) == (True, "netflix", 7)
    assert (config.fast_mode(), config.dataset_name(), config.seed()) == (True, "netflix", 7)
    assert notebook.parameters(False, "cmu", 42) == (False, "cmu", 42)


def test_switches_set_before_the_kernel_started_win_on_every_run(monkeypatch):
    from utils.tools import notebook

    _fresh_switches(monkeypatch, {"COURSE_FAST": "1", "COURSE_DATASET": "netflix", "COURSE_SEED": "3"})
    assert notebook.parameters(False, "cmu", 42) == (True, "netflix", 3)
    assert notebook.parameters(False, "cmu", 9) == (True, "netflix", 3)      # re-run: still CI's values
    _fresh_switches(monkeypatch, {"COURSE_SEED": "3"})                       # only one switch from outside
    assert notebook.parameters(False, "cmu", 42) == (False, "cmu", 3)
    assert notebook.parameters(True, "netflix", 9) == (True, "netflix", 3)


def test_a_pre_start_switch_in_another_spelling_still_wins_after_the_echo(monkeypatch):
    """The echo of run 1 ("1", "3") must not hide a value set before the kernel started in another
    spelling (true, 03): the edited cell run again still gets the pre-start values."""
    from utils.tools import notebook

    _fresh_switches(monkeypatch, {"COURSE_FAST": "true", "COURSE_SEED": "03"})
    assert notebook.parameters(False, "cmu", 42) == (True, "cmu", 3)
    assert os.environ["COURSE_FAST"] == "1" and os.environ["COURSE_SEED"] == "3"   # the echo
    assert notebook.parameters(False, "netflix", 9) == (True, "netflix", 3)
    # an empty variable is no override, for FAST as for the dataset (it used to force FAST off)
    _fresh_switches(monkeypatch, {"COURSE_FAST": "", "COURSE_DATASET": " "})
    assert notebook.parameters(True, "netflix", 7) == (True, "netflix", 7)
    assert notebook.parameters(False, "cmu", 7) == (False, "cmu", 7)


def test_a_switch_set_by_other_code_after_the_cell_still_overrides(monkeypatch):
    from utils.tools import notebook

    _fresh_switches(monkeypatch)
    notebook.parameters(False, "cmu", 42)
    monkeypatch.setenv("COURSE_SEED", "5")                 # not the cell's echo: an explicit setting
    assert notebook.parameters(False, "cmu", 42) == (False, "cmu", 5)
    assert config.switch_override("COURSE_FAST") is None   # the cell's own echo
    with pytest.raises(ValueError, match="not one of the notebook switches"):
        config.switch_override("HOME")
