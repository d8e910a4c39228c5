"""The benchmark command: one process per model, figures, peak memory, JSON records."""
from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from utils import config
from utils.tools import benchmark

GENRES = ["Horror", "Comedy", "Western"]
SIGNAL = {"Horror": ["ghost", "haunted", "blood"], "Comedy": ["joke", "funny", "prank"],
          "Western": ["sheriff", "cowboy", "saloon"]}
NOISE = ["city", "family", "friend", "night", "journey", "secret", "house", "town"]

FAKE_MODEL = textwrap.dedent('''
    import os
    import numpy as np
    from utils.evaluation.metrics import evaluate

    def benchmark(corpus, fast):
        y = corpus.y("test")
        prob = np.tile(corpus.y("train").mean(axis=0), (len(y), 1))
        return {"test": evaluate(y, prob, 0.3), "train_seconds": 0.01, "notes": "fake",
                "fast_arg": fast, "course_fast": os.environ.get("COURSE_FAST"),
                "extra_env": os.environ.get("BENCH_TEST_ENV"), "course_seed": os.environ.get("COURSE_SEED")}

    def broken(corpus, fast):
        raise RuntimeError("this model is broken on purpose")

    def no_metrics(corpus, fast):
        return {"train_seconds": 1.0}

    def slow(corpus, fast):
        import time
        with open(os.environ["BENCH_PID_FILE"], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(120)

    def _sleepy(folder):
        import time
        open(os.path.join(folder, str(os.getpid())), "w").close()
        time.sleep(120)

    def chatty(corpus, fast):
        """A model that takes a while and says where it is (what the ensemble's members do)."""
        import time
        from utils.tools.progress import stage
        for k in (1, 2):
            stage("step", k, 2)
            time.sleep(3)
        return benchmark(corpus, fast)

    def pool(corpus, fast):
        """What a full-mode model does: a joblib (loky) pool of worker processes, busy for a while."""
        from joblib import Parallel, delayed
        Parallel(n_jobs=2)(delayed(_sleepy)(os.environ["BENCH_POOL_DIR"]) for _ in range(2))
''')


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    """A tiny prepared 'netflix' corpus written with the pipeline's own save functions."""
    from utils.data import pipeline
    from utils.data.splits import binarize, make_split

    root = tmp_path_factory.mktemp("processed")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(200):
        labels = [g for g in GENRES if rng.random() < 0.4] or [GENRES[i % 3]]
        words = list(rng.choice(NOISE, 5)) + [w for g in labels for w in rng.choice(SIGNAL[g], 2)]
        rows.append({"id": f"s{i}", "title": f"Title {i}", "text": " ".join(words) + ".", "genres": labels})
    df = pd.DataFrame(rows)
    old = config.PROCESSED_DIR
    config.PROCESSED_DIR = root
    try:
        split = make_split(df["id"], binarize(df["genres"], GENRES), seed=0)
        # the course's rule keeps all three genres here (each has far more than 10 of the 200 titles)
        pipeline.save_labelled(df, GENRES, split, "netflix", pipeline.preparation_settings(df, seed=0))
        # the synthetic plots have no stopwords: light_text is their clean text (no NLTK needed)
        from utils.data.text import light_text

        light = df["text"].map(light_text)
        pipeline.save_clean(pd.DataFrame({"id": df["id"], "clean_text": light, "light_text": light}), "netflix")
        assert pipeline.is_prepared("netflix")
    finally:
        config.PROCESSED_DIR = old
    return root


@pytest.fixture(scope="module")
def fake_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fakemodel")
    (folder / "bench_fake_model.py").write_text(FAKE_MODEL)
    return folder


