"""Run the whole course headless, the night before class.

    python -m utils.run_course --fast --dataset netflix     # minutes on a laptop CPU
    python -m utils.run_course --full --dataset cmu         # the real thing (GPU recommended)

Every notebook runs in order, each in a fresh kernel (nbclient), with the working
directory ``notebooks/`` as in Jupyter. The executed copies go to ``runs/<dataset>-<mode>/``
(ignored by git; the committed notebooks are never written). The run stops at the
first failing cell and says which notebook, which cell and which error; when every
notebook passes it ends with the model comparison table of notebook 06. The run holds the
dataset's run lock (:func:`utils.files.run_lock`) throughout: a second run or a benchmark on
the same dataset refuses, naming it (``--wait``: starts when it ends).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from utils import config
from utils.files import LockBusy, run_lock
from utils.tools.colab import notebook_files

RUNS_DIR = config.ROOT / "runs"
HOURS_WITHOUT_ASKING = 1.0
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SLOW_CELL_S = 60.0  # cells slower than this are reported while the notebook runs


@dataclass
class Failure:
    notebook: str
    cell_index: int           # position among all cells, 0-based
    cell_id: str
    source: str
    error: str                # "ValueError: what went wrong"
    traceback: str
    executed_copy: Path


@dataclass
class RunReport:
    out_dir: Path
    finished: list[tuple[str, float]] = field(default_factory=list)  # (notebook, seconds)
    failure: Failure | None = None
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failure is None


def _fmt_seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 90 else f"{int(s // 60)} min {int(s % 60):02d} s"


@contextmanager
def _environment(values: dict[str, str | None]):
    """Set environment variables (inherited by the kernels; ``None`` unsets one) and restore them afterwards."""
    old = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def select(notebooks: list[Path], only=None, start=None) -> list[Path]:
    """Keep the notebooks whose name starts with one of ``only``, from ``start`` on."""
    if start:
        names = [p.name for p in notebooks]
        first = next((i for i, n in enumerate(names) if n.startswith(start)), None)
        if first is None:
            raise ValueError(f"--from {start!r} matches no notebook; have {names}.")
        notebooks = notebooks[first:]
    if only:
        keep = [p for p in notebooks if any(p.name.startswith(o) for o in only)]
        if not keep:
            raise ValueError(f"--only {','.join(only)} matches no notebook.")
        notebooks = keep
    return notebooks


def _check_out_dir(out_dir: Path, notebooks_dir: Path) -> None:
    out, src = out_dir.resolve(), notebooks_dir.resolve()
    if out == src or src in out.parents:
        raise ValueError(f"The executed copies must not go to {out_dir}: it is (inside) the folder of "
                         f"the committed notebooks. Use runs/ (the default).")


def write_notebook(nb, path: Path) -> None:
    """Write an executed copy (temporary name, then rename)."""
    import nbformat

    from utils.files import atomic_write_bytes

    atomic_write_bytes(path, nbformat.writes(nb).encode("utf-8"))


_write_notebook = write_notebook

# matplotlib backends that draw nothing into a notebook: a kernel started with one of them leaves no
# figure in the executed copy (MPLBACKEND=Agg is what CI and headless shells often export)
NON_INLINE_BACKENDS = {"agg", "pdf", "ps", "svg", "cairo", "template"}


def kernel_environment():
    """The environment a kernel whose outputs are kept starts in: ``MPLBACKEND=Agg`` (or any backend that
    draws into no notebook) unset, so that ipykernel's inline backend keeps every figure in the executed
    copy (the site shows them). A context manager; the caller's environment is restored afterwards."""
    backend = os.environ.get("MPLBACKEND", "")
    return _environment({"MPLBACKEND": None} if backend.strip().lower() in NON_INLINE_BACKENDS else {})


def record_provenance(nb, executed_by: str) -> dict:
    """Say in the executed copy's metadata what ran it, on what, when and where (the site's pages show it)."""
    import datetime as dt
    import platform

    fast = config.fast_mode()
    info = {"executed_by": executed_by, "dataset": config.dataset_name(), "mode": "FAST" if fast else "full",
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}"}
    nb.metadata["course_run"] = info
    return info


