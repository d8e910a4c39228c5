"""What every notebook's setup cell calls once ``utils`` is importable.

``setup()`` installs on Colab only what Colab lacks, checks versions, fixes the
seeds, reads the FAST switch and the dataset, and styles the plots, then prints a
one-line summary so a student sees how the notebook is about to run.
"""
from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

from utils import config

IN_COLAB = "google.colab" in sys.modules

# pip name -> import name, for the packages a notebook may ask for on Colab
_IMPORT_NAMES = {"iterative-stratification": "iterstrat", "scikit-learn": "sklearn",
                 "tensorflow-text": "tensorflow_text", "tf-keras": "tf_keras",
                 "tensorflow-hub": "tensorflow_hub", "keras-hub": "keras_hub"}


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _as_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def matching_tf_companions() -> list[str]:
    """pip specs of tensorflow-text and tf-keras that match the installed TensorFlow.

    TF Text and tf-keras are released in lock-step with TensorFlow (same major.minor),
    so on Colab we compute them from the runtime rather than hard-coding ours.
    """
    tf_version = _version("tensorflow")
    if tf_version is None:
        raise RuntimeError("TensorFlow is not installed: pip install -r requirements.txt")
    major, minor = _as_tuple(tf_version)[:2]
    return [f"tensorflow-text~={major}.{minor}.0", f"tf-keras~={major}.{minor}.0"]


def _needs_install(spec: str) -> bool:
    """True when the pip requirement ``spec`` is not installed, or installed in a version it excludes."""
    from packaging.requirements import Requirement

    req = Requirement(spec)
    have = _version(req.name)
    return have is None or (bool(req.specifier) and not req.specifier.contains(have, prereleases=True))


# Preinstalled packages that a Colab install must never move under a running kernel: every pip call
# is constrained to their installed versions (a request that cannot be met fails with pip's reason).
PROTECTED = ("tensorflow", "tensorflow-text", "tf-keras", "numpy", "scipy", "pandas", "scikit-learn",
             "protobuf", "ml-dtypes", "h5py", "jax", "torch")


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def installed_versions() -> dict[str, str]:
    """``{canonical pip name: version}`` of every installed distribution."""
    return {_canonical(d.metadata["Name"]): d.version for d in md.distributions() if d.metadata["Name"]}


def restart_runtime() -> None:
    """End this kernel; Colab starts a fresh one (its "Restart session"). Local Jupyter shows "kernel died"."""
    import os
    import signal
    import time

    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(1.0)           # let the printed line reach the notebook before the kernel goes
    os.kill(os.getpid(), signal.SIGKILL)


def install_on_colab(packages, restart: bool = True) -> list[str]:
    """On Colab, ``pip install`` the requirements that are missing or too old; elsewhere nothing.

    ``packages`` are pip specs such as ``"gensim"`` or ``"keras-hub>=0.32"``; returns those installed.
    The install is constrained to the installed versions of :data:`PROTECTED` (TensorFlow, its
    companions, numpy, ...) unless a spec names one of them. When it still changed a package that
    was already installed (e.g. a newer keras for keras-hub), the runtime is restarted once, with one
    printed line: running the cell again finds everything installed and carries on.
    """
    import tempfile
    from packaging.requirements import Requirement

    needed = [p for p in packages if _needs_install(p)]
    if not IN_COLAB:
        return []
    if not needed:
        return needed
    before = installed_versions()
    asked = {_canonical(Requirement(p).name) for p in needed}
    pins = [f"{name}=={before[name]}" for name in PROTECTED if name in before and name not in asked]
    with tempfile.NamedTemporaryFile("w", suffix="-constraints.txt", delete=False) as handle:
        handle.write("\n".join(pins) + "\n")
    print(f"Installing what this Colab runtime lacks: {', '.join(needed)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", handle.name, *needed])
    if getattr(done, "returncode", 0) != 0:
        raise RuntimeError(f"pip could not install {', '.join(needed)} next to this runtime's "
                           f"{', '.join(pins[:4])}, ... (pip's reason is printed above). Start a fresh runtime "
                           f"(Runtime > Disconnect and delete runtime) and run the notebook again; if it persists, "
                           f"open an issue with the lines above.")
    after = installed_versions()
    changed = [f"{name} {before[name]} -> {after[name]}" for name in sorted(before)
               if name in after and after[name] != before[name]]
    if changed and restart:
        print(f"Restarting the runtime once ({'; '.join(changed)}): when it is back, run this cell again "
              f"and carry on.", flush=True)
        restart_runtime()
    return needed


def check_versions(minimum: dict[str, str]) -> dict[str, str]:
    """Installed versions of ``minimum``'s packages; error with the fix when one is too old."""
    found = {}
    for dist, least in minimum.items():
        have = _version(dist)
        if have is None:
            raise ImportError(f"{dist} is not installed. Run: python -m pip install -r requirements.txt")
        if _as_tuple(have) < _as_tuple(least):
            raise ImportError(f"{dist} {have} is too old, the course needs >= {least}. "
                              f"Run: python -m pip install -r requirements.txt")
        found[dist] = have
    return found