def cli(args, processed, out, fake_module=None, extra_env=None, timeout=300):
    env = {**os.environ, "COURSE_FAST": "0", **(extra_env or {})}    # the mode comes from the arguments
    paths = [str(config.ROOT)] + ([str(fake_module)] if fake_module else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "utils.benchmark", "--dataset", "netflix",
           "--processed-dir", str(processed), "--out", str(out), *args]
    return subprocess.run(cmd, cwd=config.ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_worker_progress_reaches_the_terminal_while_it_runs(processed, fake_module, tmp_path):
    """#28: the ensemble printed nothing for 29 minutes. The worker's progress lines must reach the
    benchmark's own output as they happen (unbuffered, one line per step when not a terminal)."""
    from support import run_timed_lines

    env = {**os.environ, "COURSE_PROGRESS": "", "COURSE_PROGRESS_HEARTBEAT": "2"}
    env["PYTHONPATH"] = os.pathsep.join([str(config.ROOT), str(fake_module), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "utils.benchmark", "--dataset", "netflix", "--processed-dir", str(processed),
           "--out", str(tmp_path), "--model", "bench_fake_model:chatty"]
    code, lines, ended = run_timed_lines(cmd, env)      # (seconds since start, line), read as the parent writes
    assert code == 0, "\n".join(line for _, line in lines)
    progress = [(t, line) for t, line in lines if line.startswith("[progress]")]
    text = "\n".join(line for _, line in lines)
    step1 = [t for t, line in progress if "bench_fake_model-chatty" in line and "step 1/2" in line]
    step2 = [t for t, line in progress if "step 2/2" in line]
    assert step1 and step2, text
    # each step's line arrived while the worker still had seconds of work ahead, not all at the end
    assert step1[0] <= step2[0] - 2 and step2[0] <= ended - 2, text
    assert all("elapsed" in line and "\r" not in line for _, line in progress), text     # a log: plain lines
    assert len(progress) < 20, text                                                     # never a flood
    assert "micro" in text and text.index("step 2/2") < text.index("split sizes")


def test_registry_names_every_model():
    assert set(benchmark.REGISTRY) == {"tfidf", "bilstm", "bilstm_softf1", "minilm", "bert_tfhub",
                                       "tfidf_tuned", "head_tuned", "ensemble"}
    assert benchmark.MODEL_ENV["bert_tfhub"] == {"TF_USE_LEGACY_KERAS": "1"}
    assert benchmark.resolve("tfidf") == "utils.modelfiles.tfidf:benchmark"
    assert benchmark.resolve("pkg.mod:fn") == "pkg.mod:fn"
    with pytest.raises(benchmark.BenchmarkError, match="Unknown model"):
        benchmark.resolve("svm")


def test_machine_info_names_cpu_and_cores():
    info = benchmark.machine_info()
    assert info["cores"] >= 1 and info["cpu"] and isinstance(info["gpus"], list)
    assert f"{info['cores']} cores" in benchmark.machine_summary(info)


def test_fake_model_runs_in_its_own_process(processed, fake_module, tmp_path):
    run = cli(["--model", "bench_fake_model:benchmark", "--fast", "--markdown"], processed, tmp_path,
              fake_module)
    assert run.returncode == 0, run.stderr
    path = tmp_path / "netflix-bench_fake_model-benchmark-fast.json"
    record = json.loads(path.read_text())
    assert record["dataset"] == "netflix" and record["mode"] == "fast"
    assert sum(record["split_sizes"].values()) == 200
    assert set(record["metrics"]) == {"micro_f1", "macro_f1", "samples_f1"}
    assert record["figures"]["fast_arg"] is True and record["figures"]["course_fast"] == "1"
    assert record["peak_rss_mb"] > 10 and record["wall_seconds"] > 0
    assert record["machine"]["cores"] >= 1
    out = run.stdout
    for text in ("split sizes", "micro", "peak RSS", "wall", "| dataset | model |", "| netflix | bench_fake_model-benchmark | fast |"):
        assert text in out, text
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_course_fast_sets_the_mode_as_for_every_command(processed, fake_module, tmp_path):
    """COURSE_FAST=1 means FAST here too (as in the notebooks and run_course); --full overrides it."""
    run = cli(["--model", "bench_fake_model:benchmark"], processed, tmp_path, fake_module, {"COURSE_FAST": "1"})
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "netflix-bench_fake_model-benchmark-fast.json").read_text())
    assert record["mode"] == "fast" and record["figures"]["fast_arg"] is True
    assert "FAST mode, as COURSE_FAST=1 asks (--full overrides it)" in run.stdout
    run = cli(["--model", "bench_fake_model:benchmark", "--full"], processed, tmp_path, fake_module,
              {"COURSE_FAST": "1"})
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "netflix-bench_fake_model-benchmark-full.json").read_text())
    assert record["mode"] == "full" and record["figures"]["course_fast"] == "0"   # the worker too
    assert "COURSE_FAST" not in run.stdout
    run = cli(["--model", "tfidf"], processed, tmp_path, extra_env={"COURSE_FAST": "maybe"})
    assert run.returncode == 2 and "COURSE_FAST='maybe' is not a yes/no value" in run.stderr
    help_text = cli(["--help"], processed, tmp_path).stdout
    assert "COURSE_FAST=1" in help_text and "--full" in help_text


