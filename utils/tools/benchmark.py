"""Benchmark the course's models on a dataset at full size, one model per process.

    python -m utils.benchmark --dataset netflix --model tfidf
    python -m utils.benchmark --dataset netflix --model all --fast    # or COURSE_FAST=1, as everywhere
    python -m utils.benchmark --dataset netflix --model tfidf --markdown
    python -m utils.benchmark --dataset netflix --model ensemble --seeds 1,2,3
    python -m utils.benchmark --dataset tmdb --model tfidf_logreg --text title+plot --split-seed 101,102,103

Each model runs in its own Python process so that its peak memory is its own and
model-specific environment variables (``TF_USE_LEGACY_KERAS=1`` for TF Hub BERT)
are set before TensorFlow is imported. The worker loads the processed corpus
(preparing it first if ``data/processed/<dataset>/`` is missing), calls the model
module's ``benchmark(corpus, fast) -> dict`` and hands the figures back through a
JSON file. This process adds the wall time, the peak resident memory and the
machine, prints a table, and writes ``results/benchmarks/<dataset>-<model>-<mode>.json``.

What a model's ``benchmark`` returns (every key optional except ``test``):

* ``test``: :func:`utils.evaluation.metrics.evaluate` on test at the threshold(s) tuned on val;
* ``test_per_genre``: the same with per-genre thresholds;
* ``n_train`` / ``n_val`` / ``n_test``: sizes actually used (FAST subsamples);
* ``train_seconds``, ``seconds_per_epoch``, ``epochs``, ``notes``, anything else.

``--model`` also accepts ``package.module:function`` for a model outside the registry.
``--seeds 1,2,3`` runs each model once per seed (``COURSE_SEED`` of the worker), saves one record
per seed (``...-seed<k>.json``) and prints the mean and spread of the test F1 over the seeds.

A run holds the dataset's run lock (:func:`utils.files.run_lock`): a second benchmark or
``run_course`` on the same dataset refuses, naming this one (``--wait``: queues behind it). Each
worker runs under :mod:`utils.tools.procguard`, so killing this process, even with ``kill -9``,
also ends the worker and every pool process it started; the next start removes the temporary
``bench-<pid>-*`` folders that killed runs left.
``--split-seed 101,102,103`` splits the prepared titles anew for each seed (iterative stratification,
as notebook 01; ``COURSE_SPLIT_SEED`` of the worker), separately from the training seed: a training seed
changes how a model starts, a split seed which titles it is tested on. Every record names its split
(``"split": {"split_seed", "test_ids_sha256"}``, also in the file name: ``...-split<k>...json``), and
summaries refuse records whose split is not the one they claim.
``--text title+plot`` trains and tests every model on the title joined to the plot
(:func:`utils.data.text_setting.compose`, :meth:`utils.data.corpus.Corpus.with_text`) instead of the plot
alone (``--text plot``, the default); the record says which (``"text"``, and ``-title+plot`` in its file
name), and summaries refuse to mix the two.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from utils import config
from utils.data.datasets import data_errors
from utils.data.text_setting import DEFAULT as DEFAULT_TEXT, TEXT_SETTINGS, check_setting

REGISTRY = {
    "tfidf": "utils.modelfiles.tfidf:benchmark",
    "bilstm": "utils.modelfiles.bilstm:benchmark",
    "bilstm_softf1": "utils.modelfiles.bilstm:benchmark_softf1",
    "minilm": "utils.modelfiles.minilm:benchmark",
    "bert_tfhub": "utils.modelfiles.bert_tfhub:benchmark",
    "tfidf_tuned": "utils.modelfiles.ensemble:benchmark_tfidf_tuned",
    "head_tuned": "utils.modelfiles.ensemble:benchmark_head_tuned",
    "ensemble": "utils.modelfiles.ensemble:benchmark_ensemble",
}
# other names of registry models: the folder names their notebooks save under models/<dataset>/
ALIASES = {"tfidf_logreg": "tfidf", "minilm_frozen": "minilm"}
# environment a model needs before anything imports TensorFlow
MODEL_ENV = {"bert_tfhub": {"TF_USE_LEGACY_KERAS": "1"}}
BENCH_DIR = config.RESULTS_DIR / "benchmarks"


class BenchmarkError(RuntimeError):
    """A model run that failed, crashed or returned figures in the wrong shape."""


# --------------------------------------------------------------------------- helpers


def resolve(model: str) -> str:
    """``module:function`` for a registry name or alias (or a spec given as is)."""
    model = ALIASES.get(model, model)
    if model in REGISTRY:
        return REGISTRY[model]
    if ":" in model:
        return model
    raise BenchmarkError(f"Unknown model {model!r}: choose one of {sorted(REGISTRY)} (or {sorted(ALIASES)}) or 'all', "
                         f"or give 'package.module:function'.")


def model_label(model: str) -> str:
    """A name fit for a file name: the registry name, or the function's module for a spec."""
    model = ALIASES.get(model, model)
    if model in REGISTRY:
        return model
    module, _, func = model.partition(":")
    return f"{module.rsplit('.', 1)[-1]}-{func}" if func else module.rsplit(".", 1)[-1]


