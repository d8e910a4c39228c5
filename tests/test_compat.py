"""utils.compat: tensorflow-hub imports whether or not setuptools still ships pkg_resources."""
import os
import subprocess
import sys
import textwrap

from utils import config

BLOCK_PKG_RESOURCES = textwrap.dedent("""
    import sys
    class NoPkgResources:                  # what setuptools >= 82 looks like: no pkg_resources at all
        def find_spec(self, name, path=None, target=None):
            if name == "pkg_resources" or name.startswith("pkg_resources."):
                raise ModuleNotFoundError("No module named 'pkg_resources'")
    sys.meta_path.insert(0, NoPkgResources())
""")


def _run(code, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCK_PKG_RESOURCES)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(config.ROOT)]),
           "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_tensorflow_hub_fails_without_pkg_resources_and_the_shim(tmp_path):
    run = _run("import tensorflow_hub", tmp_path)
    assert run.returncode != 0 and "pkg_resources" in run.stderr     # the problem is real ...


def test_tensorflow_hub_imports_after_utils_without_pkg_resources(tmp_path):
    run = _run("import utils, tensorflow_hub as hub, pkg_resources; print(hub.__version__, pkg_resources.__doc__)\n"
               "try:\n    from pkg_resources import resource_filename\nexcept ImportError as e:\n    print('clear:', e)", tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]                     # ... and the shim solves it
    assert "course shim" in run.stdout and "clear: cannot import name 'resource_filename'" in run.stdout
    assert "setuptools >= 82 has no pkg_resources" in run.stdout


def test_real_pkg_resources_is_left_alone():
    from utils.compat import install_pkg_resources_shim

    assert install_pkg_resources_shim() is False
