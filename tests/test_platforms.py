"""requirements.txt on laptops: what has no wheel on a platform is skipped there by an environment marker.

The resolution itself (pip, per platform, needs PyPI) is `python tests/platforms.py`; the README's
platform table quotes it.
"""
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import platforms  # noqa: E402


def _requirements():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split(" #")[0].strip()
        if line and not line.startswith("#"):
            yield Requirement(line)


def _installed_on(platform: str) -> set[str]:
    env = {**platforms.PLATFORMS[platform][1], "python_version": "3.12", "python_full_version": "3.12.0"}
    return {r.name for r in _requirements() if r.marker is None or r.marker.evaluate(env)}


@pytest.mark.parametrize("platform, skipped", [("linux", set()), ("macos-arm64", set()),
                                               ("windows", {"tensorflow-text", "uvloop"})])
def test_what_has_no_wheel_is_skipped_and_nothing_else(platform, skipped):
    every = {r.name for r in _requirements()}
    assert every - _installed_on(platform) == skipped
    assert {"tensorflow", "keras-hub", "gensim", "fastapi"} <= _installed_on(platform)