def mode_name(fast: bool) -> str:
    return "fast" if fast else "full"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=5).stdout.strip() or platform.machine()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _gpus() -> list[str]:
    """GPU names from ``nvidia-smi`` (without importing TensorFlow); ``[]`` when none."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def machine_info() -> dict:
    """CPU model and usable cores, total memory, GPUs, OS and Python version."""
    info = {"cpu": _cpu_model(), "cores": _cores(), "gpus": _gpus(),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version()}
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    return info


def machine_summary(info: dict) -> str:
    gpu = ", ".join(info.get("gpus") or []) or "no GPU"
    return f"{info['cpu']}, {info['cores']} cores, {gpu}"


def _maxrss_mb(who) -> float:
    """``ru_maxrss`` in MiB (kilobytes on Linux, bytes on macOS)."""
    value = resource.getrusage(who).ru_maxrss
    return round(value / (2**20 if sys.platform == "darwin" else 2**10), 1)


def ensure_prepared(dataset: str) -> None:
    """Build ``data/processed/<dataset>/`` with :func:`utils.data.pipeline.prepare` if it is missing,
    incomplete or prepared with other settings than the course's rule (the one notebook 01 applies)."""
    from utils.data import pipeline

    pipeline.ensure_prepared(dataset)


# --------------------------------------------------------------------------- worker (child process)


PARENT_ENV = "COURSE_BENCHMARK_PARENT"   # the pid of the process that started the worker


def die_with_parent(parent_pid: int, poll_seconds: float = 0.5) -> None:
    """End this worker when its parent ends, even by ``kill -9`` (which it cannot catch).

    On Linux the kernel sends SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``);
    everywhere, a daemon thread also notices that the parent pid changed (re-parented to init).
    """
    import signal
    import threading

    from utils.tools.procguard import set_parent_death_signal

    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:      # the parent died before prctl took effect
        os._exit(1)

    def watch():
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_worker(model: str, dataset: str, fast: bool, out: Path, text: str | None = None) -> None:
    """In the child: load the corpus (split anew with ``COURSE_SPLIT_SEED`` when set; its texts as ``text``
    asks, the plot or the title and plot), call the model's benchmark, write its figures and the split's
    identity to ``out``."""
    import importlib

    from utils.data.corpus import load_corpus
    from utils.files import atomic_write_json

    from utils.tools import progress

    start = time.perf_counter()
    progress.stage("loading the corpus")
    corpus = load_corpus(dataset, require_clean=True)
    if config.split_seed() is not None:
        corpus = corpus.resplit(config.split_seed())
    corpus = corpus.with_text(text)
    load_seconds = time.perf_counter() - start
    module, func = resolve(model).split(":")
    fn = getattr(importlib.import_module(module), func)
    if (model in REGISTRY and model != "tfidf") or "keras" in sys.modules:
        progress.install_fit_progress()      # every Keras fit reports its epochs, throttled
    start = time.perf_counter()
    progress.stage("training and evaluating")
    figures = fn(corpus, fast=fast)
    seconds = time.perf_counter() - start
    progress.emit(progress.format_line(["done"], elapsed=time.monotonic() - progress._state["started"],
                                       label=progress._state["label"]))
    if not isinstance(figures, dict):
        raise BenchmarkError(f"{module}.{func} returned {type(figures).__name__}, not a dict of figures.")
    sizes = {s: len(corpus.ids(s)) for s in ("train", "val", "test")}
    atomic_write_json(out, {
        "figures": figures,
        "text": corpus.text,
        "split": corpus.split_identity(),
        "corpus_sizes": sizes,
        "n_genres_corpus": len(corpus.genres),
        "load_seconds": round(load_seconds, 2),
        "benchmark_seconds": round(seconds, 2),
        "worker_peak_rss_mb": _maxrss_mb(resource.RUSAGE_SELF),
        "worker_children_peak_rss_mb": _maxrss_mb(resource.RUSAGE_CHILDREN),
    })


# --------------------------------------------------------------------------- parent


