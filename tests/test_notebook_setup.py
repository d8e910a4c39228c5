"""utils.tools.notebook: what every notebook's setup cell runs."""
import os
import importlib.metadata as md
import subprocess
from pathlib import Path

import pytest

from utils.tools import notebook


def test_matching_tf_companions_follow_the_installed_tensorflow(monkeypatch):
    monkeypatch.setattr(notebook, "_version", lambda dist: {"tensorflow": "2.19.1"}.get(dist))
    assert notebook.matching_tf_companions() == ["tensorflow-text~=2.19.0", "tf-keras~=2.19.0"]


def test_matching_tf_companions_without_tensorflow(monkeypatch):
    monkeypatch.setattr(notebook, "_version", lambda dist: None)
    with pytest.raises(RuntimeError, match="requirements.txt"):
        notebook.matching_tf_companions()


def test_check_versions_reports_too_old_and_missing_packages():
    have = md.version("numpy")
    assert notebook.check_versions({"numpy": "1.0"}) == {"numpy": have}
    with pytest.raises(ImportError, match="too old"):
        notebook.check_versions({"numpy": "999.0"})
    with pytest.raises(ImportError, match="not installed"):
        notebook.check_versions({"surely-not-a-real-package-xyz": "1.0"})


def test_install_on_colab_does_nothing_outside_colab(monkeypatch):
    calls = []
    monkeypatch.setattr(notebook.subprocess, "run", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(notebook, "IN_COLAB", False)
    assert notebook.install_on_colab(["surely-not-a-real-package-xyz"]) == []
    assert calls == []


def test_install_on_colab_installs_only_what_is_missing(monkeypatch):
    calls = []
    monkeypatch.setattr(notebook.subprocess, "run", lambda cmd, **k: calls.append(cmd))
    monkeypatch.setattr(notebook, "IN_COLAB", True)
    missing = notebook.install_on_colab(["numpy", "surely-not-a-real-package-xyz==1.0"])
    assert missing == ["surely-not-a-real-package-xyz==1.0"]
    assert calls and calls[0][-1] == "surely-not-a-real-package-xyz==1.0" and "numpy" not in calls[0]


def _no_course_env(monkeypatch):
    """Unset the switches; setenv first, so that monkeypatch restores the session's values afterwards
    (parameters() writes them back to os.environ, and later notebooks must not inherit a test's seed)."""
    for name in ("COURSE_FAST", "COURSE_SEED", "COURSE_DATASET"):
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)


def test_parameters_cell_values_hold_without_environment(monkeypatch, capsys):
    _no_course_env(monkeypatch)
    assert notebook.parameters(True, "Netflix", 7) == (True, "netflix", 7)
    # written back, so that every utils function agrees with the notebook
    assert (os.environ["COURSE_FAST"], os.environ["COURSE_DATASET"], os.environ["COURSE_SEED"]) == ("1", "netflix", "7")
    out = capsys.readouterr().out
    assert "dataset=netflix" in out and "FAST=True" in out and "seed=7" in out


def test_a_test_leaves_the_session_environment_as_it_found_it(monkeypatch):
    before = {k: os.environ.get(k) for k in ("COURSE_FAST", "COURSE_SEED", "COURSE_DATASET")}
    with monkeypatch.context() as m:
        _no_course_env(m)
        notebook.parameters(True, "netflix", 7)
    assert {k: os.environ.get(k) for k in before} == before


def test_environment_overrides_the_parameters_cell(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "0")
    monkeypatch.setenv("COURSE_SEED", "3")
    monkeypatch.setenv("COURSE_DATASET", "cmu")
    assert notebook.parameters(True, "netflix", 42) == (False, "cmu", 3)


@pytest.mark.parametrize("fast, dataset, seed", [("yes", "cmu", 1), (True, "cmu", 1.5), (True, " ", 1)])
def test_parameters_reject_wrong_types(monkeypatch, fast, dataset, seed):
    _no_course_env(monkeypatch)
    with pytest.raises((TypeError, ValueError)):
        notebook.parameters(fast, dataset, seed)