# how long a kernel may take to start and answer (nbclient's default, 60 s, failed a run on a loaded machine
# "before the first cell": importing ipykernel there took longer)
KERNEL_STARTUP_S = 300


def execute_notebook(path: Path, out_path: Path, timeout: int | None = None, log=print,
                     kernel_name: str = "") -> tuple[float, Failure | None]:
    """Execute one notebook in a fresh kernel; write the executed copy; return (seconds, failure)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    state = {"index": -1, "started": time.time()}
    watch = CellProgress(path.name, len(nb.cells))

    def on_cell_start(cell, cell_index, **_):
        state["index"], state["started"] = cell_index, time.time()
        watch.cell(cell_index)

    def on_cell_executed(cell, cell_index, **_):
        took = time.time() - state["started"]
        if took > SLOW_CELL_S:
            log(f"      cell {cell_index + 1} (id {cell.get('id', '?')!r}) took {_fmt_seconds(took)}")

    client = NotebookClient(
        nb, timeout=timeout if timeout else -1, kernel_name=kernel_name or "",
        startup_timeout=KERNEL_STARTUP_S,
        resources={"metadata": {"path": str(path.parent)}},
        on_cell_start=on_cell_start, on_cell_executed=on_cell_executed,
    )
    t0 = time.time()
    failure = None
    kernel_log = out_path.with_suffix(".kernel.log")  # the kernel process's own stderr (C++ logs, warnings)
    try:
        with open(kernel_log, "w") as err_file, watch:
            client.execute(stdout=err_file, stderr=err_file)
    except Exception as err:  # CellExecutionError, CellTimeoutError, DeadKernelError, ...
        index = state["index"]
        cell = nb.cells[index] if 0 <= index < len(nb.cells) else {}
        ename = getattr(err, "ename", type(err).__name__)
        evalue = getattr(err, "evalue", str(err).strip().splitlines()[-1] if str(err).strip() else "")
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        tb = "\n".join(errors[-1].get("traceback", [])) if errors else str(err)
        if index < 0:
            ename, evalue = "KernelError", f"the kernel did not start: {err} (see {kernel_log})"
        failure = Failure(notebook=path.name, cell_index=index, cell_id=str(cell.get("id", "?")),
                          source=cell.get("source", ""), error=f"{ename}: {_ANSI.sub('', str(evalue))}",
                          traceback=_ANSI.sub("", str(tb)), executed_copy=out_path)
    finally:
        record_provenance(nb, "python -m utils.run_course")
        write_notebook(nb, out_path)
    return time.time() - t0, failure


class CellProgress:
    """Which cell of a notebook runs, and for how long: ``[progress]`` lines on stderr (utils.tools.progress).

    On a terminal the line is redrawn in place about every second; in a log it is one line at most every
    ``COURSE_PROGRESS_INTERVAL`` seconds (10 by default), so a 2-minute notebook writes about a dozen.
    """

    def __init__(self, name: str, total: int, tick: float | None = None):
        import threading

        from utils.tools import progress

        self.progress, self.name, self.total = progress, name, total
        self.index, self.cell_started, self.started = -1, time.monotonic(), time.monotonic()
        self.tick = tick if tick is not None else (1.0 if progress.mode() == "bar" else progress.interval())
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="cell-progress", daemon=True)

    def line(self) -> str:
        now = time.monotonic()
        return self.progress.format_line(
            [self.name, f"cell {self.index + 1}/{self.total}", f"this cell {self.progress.fmt_seconds(now - self.cell_started)}"],
            elapsed=now - self.started)

    def cell(self, index: int) -> None:
        self.index, self.cell_started = index, time.monotonic()

    def _beat(self):
        while not self.stop.wait(self.tick):
            if self.index >= 0:
                self.progress.emit(self.line(), final=self.progress.mode() != "bar")

    def __enter__(self):
        if self.progress.mode() != "off":
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        if self.progress._state["open_bar"]:       # end the in-place line before the runner's next line
            self.progress.emit(self.line())
        return False


def expected_minutes(prefix: str, fast: bool, dataset: str) -> float | None:
    """The cost table's minutes for one notebook in this mode (scaled to this machine after a probe)."""
    from utils.tools import costs

    column = "fast" if fast else ("cmu" if dataset == "cmu" else None)
    if column is None:
        return None
    value = costs.COSTS.get(prefix, {}).get(column)
    return None if value is None else value * costs.speed_factor(prefix)


