"""utils.data.pipeline.prepare + utils.data.corpus.load_corpus on a small Netflix-format file."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from utils import config
from utils.data import pipeline
from utils.data.corpus import Corpus, CorpusNotPrepared, load_corpus
from utils.data.pipeline import is_prepared, prepare
from utils.data.text import clean_text, light_text

FILES = ["clean.parquet", "genres.json", "manifest.json", "movies.parquet", "split.csv"]
TOP5 = ["Drama", "Comedy", "World Cinema", "Documentary", "Romance"]  # by count, ties by name


@pytest.fixture
def netflix_file(course_dirs, write_netflix_csv):
    row = write_netflix_csv.row
    rows = write_netflix_csv.default_rows(60) + [
        row(61, "Classic Movies", "An old film nobody maps."),       # no canonical genre
        row(62, "Sports Movies", "A boxer trains, and trains."),     # canonical, but not selected
        row(63, "Dramas", "  "),                                     # empty description
        row(64, "Dramas, Sports Movies", "A coach—and a town—hope.\nAgain."),
    ]
    return write_netflix_csv(course_dirs.extra / "netflix" / "netflix_titles.csv", rows)


@pytest.fixture
def prepared(course_dirs, netflix_file, nltk_data, capsys):
    prepare("netflix", top_n=5, min_count=6, seed=11)
    return SimpleNamespace(out=capsys.readouterr().out, folder=course_dirs.processed / "netflix")


def test_prepare_writes_the_four_files(prepared):
    assert sorted(p.name for p in prepared.folder.iterdir()) == FILES  # no temporary files
    assert is_prepared("netflix") and not is_prepared("cmu")
    info = json.loads((prepared.folder / "genres.json").read_text())
    assert info["dataset"] == "netflix" and info["genres"] == TOP5
    assert info["counts"] == {"Drama": 25, "Comedy": 18, "World Cinema": 18, "Documentary": 12, "Romance": 12}
    assert info["settings"] == {"top_n": 5, "min_count": 6, "seed": 11, "labelled_titles": 62}
    movies = pd.read_parquet(prepared.folder / "movies.parquet")
    assert len(movies) == 61  # 60 + the drama/sports one; the other three are left out
    assert {"s61", "s62", "s63"}.isdisjoint(movies["id"])
    row = movies.set_index("id").loc["s64"]
    assert list(row["genres"]) == ["Drama"] and list(row["raw_genres"]) == ["Dramas", "Sports Movies"]
    assert "netflix: 63 titles" in prepared.out and "1 without text" in prepared.out
    assert "1 of 63 titles have no genre in the taxonomy" in prepared.out
    assert "kept genres: 5; 1 titles had none of them and are left out; 61 remain" in prepared.out


def test_load_corpus_round_trip(prepared):
    corpus = load_corpus("netflix")
    assert isinstance(corpus, Corpus) and corpus.dataset == "netflix" and corpus.genres == TOP5
    df = corpus.df
    assert {"id", "title", "text", "genres", "split", "clean_text", "light_text", "raw_genres"} <= set(df.columns)
    sizes = corpus.sizes()
    assert sum(sizes.values()) == 61 and all(n > 0 for n in sizes.values())
    ids = {s: set(corpus.ids(s)) for s in ("train", "val", "test")}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert set(corpus.ids()) == set(df["id"]) and len(corpus.ids()) == 61
    # texts and labels line up with ids, per split
    raw = corpus.texts("val")
    assert raw == df.loc[df["split"] == "val", "text"].tolist()
    assert corpus.texts("val", kind="clean") == [clean_text(t) for t in raw]
    assert corpus.texts("val", kind="light") == [light_text(t) for t in raw]
    y = corpus.y("train")
    assert y.shape == (sizes["train"], 5) and y.dtype == np.int8
    assert (y.sum(axis=1) >= 1).all()
    s64 = df.index[df["id"] == "s64"][0]
    assert df.loc[s64, "text"] == "A coach—and a town—hope.\nAgain."
    assert df.loc[s64, "light_text"] == "a coach and a town hope again"
    assert isinstance(df.loc[s64, "genres"], list)


def test_corpus_arguments_are_checked(prepared):
    corpus = load_corpus("netflix")
    with pytest.raises(ValueError, match="split must be one of"):
        corpus.texts("validation")
    with pytest.raises(ValueError, match="kind must be one of"):
        corpus.texts("train", kind="stemmed")


def test_subset(prepared):
    corpus = load_corpus("netflix")
    small = corpus.subset(max_train=10, max_eval=3, seed=0)
    assert small.sizes() == {"train": 10, "val": 3, "test": 3}
    assert small.genres == corpus.genres
    assert set(small.ids()) <= set(corpus.ids())
    for split in ("train", "val", "test"):
        assert set(small.ids(split)) <= set(corpus.ids(split))
    again = corpus.subset(max_train=10, max_eval=3, seed=0)
    assert list(again.ids()) == list(small.ids())
    assert list(corpus.subset(max_train=10, max_eval=3, seed=1).ids()) != list(small.ids())
    big = corpus.subset(max_train=10_000, max_eval=10_000)
    assert big.sizes() == corpus.sizes()
    assert corpus.for_mode(fast=False) is corpus
    assert corpus.for_mode(fast=True, max_train=10, max_eval=3, seed=0).sizes() == small.sizes()


def test_prepare_is_deterministic_and_skips_when_ready(prepared, capsys):
    split_before = (prepared.folder / "split.csv").read_bytes()
    manifest_before = (prepared.folder / "manifest.json").read_bytes()
    prepare("netflix", top_n=5, min_count=6, seed=11)
    assert "is ready" in capsys.readouterr().out
    assert (prepared.folder / "manifest.json").read_bytes() == manifest_before   # not rebuilt
    (prepared.folder / "genres.json").write_text(json.dumps({"genres": ["Marker"]}))
    assert not is_prepared("netflix")      # a file its manifest does not vouch for
    prepare("netflix", top_n=5, min_count=6, seed=11, verbose=False)
    assert "Marker" not in (prepared.folder / "genres.json").read_text()   # rebuilt
    prepare("netflix", top_n=5, min_count=6, seed=11, force=True, verbose=False)
    assert json.loads((prepared.folder / "genres.json").read_text())["genres"] == TOP5
    assert (prepared.folder / "split.csv").read_bytes() == split_before
    prepare("netflix", top_n=5, min_count=6, seed=12, force=True, verbose=False)
    assert (prepared.folder / "split.csv").read_bytes() != split_before


def test_seed_comes_from_the_environment(course_dirs, netflix_file, nltk_data, monkeypatch):
    monkeypatch.setenv("COURSE_SEED", "5")
    prepare("netflix", top_n=3, min_count=1, verbose=False)
    assert pipeline.read_genres_file("netflix")["settings"] == {"top_n": 3, "min_count": 1, "seed": 5,
                                                                "labelled_titles": 62}


def test_not_prepared_says_what_to_run(course_dirs):
    with pytest.raises(CorpusNotPrepared) as err:
        load_corpus("netflix")
    message = str(err.value)
    assert "notebook 01" in message and "prepare('netflix'" in message and "COURSE_DATASET=netflix" in message
    assert "movies.parquet" in message
    assert issubclass(CorpusNotPrepared, FileNotFoundError)


def test_missing_clean_file(prepared):
    (prepared.folder / "clean.parquet").unlink()
    assert not is_prepared("netflix")
    corpus = load_corpus("netflix")  # fine without cleaning ...
    assert "clean_text" not in corpus.df
    with pytest.raises(CorpusNotPrepared, match="notebook 02"):
        corpus.texts("train", kind="clean")  # ... until clean text is asked for
    assert len(corpus.texts("train")) == corpus.sizes()["train"]
    with pytest.raises(CorpusNotPrepared, match="clean.parquet is missing"):
        load_corpus("netflix", require_clean=True)


def test_split_file_that_misses_movies(prepared):
    path = prepared.folder / "split.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-3]) + "\n")
    with pytest.raises(CorpusNotPrepared, match="its split.csv is damaged .* bytes, manifest.json says") as err:
        load_corpus("netflix")
    assert "Prepare it again" in str(err.value) and "prepare('netflix', force=True)" in str(err.value)


def test_default_dataset_from_environment(prepared, monkeypatch):
    monkeypatch.setenv("COURSE_DATASET", "netflix")
    assert load_corpus().dataset == "netflix"
    monkeypatch.setenv("COURSE_DATASET", "cmu")
    with pytest.raises(CorpusNotPrepared, match="prepare\\('cmu'"):
        load_corpus()


def test_prepare_unknown_dataset(course_dirs):
    from utils.data.datasets import DatasetError

    with pytest.raises(DatasetError, match="Unknown dataset 'imdb'"):
        prepare("imdb")
    assert list(course_dirs.processed.iterdir()) == []


def test_save_labelled_refuses_movies_without_split(course_dirs):
    df = pd.DataFrame({"id": ["a", "b"], "title": ["", ""], "text": ["x", "y"], "genres": [["Drama"], ["Drama"]]})
    with pytest.raises(ValueError, match="1 movies have no split"):
        pipeline.save_labelled(df, ["Drama"], pd.Series({"a": "train"}), "netflix")
    assert not (course_dirs.processed / "netflix").exists()


def test_ensure_prepared_builds_only_what_is_missing(course_dirs, netflix_file, nltk_data, capsys):
    from utils import config
    from utils.data.pipeline import ensure_prepared, is_prepared

    assert not is_prepared("netflix", need_clean=False)
    ensure_prepared("netflix", verbose=True, min_count=1)
    assert "does not exist yet" in capsys.readouterr().out
    assert is_prepared("netflix")
    stamp = (config.processed_dir("netflix") / "movies.parquet").stat().st_mtime_ns
    ensure_prepared("netflix", min_count=1)         # complete, same settings: nothing is rebuilt
    assert (config.processed_dir("netflix") / "movies.parquet").stat().st_mtime_ns == stamp
    ensure_prepared("netflix")                      # the course's rule (min_count 10 here): rebuilt, and said
    out = capsys.readouterr().out
    assert "was prepared with top_n=20, min_count=1" in out and "building it now" in out
    assert pipeline.read_genres_file("netflix")["settings"]["min_count"] == 10
    stamp = (config.processed_dir("netflix") / "movies.parquet").stat().st_mtime_ns
    (config.processed_dir("netflix") / "clean.parquet").unlink()
    assert is_prepared("netflix", need_clean=False) and not is_prepared("netflix")
    ensure_prepared("netflix", need_clean=False)    # notebook 02 will write clean.parquet itself
    assert not (config.processed_dir("netflix") / "clean.parquet").exists()
    assert (config.processed_dir("netflix") / "movies.parquet").stat().st_mtime_ns == stamp


def test_by_split_matches_texts_and_labels_of_each_split(prepared):
    from utils.data.corpus import load_corpus

    corpus = load_corpus("netflix")
    texts, ys = corpus.by_split(kind="clean")
    assert set(texts) == set(ys) == {"train", "val", "test"}
    for split in ("train", "val", "test"):
        assert texts[split] == corpus.texts(split, kind="clean")
        assert (ys[split] == corpus.y(split)).all() and len(ys[split]) == len(texts[split])


# --------------------------------------------------------------------------- all or nothing on disk
KILL_SCRIPT = r"""
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from utils import config
config.PROCESSED_DIR = Path(sys.argv[2])
from utils import config
from utils.data import pipeline
kill_at, when = int(sys.argv[3]), sys.argv[4]
real_replace, calls = os.replace, [0]