def test_model_environment_is_set_only_for_its_model(processed, fake_module, tmp_path, monkeypatch):
    spec = "bench_fake_model:benchmark"
    monkeypatch.setenv("PYTHONPATH", str(fake_module))
    monkeypatch.setitem(benchmark.MODEL_ENV, spec, {"BENCH_TEST_ENV": "set"})
    monkeypatch.setattr(config, "PROCESSED_DIR", processed)
    record = benchmark.run_model(spec, "netflix", fast=False, out_dir=tmp_path)
    assert record["figures"]["extra_env"] == "set" and record["figures"]["course_fast"] == "0"
    assert record["mode"] == "full" and (tmp_path / "netflix-bench_fake_model-benchmark-full.json").exists()
    assert "BENCH_TEST_ENV" not in os.environ


def test_failures_are_reported_not_hidden(processed, fake_module, tmp_path):
    run = cli(["--model", "bench_fake_model:broken"], processed, tmp_path, fake_module)
    assert run.returncode == 1
    assert "broken on purpose" in run.stderr and "failed" in run.stderr
    run = cli(["--model", "bench_fake_model:no_metrics"], processed, tmp_path, fake_module)
    assert run.returncode == 1 and "no 'test' metrics" in run.stderr
    run = cli(["--model", "svm"], processed, tmp_path)
    assert run.returncode == 2 and "Unknown model" in run.stderr
    assert not list(tmp_path.glob("*.json"))


def test_tfidf_benchmark_end_to_end(processed, tmp_path):
    run = cli(["--model", "tfidf"], processed, tmp_path)
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "netflix-tfidf-full.json").read_text())
    assert record["model"] == "tfidf" and record["spec"] == "utils.modelfiles.tfidf:benchmark"
    assert record["metrics"]["micro_f1"] > 0.6       # the synthetic plots are easy
    assert record["train_seconds"] is not None and record["peak_rss_mb"] < 2048
    assert record["split_sizes"] == record["corpus_sizes"]


