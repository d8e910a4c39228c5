"""The predict function and command: good plots, bad plots, bad model folders."""
import io
import json
import os
import sys
import types

import numpy as np
import pytest

from utils import config
from utils.modelfiles import predictor
from utils.tools.predict import PredictError, main, predict, resolve_model_dir
from utils.modelfiles.predictor import ModelFormatError, Predictor, write_manifest
from utils.data.text import TextError

GENRES = ["Action", "Comedy", "Romance"]
KEYWORDS = {"gun": 0, "chase": 0, "joke": 1, "funny": 1, "love": 2, "kiss": 2}
THRESHOLDS = {"global": 0.5, "per_genre": {"Action": 0.5, "Comedy": 0.5, "Romance": 0.2}, "default": "global"}


class KeywordPredictor(Predictor):
    """Probability 0.9 for a genre whose keyword appears, 0.3 otherwise."""

    def predict_proba(self, texts):
        out = np.full((len(texts), len(self.genres)), 0.3)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                if word.strip(".,!") in KEYWORDS:
                    out[i, KEYWORDS[word.strip(".,!")]] = 0.9
        return out


@pytest.fixture
def models_root(tmp_path, monkeypatch):
    """A models/ folder with one fake model ``keywords`` for dataset ``toy``."""
    module = types.ModuleType("fake_course_model")
    module.load_predictor = lambda folder: KeywordPredictor(
        GENRES, json.loads((folder / "predictor.json").read_text())["thresholds"],
        vocabulary=set(KEYWORDS) | {"the", "a", "hero", "and"})
    monkeypatch.setitem(sys.modules, "fake_course_model", module)
    monkeypatch.setitem(predictor.KINDS, "fake", "fake_course_model:load_predictor")
    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    monkeypatch.setenv("COURSE_DATASET", "toy")
    folder = tmp_path / "models" / "toy" / "keywords"
    folder.mkdir(parents=True)
    write_manifest(folder, "fake", GENRES, THRESHOLDS, "toy")
    return tmp_path / "models" / "toy"


def test_predict_returns_genres_above_thresholds(models_root):
    result = predict("A hero with a gun and a funny chase.", model="keywords")
    assert [g for g, _ in result.genres] == ["Action", "Comedy"]
    assert result.genres[0][1] == pytest.approx(0.9)
    assert list(result.probabilities)[:2] == ["Action", "Comedy"]
    assert result.threshold_choice == "global" and result.dataset == "toy"
    assert result.known_words == 8 and result.total_words == 9


def test_threshold_choices(models_root):
    plot = "The hero and a gun."
    assert [g for g, _ in predict(plot, model="keywords", threshold="per_genre").genres] == ["Action", "Romance"]
    assert len(predict(plot, model="keywords", threshold=0.25).genres) == 3
    with pytest.raises(ValueError, match="between 0 and 1"):
        predict(plot, model="keywords", threshold=1.5)
    with pytest.raises(ValueError, match="'global', 'per_genre'"):
        predict(plot, model="keywords", threshold="best")


def test_model_given_as_folder(models_root):
    assert resolve_model_dir(str(models_root / "keywords")) == models_root / "keywords"
    assert predict("love and a kiss", model=models_root / "keywords").genres[0][0] == "Romance"


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("   \n\t ", "empty"),
    ("1984 !!! 42 ???", "no usable words"),
    ("Zwei Schwestern eröffnen eine Bäckerei", "None of the plot's 5 words"),
])
def test_bad_plots_are_rejected_clearly(models_root, text, message):
    with pytest.raises((TextError, PredictError), match=message):
        predict(text, model="keywords")


def test_absurdly_long_plot(models_root):
    with pytest.raises(TextError, match="limit"):
        predict("gun " * 50, model="keywords", max_chars=100)


def test_missing_model_folder_lists_saved_models(models_root):
    with pytest.raises(ModelFormatError, match="does not exist.*keywords"):
        predict("a gun", model="no_such_model")


def test_model_saved_by_another_version(models_root):
    manifest = models_root / "keywords" / "predictor.json"
    data = json.loads(manifest.read_text())
    data["format_version"] = 99
    manifest.write_text(json.dumps(data))
    with pytest.raises(ModelFormatError, match="format 99.*re-run"):
        predict("a gun", model="keywords")