def tree_rss_mb(proc, include_root: bool = True) -> float:
    """Current resident memory of ``proc`` (unless ``include_root`` is false) and all its descendants, in MiB."""
    import psutil

    total = 0
    try:
        procs = [proc] * include_root + proc.children(recursive=True)
    except psutil.Error:
        return 0.0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def run_model(model: str, dataset: str, fast: bool, timeout: float | None = None,
              machine: dict | None = None, out_dir: Path | None = None, seed: int | None = None,
              split_seed: int | None = None, text: str | None = None) -> dict:
    """Run one model's benchmark in a fresh process; return the record, saved in ``out_dir``.

    ``out_dir`` defaults to ``results/benchmarks``; the child reads the processed data
    from ``config.PROCESSED_DIR`` as this process sees it. ``seed`` sets the worker's
    ``COURSE_SEED`` and names the record ``<dataset>-<model>-<mode>-seed<seed>.json``;
    ``split_seed`` sets its ``COURSE_SPLIT_SEED`` (the titles split anew) and adds ``-split<k>``;
    ``text="title+plot"`` gives the models the title joined to the plot and adds ``-title+plot``.
    """
    import psutil

    from utils.files import atomic_write_json

    label = model_label(model)
    resolve(model)  # fail early on a bad name
    text = check_setting(text)
    env = {**os.environ, **MODEL_ENV.get(model, {}), PARENT_ENV: str(os.getpid())}
    # the worker writes to this process's stdout and stderr: unbuffered, so that its progress lines
    # (utils.tools.progress, on stderr) show while it runs, on a terminal and in a CI log alike
    from utils.tools import progress

    env["PYTHONUNBUFFERED"] = "1"
    env[progress.MODE_ENV] = progress.mode(sys.stderr)
    if seed is not None:
        env["COURSE_SEED"] = str(seed)
    env.pop("COURSE_SPLIT_SEED", None)
    if split_seed is not None:
        env["COURSE_SPLIT_SEED"] = str(split_seed)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(config.ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
        out = Path(tmp) / "figures.json"
        # the worker runs under a guard (utils.tools.procguard): if this process is killed, even by
        # kill -9, the guard kills the worker and every process it started (loky pools, trackers)
        cmd = [sys.executable, "-m", "utils.tools.procguard", "--parent", str(os.getpid()), "--pid-env", PARENT_ENV,
               "--", sys.executable, "-m", "utils.tools.benchmark", "--worker", str(out),
               "--dataset", dataset, "--model", model,
               "--processed-dir", str(config.PROCESSED_DIR), "--fast" if fast else "--full", "--text", text]
        start = time.perf_counter()
        child = subprocess.Popen(cmd, env=env, cwd=config.ROOT)
        proc = psutil.Process(child.pid)
        peak = 0.0
        try:
            while child.poll() is None:
                peak = max(peak, tree_rss_mb(proc, include_root=False))   # the guard itself is not the model's
                if timeout is not None and time.perf_counter() - start > timeout:
                    _stop(child)
                    raise BenchmarkError(f"{label} ran longer than {timeout:.0f} s and was stopped.")
                time.sleep(0.1)
        except KeyboardInterrupt:
            _stop(child)
            raise
        wall = time.perf_counter() - start
        if child.returncode != 0 or not out.exists():
            raise BenchmarkError(f"{label} failed (exit code {child.returncode}); its error is printed above.")
        worker = json.loads(out.read_text())
    figures = worker.pop("figures")
    kept = {k: figures.pop(k) for k in KEPT if k in figures}   # the test decisions: an .npz, not the JSON
    if "test" not in figures or "micro_f1" not in figures["test"]:
        raise BenchmarkError(f"{label}'s benchmark returned no 'test' metrics (utils.evaluation.metrics.evaluate); "
                             f"keys: {sorted(figures)}")
    record = {
        "dataset": dataset,
        "model": label,
        "spec": resolve(model),
        "mode": mode_name(fast),
        "machine": machine or machine_info(),
        "split_sizes": {s: int(figures.get(f"n_{s}", worker["corpus_sizes"][s])) for s in ("train", "val", "test")},
        "corpus_sizes": worker["corpus_sizes"],
        "metrics": {k: figures["test"][k] for k in ("micro_f1", "macro_f1", "samples_f1")},
        "train_seconds": figures.get("train_seconds"),
        "seconds_per_epoch": figures.get("seconds_per_epoch"),
        "wall_seconds": round(wall, 2),
        "peak_rss_mb": round(max(peak, worker["worker_peak_rss_mb"]), 1),
        "peak_rss_worker_mb": worker["worker_peak_rss_mb"],
        "peak_rss_tree_sampled_mb": round(peak, 1),
        "load_seconds": worker["load_seconds"],
        "benchmark_seconds": worker["benchmark_seconds"],
        "notes": figures.get("notes", ""),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average": _load_average(),
        "seed": seed,
        "training_seed": config.seed() if seed is None else seed,
        "split": worker["split"],
        "text": worker.get("text", DEFAULT_TEXT),
        "figures": figures,
    }
    if record["text"] != text:
        raise BenchmarkError(f"{label} was asked for the text setting {text!r} but its worker used "
                             f"{record['text']!r}: not saved.")
    if split_seed is not None and worker["split"].get("split_seed") != split_seed:
        raise BenchmarkError(f"{label} was asked for split seed {split_seed} but its worker used "
                             f"{worker['split'].get('split_seed')}: not saved.")
    suffix = (("" if text == DEFAULT_TEXT else f"-{text}") + ("" if split_seed is None else f"-split{split_seed}")
              + ("" if seed is None else f"-seed{seed}"))
    path = Path(out_dir or BENCH_DIR) / f"{dataset}-{label}-{record['mode']}{suffix}.json"
    if len(kept) == len(KEPT):   # written before the record, which names it: no record points at nothing
        record["test_predictions"] = save_predictions(path, kept)
    atomic_write_json(path, record)
    record["path"] = str(path)
    return record


KEPT = ("test_ids", "test_true", "test_pred")   # utils.evaluation.metrics.kept_predictions


def predictions_path(record_path: Path) -> Path:
    return Path(record_path).with_suffix(".test.npz")


def save_predictions(record_path: Path, kept: dict) -> str:
    """``<record>.test.npz`` (ids, true labels, decisions; plain arrays, no pickle); returns its file name."""
    import io

    from utils.files import atomic_write_bytes

    ids = np.asarray(kept["test_ids"], dtype=str)
    true, pred = np.asarray(kept["test_true"], np.uint8), np.asarray(kept["test_pred"], np.uint8)
    if true.shape != pred.shape or true.ndim != 2 or len(ids) != len(true):
        raise BenchmarkError(f"kept test predictions have inconsistent shapes: {len(ids)} ids, {true.shape}, "
                             f"{pred.shape}.")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, ids=ids, true=true, pred=pred)
    target = predictions_path(record_path)
    atomic_write_bytes(target, buffer.getvalue())
    return target.name


