"""What every notebook's setup cell calls once ``utils`` is importable.

``setup()`` installs on Colab only what Colab lacks, checks versions, fixes the
seeds, reads the FAST switch and the dataset, and styles the plots, then prints a
one-line summary so a student sees how the notebook is about to run.
"""
from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
from pathlib import Path

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
        raise RuntimeError(colab_runtime_problem(True, False)[0] if IN_COLAB
                           else "TensorFlow is not installed: python -m pip install -r requirements.txt")
    major, minor = _as_tuple(tf_version)[:2]
    return [f"tensorflow-text~={major}.{minor}.0", f"tf-keras~={major}.{minor}.0"]


def _needs_install(spec: str) -> bool:
    """True when the pip requirement ``spec`` is not installed, or installed in a version it excludes."""
    from packaging.requirements import Requirement

    req = Requirement(spec)
    have = _version(req.name)
    return have is None or (bool(req.specifier) and not req.specifier.contains(have, prereleases=True))


REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"


def requirement_pins(path: Path = REQUIREMENTS) -> dict[str, str]:
    """``{canonical pip name: "name==version"}`` of ``requirements.txt``: the one source of every Colab install.

    Environment markers are kept (``uvloop==0.23.0; sys_platform != "win32"``), so pip skips what a
    platform cannot install.
    """
    pins = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        spec = line.split(";")[0].strip()
        if "==" not in spec:
            raise ValueError(f"{path}: {line!r} is not pinned (name==version); every Colab install is derived from it.")
        pins[_canonical(spec.split("==")[0].strip())] = line
    return pins


def colab_specs(names, minimum: dict[str, str] | None = None, pins: dict[str, str] | None = None) -> list[str]:
    """The pip specs a Colab setup cell installs for ``names``: those missing, or older than ``minimum`` asks.

    A name is installed exactly as ``requirements.txt`` pins it (one source). ``tensorflow-text`` and
    ``tf-keras`` are the exception: they follow the TensorFlow that Colab ships
    (:func:`matching_tf_companions`). A name already installed at a version ``minimum`` accepts is left alone.
    """
    pins = requirement_pins() if pins is None else pins
    minimum = {_canonical(k): v for k, v in (minimum or {}).items()}
    companions = None
    specs = []
    for name in dict.fromkeys(_canonical(n) for n in names):
        if name in ("tensorflow-text", "tf-keras"):
            companions = companions or {_canonical(s.split("~=")[0]): s for s in matching_tf_companions()}
            spec = companions[name]
            if _needs_install(spec):
                specs.append(spec)
            continue
        if name not in pins:
            raise KeyError(f"{name} is not pinned in requirements.txt: pin it there, the one source of Colab's installs.")
        have = _version(name)
        if have is None or (name in minimum and _as_tuple(have) < _as_tuple(minimum[name])):
            specs.append(pins[name])
    return specs


# Colab's runtimes that the course cannot use, told apart by what they ship (googlecolab/backend-info):
# the TPU image has no TensorFlow; the fallback runtime (2025.07) has Python 3.11 and TensorFlow 2.18,
# next to which keras-hub 0.32 (it needs tensorflow-text >= 2.20.1) cannot be installed.
OLDEST_COLAB_TF = "2.20"
SWITCH = "Runtime > Change runtime type"


def colab_runtime_problem(needs_tf: bool, needs_keras_hub: bool) -> tuple[str | None, bool]:
    """On Colab, ``(one line saying which runtime to switch to, whether the notebook cannot run here)``.

    ``(None, False)`` elsewhere and on the runtime the course is checked on.
    """
    if not IN_COLAB:
        return None, False
    tf_version = _version("tensorflow")
    if tf_version is None:
        return (f"This Colab runtime has no TensorFlow (the TPU runtime ships without it): switch to a GPU "
                f"runtime ({SWITCH} > T4 GPU) or the CPU one, then run the notebook again."), needs_tf
    if _as_tuple(tf_version) < _as_tuple(OLDEST_COLAB_TF):
        hub = requirement_pins()["keras-hub"].split(";")[0].split("==")[1]
        why = (f"keras-hub {hub} cannot be installed next to it" if needs_keras_hub
               else "the course is checked on the latest one")
        return (f"This is an older Colab runtime (Python {sys.version.split()[0]}, TensorFlow {tf_version}: the "
                f"fallback runtime?) and {why}: switch to the latest ({SWITCH} > Runtime version > Latest), then "
                f"run the notebook again."), needs_keras_hub
    return None, False


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


# Preinstalled packages that pin a package the course installs: they move with it, in the same pip call,
# or pip leaves a broken pair behind (Colab's keras-nlp 0.26.0 requires keras-hub==0.26.0).
FOLLOWERS = {"keras-hub": ("keras-nlp",)}


def followers(specs, installed: dict[str, str]) -> list[str]:
    """The specs of installed packages that must move with ``specs`` (keras-nlp==X for keras-hub==X)."""
    from packaging.requirements import Requirement

    extra = []
    for spec in specs:
        req = Requirement(spec.split(";")[0])
        pinned = [s.version for s in req.specifier if s.operator == "=="]
        for follower in FOLLOWERS.get(_canonical(req.name), ()):
            if follower in installed and pinned and installed[follower] != pinned[0]:
                extra.append(f"{follower}=={pinned[0]}")
    return extra


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
    needed = needed + followers(needed, before)
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
    ``colab_packages``: pip names installed on Colab when missing or older than ``minimum``, in the
    version ``requirements.txt`` pins (:func:`colab_specs`); on a Colab runtime that cannot run the
    notebook (TPU, the fallback runtime) one line says which runtime to switch to.
    """
    minimum = {"numpy": "1.26", "pandas": "2.0", "scikit-learn": "1.3", **(minimum or {})}
    names = [_canonical(n) for n in (*colab_packages, *ALWAYS_ON_COLAB)]
    problem, fatal = colab_runtime_problem(
        needs_tf=any(n.startswith(("tensorflow", "tf-keras", "keras")) for n in [*names, *minimum]),
        needs_keras_hub="keras-hub" in names)
    if fatal:
        raise RuntimeError(problem)
    if problem:
        print(problem)
    if IN_COLAB:
        # every notebook may have to prepare the data on a fresh VM (opened alone), and the split needs iterstrat
        install_on_colab(colab_specs(names, minimum))
        print(where_outputs_go())
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

    ``dataset`` is ``cmu``, ``netflix``, ``tmdb`` or ``csv:PATH``; the name returned is the folder name
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
        raise ValueError("DATASET must name a dataset: 'cmu', 'netflix', 'tmdb' or 'csv:/path/to/your.csv'.")
    name = config.resolve_dataset(spec)          # csv:PATH -> csv-<hash of the file>
    config.write_switches(fast, spec if name.startswith("csv-") else name, seed)
    config.set_seeds(seed)
    source = f" (your file {config.csv_source(name)})" if name.startswith("csv-") else ""
    print(f"dataset={name}{source} | FAST={fast} ({'a random subset, few epochs' if fast else 'full size'}) | seed={seed}")
    dataset = name
    return fast, dataset, seed
