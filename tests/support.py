"""Helpers shared by several test files (pytest puts tests/ on sys.path, so ``import support`` works)."""
from __future__ import annotations

import subprocess
import threading
import time

import numpy as np

from utils import config

# A toy corpus that a TF-IDF model learns in a second: three genres, words that clearly belong to each.
GENRES = ["Sci-Fi", "Romance", "Horror"]
THRESHOLDS = {"global": 0.4, "per_genre": {"Sci-Fi": 0.3, "Romance": 0.5, "Horror": 0.45}, "default": "global"}
TRAIN = (["An alien space ship lands on a distant planet.", "Astronauts fight robots in space.",
          "A wedding, a kiss and a love story in Paris.", "Two lovers meet again at a wedding.",
          "A haunted house and a ghost that kills at night.", "Demons and blood in a dark forest.",
          "Aliens fall in love on a space station.", "A ghost haunts the wedding of two lovers."] * 4)
Y = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 1]] * 4)


def run_timed_lines(cmd: list[str], env: dict, timeout: float = 300) -> tuple[int, list[tuple[float, str]], float]:
    """Run ``cmd`` from the repository root and read its output (stderr merged) as it is written.

    Returns ``(exit code, [(seconds since start, line)], seconds until it ended)``, so a test can check
    that a line arrived while the command still had work ahead, not all at the end.
    """
    child = subprocess.Popen(cmd, cwd=config.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    lines: list[tuple[float, str]] = []
    start = time.monotonic()
    reader = threading.Thread(target=lambda: lines.extend((time.monotonic() - start, line.rstrip("\n"))
                                                          for line in child.stdout))
    reader.start()
    code = child.wait(timeout=timeout)
    reader.join(timeout=10)
    return code, lines, time.monotonic() - start