def report_failure(f: Failure, log=print, resume: str = "") -> None:
    log("")
    where = f"cell {f.cell_index + 1} (id {f.cell_id!r})" if f.cell_index >= 0 else "before the first cell"
    log(f"FAILED: {f.notebook}, {where}")
    log(f"  {f.error}")
    log("  --- cell source ---")
    for line in f.source.splitlines()[:25]:
        log(f"  | {line}")
    log("  --- end of the traceback ---")
    for line in [ln for ln in f.traceback.splitlines() if ln.strip()][-15:]:
        log(f"  {line}")
    log(f"Executed copy with outputs up to the failing cell: {f.executed_copy}")
    log(f"The kernel process's own messages (crashes, C++ logs): {f.executed_copy.with_suffix('.kernel.log')}")
    again = f"python -m utils.run_course --from {f.notebook.split('_')[0]}{resume}"
    if is_data_error(f):
        log(f"The data is the problem, not the notebook: {f.error.split(':', 1)[0]} says what is wrong with the "
            f"dataset's file (or its download). Fix the data, then resume with: {again}")
    else:
        log(f"Fix the notebook (or its module), then resume with: {again}")


def is_data_error(f: Failure) -> bool:
    """Whether a notebook failed on bad data (a bad or missing file, a failed download), not on its code."""
    from utils.data.datasets import DATA_ERROR_NAMES

    return f.error.split(":", 1)[0].strip().rsplit(".", 1)[-1] in DATA_ERROR_NAMES


def has_gpu() -> bool:
    """An NVIDIA GPU answers ``nvidia-smi`` (checked without importing TensorFlow)."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def cmu_cpu_minutes(prefixes) -> dict[str, float]:
    """Expected minutes of each notebook, full mode on CMU on a 2-core CPU.

    The course's cost table (:mod:`utils.tools.costs`, from the dress rehearsal), scaled to this machine
    when ``python -m utils.costs --probe`` measured it, and replaced by your own full-scale rehearsal
    (``results/rehearsal/cmu-scale1.jsonl``) where there is one.
    """
    import json

    from utils.tools.costs import cmu_cpu_minutes as measured
    from utils.tools.costs import speed_factor

    minutes = {p: m * speed_factor(p) for p, m in measured().items()}
    log = config.RESULTS_DIR / "rehearsal" / "cmu-scale1.jsonl"
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("ok"):
                minutes[row["notebook"]] = row["seconds"] / 60
    return {p: minutes.get(p, 10.0) for p in prefixes}


def check_budget(prefixes, fast: bool, dataset: str, go_ahead: bool = False, budget_minutes: float | None = None,
                 gpu: bool | None = None, log=print) -> None:
    """Refuse a full CMU run that would take hours on a CPU, unless asked to go ahead; print the estimate."""
    if fast or dataset != "cmu":
        return
    gpu = has_gpu() if gpu is None else gpu
    est = cmu_cpu_minutes(prefixes)
    total = sum(est.values())
    from utils.tools.costs import speed_factors

    where = ("this GPU machine (a 2-core CPU estimate, far too high here)" if gpu else
             "this machine (the cost table scaled by its probe, an estimate)" if speed_factors() else
             "a 2-core CPU without a GPU (the cost table's machine; python -m utils.costs --probe scales it to yours)")
    log("Expected time, full mode on CMU, " + where + ": " +
        ", ".join(f"{p} ~{m:.0f} min" for p, m in est.items()) + f"; total ~{total / 60:.1f} h")
    limit = budget_minutes if budget_minutes is not None else (None if gpu else HOURS_WITHOUT_ASKING * 60)
    if limit is not None and total > limit and not go_ahead:
        raise ValueError(
            f"this full CMU run would take about {total / 60:.1f} h on {where}, over the "
            f"{'--budget of ' + format(limit, '.0f') + ' min' if budget_minutes is not None else format(HOURS_WITHOUT_ASKING, 'g') + ' h allowed without asking'}. "
            f"Run it on a GPU (Colab: Runtime > Change runtime type > T4 GPU), check the course with --fast, "
            f"pick notebooks with --only, or add --yes to go ahead anyway.")


class DataError(ValueError):
    """The dataset cannot be used (the message says why): found before any notebook runs."""


def check_data(spec: str, log=print) -> None:
    """Read your CSV as notebook 01 will, before the first notebook: a file the course cannot use is
    refused in seconds with the loader's message, not after minutes of notebooks."""
    from utils.data.datasets import data_errors
    from utils.data.pipeline import check_dataset, is_prepared

    dataset = config.resolve_dataset(spec)
    if is_prepared(dataset, need_clean=False):
        return
    log(f"Checking {spec} ...")
    try:
        check_dataset(spec, verbose=True)
    except data_errors() as err:
        raise DataError(str(err)) from None


