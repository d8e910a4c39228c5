"""Hostile and damaged model folders: nothing runs from a model file, nothing escapes its folder,
nothing crashes with a traceback (issue 22), and an export's files are the ones its card hashed (26).

Each crafted case is built here, in seconds: a tiny TF-IDF model in this process, and tiny TensorFlow
SavedModels (a ``serving_default`` that writes a file, ...) in one child process that imports
TensorFlow with Keras 2 as a ``bert_tfhub`` model needs.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from utils import config
from utils.modelfiles import tfidf
from utils.modelfiles.predictor import ModelFormatError, load_predictor, read_manifest
from utils.serving import export as ex
from utils.tools import predict as pr

GENRES = ["Sci-Fi", "Romance", "Horror"]
THRESHOLDS = {"global": 0.4, "per_genre": {"Sci-Fi": 0.3, "Romance": 0.5, "Horror": 0.45}, "default": "global"}
TRAIN = ["alien space ship lands planet", "astronauts fight robots space", "wedding kiss love story paris",
         "lovers meet wedding again", "haunted house ghost kills night", "demons blood dark forest"] * 3
Y = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]] * 3)
PLOT = "An alien ghost haunts a space ship."


def one_line(err) -> str:
    text = str(err.value if hasattr(err, "value") else err)
    assert "\n" not in text and "Traceback" not in text, text
    return text


@pytest.fixture
def model_dir(course_dirs, nltk_data) -> Path:
    from utils.lessons.tfidf import fit

    pipe = fit(TRAIN, Y, min_df=1, max_df=1.0, ngram_range=(1, 2))
    return tfidf.save_model(pipe, config.models_dir("toy") / "tfidf_logreg", GENRES, THRESHOLDS, "toy")


def _cli_predict(folder, capsys) -> tuple[int, str]:
    rc = pr.main(["--model", str(folder), PLOT])
    err = capsys.readouterr().err
    return rc, err


# --------------------------------------------------------------------------- tfidf.json


def _edit_settings(folder: Path, **changes) -> None:
    path = folder / tfidf.SETTINGS_FILE
    settings = json.loads(path.read_text())
    path.write_text(json.dumps({**settings, **changes}))


@pytest.mark.parametrize("changes, says", [
    ({"token_pattern": r"(a+)+$"}, "token_pattern"),                 # catastrophic backtracking
    ({"token_pattern": r"(\w+\s?)*$"}, "token_pattern"),
    ({"token_pattern": "(unclosed"}, "token_pattern"),               # re.error
    ({"token_pattern": None}, "token_pattern"),
    ({"ngram_range": [1, 1000000]}, "ngram_range"),                  # 5.6 GB before it was killed
    ({"ngram_range": [0, 1]}, "ngram_range"),
    ({"ngram_range": [2, 1]}, "ngram_range"),
    ({"ngram_range": [1.0, 2]}, "ngram_range"),
    ({"ngram_range": [True, 2]}, "ngram_range"),
    ({"lowercase": "yes"}, "lowercase"),
    ({"norm": "l1"}, "norm"),
    ({"analyzer": "char"}, "analyzer"),                              # a field the course never writes
    ({"vocabulary": ["ghost", "ghost"]}, "same term twice"),
    ({"vocabulary": ["a b c d"]}, "vocabulary"),                     # 4 words with ngram_range [1, 2]
    ({"vocabulary": ["x" * 5000]}, "vocabulary"),
    ({"vocabulary": [3]}, "vocabulary"),
])
def test_crafted_tfidf_settings_are_refused_in_one_line(model_dir, capsys, changes, says):
    _edit_settings(model_dir, **changes)
    with pytest.raises(ModelFormatError) as err:
        load_predictor(model_dir)
    assert says in one_line(err) and "tfidf.json" in str(err.value)
    rc, stderr = _cli_predict(model_dir, capsys)
    assert rc == 2 and says in stderr and "Traceback" not in stderr and stderr.count("\n") == 1


def test_vocabulary_and_arrays_must_agree(model_dir):
    settings = json.loads((model_dir / tfidf.SETTINGS_FILE).read_text())
    _edit_settings(model_dir, vocabulary=settings["vocabulary"][:-1])
    with pytest.raises(ModelFormatError, match="shape|bytes"):
        load_predictor(model_dir)


def test_save_model_never_writes_a_pattern_it_would_refuse(course_dirs, nltk_data):
    from utils.lessons.tfidf import fit

    pipe = fit(TRAIN, Y, min_df=1, max_df=1.0, ngram_range=(1, 1))
    pipe.named_steps["tfidf"].token_pattern = r"[a-z]+"
    with pytest.raises(ValueError, match="token_pattern"):
        tfidf.save_model(pipe, course_dirs.models / "x", GENRES, THRESHOLDS, "toy")
    assert not (course_dirs.models / "x" / "predictor.json").exists()


def test_the_course_model_passes_and_predicts(model_dir):
    prediction = pr.predict(PLOT, model=model_dir)
    assert prediction.known_words >= 3 and set(prediction.probabilities) == set(GENRES)


# --------------------------------------------------------------------------- damaged companion files


def test_truncated_weights_give_one_line(model_dir, capsys):
    path = model_dir / tfidf.WEIGHTS_FILE
    data = path.read_bytes()
    assert data[:2] == b"PK"
    path.write_bytes(data[: len(data) // 2])                      # zipfile.BadZipFile before the fix
    with pytest.raises(ModelFormatError) as err:
        load_predictor(model_dir)
    assert "damaged" in one_line(err) and "weights.npz" in str(err.value)
    rc, stderr = _cli_predict(model_dir, capsys)
    assert rc == 2 and "weights.npz" in stderr and "Traceback" not in stderr


def test_an_array_larger_than_its_shape_is_refused_before_it_is_read(model_dir):
    path = model_dir / tfidf.WEIGHTS_FILE
    with np.load(path) as z:
        arrays = dict(z)
    arrays["idf"] = np.zeros(len(arrays["idf"]) * 1000)
    np.savez_compressed(path, **arrays)
    with pytest.raises(ModelFormatError, match="more than"):
        load_predictor(model_dir)


@pytest.mark.parametrize("name", ["predictor.json", "tfidf.json"])
def test_deeply_nested_json_gives_one_line(model_dir, capsys, name):
    (model_dir / name).write_text("[" * 200_000 + "]" * 200_000)   # RecursionError before the fix
    with pytest.raises(ModelFormatError) as err:
        load_predictor(model_dir)
    assert "nested too deeply" in one_line(err)
    rc, stderr = _cli_predict(model_dir, capsys)
    assert rc == 2 and "nested too deeply" in stderr and "Traceback" not in stderr


def test_deeply_nested_model_card_gives_one_line(model_dir, tmp_path):
    dest = ex.export_model(model_dir, tmp_path / "exp")
    (dest / ex.CARD).write_text('{"format": "course-serving/1", "x": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(ModelFormatError) as err:
        ex.load_export(dest)
    assert "nested too deeply" in one_line(err)


def test_nan_test_scores_never_reach_the_api(model_dir, tmp_path):
    from fastapi.testclient import TestClient

    from utils.serving.app import create_app

    metrics = config.results_dir("toy") / "tfidf_logreg" / "metrics.json"
    metrics.parent.mkdir(parents=True)
    metrics.write_text(json.dumps({"test": {"global": {"micro_f1": float("nan"), "macro_f1": 0.5},
                                            "0.5": {"micro_f1": float("inf")}}, "n_test": 8}))
    dest = ex.export_model(model_dir, tmp_path / "exp")
    card = json.loads((dest / ex.CARD).read_text())                   # strict JSON: no NaN written
    assert card["test_scores"] == {"global": {"micro_f1": None, "macro_f1": 0.5}, "0.5": {"micro_f1": None}}
    with TestClient(create_app(ex.load_export(dest))) as client:
        assert client.get("/model").status_code == 200
    card["test_scores"]["global"]["micro_f1"] = float("nan")           # a hand-edited card: refused at load
    (dest / ex.CARD).write_text(json.dumps(card))
    with pytest.raises(ModelFormatError) as err:
        ex.load_export(dest)
    assert "test_scores.global.micro_f1" in one_line(err) and "NaN" in str(err.value)


# --------------------------------------------------------------------------- names and folders


@pytest.mark.parametrize("dataset", ["csv:/../../../x.csv", "../../x", "netflix/../..", "", "NETFLIX", 3])
def test_a_crafted_dataset_in_predictor_json_is_refused(model_dir, capsys, dataset):
    manifest = json.loads((model_dir / "predictor.json").read_text())
    (model_dir / "predictor.json").write_text(json.dumps({**manifest, "dataset": dataset}))
    with pytest.raises(ModelFormatError) as err:
        read_manifest(model_dir)
    assert "dataset" in one_line(err)
    with pytest.raises(ModelFormatError):
        ex.export_model(model_dir)                          # before: exports/csv:/../../../x.csv/...
    assert not (config.MODELS_DIR.parent / "exports").exists()
    assert not (config.MODELS_DIR.parent.parent / "x.csv").exists()
    rc, stderr = _cli_predict(model_dir, capsys)
    assert rc == 2 and "dataset" in stderr


def test_default_export_folder_comes_from_confined_names_only(model_dir):
    dest = ex.export_model(model_dir)
    assert dest == config.MODELS_DIR.parent / "exports" / "toy" / "tfidf_logreg"
    for name, dataset in [("..", "toy"), ("a/../../b", "toy"), ("tfidf_logreg", "../x"), ("x", "csv:/a.csv")]:
        with pytest.raises(ModelFormatError, match="give the export folder yourself"):
            ex.default_export_dir(name, dataset)


def test_export_never_replaces_a_folder_it_did_not_write(model_dir, tmp_path, capsys):
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.txt").write_text("three years of work")
    with pytest.raises(FileExistsError, match="not an export written by this course"):
        ex.export_model(model_dir, mine)
    assert (mine / "thesis.txt").read_text() == "three years of work" and len(list(mine.iterdir())) == 1
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        ex.export_model(model_dir, afile)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert ex.export_model(model_dir, empty) == empty and (empty / ex.CARD).is_file()
    assert "replaced" not in capsys.readouterr().err
    ex.export_model(model_dir, empty)                          # an earlier export: replaced, and said so
    assert "replaced the earlier export" in capsys.readouterr().err
    with pytest.raises(FileExistsError, match="earlier export"):
        ex.export_model(model_dir, empty, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "empty", "notes"], "no temporary folders left"


def test_symbolic_links_in_a_model_folder_are_refused(model_dir, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    (model_dir / tfidf.SETTINGS_FILE).unlink()
    (model_dir / tfidf.SETTINGS_FILE).symlink_to(secret)
    with pytest.raises(ModelFormatError, match="symbolic link"):
        ex.export_model(model_dir, tmp_path / "exp")
    assert not (tmp_path / "exp").exists()


# --------------------------------------------------------------------------- modes and integrity


def test_exported_files_are_world_readable_whatever_the_umask(model_dir, tmp_path):
    (model_dir / "sub").mkdir()                                # a folder the model lists, made 0700
    (model_dir / "sub" / "part.bin").write_bytes(b"x")
    os.chmod(model_dir / "sub", 0o700)
    os.chmod(model_dir / "sub" / "part.bin", 0o600)
    os.chmod(model_dir / tfidf.WEIGHTS_FILE, 0o600)
    manifest = json.loads((model_dir / "predictor.json").read_text())
    (model_dir / "predictor.json").write_text(json.dumps({**manifest, "files": [*manifest["files"], "sub"]}))
    base = Path(tempfile.mkdtemp(prefix="course-modes-"))   # under /tmp: another user can walk down to it
    os.chmod(base, 0o755)
    old = os.umask(0o077)
    try:
        dest = ex.export_model(model_dir, base / "exp")
        os.umask(old)
        for p in [dest, *dest.rglob("*")]:
            mode = stat.S_IMODE(p.stat().st_mode)
            assert mode == (0o755 if p.is_dir() else 0o644), (p, oct(mode))
        if os.geteuid() != 0:
            pytest.skip("modes checked; reading as another uid needs root (os.setuid)")
        if not stat.S_IMODE(base.parent.stat().st_mode) & 0o001:
            pytest.skip(f"{base.parent} is not searchable by other users")
        pid = os.fork()
        if pid == 0:                                           # child: become nobody and read every file
            code = 1
            try:
                os.setgid(65534)
                os.setuid(65534)
                code = 0 if all(p.read_bytes() is not None for p in dest.rglob("*") if p.is_file()) else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "uid 65534 could not read the export"
    finally:
        os.umask(old)
        shutil.rmtree(base, ignore_errors=True)


def test_an_export_edited_after_export_is_refused(model_dir, tmp_path):
    dest = ex.export_model(model_dir, tmp_path / "exp")
    card = json.loads((dest / ex.CARD).read_text())
    assert set(card["sha256"]) == {"predictor.json", "tfidf.json", "weights.npz"}
    assert card["sha256"]["weights.npz"] == ex._sha256(dest / "weights.npz")
    ex.load_export(dest, warm_up=False)                        # untouched: loads
    with np.load(dest / tfidf.WEIGHTS_FILE) as z:
        arrays = dict(z)
    arrays["intercept"] = arrays["intercept"] + 0.5            # still a valid model, other probabilities
    np.savez_compressed(dest / tfidf.WEIGHTS_FILE, **arrays)
    with pytest.raises(ModelFormatError) as err:
        ex.load_export(dest)
    assert "SHA-256" in one_line(err) and "changed: weights.npz" in str(err.value)
    shutil.copy2(model_dir / tfidf.WEIGHTS_FILE, dest / tfidf.WEIGHTS_FILE)
    ex.load_export(dest, warm_up=False)
    (dest / "extra.bin").write_bytes(b"x")                     # outside the listed files: not loaded, ignored
    ex.load_export(dest, warm_up=False)
    (dest / ex.CARD).write_text(json.dumps({**card, "version": "tfidf_logreg-000000000000"}))
    with pytest.raises(ModelFormatError, match="'version'"):
        ex.load_export(dest)
    del card["sha256"]
    (dest / ex.CARD).write_text(json.dumps(card))
    with pytest.raises(ModelFormatError, match="no file hashes"):
        ex.load_export(dest)


# --------------------------------------------------------------------------- crafted SavedModels

SAVEDMODEL_SCRIPT = textwrap.dedent("""
    import contextlib, io, json, os, sys
    os.environ["TF_USE_LEGACY_KERAS"] = "1"          # a bert_tfhub model needs Keras 2, as in notebook 05a
    sys.path.insert(0, os.environ["COURSE_ROOT"])
    from pathlib import Path
    import tensorflow as tf
    from utils.modelfiles.predictor import ModelFormatError, write_manifest
    from utils.serving.export import load_export
    from utils.tools import predict as pr
    from utils.tools import serve

    out = Path(os.environ["OUT"])
    target = out / "pwned.txt"
    genres = ["Sci-Fi", "Romance", "Horror"]
    thresholds = {"global": 0.5, "default": "global"}
    vocab = out / "vocab.txt"
    vocab.write_text("alien\\nghost\\nlove\\n")

    def probs(text):                                  # only ops the course's BERT uses
        return tf.fill(tf.stack([tf.shape(text)[0], 3]), 0.5)

    def save(name, fn, module=None):
        module = module or tf.Module()
        module.f = tf.function(fn, input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        folder = out / name
        tf.saved_model.save(module, str(folder / "saved_model"), signatures={"serving_default": module.f})
        write_manifest(folder, "bert_tfhub", genres, thresholds, "netflix", files=["saved_model"])
        return folder

    def write(text):
        tf.io.write_file(str(target), "written by a model file")
        return {"probabilities": probs(text)}

    @tf.function
    def inner(n):
        return tf.cond(n > 0, lambda: tf.io.write_file(str(target), "nested"), lambda: tf.no_op())

    def nested(text):
        inner(tf.shape(text)[0])
        return {"probabilities": probs(text)}

    def read(text):
        return {"probabilities": probs(text), "leak": tf.io.read_file("/etc/hostname")}

    def table_from_constant(text):
        table = tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.int64)
        init = tf.raw_ops.InitializeTableFromTextFileV2(table_handle=table, filename="/etc/hostname",
                                                        key_index=-2, value_index=-1)
        with tf.control_dependencies([init]):
            ids = tf.raw_ops.LookupTableFindV2(table_handle=table, keys=text, default_value=tf.constant(-1, tf.int64))
        return {"probabilities": tf.sigmoid(tf.cast(tf.expand_dims(ids, 1), tf.float32) * tf.ones([3]))}

    class WithTable(tf.Module):                       # the WordPiece vocabulary's pattern: a table from an asset
        def __init__(self):
            init = tf.lookup.TextFileInitializer(str(vocab), tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                                 tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)
            self.table = tf.lookup.StaticHashTable(init, -1)

    holder = WithTable()

    def lookup(text):
        ids = holder.table.lookup(text)
        return {"probabilities": tf.sigmoid(tf.cast(tf.expand_dims(ids, 1), tf.float32) * tf.ones([3]))}

    folders = {"write": save("write", write), "nested": save("nested", nested), "read": save("read", read),
               "table_from_constant": save("table_from_constant", table_from_constant),
               "asset": save("asset", lookup, holder)}
    # a copy of the legitimate table model whose asset name climbs out of assets/
    import shutil
    from tensorflow.core.protobuf import saved_model_pb2
    escape = out / "asset_escape"
    shutil.copytree(folders["asset"], escape)
    (out / "outside.txt").write_text("secret\\n")
    pb = escape / "saved_model" / "saved_model.pb"
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(pb.read_bytes())
    for asset in sm.meta_graphs[0].asset_file_def:
        asset.filename = "../../../outside.txt"
    pb.write_bytes(sm.SerializeToString())
    folders["asset_escape"] = escape
    # the legitimate table model without its object graph: TensorFlow would load it the TF 1 way
    tf1 = out / "tf1"
    shutil.copytree(folders["asset"], tf1)
    sm.ParseFromString((tf1 / "saved_model" / "saved_model.pb").read_bytes())
    sm.meta_graphs[0].ClearField("object_graph_def")
    (tf1 / "saved_model" / "saved_model.pb").write_bytes(sm.SerializeToString())
    folders["tf1"] = tf1

    report = {}
    for name, folder in folders.items():
        r = {}
        try:
            pred = pr.predict("An alien and a ghost.", model=str(folder))
            r["predict"] = "ok " + json.dumps(pred.probabilities)
        except ModelFormatError as err:
            r["predict"] = str(err)
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            r["predict_cli"] = [pr.main(["--model", str(folder), "An alien and a ghost."]), err.getvalue()]
        try:
            load_export(folder)
            r["load_export"] = "ok"
        except ModelFormatError as e:
            r["load_export"] = str(e)
        if not r["load_export"] == "ok":
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                r["serve_cli"] = [serve.main(["--model", str(folder)]), err.getvalue()]
        r["written"] = target.exists()
        report[name] = r
    # the crafted model is real: loaded without the check, its signature writes the file
    tf.saved_model.load(str(folders["write"] / "saved_model")).signatures["serving_default"](text=tf.constant(["x"]))
    report["written_without_check"] = target.exists()
    print("REPORT " + json.dumps(report))
