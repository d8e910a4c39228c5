"""Grade a folder of submitted student notebooks into one CSV (a row per student, a column per exercise).

    python -m utils.grade submissions/ --out grades.csv [--timeout 600] [--cell-timeout 120]

Each submission runs in a fresh kernel (nbclient), from the course's ``notebooks/`` folder so that it
finds the course code and data as the student did. Errors in a cell do not stop the run (an exercise
that raises scores 0 on its own). After the student's last cell the grader appends one cell that runs
every check again (:func:`utils.tools.exercises.report`) and reads its result. A submission that times
out, kills its kernel or is not a notebook scores 0 on every exercise, with the reason in the
``reason`` column; the grader itself never stops on a bad submission.

Columns: ``student`` (the file name without ``.ipynb``), one 0/1 column per exercise, ``total`` and
``reason``. The exercises are those whose check cells the submissions contain (``--ids`` to fix them).
Limits: the student's code runs with your rights, like nbgrader's; grade in a container or a
throw-away account, and note that a determined student could fake a report from inside the kernel.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat

from utils import config
from utils.tools.exercises import EXERCISES, REPORT_MARK

CHECK_CALL = re.compile(r'check\(\s*["\']([^"\']+)["\']')


def exercise_ids(nb) -> list[str]:
    return [m for c in nb.cells if c.cell_type == "code" for m in CHECK_CALL.findall(c.source)]


def _report_cell(ids):
    return nbformat.v4.new_code_cell(
        f"import sys as _s; _s.path.insert(0, {str(config.ROOT)!r})\n"
        f"from utils.tools.exercises import report as _report\n_report(globals(), {list(ids)!r})")


def _read_report(nb):
    for out in nb.cells[-1].get("outputs", []):
        for line in out.get("text", "").splitlines():
            if line.startswith(REPORT_MARK):
                return json.loads(line[len(REPORT_MARK):])
    return None


def _first_error(nb):
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"cell {i} raised {out.get('ename')}: {out.get('evalue', '')}"[:200]
    return ""


def grade_one(path: Path, ids, timeout: float = 600, cell_timeout: float = 120, cwd: Path | None = None) -> dict:
    """{exercise id: 0/1, 'reason': text} for one submission; never raises for a bad submission."""
    from nbclient import NotebookClient

    zeros = {i: 0 for i in ids}
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # not JSON, not a notebook
        return {**zeros, "reason": f"not a readable notebook ({type(exc).__name__})"}
    nb.cells.append(_report_cell(ids))
    env_path = os.pathsep.join([str(config.ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(cwd or config.NOTEBOOKS_DIR)}})
    start = time.monotonic()
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env_path  # the kernel inherits it
    try:
        _run_with_deadline(client, timeout)
    except TimeoutError:
        return {**zeros, "reason": f"stopped after {timeout:.0f} s (the whole notebook's time limit)"}
    except Exception as exc:  # CellTimeoutError, DeadKernelError, ...
        name = type(exc).__name__
        why = "a cell ran past the time limit" if "Timeout" in name else f"the run failed ({name})"
        return {**zeros, "reason": f"{why} after {time.monotonic() - start:.0f} s"}
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    report = _read_report(nb)
    if report is None:
        return {**zeros, "reason": "the grader's report cell produced no report: " + (_first_error(nb) or "?")}
    row = {i: int(report.get(i, [0])[0]) for i in ids}
    failed = [f"{i}: {report[i][1]}" for i in ids if i in report and not report[i][0]]
    error = _first_error(nb)
    row["reason"] = "; ".join(([error] if error else []) + failed)[:500]
    return row


def _run_with_deadline(client, timeout):
    """Execute the notebook; stop the kernel when the whole run takes longer than ``timeout`` seconds."""
    import threading

    done = threading.Event()
    timed_out = threading.Event()

    def watchdog():
        if not done.wait(timeout):
            timed_out.set()
            km = getattr(client, "km", None)
            if km is not None:
                try:
                    km.interrupt_kernel()
                except Exception:
                    pass

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        client.execute()
    finally:
        done.set()
    if timed_out.is_set():
        raise TimeoutError


def grade_folder(folder: Path, out: Path, ids=None, timeout: float = 600, cell_timeout: float = 120,
                 cwd: Path | None = None) -> list[dict]:
    folder, out = Path(folder), Path(out)
    paths = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if not paths:
        raise FileNotFoundError(f"no .ipynb submissions in {folder}")
    if ids is None:
        found = []
        for p in paths:
            try:
                found += exercise_ids(nbformat.read(p, as_version=4))
            except Exception:
                continue
        ids = sorted(set(found) & set(EXERCISES)) or sorted(set(found))
    rows = []
    for p in paths:
        row = grade_one(p, ids, timeout=timeout, cell_timeout=cell_timeout, cwd=cwd)
        rows.append({"student": p.stem, **{i: row[i] for i in ids},
                     "total": sum(row[i] for i in ids), "reason": row["reason"]})
        print(f"{p.name}: {rows[-1]['total']}/{len(ids)} {rows[-1]['reason'][:100]}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["student", *ids, "total", "reason"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="folder of submitted .ipynb files (one per student)")
    parser.add_argument("--out", default="grades.csv", help="CSV to write (default: grades.csv)")
    parser.add_argument("--ids", help="comma-separated exercise ids (default: the check cells found)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for a whole submission (default 600)")
    parser.add_argument("--cell-timeout", type=float, default=120, help="seconds for one cell (default 120)")
    args = parser.parse_args(argv)
    try:
        rows = grade_folder(Path(args.folder), Path(args.out), args.ids.split(",") if args.ids else None,
                            args.timeout, args.cell_timeout)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"graded {len(rows)} submissions into {args.out}")
    return 0