def run(notebooks_dir: Path = config.NOTEBOOKS_DIR, out_dir: Path | None = None, fast: bool | None = None,
        dataset: str | None = None, only=None, start=None, timeout: int | None = None,
        data_dir: str | None = None, log=print, table: bool = True, go_ahead: bool = True,
        budget_minutes: float | None = None, wait: bool = False) -> RunReport:
    """Execute the course's notebooks in order; stop at the first failing cell.

    A full CMU run that :func:`check_budget` expects to take hours without a GPU is refused
    unless ``go_ahead`` (the command line asks for ``--yes``). The run holds the dataset's run
    lock (:func:`utils.files.run_lock`) from the first notebook to the last: a second run on the
    same dataset (or a benchmark) refuses with :class:`utils.files.LockBusy` naming this one,
    or with ``wait`` starts when this one ends.
    """
    notebooks_dir = Path(notebooks_dir)
    fast = config.fast_mode() if fast is None else fast
    spec = str(dataset or os.environ.get("COURSE_DATASET") or config.DEFAULT_DATASET).strip()
    dataset = config.resolve_dataset(spec)          # csv:PATH -> csv-<hash>; the notebooks get the spec
    mode = "fast" if fast else "full"
    out_dir = Path(out_dir) if out_dir else RUNS_DIR / f"{dataset}-{mode}"
    _check_out_dir(out_dir, notebooks_dir)
    notebooks = select(notebook_files(notebooks_dir), only, start)
    if not notebooks:
        raise ValueError(f"No notebooks (NN_name.ipynb) in {notebooks_dir}.")
    check_budget([p.name.split("_")[0] for p in notebooks], fast, dataset, go_ahead, budget_minutes, log=log)
    if dataset.startswith("csv-"):
        check_data(spec, log)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {"COURSE_FAST": "1" if fast else "0", "COURSE_DATASET": spec if dataset.startswith("csv-") else dataset}
    if data_dir:
        env["COURSE_DATA_DIR"] = str(Path(data_dir).expanduser().resolve())
    report = RunReport(out_dir=out_dir)
    backend = os.environ.get("MPLBACKEND")
    with run_lock(dataset, wait=wait, log=log), _environment(env), kernel_environment():
        log(f"Running {len(notebooks)} notebook(s) from {notebooks_dir} | dataset={dataset} | "
            f"{mode.upper()} mode | executed copies -> {out_dir}")
        if backend and "MPLBACKEND" not in os.environ:
            log(f"(MPLBACKEND={backend} is unset for the kernels: the executed copies keep their figures)")
        total = time.time()
        expected = {p.name: expected_minutes(p.name.split("_")[0], fast, dataset) for p in notebooks}
        for i, path in enumerate(notebooks, 1):
            log(f"[{i}/{len(notebooks)}] {path.name} ...{_expectation(expected, notebooks[i - 1:], time.time() - total)}")
            seconds, failure = execute_notebook(path, out_dir / path.name, timeout=timeout, log=log)
            if failure:
                log(f"[{i}/{len(notebooks)}] {path.name} FAILED after {_fmt_seconds(seconds)}")
                report.failure = failure
                report.skipped = [p.name for p in notebooks[i:]]
                report_failure(failure, log, resume=f" --{mode} --dataset {spec}")
                if report.skipped:
                    log(f"Not run: {', '.join(report.skipped)}")
                return report
            report.finished.append((path.name, seconds))
            log(f"[{i}/{len(notebooks)}] {path.name} ok in {_fmt_seconds(seconds)}")
        log(f"All {len(notebooks)} notebook(s) ran in {_fmt_seconds(time.time() - total)}:")
        for name, seconds in report.finished:
            log(f"  {_fmt_seconds(seconds):>12}  {name}")
        if table:
            from utils.evaluation.compare import comparison_text

            log("")
            log(comparison_text(dataset))
    return report