""")


@pytest.fixture(scope="module")
def savedmodels(tmp_path_factory):
    pytest.importorskip("tensorflow")
    out = tmp_path_factory.mktemp("savedmodels")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(COURSE_ROOT=str(config.ROOT), OUT=str(out), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", SAVEDMODEL_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, f"child failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return json.loads(lines[-1][len("REPORT "):])


@pytest.mark.parametrize("name, says", [
    ("write", "'WriteFile', which writes a file"),
    ("nested", "'WriteFile', which writes a file"),                 # in a tf.cond branch of a nested function
    ("read", "'ReadFile', which reads a file"),
    ("table_from_constant", "whose name is computed in the graph"),  # an allowed op, a file outside the folder
    ("asset_escape", "outside its assets/ folder"),
    ("tf1", "TensorFlow 1 SavedModel"),                              # loaded by running its main graph
])
def test_crafted_savedmodels_are_refused_by_predict_and_serve(savedmodels, name, says):
    r = savedmodels[name]
    for path in ("predict", "load_export"):
        assert r[path].startswith("Refusing to load") and says in r[path], (path, r[path])
    for cli in ("predict_cli", "serve_cli"):
        rc, stderr = r[cli]
        assert rc == 2 and says in stderr and "Traceback" not in stderr and stderr.count("\n") == 1, (cli, stderr)
    assert not r["written"]


def test_the_crafted_savedmodel_would_write_without_the_check(savedmodels):
    """The test above can fail: the same folder, loaded by TensorFlow directly, writes its file."""
    assert savedmodels["written_without_check"]


def test_a_table_read_from_its_own_asset_is_allowed(savedmodels):
    """The BERT preprocessing pattern (a vocabulary table initialised from an asset) loads and predicts."""
    r = savedmodels["asset"]
    assert r["predict"].startswith("ok ") and r["load_export"] == "ok", r
    assert r["predict_cli"][0] == 0