def test_install_on_colab_upgrades_a_package_whose_version_is_excluded(monkeypatch):
    calls = []
    monkeypatch.setattr(notebook.subprocess, "run", lambda cmd, **k: calls.append(cmd))
    monkeypatch.setattr(notebook, "IN_COLAB", True)
    have = md.version("numpy")
    assert notebook.install_on_colab([f"numpy>={have}"]) == []          # satisfied: nothing to do
    assert notebook.install_on_colab(["numpy>=999"]) == ["numpy>=999"]  # too old: upgrade
    assert len(calls) == 1 and calls[0][:5] == [notebook.sys.executable, "-m", "pip", "install", "-q"]
    assert calls[0][-1] == "numpy>=999"


def _fake_pip(monkeypatch, before, after, returncode=0):
    """Colab with a pip that turns the installed set ``before`` into ``after``; returns the calls and restarts."""
    calls, restarts, state = [], [], {"now": dict(before)}

    def run(cmd, **kwargs):
        constraints = Path(cmd[cmd.index("-c") + 1]).read_text().split()
        calls.append({"cmd": cmd, "constraints": constraints})
        state["now"] = dict(after)
        return subprocess.CompletedProcess(cmd, returncode)

    monkeypatch.setattr(notebook, "IN_COLAB", True)
    monkeypatch.setattr(notebook.subprocess, "run", run)
    monkeypatch.setattr(notebook, "installed_versions", lambda: state["now"])
    monkeypatch.setattr(notebook, "restart_runtime", lambda: restarts.append(True))
    return calls, restarts


COLAB = {"tensorflow": "2.20.0", "keras": "3.13.2", "numpy": "2.1.3", "tensorflow-text": "2.20.1",
         "keras-hub": "0.26.0"}


def test_colab_install_pins_tensorflow_and_numpy_and_adds_without_restart(monkeypatch, capsys):
    calls, restarts = _fake_pip(monkeypatch, COLAB, {**COLAB, "gensim": "4.4.0"})
    assert notebook.install_on_colab(["surely-not-a-real-package-xyz"]) == ["surely-not-a-real-package-xyz"]
    pins = calls[0]["constraints"]
    assert {"tensorflow==2.20.0", "numpy==2.1.3", "tensorflow-text==2.20.1"} <= set(pins)
    assert not any(p.startswith("keras") for p in pins)       # keras may move, but then the runtime restarts
    assert restarts == [] and "Restarting" not in capsys.readouterr().out


def test_colab_install_that_moves_keras_restarts_once_and_says_so(monkeypatch, capsys):
    calls, restarts = _fake_pip(monkeypatch, COLAB, {**COLAB, "keras": "3.15.1", "keras-hub": "0.32.0"})
    notebook.install_on_colab(["keras-hub>=999"])
    out = capsys.readouterr().out
    assert restarts == [True]
    restart_lines = [line for line in out.splitlines() if "Restarting the runtime" in line]
    assert len(restart_lines) == 1 and "keras 3.13.2 -> 3.15.1" in restart_lines[0]
    assert "run this cell again" in restart_lines[0]


def test_colab_install_asked_for_a_protected_package_does_not_pin_it(monkeypatch):
    calls, _ = _fake_pip(monkeypatch, COLAB, COLAB)
    notebook.install_on_colab(["tensorflow-text~=999.0"])
    assert not any(p.startswith("tensorflow-text==") for p in calls[0]["constraints"])
    assert "tensorflow==2.20.0" in calls[0]["constraints"]


def test_colab_install_failure_says_what_to_do(monkeypatch):
    _fake_pip(monkeypatch, COLAB, COLAB, returncode=1)
    with pytest.raises(RuntimeError, match="could not install surely-not.*fresh runtime"):
        notebook.install_on_colab(["surely-not-a-real-package-xyz"])