ALWAYS_ON_COLAB = ("iterative-stratification",)   # what utils itself needs and Colab lacks
DRIVE_DIR = "/content/drive/MyDrive"          # where Colab mounts Google Drive
DRIVE_FOLDER = "movie-genres-course"          # the course's folder in it


def where_outputs_go() -> str:
    """On Colab: use ``MyDrive/movie-genres-course`` when Google Drive is mounted (and ``COURSE_OUTPUT_DIR``
    is not set), so that prepared data, results and models outlive the VM; one line saying where they go."""
    import os
    from pathlib import Path

    if not os.environ.get("COURSE_OUTPUT_DIR") and Path(DRIVE_DIR).is_dir():
        config.set_output_dir(Path(DRIVE_DIR) / DRIVE_FOLDER)
    if os.environ.get("COURSE_OUTPUT_DIR"):
        return f"Data, results and models go to {os.environ['COURSE_OUTPUT_DIR']} (kept between sessions if on Drive)."
    return (f"Data, results and models go to {config.ROOT} and vanish with this runtime; to keep them, mount "
            f"Google Drive first (from google.colab import drive; drive.mount('/content/drive')).")


def setup(minimum: dict[str, str] | None = None, colab_packages=(), plots: bool = True) -> dict[str, str]:
    """Prepare a notebook (Colab installs, version checks, plot style); return the versions checked.

    The notebook's switches (FAST, dataset, seed) are set by its ``parameters`` cell
    through :func:`parameters`.

    ``minimum``: ``{"pip-name": "min.version"}`` checked after the Colab installs;
    ``colab_packages``: pip specs installed on Colab when missing.
    """
    # every notebook may have to prepare the data on a fresh VM (opened alone), and the split needs iterstrat
    install_on_colab(list(dict.fromkeys([*colab_packages, *ALWAYS_ON_COLAB])))
    if IN_COLAB:
        print(where_outputs_go())
    minimum = {"numpy": "1.26", "pandas": "2.0", "scikit-learn": "1.3", **(minimum or {})}
    versions = check_versions(minimum)
    if plots:
        import matplotlib.pyplot as plt
        import seaborn as sns

        sns.set_theme(style="whitegrid", context="notebook")
        plt.rcParams["figure.figsize"] = (9, 4.5)
    where = "Colab" if IN_COLAB else "local"
    print(f"Python {sys.version.split()[0]} on {where}: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    if "tensorflow" in minimum:   # neural notebooks: load TensorFlow without its C++ start-up noise, say the device
        from utils.tools.quiet_tf import import_tensorflow

        import_tensorflow(report=True)
    return versions


def parameters(fast: bool, dataset: str, seed: int) -> tuple[bool, str, int]:
    """The values of a notebook's ``parameters`` cell, overridden by the environment.

    ``dataset`` is ``cmu``, ``netflix`` or ``csv:PATH``; the name returned is the folder name
    (``csv-<hash>`` for a CSV, keyed by its content).

    ``COURSE_FAST``, ``COURSE_DATASET`` and ``COURSE_SEED`` set from outside the cell (by CI and
    ``python -m utils.run_course`` before the kernel starts) win over the cell; the final values are
    written back to the environment so that every ``utils`` function agrees with the notebook, the
    seeds are set, and one line says how the notebook is about to run. What an earlier run of the
    cell wrote back does not count as an override: an edited cell run again takes effect
    (:func:`utils.config.switch_override`).
    """
    import os

    if config.switch_override("COURSE_FAST") is not None:
        fast = config.fast_mode()
    if (config.switch_override("COURSE_DATASET") or "").strip():
        dataset = os.environ["COURSE_DATASET"]
    if config.switch_override("COURSE_SEED") is not None:
        seed = config.seed()
    if not isinstance(fast, bool):
        raise TypeError(f"FAST must be True or False, not {fast!r}.")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"SEED must be an integer, not {seed!r}.")
    spec = str(dataset).strip()
    if not spec:
        raise ValueError("DATASET must name a dataset: 'cmu', 'netflix' or 'csv:/path/to/your.csv'.")
    name = config.resolve_dataset(spec)          # csv:PATH -> csv-<hash of the file>
    config.write_switches(fast, spec if name.startswith("csv-") else name, seed)
    config.set_seeds(seed)
    source = f" (your file {config.csv_source(name)})" if name.startswith("csv-") else ""
    print(f"dataset={name}{source} | FAST={fast} ({'a random subset, few epochs' if fast else 'full size'}) | seed={seed}")
    dataset = name
    return fast, dataset, seed