def test_kept_predictions_give_a_paired_comparison(processed, tmp_path):
    """A TF-IDF run keeps its test decisions; --paired compares two runs on the same titles, refuses others."""
    for extra in ([], ["--text", "title+plot"], ["--split-seed", "7"]):
        run = cli(["--model", "tfidf", *extra], processed, tmp_path)
        assert run.returncode == 0, run.stderr
    plot, title = tmp_path / "netflix-tfidf-full.json", tmp_path / "netflix-tfidf-full-title+plot.json"
    record = json.loads(plot.read_text())
    with np.load(tmp_path / record["test_predictions"], allow_pickle=False) as kept:
        assert kept["pred"].shape == kept["true"].shape == (record["split_sizes"]["test"], 3)
        assert set(np.unique(kept["pred"])) <= {0, 1}
        from utils.evaluation.metrics import f1_scores

        assert f1_scores(kept["true"], kept["pred"])["micro_f1"] == pytest.approx(record["metrics"]["micro_f1"])
    assert "test_ids" not in record["figures"] and "test_pred" not in record["figures"]   # not in the JSON
    same = cli(["--paired", str(plot), str(plot)], processed, tmp_path)
    assert same.returncode == 0, same.stderr
    assert "micro_f1    +0.0000 [+0.0000, +0.0000]  tie" in same.stdout
    pair = cli(["--paired", str(title), str(plot)], processed, tmp_path)
    assert pair.returncode == 0 and pair.stdout.count("[") == 3, pair.stdout
    other = cli(["--paired", str(plot), str(tmp_path / "netflix-tfidf-full-split7.json")], processed, tmp_path)
    assert other.returncode == 2 and "different titles" in other.stderr
    legacy = tmp_path / "old.json"
    legacy.write_text(json.dumps({k: v for k, v in record.items() if k != "test_predictions"}))
    old = cli(["--paired", str(legacy), str(plot)], processed, tmp_path)
    assert old.returncode == 2 and "kept no test predictions" in old.stderr


def test_seeds_run_once_each_and_print_the_mean(processed, fake_module, tmp_path):
    run = cli(["--model", "bench_fake_model:benchmark", "--seeds", "3,5"], processed, tmp_path, fake_module)
    assert run.returncode == 0, run.stderr
    records = [json.loads((tmp_path / f"netflix-bench_fake_model-benchmark-full-seed{s}.json").read_text())
               for s in (3, 5)]
    assert [r["figures"]["course_seed"] for r in records] == ["3", "5"]
    assert [r["seed"] for r in records] == [3, 5]
    assert all(len(r["load_average"]) == 3 for r in records)
    mean = np.mean([r["metrics"]["micro_f1"] for r in records])
    # the prepared split's seed is named when the prepared folder records it ("on split seed 42")
    assert re.search(rf"mean over seeds \[3, 5\]( on split seed \d+)?: test micro {mean:.4f}", run.stdout), run.stdout
    total = [line for line in run.stdout.splitlines() if line.startswith("total")]
    assert len(total) == 1 and "2 run(s) on netflix (full) in" in total[0] and "cores" in total[0]


def test_seed_summary_is_the_mean_and_spread():
    split = {"split_seed": 42, "test_ids_sha256": "abc"}
    records = [{"model": "m", "seed": s, "train_seconds": t, "split": split,
                "metrics": {"micro_f1": mi, "macro_f1": ma, "samples_f1": 0.5}}
               for s, t, mi, ma in ((1, 10.0, 0.6, 0.4), (2, 30.0, 0.7, 0.5), (3, 20.0, 0.8, 0.6))]
    summary = benchmark.seed_summary(records)
    assert summary["micro_f1"]["mean"] == pytest.approx(0.7) and summary["micro_f1"]["std"] == pytest.approx(0.1)
    assert summary["macro_f1"]["min"] == 0.4 and summary["macro_f1"]["max"] == 0.6
    assert summary["train_seconds_max"] == 30.0 and summary["seeds"] == [1, 2, 3]


def test_split_seeds_split_anew_separately_from_the_training_seed(processed, fake_module, tmp_path):
    from utils.data.corpus import load_corpus
    from utils.data.splits import split_identity

    run = cli(["--model", "bench_fake_model:benchmark", "--split-seed", "7,8", "--seeds", "3"], processed, tmp_path,
              fake_module)
    assert run.returncode == 0, run.stderr
    records = {s: json.loads((tmp_path / f"netflix-bench_fake_model-benchmark-full-split{s}-seed3.json").read_text())
               for s in (7, 8)}
    old = config.PROCESSED_DIR
    config.PROCESSED_DIR = processed
    try:
        corpus = load_corpus("netflix")
    finally:
        config.PROCESSED_DIR = old
    for seed, record in records.items():
        assert record["figures"]["course_seed"] == "3"                   # the training seed is untouched
        assert record["split"] == split_identity(corpus.resplit(seed).ids("test"), seed)
        assert record["split"] != corpus.split_identity()
    assert records[7]["split"]["test_ids_sha256"] != records[8]["split"]["test_ids_sha256"]
    assert "mean over split seeds [7, 8]" in run.stdout and "split seed 7 (test ids" in run.stdout
    assert "split          split seed 7, test ids sha256" in run.stdout


