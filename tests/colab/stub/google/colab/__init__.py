"""A stand-in for Colab's ``google.colab`` package, for CI's simulated Colab stage only.

On Colab the kernel imports ``google.colab`` at start, which is how the notebooks' setup
cells know where they run (``"google.colab" in sys.modules``). The stage puts this folder on
the kernel's path and imports it from an IPython start-up file, so the setup cells take the
same path as on Colab. ``google`` stays a namespace package (no ``google/__init__.py``
here), so ``google.protobuf`` keeps loading from site-packages.

Only what a course notebook may call is here: ``drive.mount`` (a local folder stands in for
Google Drive: ``$COLAB_SIM_DRIVE``), ``output`` and ``files.download`` (no-ops).
"""
from . import drive, files, output  # noqa: F401

SIMULATED = True
