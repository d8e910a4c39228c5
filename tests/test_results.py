"""utils.evaluation.results: the shared results format, written atomically and read back."""
from __future__ import annotations

import json

import numpy as np
import pytest

from utils import config
from utils.evaluation import results
from utils.evaluation.metrics import evaluate
from utils.evaluation.results import (
    MODEL_ORDER,
    atomic_write_bytes,
    atomic_write_json,
    available_models,
    choose_thresholds,
    load_results,
    save_results,
)

GENRES = ["Drama", "Comedy", "Horror"]


@pytest.fixture
def run():
    rng = np.random.default_rng(0)
    y_val = (rng.random((80, 3)) < [0.5, 0.3, 0.1]).astype(int)
    y_test = (rng.random((60, 3)) < [0.5, 0.3, 0.1]).astype(int)
    val_prob = np.clip(0.6 * y_val + 0.4 * rng.random(y_val.shape), 0, 1)
    test_prob = np.clip(0.6 * y_test + 0.4 * rng.random(y_test.shape), 0, 1)
    return dict(genres=GENRES, val_ids=[f"v{i}" for i in range(80)], y_val=y_val, val_prob=val_prob,
                test_ids=[f"t{i}" for i in range(60)], y_test=y_test, test_prob=test_prob)


def test_save_writes_three_files_atomically(course_dirs, run):
    metrics = save_results("tfidf_logreg", dataset="netflix", notes="unit test", extra={"seconds": 1.5}, **run)
    folder = course_dirs.results / "netflix" / "tfidf_logreg"
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.json", "probs.npz", "thresholds.json"]
    assert not list(course_dirs.results.rglob("*.tmp"))
    on_disk = json.loads((folder / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert metrics["model"] == "tfidf_logreg" and metrics["dataset"] == "netflix" and metrics["notes"] == "unit test"
    assert metrics["n_val"] == 80 and metrics["n_test"] == 60 and metrics["seconds"] == 1.5
    assert set(metrics["test"]) == {"0.5", "global", "per_genre"}
    thresholds = json.loads((folder / "thresholds.json").read_text())
    assert thresholds["default"] == "global" and list(thresholds["per_genre"]) == GENRES
    # the test metrics really are those of the saved probabilities at the saved thresholds
    expected = evaluate(run["y_test"], run["test_prob"].astype(np.float32), thresholds["global"])
    assert metrics["test"]["global"] == pytest.approx(expected)
    assert metrics["test"]["0.5"] == pytest.approx(evaluate(run["y_test"], run["test_prob"].astype(np.float32), 0.5))


def test_load_results_round_trip(course_dirs, run):
    save_results("bilstm_w2v", dataset="netflix", **run)
    back = load_results("bilstm_w2v", dataset="netflix")
    assert back["genres"] == GENRES
    assert back["val_ids"].tolist() == run["val_ids"] and back["test_ids"].tolist() == run["test_ids"]
    np.testing.assert_array_equal(back["val_true"], run["y_val"])
    np.testing.assert_array_equal(back["test_true"], run["y_test"])
    np.testing.assert_allclose(back["val_prob"], run["val_prob"], rtol=1e-6)
    np.testing.assert_allclose(back["test_prob"], run["test_prob"], rtol=1e-6)
    # thresholds were tuned on validation (not test)
    assert back["thresholds"] == choose_thresholds(run["y_val"], run["val_prob"].astype(np.float32), GENRES)
    assert back["metrics"]["model"] == "bilstm_w2v"


def test_given_thresholds_are_used(course_dirs, run):
    given = {"global": 0.42, "per_genre": {"Drama": 0.3, "Comedy": 0.4, "Horror": 0.5}, "default": "global"}
    metrics = save_results("minilm_frozen", dataset="netflix", thresholds=given, **run)
    assert load_results("minilm_frozen", "netflix")["thresholds"] == given
    per = evaluate(run["y_test"], run["test_prob"].astype(np.float32), [0.3, 0.4, 0.5])
    assert metrics["test"]["per_genre"] == pytest.approx(per)


def test_dataset_defaults_to_the_environment(course_dirs, run, monkeypatch):
    monkeypatch.setenv("COURSE_DATASET", "netflix")
    save_results("trivial_baseline", **run)
    assert (course_dirs.results / "netflix" / "trivial_baseline" / "metrics.json").exists()
    assert available_models() == ["trivial_baseline"]


def test_mismatched_column_count(course_dirs, run):
    run["test_prob"] = run["test_prob"][:, :2]
    with pytest.raises(ValueError, match="2 columns but there are 3 genres"):
        save_results("tfidf_logreg", dataset="netflix", **run)
    assert not (course_dirs.results / "netflix").exists()


def test_load_missing_results(course_dirs):
    with pytest.raises(FileNotFoundError, match="No results for model 'bert_tfhub_frozen'.*run its notebook"):
        load_results("bert_tfhub_frozen", "netflix")


def test_available_models_in_course_order(course_dirs):
    folder = course_dirs.results / "netflix"
    for name in ["zzz_custom", "minilm_finetuned", "aaa_custom", "tfidf_logreg", "trivial_baseline"]:
        atomic_write_json(folder / name / "metrics.json", {"model": name})
    (folder / "bilstm_w2v").mkdir()  # no metrics.json: an interrupted run, not listed
    assert available_models("netflix") == ["trivial_baseline", "tfidf_logreg", "minilm_finetuned",
                                           "aaa_custom", "zzz_custom"]
    assert available_models("cmu") == []
    assert MODEL_ORDER[0] == "trivial_baseline" and len(MODEL_ORDER) == 8


def test_choose_thresholds_keeps_global_for_rare_genres():
    rng = np.random.default_rng(1)
    y = np.zeros((100, 2), dtype=int)
    y[:40, 0] = 1
    y[:3, 1] = 1  # 3 positives < min_positives
    prob = np.clip(0.5 * y + 0.5 * rng.random(y.shape), 0, 1)
    t = choose_thresholds(y, prob, ["A", "B"], min_positives=20)
    assert t["default"] == "global" and t["per_genre"]["B"] == t["global"]
    assert 0.05 <= t["global"] <= 0.95
    t_all = choose_thresholds(y, prob, ["A", "B"], min_positives=1)
    assert isinstance(t_all["per_genre"]["B"], float)


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    atomic_write_json(path, {"version": 1})

    def broken_replace(src, dst):
        raise OSError("disk full")

    from utils import files

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"half a file")
    assert json.loads(path.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # temporary file removed


def test_atomic_write_gives_normal_permissions(tmp_path):
    import os
    import stat

    from utils.files import atomic_write_bytes

    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "sub" / "file.json", b"{}")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"{}"
    assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044  # group/other can read, like any file


def test_atomic_folder_replaces_the_folder_only_when_the_block_succeeds(tmp_path):
    import os
    import stat

    from utils.files import atomic_folder

    target = tmp_path / "models" / "m"
    old = os.umask(0o022)
    try:
        with atomic_folder(target) as tmp:
            assert tmp.parent == target.parent and tmp != target and not target.exists()
            (tmp / "a.txt").write_text("one")
    finally:
        os.umask(old)
    assert (target / "a.txt").read_text() == "one"
    assert stat.S_IMODE(target.stat().st_mode) & 0o055 == 0o055   # readable by others, not mkdtemp's 0700
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_folder(target) as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("crash")
    assert (target / "a.txt").read_text() == "one"                      # the old folder, untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["m"]      # no temporary folder left
    with atomic_folder(target) as tmp:
        (tmp / "b.txt").write_text("two")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]         # replaced, not merged