def test_summaries_refuse_records_that_mix_splits():
    def record(split_seed, digest, seed=1):
        split = None if digest is None else {"split_seed": split_seed, "test_ids_sha256": digest}
        return {"model": "m", "dataset": "netflix", "mode": "full", "seed": seed, "split": split,
                "train_seconds": 1.0, "metrics": {"micro_f1": 0.6, "macro_f1": 0.4, "samples_f1": 0.5}}

    benchmark.seed_summary([record(101, "aa"), record(102, "bb")])       # two split seeds, two test sets: fine
    benchmark.seed_summary([record(101, "aa", 1), record(101, "aa", 2)])  # two training seeds on one split: fine
    with pytest.raises(benchmark.BenchmarkError, match="same split seed but were tested on different titles"):
        benchmark.seed_summary([record(42, "aa", 1), record(42, "bb", 2)])   # "seed 1" and "seed 2" of two splits
    with pytest.raises(benchmark.BenchmarkError, match="records no split"):
        benchmark.seed_summary([record(42, "aa"), record(None, None, 2)])
    with pytest.raises(benchmark.BenchmarkError, match="different models, datasets, modes or text settings"):
        benchmark.seed_summary([record(101, "aa"), {**record(102, "bb"), "mode": "fast"}])


def test_summarise_reads_saved_records_and_refuses_mixed_splits(tmp_path, capsys):
    def write(name, split_seed, digest, micro):
        record = {"model": "ensemble", "dataset": "netflix", "mode": "full", "seed": None, "training_seed": 42,
                  "split": {"split_seed": split_seed, "test_ids_sha256": digest}, "train_seconds": 1.0,
                  "metrics": {"micro_f1": micro, "macro_f1": 0.5, "samples_f1": 0.6},
                  "figures": {"test_interval": {"micro_f1": [micro - 0.01, micro + 0.01], "macro_f1": [0.48, 0.52]},
                              "members": {"tfidf": {"micro_f1": 0.6, "macro_f1": 0.38, "samples_f1": 0.59,
                                                    "interval": {"micro_f1": [0.58, 0.62]}, "train_seconds": 2}}}}
        (tmp_path / name).write_text(json.dumps(record))
        return tmp_path / name

    a, b = write("a.json", 101, "aa", 0.66), write("b.json", 102, "bb", 0.68)
    assert benchmark.main(["--summarise", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "ensemble on netflix (full), mean over split seeds [101, 102] (training seed 42): test micro 0.6700" in out
    assert "split seed 102 (test ids bb), seed 42: micro 0.6800, macro 0.5000, micro 95% CI [0.670, 0.690]" in out
    assert "ensemble/tfidf on netflix (full)" in out
    c = write("c.json", 101, "cc", 0.70)                  # claims split 101 but was tested on other titles
    assert benchmark.main(["--summarise", str(a), str(c)]) == 1
    assert "tested on different titles" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["1,x", "", "2,2", "1;2"])
def test_bad_seeds_are_refused_with_the_expected_form(text):
    with pytest.raises(ValueError, match="1,2,3"):
        benchmark.parse_seeds(text)


def test_tfidf_tuned_benchmark_reports_the_defaults_beside(processed, tmp_path):
    run = cli(["--model", "tfidf_tuned"], processed, tmp_path)
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "netflix-tfidf_tuned-full.json").read_text())
    from utils.lessons.search import TUNED_TFIDF

    assert record["metrics"]["micro_f1"] > 0.6
    assert record["figures"]["params"]["C"] == TUNED_TFIDF["C"]
    assert set(record["figures"]["defaults"]["test"]) >= {"micro_f1", "macro_f1"}
    assert "defaults" in run.stdout       # the variant line beside the headline


