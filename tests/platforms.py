"""Does ``requirements.txt`` install on a laptop CI cannot run? pip's resolution for another platform.

    python tests/platforms.py                    # every platform of the README's table (needs PyPI)
    python tests/platforms.py --only windows     # one

For each platform, ``pip install --dry-run --ignore-installed --only-binary=:all: --platform TAG
--python-version V -r requirements.txt`` with the environment markers evaluated for that platform
(pip evaluates them for the machine it runs on, even with ``--platform``: this wrapper tells it the
target's ``sys_platform``, ``platform_system``, ``platform_machine`` and ``os_name``). Wheels only, so
"resolves" means every package, with its dependencies, has a wheel there. It proves an install, not
that the notebooks run: the README's table says what was executed where.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = {   # name: (pip --platform tags, marker environment)
    "linux": ([f"manylinux_2_{n}_x86_64" for n in range(35, 16, -1)] + ["manylinux2014_x86_64", "linux_x86_64"],
              {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64"}),
    "macos-arm64": (["macosx_14_0_arm64"],
                    {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix", "platform_machine": "arm64"}),
    "macos-x86_64": (["macosx_14_0_x86_64"],
                     {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix", "platform_machine": "x86_64"}),
    "windows": (["win_amd64"],
                {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt", "platform_machine": "AMD64"}),
}
WATCH = ("tensorflow", "tensorflow-text", "keras-hub", "gensim", "uvloop", "httptools")

PIP_AS_TARGET = """
import sys, json
import pip._vendor.packaging.markers as markers
target = json.loads(sys.argv[1])
default = markers.default_environment
markers.default_environment = lambda: {**default(), **target}
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def resolve(name: str, python: str) -> dict:
    """``{"ok", "installs": {name: version}, "error"}`` of pip's resolution for platform ``name``."""
    tags, env = PLATFORMS[name]
    env = {**env, "python_version": python, "python_full_version": f"{python}.0"}
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-c", PIP_AS_TARGET, json.dumps(env), "install", "--dry-run", "--ignore-installed",
               "--quiet", "--only-binary=:all:", "--python-version", python, "--report", str(report),
               "-r", str(ROOT / "requirements.txt")]
        for tag in tags:
            cmd += ["--platform", tag]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            error = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
            return {"ok": False, "installs": {}, "error": " ".join(error)[:300] or done.stderr[-300:]}
        items = json.loads(report.read_text())["install"]
        return {"ok": True, "installs": {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in items},
                "error": ""}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(PLATFORMS), action="append")
    parser.add_argument("--python", default="3.12")
    args = parser.parse_args(argv)
    for name in args.only or PLATFORMS:
        result = resolve(name, args.python)
        if result["ok"]:
            have = ", ".join(f"{w} {result['installs'].get(w, '-')}" for w in WATCH)
            print(f"{name:<13} Python {args.python}: resolves, {len(result['installs'])} wheels ({have})")
        else:
            print(f"{name:<13} Python {args.python}: does NOT resolve: {result['error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