def test_every_result_records_its_split_and_the_reader_checks_it(course_dirs, run):
    from utils.data.splits import split_identity

    mine = split_identity(run["test_ids"], seed=7)
    other = split_identity([f"x{i}" for i in range(60)], seed=8)
    save_results("model_a", **run, dataset="netflix", split=mine)
    save_results("model_b", **run, dataset="netflix", split=other)
    save_results("model_c", **run, dataset="netflix", split=mine)
    loaded = {m: load_results(m, "netflix") for m in ("model_a", "model_b", "model_c")}
    assert loaded["model_a"]["split"] == mine
    assert json.loads((course_dirs.results / "netflix" / "model_a" / "metrics.json").read_text())["split"] == mine
    odd = results.split_mismatches(loaded, reference=mine)
    assert list(odd) == ["model_b"] and "split seed 8" in odd["model_b"] and "re-run" in odd["model_b"]
    assert list(results.split_mismatches(loaded)) == ["model_b"]          # the first recorded split is the reference
    old = dict(loaded["model_c"], split=None)                              # saved before splits were recorded
    assert "records no split" in results.split_mismatches({"a": loaded["model_a"], "c": old})["c"]
    assert results.split_mismatches({"c": old}) == {}                      # nothing to check against: nothing flagged


def test_results_default_to_the_prepared_split(course_dirs, run, monkeypatch):
    from utils.data.splits import save_split

    folder = config.processed_dir("netflix")
    folder.mkdir(parents=True, exist_ok=True)
    ids = run["val_ids"] + run["test_ids"]
    import pandas as pd

    save_split(pd.Series(["val"] * 80 + ["test"] * 60, index=pd.Index(ids, name="id")), folder / "split.csv")
    (folder / "genres.json").write_text(json.dumps({"genres": GENRES, "settings": {"seed": 42}}))
    metrics = save_results("model_a", **run, dataset="netflix")
    assert metrics["split"]["split_seed"] == 42
    assert metrics["split"] == results.prepared_split_identity("netflix")
