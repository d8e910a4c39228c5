"""The simulated Colab stage's own pieces (tests/colab/): the google.colab stand-in, the pins, the runner."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
COLAB = ROOT / "tests" / "colab"


def test_stand_in_google_colab_leaves_google_protobuf_importable(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(COLAB / "stub"))
    for name in [m for m in sys.modules if m == "google" or m.startswith("google.")]:
        monkeypatch.delitem(sys.modules, name)
    colab = importlib.import_module("google.colab")
    importlib.import_module("google.protobuf")             # still from site-packages: google is a namespace
    monkeypatch.setenv("COLAB_SIM_DRIVE", str(tmp_path / "drive-files"))
    colab.drive.mount(str(tmp_path / "drive"))
    (tmp_path / "drive" / "MyDrive" / "note.txt").write_text("kept")
    assert (tmp_path / "drive-files" / "note.txt").read_text() == "kept"


def test_runtime_pins_are_colabs_and_unique():
    pins = [line.split("==") for line in (COLAB / "runtime.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    names = [name.lower().replace("_", "-") for name, _ in pins]
    assert len(names) == len(set(names))
    have = dict((name.lower().replace("_", "-"), version) for name, version in pins)
    for name, version in {"tensorflow": "2.20.0", "keras": "3.13.2", "tf-keras": "2.20.1", "keras-hub": "0.26.0",
                          "tensorflow-text": "2.20.1", "tensorflow-hub": "0.16.1", "numpy": "2.1.3",
                          "setuptools": "75.2.0"}.items():
        assert have[name] == version
    assert "gensim" not in have and "iterative-stratification" not in have   # Colab lacks them


def test_stage_finds_notebooks_by_glob_and_each_runs_once():
    script = (COLAB / "run_stage.sh").read_text()
    assert "ls [0-9][0-9]*_*.ipynb" in script and "03_" not in script


def _notebook(path: Path, setup: str, after: str = "print('after the setup cell')") -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# toy"), nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell(after)]
    nb.cells[1]["id"] = "setup"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


RESTARTING = """import os, pathlib
marker = pathlib.Path({marker!r})
if not marker.exists():
    marker.write_text("installed")
    from utils.tools.notebook import restart_runtime
    print("Restarting the runtime once (keras 3.13.2 -> 3.15.1): when it is back, run this cell again and carry on.")
    restart_runtime()
print("everything installed")
"""


@pytest.mark.parametrize("case", ["deliberate", "crash"])
def test_runner_continues_after_one_deliberate_restart_only(tmp_path, case):
    content = tmp_path / "content"
    nb = content / "course" / "notebooks" / "toy.ipynb"
    setup = (RESTARTING.format(marker=str(tmp_path / "marker")) if case == "deliberate"
             else "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    _notebook(nb, f"import sys; sys.path.insert(0, {str(ROOT)!r})\n" + setup)
    done = subprocess.run([sys.executable, str(COLAB / "run_notebooks.py"), "--content", str(content),
                           "--out", str(tmp_path / "out"), "--timeout", "120", "toy.ipynb"],
                          capture_output=True, text=True, timeout=300)
    report = json.loads((tmp_path / "out" / "times.json").read_text())[0]
    if case == "deliberate":
        assert done.returncode == 0 and report["ok"] and report["restarts"] == 1, done.stdout + done.stderr
    else:   # a kernel that dies without saying so is a failure, not a restart
        assert done.returncode == 1 and not report["ok"] and report["restarts"] == 0
        assert "kernel died" in report["error"]