def test_record_names_of_two_functions_in_one_module_differ():
    assert benchmark.model_label("utils.modelfiles.bilstm:benchmark") != benchmark.model_label("utils.modelfiles.bilstm:benchmark_softf1")
    assert benchmark.model_label("bilstm") == "bilstm"


def test_worker_ends_when_the_benchmark_is_killed(processed, fake_module, tmp_path):
    """kill -9 of `python -m utils.benchmark` must not leave its worker training for hours."""
    import signal
    import time

    import psutil

    pid_file = tmp_path / "worker.pid"
    env = {**os.environ, "BENCH_PID_FILE": str(pid_file)}
    env["PYTHONPATH"] = os.pathsep.join([str(config.ROOT), str(fake_module), env.get("PYTHONPATH", "")])
    parent = subprocess.Popen([sys.executable, "-m", "utils.benchmark", "--dataset", "netflix", "--processed-dir",
                               str(processed), "--out", str(tmp_path), "--model", "bench_fake_model:slow"],
                              cwd=config.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not pid_file.exists() or not pid_file.read_text():
            assert time.time() < deadline and parent.poll() is None, "the worker never started"
            time.sleep(0.2)
        worker = psutil.Process(int(pid_file.read_text()))
        assert worker.is_running()
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        worker.wait(timeout=15)           # raises psutil.TimeoutExpired if the worker lives on
    finally:
        if parent.poll() is None:
            parent.kill()


def test_killing_a_full_mode_benchmark_leaves_no_process_and_no_temporary_folder(processed, fake_module, tmp_path):
    """kill -9 of the benchmark while its worker's joblib pool runs: the pool and its trackers die too,
    within seconds; the next benchmark removes the killed one's bench-<pid>-* temporary folder."""
    import signal
    import tempfile
    import time
    from pathlib import Path

    import psutil

    pool_dir = tmp_path / "pool"
    pool_dir.mkdir()
    env = {**os.environ, "BENCH_POOL_DIR": str(pool_dir)}
    env["PYTHONPATH"] = os.pathsep.join([str(config.ROOT), str(fake_module), env.get("PYTHONPATH", "")])
    parent = subprocess.Popen([sys.executable, "-m", "utils.benchmark", "--dataset", "netflix", "--processed-dir",
                               str(processed), "--out", str(tmp_path), "--model", "bench_fake_model:pool"],
                              cwd=config.ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while len(list(pool_dir.iterdir())) < 2:
            assert time.time() < deadline and parent.poll() is None, "the pool never started"
            time.sleep(0.2)
        family = psutil.Process(parent.pid).children(recursive=True)
        pool_pids = {int(p.name) for p in pool_dir.iterdir()}
        assert pool_pids <= {p.pid for p in family} and len(family) >= 4   # guard, worker, 2 pool workers (+ tracker)
        temp = list(Path(tempfile.gettempdir()).glob(f"bench-{parent.pid}-*"))
        assert len(temp) == 1
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        _, alive = psutil.wait_procs(family, timeout=10)
        alive = [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not alive, [" ".join(p.cmdline()[:6]) for p in alive]
    finally:
        if parent.poll() is None:
            parent.kill()
    assert temp[0].exists()                    # a kill -9 leaves it; the next start removes it
    run = cli(["--model", "bench_fake_model:benchmark", "--fast"], processed, tmp_path / "next", fake_module)
    assert run.returncode == 0, run.stderr
    assert not temp[0].exists() and f"removed {temp[0]}" in run.stdout


def test_only_stale_temporary_folders_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, live, other = (tmp_path / f"bench-{dead.pid}-abc", tmp_path / f"bench-{os.getpid()}-def",
                          tmp_path / "bench-xyz")
    for folder in (stale, live, other):
        folder.mkdir()
        (folder / "figures.json").write_text("{}")
    assert benchmark.clean_stale_temp(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and other.exists()
