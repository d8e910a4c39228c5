"""Execute course notebooks the way a student does on Colab: fresh kernel, setup cell first.

Used by ``tests/colab/run_stage.sh`` inside the simulated Colab runtime (the kernel imports the
stand-in ``google.colab`` at start, its working directory is ``/content`` as on Colab).

    python tests/colab/run_notebooks.py --content /content --out runs/colab 06_thresholds_and_f1.ipynb

Each notebook runs once, top to bottom, from ``<content>/course/notebooks/``. When its setup cell
restarts the runtime on purpose (it printed "Restarting the runtime" and the kernel ended), the
notebook goes on in a fresh kernel from the setup cell, as a student re-runs that cell on Colab; a
second restart, or a kernel that dies anywhere else, is a failure. Exit status 1 on the first failure.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

RESTART_LINE = "Restarting the runtime"


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", "") if out.get("output_type") == "stream"
                     else json.dumps(out.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def run(path: Path, content: Path, out_dir: Path, timeout: int) -> dict:
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
    args = parser.parse_args(argv)
    reports = []
    for name in args.notebooks:
        print(f"-- {name}", flush=True)
        report = run(args.content / "course" / "notebooks" / name, args.content, args.out, args.timeout)
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