def replace(src, dst):                 # every atomic write and the final swap end in os.replace
    calls[0] += 1
    if calls[0] == kill_at and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
    if calls[0] == kill_at and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)

os.replace = replace
pipeline.prepare("netflix", top_n=5, min_count=6, seed=int(sys.argv[5]), force=True, verbose=False)
print("replace calls:", calls[0])
"""


def _fingerprint(folder):
    manifest = pipeline.read_manifest(folder)
    return {name: entry["sha256"] for name, entry in manifest["files"].items()}


def _forced_prepare(course_dirs, kill_at, when, seed):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(config.ROOT), str(course_dirs.processed),
                           str(kill_at), when, str(seed)], capture_output=True, text=True, timeout=120)


def test_forced_prepare_killed_at_any_point_never_leaves_a_mix(course_dirs, netflix_file, nltk_data):
    """kill -9 during `prepare(force=True)` over a prepared set: old set, or nothing valid, never a mix."""
    folder = course_dirs.processed / "netflix"
    prepare("netflix", top_n=5, min_count=6, seed=1, verbose=False)
    (folder / "embeddings").mkdir()
    (folder / "embeddings" / "cache.npz").write_bytes(b"a cache the swap must keep")
    old = _fingerprint(folder)
    done = _forced_prepare(course_dirs, 0, "never", seed=2)       # a full run: how many renames, and the new set
    assert done.returncode == 0, done.stderr
    calls = int(done.stdout.split("replace calls:")[1])
    new = _fingerprint(folder)
    assert new != old and (folder / "embeddings" / "cache.npz").exists()
    prepare("netflix", top_n=5, min_count=6, seed=1, force=True, verbose=False)
    assert _fingerprint(folder) == old
    outcomes = set()
    for kill_at in range(1, calls + 2):
        for when in ("before", "after"):
            run = _forced_prepare(course_dirs, kill_at, when, seed=2)
            if run.returncode == 0:        # fewer renames this time (no cache to move): ran to the end
                assert _fingerprint(folder) == new
                outcomes.add("new")
                prepare("netflix", top_n=5, min_count=6, seed=1, force=True, verbose=False)
                continue
            assert run.returncode == -9, (kill_at, when, run.stderr[-2000:])
            if is_prepared("netflix"):
                state = _fingerprint(folder)
                assert state in (old, new), (kill_at, when)
                load_corpus("netflix", require_clean=True)          # and it loads
                outcomes.add("old" if state == old else "new")
            else:
                outcomes.add("none")
                with pytest.raises(CorpusNotPrepared):
                    load_corpus("netflix")
            prepare("netflix", top_n=5, min_count=6, seed=1, verbose=False)   # the next run recovers ...
            assert is_prepared("netflix")
            assert (folder / "embeddings" / "cache.npz").exists(), (kill_at, when)   # ... with the caches
            if _fingerprint(folder) != old:                                   # ... then back to the old set
                prepare("netflix", top_n=5, min_count=6, seed=1, force=True, verbose=False)
    assert "old" in outcomes                                 # most kill points keep the old set
    assert not list(folder.parent.glob(".netflix.*")), "no temporary folder survives the next run"


# --------------------------------------------------------------------------- one preparation rule
RULE_GENRES = {"Drama": 160, "Comedy": 90, "Horror": 55, "Western": 30, "Romance": 14, "War": 6}
RULE_WORDS = {"Drama": "tears family loss", "Comedy": "joke prank laugh", "Horror": "ghost blood scream",
              "Western": "sheriff saloon cowboy", "Romance": "love kiss wedding", "War": "soldier battle trench"}


def _rule_csv(path):
    """355 films whose genres have 160 ... 6 titles: the rule keeps five genres (min 10), 50 would keep three."""
    import csv

    pool = [g for g, n in RULE_GENRES.items() for _ in range(n)]
    rng = np.random.default_rng(3)
    rng.shuffle(pool)
    rows = [[f"Film {i}", f"{RULE_WORDS[g]} in a small town, film {i} of the tale.", g] for i, g in enumerate(pool)]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["title", "plot", "genre"])
        w.writerows(rows)
    return path


def _notebook_01(dataset, seed):
    """Run notebook 01's own cells from loading to saving (the notebook-style preparation);
    ``dataset`` is what its parameters cell gives (the folder name, csv-<hash> for a CSV)."""
    import nbformat

    nb = nbformat.read(config.NOTEBOOKS_DIR / "01_metadata_exploration.ipynb", as_version=4)
    cells = {c.get("id"): c.source for c in nb.cells if c.cell_type == "code"}
    ns = {"DATASET": dataset, "SEED": seed, "FAST": True, "display": lambda *a, **k: None}
    for cell in ("imports", "load", "tail", "label", "select", "restrict", "split", "save"):
        exec(compile(cells[cell], f"notebook 01, cell {cell}", "exec"), ns)
    import matplotlib.pyplot as plt

    plt.close("all")
    return ns


def test_one_rule_whichever_command_prepares_first(course_dirs, nltk_data, tmp_path, monkeypatch):
    """The benchmark (prepare) and notebook 01 choose the same genres from the same CSV, into the same folder."""
    spec = f"csv:{_rule_csv(tmp_path / 'films.csv')}"
    monkeypatch.setenv("COURSE_DATASET", spec)
    name = config.resolve_dataset(spec)
    folder = course_dirs.processed / name
    prepare(spec, verbose=False)                               # what the benchmark runs on a fresh workspace
    by_prepare = pipeline.read_genres_file(name)
    assert by_prepare["genres"] == ["Drama", "Comedy", "Horror", "Western", "Romance"]   # War (6) < 10
    assert by_prepare["settings"] == {"top_n": 20, "min_count": 10, "seed": 42, "labelled_titles": 355}
    files = {f: (folder / f).read_bytes() for f in ("genres.json", "split.csv")}
    movies = pd.read_parquet(folder / "movies.parquet")
    for f in pipeline.LABELLED_FILES + pipeline.CLEAN_FILES + (pipeline.MANIFEST,):
        (folder / f).unlink()
    ns = _notebook_01(name, seed=42)                           # notebook 01 on the same fresh workspace
    assert ns["GENRES"] == by_prepare["genres"] and ns["MIN_COUNT"] == 10
    assert {f: (folder / f).read_bytes() for f in files} == files        # same genres, counts, settings, split
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "movies.parquet"), movies)
    assert pipeline.needs_preparing(name, need_clean=False) is None      # the benchmark takes the notebook's folder


def test_a_folder_prepared_with_other_settings_is_detected_and_prepared_again(prepared, capsys):
    assert pipeline.settings_problem("netflix", top_n=5, min_count=6) is None
    problem = pipeline.settings_problem("netflix")
    assert "was prepared with top_n=5, min_count=6" in problem and "top_n=20" in problem and "= 10" in problem
    assert pipeline.needs_preparing("netflix") == problem
    prepare("netflix", top_n=5, min_count=6, seed=11)               # same settings: kept
    assert "is ready" in capsys.readouterr().out
    prepare("netflix", verbose=True)                                # the course's rule: prepared again, and said
    assert problem in capsys.readouterr().out
    info = pipeline.read_genres_file("netflix")
    assert info["settings"]["min_count"] == 10 and info["settings"]["top_n"] == 20
    assert pipeline.settings_problem("netflix") is None
    # a folder written without a record of the rule (an older notebook 01, a hand-made folder) is detected too
    settings = {"top_n": 20, "min_count": 50, "seed": 42}
    corpus = load_corpus("netflix")
    pipeline.save_labelled(corpus.df.drop(columns=["split", "clean_text", "light_text"]), corpus.genres,
                           corpus.df.set_index("id")["split"], "netflix", settings)
    assert "without a record of the rule" in pipeline.settings_problem("netflix")


# --------------------------------------------------------------------------- concurrent prepares
SLOW_PREPARE = r"""
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from utils import config
config.PROCESSED_DIR = Path(sys.argv[2])
from utils.data import pipeline
real, release, end = pipeline.clean_table, Path(sys.argv[3]), time.time() + 120
def slow(*a, **k):                      # holds on until the test says the other process is waiting
    while sys.argv[3] and not release.exists() and time.time() < end:
        time.sleep(0.05)
    return real(*a, **k)