def test_folder_that_is_not_a_model(models_root, tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(ModelFormatError, match="no predictor.json"):
        predict("a gun", model=tmp_path / "stuff")


# ----------------------------------------------------------------------------- command line
def run_cli(argv, stdin_text=None, capsys=None):
    stdin = io.StringIO(stdin_text) if stdin_text is not None else None
    code = main(argv, stdin=stdin)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_argument(models_root, capsys):
    code, out, err = run_cli(["--model", "keywords", "A funny joke about love."], capsys=capsys)
    assert code == 0, err
    assert "Predicted genres:" in out and "Comedy" in out and "Romance" in out
    assert "Action" not in out.split("Predicted genres:")[1]


def test_cli_file_stdin_and_json(models_root, tmp_path, capsys):
    plot = tmp_path / "plot.txt"
    plot.write_text("A chase with a gun.", encoding="utf-8")
    code, out, _ = run_cli(["-m", "keywords", "--file", str(plot), "--json"], capsys=capsys)
    assert code == 0 and json.loads(out)["genres"][0]["genre"] == "Action"
    code, out, _ = run_cli(["-m", "keywords", "--all"], stdin_text="love love", capsys=capsys)
    assert code == 0 and "All genres" in out and out.count("/ 0.50") == 3


def test_cli_nothing_above_threshold_shows_most_likely(models_root, capsys):
    code, out, _ = run_cli(["-m", "keywords", "the hero"], capsys=capsys)
    assert code == 0 and "No genre reaches its threshold" in out


@pytest.mark.parametrize("argv, stdin_text, message", [
    (["-m", "keywords", ""], None, "empty"),
    (["-m", "keywords"], "   ", "empty"),
    (["-m", "keywords", "Zwei Schwestern"], None, "vocabulary"),
    (["-m", "nope", "a gun"], None, "does not exist"),
    (["-m", "keywords", "--file", "/no/such/file.txt"], None, "no such file"),
    (["-m", "keywords", "--max-chars", "50", "gun " * 20], None, "limit"),
    (["-m", "keywords", "--max-chars", "50", "--file", "-"], "gun " * 20, "limit"),
])
def test_cli_bad_input_exit_code_and_message(models_root, capsys, argv, stdin_text, message):
    code, out, err = run_cli(argv, stdin_text, capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err


def test_cli_non_utf8_file(models_root, tmp_path, capsys):
    bad = tmp_path / "plot.bin"
    bad.write_bytes(b"\xff\xfe\x00gun")
    code, _, err = run_cli(["-m", "keywords", "--file", str(bad)], capsys=capsys)
    assert code == 2 and "not UTF-8" in err


def test_cli_sets_legacy_keras_for_tfhub_models(models_root, monkeypatch, capsys):
    """A bert_tfhub model needs TF_USE_LEGACY_KERAS=1 before TensorFlow is imported."""
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "0")   # records the original value, restored after the test
    monkeypatch.delenv("TF_USE_LEGACY_KERAS")
    monkeypatch.setitem(predictor.KINDS, "bert_tfhub", "fake_course_model:load_predictor")
    folder = models_root / "bert"
    folder.mkdir()
    write_manifest(folder, "bert_tfhub", GENRES, THRESHOLDS, "toy")
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    code, out, err = run_cli(["-m", "bert", "a gun"], capsys=capsys)
    assert code == 0, err
    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"


def test_real_tfidf_model_end_to_end(tmp_path, monkeypatch, capsys, nltk_data):
    """A tiny TF-IDF model trained here, saved by utils.modelfiles.tfidf, predicted through the command."""
    tfidf = pytest.importorskip("utils.modelfiles.tfidf")
    from utils.data.text import clean_text

    monkeypatch.setattr(config, "MODELS_DIR", tmp_path / "models")
    texts = ["space ship alien planet", "alien invasion space war", "love wedding kiss romance",
             "wedding love story kiss", "space alien love", "kiss romance planet"] * 5
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [1, 1]] * 5)
    from utils.lessons.tfidf import fit

    pipe = fit([clean_text(t) for t in texts], y, min_df=1, max_df=1.0, ngram_range=(1, 1))
    folder = tmp_path / "models" / "toy" / "tfidf_logreg"
    tfidf.save_model(pipe, folder, ["SciFi", "Romance"],
                     {"global": 0.5, "per_genre": {"SciFi": 0.5, "Romance": 0.5}, "default": "global"}, "toy")
    code, out, err = run_cli(["--dataset", "toy", "An alien space ship lands on a planet."], capsys=capsys)
    assert code == 0, err
    assert "SciFi" in out.split("Predicted genres:")[1]
    code, _, err = run_cli(["--dataset", "toy", "Der Hund bellt laut"], capsys=capsys)
    assert code == 2 and "vocabulary" in err


def test_tfhub_model_after_keras3_tensorflow_is_refused(models_root, monkeypatch):
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "0")
    monkeypatch.setitem(predictor.KINDS, "bert_tfhub", "fake_course_model:load_predictor")
    monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))
    write_manifest(models_root / "keywords", "bert_tfhub", GENRES, THRESHOLDS, "toy")
    with pytest.raises(ModelFormatError, match="needs Keras 2.*TF_USE_LEGACY_KERAS"):
        predict("a gun", model="keywords")