def test_on_colab_a_mounted_drive_keeps_the_outputs(monkeypatch, tmp_path):
    from utils import config

    for name in ("PROCESSED_DIR", "RESULTS_DIR", "MODELS_DIR"):
        monkeypatch.setattr(config, name, getattr(config, name))     # restored after the test
    monkeypatch.setenv("COURSE_OUTPUT_DIR", "placeholder")
    monkeypatch.delenv("COURSE_OUTPUT_DIR")
    monkeypatch.setattr(notebook, "DRIVE_DIR", str(tmp_path / "nowhere"))
    assert "vanish with this runtime" in notebook.where_outputs_go()
    (tmp_path / "MyDrive").mkdir()
    monkeypatch.setattr(notebook, "DRIVE_DIR", str(tmp_path / "MyDrive"))
    line = notebook.where_outputs_go()
    want = tmp_path / "MyDrive" / notebook.DRIVE_FOLDER
    assert str(want) in line and os.environ["COURSE_OUTPUT_DIR"] == str(want)
    assert config.results_dir("netflix") == want / "results" / "netflix"


def test_setup_on_colab_always_brings_what_preparing_the_data_needs(monkeypatch, tmp_path):
    asked = []
    monkeypatch.setattr(notebook, "IN_COLAB", True)
    monkeypatch.setattr(notebook, "install_on_colab", lambda packages: asked.append(list(packages)))
    monkeypatch.setattr(notebook, "DRIVE_DIR", str(tmp_path / "no-drive"))
    real = notebook._version
    monkeypatch.setattr(notebook, "_version", lambda dist: None if dist in ("gensim", "iterative-stratification")
                        else real(dist))                                   # what a fresh Colab VM lacks
    pins = notebook.requirement_pins()
    notebook.setup(minimum={}, colab_packages=["gensim", "iterative-stratification"], plots=False)
    assert asked == [[pins["gensim"], pins["iterative-stratification"]]]  # once, even when listed; pinned
    notebook.setup(minimum={}, colab_packages=[], plots=False)
    assert asked[-1] == [pins["iterative-stratification"]]                # a notebook that forgot it


def test_setup_on_colab_upgrades_only_below_the_notebooks_minimum(monkeypatch, tmp_path):
    asked = []
    monkeypatch.setattr(notebook, "IN_COLAB", True)
    monkeypatch.setattr(notebook, "install_on_colab", lambda packages: asked.append(list(packages)))
    monkeypatch.setattr(notebook, "DRIVE_DIR", str(tmp_path / "no-drive"))
    colab = {"keras-hub": "0.26.0", "fastapi": "0.141.1", "iterative-stratification": "0.1.9"}
    real = notebook._version
    monkeypatch.setattr(notebook, "_version", lambda dist: colab.get(dist) or real(dist))
    notebook.setup(minimum={"fastapi": "0.110"}, colab_packages=["keras-hub", "fastapi"], plots=False)
    assert asked == [[]]                                                    # no minimum asks for keras-hub 0.32
    with pytest.raises(ImportError, match="keras-hub 0.26.0 is too old"):  # (the fake pip installed nothing)
        notebook.setup(minimum={"keras-hub": "0.32"}, colab_packages=["keras-hub", "fastapi"], plots=False)
    assert asked[-1] == [notebook.requirement_pins()["keras-hub"]]


def test_colab_install_of_keras_hub_moves_keras_nlp_in_the_same_call(monkeypatch, capsys):
    before = {**COLAB, "keras-nlp": "0.26.0", "kagglesdk": "0.1.37"}
    calls, restarts = _fake_pip(monkeypatch, before, {**before, "keras": "3.15.1", "keras-hub": "0.99.0",
                                                      "keras-nlp": "0.99.0", "kagglesdk": "0.1.28"})
    notebook.install_on_colab(["keras-hub==0.99.0"])
    assert len(calls) == 1 and calls[0]["cmd"][-2:] == ["keras-hub==0.99.0", "keras-nlp==0.99.0"]
    line = next(x for x in capsys.readouterr().out.splitlines() if "Restarting the runtime" in x)
    assert "keras-nlp 0.26.0 -> 0.99.0" in line and "kagglesdk 0.1.37 -> 0.1.28" in line and restarts == [True]