pipeline.clean_table = slow
pipeline.prepare("netflix", top_n=5, min_count=6, seed=1, force=True)
print("done", flush=True)
"""


def test_two_concurrent_forced_prepares_are_serialised(course_dirs, netflix_file, nltk_data):
    """Two `prepare(force=True)` on one folder at once: the second waits for the first; both succeed."""
    import subprocess
    import sys
    import time

    env = {**__import__("os").environ, "COURSE_DATA_DIR": str(course_dirs.extra)}
    args = [sys.executable, "-c", SLOW_PREPARE, str(config.ROOT), str(course_dirs.processed)]
    release = course_dirs.root / "release"
    first = subprocess.Popen(args + [str(release)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = course_dirs.processed / ".netflix.prepare.lock"
    deadline = time.time() + 60
    while not (lock.exists() and str(first.pid) in lock.read_text()):
        assert time.time() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.05)
    second = subprocess.Popen(args + [""], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = second.stdout.readline()
        assert f"waiting for pid {first.pid}" in line, line + second.stderr.read()[-2000:]   # it waits, says for whom
        release.touch()                                            # the first goes on, while the second waits
        out1, err1 = first.communicate(timeout=180)
        out2, err2 = second.communicate(timeout=180)
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
    assert first.returncode == 0 and "done" in out1, err1[-2000:]
    assert second.returncode == 0 and "done" in out2, err2[-2000:]
    assert is_prepared("netflix") and load_corpus("netflix", require_clean=True).sizes()
    assert not list(course_dirs.processed.glob(".netflix.*"))      # no temporary folder, no lock file left


# --------------------------------------------------------------------------- a swap cut short
@pytest.mark.parametrize("cut", ["between the two renames", "before the caches move"])
def test_a_swap_cut_short_keeps_the_caches_and_the_next_start_recovers(prepared, monkeypatch, cut):
    """A kill at the wrong moment of the swap must not lose word2vec/ (the next start puts things right)."""
    import os

    folder = prepared.folder
    (folder / "word2vec").mkdir()
    (folder / "word2vec" / "vectors.npz").write_bytes(b"hours of training")
    old = _fingerprint(folder)
    real = os.replace

    def replace(src, dst):            # the kill: stop right before the chosen rename of the swap
        src, dst = Path(src), Path(dst)
        if cut == "between the two renames" and src.name.startswith(".netflix.tmp-") and dst == folder:
            raise KeyboardInterrupt
        if cut == "before the caches move" and src.name == "word2vec":
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        prepare("netflix", top_n=5, min_count=6, seed=2, force=True, verbose=False)
    monkeypatch.setattr(os, "replace", real)
    assert list(folder.parent.glob(".netflix.old-*"))             # the intermediate state is on disk
    if cut == "between the two renames":
        assert not folder.exists()                                 # the old folder waits in .netflix.old-*/
    assert pipeline.needs_preparing("netflix", top_n=5, min_count=6) is not None
    pipeline.ensure_prepared("netflix", top_n=5, min_count=6, verbose=False)   # the next start
    assert (folder / "word2vec" / "vectors.npz").read_bytes() == b"hours of training"
    assert is_prepared("netflix") and not list(folder.parent.glob(".netflix.*"))
    if cut == "between the two renames":
        assert _fingerprint(folder) == old                         # the old set, usable as it was
    else:
        assert _fingerprint(folder) != old                         # the new set was in place already


def test_a_truncated_clean_file_is_reported_damaged_not_missing(prepared, capsys):
    path = prepared.folder / "clean.parquet"
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 2])
    with pytest.raises(CorpusNotPrepared) as err:
        load_corpus("netflix", require_clean=True)
    message = str(err.value)
    assert "clean.parquet is damaged" in message and f"{size:,}" in message and "missing" not in message
    assert "Run notebook 02 (text cleaning) again" in message and "prepare('netflix', force=True)" in message
    assert "damaged" in pipeline.needs_preparing("netflix", top_n=5, min_count=6)
    pipeline.ensure_prepared("netflix", top_n=5, min_count=6, verbose=False)
    assert load_corpus("netflix", require_clean=True).texts("train", kind="clean")