def _expectation(expected: dict, left: list[Path], elapsed: float) -> str:
    """`` (expected ~1 min; 2 min 10 s elapsed, ~4 min left)`` from the cost table, when it has figures."""
    from utils.tools.costs import speed_label

    this = expected.get(left[0].name)
    rest = [expected.get(p.name) for p in left]
    if this is None:
        return f" ({_fmt_seconds(elapsed)} elapsed)"
    total = f", ~{_fmt_seconds(sum(rest) * 60)} left" if None not in rest else ""
    return f" (expected ~{_fmt_seconds(this * 60)} {speed_label()}; {_fmt_seconds(elapsed)} elapsed{total})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.run_course", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--fast", dest="fast", action="store_true", default=None,
                      help="FAST mode: subsampled data, few epochs (default when COURSE_FAST=1)")
    mode.add_argument("--full", dest="fast", action="store_false", help="full data and training")
    parser.add_argument("--dataset", default=None,
                        help=f"cmu, netflix, tmdb or csv:PATH for your own file (default: COURSE_DATASET or "
                             f"{config.DEFAULT_DATASET})")
    parser.add_argument("--data-dir", help="folder with raw data files (sets COURSE_DATA_DIR)")
    parser.add_argument("--only", help="comma-separated notebook prefixes to run, e.g. 03,06")
    parser.add_argument("--from", dest="start", help="start at the notebook with this prefix, e.g. 04")
    parser.add_argument("--out", help="folder for the executed copies (default: runs/<dataset>-<mode>)")
    parser.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell (default: none)")
    parser.add_argument("--budget", type=float, default=None, metavar="MINUTES",
                        help="refuse a full CMU run expected to take longer than this")
    parser.add_argument("--yes", action="store_true", help="go ahead with a full CMU run that takes hours on a CPU")
    parser.add_argument("--wait", action="store_true",
                        help="when another run holds this dataset, wait for it to end (default: refuse at once)")
    parser.add_argument("--notebooks", default=str(config.NOTEBOOKS_DIR), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        report = run(notebooks_dir=Path(args.notebooks), out_dir=args.out, fast=args.fast,
                     dataset=args.dataset, only=[o.strip() for o in args.only.split(",") if o.strip()] if args.only else None,
                     start=args.start, timeout=args.timeout, data_dir=args.data_dir,
                     log=lambda msg: print(msg, flush=True), go_ahead=args.yes, budget_minutes=args.budget,
                     wait=args.wait)
    except DataError as err:
        print(f"error: {err}\nThe data is the problem, not the course: fix the file as the message says, then run "
              f"the same command again. No notebook was run.", file=sys.stderr)
        return 2
    except (ValueError, LockBusy) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
