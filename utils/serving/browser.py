"""A headless Chromium for pictures and tests of the serving page (optional: absent on Colab).

:func:`find_browser` locates Debian's ``chromium`` (or Chrome) and ``chromedriver``;
:func:`screenshot` saves a PNG of a page, e.g. ``/?text=...``, which the page fills and predicts.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]


def find_browser() -> tuple[str | None, str | None]:
    """(browser, chromedriver) executables, ``None`` for what is not installed."""
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    return browser, shutil.which("chromedriver")


def screenshot(url: str, path, width: int = 820, height: int = 1100, wait_ms: int = 5000) -> Path | None:
    """Save a PNG of ``url`` as a headless browser renders it (after ``wait_ms`` of page time); ``None`` without a browser."""
    browser, _ = find_browser()
    if browser is None:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--virtual-time-budget={wait_ms}", f"--screenshot={path}", url],
                       capture_output=True, timeout=60, check=False)
    return path if path.is_file() and path.stat().st_size > 0 else None