def load_predictions(record_path: Path) -> tuple[dict, dict]:
    """``(record, {"ids", "true", "pred"})`` of a saved benchmark record and its kept test decisions."""
    record_path = Path(record_path)
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError) as err:
        raise BenchmarkError(f"{record_path}: not a benchmark record ({err}).") from None
    name = record.get("test_predictions")
    if not name:
        raise BenchmarkError(f"{record_path} kept no test predictions (a run before they were kept, or a model "
                             f"that does not keep them yet): run its benchmark again to compare it pairwise.")
    path = record_path.parent / Path(name).name          # beside the record, never elsewhere
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("ids", "true", "pred")}
    except (OSError, KeyError, ValueError) as err:
        raise BenchmarkError(f"{path}: unreadable kept predictions ({err}).") from None
    return record, arrays


def paired(path_a: Path, path_b: Path, seed: int = 0) -> dict:
    """The paired bootstrap of two records' test decisions (A minus B) on the same test titles."""
    from utils.evaluation.metrics import paired_bootstrap_difference

    (rec_a, a), (rec_b, b) = load_predictions(path_a), load_predictions(path_b)
    if rec_a.get("dataset") != rec_b.get("dataset") or a["true"].shape[1] != b["true"].shape[1]:
        raise BenchmarkError(f"{path_a} and {path_b} are not on the same dataset and genres.")
    if set(a["ids"]) != set(b["ids"]) or len(a["ids"]) != len(b["ids"]):
        raise BenchmarkError(f"{path_a} and {path_b} were tested on different titles (another split, seed or "
                             f"mode): a paired comparison needs the same test titles.")
    order = {i: k for k, i in enumerate(b["ids"])}
    rows = np.array([order[i] for i in a["ids"]])
    if not np.array_equal(a["true"], b["true"][rows]):
        raise BenchmarkError(f"{path_a} and {path_b} disagree on the test labels: not the same prepared data.")
    diff = paired_bootstrap_difference(a["true"], a["pred"], b["pred"][rows], seed=seed)
    return {"a": rec_a, "b": rec_b, "n_test": len(rows), "difference": diff}


def format_paired(result: dict, name_a: str, name_b: str) -> str:
    lines = [f"A = {name_a}", f"B = {name_b}",
             f"{result['n_test']:,} test titles; A minus B, 95 % paired bootstrap interval (1,000 resamples):"]
    for metric, d in result["difference"].items():
        verdict = "tie" if d["tie"] else ("A better" if d["difference"] > 0 else "B better")
        lines.append(f"  {metric:<11} {d['difference']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]  {verdict}")
    return "\n".join(lines)


