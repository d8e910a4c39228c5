"""utils.compat: tensorflow-hub imports whether or not setuptools still ships pkg_resources.

The stand-in is scoped to notebook 05a's path (TF Hub): ``import utils`` leaves ``pkg_resources`` alone;
05a's setup cell, utils.modelfiles.bert_tfhub and the exported utils.lessons.bert_tfhub install it.
"""
import os
import subprocess
import sys
import textwrap

import pytest

from utils import config

BLOCK_PKG_RESOURCES = textwrap.dedent("""
    import sys
    class NoPkgResources:                  # what setuptools >= 82 looks like: no pkg_resources at all
        def find_spec(self, name, path=None, target=None):
            if name == "pkg_resources" or name.startswith("pkg_resources."):
                raise ModuleNotFoundError("No module named 'pkg_resources'")
    sys.meta_path.insert(0, NoPkgResources())
""")

SHIM_USED = ("import pkg_resources, tensorflow_hub as hub; print(hub.__version__, pkg_resources.__doc__)\n"
             "try:\n    from pkg_resources import resource_filename\nexcept ImportError as e:\n    print('clear:', e)")


def _run(code, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCK_PKG_RESOURCES)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(config.ROOT)]),
           "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=config.NOTEBOOKS_DIR)


def test_import_utils_does_not_install_the_shim(tmp_path):
    """Without pkg_resources, ``import utils`` (and the data plumbing) leaves it missing: tensorflow_hub still fails."""
    run = _run("import sys, utils, utils.data.pipeline, utils.tools.notebook, utils.modelfiles.predictor\n"
               "print('after import utils:', 'pkg_resources' in sys.modules)\n"
               "import tensorflow_hub", tmp_path)
    assert "after import utils: False" in run.stdout, run.stderr[-2000:]
    assert run.returncode != 0 and "pkg_resources" in run.stderr     # the problem is real, and utils leaves it


def _setup_05a() -> str:
    """05a's setup call, with the arguments its setup cell passes (read from the notebook)."""
    sys.path.insert(0, str(config.ROOT / "tests" / "colab"))
    import deps

    kwargs = deps.setup_call(config.NOTEBOOKS_DIR / "05a_bert_tfhub.ipynb")
    assert "tensorflow-hub" in kwargs["colab_packages"]
    return f"from utils.tools import notebook\nnotebook.setup(**{kwargs!r})\n"


@pytest.mark.parametrize("path", ["05a setup cell", "lessons"])
def test_05a_path_installs_the_shim(tmp_path, path):
    """05a's setup cell then its imports cell; the exported lesson module alone."""
    first = {"05a setup cell": _setup_05a(), "lessons": "import utils.lessons.bert_tfhub\n"}[path]
    run = _run("import sys\nsys.path.insert(0, '..')\n" + first + SHIM_USED, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]                     # ... and the shim solves it
    assert "course shim" in run.stdout and "clear: cannot import name 'resource_filename'" in run.stdout
    assert "setuptools >= 82 has no pkg_resources" in run.stdout


def test_tfhub_plumbing_installs_the_shim_when_imported(tmp_path):
    """utils.modelfiles.bert_tfhub (benchmark, predict, serving of a TF Hub model) imports tensorflow_hub
    inside its functions: importing the module is enough to install the stand-in (no TensorFlow needed)."""
    run = _run("import sys, utils.modelfiles.predictor\nassert 'pkg_resources' not in sys.modules\n"
               "import utils.modelfiles.bert_tfhub\nprint(sys.modules['pkg_resources'].__doc__)\n"
               "print('tensorflow imported:', 'tensorflow' in sys.modules)", tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "course shim" in run.stdout and "tensorflow imported: False" in run.stdout


def test_real_pkg_resources_is_left_alone():
    from utils.compat import install_pkg_resources_shim

    assert install_pkg_resources_shim() is False
