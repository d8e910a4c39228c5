"""A dress rehearsal of the full-size CMU course, without the CMU plot summaries.

    python -m utils.rehearse --cmu-scale                 # 42,306 synthetic plots, every notebook, full mode
    python -m utils.rehearse --cmu-scale --scale 0.1     # a tenth of it, times extrapolated (and labelled so)
    python -m utils.rehearse --cmu-scale --only 04a,04b  # resume: one line per notebook in the same file

It writes a synthetic corpus in the real ``MovieSummaries/`` format: the real
``movie.metadata.tsv`` (from ``COURSE_DATA_DIR``, e.g. ``../shared/data``) and a
``plot_summaries.txt`` for a seeded sample of its movies that have genres, with plot
lengths drawn log-normally (median about 1,100 and mean about 1,780 characters, some
over 10,000) and words drawn at their real frequencies from the Netflix descriptions.
Then it runs the notebooks in full mode on it, each in a fresh kernel, in a separate
workspace (``COURSE_OUTPUT_DIR``: nothing touches your data/, results/ or models/), and
records each notebook's wall time and peak memory (the whole process tree) as one JSON
line in ``results/rehearsal/cmu-scale<scale>.jsonl``.

Synthetic text carries no genre signal: the rehearsal measures cost and robustness,
never scores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from utils import config

CMU_PLOTS = 42_306
MEDIAN_CHARS, MEAN_CHARS = 1_100, 1_780
OUT_DIR = config.RESULTS_DIR / "rehearsal"
WORK_DIR = config.DATA_DIR / "rehearsal"


def netflix_vocabulary() -> tuple[list[str], np.ndarray]:
    """Words of the Netflix descriptions and their relative frequencies."""
    from utils.data.datasets import load_netflix

    counts = Counter(w for text in load_netflix(verbose=False)["text"] for w in text.split())
    words = list(counts)
    freq = np.array([counts[w] for w in words], dtype=float)
    return words, freq / freq.sum()


def synthetic_plots(n: int, seed: int = 0) -> list[str]:
    """``n`` plots of log-normal length (median/mean as CMU's) from the Netflix word frequencies."""
    rng = np.random.default_rng(seed)
    words, p = netflix_vocabulary()
    sigma = float(np.sqrt(2 * np.log(MEAN_CHARS / MEDIAN_CHARS)))     # mean / median = exp(sigma^2 / 2)
    lengths = rng.lognormal(np.log(MEDIAN_CHARS), sigma, n).astype(int).clip(80, 60_000)
    mean_word = float(np.dot(p, [len(w) + 1 for w in words]))
    plots = []
    from utils.tools import progress

    steps = progress.Steps(n, "synthetic plot", label="rehearsal")      # throttled: a line every 10 s at most
    for chars in lengths:
        steps.start(f"{len(plots):,} written")
        k = max(5, int(chars / mean_word))
        plots.append(" ".join(np.array(words, dtype=object)[rng.choice(len(words), size=k, p=p)]))
        steps.finish()
    if progress._state["open_bar"]:     # a terminal: end the in-place line
        progress.emit(progress.format_line([f"synthetic plot {n}/{n}", "done"], label="rehearsal"))
    return plots


def write_corpus(folder: Path, scale: float = 1.0, seed: int = 0) -> Path:
    """``folder/MovieSummaries/`` with the real metadata and synthetic plots; returns ``folder``."""
    import gzip
    import shutil

    from utils.data.datasets import CMU_FOLDER, find_file, read_cmu_metadata
    from utils.files import atomic_write_bytes

    meta_path = find_file(f"{CMU_FOLDER}/movie.metadata.tsv", f"{CMU_FOLDER}/movie.metadata.tsv.gz")
    if meta_path is None:
        raise SystemExit("The rehearsal needs the real CMU metadata (movie.metadata.tsv[.gz]): point COURSE_DATA_DIR "
                         "at a folder with MovieSummaries/ in it (e.g. ../shared/data).")
    target = Path(folder) / CMU_FOLDER
    target.mkdir(parents=True, exist_ok=True)
    done = target / "plot_summaries.txt"
    stamp = target / "rehearsal.json"
    want = {"scale": scale, "seed": seed}
    if done.exists() and stamp.exists() and json.loads(stamp.read_text()) == want:
        return Path(folder)
    meta = read_cmu_metadata(meta_path)
    ids = meta.loc[meta["genres"].map(len) > 0, "id"].to_numpy()
    rng = np.random.default_rng(seed)
    n = max(200, round(CMU_PLOTS * scale))
    chosen = rng.choice(ids, size=min(n, len(ids)), replace=False)
    plots = synthetic_plots(len(chosen), seed)
    opener = gzip.open if str(meta_path).endswith(".gz") else open
    with opener(meta_path, "rb") as src, open(target / "movie.metadata.tsv", "wb") as dst:
        shutil.copyfileobj(src, dst)
    atomic_write_bytes(done, "".join(f"{i}\t{t}\n" for i, t in zip(chosen, plots)).encode("utf-8"))
    stamp.write_text(json.dumps(want))
    return Path(folder)


def _peak_rss_mb(proc: subprocess.Popen, stop: threading.Event, box: dict) -> None:
    """Sample the memory of ``proc``'s whole process tree (the benchmark's probe) until ``stop``."""
    import psutil

    from utils.tools.benchmark import tree_rss_mb

    root = psutil.Process(proc.pid)
    while not stop.is_set():
        box["peak"] = max(box.get("peak", 0.0), tree_rss_mb(root))
        stop.wait(0.5)


def run_notebook(prefix: str, corpus_dir: Path, work: Path, timeout: int | None = None,
                 notebooks_dir: Path = config.NOTEBOOKS_DIR) -> dict:
    """One notebook in full mode on the synthetic corpus, in its own process tree; its cost."""
    from utils.tools import progress

    env = {**os.environ, "COURSE_DATA_DIR": str(corpus_dir), "COURSE_DATASET": "cmu", "COURSE_FAST": "0",
           "COURSE_OUTPUT_DIR": str(work), "PYTHONPATH": str(config.ROOT),
           "PYTHONUNBUFFERED": "1", progress.MODE_ENV: "lines"}   # the runner's cell lines, as they come
    cmd = [sys.executable, "-m", "utils.run_course", "--full", "--yes", "--dataset", "cmu", "--only", prefix,
           "--out", str(work / "runs"), "--notebooks", str(notebooks_dir)] + (["--timeout", str(timeout)] if timeout else [])
    load_before = os.getloadavg()[0]   # other jobs on the machine make every time an upper bound
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=config.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stop, box = threading.Event(), {}
    watcher = threading.Thread(target=_peak_rss_mb, args=(proc, stop, box), daemon=True)
    watcher.start()
    kept = []
    for line in proc.stdout:     # pass the runner's progress through while it runs (#28); keep the rest
        if line.startswith(progress.PREFIX) and progress.mode() != "off":
            progress.emit(line.rstrip("\n"), final=progress.mode() != "bar")
        else:
            kept.append(line)
    proc.wait()
    output = "".join(kept)
    stop.set()
    watcher.join()
    return {"notebook": prefix, "ok": proc.returncode == 0, "seconds": round(time.perf_counter() - start, 1),
            "peak_rss_mb": round(box.get("peak", 0.0)),
            "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
            "tail": output[-1500:] if proc.returncode else ""}


FIXED_CELL_SECONDS = 1.0   # cells faster than this are start-up (imports, settings): counted once


def cell_seconds(executed: Path) -> list[float]:
    """Seconds of every executed code cell, from the timings nbclient records in the executed copy."""
    from datetime import datetime

    def t(stamp: str) -> datetime:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    nb = json.loads(Path(executed).read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        ex = cell.get("metadata", {}).get("execution", {})
        if cell["cell_type"] == "code" and "iopub.execute_input" in ex and "shell.execute_reply" in ex:
            out.append((t(ex["shell.execute_reply"]) - t(ex["iopub.execute_input"])).total_seconds())
    return out


def extrapolate(seconds: float, cells: list[float], scale: float) -> float:
    """Full-size estimate: cells over :data:`FIXED_CELL_SECONDS` scale as 1/scale (linear), the rest and the
    kernel start-up are counted once. Linear is what the issue's CMU-scale rehearsal found for every step."""
    slow = sum(c for c in cells if c >= FIXED_CELL_SECONDS)
    return seconds - slow + slow / scale


def main(argv=None) -> int:
    from utils.tools.benchmark import machine_info, machine_summary
    from utils.tools.colab import notebook_files

    parser = argparse.ArgumentParser(prog="python -m utils.rehearse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cmu-scale", action="store_true", required=True,
                        help="synthetic plots in the CMU format, at CMU's size times --scale")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 42,306 plots (default 1)")
    parser.add_argument("--only", default=None, help="notebook prefixes, e.g. 03,04a (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell")
    parser.add_argument("--notebooks", default=str(config.NOTEBOOKS_DIR), help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)    # corpus and workspace (tests)
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1].")
    notebooks_dir = Path(args.notebooks)
    prefixes = [p.name.split("_")[0] for p in notebook_files(notebooks_dir)]
    if args.only:
        wanted = [o.strip() for o in args.only.split(",") if o.strip()]
        unknown = [o for o in wanted if o not in prefixes]
        if unknown:
            parser.error(f"no notebook {unknown}; choose from {prefixes}")
        prefixes = wanted
    work = Path(args.work) if args.work else WORK_DIR / f"scale{args.scale:g}"
    print(f"writing the synthetic corpus ({max(200, round(CMU_PLOTS * args.scale)):,} plots) ...", flush=True)
    corpus = write_corpus(work / "corpus", args.scale, args.seed)
    log = OUT_DIR / f"cmu-scale{args.scale:g}.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    print(f"synthetic CMU corpus: {corpus / 'MovieSummaries'} (scale {args.scale:g}); machine: {machine_summary(machine)}")
    print("synthetic plots carry no genre signal: these runs measure time and memory, not scores")
    started = time.perf_counter()
    for k, prefix in enumerate(prefixes, 1):
        print(f"--- [{k}/{len(prefixes)}] {prefix} (full mode) ... {(time.perf_counter() - started) / 60:.1f} min "
              f"elapsed", flush=True)
        row = run_notebook(prefix, corpus, work, args.timeout, notebooks_dir)
        row.update(scale=args.scale, machine=machine_summary(machine), date=time.strftime("%Y-%m-%d %H:%M"))
        executed = next((work / "runs").glob(f"{prefix}_*.ipynb"), None)
        if args.scale < 1 and row["ok"] and executed is not None:
            row["extrapolated_seconds"] = round(extrapolate(row["seconds"], cell_seconds(executed), args.scale))
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({k: v for k, v in row.items() if k != "tail"}) + "\n")
        extra = (f", about {row['extrapolated_seconds'] / 60:.1f} min at full size (estimate: cells over "
                 f"{FIXED_CELL_SECONDS:g} s scaled linearly from scale {args.scale:g})" if "extrapolated_seconds" in row else "")
        print(f"{prefix}: {'ok' if row['ok'] else 'FAILED'} in {row['seconds'] / 60:.1f} min, peak "
              f"{row['peak_rss_mb'] / 1024:.1f} GiB{extra}", flush=True)
        if not row["ok"]:
            print(row["tail"])
            return 1
    print(f"results appended to {log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