def _previous_run(model: str, dataset: str, fast: bool, out_dir: Path | None, seed: int | None) -> str:
    """What to expect: the wall time of this model's last record (progress lines follow on stderr)."""
    label = model_label(model)
    folder = Path(out_dir or BENCH_DIR)
    paths = sorted(folder.glob(f"{dataset}-{label}-{mode_name(fast)}*.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(paths):
        try:
            r = json.loads(path.read_text())
            load = r.get("load_average") or ["?"]
            return (f"started        {time.strftime('%H:%M:%S')}; the last run took {r['wall_seconds'] / 60:.1f} min "
                    f"({r.get('date', '?')}, {machine_summary(r['machine'])}, load {load[0]}); progress on stderr")
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return f"started        {time.strftime('%H:%M:%S')}; no earlier run to compare with; progress on stderr"


def _stop(child, grace: float = 10.0) -> None:
    """Stop a guarded worker: SIGTERM makes the guard kill the whole tree; SIGKILL if it does not end."""
    child.terminate()
    try:
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


TEMP_PREFIX = "bench-"     # bench-<pid of the benchmark>-<random>: its temporary folder


def clean_stale_temp(folder: Path | None = None) -> list[Path]:
    """Remove the temporary folders of benchmarks that were killed (their pid is no longer running).

    Only this user's folders named ``bench-<pid>-*``; those of running benchmarks are kept.
    """
    from utils.files import pid_alive

    removed = []
    for path in Path(folder or tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*"):
        pid = path.name[len(TEMP_PREFIX):].split("-", 1)[0]
        try:
            mine = path.is_dir() and not path.is_symlink() and path.stat().st_uid == os.getuid()
        except (OSError, AttributeError):
            mine = False
        if mine and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _load_average():
    """The 1, 5 and 15 minute load averages when the run ended (a shared machine slows everything)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def parse_seeds(text: str | None, option: str = "--seeds") -> list[int] | None:
    """``"1,2,3"`` -> ``[1, 2, 3]``; ``None`` -> ``None``; anything else is a clear error."""
    if text is None:
        return None
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{option} takes integers separated by commas (e.g. 1,2,3), not {text!r}.") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"{option} needs one or more different integers (e.g. 1,2,3), not {text!r}.")
    return seeds


def check_splits(records: list[dict]) -> None:
    """Refuse records that would mix splits: one model, dataset and mode, and every split seed naming
    one set of test titles; records without a split identity (older files) cannot be checked.

    Over training seeds (one split seed), all records must share one split; over split seeds, each
    record's test titles must be those its split seed draws, whatever the training seed.
    """
    if not records:
        raise BenchmarkError("No records to summarise.")
    kinds = {(r.get("model"), r.get("dataset"), r.get("mode"), r.get("text", DEFAULT_TEXT)) for r in records}
    if len(kinds) > 1:
        raise BenchmarkError(f"Records of different models, datasets, modes or text settings cannot be summarised "
                             f"together: {sorted(kinds, key=str)}.")
    by_seed: dict = {}
    for r in records:
        split = r.get("split")
        if not isinstance(split, dict) or not split.get("test_ids_sha256"):
            raise BenchmarkError(f"{r.get('path') or r.get('model')} records no split (an older file?): its test "
                                 f"titles cannot be checked, so it is not mixed with others. Run it again.")
        by_seed.setdefault(split.get("split_seed"), set()).add(split["test_ids_sha256"])
    mixed = {seed: hashes for seed, hashes in by_seed.items() if len(hashes) > 1}
    if mixed:
        raise BenchmarkError(f"Records claim the same split seed but were tested on different titles: {mixed}. "
                             f"They come from different prepared data or runs; do not mix them.")
    hashes = [h for hs in by_seed.values() for h in hs]
    if len(set(hashes)) != len(hashes):
        raise BenchmarkError(f"Records with different split seeds were tested on the same titles: {by_seed}.")


def seed_summary(records: list[dict]) -> dict:
    """Mean, standard deviation, min and max of the test F1s of one model's records over seeds
    (training seeds, split seeds or both), after :func:`check_splits`; each run's split and
    bootstrap interval are kept under ``"runs"``."""
    check_splits(records)
    out = {"model": records[0]["model"], "text": records[0].get("text", DEFAULT_TEXT),
           "seeds": [r.get("seed") for r in records],
           "training_seeds": [r.get("training_seed", r.get("seed")) for r in records],
           "split_seeds": [r["split"].get("split_seed") for r in records],
           "runs": [{"seed": r.get("training_seed", r.get("seed")), "split": r["split"], "metrics": r["metrics"],
                     "interval": r.get("figures", {}).get("test_interval")} for r in records]}
    for key in ("micro_f1", "macro_f1", "samples_f1"):
        values = np.array([r["metrics"][key] for r in records], dtype=float)
        out[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                    "min": float(values.min()), "max": float(values.max())}
    train = [r["train_seconds"] for r in records if r.get("train_seconds") is not None]
    out["train_seconds_max"] = max(train) if train else None
    return out


def format_seed_summary(summary: dict, dataset: str, mode: str) -> str:
    parts = [f"{key.split('_')[0]} {summary[key]['mean']:.4f} ± {summary[key]['std']:.4f} "
             f"(min {summary[key]['min']:.4f}, max {summary[key]['max']:.4f})"
             for key in ("micro_f1", "macro_f1", "samples_f1")]
    train = summary["train_seconds_max"]
    splits = summary.get("split_seeds") or []
    seeds = summary["seeds"]
    if any(s is not None for s in splits) and len(set(splits)) > 1:
        trained = sorted({str(s) for s in summary.get("training_seeds", seeds) if s is not None})
        over = f"split seeds {splits}" + (f" (training seed{'s' if len(trained) > 1 else ''} {', '.join(trained)})"
                                          if trained else "")
    elif any(s is not None for s in seeds):
        over = f"seeds {seeds}" + (f" on split seed {splits[0]}" if splits and splits[0] is not None else "")
    else:
        over = f"1 run on split seed {splits[0]}" if splits else "1 run"
    text = "" if summary.get("text", DEFAULT_TEXT) == DEFAULT_TEXT else f", text {summary['text']}"
    lines = [f"{summary['model']} on {dataset} ({mode}{text}), mean over {over}: test "
             + " | ".join(parts) + (f"; slowest run's training {train:.0f} s" if train is not None else "")]
    for run in summary.get("runs", []):
        ci = run.get("interval") or {}
        bounds = "".join(f", {k.split('_')[0]} 95% CI [{ci[k][0]:.3f}, {ci[k][1]:.3f}]"
                         for k in ("micro_f1", "macro_f1") if k in ci)
        lines.append(f"  split seed {run['split'].get('split_seed')} (test ids {run['split']['test_ids_sha256']}), "
                     f"seed {run['seed']}: micro {run['metrics']['micro_f1']:.4f}, macro "
                     f"{run['metrics']['macro_f1']:.4f}{bounds}")
    return "\n".join(lines)


def format_total(runs: int, dataset: str, mode: str, machine: dict, seconds: float) -> str:
    """The line that closes a multi-model run: how many runs, and the wall time of all of them."""
    return (f"total          {runs} run(s) on {dataset} ({mode}) in {seconds / 60:.1f} min wall time, "
            f"corpus preparation excluded, on {machine_summary(machine)}")


def _fmt(value, spec: str = "") -> str:
    if value is None:
        return "-"
    return format(value, spec) if spec else str(value)


def format_record(r: dict) -> str:
    """A human-readable block of one benchmark record."""
    s, m = r["split_sizes"], r["metrics"]
    lines = [
        f"dataset        {r['dataset']}   mode {r['mode']}   text {r.get('text', DEFAULT_TEXT)}",
        f"model          {r['model']} ({r['spec']})",
        f"machine        {machine_summary(r['machine'])}",
        f"split sizes    train {s['train']:,} | val {s['val']:,} | test {s['test']:,}",
        f"test F1        micro {m['micro_f1']:.4f} | macro {m['macro_f1']:.4f} | samples "
        f"{m['samples_f1']:.4f}   (thresholds tuned on val)",
    ]
    ci = r.get("figures", {}).get("test_interval")
    if isinstance(ci, dict) and {"micro_f1", "macro_f1"} <= set(ci):
        lines.append(f"  95% interval  micro [{ci['micro_f1'][0]:.4f}, {ci['micro_f1'][1]:.4f}] | macro "
                     f"[{ci['macro_f1'][0]:.4f}, {ci['macro_f1'][1]:.4f}]   (bootstrap over test titles)")
    split = r.get("split")
    if isinstance(split, dict):
        which = "the prepared split" if split.get("split_seed") is None else f"split seed {split['split_seed']}"
        lines.insert(3, f"split          {which}, test ids sha256 {split.get('test_ids_sha256')}; "
                        f"training seed {_fmt(r.get('training_seed', r.get('seed')))}")
    per = r.get("figures", {}).get("test_per_genre")
    if isinstance(per, dict) and "micro_f1" in per:
        lines.append(f"  per-genre     micro {per['micro_f1']:.4f} | macro {per['macro_f1']:.4f} | samples "
                     f"{per['samples_f1']:.4f}   (one threshold per genre, tuned on val)")
    for key, sub in r.get("figures", {}).items():   # variants a model reports beside its headline
        test = sub.get("test") if isinstance(sub, dict) else None
        if isinstance(test, dict) and {"micro_f1", "macro_f1", "samples_f1"} <= set(test):
            lines.append(f"  {key[:12]:<12}  micro {test['micro_f1']:.4f} | macro {test['macro_f1']:.4f} | "
                         f"samples {test['samples_f1']:.4f}   ({sub.get('model', key)})")
    lines += [
        f"timings        train {_fmt(r['train_seconds'], '.1f')} s | per epoch "
        f"{_fmt(r['seconds_per_epoch'], '.1f')} s | wall {r['wall_seconds']:.1f} s "
        f"(corpus load {r['load_seconds']:.1f} s)",
        f"peak RSS       {r['peak_rss_mb']:,.0f} MiB (worker {r['peak_rss_worker_mb']:,.0f} MiB, "
        f"process tree {r['peak_rss_tree_sampled_mb']:,.0f} MiB)",
        f"notes          {r['notes'] or '-'}",
    ]
    if r.get("load_average"):
        lines.insert(-1, f"load average   {' / '.join(map(str, r['load_average']))} (1 / 5 / 15 min, at the end)")
    return "\n".join(lines)


MARKDOWN_HEADER = ("| dataset | model | mode | machine | train / val / test | micro-F1 | macro-F1 | "
                   "samples-F1 | train s | wall s | peak RSS | notes |\n"
                   "|---|---|---|---|---|---|---|---|---|---|---|---|")


def markdown_row(r: dict) -> str:
    """One README table row (see :data:`MARKDOWN_HEADER`)."""
    s, m = r["split_sizes"], r["metrics"]
    text = "" if r.get("text", DEFAULT_TEXT) == DEFAULT_TEXT else f" ({r['text']})"
    return (f"| {r['dataset']} | {r['model']}{text} | {r['mode']} | {machine_summary(r['machine'])} | "
            f"{s['train']:,} / {s['val']:,} / {s['test']:,} | {m['micro_f1']:.3f} | {m['macro_f1']:.3f} | "
            f"{m['samples_f1']:.3f} | {_fmt(r['train_seconds'], '.0f')} | {r['wall_seconds']:.0f} | "
            f"{r['peak_rss_mb'] / 1024:.2f} GiB | {_first_clause(r.get('notes'))} |")


def _first_clause(notes) -> str:
    """The notes up to the first ';' (warnings such as RANDOM WEIGHTS come first), table-safe."""
    return (str(notes or "").split(";")[0].strip() or "-").replace("|", "/")


def member_records(records: list[dict], member: str) -> list[dict]:
    """One ensemble member's figures in each ensemble record, shaped as records (for :func:`seed_summary`)."""
    out = []
    for r in records:
        m = r.get("figures", {}).get("members", {}).get(member)
        if m:
            out.append({**r, "model": f"{r['model']}/{member}", "train_seconds": m.get("train_seconds"),
                        "metrics": {k: m[k] for k in ("micro_f1", "macro_f1", "samples_f1")},
                        "figures": {"test_interval": m.get("interval")}})
    return out


def summarise_files(paths: list[Path]) -> int:
    """``--summarise``: the summary of saved records, one block per model (and per ensemble member)."""
    records = []
    for path in paths:
        try:
            records.append({**json.loads(path.read_text()), "path": str(path)})
        except (OSError, ValueError) as err:
            print(f"!! {path}: not a benchmark record ({err})", file=sys.stderr)
            return 1
    groups: dict = {}
    for r in records:
        groups.setdefault((r.get("model"), r.get("dataset"), r.get("mode"), r.get("text", DEFAULT_TEXT)), []).append(r)
    status = 0
    for (model, dataset, mode, _), group in groups.items():
        blocks = [group] + ([member_records(group, m) for m in group[0]["figures"].get("members", {})]
                            if model == "ensemble" else [])
        for block in blocks:
            try:
                print(format_seed_summary(seed_summary(block), dataset, mode) + "\n")
            except BenchmarkError as err:
                print(f"!! {model}: {err}", file=sys.stderr)
                status = 1
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.benchmark",
                                     description="Train and evaluate course models on a dataset, "
                                                 "one process per model.")
    parser.add_argument("--dataset", default=None,
                        help="cmu, netflix, tmdb or csv:PATH for your own file (default: COURSE_DATASET or cmu)")
    parser.add_argument("--model", default="tfidf",
                        help=f"one of {', '.join(REGISTRY)}, 'all', or package.module:function")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--fast", dest="fast", action="store_true", default=None,
                      help="FAST mode: subsampled, few epochs (the default when COURSE_FAST=1, as for every "
                           "command of the course)")
    mode.add_argument("--full", dest="fast", action="store_false",
                      help="full data and training (the default unless COURSE_FAST=1)")
    parser.add_argument("--markdown", action="store_true", help="also print README table rows")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per model")
    parser.add_argument("--processed-dir", type=Path, default=None,
                        help="read <dir>/<dataset>/ instead of data/processed/<dataset>/")
    parser.add_argument("--out", type=Path, default=BENCH_DIR,
                        help="folder for the JSON records (default results/benchmarks)")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds (e.g. 1,2,3): one run per seed, then the mean and spread")
    parser.add_argument("--wait", action="store_true",
                        help="when another run holds this dataset, wait for it to end (default: refuse at once)")
    parser.add_argument("--split-seed", "--split-seeds", dest="split_seeds", default=None,
                        help="comma-separated split seeds (e.g. 101,102,103): split the titles anew with each "
                             "(separate from the training seed), one run per split seed, then the mean and spread")
    parser.add_argument("--text", choices=TEXT_SETTINGS, default=DEFAULT_TEXT,
                        help="what the models read: the plot alone (default) or the title joined to the plot")
    parser.add_argument("--summarise", nargs="+", metavar="RECORD",
                        help="print the mean, range and intervals of saved records (JSON files) instead of "
                             "running anything; records of mixed splits are refused")
    parser.add_argument("--paired", nargs=2, metavar=("A", "B"),
                        help="compare two saved records on the same test titles: A minus B with a paired "
                             "bootstrap interval per F1 flavour, from the test decisions each run kept")
    parser.add_argument("--worker", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.summarise:
        return summarise_files([Path(p) for p in args.summarise])
    if args.paired:
        try:
            print(format_paired(paired(*map(Path, args.paired)), *args.paired))
        except BenchmarkError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    try:
        seeds = parse_seeds(args.seeds)
        split_seeds = parse_seeds(args.split_seeds, "--split-seed")
    except ValueError as err:
        parser.error(str(err))
    from_env = args.fast is None
    if from_env:
        try:
            args.fast = config.fast_mode()
        except ValueError as err:
            parser.error(str(err))
    if args.processed_dir is not None:
        config.PROCESSED_DIR = args.processed_dir.expanduser().resolve()
    try:
        spec = args.dataset or os.environ.get("COURSE_DATASET") or config.DEFAULT_DATASET
        args.dataset = config.resolve_dataset(spec)
    except ValueError as err:
        parser.error(str(err))
    if args.dataset.startswith("csv-"):
        os.environ["COURSE_DATASET"] = spec     # the worker finds the file through it

    if args.worker:
        if os.environ.get(PARENT_ENV, "").isdigit():
            die_with_parent(int(os.environ[PARENT_ENV]))
        from utils.tools import progress

        progress.set_label(model_label(args.model) + (f" seed {os.environ['COURSE_SEED']}"
                                                      if os.environ.get("COURSE_SEED") else ""))
        progress.start_heartbeat(float(os.environ.get("COURSE_PROGRESS_HEARTBEAT", 60)))
        os.environ["COURSE_FAST"] = "1" if args.fast else "0"
        if args.model in REGISTRY and args.model != "tfidf":     # neural models: TensorFlow without start-up noise
            from utils.tools.quiet_tf import import_tensorflow

            import_tensorflow()
        run_worker(args.model, args.dataset, args.fast, Path(args.worker), args.text)
        return 0

    models = list(REGISTRY) if args.model == "all" else [ALIASES.get(args.model, args.model)]
    try:
        for m in models:
            resolve(m)
    except BenchmarkError as err:
        parser.error(str(err))
    from utils.files import LockBusy, run_lock

    if from_env and args.fast:
        print("FAST mode, as COURSE_FAST=1 asks (--full overrides it)", flush=True)
    for path in clean_stale_temp():
        print(f"removed {path}, left by a benchmark that was killed", flush=True)
    try:
        with run_lock(args.dataset, wait=args.wait, log=lambda msg: print(msg, flush=True)):
            return _run(args, models, seeds, split_seeds)
    except LockBusy as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args, models, seeds, split_seeds=None) -> int:
    """The benchmark proper, with the dataset's run lock held."""
    try:
        ensure_prepared(args.dataset)
    except data_errors() as err:
        print(f"error: {err}\nThe data is the problem, not the benchmark: fix the file as the message says, then run "
              f"the same command again.", file=sys.stderr)
        return 2
    machine = machine_info()
    records, failures, summaries = [], [], []
    started = time.perf_counter()
    for m in models:
        done = []
        for split_seed, seed in [(sp, se) for sp in split_seeds or [None] for se in seeds or [None]]:
            which = ("" if split_seed is None else f", split seed {split_seed}") + ("" if seed is None else f", seed {seed}")
            text = "" if args.text == DEFAULT_TEXT else f", text {args.text}"
            print(f"\n=== {m} on {args.dataset} ({mode_name(args.fast)}{text}{which}) ===", flush=True)
            print(_previous_run(m, args.dataset, args.fast, args.out, seed), flush=True)
            try:
                record = run_model(m, args.dataset, args.fast, timeout=args.timeout, machine=machine,
                                   out_dir=args.out, seed=seed, split_seed=split_seed, text=args.text)
            except BenchmarkError as err:
                print(f"!! {err}", file=sys.stderr, flush=True)
                failures.append(m + which.replace(",", " (", 1) + ")" if which else m)
                continue
            done.append(record)
            print(format_record(record), flush=True)
            print(f"saved          {record['path']}", flush=True)
        records += done
        if (seeds or split_seeds) and done:
            try:
                summaries.append(seed_summary(done))
            except BenchmarkError as err:
                print(f"!! {err}", file=sys.stderr, flush=True)
    for summary in summaries:
        print("\n" + format_seed_summary(summary, args.dataset, mode_name(args.fast)), flush=True)
    if len(models) > 1 or len(seeds or []) * len(split_seeds or []) > 1 or len(seeds or split_seeds or []) > 1:
        print("\n" + format_total(len(records), args.dataset, mode_name(args.fast), machine,
                                  time.perf_counter() - started), flush=True)
    if args.markdown and records:
        print("\n" + MARKDOWN_HEADER)
        for r in records:
            print(markdown_row(r))
    if failures:
        print(f"\nfailed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