# --------------------------------------------------------------------------- hostile inputs and model folders
def _manifest(folder):
    return json.loads((folder / "predictor.json").read_text())


@pytest.mark.parametrize("change, field", [
    (lambda m: ["not", "an", "object"], "JSON object"),
    (lambda m: {k: v for k, v in m.items() if k != "genres"}, "'genres'"),
    (lambda m: {k: v for k, v in m.items() if k != "thresholds"}, "'thresholds' is missing"),
    (lambda m: {**m, "genres": "Action"}, "'genres'"),
    (lambda m: {**m, "thresholds": [0.5]}, "'thresholds' must be an object"),
    (lambda m: {**m, "thresholds": {**m["thresholds"], "global": 1.5}}, "thresholds.global"),
    (lambda m: {**m, "thresholds": {**m["thresholds"], "global": "0.5"}}, "thresholds.global"),
    (lambda m: {**m, "thresholds": {**m["thresholds"], "per_genre": {"Action": 0.5}}}, "per_genre"),
    (lambda m: {**m, "thresholds": {**m["thresholds"], "per_genre": {**m["thresholds"]["per_genre"], "Comedy": -1}}},
     "per_genre"),
    (lambda m: {**m, "thresholds": {**m["thresholds"], "default": "best"}}, "thresholds.default"),
])
def test_damaged_manifest_gets_one_clear_error_naming_file_and_field(models_root, capsys, change, field):
    folder = models_root / "keywords"
    (folder / "predictor.json").write_text(json.dumps(change(_manifest(folder))))
    code, out, err = run_cli(["--model", "keywords", "A funny joke."], capsys=capsys)
    assert code == 2 and "predictor.json" in err and field in err and "Traceback" not in err


def test_nan_threshold_and_non_utf8_manifest_are_refused(models_root, capsys):
    folder = models_root / "keywords"
    text = json.dumps(_manifest(folder)).replace('"global": 0.5', '"global": NaN')
    (folder / "predictor.json").write_text(text)
    code, _, err = run_cli(["--model", "keywords", "A funny joke."], capsys=capsys)
    assert code == 2 and "thresholds.global" in err
    (folder / "predictor.json").write_bytes(b'{"kind": "fake", "genres": ["\xff"]}')
    code, _, err = run_cli(["--model", "keywords", "A funny joke."], capsys=capsys)
    assert code == 2 and "UTF-8" in err


@pytest.mark.parametrize("name", ["..", "...", "a b", "x\x00y", "-rf"])
def test_model_names_cannot_escape_the_models_folder(models_root, name):
    """A plain name is one folder name under models/<dataset>/; a path must be written as a path."""
    with pytest.raises(ModelFormatError, match="not a model name"):
        resolve_model_dir(name)


def test_plain_model_name_prefers_models_folder_then_current_folder(models_root, tmp_path, monkeypatch):
    here = tmp_path / "cwd"
    (here / "keywords").mkdir(parents=True)
    write_manifest(here / "keywords", "fake", GENRES, THRESHOLDS, "toy")
    (here / "mine").mkdir()
    write_manifest(here / "mine", "fake", GENRES, THRESHOLDS, "toy")
    monkeypatch.chdir(here)
    assert resolve_model_dir("keywords") == models_root / "keywords"
    assert resolve_model_dir("mine") == here / "mine"


@pytest.mark.parametrize("dataset", ["../..", "a/b", "..", "Netflix!"])
def test_dataset_names_cannot_escape_their_folders(models_root, capsys, dataset):
    code, _, err = run_cli(["--dataset", dataset, "--model", "keywords", "A funny joke."], capsys=capsys)
    assert code == 2 and "dataset name" in err


def test_non_utf8_stdin_is_refused(models_root, capsys):
    stdin = io.TextIOWrapper(io.BytesIO("A funny joke about love \xe9".encode("latin-1")), encoding="utf-8")
    code, _, err = main(["--model", "keywords"], stdin=stdin), *capsys.readouterr()
    assert code == 2 and "not UTF-8" in err


def test_model_returning_nan_is_an_error_not_nan_json(models_root, capsys, monkeypatch):
    monkeypatch.setattr(KeywordPredictor, "predict_proba", lambda self, texts: np.full((1, 3), np.nan))
    code, out, err = run_cli(["--model", "keywords", "--json", "A funny joke."], capsys=capsys)
    assert code == 2 and "NaN" in err and "NaN" not in out
