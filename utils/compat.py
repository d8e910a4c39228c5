"""Small, deliberate compatibility shims, installed only on the code path that needs them.

``pkg_resources``: tensorflow-hub 0.16.1 (the current release, and Colab's) does
``from pkg_resources import parse_version`` at import. setuptools 82 removed
``pkg_resources``, and a fresh Python 3.13 environment resolves a newer setuptools, so
``import tensorflow_hub`` fails there with ``No module named 'pkg_resources'``. When the
real module is missing, this puts a stand-in with that one function (from
``packaging``, which pip and TensorFlow already need) in ``sys.modules``; any other
name raises an ImportError that says what happened. With setuptools < 82 nothing is done.

Only notebook 05a's path (TF Hub) installs it, never a bare ``import utils``:

- a notebook whose setup cell asks for ``tensorflow-hub`` (05a): :func:`utils.tools.notebook.setup`,
  before the notebook's own ``import tensorflow_hub``;
- :mod:`utils.modelfiles.bert_tfhub` (the benchmark, ``predict`` and serving of a TF Hub model), when
  it is imported;
- :mod:`utils.lessons.bert_tfhub` (05a's exported cells), first thing when it is imported
  (``python -m utils.export`` writes that line: :data:`utils.tools.export.PREAMBLES`).
"""
from __future__ import annotations

import importlib.util
import sys
import types

SHIM_NAME = "pkg_resources (course shim: parse_version only)"


def install_pkg_resources_shim() -> bool:
    """Install the stand-in if ``pkg_resources`` cannot be imported; True when it did."""
    if "pkg_resources" in sys.modules:
        return False
    try:
        if importlib.util.find_spec("pkg_resources") is not None:
            return False
    except ImportError:    # a finder that refuses it outright
        pass
    from packaging.version import parse as parse_version

    shim = types.ModuleType("pkg_resources", SHIM_NAME)
    shim.parse_version = parse_version

    shim.__file__ = "<course shim in utils/compat.py: setuptools >= 82 has no pkg_resources>"

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(f"pkg_resources.{name} is not available: setuptools >= 82 no longer ships "
                          f"pkg_resources, and the course only provides parse_version for tensorflow-hub. "
                          f"Install 'setuptools<82' if another package needs it.")

    shim.__getattr__ = __getattr__
    sys.modules["pkg_resources"] = shim
    return True
