"""Execute course notebooks the way a student does on Colab: fresh kernel, setup cell first.

Used by ``tests/colab/run_stage.sh`` inside the simulated Colab runtime (the kernel imports the
stand-in ``google.colab`` at start, its working directory is ``/content`` as on Colab).

    python tests/colab/run_notebooks.py --content /content --out runs/colab 06_thresholds_and_f1.ipynb

Each notebook runs once, top to bottom, from ``<content>/course/notebooks/``. When its setup cell
restarts the runtime on purpose (it printed "Restarting the runtime" and the kernel ended), the
notebook goes on in a fresh kernel from the setup cell, as a student re-runs that cell on Colab; a
second restart, or a kernel that dies anywhere else, is a failure. After each notebook ``pip check``
must find nothing broken (a Colab install that left a conflict behind, such as keras-nlp 0.26.0 beside
keras-hub 0.32, fails the notebook), and no output may carry a deprecation warning of the stand-in
``google.colab`` (a call that the real Colab warns about). Exit status 1 on the first failure.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

RESTART_LINE = "Restarting the runtime"
# what the stand-in google.colab prints where colabtools warns (tests/colab/stub/google/colab/output.py)
DEPRECATED = ("Try `serve_kernel_port_as_iframe` instead",)


NODEPS = Path(__file__).resolve().parents[2] / "requirements-nodeps.txt"


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def pip_check() -> str:
    """``pip check``'s complaints about this environment ("" when every requirement is met).

    The packages of requirements-nodeps.txt are installed without their declared dependencies on
    purpose (CI's stand-in for a download): their lines are not complaints.
    """
    nodeps = {_name(line.split("==")[0].strip()) for line in NODEPS.read_text().splitlines()
              if line.strip() and not line.startswith("#")} if NODEPS.exists() else set()
    done = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    lines = [line for line in (done.stdout + done.stderr).splitlines()
             if line.strip() and not line.startswith("No broken requirements")
             and _name(line.split()[0]) not in nodeps]
    return "; ".join(lines)


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", "") if out.get("output_type") == "stream"
                     else json.dumps(out.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def run(path: Path, content: Path, out_dir: Path, timeout: int, check: bool = True) -> dict:
    """Run one notebook; ``{"notebook", "seconds", "restarts", "ok", "error"}``."""
    start = time.perf_counter()
    report = {"notebook": path.name, "restarts": 0, "ok": False, "error": ""}
    for attempt in (1, 2):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        if not code or code[0].get("id") != "setup":
            report["error"] = "the first code cell is not the setup cell"
            break
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(content)}})
        try:
            client.execute()
            report["ok"] = True
            warned = [w for c in code for w in DEPRECATED if w in _text(c)]
            broken = pip_check() if check else ""
            if warned or broken:
                report["ok"] = False
                report["error"] = (f"a deprecated google.colab call ({warned[0]})" if warned
                                   else f"pip check after the Colab installs: {broken}")
        except DeadKernelError as err:
            said = _text(code[0])
            if attempt == 1 and RESTART_LINE in said and not any(c.get("outputs") for c in code[1:]):
                line = next(x for x in said.splitlines() if RESTART_LINE in x)
                print(f"   {path.name}: the setup cell restarted the runtime ({line.strip()}); "
                      f"running it again in a fresh kernel", flush=True)
                report["restarts"] += 1
                continue
            report["error"] = f"the kernel died: {err}"
        except CellExecutionError as err:
            report["error"] = str(err).strip().splitlines()[-1][:500]
            where = next((c for c in nb.cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
            if where is not None:
                report["error"] = f"cell {where.get('id')!r}: {report['error']}"
        finally:
            out_dir.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, out_dir / path.name)
        break
    report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", help="file names under <content>/course/notebooks/")
    parser.add_argument("--content", type=Path, default=Path("/content"))
    parser.add_argument("--out", type=Path, required=True, help="folder for the executed copies and times.json")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell")
    parser.add_argument("--no-pip-check", action="store_true", help="skip pip check after each notebook")
    args = parser.parse_args(argv)
    reports = []
    for name in args.notebooks:
        print(f"-- {name}", flush=True)
        report = run(args.content / "course" / "notebooks" / name, args.content, args.out, args.timeout,
                     check=not args.no_pip_check)
        reports.append(report)
        print(f"   {'passed' if report['ok'] else 'FAILED'} in {report['seconds']} s"
              + (f" ({report['restarts']} deliberate restart)" if report["restarts"] else "")
              + (f": {report['error']}" if report["error"] else ""), flush=True)
        if not report["ok"]:
            break
    times = args.out / "times.json"
    old = json.loads(times.read_text()) if times.exists() else []
    times.write_text(json.dumps(old + reports, indent=1))
    return 0 if reports and all(r["ok"] for r in reports) and len(reports) == len(args.notebooks) else 1


if __name__ == "__main__":
    sys.exit(main())
